//! The audit trail of what people did through the console: who asked for what, about which
//! order, and what came of it. Written after the action, whatever its outcome.

use serde::Serialize;
use time::OffsetDateTime;

/// What an operator can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Ask Alipay about the order now (reconcile).
    Reconcile,
    Refund,
    Close,
    RedeliverWebhook,
    ReviewAnomaly,
}

impl ActionKind {
    pub const ALL: [Self; 5] = [
        Self::Reconcile,
        Self::Refund,
        Self::Close,
        Self::RedeliverWebhook,
        Self::ReviewAnomaly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reconcile => "reconcile",
            Self::Refund => "refund",
            Self::Close => "close",
            Self::RedeliverWebhook => "redeliver_webhook",
            Self::ReviewAnomaly => "review_anomaly",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// One action as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleAction {
    pub operator: String,
    pub kind: ActionKind,
    pub out_trade_no: Option<String>,
    /// What was asked, in words ("refund 2.00: broken lid").
    pub request: String,
    /// What came of it, in words ("refund succeeded", "Alipay refused: …").
    pub outcome: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_name() {
        for kind in ActionKind::ALL {
            assert_eq!(ActionKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ActionKind::parse("delete"), None);
    }
}
