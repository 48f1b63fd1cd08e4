//! The order store: one interface, a Postgres and a SQLite implementation, picked from the URL.
//! Each method is a unit of work with its own transaction.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::model::{AuditRecord, NewOrder, Order, OrderStatus, Outcome, PaymentEvent, Verdict};
use super::state::{decide, Change, Decision};
use crate::money::Amount;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row is not a valid order: {0}")]
    Corrupt(String),
    #[error("unsupported database URL; expected postgres://… or sqlite:…")]
    UnsupportedUrl,
}

/// Whether `create_order` stored a new order or found one with that out_trade_no already.
#[derive(Debug, Clone)]
pub enum Created {
    New(Order),
    Existing(Order),
}

#[async_trait]
pub trait OrderStore: Send + Sync + 'static {
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    async fn create_order(&self, order: &NewOrder) -> Result<Created, StoreError>;
    async fn order(&self, out_trade_no: &str) -> Result<Option<Order>, StoreError>;
    async fn orders(
        &self,
        status: Option<OrderStatus>,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError>;
    /// Applies a verified event as one transaction: the order's transition (if any) together
    /// with its audit row. Concurrent copies of one event yield exactly one `Applied`.
    async fn apply(&self, event: &PaymentEvent) -> Result<Outcome, StoreError>;
    /// Records a verified message that fails the checks made before the order is read.
    async fn record_anomaly(&self, entry: &AuditEntry, reason: &str) -> Result<(), StoreError>;
    async fn audit_log(&self, out_trade_no: &str) -> Result<Vec<AuditRecord>, StoreError>;
}

/// Connects to `postgres://…` or `sqlite:…`.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn OrderStore>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            super::postgres::PgStore::connect(url, max_connections).await?,
        ))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(super::sqlite::SqliteStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// What the audit log keeps of a message.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub source: &'static str,
    pub notify_id: Option<String>,
    pub out_trade_no: Option<String>,
    pub trade_status: Option<String>,
    pub raw: Vec<u8>,
    pub received_at: OffsetDateTime,
}

impl From<&PaymentEvent> for AuditEntry {
    fn from(event: &PaymentEvent) -> Self {
        Self {
            source: event.source.as_str(),
            notify_id: event.notify_id.clone(),
            out_trade_no: Some(event.out_trade_no.clone()),
            trade_status: Some(event.trade_status.as_str().to_owned()),
            raw: event.raw.clone(),
            received_at: event.received_at,
        }
    }
}

pub(super) const ORDER_COLUMNS: &str = "out_trade_no, subject, body, total_fen, status, trade_no, \
     buyer_id, alipay_trade_status, created_at, expires_at, paid_at, closed_at";

pub(super) const INSERT_ORDER: &str = "insert into payment_order (out_trade_no, subject, body, \
     total_fen, status, created_at, updated_at, expires_at) values ($1, $2, $3, $4, 'pending', $5, $5, $6) \
     on conflict (out_trade_no) do nothing";

pub(super) const UPDATE_ORDER: &str =
    "update payment_order set status = $2, alipay_trade_status = $3, \
     trade_no = coalesce(trade_no, $4), buyer_id = coalesce(buyer_id, $5), \
     paid_at = coalesce(paid_at, $6), closed_at = coalesce(closed_at, $7), updated_at = $8 \
     where out_trade_no = $1";

pub(super) const INSERT_AUDIT: &str = "insert into notification (source, notify_id, out_trade_no, \
     trade_status, verdict, reason, raw_body, received_at) values ($1, $2, $3, $4, $5, $6, $7, $8)";

pub(super) const SELECT_AUDIT: &str =
    "select source, notify_id, out_trade_no, trade_status, verdict, \
     reason, received_at from notification where out_trade_no = $1 order by id";

/// An order row exactly as both databases return it.
#[derive(sqlx::FromRow)]
pub(super) struct OrderRow {
    out_trade_no: String,
    subject: String,
    body: Option<String>,
    total_fen: i64,
    status: String,
    trade_no: Option<String>,
    buyer_id: Option<String>,
    alipay_trade_status: Option<String>,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    paid_at: Option<OffsetDateTime>,
    closed_at: Option<OffsetDateTime>,
}

impl TryFrom<OrderRow> for Order {
    type Error = StoreError;
    fn try_from(row: OrderRow) -> Result<Self, StoreError> {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("{what} of order {}", row.out_trade_no));
        Ok(Order {
            total_amount: Amount::from_fen(row.total_fen).map_err(|_| corrupt("total_fen"))?,
            status: OrderStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            out_trade_no: row.out_trade_no,
            subject: row.subject,
            body: row.body,
            trade_no: row.trade_no,
            buyer_id: row.buyer_id,
            alipay_trade_status: row.alipay_trade_status,
            created_at: row.created_at,
            expires_at: row.expires_at,
            paid_at: row.paid_at,
            closed_at: row.closed_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    source: String,
    notify_id: Option<String>,
    out_trade_no: Option<String>,
    trade_status: Option<String>,
    verdict: String,
    reason: Option<String>,
    received_at: OffsetDateTime,
}

impl From<AuditRow> for AuditRecord {
    fn from(row: AuditRow) -> Self {
        Self {
            source: row.source,
            notify_id: row.notify_id,
            out_trade_no: row.out_trade_no,
            trade_status: row.trade_status,
            verdict: row.verdict,
            reason: row.reason,
            received_at: row.received_at,
        }
    }
}

/// What a store must write for an event, decided from the locked order row.
pub(super) struct Plan {
    pub outcome: Outcome,
    pub change: Option<Change>,
}

impl Plan {
    pub fn new(order: Option<Order>, event: &PaymentEvent) -> Self {
        let Some(mut order) = order else {
            return Self::unchanged(Verdict::Anomaly, Some("unknown_order"), None);
        };
        match decide(&order, event) {
            Decision::Unchanged(verdict) => Self::unchanged(verdict, None, Some(order)),
            Decision::Anomaly(reason) => {
                Self::unchanged(Verdict::Anomaly, Some(reason), Some(order))
            }
            Decision::Apply(change) => {
                order.status = change.status;
                order.alipay_trade_status = Some(change.alipay_trade_status.as_str().to_owned());
                if change.records_payment {
                    order.trade_no.get_or_insert_with(|| event.trade_no.clone());
                    if order.buyer_id.is_none() {
                        order.buyer_id = event.buyer_id.clone();
                    }
                    order
                        .paid_at
                        .get_or_insert(event.paid_at.unwrap_or(event.received_at));
                }
                if change.closes {
                    order.closed_at.get_or_insert(event.received_at);
                }
                let outcome = Outcome {
                    verdict: Verdict::Applied,
                    reason: None,
                    order: Some(order),
                };
                Self {
                    outcome,
                    change: Some(change),
                }
            }
        }
    }

    fn unchanged(verdict: Verdict, reason: Option<&'static str>, order: Option<Order>) -> Self {
        Self {
            outcome: Outcome {
                verdict,
                reason,
                order,
            },
            change: None,
        }
    }

    /// The order as it must be stored after the change.
    pub fn order(&self) -> Option<&Order> {
        self.outcome.order.as_ref()
    }
}
