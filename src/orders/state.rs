//! The order state machine: what a verified trade status does to a stored order. Pure, so that
//! both stores and every source (notify, query) share one set of rules.

use super::model::{AnomalyReason, Order, OrderStatus, PaymentEvent, Verdict};
use crate::alipay::notification::TradeStatus;

/// The change to write when an event applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub status: OrderStatus,
    pub alipay_trade_status: TradeStatus,
    /// Record trade_no, buyer_id and paid_at from the event.
    pub records_payment: bool,
    pub closes: bool,
    /// The new cumulative refunded amount, when it grows.
    pub refunded_fen: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    Apply(Change),
    Unchanged(Verdict),
    Anomaly(AnomalyReason),
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
pub(crate) fn decide(order: &Order, event: &PaymentEvent) -> Decision {
    use OrderStatus::*;
    use TradeStatus::*;

    let total = order.total_amount.fen();
    if event.total_amount != order.total_amount {
        return Decision::Anomaly(AnomalyReason::AmountMismatch);
    }
    let theirs = event.trade_no.as_deref();
    if order
        .trade_no
        .as_deref()
        .zip(theirs)
        .is_some_and(|(ours, theirs)| ours != theirs)
    {
        return Decision::Anomaly(AnomalyReason::TradeNoMismatch);
    }
    if event.refund_fee.is_some_and(|fee| fee.fen() > total) {
        return Decision::Anomaly(AnomalyReason::RefundExceedsTotal);
    }
    let known = order.alipay_trade_status;
    let advances = known.is_none_or(|k| rank(event.trade_status) > rank(k));
    let alipay_trade_status = match known {
        Some(known) if !advances => known,
        _ => event.trade_status,
    };
    // Refunds only ever add up: a smaller cumulative refund_fee is an old message.
    let refund_grows = event
        .refund_fee
        .map(|f| f.fen())
        .filter(|fee| *fee > order.refunded_fen);
    let paid_status = |refunded: Option<i64>| {
        if refunded == Some(total) {
            Refunded
        } else {
            Paid
        }
    };
    let change = |status, records_payment, closes, refunded_fen| {
        Decision::Apply(Change {
            status,
            alipay_trade_status,
            records_payment,
            closes,
            refunded_fen,
        })
    };
    match (order.status, event.trade_status) {
        (_, WaitBuyerPay) => Decision::Unchanged(Verdict::Ignored),
        (Pending, TradeSuccess | TradeFinished) => change(
            paid_status(refund_grows),
            true,
            refund_grows == Some(total),
            refund_grows,
        ),
        (Paid, TradeSuccess | TradeFinished) if refund_grows.is_some() || advances => change(
            paid_status(refund_grows),
            false,
            refund_grows == Some(total),
            refund_grows,
        ),
        (Paid | Refunded, TradeSuccess | TradeFinished) => Decision::Unchanged(Verdict::Duplicate),
        (Closed, TradeSuccess | TradeFinished) => Decision::Anomaly(AnomalyReason::PaidAfterClose),
        // A trade closed after payment was fully refunded, even if its payment notice is late.
        (Pending, TradeClosed) if event.reports_refund() || event.paid_at.is_some() => {
            change(Refunded, true, true, Some(total))
        }
        (Pending, TradeClosed) => change(Closed, false, true, None),
        (Paid, TradeClosed) => change(Refunded, false, true, Some(total)),
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
            product: crate::alipay::product::Product::Page,
            status,
            trade_no: alipay.map(|_| "2026112822001".into()),
            buyer_id: None,
            alipay_trade_status: alipay,
            created_at: now,
            expires_at: now,
            refunded_fen: 0,
            paid_at: None,
            closed_at: None,
        }
    }

    fn event(status: TradeStatus) -> PaymentEvent {
        PaymentEvent {
            source: Source::Notify,
            notify_id: Some("n1".into()),
            out_trade_no: "T1".into(),
            trade_no: Some("2026112822001".into()),
            trade_status: status,
            total_amount: Amount::from_fen(1234).unwrap(),
            buyer_id: None,
            paid_at: None,
            refund_fee: None,
            out_request_no: None,
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
        refund_first.refund_fee = Some(Amount::from_fen(1234).unwrap());
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
            Decision::Anomaly(AnomalyReason::AmountMismatch)
        );
        let paid = order(OrderStatus::Paid, Some(TradeStatus::TradeSuccess));
        let mut other_trade = event(TradeStatus::TradeSuccess);
        other_trade.trade_no = Some("other".into());
        assert_eq!(
            decide(&paid, &other_trade),
            Decision::Anomaly(AnomalyReason::TradeNoMismatch)
        );
        let closed = order(OrderStatus::Closed, None);
        assert_eq!(
            decide(&closed, &event(TradeStatus::TradeSuccess)),
            Decision::Anomaly(AnomalyReason::PaidAfterClose)
        );
    }

    #[test]
    fn refunds_add_up_and_a_full_refund_means_refunded() {
        let paid = order(OrderStatus::Paid, Some(TradeStatus::TradeSuccess));
        let mut partial = event(TradeStatus::TradeSuccess);
        partial.refund_fee = Some(Amount::from_fen(234).unwrap());
        let Decision::Apply(change) = decide(&paid, &partial) else {
            panic!("partial refund applies")
        };
        assert_eq!(
            (change.status, change.refunded_fen),
            (OrderStatus::Paid, Some(234))
        );

        let mut partly_refunded = paid.clone();
        partly_refunded.refunded_fen = 234;
        assert_eq!(
            decide(&partly_refunded, &partial),
            Decision::Unchanged(Verdict::Duplicate)
        );
        let mut rest = event(TradeStatus::TradeSuccess);
        rest.refund_fee = Some(Amount::from_fen(1234).unwrap());
        assert_eq!(
            status_after(decide(&partly_refunded, &rest)),
            Some(OrderStatus::Refunded)
        );
        let mut too_much = event(TradeStatus::TradeSuccess);
        too_much.refund_fee = Some(Amount::from_fen(1235).unwrap());
        assert_eq!(
            decide(&paid, &too_much),
            Decision::Anomaly(AnomalyReason::RefundExceedsTotal)
        );
    }

    fn refund(status: TradeStatus, fen: i64) -> PaymentEvent {
        let mut event = event(status);
        event.refund_fee = Some(Amount::from_fen(fen).unwrap());
        event
    }

    #[test]
    fn an_advancing_alipay_status_is_recorded_and_an_older_one_is_not() {
        use TradeStatus::*;
        let paid = order(OrderStatus::Paid, Some(TradeSuccess));
        assert_eq!(
            decide(&paid, &event(TradeFinished)),
            Decision::Apply(Change {
                status: OrderStatus::Paid,
                alipay_trade_status: TradeFinished,
                records_payment: false,
                closes: false,
                refunded_fen: None,
            })
        );
        // A refund notice sent before TRADE_FINISHED but delivered after it: the refund applies,
        // the recorded status stays TRADE_FINISHED.
        let finished = order(OrderStatus::Paid, Some(TradeFinished));
        assert_eq!(
            decide(&finished, &refund(TradeSuccess, 234)),
            Decision::Apply(Change {
                status: OrderStatus::Paid,
                alipay_trade_status: TradeFinished,
                records_payment: false,
                closes: false,
                refunded_fen: Some(234),
            })
        );
    }

    #[test]
    fn a_full_refund_on_payment_closes_the_trade() {
        use TradeStatus::*;
        let pending = order(OrderStatus::Pending, None);
        assert_eq!(
            decide(&pending, &event(TradeSuccess)),
            Decision::Apply(Change {
                status: OrderStatus::Paid,
                alipay_trade_status: TradeSuccess,
                records_payment: true,
                closes: false,
                refunded_fen: None,
            })
        );
        // The payment notice was lost; the first we hear is the full refund.
        assert_eq!(
            decide(&pending, &refund(TradeSuccess, 1234)),
            Decision::Apply(Change {
                status: OrderStatus::Refunded,
                alipay_trade_status: TradeSuccess,
                records_payment: true,
                closes: true,
                refunded_fen: Some(1234),
            })
        );
    }

    #[test]
    fn only_a_full_refund_of_a_paid_order_closes_the_trade() {
        use TradeStatus::*;
        let paid = order(OrderStatus::Paid, Some(TradeSuccess));
        let Decision::Apply(partial) = decide(&paid, &refund(TradeSuccess, 234)) else {
            panic!("partial refund applies")
        };
        assert!(!partial.closes);
        assert_eq!(
            decide(&paid, &refund(TradeSuccess, 1234)),
            Decision::Apply(Change {
                status: OrderStatus::Refunded,
                alipay_trade_status: TradeSuccess,
                records_payment: false,
                closes: true,
                refunded_fen: Some(1234),
            })
        );
    }
}
