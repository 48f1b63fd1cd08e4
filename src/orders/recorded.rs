//! What a message in the audit log said, read back from its raw bytes by the code that read it
//! when it arrived: a notification through `Notification` and `PaymentEvent` (so a refund
//! notification is told apart exactly as the state machine told it), a query or refund answer
//! through the gateway's own response types. The audit row's columns keep the verdict; the
//! timeline also needs the amounts and the refund request, which only the message holds.

use serde::Serialize;

use super::model::{AuditRecord, PaymentEvent, Source, NO_TRADE};
use crate::alipay::callback::Verified;
use crate::alipay::gateway::{TradeQuery, TradeRefund};
use crate::alipay::notification::{Notification, TradeStatus};
use crate::money::Amount;

/// Which kind of message a row of the audit log is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A notification about the payment (or any status but a refund or a close).
    PaymentNotification,
    /// A notification carrying a refund (`refund_fee`): TRADE_SUCCESS after a partial refund,
    /// TRADE_CLOSED after a full one.
    RefundNotification,
    /// A TRADE_CLOSED notification without a refund: nobody paid.
    CloseNotification,
    /// Alipay's answer to our `alipay.trade.query`.
    QueryAnswer,
    /// Alipay's answer to our `alipay.trade.refund`.
    RefundAnswer,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentNotification => "payment_notification",
            Self::RefundNotification => "refund_notification",
            Self::CloseNotification => "close_notification",
            Self::QueryAnswer => "query_answer",
            Self::RefundAnswer => "refund_answer",
        }
    }

    /// How a sentence names the message: "notification", "query answer", "refund answer".
    pub fn noun(self) -> &'static str {
        match self {
            Self::PaymentNotification | Self::RefundNotification | Self::CloseNotification => {
                "notification"
            }
            Self::QueryAnswer => "query answer",
            Self::RefundAnswer => "refund answer",
        }
    }

    pub fn is_refund(self) -> bool {
        matches!(self, Self::RefundNotification | Self::RefundAnswer)
    }
}

/// What one recorded message said that its audit row does not keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub kind: MessageKind,
    pub trade_status: Option<TradeStatus>,
    /// The trade's total as the message states it.
    pub total: Option<Amount>,
    /// The trade's cumulative refunded amount, when the message reports a refund.
    pub refund_fee: Option<Amount>,
    /// The refund request the message settles (a notification's `out_biz_no`).
    pub out_request_no: Option<String>,
    /// A query answer saying Alipay has no trade for the order: nobody paid.
    pub no_trade: bool,
}

impl Recorded {
    /// Reads `record`'s raw message. A message that no longer reads (an anomaly for a missing
    /// field, say) still has its kind, from the row's source and trade status.
    pub(crate) fn read(record: &AuditRecord) -> Self {
        let trade_status = record.trade_status.as_deref().and_then(TradeStatus::parse);
        let mut recorded = Self {
            kind: MessageKind::PaymentNotification,
            trade_status,
            total: None,
            refund_fee: None,
            out_request_no: None,
            no_trade: false,
        };
        match record.source {
            Source::Notify => recorded.read_notification(record),
            Source::Query => {
                recorded.kind = MessageKind::QueryAnswer;
                recorded.no_trade = record.raw == NO_TRADE;
                if let Ok(answer) = serde_json::from_slice::<TradeQuery>(&record.raw) {
                    recorded.total = Amount::parse(&answer.total_amount).ok();
                }
            }
            Source::Refund => {
                recorded.kind = MessageKind::RefundAnswer;
                if let Ok(answer) = serde_json::from_slice::<TradeRefund>(&record.raw) {
                    recorded.refund_fee = Amount::parse(&answer.refund_fee).ok();
                }
            }
        }
        recorded
    }

    fn read_notification(&mut self, record: &AuditRecord) {
        let notification = Verified::from_audit_log(&record.raw)
            .ok()
            .and_then(|verified| Notification::from_verified(&verified).ok());
        let Some(notification) = notification else {
            if self.trade_status == Some(TradeStatus::TradeClosed) {
                self.kind = MessageKind::CloseNotification;
            }
            return;
        };
        let event = PaymentEvent::from_notification(notification, &record.raw, record.received_at);
        self.kind = match event.trade_status {
            _ if event.reports_refund() => MessageKind::RefundNotification,
            TradeStatus::TradeClosed => MessageKind::CloseNotification,
            _ => MessageKind::PaymentNotification,
        };
        self.trade_status = Some(event.trade_status);
        self.total = Some(event.total_amount);
        self.refund_fee = event.refund_fee;
        self.out_request_no = event.out_request_no;
    }
}
