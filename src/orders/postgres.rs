//! The Postgres order store, for production and for several instances sharing one database.
//! Concurrent events for one order serialise on the order row (`select … for update`); events
//! are applied in batches, a few statements and one commit for all that arrived together.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres};
use time::OffsetDateTime;
use tokio::sync::watch;

use super::batch::{ApplyBatch, Batcher};
use super::events::{AnomalyData, EventType, NewEvent, StoredEvent, Subscriptions};

use super::actions::ConsoleAction;
use super::model::{
    AnomalyReason, AuditRecord, NewOrder, NewRefund, Order, OrderDocument, OrderStatus, Outcome,
    PaymentEvent, Refund, Verdict,
};
use super::outbox::{
    due_deliveries, outbox_statements, Attempt, AttemptRecord, AttemptRow, Backlog, Claimed,
    ClaimedRow, Delivery, DeliveryRow, EventDetail, EventRow, EventStore, EVENT_COLUMNS,
};
use super::plan::{batch_keys, refund_allowed, BatchPlan};
use super::query::{AmountPath, Cursor, OrderFilter, OrderPage};
use super::repository::*;
use super::rows::{
    by_number, order_columns, ActionRow, AnomalyRow, AuditRow, OrderRow, RefundRow, SELECT_ORDER,
};
use super::shared::shared_statements;
use super::stats::{stats_statements, verdict_count, Anomaly, Review, StatusCounts, VerdictCount};

stats_statements!(PgStore, Postgres);

impl PgStore {
    async fn verdicts_by_hour(
        pool: &PgPool,
        since: OffsetDateTime,
    ) -> Result<Vec<VerdictCount>, StoreError> {
        let rows: Vec<(OffsetDateTime, String, i64)> = sqlx::query_as(
            "select date_trunc('hour', received_at), verdict, count(*) from notification \
             where received_at >= $1 group by 1, 2 order by 1",
        )
        .bind(since)
        .fetch_all(pool)
        .await?;
        rows.into_iter()
            .map(|(hour, verdict, count)| verdict_count(hour, &verdict, count))
            .collect()
    }

    /// Postgres compares times as times.
    fn time_bound(at: OffsetDateTime) -> Result<OffsetDateTime, StoreError> {
        Ok(at)
    }
}
shared_statements!(PgStore, Postgres, PgConnection);
outbox_statements!(PgStore, Postgres);

pub(crate) struct PgStore {
    pool: PgPool,
    batcher: Batcher,
    subscriptions: Arc<Subscriptions>,
    events_written: Arc<watch::Sender<u64>>,
}

/// Writers working on separate batches: one collects and locks while another waits for its
/// commit to be flushed.
const WRITERS: usize = 2;
const MAX_BATCH: usize = 128;

impl PgStore {
    /// Connects once directly first: the pool would report any failure as "pool timed out",
    /// five seconds later, without saying where it tried or what the server answered.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        subscriptions: Subscriptions,
    ) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?;
        let target = format!(
            "Postgres at {}:{} (database {})",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(options.get_username())
        );
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| StoreError::ConnectTimeout(target.clone()))?
            .map_err(|e| StoreError::Connect(target.clone(), e))?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Connect(target, e))?;
        let subscriptions = Arc::new(subscriptions);
        let events_written = Arc::new(watch::Sender::new(0));
        let writer = Arc::new(Writer {
            pool: pool.clone(),
            idle: Mutex::new(Vec::new()),
            // Keeping a connection per writer must leave the pool some for everything else.
            keep: max_connections as usize > WRITERS,
            subscriptions: subscriptions.clone(),
            events_written: events_written.clone(),
        });
        let batcher = Batcher::start(writer, WRITERS, MAX_BATCH);
        Ok(Self {
            pool,
            batcher,
            subscriptions,
            events_written,
        })
    }

    /// A transaction whose commit does not wait for the WAL flush: for the dispatcher's leases
    /// and attempt records, which a crash may lose at no cost but a second delivery (at least
    /// once), and which would otherwise add a flush per round to those that notifications wait on.
    async fn begin_unflushed(
        pool: &PgPool,
    ) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
        let mut tx = pool.begin().await?;
        sqlx::query("set local synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    fn signal_written(&self, written: bool) {
        if written {
            self.events_written.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Reads an order with its row locked until the transaction ends.
    async fn lock_order(
        conn: &mut PgConnection,
        out_trade_no: &str,
    ) -> Result<Option<Order>, StoreError> {
        let row: Option<OrderRow> = sqlx::query_as(SELECT_ORDER_FOR_UPDATE)
            .bind(out_trade_no)
            .fetch_optional(conn)
            .await?;
        row.map(Order::try_from).transpose()
    }
}

#[async_trait]
impl OrderStore for PgStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn create_order(&self, order: &NewOrder) -> Result<Created, StoreError> {
        Self::create(&mut *self.pool.acquire().await?, order).await
    }

    async fn order(&self, out_trade_no: &str) -> Result<Option<Order>, StoreError> {
        Self::read_order(&mut *self.pool.acquire().await?, out_trade_no).await
    }

    async fn orders(
        &self,
        status: Option<OrderStatus>,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError> {
        const SQL: &str = concat!(
            "select ",
            order_columns!(),
            " from payment_order where ($1::text is null or status = $1) \
             order by created_at desc, out_trade_no limit $2"
        );
        let rows: Vec<OrderRow> = sqlx::query_as(SQL)
            .bind(status.map(OrderStatus::as_str))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Order::try_from).collect()
    }

    async fn status_counts(&self, since: OffsetDateTime) -> Result<StatusCounts, StoreError> {
        Self::status_counts_since(&self.pool, since).await
    }

    async fn verdict_counts(&self, since: OffsetDateTime) -> Result<Vec<VerdictCount>, StoreError> {
        Self::verdicts_by_hour(&self.pool, since).await
    }

    async fn oldest_overdue(&self, now: OffsetDateTime) -> Result<Option<Order>, StoreError> {
        Self::oldest_overdue_order(&self.pool, now).await
    }

    async fn anomalies(&self, reviewed: bool, limit: i64) -> Result<Vec<Anomaly>, StoreError> {
        Self::anomalies_in(&self.pool, reviewed, limit).await
    }

    async fn unreviewed_anomalies(&self) -> Result<i64, StoreError> {
        Self::unreviewed_count(&self.pool).await
    }

    async fn review_anomaly(&self, id: i64, review: &Review) -> Result<bool, StoreError> {
        Self::insert_review(&self.pool, id, review).await
    }

    async fn message(&self, id: i64) -> Result<Option<AuditRecord>, StoreError> {
        Self::message_by_id(&self.pool, id).await
    }

    async fn record_action(&self, action: &ConsoleAction) -> Result<(), StoreError> {
        Self::insert_action(&self.pool, action).await
    }

    async fn actions(&self, out_trade_no: &str) -> Result<Vec<ConsoleAction>, StoreError> {
        Self::actions_of(&self.pool, out_trade_no).await
    }

    async fn order_page(
        &self,
        filter: &OrderFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<OrderPage, StoreError> {
        Self::page_of(&self.pool, filter, after, limit, AmountPath::Planner).await
    }

    async fn apply(&self, event: PaymentEvent) -> Result<Outcome, StoreError> {
        self.batcher.apply(event).await
    }

    async fn record_anomaly(
        &self,
        entry: &AuditEntry,
        reason: AnomalyReason,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let written = Self::write_anomaly(&mut tx, entry, reason, &self.subscriptions).await?;
        tx.commit().await?;
        self.signal_written(written);
        Ok(())
    }

    async fn audit_log(&self, out_trade_no: &str) -> Result<Vec<AuditRecord>, StoreError> {
        Self::audit_of(&self.pool, out_trade_no).await
    }

    async fn claim_for_reconciliation(
        &self,
        now: OffsetDateTime,
        created_before: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError> {
        const SQL: &str = concat!(
            "update payment_order set lease_until = $1 where out_trade_no in ( \
               select out_trade_no from payment_order where status = 'pending' and created_at <= $2 \
               and (lease_until is null or lease_until <= $3) order by created_at limit $4 \
               for update skip locked) returning ",
            order_columns!()
        );
        let rows: Vec<OrderRow> = sqlx::query_as(SQL)
            .bind(lease_until)
            .bind(created_before)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Order::try_from).collect()
    }

    async fn begin_refund(
        &self,
        refund: &NewRefund,
    ) -> Result<Result<RefundStart, RefundRefused>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let order = Self::lock_order(&mut tx, &refund.out_trade_no).await?;
        let started = Self::start_refund(&mut tx, order, refund).await?;
        // Ended now either way: a dropped transaction's rollback waits for the connection's next
        // use, holding its row lock (and, on Postgres, the cluster's oldest running xid, which
        // holds back the event feed) until then.
        if started.is_ok() {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(started)
    }

    async fn fail_refund(
        &self,
        out_trade_no: &str,
        out_request_no: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let keys = (out_trade_no, out_request_no);
        let written = Self::write_refund_failed(&mut tx, keys, at, &self.subscriptions).await?;
        tx.commit().await?;
        self.signal_written(written);
        Ok(())
    }

    async fn refunds(&self, out_trade_no: &str) -> Result<Vec<Refund>, StoreError> {
        Self::refunds_in(&mut *self.pool.acquire().await?, out_trade_no).await
    }
}

/// The newest transaction every reader can see the whole of: events of transactions at or after
/// the oldest one still running are held back, since one may commit with a smaller `seq` than an
/// event already read, and a reader's cursor would then pass it by.
const SETTLED: &str = "tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

#[async_trait]
impl EventStore for PgStore {
    async fn events_after(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        let cursor: (i64, i64) = match after {
            None => (-1, -1),
            Some(id) => {
                let found = sqlx::query_as("select tx, seq from event where id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                match found {
                    Some(cursor) => cursor,
                    None => return Ok(None),
                }
            }
        };
        let sql = format!(
            "select {EVENT_COLUMNS} from event where (tx, seq) > ($1, $2) and {SETTLED} \
             order by tx, seq limit $3"
        );
        let rows: Vec<EventRow> = sqlx::query_as(&sql)
            .bind(cursor.0)
            .bind(cursor.1)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(Some(rows.into_iter().map(StoredEvent::from).collect()))
    }

    async fn event(&self, id: &str) -> Result<Option<EventDetail>, StoreError> {
        Self::event_detail(&self.pool, id).await
    }

    async fn order_events(&self, out_trade_no: &str) -> Result<Vec<EventDetail>, StoreError> {
        Self::events_of_order(&self.pool, out_trade_no).await
    }

    async fn claim_deliveries(
        &self,
        endpoint: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut tx = Self::begin_unflushed(&self.pool).await?;
        let rows: Vec<ClaimedRow> = sqlx::query_as(CLAIM_DELIVERIES)
            .bind(endpoint)
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows.into_iter().map(Claimed::from).collect())
    }

    async fn record_attempts(&self, attempts: &[Attempt]) -> Result<(), StoreError> {
        let outcomes: Vec<_> = attempts.iter().map(Attempt::outcome).collect();
        let mut tx = Self::begin_unflushed(&self.pool).await?;
        sqlx::query(RECORD_ATTEMPTS)
            .bind(column(attempts, |a| a.event_id.as_str()))
            .bind(column(attempts, |a| a.endpoint.as_str()))
            .bind(column(attempts, |a| a.attempted_at))
            .bind(column(attempts, |a| a.latency_ms))
            .bind(column(attempts, |a| a.status_code.map(i32::from)))
            .bind(column(attempts, |a| a.error.as_deref()))
            .bind(column(attempts, |a| a.response_body.as_deref()))
            .bind(column(&outcomes, |(status, _)| status.as_str()))
            .bind(column(&outcomes, |(_, next)| *next))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn redeliver(
        &self,
        event_id: &str,
        endpoints: &[String],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let found = Self::queue_again(&mut tx, event_id, endpoints, now).await?;
        tx.commit().await?;
        self.signal_written(found);
        Ok(found)
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        Self::backlog_of(&self.pool).await
    }

    async fn delivered(
        &self,
        out_trade_no: &str,
        event_type: EventType,
    ) -> Result<bool, StoreError> {
        Self::delivered_to_any(&self.pool, out_trade_no, event_type).await
    }

    fn events_written(&self) -> watch::Receiver<u64> {
        self.events_written.subscribe()
    }

    fn payments_in_flight(&self) -> usize {
        self.batcher.in_flight()
    }
}

/// Leases due deliveries to one endpoint (see `due_deliveries`), skipping those another instance
/// is leasing at this moment.
const CLAIM_DELIVERIES: &str = concat!(
    "with due as (",
    due_deliveries!(),
    " for update of d1 skip locked) \
     update webhook_delivery as d set lease_until = $3 from due join event as e on e.id = due.event_id \
     where d.event_id = due.event_id and d.endpoint = due.endpoint \
     returning d.event_id, d.endpoint, e.payload, cast(d.attempts as bigint) as attempts"
);

/// Records a round's attempts and what becomes of their deliveries, in one statement.
const RECORD_ATTEMPTS: &str = "with a as ( \
       select * from unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::int[], \
         $6::text[], $7::text[], $8::text[], $9::timestamptz[]) \
         as a(event_id, endpoint, attempted_at, latency_ms, status_code, error, response_body, \
           status, next_attempt_at)), \
     attempts as ( \
       insert into webhook_attempt (event_id, endpoint, attempted_at, latency_ms, status_code, \
         error, response_body) \
       select event_id, endpoint, attempted_at, latency_ms, status_code, error, response_body \
       from a) \
     update webhook_delivery as d set status = a.status, attempts = d.attempts + 1, \
       next_attempt_at = a.next_attempt_at, lease_until = null, updated_at = a.attempted_at \
     from a where d.event_id = a.event_id and d.endpoint = a.endpoint";

const SELECT_ORDER_FOR_UPDATE: &str = concat!(
    "select ",
    order_columns!(),
    " from payment_order where out_trade_no = $1 for update"
);

/// Locks the orders of a batch in key order (see `batch_keys`).
const LOCK_ORDERS: &str = concat!(
    "select ",
    order_columns!(),
    " from payment_order where out_trade_no = any($1) order by out_trade_no for update"
);

/// A batch's writes in one statement: the changed orders' new state, the events they announce
/// with a delivery per interested endpoint, then one audit row per event in arrival order. Arrays keep it one prepared statement whatever the batch size.
const WRITE_BATCH: &str = "with changed as ( \
       update payment_order as o set status = c.status, \
         alipay_trade_status = c.alipay_trade_status, trade_no = c.trade_no, \
         buyer_id = c.buyer_id, paid_at = c.paid_at, closed_at = c.closed_at, \
         refunded_fen = c.refunded_fen, updated_at = $1 \
       from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                   $7::timestamptz[], $8::timestamptz[], $9::int8[]) \
         as c(out_trade_no, status, alipay_trade_status, trade_no, buyer_id, paid_at, \
              closed_at, refunded_fen) \
       where o.out_trade_no = c.out_trade_no), \
     events as ( \
       insert into event (id, type, out_trade_no, dedupe_key, payload, created_at) \
       select * from unnest($18::text[], $19::text[], $20::text[], $21::text[], $22::text[], \
                            $23::timestamptz[]) \
       on conflict (dedupe_key) do nothing returning id, seq, out_trade_no), \
     deliveries as ( \
       insert into webhook_delivery (event_id, event_seq, endpoint, out_trade_no, status, \
         next_attempt_at, updated_at) \
       select e.id, e.seq, d.endpoint, e.out_trade_no, 'pending', $1, $1 from events e \
       join unnest($24::text[], $25::text[]) as d(event_id, endpoint) on d.event_id = e.id) \
     insert into notification (source, notify_id, out_trade_no, trade_status, verdict, reason, \
       raw_body, received_at) \
     select * from unnest($10::text[], $11::text[], $12::text[], $13::text[], $14::text[], \
       $15::text[], $16::bytea[], $17::timestamptz[])";

/// One field of every row, as the array bound to an `unnest` column.
fn column<'a, T, U>(rows: &'a [T], field: impl Fn(&'a T) -> U) -> Vec<U> {
    rows.iter().map(field).collect()
}

/// Applies batches for `PgStore`, each writer keeping its connection between batches: sqlx
/// pings a connection when the pool hands it out and again when it is given back, two round
/// trips per batch, as many as the batch's own statements. A connection that saw an error is
/// given back instead, and the pool tests it.
struct Writer {
    pool: PgPool,
    idle: Mutex<Vec<PoolConnection<Postgres>>>,
    keep: bool,
    subscriptions: Arc<Subscriptions>,
    events_written: Arc<watch::Sender<u64>>,
}

#[async_trait]
impl ApplyBatch for Writer {
    async fn apply_batch(&self, events: &[PaymentEvent]) -> Result<Vec<Outcome>, StoreError> {
        let held = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if let Some(mut conn) = held {
            match self.apply(&mut conn, events).await {
                Ok(outcomes) => {
                    self.keep(conn);
                    return Ok(outcomes);
                }
                Err(error) if error.is_statement_error() => return Err(error),
                // A kept connection may have died while idle (a database restart, a proxy's
                // idle timeout); the pool would have tested it. Once more on one it has tested.
                // Should the failed attempt have committed after all, the retry finds the
                // orders already changed and says so, as Alipay's own resend would.
                Err(error) => {
                    tracing::warn!(error = ?error, "kept connection failed; reconnecting")
                }
            }
        }
        let mut conn = self.pool.acquire().await?;
        let outcomes = self.apply(&mut conn, events).await?;
        self.keep(conn);
        Ok(outcomes)
    }
}

impl Writer {
    fn keep(&self, conn: PoolConnection<Postgres>) {
        if self.keep {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
        }
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        events: &[PaymentEvent],
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut tx = conn.begin().await?;
        let rows: Vec<OrderRow> = sqlx::query_as(LOCK_ORDERS)
            .bind(batch_keys(events))
            .fetch_all(&mut *tx)
            .await?;
        let plan = BatchPlan::new(by_number(rows)?, events);
        let now = OffsetDateTime::now_utc();
        for settled in &plan.settled {
            PgStore::settle_refund(&mut tx, *settled, now).await?;
        }
        let refunds = PgStore::refunds_of_orders(&mut tx, &plan.with_refunds).await?;
        let written = plan.new_events(events, &refunds, now);
        let deliveries = self.subscriptions.deliveries(&written);
        let changed = &plan.changed;
        let audit: Vec<_> = plan.audit(events).collect();
        sqlx::query(WRITE_BATCH)
            .bind(now)
            .bind(column(changed, |o| o.out_trade_no.as_str()))
            .bind(column(changed, |o| o.status.as_str()))
            .bind(column(changed, |o| {
                o.alipay_trade_status.map(|s| s.as_str())
            }))
            .bind(column(changed, |o| o.trade_no.as_deref()))
            .bind(column(changed, |o| o.buyer_id.as_deref()))
            .bind(column(changed, |o| o.paid_at))
            .bind(column(changed, |o| o.closed_at))
            .bind(column(changed, |o| o.refunded_fen))
            .bind(column(&audit, |(e, ..)| e.source.as_str()))
            .bind(column(&audit, |(e, ..)| e.notify_id.as_deref()))
            .bind(column(&audit, |(e, ..)| e.out_trade_no.as_str()))
            .bind(column(&audit, |(e, ..)| e.trade_status.as_str()))
            .bind(column(&audit, |(_, verdict, _)| *verdict))
            .bind(column(&audit, |(.., reason)| *reason))
            .bind(column(&audit, |(e, ..)| e.raw.as_slice()))
            .bind(column(&audit, |(e, ..)| e.received_at))
            .bind(column(&written, |e| e.id.as_str()))
            .bind(column(&written, |e| e.event_type.as_str()))
            .bind(column(&written, |e| e.out_trade_no.as_deref()))
            .bind(column(&written, |e| e.dedupe_key.as_deref()))
            .bind(column(&written, |e| e.payload.as_str()))
            .bind(column(&written, |e| e.created_at))
            .bind(column(&deliveries, |(id, _)| *id))
            .bind(column(&deliveries, |(_, endpoint)| *endpoint))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if !written.is_empty() {
            self.events_written.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(plan.outcomes)
    }
}
