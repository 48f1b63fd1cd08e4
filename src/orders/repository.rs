//! The order store: one interface, a Postgres and a SQLite implementation, picked from the URL.
//! Each method is a unit of work with its own transaction.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::model::{
    AnomalyReason, AuditRecord, NewOrder, NewRefund, Order, OrderStatus, Outcome, PaymentEvent,
    Refund, RefundStatus, Source, Verdict,
};
use super::state::{decide, Change, Decision};
use crate::alipay::notification::TradeStatus;
use crate::money::Amount;

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
    /// Applies a verified event: the order's transition (if any) together with its audit row,
    /// committed in one transaction (possibly shared with other events) before this returns.
    /// Concurrent copies of one event yield exactly one `Applied`.
    async fn apply(&self, event: PaymentEvent) -> Result<Outcome, StoreError>;
    /// Records a verified message that fails the checks made before the order is read.
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
    /// Marks a pending refund failed (Alipay refused it), freeing its amount.
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

/// Connects to `postgres://…` or `sqlite:…`.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn OrderStore>, StoreError> {
    open(url, max_connections, Open::CreateIfMissing).await
}

/// Connects as [`connect`] does, but a missing SQLite database is an error, not a new file.
pub async fn connect_existing(
    url: &str,
    max_connections: u32,
) -> Result<Arc<dyn OrderStore>, StoreError> {
    open(url, max_connections, Open::Existing).await
}

async fn open(
    url: &str,
    max_connections: u32,
    open: Open,
) -> Result<Arc<dyn OrderStore>, StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            super::postgres::PgStore::connect(url, max_connections).await?,
        ))
    } else if url.starts_with("sqlite:") {
        Ok(Arc::new(
            super::sqlite::SqliteStore::connect(url, open).await?,
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

/// The columns `OrderRow` reads, as a macro so that queries can be `concat!`ed at compile time.
macro_rules! order_columns {
    () => {
        "out_trade_no, subject, body, total_fen, status, trade_no, buyer_id, alipay_trade_status, \
         refunded_fen, created_at, expires_at, paid_at, closed_at"
    };
}
pub(super) use order_columns;

pub(super) const SELECT_ORDER: &str = concat!(
    "select ",
    order_columns!(),
    " from payment_order where out_trade_no = $1"
);

pub(super) const INSERT_ORDER: &str = "insert into payment_order (out_trade_no, subject, body, \
     total_fen, status, created_at, updated_at, expires_at) values ($1, $2, $3, $4, 'pending', $5, $5, $6) \
     on conflict (out_trade_no) do nothing";

pub(super) const INSERT_AUDIT: &str = "insert into notification (source, notify_id, out_trade_no, \
     trade_status, verdict, reason, raw_body, received_at) values ($1, $2, $3, $4, $5, $6, $7, $8)";

/// The refund an event settles: ours (marked succeeded) or one made elsewhere, e.g. in Alipay's
/// console (recorded with the amount by which the cumulative refund grew).
pub(super) const SETTLE_REFUND: &str = "insert into refund (out_trade_no, out_request_no, amount_fen, \
     reason, status, created_at, updated_at) values ($1, $2, $3, null, 'succeeded', $4, $4) \
     on conflict (out_trade_no, out_request_no) do update set status = 'succeeded', updated_at = $4";

pub(super) const SELECT_REFUND: &str =
    "select out_request_no, amount_fen, reason, status, created_at, \
     updated_at from refund where out_trade_no = $1 and out_request_no = $2";

pub(super) const SELECT_REFUNDS: &str =
    "select out_request_no, amount_fen, reason, status, created_at, \
     updated_at from refund where out_trade_no = $1 order by created_at, out_request_no";

pub(super) const COMMITTED_REFUNDS: &str =
    "select cast(coalesce(sum(amount_fen), 0) as bigint) from refund where out_trade_no = $1 and status <> 'failed'";

pub(super) const INSERT_REFUND: &str =
    "insert into refund (out_trade_no, out_request_no, amount_fen, \
     reason, status, created_at, updated_at) values ($1, $2, $3, $4, 'pending', $5, $5)";

pub(super) const FAIL_REFUND: &str = "update refund set status = 'failed', updated_at = $3 \
     where out_trade_no = $1 and out_request_no = $2 and status = 'pending'";

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
    refunded_fen: i64,
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
        let alipay_trade_status = row
            .alipay_trade_status
            .as_deref()
            .map(|s| TradeStatus::parse(s).ok_or_else(|| corrupt("alipay_trade_status")))
            .transpose()?;
        Ok(Order {
            total_amount: Amount::from_fen(row.total_fen).map_err(|_| corrupt("total_fen"))?,
            status: OrderStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            alipay_trade_status,
            out_trade_no: row.out_trade_no,
            subject: row.subject,
            body: row.body,
            trade_no: row.trade_no,
            buyer_id: row.buyer_id,
            refunded_fen: row.refunded_fen,
            created_at: row.created_at,
            expires_at: row.expires_at,
            paid_at: row.paid_at,
            closed_at: row.closed_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct RefundRow {
    out_request_no: String,
    amount_fen: i64,
    reason: Option<String>,
    status: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl TryFrom<RefundRow> for Refund {
    type Error = StoreError;
    fn try_from(row: RefundRow) -> Result<Self, StoreError> {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("{what} of refund {}", row.out_request_no));
        Ok(Refund {
            amount: Amount::from_fen(row.amount_fen).map_err(|_| corrupt("amount_fen"))?,
            status: RefundStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            out_request_no: row.out_request_no,
            reason: row.reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Checks a refund request against the locked order and its committed refunds.
pub(super) fn refund_allowed(
    order: Option<&Order>,
    existing: Option<Refund>,
    committed_fen: i64,
    request: &NewRefund,
) -> Result<Option<RefundStart>, RefundRefused> {
    let order = order.ok_or(RefundRefused::NotFound)?;
    if let Some(existing) = existing {
        return if existing.amount == request.amount {
            Ok(Some(RefundStart::Existing(existing)))
        } else {
            Err(RefundRefused::RequestConflict)
        };
    }
    if order.status != OrderStatus::Paid {
        return Err(RefundRefused::NotPaid(order.status));
    }
    let refundable_fen = order.total_amount.fen() - committed_fen.max(order.refunded_fen);
    if request.amount.fen() > refundable_fen {
        return Err(RefundRefused::Exceeds { refundable_fen });
    }
    Ok(None)
}

/// The refund row an applied event settles, with the amount to record if it is not ours.
pub(super) fn settled_refund<'a>(
    plan: &Plan,
    event: &'a PaymentEvent,
    before_fen: i64,
) -> Option<(&'a str, i64)> {
    let after_fen = plan.change.as_ref()?.refunded_fen?;
    let out_request_no = event.out_request_no.as_deref()?;
    Some((out_request_no, after_fen - before_fen))
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

impl TryFrom<AuditRow> for AuditRecord {
    type Error = StoreError;
    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str, value: &str| {
            StoreError::Corrupt(format!("{what} {value:?} of a notification row"))
        };
        Ok(Self {
            source: Source::parse(&row.source).ok_or_else(|| corrupt("source", &row.source))?,
            verdict: Verdict::parse(&row.verdict)
                .ok_or_else(|| corrupt("verdict", &row.verdict))?,
            reason: row
                .reason
                .as_deref()
                .map(|r| AnomalyReason::parse(r).ok_or_else(|| corrupt("reason", r)))
                .transpose()?,
            notify_id: row.notify_id,
            out_trade_no: row.out_trade_no,
            trade_status: row.trade_status,
            received_at: row.received_at,
        })
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
            return Self::unchanged(Verdict::Anomaly, Some(AnomalyReason::UnknownOrder), None);
        };
        match decide(&order, event) {
            Decision::Unchanged(verdict) => Self::unchanged(verdict, None, Some(order)),
            Decision::Anomaly(reason) => {
                Self::unchanged(Verdict::Anomaly, Some(reason), Some(order))
            }
            Decision::Apply(change) => {
                order.status = change.status;
                if let Some(refunded_fen) = change.refunded_fen {
                    order.refunded_fen = refunded_fen;
                }
                order.alipay_trade_status = Some(change.alipay_trade_status);
                if change.records_payment {
                    if order.trade_no.is_none() {
                        order.trade_no = event.trade_no.clone();
                    }
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

    fn unchanged(verdict: Verdict, reason: Option<AnomalyReason>, order: Option<Order>) -> Self {
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

/// What a batch of events writes, decided in arrival order from the orders they name (locked, or
/// read by the only writer): each event sees the effect of the ones before it.
pub(super) struct BatchPlan<'a> {
    pub outcomes: Vec<Outcome>,
    /// The changed orders, each once, as they must be stored after the batch.
    pub changed: Vec<Order>,
    /// Refund rows to settle: (out_trade_no, out_request_no, amount by which the refund grew).
    pub settled: Vec<(&'a str, &'a str, i64)>,
}

impl<'a> BatchPlan<'a> {
    pub fn new(mut orders: HashMap<String, Order>, events: &'a [PaymentEvent]) -> Self {
        let mut changed = Vec::new();
        let mut settled = Vec::new();
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            let order = orders.get(&event.out_trade_no).cloned();
            let refunded_before = order.as_ref().map_or(0, |o| o.refunded_fen);
            let plan = Plan::new(order, event);
            if let (Some(_), Some(order)) = (&plan.change, plan.order()) {
                if let Some((out_request_no, grew_by)) =
                    settled_refund(&plan, event, refunded_before)
                {
                    settled.push((event.out_trade_no.as_str(), out_request_no, grew_by));
                }
                if !changed.contains(&event.out_trade_no) {
                    changed.push(event.out_trade_no.clone());
                }
                orders.insert(event.out_trade_no.clone(), order.clone());
            }
            outcomes.push(plan.outcome);
        }
        let changed = changed
            .into_iter()
            .filter_map(|no| orders.remove(&no))
            .collect();
        Self {
            outcomes,
            changed,
            settled,
        }
    }

    /// The audit rows, one per event, in arrival order: (entry, verdict, reason).
    pub fn audit(
        &self,
        events: &'a [PaymentEvent],
    ) -> impl Iterator<Item = (&'a PaymentEvent, &'static str, Option<&'static str>)> + '_ {
        events.iter().zip(&self.outcomes).map(|(event, outcome)| {
            let reason = outcome.reason.map(AnomalyReason::as_str);
            (event, outcome.verdict.as_str(), reason)
        })
    }
}

/// The distinct order numbers a batch names, sorted: the order in which Postgres locks them, so
/// that two writers locking overlapping batches cannot deadlock.
pub(super) fn batch_keys(events: &[PaymentEvent]) -> Vec<&str> {
    let mut keys: Vec<&str> = events.iter().map(|e| e.out_trade_no.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Rows read for a batch, by order number.
pub(super) fn by_number(rows: Vec<OrderRow>) -> Result<HashMap<String, Order>, StoreError> {
    rows.into_iter()
        .map(|row| Order::try_from(row).map(|order| (order.out_trade_no.clone(), order)))
        .collect()
}
