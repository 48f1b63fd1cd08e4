//! The order list as CSV, for spreadsheets: every order the filters admit (not one page),
//! streamed in keyset batches so a large export holds one batch in memory at a time.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::{stream, StreamExt as _};
use time::OffsetDateTime;

use super::auth::Session;
use super::orders::ListQuery;
use super::On;
use crate::alipay::clock::format_beijing;
use crate::http::AppState;
use crate::money::Amount;
use crate::orders::query::{Cursor, OrderFilter};
use crate::orders::Order;
use crate::report::Report;

/// Orders read per database round trip.
const BATCH: i64 = 1000;

/// Spreadsheets find the encoding by it.
const BOM: &[u8] = "\u{feff}".as_bytes();

const COLUMNS: [&str; 11] = [
    "out_trade_no",
    "created_at_beijing",
    "subject",
    "total_amount",
    "refunded_amount",
    "status",
    "product",
    "trade_no",
    "buyer_id",
    "paid_at_beijing",
    "closed_at_beijing",
];

pub async fn csv(
    State(state): State<AppState>,
    _console: On,
    _session: Session,
    Query(query): Query<ListQuery>,
) -> Response {
    let (filter, _) = match query.filter() {
        Ok(filter) => filter,
        Err(problem) => {
            return (axum::http::StatusCode::UNPROCESSABLE_ENTITY, problem).into_response()
        }
    };
    let store = state.store.clone();
    let head = Bytes::from([BOM, &rows(&[], true)].concat());
    // (cursor, finished): each step reads the batch after the cursor.
    let batches = stream::unfold((None::<Cursor>, false), move |(after, finished)| {
        let store = store.clone();
        let filter: OrderFilter = filter.clone();
        async move {
            if finished {
                return None;
            }
            match store.order_page(&filter, after.as_ref(), BATCH).await {
                Ok(page) => {
                    let done = page.next.is_none();
                    let bytes = Bytes::from(rows(&page.orders, false));
                    Some((Ok::<_, std::io::Error>(bytes), (page.next, done)))
                }
                Err(error) => {
                    // Headers are gone: cutting the body short is how the client learns.
                    tracing::error!(error = %Report(&error), "console CSV export failed");
                    Some((Err(std::io::Error::other("export failed")), (None, true)))
                }
            }
        }
    });
    let body = Body::from_stream(stream::iter([Ok(head)]).chain(batches));
    let name = OffsetDateTime::now_utc()
        .to_offset(super::orders::BEIJING)
        .format(time::macros::format_description!(
            "orders-[year][month][day]-[hour][minute][second].csv"
        ))
        .unwrap_or_else(|_| "orders.csv".into());
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// CSV lines for `orders` (or the header line).
fn rows(orders: &[Order], header: bool) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if header {
        let _ = writer.write_record(COLUMNS);
    }
    let time = |at: Option<OffsetDateTime>| at.map(format_beijing).unwrap_or_default();
    for order in orders {
        let record = [
            cell(&order.out_trade_no),
            time(Some(order.created_at)),
            cell(&order.subject),
            order.total_amount.to_string(),
            Amount::from_fen(order.refunded_fen)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            order.status.as_str().to_owned(),
            order.product.as_str().to_owned(),
            cell(order.trade_no.as_deref().unwrap_or("")),
            cell(order.buyer_id.as_deref().unwrap_or("")),
            time(order.paid_at),
            time(order.closed_at),
        ];
        let _ = writer.write_record(&record);
    }
    writer.into_inner().unwrap_or_default()
}

/// A value from outside, made inert for spreadsheets: one starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return would be read as a formula, so it gets a leading `'` (OWASP's
/// advice for CSV injection).
fn cell(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_from_outside_are_made_inert() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(cell("-2+3"), "'-2+3");
        assert_eq!(cell("Oolong tea"), "Oolong tea");
        assert_eq!(cell(""), "");
    }
}
