//! The order state machine: what a verified trade status does to a stored order. Pure, so that
//! both stores and every source (notify, query) share one set of rules.

use super::model::{Order, OrderStatus, PaymentEvent, Verdict};
use crate::alipay::notification::TradeStatus;

/// The change to write when an event applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub status: OrderStatus,
    pub alipay_trade_status: TradeStatus,
    /// Record trade_no, buyer_id and paid_at from the event.
    pub records_payment: bool,
    pub closes: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Apply(Change),
    Unchanged(Verdict),
    Anomaly(&'static str),
}

/// How far along Alipay's own lifecycle a status is; ours never moves backwards along it.
fn rank(status: TradeStatus) -> u8 {
    match status {
        TradeStatus::WaitBuyerPay => 0,
        TradeStatus::TradeSuccess => 1,
        TradeStatus::TradeFinished => 2,
        TradeStatus::TradeClosed => 3,
    }
}

/// Decides what `event` does to `order`. Checks that the event is about this order's money and
/// trade before anything else: a mismatch is an anomaly, never a transition.
pub fn decide(order: &Order, event: &PaymentEvent) -> Decision {
    use OrderStatus::*;
    use TradeStatus::*;

    if event.total_amount != order.total_amount {
        return Decision::Anomaly("amount_mismatch");
    }
    if order
        .trade_no
        .as_deref()
        .is_some_and(|t| t != event.trade_no)
    {
        return Decision::Anomaly("trade_no_mismatch");
    }
    let known = order
        .alipay_trade_status
        .as_deref()
        .and_then(TradeStatus::parse);
    let advances = known.is_none_or(|k| rank(event.trade_status) > rank(k));
    let change = |status, records_payment, closes| {
        Decision::Apply(Change {
            status,
            alipay_trade_status: event.trade_status,
            records_payment,
            closes,
        })
    };
    match (order.status, event.trade_status) {
        (_, WaitBuyerPay) => Decision::Unchanged(Verdict::Ignored),
        (Pending, TradeSuccess | TradeFinished) => change(Paid, true, false),
        (Paid, TradeFinished) if advances => change(Paid, false, false),
        (Paid | Refunded, TradeSuccess | TradeFinished) => Decision::Unchanged(Verdict::Duplicate),
        (Closed, TradeSuccess | TradeFinished) => Decision::Anomaly("paid_after_close"),
        // A trade closed after payment was fully refunded, even if its payment notice is late.
        (Pending, TradeClosed) if event.refunded || event.paid_at.is_some() => {
            change(Refunded, true, true)
        }
        (Pending, TradeClosed) => change(Closed, false, true),
        (Paid, TradeClosed) => change(Refunded, false, true),
        (Closed | Refunded, TradeClosed) => Decision::Unchanged(Verdict::Duplicate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Amount;
    use crate::orders::model::Source;
    use time::OffsetDateTime;

    fn order(status: OrderStatus, alipay: Option<TradeStatus>) -> Order {
        let now = OffsetDateTime::now_utc();
        Order {
            out_trade_no: "T1".into(),
            subject: "s".into(),
            body: None,
            total_amount: Amount::from_fen(1234).unwrap(),
            status,
            trade_no: alipay.map(|_| "2026112822001".into()),
            buyer_id: None,
            alipay_trade_status: alipay.map(|s| s.as_str().into()),
            created_at: now,
            expires_at: now,
            paid_at: None,
            closed_at: None,
        }
    }

    fn event(status: TradeStatus) -> PaymentEvent {
        PaymentEvent {
            source: Source::Notify,
            notify_id: Some("n1".into()),
            out_trade_no: "T1".into(),
            trade_no: "2026112822001".into(),
            trade_status: status,
            total_amount: Amount::from_fen(1234).unwrap(),
            buyer_id: None,
            paid_at: None,
            refunded: false,
            raw: vec![],
            received_at: OffsetDateTime::now_utc(),
        }
    }

    fn status_after(decision: Decision) -> Option<OrderStatus> {
        match decision {
            Decision::Apply(change) => Some(change.status),
            _ => None,
        }
    }

    #[test]
    fn payment_moves_pending_to_paid_once() {
        use TradeStatus::*;
        let pending = order(OrderStatus::Pending, None);
        assert_eq!(
            status_after(decide(&pending, &event(TradeSuccess))),
            Some(OrderStatus::Paid)
        );
        assert_eq!(
            status_after(decide(&pending, &event(TradeFinished))),
            Some(OrderStatus::Paid)
        );
        let paid = order(OrderStatus::Paid, Some(TradeSuccess));
        assert_eq!(
            decide(&paid, &event(TradeSuccess)),
            Decision::Unchanged(Verdict::Duplicate)
        );
    }

    #[test]
    fn never_moves_backwards() {
        use TradeStatus::*;
        let finished = order(OrderStatus::Paid, Some(TradeFinished));
        assert_eq!(
            decide(&finished, &event(TradeSuccess)),
            Decision::Unchanged(Verdict::Duplicate)
        );
        let refunded = order(OrderStatus::Refunded, Some(TradeClosed));
        assert_eq!(
            decide(&refunded, &event(TradeSuccess)),
            Decision::Unchanged(Verdict::Duplicate)
        );
        assert_eq!(
            decide(&refunded, &event(TradeFinished)),
            Decision::Unchanged(Verdict::Duplicate)
        );
    }

    #[test]
    fn finished_after_success_only_records_alipay_status() {
        let paid = order(OrderStatus::Paid, Some(TradeStatus::TradeSuccess));
        let Decision::Apply(change) = decide(&paid, &event(TradeStatus::TradeFinished)) else {
            panic!("TRADE_FINISHED should advance alipay_trade_status");
        };
        assert_eq!(change.status, OrderStatus::Paid);
        assert!(!change.records_payment);
    }

    #[test]
    fn closed_means_closed_before_payment_and_refunded_after() {
        use TradeStatus::*;
        let pending = order(OrderStatus::Pending, None);
        assert_eq!(
            status_after(decide(&pending, &event(TradeClosed))),
            Some(OrderStatus::Closed)
        );
        let paid = order(OrderStatus::Paid, Some(TradeSuccess));
        assert_eq!(
            status_after(decide(&paid, &event(TradeClosed))),
            Some(OrderStatus::Refunded)
        );
        let mut refund_first = event(TradeClosed);
        refund_first.refunded = true;
        assert_eq!(
            status_after(decide(&pending, &refund_first)),
            Some(OrderStatus::Refunded)
        );
    }

    #[test]
    fn waiting_changes_nothing() {
        let pending = order(OrderStatus::Pending, None);
        let decision = decide(&pending, &event(TradeStatus::WaitBuyerPay));
        assert_eq!(decision, Decision::Unchanged(Verdict::Ignored));
    }

    #[test]
    fn inconsistent_events_are_anomalies() {
        let pending = order(OrderStatus::Pending, None);
        let mut wrong_amount = event(TradeStatus::TradeSuccess);
        wrong_amount.total_amount = Amount::from_fen(1).unwrap();
        assert_eq!(
            decide(&pending, &wrong_amount),
            Decision::Anomaly("amount_mismatch")
        );
        let paid = order(OrderStatus::Paid, Some(TradeStatus::TradeSuccess));
        let mut other_trade = event(TradeStatus::TradeSuccess);
        other_trade.trade_no = "other".into();
        assert_eq!(
            decide(&paid, &other_trade),
            Decision::Anomaly("trade_no_mismatch")
        );
        let closed = order(OrderStatus::Closed, None);
        assert_eq!(
            decide(&closed, &event(TradeStatus::TradeSuccess)),
            Decision::Anomaly("paid_after_close")
        );
    }
}
