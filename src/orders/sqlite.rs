//! The SQLite order store: the zero-setup embedded default for a single instance.
//! WAL with `synchronous=FULL`, so a commit is on disk before we answer `success`. Writes go
//! through one connection and open with `BEGIN IMMEDIATE`, so they queue instead of failing
//! with SQLITE_BUSY halfway through a transaction; no row locks are needed.

use async_trait::async_trait;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqliteConnection, Transaction};
use time::OffsetDateTime;

use super::model::{
    AuditRecord, NewOrder, NewRefund, Order, OrderStatus, Outcome, PaymentEvent, Refund,
};
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
        let refunded_before = order.as_ref().map_or(0, |o| o.refunded_fen);
        let plan = Plan::new(order, event);
        if let (Some(change), Some(order)) = (&plan.change, plan.order()) {
            let now = OffsetDateTime::now_utc();
            sqlx::query(UPDATE_ORDER)
                .bind(&order.out_trade_no)
                .bind(change.status.as_str())
                .bind(change.alipay_trade_status.as_str())
                .bind(&order.trade_no)
                .bind(&order.buyer_id)
                .bind(order.paid_at)
                .bind(order.closed_at)
                .bind(now)
                .bind(order.refunded_fen)
                .execute(&mut *tx)
                .await?;
            if let Some((out_request_no, grew_by)) = settled_refund(&plan, event, refunded_before) {
                sqlx::query(SETTLE_REFUND)
                    .bind(&order.out_trade_no)
                    .bind(out_request_no)
                    .bind(grew_by)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
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

    async fn claim_for_reconciliation(
        &self,
        now: OffsetDateTime,
        created_before: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError> {
        let sql = format!(
            "update payment_order set lease_until = $1 where out_trade_no in ( \
               select out_trade_no from payment_order where status = 'pending' and created_at <= $2 \
               and (lease_until is null or lease_until <= $3) order by created_at limit $4) \
             returning {ORDER_COLUMNS}"
        );
        let rows: Vec<OrderRow> = sqlx::query_as(&sql)
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
