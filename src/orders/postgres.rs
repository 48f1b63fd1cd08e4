//! The Postgres order store, for production and for several instances sharing one database.
//! Concurrent events for one order serialise on the order row (`select … for update`); events
//! are applied in batches, a few statements and one commit for all that arrived together.

use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres};
use time::OffsetDateTime;

use super::batch::{ApplyBatch, Batcher};

use super::model::{
    AnomalyReason, AuditRecord, NewOrder, NewRefund, Order, OrderStatus, Outcome, PaymentEvent,
    Refund, Verdict,
};
use super::plan::{batch_keys, refund_allowed, BatchPlan};
use super::repository::*;
use super::rows::{by_number, order_columns, AuditRow, OrderRow, RefundRow, SELECT_ORDER};
use super::shared::shared_statements;

shared_statements!(PgStore, Postgres, PgConnection);

pub(crate) struct PgStore {
    pool: PgPool,
    batcher: Batcher,
}

/// Writers working on separate batches: one collects and locks while another waits for its
/// commit to be flushed.
const WRITERS: usize = 2;
const MAX_BATCH: usize = 128;

impl PgStore {
    /// Connects once directly first: the pool would report any failure as "pool timed out",
    /// five seconds later, without saying where it tried or what the server answered.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
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
        let writer = Arc::new(Writer {
            pool: pool.clone(),
            idle: Mutex::new(Vec::new()),
            // Keeping a connection per writer must leave the pool some for everything else.
            keep: max_connections as usize > WRITERS,
        });
        let batcher = Batcher::start(writer, WRITERS, MAX_BATCH);
        Ok(Self { pool, batcher })
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

    async fn apply(&self, event: PaymentEvent) -> Result<Outcome, StoreError> {
        self.batcher.apply(event).await
    }

    async fn record_anomaly(
        &self,
        entry: &AuditEntry,
        reason: AnomalyReason,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        Self::insert_audit(&mut tx, entry, Verdict::Anomaly, Some(reason)).await?;
        tx.commit().await?;
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
        if started.is_ok() {
            tx.commit().await?;
        }
        Ok(started)
    }

    async fn fail_refund(
        &self,
        out_trade_no: &str,
        out_request_no: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        Self::mark_refund_failed(&self.pool, out_trade_no, out_request_no, at).await
    }

    async fn refunds(&self, out_trade_no: &str) -> Result<Vec<Refund>, StoreError> {
        Self::refunds_of(&self.pool, out_trade_no).await
    }
}

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

/// A batch's writes in one statement: the changed orders' new state, then one audit row per
/// event in arrival order. Arrays keep it one prepared statement whatever the batch size.
const WRITE_BATCH: &str = "with changed as ( \
       update payment_order as o set status = c.status, \
         alipay_trade_status = c.alipay_trade_status, trade_no = c.trade_no, \
         buyer_id = c.buyer_id, paid_at = c.paid_at, closed_at = c.closed_at, \
         refunded_fen = c.refunded_fen, updated_at = $1 \
       from unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
                   $7::timestamptz[], $8::timestamptz[], $9::int8[]) \
         as c(out_trade_no, status, alipay_trade_status, trade_no, buyer_id, paid_at, \
              closed_at, refunded_fen) \
       where o.out_trade_no = c.out_trade_no) \
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
            match Self::apply(&mut conn, events).await {
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
        let outcomes = Self::apply(&mut conn, events).await?;
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
            .execute(&mut *tx)
            .await?;
        for settled in &plan.settled {
            PgStore::settle_refund(&mut tx, *settled, now).await?;
        }
        tx.commit().await?;
        Ok(plan.outcomes)
    }
}
