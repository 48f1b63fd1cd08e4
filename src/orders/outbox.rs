//! The outbox's read side: the feed in commit order, and webhook deliveries leased, attempted and
//! recorded. (Events are written by the order stores inside the transactions that change orders.)

use async_trait::async_trait;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::watch;

pub(super) use super::events::{Delivery, DeliveryStatus, EventType, StoredEvent};
use super::repository::StoreError;

/// A delivery leased to this instance: send `payload` to `endpoint`.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub event_id: String,
    pub endpoint: String,
    pub payload: String,
    /// Attempts made before this one, since the event was written or last redelivered.
    pub attempts: i64,
}

/// What an attempt found, and what becomes of the delivery.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub event_id: String,
    pub endpoint: String,
    pub attempted_at: OffsetDateTime,
    pub latency_ms: i64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    /// The first bytes of the endpoint's answer (at most 4 KiB), as text.
    pub response_body: Option<String>,
    /// `None`: delivered. `Some(Some(at))`: try again at `at`. `Some(None)`: give up (failed).
    pub retry: Option<Option<OffsetDateTime>>,
}

impl Attempt {
    /// What the attempt makes of its delivery, and when the delivery is next due.
    pub(super) fn outcome(&self) -> (DeliveryStatus, OffsetDateTime) {
        match self.retry {
            None => (DeliveryStatus::Delivered, self.attempted_at),
            Some(Some(at)) => (DeliveryStatus::Pending, at),
            Some(None) => (DeliveryStatus::Failed, self.attempted_at),
        }
    }
}

/// One recorded attempt, as `GET /api/events/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub endpoint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub attempted_at: OffsetDateTime,
    pub latency_ms: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub response_body: Option<String>,
}

/// An event with its deliveries and every attempt.
#[derive(Debug, Clone)]
pub struct EventDetail {
    pub event: StoredEvent,
    pub deliveries: Vec<Delivery>,
    pub attempts: Vec<AttemptRecord>,
}

/// Deliveries not yet made, for the metrics and alerts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backlog {
    pub pending: i64,
    /// When the oldest event still waiting for a delivery was written.
    pub oldest: Option<OffsetDateTime>,
}

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Up to `limit` events committed after the event `after` (from the first when `None`), in
    /// commit order: a reader that keeps the last id as its cursor misses none. `Ok(None)` when
    /// `after` names no event.
    async fn events_after(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<StoredEvent>>, StoreError>;
    async fn event(&self, id: &str) -> Result<Option<EventDetail>, StoreError>;
    /// Every event written about an order, oldest first, with its deliveries and attempts: the
    /// webhook side of the order's timeline.
    async fn order_events(&self, out_trade_no: &str) -> Result<Vec<EventDetail>, StoreError>;
    /// Leases, until `lease_until`, up to `limit` deliveries to `endpoint` that are due, each the
    /// oldest undelivered event of its order for that endpoint (so an order's events arrive in
    /// the order they happened). Another instance claiming at once gets others.
    async fn claim_deliveries(
        &self,
        endpoint: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError>;
    /// Records attempts and what becomes of their deliveries, in one transaction.
    async fn record_attempts(&self, attempts: &[Attempt]) -> Result<(), StoreError>;
    /// Queues the event again for each endpoint, now, whatever became of earlier deliveries.
    /// `false` when there is no such event.
    async fn redeliver(
        &self,
        event_id: &str,
        endpoints: &[String],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    async fn backlog(&self) -> Result<Backlog, StoreError>;
    /// Whether an event of this type about the order has been delivered to some endpoint (the
    /// return page says so once the shop has been told of the payment).
    async fn delivered(
        &self,
        out_trade_no: &str,
        event_type: EventType,
    ) -> Result<bool, StoreError>;
    /// Changes whenever this process commits events: wakes the dispatcher and long polls at
    /// once (other instances' events are found by polling).
    fn events_written(&self) -> watch::Receiver<u64>;
    /// Payment events this process is applying now: deliveries yield to them.
    fn payments_in_flight(&self) -> usize;
}

/// The deliveries to endpoint `$1` due at `$2` (at most `$4`), each the oldest pending one of its
/// order there, as the key pairs both backends lease. A macro so that their statements can be
/// `concat!`ed at compile time. The oldest-per-order test is a scalar subquery, which runs per
/// candidate through the `webhook_delivery_order` index; as `not exists` over a join to `event`,
/// Postgres planned it quadratic in the backlog on a table without statistics (13.5 s for 3,000
/// pending deliveries).
macro_rules! due_deliveries {
    () => {
        "select d1.event_id, d1.endpoint from webhook_delivery d1 \
         where d1.endpoint = $1 and d1.status = 'pending' and d1.next_attempt_at <= $2 \
           and (d1.lease_until is null or d1.lease_until <= $2) \
           and (d1.out_trade_no is null or d1.event_seq = (select min(d2.event_seq) \
             from webhook_delivery d2 where d2.endpoint = $1 and d2.status = 'pending' \
               and d2.out_trade_no = d1.out_trade_no)) \
         order by d1.event_seq limit $4"
    };
}
pub(super) use due_deliveries;

/// An event row as both databases return it.
#[derive(sqlx::FromRow)]
pub(super) struct EventRow {
    id: String,
    #[sqlx(rename = "type")]
    event_type: String,
    out_trade_no: Option<String>,
    payload: String,
    created_at: OffsetDateTime,
}

impl From<EventRow> for StoredEvent {
    fn from(row: EventRow) -> Self {
        Self {
            id: row.id,
            event_type: row.event_type,
            out_trade_no: row.out_trade_no,
            payload: row.payload,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct DeliveryRow {
    endpoint: String,
    status: String,
    attempts: i64,
    next_attempt_at: OffsetDateTime,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = StoreError;
    fn try_from(row: DeliveryRow) -> Result<Self, StoreError> {
        let status = DeliveryStatus::parse(&row.status)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery status {:?}", row.status)))?;
        Ok(Self {
            next_attempt_at: (status == DeliveryStatus::Pending).then_some(row.next_attempt_at),
            endpoint: row.endpoint,
            status,
            attempts: row.attempts,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AttemptRow {
    endpoint: String,
    attempted_at: OffsetDateTime,
    latency_ms: i64,
    status_code: Option<i64>,
    error: Option<String>,
    response_body: Option<String>,
}

impl From<AttemptRow> for AttemptRecord {
    fn from(row: AttemptRow) -> Self {
        Self {
            endpoint: row.endpoint,
            attempted_at: row.attempted_at,
            latency_ms: row.latency_ms,
            status_code: row.status_code,
            error: row.error,
            response_body: row.response_body,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct ClaimedRow {
    event_id: String,
    endpoint: String,
    payload: String,
    attempts: i64,
}

impl From<ClaimedRow> for Claimed {
    fn from(row: ClaimedRow) -> Self {
        Self {
            event_id: row.event_id,
            endpoint: row.endpoint,
            payload: row.payload,
            attempts: row.attempts,
        }
    }
}

/// The columns `EventRow` reads.
pub(super) const EVENT_COLUMNS: &str = "id, type, out_trade_no, payload, created_at";

/// The outbox statements both stores run alike (see `shared_statements!` for why a macro):
/// writing events inside a caller's transaction, and the read side that is not about commit
/// order or locking, which each backend writes itself.
macro_rules! outbox_statements {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Writes events and their deliveries one by one inside `tx` (the rare paths: a
            /// failed refund, an anomaly found before the order was read). Whether any was new.
            async fn insert_events(
                tx: &mut sqlx::Transaction<'_, $db>,
                events: &[NewEvent],
                subscriptions: &Subscriptions,
            ) -> Result<bool, StoreError> {
                let mut written = false;
                for event in events {
                    let inserted = sqlx::query(
                        "insert into event (id, type, out_trade_no, dedupe_key, payload, created_at) \
                         values ($1, $2, $3, $4, $5, $6) on conflict (dedupe_key) do nothing",
                    )
                    .bind(&event.id)
                    .bind(event.event_type.as_str())
                    .bind(&event.out_trade_no)
                    .bind(&event.dedupe_key)
                    .bind(&event.payload)
                    .bind(event.created_at)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                    if inserted == 0 {
                        continue;
                    }
                    written = true;
                    for endpoint in subscriptions.endpoints_for(event.event_type) {
                        sqlx::query(
                            "insert into webhook_delivery (event_id, event_seq, endpoint, \
                             out_trade_no, status, next_attempt_at, updated_at) \
                             select id, seq, $2, $3, 'pending', $4, $4 from event where id = $1",
                        )
                        .bind(&event.id)
                        .bind(endpoint)
                        .bind(&event.out_trade_no)
                        .bind(event.created_at)
                        .execute(&mut **tx)
                        .await?;
                    }
                }
                Ok(written)
            }

            /// The order as `GET /api/orders/{no}` shows it, read inside `tx`.
            async fn document_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                out_trade_no: Option<&str>,
            ) -> Result<Option<OrderDocument>, StoreError> {
                let Some(out_trade_no) = out_trade_no else {
                    return Ok(None);
                };
                let Some(order) = Self::read_order(&mut **tx, out_trade_no).await? else {
                    return Ok(None);
                };
                let refunds = Self::refunds_in(&mut **tx, out_trade_no).await?;
                Ok(Some(OrderDocument { order, refunds }))
            }

            /// An anomaly found before the order was read: its audit row and its event, once.
            async fn write_anomaly(
                tx: &mut sqlx::Transaction<'_, $db>,
                entry: &AuditEntry,
                reason: AnomalyReason,
                subscriptions: &Subscriptions,
            ) -> Result<bool, StoreError> {
                Self::insert_audit(tx, entry, Verdict::Anomaly, Some(reason)).await?;
                let out_trade_no = entry.out_trade_no.as_deref();
                let document = Self::document_in(tx, out_trade_no).await?;
                let anomaly = AnomalyData {
                    reason,
                    source: entry.source,
                    trade_status: entry.trade_status.clone(),
                };
                let event = NewEvent::anomaly(
                    out_trade_no.filter(|_| document.is_some()),
                    document.as_ref(),
                    anomaly,
                    entry.notify_id.as_deref(),
                    OffsetDateTime::now_utc(),
                );
                Self::insert_events(tx, &[event], subscriptions).await
            }

            /// Marks a pending refund failed and writes `refund.failed`; whether it was pending.
            async fn write_refund_failed(
                tx: &mut sqlx::Transaction<'_, $db>,
                (out_trade_no, out_request_no): (&str, &str),
                at: OffsetDateTime,
                subscriptions: &Subscriptions,
            ) -> Result<bool, StoreError> {
                let failed = sqlx::query(
                    "update refund set status = 'failed', updated_at = $3 \
                     where out_trade_no = $1 and out_request_no = $2 and status = 'pending'",
                )
                .bind(out_trade_no)
                .bind(out_request_no)
                .bind(at)
                .execute(&mut **tx)
                .await?
                .rows_affected();
                if failed == 0 {
                    return Ok(false);
                }
                let document = Self::document_in(tx, Some(out_trade_no)).await?;
                let refund = document.as_ref().and_then(|d| {
                    d.refunds.iter().find(|r| r.out_request_no == out_request_no)
                });
                let event = NewEvent::new(
                    EventType::RefundFailed,
                    Some(out_trade_no),
                    document.as_ref(),
                    refund,
                    None,
                    at,
                );
                Self::insert_events(tx, &[event], subscriptions).await
            }

            async fn event_detail(
                pool: &sqlx::Pool<$db>,
                id: &str,
            ) -> Result<Option<EventDetail>, StoreError> {
                let sql = format!("select {EVENT_COLUMNS} from event where id = $1");
                let Some(row): Option<EventRow> =
                    sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
                else {
                    return Ok(None);
                };
                Ok(Some(Self::with_deliveries(pool, row.into()).await?))
            }

            /// Every event about the order, oldest first, each with its deliveries and attempts
            /// (a handful per order: one query each is cheaper to read than a join to split).
            async fn events_of_order(
                pool: &sqlx::Pool<$db>,
                out_trade_no: &str,
            ) -> Result<Vec<EventDetail>, StoreError> {
                let sql =
                    format!("select {EVENT_COLUMNS} from event where out_trade_no = $1 order by seq");
                let rows: Vec<EventRow> =
                    sqlx::query_as(&sql).bind(out_trade_no).fetch_all(pool).await?;
                let mut details = Vec::with_capacity(rows.len());
                for row in rows {
                    details.push(Self::with_deliveries(pool, row.into()).await?);
                }
                Ok(details)
            }

            async fn with_deliveries(
                pool: &sqlx::Pool<$db>,
                event: StoredEvent,
            ) -> Result<EventDetail, StoreError> {
                let deliveries: Vec<DeliveryRow> = sqlx::query_as(
                    "select endpoint, status, cast(attempts as bigint) as attempts, \
                     next_attempt_at from webhook_delivery where event_id = $1 order by endpoint",
                )
                .bind(&event.id)
                .fetch_all(pool)
                .await?;
                let attempts: Vec<AttemptRow> = sqlx::query_as(
                    "select endpoint, attempted_at, latency_ms, cast(status_code as bigint) \
                     as status_code, error, response_body from webhook_attempt \
                     where event_id = $1 order by id",
                )
                .bind(&event.id)
                .fetch_all(pool)
                .await?;
                Ok(EventDetail {
                    event,
                    deliveries: deliveries
                        .into_iter()
                        .map(Delivery::try_from)
                        .collect::<Result<_, _>>()?,
                    attempts: attempts.into_iter().map(AttemptRecord::from).collect(),
                })
            }

            async fn queue_again(
                tx: &mut sqlx::Transaction<'_, $db>,
                event_id: &str,
                endpoints: &[String],
                now: OffsetDateTime,
            ) -> Result<bool, StoreError> {
                let found: Option<(Option<String>, i64)> =
                    sqlx::query_as("select out_trade_no, seq from event where id = $1")
                        .bind(event_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                let Some((out_trade_no, seq)) = found else {
                    return Ok(false);
                };
                for endpoint in endpoints {
                    sqlx::query(
                        "insert into webhook_delivery (event_id, event_seq, endpoint, out_trade_no, \
                         status, next_attempt_at, updated_at) \
                         values ($1, $5, $2, $3, 'pending', $4, $4) \
                         on conflict (event_id, endpoint) do update set status = 'pending', \
                         attempts = 0, next_attempt_at = $4, lease_until = null, updated_at = $4",
                    )
                    .bind(event_id)
                    .bind(endpoint)
                    .bind(&out_trade_no)
                    .bind(now)
                    .bind(seq)
                    .execute(&mut **tx)
                    .await?;
                }
                Ok(true)
            }

            async fn delivered_to_any(
                pool: &sqlx::Pool<$db>,
                out_trade_no: &str,
                event_type: EventType,
            ) -> Result<bool, StoreError> {
                let found: Option<(i32,)> = sqlx::query_as(
                    "select 1 from event e join webhook_delivery d on d.event_id = e.id \
                     where e.out_trade_no = $1 and e.type = $2 and d.status = 'delivered' \
                     limit 1",
                )
                .bind(out_trade_no)
                .bind(event_type.as_str())
                .fetch_optional(pool)
                .await?;
                Ok(found.is_some())
            }

            async fn backlog_of(pool: &sqlx::Pool<$db>) -> Result<Backlog, StoreError> {
                let (pending, oldest): (i64, Option<OffsetDateTime>) = sqlx::query_as(
                    "select cast(count(*) as bigint), min(e.created_at) from webhook_delivery d \
                     join event e on e.id = d.event_id where d.status = 'pending'",
                )
                .fetch_one(pool)
                .await?;
                Ok(Backlog { pending, oldest })
            }
        }
    };
}

pub(super) use outbox_statements;
