//! Orders as the merchant sees them, and the payment events that move them.

use serde::Serialize;
use time::OffsetDateTime;

use crate::alipay::notification::TradeStatus;
use crate::money::Amount;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    Pending,
    Paid,
    Closed,
    Refunded,
}

impl OrderStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Paid, Self::Closed, Self::Refunded];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Closed => "closed",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub out_trade_no: String,
    pub subject: String,
    pub body: Option<String>,
    pub total_amount: Amount,
    pub status: OrderStatus,
    pub trade_no: Option<String>,
    pub buyer_id: Option<String>,
    pub alipay_trade_status: Option<String>,
    /// Refunded so far, as Alipay last reported it (cumulative `refund_fee`).
    #[serde(
        rename = "refunded_amount",
        serialize_with = "crate::money::serialize_fen"
    )]
    pub refunded_fen: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
}

/// A pending order about to be stored.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub out_trade_no: String,
    pub subject: String,
    pub body: Option<String>,
    pub total_amount: Amount,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Where word of a trade came from: Alipay's notification, our query of the trade, or the
/// answer to our refund request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Notify,
    Query,
    Refund,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Notify => "notify",
            Self::Query => "query",
            Self::Refund => "refund",
        }
    }
}

/// A verified statement from Alipay about one trade.
#[derive(Debug, Clone)]
pub struct PaymentEvent {
    pub source: Source,
    pub notify_id: Option<String>,
    pub out_trade_no: String,
    /// Absent only when Alipay has no trade for the order (it was never paid).
    pub trade_no: Option<String>,
    pub trade_status: TradeStatus,
    pub total_amount: Amount,
    pub buyer_id: Option<String>,
    pub paid_at: Option<OffsetDateTime>,
    /// Cumulative refunded amount, when the event reports refunds (`refund_fee`).
    pub refund_fee: Option<Amount>,
    /// The refund request this event settles (`out_biz_no` in notifications).
    pub out_request_no: Option<String>,
    pub raw: Vec<u8>,
    pub received_at: OffsetDateTime,
}

/// What became of an event; every verified event is recorded with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The order changed.
    Applied,
    /// Already applied: nothing to do, and Alipay may stop resending.
    Duplicate,
    /// A status that changes nothing (WAIT_BUYER_PAY).
    Ignored,
    /// Genuine but inconsistent with our records: the order is untouched and ops must look.
    Anomaly,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Anomaly => "anomaly",
        }
    }

    /// Whether Alipay may be told `success`.
    pub fn acknowledged(self) -> bool {
        self != Self::Anomaly
    }
}

/// One row of the audit log: a verified message as received, with its verdict.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub source: String,
    pub notify_id: Option<String>,
    pub out_trade_no: Option<String>,
    pub trade_status: Option<String>,
    pub verdict: String,
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

/// The result of applying an event: its verdict, why, and the order as it now stands.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    pub reason: Option<&'static str>,
    pub order: Option<Order>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One refund request of an order, identified by its `out_request_no`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refund {
    pub out_request_no: String,
    pub amount: Amount,
    pub reason: Option<String>,
    pub status: RefundStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A refund about to be requested.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub out_trade_no: String,
    pub out_request_no: String,
    pub amount: Amount,
    pub reason: Option<String>,
    pub requested_at: OffsetDateTime,
}
