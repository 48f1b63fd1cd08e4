//! The SQLite order store: the zero-setup embedded default for a single instance.
//! WAL with `synchronous=FULL`, so a commit is on disk before we answer `success`. Writes go
//! through one connection and open with `BEGIN IMMEDIATE`, so they queue instead of failing
//! with SQLITE_BUSY halfway through a transaction; no row locks are needed. Payment events are
//! applied in batches, so one fsync commits all that arrived while the previous batch committed.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use serde::Serialize;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::actions::ConsoleAction;
use super::batch::{ApplyBatch, Batcher};
use super::events::{AnomalyData, EventType, NewEvent, StoredEvent, Subscriptions};
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

stats_statements!(SqliteStore, Sqlite);

impl SqliteStore {
    /// Times are RFC 3339 text in UTC: the first 13 characters name the hour.
    async fn verdicts_by_hour(
        pool: &SqlitePool,
        since: OffsetDateTime,
    ) -> Result<Vec<VerdictCount>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "select substr(received_at, 1, 13), verdict, count(*) from notification \
             where received_at >= $1 group by 1, 2 order by 1",
        )
        .bind(since)
        .fetch_all(pool)
        .await?;
        rows.into_iter()
            .map(|(hour, verdict, count)| {
                let at = OffsetDateTime::parse(&format!("{hour}:00:00Z"), &Rfc3339)
                    .map_err(|_| StoreError::Corrupt(format!("received_at hour {hour:?}")))?;
                verdict_count(at, &verdict, count)
            })
            .collect()
    }

    /// A bound on a time column, which SQLite compares as text. Stored times are RFC 3339 in
    /// UTC (a bound in Beijing time, `…T00:00:00+08:00`, would sort eight hours late) with the
    /// fraction's trailing zeros dropped, so `…T16:00:00Z` sorts after `…T16:00:00.3Z`. A
    /// whole-second bound is written `…T16:00:00.`: after every time of the second before it,
    /// before every time of its own. (Within one second, text order is not time order; the
    /// console's bounds are days.)
    fn time_bound(at: OffsetDateTime) -> Result<String, StoreError> {
        let at = at.to_offset(time::UtcOffset::UTC);
        let text = sqlite_time(at)?;
        Ok(match (at.nanosecond(), text.strip_suffix('Z')) {
            (0, Some(second)) => format!("{second}."),
            _ => text,
        })
    }

    /// An amount range that holds fewer orders than this is fetched whole through its index
    /// and sorted (≤ 5,000 rows: a few milliseconds); a larger one has matches often enough
    /// that walking newest first finds a page quickly.
    const RARE_AMOUNTS: i64 = 5_000;

    /// Counts the range, up to `RARE_AMOUNTS`, in the amount index alone. A search finds a
    /// handful of rows through its own indexes, so it needs no count.
    async fn amount_path(
        pool: &SqlitePool,
        filter: &OrderFilter,
    ) -> Result<AmountPath, StoreError> {
        if filter.search.is_some() || (filter.min_fen.is_none() && filter.max_fen.is_none()) {
            return Ok(AmountPath::Planner);
        }
        let (in_range,): (i64,) = sqlx::query_as(
            "select count(*) from (select 1 from payment_order indexed by payment_order_total \
             where total_fen >= $1 and total_fen <= $2 limit $3)",
        )
        .bind(filter.min_fen.unwrap_or(i64::MIN))
        .bind(filter.max_fen.unwrap_or(i64::MAX))
        .bind(Self::RARE_AMOUNTS)
        .fetch_one(pool)
        .await?;
        Ok(if in_range < Self::RARE_AMOUNTS {
            AmountPath::ByAmount
        } else {
            AmountPath::ByTime
        })
    }
}
shared_statements!(SqliteStore, Sqlite, SqliteConnection);
outbox_statements!(SqliteStore, Sqlite);

pub(crate) struct SqliteStore {
    /// One connection: SQLite has a single writer anyway.
    writer: SqlitePool,
    readers: SqlitePool,
    batcher: Batcher,
    subscriptions: Arc<Subscriptions>,
    events_written: Arc<watch::Sender<u64>>,
}

const MAX_BATCH: usize = 128;

impl SqliteStore {
    pub async fn connect(
        url: &str,
        open: Open,
        subscriptions: Subscriptions,
    ) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(open == Open::CreateIfMissing)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let path = options.get_filename().to_owned();
        let target = format!("SQLite database {}", path.display());
        if open == Open::Existing && !path.exists() {
            return Err(StoreError::NoDatabase(path));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Connect(target.clone(), sqlx::Error::Io(e)))?;
        }
        let connect_error = |e| StoreError::Connect(target.clone(), e);
        let pool = |max| {
            SqlitePoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(10))
        };
        // In-process, the writer needs no liveness ping each time it is taken; sqlx still tests
        // it when it is given back. A batch's statement journal stays in memory. SQLite
        // checkpoints inside a commit, copying and syncing the database file while the batch
        // waits: every 4000 WAL pages instead of 1000, a hot page is copied once, not four times.
        let writer = pool(1)
            .test_before_acquire(false)
            .connect_with(
                options
                    .clone()
                    .pragma("temp_store", "memory")
                    .pragma("wal_autocheckpoint", "4000"),
            )
            .await
            .map_err(connect_error)?;
        let readers = pool(4).connect_with(options).await.map_err(connect_error)?;
        let subscriptions = Arc::new(subscriptions);
        let events_written = Arc::new(watch::Sender::new(0));
        let batcher = Batcher::start(
            Arc::new(Writer {
                pool: writer.clone(),
                subscriptions: subscriptions.clone(),
                events_written: events_written.clone(),
            }),
            1,
            MAX_BATCH,
        );
        Ok(Self {
            writer,
            readers,
            batcher,
            subscriptions,
            events_written,
        })
    }

    fn signal_written(&self, written: bool) {
        if written {
            self.events_written.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        begin(&self.writer).await
    }
}

#[async_trait]
impl OrderStore for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.writer)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1").execute(&self.readers).await?;
        Ok(())
    }

    async fn create_order(&self, order: &NewOrder) -> Result<Created, StoreError> {
        Self::create(&mut *self.writer.acquire().await?, order).await
    }

    async fn order(&self, out_trade_no: &str) -> Result<Option<Order>, StoreError> {
        Self::read_order(&mut *self.readers.acquire().await?, out_trade_no).await
    }

    async fn orders(
        &self,
        status: Option<OrderStatus>,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError> {
        const SQL: &str = concat!(
            "select ",
            order_columns!(),
            " from payment_order where ($1 is null or status = $1) \
             order by created_at desc, out_trade_no limit $2"
        );
        let rows: Vec<OrderRow> = sqlx::query_as(SQL)
            .bind(status.map(OrderStatus::as_str))
            .bind(limit)
            .fetch_all(&self.readers)
            .await?;
        rows.into_iter().map(Order::try_from).collect()
    }

    async fn status_counts(&self, since: OffsetDateTime) -> Result<StatusCounts, StoreError> {
        Self::status_counts_since(&self.readers, since).await
    }

    async fn verdict_counts(&self, since: OffsetDateTime) -> Result<Vec<VerdictCount>, StoreError> {
        Self::verdicts_by_hour(&self.readers, since).await
    }

    async fn oldest_overdue(&self, now: OffsetDateTime) -> Result<Option<Order>, StoreError> {
        Self::oldest_overdue_order(&self.readers, now).await
    }

    async fn anomalies(&self, reviewed: bool, limit: i64) -> Result<Vec<Anomaly>, StoreError> {
        Self::anomalies_in(&self.readers, reviewed, limit).await
    }

    async fn unreviewed_anomalies(&self) -> Result<i64, StoreError> {
        Self::unreviewed_count(&self.readers).await
    }

    async fn review_anomaly(&self, id: i64, review: &Review) -> Result<bool, StoreError> {
        Self::insert_review(&self.writer, id, review).await
    }

    async fn message(&self, id: i64) -> Result<Option<AuditRecord>, StoreError> {
        Self::message_by_id(&self.readers, id).await
    }

    async fn record_action(&self, action: &ConsoleAction) -> Result<(), StoreError> {
        Self::insert_action(&self.writer, action).await
    }

    async fn actions(&self, out_trade_no: &str) -> Result<Vec<ConsoleAction>, StoreError> {
        Self::actions_of(&self.readers, out_trade_no).await
    }

    async fn order_page(
        &self,
        filter: &OrderFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<OrderPage, StoreError> {
        let path = Self::amount_path(&self.readers, filter).await?;
        Self::page_of(&self.readers, filter, after, limit, path).await
    }

    async fn apply(&self, event: PaymentEvent) -> Result<Outcome, StoreError> {
        self.batcher.apply(event).await
    }

    async fn record_anomaly(
        &self,
        entry: &AuditEntry,
        reason: AnomalyReason,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let written = Self::write_anomaly(&mut tx, entry, reason, &self.subscriptions).await?;
        tx.commit().await?;
        self.signal_written(written);
        Ok(())
    }

    async fn audit_log(&self, out_trade_no: &str) -> Result<Vec<AuditRecord>, StoreError> {
        Self::audit_of(&self.readers, out_trade_no).await
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
               and (lease_until is null or lease_until <= $3) order by created_at limit $4) \
             returning ",
            order_columns!()
        );
        let rows: Vec<OrderRow> = sqlx::query_as(SQL)
            .bind(lease_until)
            .bind(created_before)
            .bind(now)
            .bind(limit)
            .fetch_all(&self.writer)
            .await?;
        rows.into_iter().map(Order::try_from).collect()
    }

    async fn begin_refund(
        &self,
        refund: &NewRefund,
    ) -> Result<Result<RefundStart, RefundRefused>, StoreError> {
        let mut tx = self.begin().await?;
        // The only writer: what it reads cannot change before it commits.
        let order = Self::read_order(&mut tx, &refund.out_trade_no).await?;
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
        let mut tx = self.begin().await?;
        let keys = (out_trade_no, out_request_no);
        let written = Self::write_refund_failed(&mut tx, keys, at, &self.subscriptions).await?;
        tx.commit().await?;
        self.signal_written(written);
        Ok(())
    }

    async fn refunds(&self, out_trade_no: &str) -> Result<Vec<Refund>, StoreError> {
        Self::refunds_in(&mut *self.readers.acquire().await?, out_trade_no).await
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    /// One writer commits events in `seq` order: the sequence alone is the cursor.
    async fn events_after(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Option<Vec<StoredEvent>>, StoreError> {
        let seq: i64 = match after {
            None => 0,
            Some(id) => {
                let found: Option<(i64,)> = sqlx::query_as("select seq from event where id = $1")
                    .bind(id)
                    .fetch_optional(&self.readers)
                    .await?;
                match found {
                    Some((seq,)) => seq,
                    None => return Ok(None),
                }
            }
        };
        let sql = format!("select {EVENT_COLUMNS} from event where seq > $1 order by seq limit $2");
        let rows: Vec<EventRow> = sqlx::query_as(&sql)
            .bind(seq)
            .bind(limit)
            .fetch_all(&self.readers)
            .await?;
        Ok(Some(rows.into_iter().map(StoredEvent::from).collect()))
    }

    async fn event(&self, id: &str) -> Result<Option<EventDetail>, StoreError> {
        Self::event_detail(&self.readers, id).await
    }

    async fn order_events(&self, out_trade_no: &str) -> Result<Vec<EventDetail>, StoreError> {
        Self::events_of_order(&self.readers, out_trade_no).await
    }

    async fn claim_deliveries(
        &self,
        endpoint: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let rows: Result<Vec<ClaimedRow>, _> = sqlx::query_as(CLAIM_DELIVERIES)
            .bind(endpoint)
            .bind(now)
            .bind(lease_until)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await;
        if rows.is_err() {
            // It may have stopped before `synchronous` was back to FULL: its successor opens
            // with FULL.
            conn.close_on_drop();
        }
        Ok(rows?.into_iter().map(Claimed::from).collect())
    }

    async fn record_attempts(&self, attempts: &[Attempt]) -> Result<(), StoreError> {
        let rows = attempts
            .iter()
            .map(|a| {
                let (status, next) = a.outcome();
                Ok((
                    &a.event_id,
                    &a.endpoint,
                    sqlite_time(a.attempted_at)?,
                    a.latency_ms,
                    a.status_code,
                    &a.error,
                    &a.response_body,
                    status.as_str(),
                    sqlite_time(next)?,
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut conn = self.writer.acquire().await?;
        let recorded = sqlx::query(RECORD_ATTEMPTS)
            .bind(to_json(&rows)?)
            .execute(&mut *conn)
            .await;
        if recorded.is_err() {
            // It may have stopped inside its transaction, or before `synchronous` was back to
            // FULL: its successor opens with neither.
            conn.close_on_drop();
        }
        recorded?;
        Ok(())
    }

    async fn redeliver(
        &self,
        event_id: &str,
        endpoints: &[String],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let found = Self::queue_again(&mut tx, event_id, endpoints, now).await?;
        tx.commit().await?;
        self.signal_written(found);
        Ok(found)
    }

    async fn backlog(&self) -> Result<Backlog, StoreError> {
        Self::backlog_of(&self.readers).await
    }

    async fn delivered(
        &self,
        out_trade_no: &str,
        event_type: EventType,
    ) -> Result<bool, StoreError> {
        Self::delivered_to_any(&self.readers, out_trade_no, event_type).await
    }

    fn events_written(&self) -> watch::Receiver<u64> {
        self.events_written.subscribe()
    }

    fn payments_in_flight(&self) -> usize {
        self.batcher.in_flight()
    }
}

async fn begin(writer: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
    Ok(writer.begin_with("BEGIN IMMEDIATE").await?)
}

/// A batch is two requests to the connection's worker thread, not one per statement: each is a
/// hand-over between threads, and with one statement per event (and sqlx's pings around every
/// pool checkout) those hand-overs, not SQLite, set the pace of the single writer. Several
/// statements in one query share its `$n` arguments. The transaction is ours, not sqlx's, since
/// its statements span both requests.
///
/// The first opens the transaction and reads the batch's orders (keys as one JSON array).
const BEGIN_AND_SELECT: &str = concat!(
    "begin immediate; select ",
    order_columns!(),
    " from payment_order where out_trade_no in (select value from json_each($1))"
);

/// The second writes and commits: the changed orders ($1, see `changed_json`), the audit rows in
/// arrival order ($2, see `audit_rows`, with the raw bodies end to end in $3), `updated_at` ($4),
/// the events ($5, see `events_json`) and their deliveries ($6: [event id, endpoint] pairs; an
/// event not written because its dedupe key exists gets none).
/// (`UPDATE … FROM` needs SQLite 3.33 and `->>` 3.38; the bundled one is newer.)
const WRITE_AND_COMMIT: &str = "update payment_order set status = c.value ->> 1, \
       alipay_trade_status = c.value ->> 2, trade_no = c.value ->> 3, buyer_id = c.value ->> 4, \
       paid_at = c.value ->> 5, closed_at = c.value ->> 6, refunded_fen = c.value ->> 7, \
       updated_at = $4 \
     from json_each($1) as c where payment_order.out_trade_no = c.value ->> 0; \
     insert into notification (source, notify_id, out_trade_no, trade_status, verdict, reason, \
       raw_body, received_at) \
     select value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
       substr($3, value ->> 6, value ->> 7), value ->> 8 \
     from json_each($2) order by key; \
     insert into event (id, type, out_trade_no, dedupe_key, payload, created_at) \
     select value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5 \
     from json_each($5) where true order by key on conflict (dedupe_key) do nothing; \
     insert into webhook_delivery (event_id, event_seq, endpoint, out_trade_no, status, \
       next_attempt_at, updated_at) \
     select event.id, event.seq, d.value ->> 1, event.out_trade_no, 'pending', $4, $4 \
     from json_each($6) as d join event on event.id = d.value ->> 0; \
     commit";

/// The dispatcher's two writes, leasing and recording, are one request each to the writer's
/// thread, so that the dispatcher, which runs at a low priority, never holds the single writer
/// between requests. Each runs with `synchronous=NORMAL`: in WAL mode its commit is not flushed,
/// which adds no fsync to those that notifications wait on; a crash may lose it at the cost of a
/// second delivery (at least once). Each sets FULL again before it ends (and the connection is
/// closed should an error stop it first).
///
/// Leases due deliveries to one endpoint (see `due_deliveries`; `RETURNING` may read the event
/// through a subquery, not through a join).
const CLAIM_DELIVERIES: &str = concat!(
    "pragma synchronous = normal; \
     update webhook_delivery set lease_until = $3 where (event_id, endpoint) in (",
    due_deliveries!(),
    ") returning event_id, endpoint, \
       (select payload from event where event.id = webhook_delivery.event_id) as payload, attempts; \
     pragma synchronous = full"
);

/// Records a round's attempts (one JSON array each, in `$1`) and what becomes of their
/// deliveries, transaction included.
const RECORD_ATTEMPTS: &str = "pragma synchronous = normal; begin immediate; \
     insert into webhook_attempt (event_id, endpoint, attempted_at, latency_ms, status_code, \
       error, response_body) \
     select value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
       value ->> 6 \
     from json_each($1) order by key; \
     update webhook_delivery set status = a.value ->> 7, attempts = attempts + 1, \
       next_attempt_at = a.value ->> 8, lease_until = null, updated_at = a.value ->> 2 \
     from json_each($1) as a \
     where webhook_delivery.event_id = a.value ->> 0 and webhook_delivery.endpoint = a.value ->> 1; \
     commit; pragma synchronous = full";

/// Times as sqlx writes them to SQLite, so that they read back and sort the same.
fn sqlite_time(time: OffsetDateTime) -> Result<String, StoreError> {
    time.format(&Rfc3339)
        .map_err(|e| StoreError::Corrupt(format!("unformattable time: {e}")))
}

fn to_json(rows: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(rows).map_err(|e| StoreError::Corrupt(format!("batch as JSON: {e}")))
}

/// The rows `WRITE_AND_COMMIT` updates, one JSON array each.
fn changed_json(orders: &[Order]) -> Result<String, StoreError> {
    let rows = orders
        .iter()
        .map(|o| {
            Ok((
                &o.out_trade_no,
                o.status.as_str(),
                &o.alipay_trade_status,
                &o.trade_no,
                &o.buyer_id,
                o.paid_at.map(sqlite_time).transpose()?,
                o.closed_at.map(sqlite_time).transpose()?,
                o.refunded_fen,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    to_json(&rows)
}

/// The audit rows `WRITE_AND_COMMIT` inserts, one JSON array each, and their raw bodies end to
/// end, each row naming where its body starts (from 1, as `substr` counts) and its length.
fn audit_rows<'a>(
    audit: impl Iterator<Item = (&'a PaymentEvent, &'static str, Option<&'static str>)>,
) -> Result<(String, Vec<u8>), StoreError> {
    let mut bodies = Vec::new();
    let rows = audit
        .map(|(event, verdict, reason)| {
            let start = bodies.len() + 1;
            bodies.extend_from_slice(&event.raw);
            Ok((
                event.source.as_str(),
                &event.notify_id,
                &event.out_trade_no,
                event.trade_status.as_str(),
                verdict,
                reason,
                start,
                event.raw.len(),
                sqlite_time(event.received_at)?,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok((to_json(&rows)?, bodies))
}

/// The events `WRITE_AND_COMMIT` inserts, one JSON array each.
fn events_json(events: &[NewEvent]) -> Result<String, StoreError> {
    let rows = events
        .iter()
        .map(|e| {
            Ok((
                &e.id,
                e.event_type.as_str(),
                &e.out_trade_no,
                &e.dedupe_key,
                &e.payload,
                sqlite_time(e.created_at)?,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    to_json(&rows)
}

/// Applies batches for `SqliteStore` on its writer connection.
struct Writer {
    pool: SqlitePool,
    subscriptions: Arc<Subscriptions>,
    events_written: Arc<watch::Sender<u64>>,
}

#[async_trait]
impl ApplyBatch for Writer {
    async fn apply_batch(&self, events: &[PaymentEvent]) -> Result<Vec<Outcome>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let applied = self.apply(&mut conn, events).await;
        if applied.is_err() {
            // Whatever failed, the connection goes back to the pool with no transaction open
            // (the answer is "no transaction is active" if it failed before `begin immediate`).
            let _ = sqlx::query("rollback").execute(&mut *conn).await;
        }
        applied
    }
}

impl Writer {
    async fn apply(
        &self,
        conn: &mut SqliteConnection,
        events: &[PaymentEvent],
    ) -> Result<Vec<Outcome>, StoreError> {
        let keys = to_json(&batch_keys(events))?;
        let rows: Vec<OrderRow> = sqlx::query_as(BEGIN_AND_SELECT)
            .bind(keys)
            .fetch_all(&mut *conn)
            .await?;
        let plan = BatchPlan::new(by_number(rows)?, events);
        let now = OffsetDateTime::now_utc();
        for settled in &plan.settled {
            SqliteStore::settle_refund(&mut *conn, *settled, now).await?;
        }
        let refunds = SqliteStore::refunds_of_orders(&mut *conn, &plan.with_refunds).await?;
        let written = plan.new_events(events, &refunds, now);
        let deliveries = self.subscriptions.deliveries(&written);
        let (audit, bodies) = audit_rows(plan.audit(events))?;
        sqlx::query(WRITE_AND_COMMIT)
            .bind(changed_json(&plan.changed)?)
            .bind(audit)
            .bind(bodies)
            .bind(now)
            .bind(events_json(&written)?)
            .bind(to_json(&deliveries)?)
            .execute(&mut *conn)
            .await?;
        if !written.is_empty() {
            self.events_written.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(plan.outcomes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn synchronous(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("pragma synchronous")
            .fetch_one(&store.writer)
            .await
            .unwrap()
    }

    /// The dispatcher's writes relax `synchronous` for themselves only: notifications committed
    /// on the same writer afterwards are flushed again (FULL is 2).
    #[tokio::test]
    async fn the_writer_is_back_to_full_after_the_dispatchers_writes() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("orders.db").display());
        let store = SqliteStore::connect(&url, Open::CreateIfMissing, Subscriptions::none())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        assert_eq!(synchronous(&store).await, 2);
        let now = OffsetDateTime::now_utc();
        let claimed = store
            .claim_deliveries("default", now, now + time::Duration::seconds(20), 64)
            .await
            .unwrap();
        assert!(claimed.is_empty());
        assert_eq!(synchronous(&store).await, 2, "after a lease");
        store.record_attempts(&[]).await.unwrap();
        assert_eq!(synchronous(&store).await, 2, "after recording");
    }

    /// Times are text in SQLite: a day bound in Beijing time must compare as the UTC it is.
    #[tokio::test]
    async fn a_beijing_day_filter_finds_orders_made_that_day_before_utc_midnight() {
        use time::macros::datetime;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("orders.db").display());
        let store = SqliteStore::connect(&url, Open::CreateIfMissing, Subscriptions::none())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let created_at = datetime!(2026-12-04 17:00 UTC); // 01:00 on the 5th in Beijing
        let order = NewOrder {
            out_trade_no: "T1".into(),
            subject: "s".into(),
            body: None,
            total_amount: crate::money::Amount::from_fen(100).unwrap(),
            product: crate::alipay::product::Product::Page,
            created_at,
            expires_at: created_at + time::Duration::minutes(30),
        };
        store.create_order(&order).await.unwrap();
        let filter = OrderFilter {
            created_from: Some(datetime!(2026-12-05 00:00 +8)),
            created_to: Some(datetime!(2026-12-06 00:00 +8)),
            ..OrderFilter::default()
        };
        let page = store.order_page(&filter, None, 50).await.unwrap();
        assert_eq!(page.orders.len(), 1);

        // Stored as `…T16:00:00.3Z`, which sorts before the text `…T16:00:00Z`.
        let created_at = datetime!(2026-12-04 16:00:00.3 UTC); // 00:00:00.3 on the 5th
        store
            .create_order(&NewOrder {
                out_trade_no: "T2".into(),
                created_at,
                ..order
            })
            .await
            .unwrap();
        let numbers = |filter| {
            let store = &store;
            async move {
                let page = store.order_page(&filter, None, 50).await.unwrap();
                page.orders
                    .into_iter()
                    .map(|o| o.out_trade_no)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(numbers(filter).await, ["T1", "T2"]);
        let day_before = OrderFilter {
            created_from: Some(datetime!(2026-12-04 00:00 +8)),
            created_to: Some(datetime!(2026-12-05 00:00 +8)),
            ..OrderFilter::default()
        };
        assert!(numbers(day_before).await.is_empty());
    }

    /// Both ways an amount filter can be served list the same orders, newest first: order `i`
    /// costs `i` fen and was made `i` seconds after the first, so the answer is known.
    #[tokio::test]
    async fn a_rare_and_a_common_amount_range_list_the_newest_matches_first() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("orders.db").display());
        let store = SqliteStore::connect(&url, Open::CreateIfMissing, Subscriptions::none())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let orders = SqliteStore::RARE_AMOUNTS + 1_000;
        sqlx::query(
            "with recursive n(i) as (select 1 union all select i + 1 from n where i < $1) \
             insert into payment_order (out_trade_no, subject, total_fen, status, created_at, \
             updated_at, expires_at) select printf('T%06d', i), 's', i, 'pending', \
             strftime('%Y-%m-%dT%H:%M:%SZ', 1764000000 + i, 'unixepoch'), \
             strftime('%Y-%m-%dT%H:%M:%SZ', 1764000000 + i, 'unixepoch'), \
             strftime('%Y-%m-%dT%H:%M:%SZ', 1764001800 + i, 'unixepoch') from n",
        )
        .bind(orders)
        .execute(&store.writer)
        .await
        .unwrap();

        let listed = |min: i64, max: i64| {
            let filter = OrderFilter {
                min_fen: Some(min),
                max_fen: Some(max),
                ..OrderFilter::default()
            };
            let store = &store;
            async move {
                let path = SqliteStore::amount_path(&store.readers, &filter)
                    .await
                    .unwrap();
                let mut numbers = Vec::new();
                let mut after = None;
                loop {
                    let page = store.order_page(&filter, after.as_ref(), 50).await.unwrap();
                    numbers.extend(page.orders.iter().map(|o| o.total_amount.fen()));
                    match page.next {
                        Some(next) if numbers.len() < 120 => after = Some(next),
                        _ => break,
                    }
                }
                (path, numbers)
            }
        };
        let (path, rare) = listed(11, 70).await;
        assert_eq!(path, AmountPath::ByAmount);
        assert_eq!(rare, (11..=70).rev().collect::<Vec<_>>());
        let (path, common) = listed(2, orders - 3).await;
        assert_eq!(path, AmountPath::ByTime);
        assert_eq!(
            common,
            (orders - 152..=orders - 3).rev().collect::<Vec<_>>()
        );
    }
}
