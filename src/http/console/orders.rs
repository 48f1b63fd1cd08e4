//! The order list: filters, a search by any of an order's numbers, keyset pages.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use time::macros::format_description;
use time::{Date, PrimitiveDateTime, Time, UtcOffset};

use super::auth::Session;
use super::{layout, path_segment, On};
use crate::alipay::product::Product;
use crate::http::AppState;
use crate::money::Amount;
use crate::orders::query::{Cursor, OrderFilter};
use crate::orders::{Order, OrderStatus};
use crate::report::Report;

/// Orders per page.
const PAGE: i64 = 50;

pub(super) const BEIJING: UtcOffset = match UtcOffset::from_hms(8, 0, 0) {
    Ok(offset) => offset,
    Err(_) => panic!("a valid offset"),
};

/// The list's query string, as the filter form sends it: every field may be empty.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    product: String,
    /// A Beijing date, `YYYY-MM-DD`: created that day or later.
    #[serde(default)]
    from: String,
    /// A Beijing date: created that day or earlier.
    #[serde(default)]
    to: String,
    /// Yuan, e.g. `10` or `9.90`.
    #[serde(default)]
    min: String,
    #[serde(default)]
    max: String,
    /// An out_trade_no, trade_no or buyer id.
    #[serde(default)]
    q: String,
    #[serde(default)]
    after: String,
}

impl ListQuery {
    /// The filter asked for, or what is wrong with it (said on the page, nothing listed).
    pub(super) fn filter(&self) -> Result<(OrderFilter, Option<Cursor>), String> {
        fn given(text: &str) -> Option<&str> {
            Some(text.trim()).filter(|t| !t.is_empty())
        }
        let status = match given(&self.status) {
            Some(text) => Some(OrderStatus::parse(text).ok_or("unknown status")?),
            None => None,
        };
        let product = match given(&self.product) {
            Some(text) => Some(Product::parse(text).ok_or("unknown product")?),
            None => None,
        };
        let day = |text: &str, what: &str| -> Result<Date, String> {
            Date::parse(text, format_description!("[year]-[month]-[day]"))
                .map_err(|_| format!("{what} must be a date like 2026-12-05"))
        };
        let midnight =
            |date: Date| PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_offset(BEIJING);
        let created_from = given(&self.from)
            .map(|t| day(t, "from").map(midnight))
            .transpose()?;
        let created_to = given(&self.to)
            .map(|t| day(t, "to").map(|d| midnight(d.next_day().unwrap_or(d))))
            .transpose()?;
        let fen = |text: &str, what: &str| -> Result<i64, String> {
            Amount::parse(text)
                .map(Amount::fen)
                .map_err(|_| format!("{what} must be an amount in yuan like 9.90"))
        };
        let min_fen = given(&self.min).map(|t| fen(t, "min")).transpose()?;
        let max_fen = given(&self.max).map(|t| fen(t, "max")).transpose()?;
        let search = given(&self.q).map(str::to_owned);
        let after = match given(&self.after) {
            Some(text) => Some(Cursor::decode(text).ok_or("that page link is not valid")?),
            None => None,
        };
        let filter = OrderFilter {
            status,
            product,
            created_from,
            created_to,
            min_fen,
            max_fen,
            search,
        };
        Ok((filter, after))
    }

    /// This query string with another page cursor.
    fn with_after(&self, cursor: &Cursor) -> String {
        let mut query = self.without_after();
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str("after=");
        query.push_str(&cursor.encode());
        query
    }

    /// The filters alone, as a query string.
    fn without_after(&self) -> String {
        let pairs = [
            ("status", self.status.as_str()),
            ("product", &self.product),
            ("from", &self.from),
            ("to", &self.to),
            ("min", &self.min),
            ("max", &self.max),
            ("q", &self.q),
        ];
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
            query.append_pair(key, value);
        }
        query.finish()
    }
}

pub async fn list(
    State(state): State<AppState>,
    On(console): On,
    session: Session,
    Query(query): Query<ListQuery>,
) -> Response {
    let (page, error) = match query.filter() {
        Ok((filter, after)) => match state.store.order_page(&filter, after.as_ref(), PAGE).await {
            Ok(page) => (Some(page), None),
            Err(error) => {
                tracing::error!(error = %Report(&error), "console order list failed");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        },
        Err(problem) => (None, Some(problem)),
    };
    let content = html! {
        h1 { "Orders" }
        div class="card" { (filters(&query)) }
        @if let Some(error) = error { p class="error" role="alert" { (error) } }
        @if let Some(page) = page {
            div class="card" {
                @if page.orders.is_empty() {
                    p class="muted" { "No orders match." }
                } @else {
                    (table(&page.orders))
                }
                @if let Some(next) = &page.next {
                    p class="pager" {
                        a href={ "/console/orders?" (query.with_after(next)) } rel="next" { "Older orders →" }
                    }
                }
            }
        }
    };
    layout::page(&console.csp, "Orders", Some(&session), content)
}

fn filters(query: &ListQuery) -> Markup {
    let option = |value: &str, current: &str| {
        html! { option value=(value) selected[value == current] { (if value.is_empty() { "any" } else { value }) } }
    };
    html! {
        form class="filters" method="get" action="/console/orders" role="search" {
            label { "Search" input type="search" name="q" value=(query.q)
                placeholder="out_trade_no, trade_no or buyer id" size="30"; }
            label { "Status" select name="status" {
                (option("", &query.status))
                @for status in ["pending", "paid", "closed", "refunded"] { (option(status, &query.status)) }
            } }
            label { "Product" select name="product" {
                (option("", &query.product))
                @for product in Product::ALL { (option(product.as_str(), &query.product)) }
            } }
            label { "Created from" input type="date" name="from" value=(query.from); }
            label { "to" input type="date" name="to" value=(query.to); }
            label { "Amount ≥" input name="min" value=(query.min) size="7" inputmode="decimal"; }
            label { "≤" input name="max" value=(query.max) size="7" inputmode="decimal"; }
            button type="submit" { "Filter" }
            a href="/console/orders" { "Clear" }
            a href={ "/console/orders.csv?" (query.without_after()) } id="csv" download { "Download CSV" }
        }
    }
}

fn table(orders: &[Order]) -> Markup {
    html! {
        table {
            thead { tr {
                th { "Created (Beijing)" } th { "out_trade_no" } th { "Subject" }
                th class="num" { "Amount" } th class="num" { "Refunded" } th { "Status" }
                th { "Product" } th { "trade_no" }
            } }
            tbody {
                @for order in orders {
                    tr {
                        td class="when" { (layout::time(order.created_at)) }
                        td { a href={ "/console/orders/" (path_segment(&order.out_trade_no)) } { (order.out_trade_no) } }
                        td { (order.subject) }
                        td class="num" { (order.total_amount) }
                        td class="num" { (refunded(order)) }
                        td class={ "status " (order.status.as_str()) } { (order.status.as_str()) }
                        td { (order.product.as_str()) }
                        td { (order.trade_no.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

fn refunded(order: &Order) -> String {
    match Amount::from_fen(order.refunded_fen) {
        Ok(amount) if order.refunded_fen > 0 => amount.to_string(),
        _ => String::new(),
    }
}
