//! The Postgres order store, for production and for several instances sharing one database.
//! Concurrent events for one order serialise on the order row (`select … for update`).

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, Transaction};
use time::OffsetDateTime;

use super::model::{AuditRecord, NewOrder, Order, OrderStatus, Outcome, PaymentEvent};
use super::repository::*;

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    async fn find(
        conn: &mut PgConnection,
        out_trade_no: &str,
        lock: bool,
    ) -> Result<Option<Order>, StoreError> {
        let sql = format!(
            "select {ORDER_COLUMNS} from payment_order where out_trade_no = $1{}",
            if lock { " for update" } else { "" }
        );
        let row: Option<OrderRow> = sqlx::query_as(&sql)
            .bind(out_trade_no)
            .fetch_optional(conn)
            .await?;
        row.map(Order::try_from).transpose()
    }

    async fn insert_audit(
        tx: &mut Transaction<'_, Postgres>,
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
        let mut conn = self.pool.acquire().await?;
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
        let stored = Self::find(&mut conn, &order.out_trade_no, false)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("order {} vanished", order.out_trade_no)))?;
        Ok(if inserted == 1 {
            Created::New(stored)
        } else {
            Created::Existing(stored)
        })
    }

    async fn order(&self, out_trade_no: &str) -> Result<Option<Order>, StoreError> {
        Self::find(&mut *self.pool.acquire().await?, out_trade_no, false).await
    }

    async fn orders(
        &self,
        status: Option<OrderStatus>,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError> {
        let sql = format!(
            "select {ORDER_COLUMNS} from payment_order where ($1::text is null or status = $1) \
             order by created_at desc, out_trade_no limit $2"
        );
        let rows: Vec<OrderRow> = sqlx::query_as(&sql)
            .bind(status.map(OrderStatus::as_str))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Order::try_from).collect()
    }

    async fn apply(&self, event: &PaymentEvent) -> Result<Outcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let order = Self::find(&mut tx, &event.out_trade_no, true).await?;
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
        let mut tx = self.pool.begin().await?;
        Self::insert_audit(&mut tx, entry, "anomaly", Some(reason)).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_log(&self, out_trade_no: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(SELECT_AUDIT)
            .bind(out_trade_no)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }
}
