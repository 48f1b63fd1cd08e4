//! The Postgres order store, for production and for several instances sharing one database.
//! Concurrent events for one order serialise on the order row (`select … for update`).

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, Transaction};
use time::OffsetDateTime;

use super::model::{
    AuditRecord, NewOrder, NewRefund, Order, OrderStatus, Outcome, PaymentEvent, Refund,
};
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

    async fn find_refund(
        conn: &mut PgConnection,
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
               and (lease_until is null or lease_until <= $3) order by created_at limit $4 \
               for update skip locked) returning {ORDER_COLUMNS}"
        );
        let rows: Vec<OrderRow> = sqlx::query_as(&sql)
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
        let order = Self::find(&mut tx, &refund.out_trade_no, true).await?;
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
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn refunds(&self, out_trade_no: &str) -> Result<Vec<Refund>, StoreError> {
        let rows: Vec<RefundRow> = sqlx::query_as(SELECT_REFUNDS)
            .bind(out_trade_no)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(Refund::try_from).collect()
    }
}
