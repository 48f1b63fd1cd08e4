//! Rows as both databases return them, decoded into the model. A value no release writes (an
//! unknown status, an amount out of range) is a `StoreError::Corrupt`, never a guess.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::actions::{ActionKind, ConsoleAction};
use super::model::{
    AnomalyReason, AuditRecord, Order, OrderStatus, Refund, RefundStatus, Source, Verdict,
};
use super::repository::StoreError;
use super::stats::{Anomaly, Review};
use crate::alipay::notification::TradeStatus;
use crate::alipay::product::Product;
use crate::money::Amount;

/// The columns `OrderRow` reads, as a macro so that queries can be `concat!`ed at compile time.
macro_rules! order_columns {
    () => {
        "out_trade_no, subject, body, total_fen, product, status, trade_no, buyer_id, \
         alipay_trade_status, refunded_fen, created_at, expires_at, paid_at, closed_at"
    };
}
pub(super) use order_columns;

/// An order row exactly as both databases return it.
#[derive(sqlx::FromRow)]
pub(super) struct OrderRow {
    out_trade_no: String,
    subject: String,
    body: Option<String>,
    total_fen: i64,
    product: String,
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
            product: Product::parse(&row.product).ok_or_else(|| corrupt("product"))?,
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

#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    id: i64,
    source: String,
    notify_id: Option<String>,
    out_trade_no: Option<String>,
    trade_status: Option<String>,
    verdict: String,
    reason: Option<String>,
    received_at: OffsetDateTime,
    raw_body: Vec<u8>,
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
            id: row.id,
            notify_id: row.notify_id,
            out_trade_no: row.out_trade_no,
            trade_status: row.trade_status,
            received_at: row.received_at,
            raw: row.raw_body,
        })
    }
}

/// One order by number, the row `OrderRow` decodes.
pub(super) const SELECT_ORDER: &str = concat!(
    "select ",
    order_columns!(),
    " from payment_order where out_trade_no = $1"
);

/// Rows read for a batch, by order number.
pub(super) fn by_number(rows: Vec<OrderRow>) -> Result<HashMap<String, Order>, StoreError> {
    rows.into_iter()
        .map(|row| Order::try_from(row).map(|order| (order.out_trade_no.clone(), order)))
        .collect()
}

/// A console_action row.
#[derive(sqlx::FromRow)]
pub(super) struct ActionRow {
    operator: String,
    kind: String,
    out_trade_no: Option<String>,
    request: String,
    outcome: String,
    at: OffsetDateTime,
}

impl TryFrom<ActionRow> for ConsoleAction {
    type Error = StoreError;
    fn try_from(row: ActionRow) -> Result<Self, StoreError> {
        Ok(Self {
            kind: ActionKind::parse(&row.kind).ok_or_else(|| {
                StoreError::Corrupt(format!("kind {:?} of a console_action row", row.kind))
            })?,
            operator: row.operator,
            out_trade_no: row.out_trade_no,
            request: row.request,
            outcome: row.outcome,
            at: row.at,
        })
    }
}

/// An anomaly's notification row with its review's columns (null when unreviewed).
#[derive(sqlx::FromRow)]
pub(super) struct AnomalyRow {
    id: i64,
    source: String,
    out_trade_no: Option<String>,
    trade_status: Option<String>,
    reason: Option<String>,
    received_at: OffsetDateTime,
    operator: Option<String>,
    note: Option<String>,
    at: Option<OffsetDateTime>,
}

impl TryFrom<AnomalyRow> for Anomaly {
    type Error = StoreError;
    fn try_from(row: AnomalyRow) -> Result<Self, StoreError> {
        let reason = row
            .reason
            .as_deref()
            .map(|r| {
                AnomalyReason::parse(r)
                    .ok_or_else(|| StoreError::Corrupt(format!("reason {r:?} of an anomaly row")))
            })
            .transpose()?;
        let review = match (row.operator, row.at) {
            (Some(operator), Some(at)) => Some(Review {
                operator,
                note: row.note.unwrap_or_default(),
                at,
            }),
            _ => None,
        };
        Ok(Self {
            id: row.id,
            source: row.source,
            out_trade_no: row.out_trade_no,
            trade_status: row.trade_status,
            reason,
            received_at: row.received_at,
            review,
        })
    }
}
