//! Pay links: `GET /pay/{out_trade_no}` is the `pay_url` an order is created with. It signs the
//! gateway request when the buyer opens it, so a link never goes stale and creating an order
//! costs no signature: page and wap answer 303 to the gateway, qr shows our QR page (after a
//! precreate call). An order that can no longer be paid gets a page that says why.
//! `GET /pay/{out_trade_no}/status` is the long poll the QR page follows the order with.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{pages, AppState};
use crate::alipay::pay::PayOrder;
use crate::alipay::product::Product;
use crate::orders::input::valid_out_trade_no;
use crate::orders::{Order, OrderStatus};
use crate::report::Report;

/// How buyers pay here, as configured.
#[derive(Debug, Clone)]
pub struct Checkout {
    /// Whether a browser form may create an order at its own price (demo shops only).
    pub open: bool,
    pub order_expiry: time::Duration,
    /// Never empty (the configuration checks it).
    pub products: Vec<Product>,
    pub public_url: url::Url,
    /// Where the phone cashier's "back" goes.
    pub quit_url: String,
}

impl Checkout {
    /// `{PUBLIC_URL}/pay/{out_trade_no}`.
    pub fn pay_link(&self, out_trade_no: &str) -> String {
        let mut url = self.public_url.clone();
        url.path_segments_mut()
            .map(|mut path| {
                path.pop_if_empty().extend(["pay", out_trade_no]);
            })
            .ok();
        url.into()
    }
}

/// The longest a status poll waits for a change.
const MAX_WAIT: Duration = Duration::from_secs(25);
/// A poll also rereads the order this often, for changes another instance made.
const POLL: Duration = Duration::from_secs(1);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pay/{out_trade_no}", get(open))
        .route("/assets/pay.js", get(script))
}

/// Kept out of the request timeout: a poll may wait longer.
pub fn status_router() -> Router<AppState> {
    Router::new().route("/pay/{out_trade_no}/status", get(status))
}

fn page(status: StatusCode, markup: maud::Markup) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Html(markup.into_string()),
    )
        .into_response()
}

async fn open(State(state): State<AppState>, Path(out_trade_no): Path<String>) -> Response {
    if !valid_out_trade_no(&out_trade_no) {
        return page(StatusCode::NOT_FOUND, pages::unknown_order(&out_trade_no));
    }
    match state.store.order(&out_trade_no).await {
        Ok(Some(order)) => start_payment(&state, &order).await,
        Ok(None) => page(StatusCode::NOT_FOUND, pages::unknown_order(&out_trade_no)),
        Err(error) => {
            tracing::error!(error = ?error, "pay link: database error");
            page(StatusCode::SERVICE_UNAVAILABLE, pages::unavailable())
        }
    }
}

/// Sends the buyer on to pay `order` the way its product pays, or says why it cannot be paid.
pub(super) async fn start_payment(state: &AppState, order: &Order) -> Response {
    let now = OffsetDateTime::now_utc();
    let back = state.checkout.quit_url.as_str();
    if order.status != OrderStatus::Pending {
        return page(StatusCode::OK, pages::order_status(order, None, back));
    }
    if order.expires_at <= now {
        return page(StatusCode::GONE, pages::expired(order, back));
    }
    let request = pay_order(order);
    let alipay = &state.alipay;
    match order.product {
        Product::Page => gateway_redirect(alipay.page_pay_url(&request, now)),
        Product::Wap => gateway_redirect(alipay.wap_pay_url(&request, back, now)),
        Product::Qr => match state.gateway.precreate(alipay, &request).await {
            Ok(answer) => {
                // Relative to /pay/{no}, so it works behind any proxy prefix.
                let status_url = format!("{}/status", order.out_trade_no);
                let qr = pages::Qr {
                    order,
                    qr_code: &answer.value.qr_code,
                    status_url: &status_url,
                    back,
                };
                page(StatusCode::OK, pages::qr(&qr))
            }
            Err(error) => {
                tracing::warn!(out_trade_no = %order.out_trade_no, error = %Report(&error), "precreate failed");
                page(StatusCode::BAD_GATEWAY, pages::unavailable())
            }
        },
        Product::App => page(StatusCode::CONFLICT, pages::in_app(order, back)),
    }
}

/// Never cached: the URL carries a timestamp the gateway accepts for minutes only.
fn gateway_redirect(url: String) -> Response {
    let no_store = [(header::CACHE_CONTROL, "no-store")];
    (no_store, Redirect::to(&url)).into_response()
}

/// What the gateway request for a stored order asks for.
pub(super) fn pay_order(order: &Order) -> PayOrder<'_> {
    PayOrder {
        out_trade_no: &order.out_trade_no,
        total_amount: order.total_amount,
        subject: &order.subject,
        body: order.body.as_deref(),
        time_expire: order.expires_at,
    }
}

#[derive(Deserialize)]
struct StatusQuery {
    /// The status the page shows; the answer waits until the order's differs.
    since: Option<String>,
    wait: Option<u64>,
}

#[derive(Serialize)]
struct StatusView {
    status: OrderStatus,
}

async fn status(
    State(state): State<AppState>,
    Path(out_trade_no): Path<String>,
    Query(query): Query<StatusQuery>,
) -> Response {
    if !valid_out_trade_no(&out_trade_no) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let wait = Duration::from_secs(query.wait.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before the first read, so a payment committed in between still wakes us.
    let mut written = state.store.events_written();
    loop {
        let order = match state.store.order(&out_trade_no).await {
            Ok(Some(order)) => order,
            Ok(None) => return StatusCode::NOT_FOUND.into_response(),
            Err(error) => {
                tracing::error!(error = ?error, "pay status: database error");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        };
        let changed = query.since.as_deref() != Some(order.status.as_str());
        if changed || tokio::time::Instant::now() >= deadline {
            let no_store = [(header::CACHE_CONTROL, "no-store")];
            return (
                no_store,
                Json(StatusView {
                    status: order.status,
                }),
            )
                .into_response();
        }
        tokio::select! {
            _ = written.changed() => {}
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Follows the order on its QR page and reloads it once when the status changes.
const SCRIPT: &str = include_str!("pay.js");

async fn script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        SCRIPT,
    )
        .into_response()
}
