//! The pure planner beside the state machine: what a batch of events writes, decided from the
//! orders they name, and whether a refund may be requested. No I/O: a store locks or reads the
//! orders, asks the planner, and writes what it says.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::events::{AnomalyData, EventType, NewEvent};
use super::model::{
    AnomalyReason, NewRefund, Order, OrderDocument, OrderStatus, Outcome, PaymentEvent, Refund,
    Verdict,
};
use super::repository::{RefundRefused, RefundStart};
use super::state::{decide, Change, Decision};

/// Checks a refund request against the locked order and its committed refunds.
pub(super) fn refund_allowed(
    order: Option<&Order>,
    existing: Option<Refund>,
    committed_fen: i64,
    request: &NewRefund,
) -> Result<Option<RefundStart>, RefundRefused> {
    let order = order.ok_or(RefundRefused::NotFound)?;
    if let Some(existing) = existing {
        return if existing.amount == request.amount {
            Ok(Some(RefundStart::Existing(existing)))
        } else {
            Err(RefundRefused::RequestConflict)
        };
    }
    if order.status != OrderStatus::Paid {
        return Err(RefundRefused::NotPaid(order.status));
    }
    let refundable_fen = order.total_amount.fen() - committed_fen.max(order.refunded_fen);
    if request.amount.fen() > refundable_fen {
        return Err(RefundRefused::Exceeds { refundable_fen });
    }
    Ok(None)
}

/// The refund row an applied event settles, with the amount to record if it is not ours.
pub(super) fn settled_refund<'a>(
    plan: &Plan,
    event: &'a PaymentEvent,
    before_fen: i64,
) -> Option<(&'a str, i64)> {
    let after_fen = plan.change.as_ref()?.refunded_fen?;
    let out_request_no = event.out_request_no.as_deref()?;
    Some((out_request_no, after_fen - before_fen))
}

/// What a store must write for an event, decided from the locked order row.
pub(super) struct Plan {
    pub outcome: Outcome,
    pub change: Option<Change>,
}

impl Plan {
    pub fn new(order: Option<Order>, event: &PaymentEvent) -> Self {
        let Some(mut order) = order else {
            return Self::unchanged(Verdict::Anomaly, Some(AnomalyReason::UnknownOrder), None);
        };
        match decide(&order, event) {
            Decision::Unchanged(verdict) => Self::unchanged(verdict, None, Some(order)),
            Decision::Anomaly(reason) => {
                Self::unchanged(Verdict::Anomaly, Some(reason), Some(order))
            }
            Decision::Apply(change) => {
                order.status = change.status;
                if let Some(refunded_fen) = change.refunded_fen {
                    order.refunded_fen = refunded_fen;
                }
                order.alipay_trade_status = Some(change.alipay_trade_status);
                if change.records_payment {
                    if order.trade_no.is_none() {
                        order.trade_no = event.trade_no.clone();
                    }
                    if order.buyer_id.is_none() {
                        order.buyer_id = event.buyer_id.clone();
                    }
                    order
                        .paid_at
                        .get_or_insert(event.paid_at.unwrap_or(event.received_at));
                }
                if change.closes {
                    order.closed_at.get_or_insert(event.received_at);
                }
                let outcome = Outcome {
                    verdict: Verdict::Applied,
                    reason: None,
                    order: Some(order),
                };
                Self {
                    outcome,
                    change: Some(change),
                }
            }
        }
    }

    fn unchanged(verdict: Verdict, reason: Option<AnomalyReason>, order: Option<Order>) -> Self {
        Self {
            outcome: Outcome {
                verdict,
                reason,
                order,
            },
            change: None,
        }
    }

    /// The order as it must be stored after the change.
    pub fn order(&self) -> Option<&Order> {
        self.outcome.order.as_ref()
    }
}

/// What a batch of events writes, decided in arrival order from the orders they name (locked, or
/// read by the only writer): each event sees the effect of the ones before it.
pub(super) struct BatchPlan<'a> {
    pub outcomes: Vec<Outcome>,
    /// The changed orders, each once, as they must be stored after the batch.
    pub changed: Vec<Order>,
    /// Refund rows to settle: (out_trade_no, out_request_no, amount by which the refund grew).
    pub settled: Vec<(&'a str, &'a str, i64)>,
    /// The events to write, in order: (index of the payment event, what it announces).
    pub announced: Vec<(usize, EventType)>,
    /// Orders whose events need their refunds read once the batch's refunds are settled. A
    /// pending order has none, so paying one (the common case) costs no read.
    pub with_refunds: Vec<&'a str>,
}

impl<'a> BatchPlan<'a> {
    pub fn new(mut orders: HashMap<String, Order>, events: &'a [PaymentEvent]) -> Self {
        let mut changed = Vec::new();
        let mut settled = Vec::new();
        let mut outcomes = Vec::with_capacity(events.len());
        let mut announced = Vec::new();
        let mut with_refunds = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let order = orders.get(&event.out_trade_no).cloned();
            let before = order.as_ref().map(|o| (o.status, o.refunded_fen));
            let refunded_before = order.as_ref().map_or(0, |o| o.refunded_fen);
            let plan = Plan::new(order, event);
            let settles = settled_refund(&plan, event, refunded_before);
            let types = announce(before.map(|(status, _)| status), &plan, settles.is_some());
            if !types.is_empty()
                && (settles.is_some() || before.is_some_and(|(s, _)| s != OrderStatus::Pending))
                && !with_refunds.contains(&event.out_trade_no.as_str())
            {
                with_refunds.push(event.out_trade_no.as_str());
            }
            announced.extend(types.into_iter().map(|t| (index, t)));
            if let (Some(_), Some(order)) = (&plan.change, plan.order()) {
                if let Some((out_request_no, grew_by)) = settles {
                    settled.push((event.out_trade_no.as_str(), out_request_no, grew_by));
                }
                if !changed.contains(&event.out_trade_no) {
                    changed.push(event.out_trade_no.clone());
                }
                orders.insert(event.out_trade_no.clone(), order.clone());
            }
            outcomes.push(plan.outcome);
        }
        let changed = changed
            .into_iter()
            .filter_map(|no| orders.remove(&no))
            .collect();
        Self {
            outcomes,
            changed,
            settled,
            announced,
            with_refunds,
        }
    }

    /// The events this batch writes, each carrying its order as it stood after the payment
    /// event that caused it, with `refunds` (read after the batch's refunds were settled).
    pub fn new_events(
        &self,
        events: &[PaymentEvent],
        refunds: &HashMap<String, Vec<Refund>>,
        now: OffsetDateTime,
    ) -> Vec<NewEvent> {
        self.announced
            .iter()
            .map(|&(index, event_type)| {
                let event = &events[index];
                let outcome = &self.outcomes[index];
                let refunds = refunds.get(&event.out_trade_no);
                let document = outcome.order.clone().map(|order| OrderDocument {
                    order,
                    refunds: refunds.cloned().unwrap_or_default(),
                });
                let no = Some(event.out_trade_no.as_str());
                if event_type == EventType::OrderAnomaly {
                    let anomaly = AnomalyData {
                        reason: outcome.reason.unwrap_or(AnomalyReason::UnknownOrder),
                        source: event.source,
                        trade_status: Some(event.trade_status.as_str().to_owned()),
                    };
                    let notify_id = event.notify_id.as_deref();
                    return NewEvent::anomaly(no, document.as_ref(), anomaly, notify_id, now);
                }
                let refund = refunds
                    .filter(|_| event_type == EventType::RefundSucceeded)
                    .and_then(|all| {
                        all.iter()
                            .find(|r| Some(&r.out_request_no) == event.out_request_no.as_ref())
                    });
                NewEvent::new(event_type, no, document.as_ref(), refund, None, now)
            })
            .collect()
    }

    /// The audit rows, one per event, in arrival order: (entry, verdict, reason).
    pub fn audit(
        &self,
        events: &'a [PaymentEvent],
    ) -> impl Iterator<Item = (&'a PaymentEvent, &'static str, Option<&'static str>)> + '_ {
        events.iter().zip(&self.outcomes).map(|(event, outcome)| {
            let reason = outcome.reason.map(AnomalyReason::as_str);
            (event, outcome.verdict.as_str(), reason)
        })
    }
}

/// What an event announces to the merchant, from the order's status before it and what the plan
/// decided: a payment, a close, a settled refund, a full refund, or an anomaly. Duplicates and
/// ignored statuses announce nothing, and neither does a change only of Alipay's own status
/// (`TRADE_FINISHED` after `TRADE_SUCCESS`).
pub(super) fn announce(
    before: Option<OrderStatus>,
    plan: &Plan,
    settles_refund: bool,
) -> Vec<EventType> {
    use OrderStatus::*;
    match plan.outcome.verdict {
        Verdict::Anomaly => vec![EventType::OrderAnomaly],
        Verdict::Applied => {
            let (Some(before), Some(after)) = (before, plan.order().map(|o| o.status)) else {
                return Vec::new();
            };
            let mut types = Vec::new();
            if before == Pending && matches!(after, Paid | Refunded) {
                types.push(EventType::OrderPaid);
            }
            if before == Pending && after == Closed {
                types.push(EventType::OrderClosed);
            }
            if settles_refund {
                types.push(EventType::RefundSucceeded);
            }
            if before != Refunded && after == Refunded {
                types.push(EventType::OrderRefunded);
            }
            types
        }
        Verdict::Duplicate | Verdict::Ignored => Vec::new(),
    }
}

/// The distinct order numbers a batch names, sorted: the order in which Postgres locks them, so
/// that two writers locking overlapping batches cannot deadlock.
pub(super) fn batch_keys(events: &[PaymentEvent]) -> Vec<&str> {
    let mut keys: Vec<&str> = events.iter().map(|e| e.out_trade_no.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}
