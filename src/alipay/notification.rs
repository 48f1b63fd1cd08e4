//! A verified asynchronous notification (`trade_status_sync`), read into typed fields.

use time::OffsetDateTime;

use super::callback::Verified;
use super::clock::parse_beijing;
use crate::money::Amount;

/// Alipay's trade statuses, in the order a trade can move through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradeStatus {
    WaitBuyerPay,
    TradeSuccess,
    TradeFinished,
    TradeClosed,
}

impl TradeStatus {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "WAIT_BUYER_PAY" => Self::WaitBuyerPay,
            "TRADE_SUCCESS" => Self::TradeSuccess,
            "TRADE_FINISHED" => Self::TradeFinished,
            "TRADE_CLOSED" => Self::TradeClosed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaitBuyerPay => "WAIT_BUYER_PAY",
            Self::TradeSuccess => "TRADE_SUCCESS",
            Self::TradeFinished => "TRADE_FINISHED",
            Self::TradeClosed => "TRADE_CLOSED",
        }
    }

    /// Only these two mean the buyer paid.
    pub fn is_paid(self) -> bool {
        matches!(self, Self::TradeSuccess | Self::TradeFinished)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("missing `{0}`")]
    Missing(&'static str),
    #[error("invalid `{0}`")]
    Invalid(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub notify_id: String,
    pub app_id: String,
    pub seller_id: Option<String>,
    pub out_trade_no: String,
    pub trade_no: String,
    pub trade_status: TradeStatus,
    pub total_amount: Amount,
    pub buyer_id: Option<String>,
    pub gmt_payment: Option<OffsetDateTime>,
    /// Cumulative refunded amount, present on refund notifications.
    pub refund_fee: Option<Amount>,
    /// The refund request (`out_request_no`) a refund notification reports on.
    pub out_biz_no: Option<String>,
}

impl Notification {
    pub fn from_verified(params: &Verified) -> Result<Self, NotificationError> {
        let required = |key: &'static str| params.get(key).ok_or(NotificationError::Missing(key));
        let optional = |key: &str| params.get(key).map(str::to_owned);
        let trade_status = required("trade_status")?;
        let gmt_payment = params
            .get("gmt_payment")
            .map(|t| parse_beijing(t).map_err(|_| NotificationError::Invalid("gmt_payment")))
            .transpose()?;
        Ok(Self {
            notify_id: required("notify_id")?.to_owned(),
            app_id: required("app_id")?.to_owned(),
            seller_id: optional("seller_id"),
            out_trade_no: required("out_trade_no")?.to_owned(),
            trade_no: required("trade_no")?.to_owned(),
            trade_status: TradeStatus::parse(trade_status)
                .ok_or(NotificationError::Invalid("trade_status"))?,
            total_amount: Amount::parse(required("total_amount")?)
                .map_err(|_| NotificationError::Invalid("total_amount"))?,
            buyer_id: optional("buyer_id"),
            gmt_payment,
            // "0.00" means nothing refunded; Amount refuses zero, so it reads as no refund.
            refund_fee: params
                .get("refund_fee")
                .and_then(|fee| Amount::parse(fee).ok()),
            out_biz_no: optional("out_biz_no"),
        })
    }
}
