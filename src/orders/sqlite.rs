//! The SQLite order store: the zero-setup embedded default for a single instance.
//! WAL with `synchronous=FULL`, so a commit is on disk before we answer `success`. Writes go
//! through one connection and open with `BEGIN IMMEDIATE`, so they queue instead of failing
//! with SQLITE_BUSY halfway through a transaction.

use async_trait::async_trait;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};
use time::OffsetDateTime;

use super::model::{AuditRecord, NewOrder, Order, OrderStatus, Outcome, PaymentEvent};
use super::repository::*;

pub struct SqliteStore {
    /// One connection: SQLite has a single writer anyway.
    writer: SqlitePool,
    readers: SqlitePool,
}

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
        Ok(Self { writer, readers })
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Inside a write transaction no lock clause is needed: BEGIN IMMEDIATE holds the write lock.
    async fn find(
        conn: &mut SqliteConnection,
        out_trade_no: &str,
    ) -> Result<Option<Order>, StoreError> {
        let sql = format!("select {ORDER_COLUMNS} from payment_order where out_trade_no = $1");
        let row: Option<OrderRow> = sqlx::query_as(&sql)
            .bind(out_trade_no)
            .fetch_optional(conn)
            .await?;
        row.map(Order::try_from).transpose()
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
        let sql = format!(
            "select {ORDER_COLUMNS} from payment_order where ($1 is null or status = $1) \
             order by created_at desc, out_trade_no limit $2"
        );
        let rows: Vec<OrderRow> = sqlx::query_as(&sql)
            .bind(status.map(OrderStatus::as_str))
            .bind(limit)
            .fetch_all(&self.readers)
            .await?;
        rows.into_iter().map(Order::try_from).collect()
    }

    async fn apply(&self, event: &PaymentEvent) -> Result<Outcome, StoreError> {
        let mut tx = self.begin().await?;
        let order = Self::find(&mut tx, &event.out_trade_no).await?;
        let plan = Plan::new(order, event);
        if let (Some(change), Some(order)) = (&plan.change, plan.order()) {
            sqlx::query(UPDATE_ORDER)
                .bind(&order.out_trade_no)
                .bind(change.status.as_str())
                .bind(change.alipay_trade_status.as_str())
                .bind(&order.trade_no)
                .bind(&order.buyer_id)
                .bind(order.paid_at)
                .bind(order.closed_at)
                .bind(OffsetDateTime::now_utc())
                .execute(&mut *tx)
                .await?;
        }
        let outcome = plan.outcome;
        Self::insert_audit(
            &mut tx,
            &AuditEntry::from(event),
            outcome.verdict.as_str(),
            outcome.reason,
        )
        .await?;
        tx.commit().await?;
        Ok(outcome)
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
}
