//! Events: what happened to an order, told to the merchant's own systems. Each is written in the
//! transaction that made it happen (the outbox), so a committed change always has its event and
//! a rolled-back one never does. The body, `{"id", "type", "created_at", "data": {"order",
//! "refund"?, "anomaly"?}}`, is frozen when the change commits: a redelivery sends the same bytes.

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::model::{AnomalyReason, OrderDocument, Refund, Source};

/// What happened. Stored and sent as its dotted name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventType {
    #[serde(rename = "order.paid")]
    OrderPaid,
    #[serde(rename = "order.closed")]
    OrderClosed,
    /// The order is fully refunded.
    #[serde(rename = "order.refunded")]
    OrderRefunded,
    #[serde(rename = "refund.succeeded")]
    RefundSucceeded,
    #[serde(rename = "refund.failed")]
    RefundFailed,
    /// A genuine Alipay message disagrees with our records; the order was left untouched.
    #[serde(rename = "order.anomaly")]
    OrderAnomaly,
}

impl EventType {
    pub const ALL: [Self; 6] = [
        Self::OrderPaid,
        Self::OrderClosed,
        Self::OrderRefunded,
        Self::RefundSucceeded,
        Self::RefundFailed,
        Self::OrderAnomaly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderPaid => "order.paid",
            Self::OrderClosed => "order.closed",
            Self::OrderRefunded => "order.refunded",
            Self::RefundSucceeded => "refund.succeeded",
            Self::RefundFailed => "refund.failed",
            Self::OrderAnomaly => "order.anomaly",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event id: `evt_` and a ULID (milliseconds since the epoch, then 80 random bits, in
/// Crockford base32), so ids are unique across instances and sort by creation time.
pub fn new_event_id(now: OffsetDateTime) -> String {
    let millis = (now.unix_timestamp_nanos() / 1_000_000).clamp(0, (1 << 48) - 1) as u64;
    let random = fastrand::u128(..) & ((1 << 80) - 1);
    let ulid = ulid::Ulid::from_parts(millis, random);
    format!("evt_{ulid}")
}

/// The `anomaly` member of an `order.anomaly` event.
#[derive(Debug, Clone, Serialize)]
pub struct AnomalyData {
    pub reason: AnomalyReason,
    pub source: Source,
    /// The trade status the message carried, as received.
    pub trade_status: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: EventType,
    created_at: &'a str,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    /// The order as `GET /api/orders/{no}` shows it; null for an anomaly about an unknown order.
    order: Option<&'a OrderDocument>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund: Option<&'a Refund>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anomaly: Option<&'a AnomalyData>,
}

/// An event about to be written with the change it describes.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub event_type: EventType,
    pub out_trade_no: Option<String>,
    /// Set when a repeat must not be written again (an anomaly Alipay resends).
    pub dedupe_key: Option<String>,
    /// The JSON body, exactly as the feed returns it and webhooks send it.
    pub payload: String,
    pub created_at: OffsetDateTime,
}

impl NewEvent {
    pub fn new(
        event_type: EventType,
        out_trade_no: Option<&str>,
        order: Option<&OrderDocument>,
        refund: Option<&Refund>,
        anomaly: Option<&AnomalyData>,
        now: OffsetDateTime,
    ) -> Self {
        let id = new_event_id(now);
        let created_at = now.format(&Rfc3339).unwrap_or_default();
        let body = Body {
            id: &id,
            event_type,
            created_at: &created_at,
            data: Data {
                order,
                refund,
                anomaly,
            },
        };
        let payload = serde_json::to_string(&body).expect("an event serializes");
        Self {
            id,
            event_type,
            out_trade_no: out_trade_no.map(str::to_owned),
            dedupe_key: None,
            payload,
            created_at: now,
        }
    }

    /// An `order.anomaly` event, written once per message and reason: Alipay resends a message
    /// we refused, and reconciliation asks again every interval.
    pub fn anomaly(
        out_trade_no: Option<&str>,
        order: Option<&OrderDocument>,
        anomaly: AnomalyData,
        notify_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Self {
        let mut event = Self::new(
            EventType::OrderAnomaly,
            out_trade_no,
            order,
            None,
            Some(&anomaly),
            now,
        );
        let reason = anomaly.reason.as_str();
        event.dedupe_key = Some(match notify_id {
            Some(notify_id) => format!("anomaly:notify:{notify_id}:{reason}"),
            None => format!(
                "anomaly:{}:{}:{reason}",
                anomaly.source,
                out_trade_no.unwrap_or("")
            ),
        });
        event
    }
}

/// An event as the feed returns it.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub id: String,
    pub event_type: String,
    pub out_trade_no: Option<String>,
    pub payload: String,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// An event's delivery to one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub endpoint: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
}

/// One webhook endpoint's interest: every event, or only the listed types.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub endpoint: String,
    pub types: Option<Vec<EventType>>,
}

/// Which endpoints get which events: given to the stores, which write one delivery row per
/// event and interested endpoint in the event's transaction.
#[derive(Debug, Clone, Default)]
pub struct Subscriptions(pub Vec<Subscription>);

impl Subscriptions {
    pub fn none() -> Self {
        Self::default()
    }

    /// The endpoints that want events of this type.
    pub fn endpoints_for(&self, event_type: EventType) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |s| s.types.as_ref().is_none_or(|t| t.contains(&event_type)))
            .map(|s| s.endpoint.as_str())
    }

    /// The (event id, endpoint) delivery rows for `events`.
    pub fn deliveries<'a>(&'a self, events: &'a [NewEvent]) -> Vec<(&'a str, &'a str)> {
        events
            .iter()
            .flat_map(|e| {
                self.endpoints_for(e.event_type)
                    .map(move |endpoint| (e.id.as_str(), endpoint))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_and_are_unique() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_764_800_000).unwrap();
        let ids: Vec<String> = (0..50)
            .map(|i| new_event_id(t0 + time::Duration::milliseconds(i)))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        let same_ms: std::collections::HashSet<String> =
            (0..1000).map(|_| new_event_id(t0)).collect();
        assert_eq!(same_ms.len(), 1000);
        assert!(
            ids[0].starts_with("evt_") && ids[0].len() == 30,
            "{}",
            ids[0]
        );
    }

    #[test]
    fn types_keep_their_names() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
    }

    #[test]
    fn a_filter_picks_endpoints() {
        let subs = Subscriptions(vec![
            Subscription {
                endpoint: "all".into(),
                types: None,
            },
            Subscription {
                endpoint: "paid-only".into(),
                types: Some(vec![EventType::OrderPaid]),
            },
        ]);
        let to = |t| subs.endpoints_for(t).collect::<Vec<_>>();
        assert_eq!(to(EventType::OrderPaid), ["all", "paid-only"]);
        assert_eq!(to(EventType::OrderClosed), ["all"]);
    }
}
