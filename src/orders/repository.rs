//! The order store: one interface, a Postgres and a SQLite implementation, picked from the URL.
//! Each method is a unit of work with its own transaction.

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::actions::ConsoleAction;
use super::events::Subscriptions;
use super::model::{
    AnomalyReason, AuditRecord, NewOrder, NewRefund, Order, OrderStatus, Outcome, PaymentEvent,
    Refund, Source,
};
use super::outbox::EventStore;
use super::query::{Cursor, OrderFilter, OrderPage};
use super::stats::{Anomaly, Review, StatusCounts, VerdictCount};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("cannot connect to {0}")]
    Connect(String, #[source] sqlx::Error),
    #[error("cannot connect to {0}: no answer within {CONNECT_TIMEOUT:?}")]
    ConnectTimeout(String),
    #[error(
        "no SQLite database at {0}; set DATABASE_URL, or create one with `alipay-notify migrate`"
    )]
    NoDatabase(std::path::PathBuf),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored row is not a valid order: {0}")]
    Corrupt(String),
    #[error("unsupported database URL; expected postgres://… or sqlite:…")]
    UnsupportedUrl,
    #[error("the order store's writer has stopped")]
    WriterStopped,
    /// The failure of a batch, given to each event in it.
    #[error(transparent)]
    Shared(Arc<StoreError>),
}

impl StoreError {
    /// Whether the database refused a statement, which may be about one event of a batch, as
    /// opposed to being unreachable, which is about all of them.
    pub(crate) fn is_statement_error(&self) -> bool {
        match self {
            Self::Database(sqlx::Error::Database(error)) => !is_connection_error(error.as_ref()),
            Self::Corrupt(_) => true,
            Self::Shared(inner) => inner.is_statement_error(),
            _ => false,
        }
    }
}

/// Errors the server reports about the connection or itself rather than a statement: severity
/// FATAL or PANIC (the session is over), SQLSTATE class 08 (connection exception) or 57 (operator
/// intervention: `57P01` after a restart or `pg_terminate_backend`, `57P05` idle session
/// timeout). A kept connection hands back such an error, queued while it idled, on its next use.
fn is_connection_error(error: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
    let class = error
        .code()
        .and_then(|code| code.get(..2).map(str::to_owned));
    if matches!(class.as_deref(), Some("08" | "57")) {
        return true;
    }
    error
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some_and(|pg| {
            matches!(
                pg.severity(),
                sqlx::postgres::PgSeverity::Fatal | sqlx::postgres::PgSeverity::Panic
            )
        })
}

/// Whether `begin_refund` recorded a new request or found this `out_request_no` already.
#[derive(Debug, Clone)]
pub enum RefundStart {
    New(Refund),
    Existing(Refund),
}

/// Why a refund cannot be requested; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefused {
    #[error("no such order")]
    NotFound,
    #[error("only paid orders can be refunded; this one is {0}")]
    NotPaid(OrderStatus),
    #[error("out_request_no was already used for a different amount")]
    RequestConflict,
    #[error("refunds would exceed the paid amount; at most {} can still be refunded", crate::money::format_fen(*.refundable_fen))]
    Exceeds { refundable_fen: i64 },
}

/// Whether `create_order` stored a new order or found one with that out_trade_no already.
#[derive(Debug, Clone)]
pub enum Created {
    New(Order),
    Existing(Order),
}

/// Orders, their audit log, and (as a supertrait) the events written with their changes.

#[async_trait]
pub trait OrderStore: EventStore {
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    async fn create_order(&self, order: &NewOrder) -> Result<Created, StoreError>;
    async fn order(&self, out_trade_no: &str) -> Result<Option<Order>, StoreError>;
    async fn orders(
        &self,
        status: Option<OrderStatus>,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError>;
    /// Orders created since `since`, by status.
    async fn status_counts(&self, since: OffsetDateTime) -> Result<StatusCounts, StoreError>;
    /// Messages recorded since `since`, by hour and verdict.
    async fn verdict_counts(&self, since: OffsetDateTime) -> Result<Vec<VerdictCount>, StoreError>;
    /// The pending order whose expiry passed longest ago, if any (reconciliation should have
    /// closed it: its presence says reconciliation is not keeping up).
    async fn oldest_overdue(&self, now: OffsetDateTime) -> Result<Option<Order>, StoreError>;
    /// Anomalies, newest first: those waiting for a look, or those reviewed.
    async fn anomalies(&self, reviewed: bool, limit: i64) -> Result<Vec<Anomaly>, StoreError>;
    async fn unreviewed_anomalies(&self) -> Result<i64, StoreError>;
    /// Marks an anomaly reviewed; false when there is no such anomaly or it was reviewed before.
    async fn review_anomaly(&self, id: i64, review: &Review) -> Result<bool, StoreError>;
    /// One recorded message by its id, with its bytes.
    async fn message(&self, id: i64) -> Result<Option<AuditRecord>, StoreError>;
    /// Records what an operator did through the console.
    async fn record_action(&self, action: &ConsoleAction) -> Result<(), StoreError>;
    /// What operators did about an order, oldest first.
    async fn actions(&self, out_trade_no: &str) -> Result<Vec<ConsoleAction>, StoreError>;
    /// A page of the orders `filter` admits, newest first, after `after`.
    async fn order_page(
        &self,
        filter: &OrderFilter,
        after: Option<&Cursor>,
        limit: i64,
    ) -> Result<OrderPage, StoreError>;
    /// Applies a verified event: the order's transition (if any) together with its audit row
    /// and the events it announces, committed in one transaction (possibly shared with other events) before this returns.
    /// Concurrent copies of one event yield exactly one `Applied`.
    async fn apply(&self, event: PaymentEvent) -> Result<Outcome, StoreError>;
    /// Records a verified message that fails the checks made before the order is read, and its
    /// `order.anomaly` event (once per message and reason).
    async fn record_anomaly(
        &self,
        entry: &AuditEntry,
        reason: AnomalyReason,
    ) -> Result<(), StoreError>;
    async fn audit_log(&self, out_trade_no: &str) -> Result<Vec<AuditRecord>, StoreError>;
    /// Leases up to `limit` pending orders created before `created_before` whose lease has
    /// run out, until `lease_until`: the orders this instance reconciles now. Another instance
    /// claiming at the same time gets other orders.
    async fn claim_for_reconciliation(
        &self,
        now: OffsetDateTime,
        created_before: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError>;
    /// Records a pending refund request, checking in the same transaction (order row locked)
    /// that refunds never exceed the paid amount.
    async fn begin_refund(
        &self,
        refund: &NewRefund,
    ) -> Result<Result<RefundStart, RefundRefused>, StoreError>;
    /// Marks a pending refund failed (Alipay refused it), freeing its amount, and writes
    /// `refund.failed` with it.
    async fn fail_refund(
        &self,
        out_trade_no: &str,
        out_request_no: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    async fn refunds(&self, out_trade_no: &str) -> Result<Vec<Refund>, StoreError>;
}

/// How long connecting to the database may take at start before it is reported unreachable.
pub(crate) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether opening a SQLite database may create it (`serve`, `migrate`) or must find it (the
/// `orders` commands, which only read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    CreateIfMissing,
    Existing,
}

/// Connects to `postgres://…` or `sqlite:…`. Events written from now on get a delivery for
/// each endpoint in `subscriptions` that wants them.
pub async fn connect(
    url: &str,
    max_connections: u32,
    subscriptions: Subscriptions,
) -> Result<Arc<dyn OrderStore>, StoreError> {
    open(url, max_connections, Open::CreateIfMissing, subscriptions).await
}

/// Connects as [`connect`] does, but a missing SQLite database is an error, not a new file.
pub async fn connect_existing(
    url: &str,
    max_connections: u32,
) -> Result<Arc<dyn OrderStore>, StoreError> {
    open(url, max_connections, Open::Existing, Subscriptions::none()).await
}

async fn open(
    url: &str,
    max_connections: u32,
    open: Open,
    subscriptions: Subscriptions,
) -> Result<Arc<dyn OrderStore>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            super::postgres::PgStore::connect(url, max_connections, subscriptions).await?,
        ))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(
            super::sqlite::SqliteStore::connect(url, open, subscriptions).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl)
    }
}

/// What the audit log keeps of a message.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub source: Source,
    pub notify_id: Option<String>,
    pub out_trade_no: Option<String>,
    pub trade_status: Option<String>,
    pub raw: Vec<u8>,
    pub received_at: OffsetDateTime,
}
