//! The story of one order, as ops read it in the CLI (`orders show`) and the console's order
//! page: every message about it with what it did and why, its refund requests, and what webhooks
//! were told, in time order. Built here from what the store keeps, as data rather than text, so
//! that both readers tell the same story and each lays it out its own way.

use serde::Serialize;
use time::OffsetDateTime;

use super::model::{AnomalyReason, AuditRecord, Order, Refund, RefundStatus, Verdict};
use super::outbox::EventDetail;
pub use super::recorded::MessageKind;
use super::recorded::Recorded;
use super::repository::{OrderStore, StoreError};
use crate::alipay::notification::TradeStatus;
use crate::money::{format_fen, Amount};

/// What an entry of the timeline is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Created,
    /// A message recorded the payment.
    Paid,
    /// A message recorded a refund (the refunded amount grew).
    Refunded,
    /// The order closed unpaid.
    Closed,
    /// Alipay's status moved on without changing the order (TRADE_FINISHED).
    Finished,
    /// A message that repeats what we had: nothing changed.
    Duplicate,
    /// A message that changes nothing (WAIT_BUYER_PAY).
    Ignored,
    /// A genuine message that disagrees with our records: the order was left untouched.
    Anomaly,
    RefundRequested,
    /// A refund we did not ask for (made in Alipay's console, say), recorded when Alipay told us.
    RefundRecorded,
    /// Alipay refused a refund request; its amount is free again.
    RefundFailed,
    /// An event about the order was written for webhooks.
    WebhookEvent,
    /// One attempt to deliver an event to a webhook endpoint.
    WebhookAttempt,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Paid => "paid",
            Self::Refunded => "refunded",
            Self::Closed => "closed",
            Self::Finished => "finished",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Anomaly => "anomaly",
            Self::RefundRequested => "refund_requested",
            Self::RefundRecorded => "refund_recorded",
            Self::RefundFailed => "refund_failed",
            Self::WebhookEvent => "webhook_event",
            Self::WebhookAttempt => "webhook_attempt",
        }
    }
}

/// The audit row an entry tells of: open it (by `id`) to see the message as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageRef {
    pub id: i64,
    pub kind: MessageKind,
    pub verdict: Verdict,
}

/// One thing that happened to the order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: EntryKind,
    /// What happened, in a sentence for people.
    pub text: String,
    /// The money the entry moved or disputes: the payment, the refund, the amount in question.
    pub amount: Option<Amount>,
    /// Set for anomalies.
    pub reason: Option<AnomalyReason>,
    /// The message, for entries that tell of one.
    pub message: Option<MessageRef>,
    /// The event, for webhook entries (`alipay-notify events show <id>`).
    pub event_id: Option<String>,
}

/// An order's entries, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Timeline(pub Vec<TimelineEntry>);

/// Everything the store holds about one order, and the timeline told from it.
#[derive(Debug, Clone)]
pub struct OrderHistory {
    pub order: Order,
    pub refunds: Vec<Refund>,
    pub notifications: Vec<AuditRecord>,
    pub events: Vec<EventDetail>,
    pub timeline: Timeline,
}

impl OrderHistory {
    /// Reads the order and all that happened to it; `None` when there is no such order.
    pub async fn read(
        store: &dyn OrderStore,
        out_trade_no: &str,
    ) -> Result<Option<Self>, StoreError> {
        let Some(order) = store.order(out_trade_no).await? else {
            return Ok(None);
        };
        let refunds = store.refunds(out_trade_no).await?;
        let notifications = store.audit_log(out_trade_no).await?;
        let events = store.order_events(out_trade_no).await?;
        let timeline = Timeline::build(&order, &notifications, &refunds, &events);
        Ok(Some(Self {
            order,
            refunds,
            notifications,
            events,
            timeline,
        }))
    }
}

impl Timeline {
    /// Tells the story of `order` from its audit log (oldest first, as the store returns it),
    /// its refunds and its events. Entries at the same instant keep that order: the creation,
    /// then messages, refund requests, events.
    pub fn build(
        order: &Order,
        audit: &[AuditRecord],
        refunds: &[Refund],
        events: &[EventDetail],
    ) -> Self {
        let mut entries = vec![TimelineEntry {
            at: order.created_at,
            kind: EntryKind::Created,
            text: format!("Order created for {}", order.total_amount),
            amount: Some(order.total_amount),
            reason: None,
            message: None,
            event_id: None,
        }];
        let mut story = Story {
            total: order.total_amount,
            paid: false,
            refunded_fen: 0,
        };
        entries.extend(audit.iter().map(|record| story.message(record)));
        entries.extend(refunds.iter().flat_map(refund_entries));
        entries.extend(events.iter().flat_map(event_entries));
        entries.sort_by_key(|entry| entry.at);
        Self(entries)
    }

    pub fn entries(&self) -> &[TimelineEntry] {
        &self.0
    }
}

/// The order as the messages so far have left it: a refund reports the cumulative amount, and
/// the entry says by how much it grew.
struct Story {
    total: Amount,
    paid: bool,
    refunded_fen: i64,
}

impl Story {
    fn message(&mut self, record: &AuditRecord) -> TimelineEntry {
        let recorded = Recorded::read(record);
        let status = record.trade_status.as_deref().unwrap_or("no status");
        let via = recorded.kind.noun();
        let (kind, text, amount) = match record.verdict {
            Verdict::Anomaly => {
                let reason = record
                    .reason
                    .unwrap_or(AnomalyReason::IncompleteNotification);
                let (why, amount) = self.anomaly(reason, &recorded);
                (
                    EntryKind::Anomaly,
                    format!("Anomaly: {why} — order untouched ({via})"),
                    amount,
                )
            }
            Verdict::Ignored => (
                EntryKind::Ignored,
                format!("The buyer has not paid yet ({status}), nothing changed ({via})"),
                None,
            ),
            Verdict::Duplicate => (
                EntryKind::Duplicate,
                duplicate(&recorded, status),
                recorded.refund_fee,
            ),
            Verdict::Applied => self.applied(&recorded, status),
        };
        TimelineEntry {
            at: record.received_at,
            kind,
            text,
            amount,
            reason: record.reason,
            message: Some(MessageRef {
                id: record.id,
                kind: recorded.kind,
                verdict: record.verdict,
            }),
            event_id: None,
        }
    }

    /// Why the message is an anomaly, with the figures when the message states them.
    fn anomaly(&self, reason: AnomalyReason, recorded: &Recorded) -> (String, Option<Amount>) {
        match (reason, recorded.total, recorded.refund_fee) {
            (AnomalyReason::AmountMismatch, Some(theirs), _) => (
                format!("amount {theirs} differs from the order's {}", self.total),
                Some(theirs),
            ),
            (AnomalyReason::RefundExceedsTotal, _, Some(fee)) => (
                format!("refunded amount {fee} exceeds the order's {}", self.total),
                Some(fee),
            ),
            _ => (reason.explain().to_owned(), None),
        }
    }

    /// What an applied message changed, following the state machine's transitions.
    fn applied(
        &mut self,
        recorded: &Recorded,
        status: &str,
    ) -> (EntryKind, String, Option<Amount>) {
        let via = recorded.kind.noun();
        let total = self.total;
        let closed = recorded.trade_status == Some(TradeStatus::TradeClosed);
        let refund_to = match recorded.refund_fee {
            Some(fee) => Some(fee.fen()),
            // A trade closed after payment was fully refunded.
            None if closed && self.paid => Some(total.fen()),
            None => None,
        };
        if let Some(refunded) = refund_to.filter(|r| *r > self.refunded_fen) {
            let grew = Amount::from_fen(refunded - self.refunded_fen).ok();
            let refund = grew.map_or_else(|| format_fen(refunded), |a| a.to_string());
            let full = if refunded >= total.fen() {
                ": the order is fully refunded"
            } else {
                ""
            };
            let text = if self.paid {
                format!("Refund of {refund} applied ({via}){full}")
            } else {
                format!("Payment of {total} and refund of {refund} applied ({via}){full}")
            };
            self.paid = true;
            self.refunded_fen = refunded;
            return (EntryKind::Refunded, text, grew);
        }
        if closed || recorded.no_trade {
            let text = if recorded.no_trade {
                format!("Alipay has no trade for the order: nobody paid, order closed ({via})")
            } else {
                format!("Order closed: nobody paid ({via})")
            };
            return (EntryKind::Closed, text, None);
        }
        if !self.paid {
            self.paid = true;
            let text = format!("Payment of {total} applied ({via})");
            return (EntryKind::Paid, text, Some(total));
        }
        let text = if recorded.trade_status == Some(TradeStatus::TradeFinished) {
            format!("Alipay finished the trade ({status}): it can no longer be refunded ({via})")
        } else {
            format!("Alipay's status {status} recorded ({via})")
        };
        (EntryKind::Finished, text, None)
    }
}

/// A message that repeats what we had.
fn duplicate(recorded: &Recorded, status: &str) -> String {
    match (recorded.kind, recorded.refund_fee) {
        (MessageKind::QueryAnswer, _) => {
            format!("Query answer ({status}) agrees with the order, nothing changed")
        }
        (kind, Some(fee)) if kind.is_refund() => {
            let noun = if kind == MessageKind::RefundAnswer {
                "refund answer"
            } else {
                "refund notification"
            };
            format!("Duplicate {noun} ({fee} refunded in all), nothing changed")
        }
        (kind, _) => format!("Duplicate {} ({status}), nothing changed", kind.noun()),
    }
}

/// A refund request (or a refund made elsewhere, as recorded), and its refusal if Alipay refused
/// it. (A success is told by the message that applied it.)
fn refund_entries(refund: &Refund) -> Vec<TimelineEntry> {
    let entry = |at, kind, text| TimelineEntry {
        at,
        kind,
        text,
        amount: Some(refund.amount),
        reason: None,
        message: None,
        event_id: None,
    };
    let no = &refund.out_request_no;
    let why = refund
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    let waiting = match refund.status {
        RefundStatus::Pending => ", waiting for Alipay's answer",
        _ => "",
    };
    // A refund made elsewhere is written already succeeded, by the message that reported it; a
    // request of ours is written pending and settled later.
    let made_elsewhere = refund.status == RefundStatus::Succeeded
        && refund.created_at == refund.updated_at
        && refund.reason.is_none();
    let mut entries = vec![if made_elsewhere {
        entry(
            refund.created_at,
            EntryKind::RefundRecorded,
            format!(
                "Refund {no} of {} recorded as Alipay reported it (not requested through this \
                 service)",
                refund.amount
            ),
        )
    } else {
        entry(
            refund.created_at,
            EntryKind::RefundRequested,
            format!("Refund {no} of {} requested{why}{waiting}", refund.amount),
        )
    }];
    if refund.status == RefundStatus::Failed {
        entries.push(entry(
            refund.updated_at,
            EntryKind::RefundFailed,
            format!("Refund {no} of {} refused by Alipay", refund.amount),
        ));
    }
    entries
}

/// An event written for webhooks, and each attempt to deliver it.
fn event_entries(detail: &EventDetail) -> Vec<TimelineEntry> {
    let event = &detail.event;
    let entry = |at, kind, text| TimelineEntry {
        at,
        kind,
        text,
        amount: None,
        reason: None,
        message: None,
        event_id: Some(event.id.clone()),
    };
    let told: Vec<String> = detail
        .deliveries
        .iter()
        .map(|d| format!("{} {}", d.status.as_str(), d.endpoint))
        .collect();
    let told = if told.is_empty() {
        "no webhook endpoint wants it".to_owned()
    } else {
        told.join(", ")
    };
    let mut entries = vec![entry(
        event.created_at,
        EntryKind::WebhookEvent,
        format!("Event {} {} written: {told}", event.event_type, event.id),
    )];
    entries.extend(detail.attempts.iter().map(|a| {
        let answer = match (&a.error, a.status_code) {
            (Some(error), _) => error.clone(),
            (None, Some(code)) => format!("HTTP {code}"),
            (None, None) => "no answer".to_owned(),
        };
        entry(
            a.attempted_at,
            EntryKind::WebhookAttempt,
            format!(
                "Webhook {} to {}: {answer} in {} ms",
                event.event_type, a.endpoint, a.latency_ms
            ),
        )
    }));
    entries
}

#[cfg(test)]
mod tests;
