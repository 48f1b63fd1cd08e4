//! The SQLite order store: the zero-setup embedded default for a single instance.
//! WAL with `synchronous=FULL`, so a commit is on disk before we answer `success`. Writes go
//! through one connection and open with `BEGIN IMMEDIATE`, so they queue instead of failing
//! with SQLITE_BUSY halfway through a transaction; no row locks are needed. Payment events are
//! applied in batches, so one fsync commits all that arrived while the previous batch committed.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};
use time::OffsetDateTime;

use super::batch::{ApplyBatch, Batcher};
use super::model::{
    AuditRecord, NewOrder, NewRefund, Order, OrderStatus, Outcome, PaymentEvent, Refund,
};
use super::repository::*;

pub struct SqliteStore {
    /// One connection: SQLite has a single writer anyway.
    writer: SqlitePool,
    readers: SqlitePool,
    batcher: Batcher,
}

const MAX_BATCH: usize = 128;

impl SqliteStore {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(dir) = options
            .get_filename()
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        }
        let pool = |max| {
            SqlitePoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options.clone())
        };
        let writer = pool(1).await?;
        let readers = pool(4).await?;
        let batcher = Batcher::start(
            Arc::new(Writer {
                pool: writer.clone(),
            }),
            1,
            MAX_BATCH,
        );
        Ok(Self {
            writer,
            readers,
            batcher,
        })
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        begin(&self.writer).await
    }

    async fn find(
        conn: &mut SqliteConnection,
        out_trade_no: &str,
    ) -> Result<Option<Order>, StoreError> {
        let row: Option<OrderRow> = sqlx::query_as(SELECT_ORDER)
            .bind(out_trade_no)
            .fetch_optional(conn)
            .await?;
        row.map(Order::try_from).transpose()
    }

    async fn find_refund(
        conn: &mut SqliteConnection,
        out_trade_no: &str,
        out_request_no: &str,
    ) -> Result<Option<Refund>, StoreError> {
        let row: Option<RefundRow> = sqlx::query_as(SELECT_REFUND)
            .bind(out_trade_no)
            .bind(out_request_no)
            .fetch_optional(conn)
            .await?;
        row.map(Refund::try_from).transpose()
    }

    async fn insert_audit(
        tx: &mut Transaction<'_, Sqlite>,
        entry: &AuditEntry,
        verdict: &str,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(INSERT_AUDIT)
            .bind(entry.source)
            .bind(&entry.notify_id)
            .bind(&entry.out_trade_no)
            .bind(&entry.trade_status)
            .bind(verdict)
            .bind(reason)
            .bind(&entry.raw)
            .bind(entry.received_at)
            .execute(&mut **tx)
            .await?;
        Ok(())
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
        let mut conn = self.writer.acquire().await?;
        let inserted = sqlx::query(INSERT_ORDER)
            .bind(&order.out_trade_no)
            .bind(&order.subject)
            .bind(&order.body)
            .bind(order.total_amount.fen())
            .bind(order.created_at)
            .bind(order.expires_at)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        let stored = Self::find(&mut conn, &order.out_trade_no)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("order {} vanished", order.out_trade_no)))?;
        Ok(if inserted == 1 {
            Created::New(stored)
        } else {
            Created::Existing(stored)
        })
    }

    async fn order(&self, out_trade_no: &str) -> Result<Option<Order>, StoreError> {
        Self::find(&mut *self.readers.acquire().await?, out_trade_no).await
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

    async fn apply(&self, event: PaymentEvent) -> Result<Outcome, StoreError> {
        self.batcher.apply(event).await
    }

    async fn record_anomaly(&self, entry: &AuditEntry, reason: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        Self::insert_audit(&mut tx, entry, "anomaly", Some(reason)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_log(&self, out_trade_no: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(SELECT_AUDIT)
            .bind(out_trade_no)
            .fetch_all(&self.readers)
            .await?;
        Ok(rows.into_iter().map(AuditRecord::from).collect())
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
        let order = Self::find(&mut tx, &refund.out_trade_no).await?;
        let existing =
            Self::find_refund(&mut tx, &refund.out_trade_no, &refund.out_request_no).await?;
        let (committed,): (i64,) = sqlx::query_as(COMMITTED_REFUNDS)
            .bind(&refund.out_trade_no)
            .fetch_one(&mut *tx)
            .await?;
        match refund_allowed(order.as_ref(), existing, committed, refund) {
            Err(refused) => return Ok(Err(refused)),
            Ok(Some(existing)) => return Ok(Ok(existing)),
            Ok(None) => {}
        }
        sqlx::query(INSERT_REFUND)
            .bind(&refund.out_trade_no)
            .bind(&refund.out_request_no)
            .bind(refund.amount.fen())
            .bind(&refund.reason)
            .bind(refund.requested_at)
            .execute(&mut *tx)
            .await?;
        let stored =
            Self::find_refund(&mut tx, &refund.out_trade_no, &refund.out_request_no).await?;
        tx.commit().await?;
        let stored = stored.ok_or_else(|| StoreError::Corrupt("refund vanished".into()))?;
        Ok(Ok(RefundStart::New(stored)))
    }

    async fn fail_refund(
        &self,
        out_trade_no: &str,
        out_request_no: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(FAIL_REFUND)
            .bind(out_trade_no)
            .bind(out_request_no)
            .bind(at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn refunds(&self, out_trade_no: &str) -> Result<Vec<Refund>, StoreError> {
        let rows: Vec<RefundRow> = sqlx::query_as(SELECT_REFUNDS)
            .bind(out_trade_no)
            .fetch_all(&self.readers)
            .await?;
        rows.into_iter().map(Refund::try_from).collect()
    }
}

async fn begin(writer: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
    Ok(writer.begin_with("BEGIN IMMEDIATE").await?)
}

/// The orders of a batch; the keys are passed as one JSON array.
const SELECT_ORDERS: &str = concat!(
    "select ",
    order_columns!(),
    " from payment_order where out_trade_no in (select value from json_each($1))"
);

/// Applies batches for `SqliteStore` on its writer connection.
struct Writer {
    pool: SqlitePool,
}

#[async_trait]
impl ApplyBatch for Writer {
    async fn apply_batch(&self, events: &[PaymentEvent]) -> Result<Vec<Outcome>, StoreError> {
        let keys = serde_json::to_string(&batch_keys(events))
            .map_err(|e| StoreError::Corrupt(format!("order numbers as JSON: {e}")))?;
        let mut tx = begin(&self.pool).await?;
        let rows: Vec<OrderRow> = sqlx::query_as(SELECT_ORDERS)
            .bind(keys)
            .fetch_all(&mut *tx)
            .await?;
        let plan = BatchPlan::new(by_number(rows)?, events);
        let now = OffsetDateTime::now_utc();
        for order in &plan.changed {
            sqlx::query(UPDATE_ORDER)
                .bind(&order.out_trade_no)
                .bind(order.status.as_str())
                .bind(&order.alipay_trade_status)
                .bind(&order.trade_no)
                .bind(&order.buyer_id)
                .bind(order.paid_at)
                .bind(order.closed_at)
                .bind(now)
                .bind(order.refunded_fen)
                .execute(&mut *tx)
                .await?;
        }
        for (out_trade_no, out_request_no, grew_by) in &plan.settled {
            sqlx::query(SETTLE_REFUND)
                .bind(out_trade_no)
                .bind(out_request_no)
                .bind(grew_by)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        // One statement per audit row: SQLite runs in-process, and a prepared single-row insert
        // is cached, where a multi-row one would be a new statement for every batch size.
        for (event, verdict, reason) in plan.audit(events) {
            sqlx::query(INSERT_AUDIT)
                .bind(event.source.as_str())
                .bind(&event.notify_id)
                .bind(&event.out_trade_no)
                .bind(event.trade_status.as_str())
                .bind(verdict)
                .bind(reason)
                .bind(&event.raw)
                .bind(event.received_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(plan.outcomes)
    }
}
