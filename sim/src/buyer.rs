//! The buyer's side of the simulator: the cashier a page.pay or wap.pay request opens at
//! `/gateway.do`, the app SDK taking an order string (`/sim/app/pay`), the phone page behind a
//! precreate QR code (`/sim/qr/{id}`), and the buttons on them: Log in (or Scan), Pay and Cancel.
//! Refusals are pages too, HTTP 200 as at Alipay; only an unknown cashier is a 404.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use time::OffsetDateTime;

use super::callbacks;
use super::cashier;
use super::gateway::{self, Entry, GatewayError, GatewayRequest};
use super::layout::Screen;
use super::lifecycle::{self, Paid, TradeError};
use super::notices;
use super::server::Shared;
use super::trades::Trade;
use alipay_notify::alipay::form::RawParams;
use alipay_notify::alipay::product::Product;

type SharedState = State<Arc<Shared>>;

pub(crate) fn page(status: StatusCode, markup: maud::Markup) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Html(markup.into_string()),
    )
        .into_response()
}

fn not_found() -> Response {
    page(StatusCode::NOT_FOUND, notices::not_found())
}

/// Alipay's error page for a request the gateway (or the app SDK) refused.
pub(crate) fn refused(error: &GatewayError, screen: Screen) -> Response {
    tracing::info!(sub_code = error.sub_code(), %error, "cashier request refused");
    let markup = notices::error(
        error.sub_code(),
        &error.sub_msg(),
        error.sign_content(),
        screen,
    );
    page(StatusCode::OK, markup)
}

fn trade_error_page(error: &TradeError, screen: Screen) -> Response {
    tracing::info!(sub_code = error.sub_code(), %error, "cashier request refused");
    page(
        StatusCode::OK,
        notices::error(error.sub_code(), &error.sub_msg(), None, screen),
    )
}

/// `/sim/qr/{id}`: what a precreate answers as `qr_code`.
pub(crate) fn qr_code(shared: &Shared, trade: &Trade) -> String {
    format!("{}/sim/qr/{}", shared.base_url, trade.cashier_id)
}

/// The page for the trade as it stands: paid, closed (or out of time), or its cashier.
fn show(shared: &Shared, trade: &Trade, now: OffsetDateTime) -> Response {
    let Some(app) = shared.apps.get(&trade.app_id) else {
        return not_found();
    };
    let markup = match trade.status {
        Some(status) if status.is_paid() => notices::paid(trade),
        _ if !trade.payable(now) => notices::closed(trade, false),
        _ if trade.product == Product::Qr => cashier::qr(trade, app, &qr_code(shared, trade)),
        _ => cashier::cashier(trade, app),
    };
    page(StatusCode::OK, markup)
}

/// A checked page.pay or wap.pay request: the cashier for its trade.
pub(crate) fn open_cashier(
    shared: &Arc<Shared>,
    request: &GatewayRequest<'_>,
    product: Product,
    now: OffsetDateTime,
) -> Response {
    match lifecycle::create(shared, request, product, now) {
        Ok(trade) => show(shared, &trade, now),
        Err(error) => trade_error_page(&error, Screen::of(product)),
    }
}

/// Alipay's app SDK given an order string: the body, exactly as the merchant's server signed and
/// encoded it, whatever its content type says. It goes through every gateway check.
pub(crate) async fn app_pay(State(shared): SharedState, body: Bytes) -> Response {
    let now = OffsetDateTime::now_utc();
    let raw = match RawParams::parse(&body) {
        Ok(raw) => raw,
        Err(error) => return refused(&GatewayError::Form(error), Screen::Phone),
    };
    match gateway::check(&raw, &shared.apps, shared.pki.as_ref(), Entry::AppSdk, now) {
        Ok(request) => open_cashier(&shared, &request, Product::App, now),
        Err(error) => refused(&error, Screen::Phone),
    }
}

fn cashier_trade(shared: &Shared, cashier_id: &str) -> Option<Trade> {
    shared
        .book
        .with(|book| book.by_cashier_mut(cashier_id).map(|t| t.clone()))
}

/// `GET /sim/qr/{id}`: the QR code's phone page (only for a precreate trade).
pub(crate) async fn qr_page(State(shared): SharedState, Path(id): Path<String>) -> Response {
    match cashier_trade(&shared, &id) {
        Some(trade) if trade.product == Product::Qr => {
            show(&shared, &trade, OffsetDateTime::now_utc())
        }
        _ => not_found(),
    }
}

/// Log in at a cashier, or scan a QR code: the trade now waits for payment. A paid or closed
/// trade shows its paid or closed page instead.
pub(crate) async fn login(State(shared): SharedState, Path(id): Path<String>) -> Response {
    let now = OffsetDateTime::now_utc();
    match lifecycle::login(&shared, &id, now) {
        Ok(trade) => show(&shared, &trade, now),
        Err(TradeError::NotExist) => not_found(),
        Err(_) => match cashier_trade(&shared, &id) {
            Some(trade) => show(&shared, &trade, now),
            None => not_found(),
        },
    }
}

pub(crate) async fn pay(State(shared): SharedState, Path(id): Path<String>) -> Response {
    let now = OffsetDateTime::now_utc();
    match lifecycle::pay(&shared, &id, now) {
        Ok(Paid::Now(trade) | Paid::Already(trade)) => back_to_merchant(&shared, &trade, now),
        Err(TradeError::NotExist) => not_found(),
        Err(_) => match cashier_trade(&shared, &id) {
            Some(trade) => show(&shared, &trade, now),
            None => not_found(),
        },
    }
}

/// 303 to return_url with the signed return parameters, or a "paid" page without one.
fn back_to_merchant(shared: &Shared, trade: &Trade, now: OffsetDateTime) -> Response {
    let location = shared
        .apps
        .get(&trade.app_id)
        .and_then(|app| callbacks::return_location(trade, app, shared.signer(app).key(), now))
        .and_then(|url| HeaderValue::from_str(&url).ok());
    match location {
        Some(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        None => page(StatusCode::OK, notices::paid(trade)),
    }
}

/// Alipay does not send the buyer back on cancel; the simulator shows a closed page.
pub(crate) async fn cancel(State(shared): SharedState, Path(id): Path<String>) -> Response {
    let now = OffsetDateTime::now_utc();
    match lifecycle::cancel(&shared, &id, now) {
        Ok(trade) => page(StatusCode::OK, notices::closed(&trade, true)),
        Err(TradeError::HasSuccess) => match cashier_trade(&shared, &id) {
            Some(trade) => page(StatusCode::OK, notices::paid(&trade)),
            None => not_found(),
        },
        Err(_) => not_found(),
    }
}
