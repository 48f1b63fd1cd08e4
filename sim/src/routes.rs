//! The simulator's HTTP surface: the gateway itself (`/gateway.do`), the cashier's Pay and Cancel,
//! and `/sim/…` routes for tests and people: trades with their delivery attempts, fault knobs, and
//! the simulator's Alipay public key.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use time::OffsetDateTime;
use tower_http::trace::TraceLayer;

use super::api;
use super::biz;
use super::callbacks;
use super::cashier;
use super::faults::Faults;
use super::gateway::{self, ApiMethod, GatewayError, GatewayRequest};
use super::lifecycle::{self, Paid, Reply, TradeError};
use super::server::Shared;
use super::trades::Trade;
use alipay_notify::alipay::form::{FormError, RawParams};

type SharedState = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/gateway.do", get(gateway).post(gateway))
        .route("/sim/cashier/{id}/pay", post(pay))
        .route("/sim/cashier/{id}/cancel", post(cancel))
        .route("/sim/trades", get(list_trades))
        .route("/sim/trades/{out_trade_no}", get(show_trade))
        .route("/sim/trades/{out_trade_no}/faults", post(set_faults))
        .route("/sim/alipay_public_key", get(public_key))
        .with_state(shared)
        .layer(TraceLayer::new_for_http())
}

fn page(status: StatusCode, markup: maud::Markup) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Html(markup.into_string()),
    )
        .into_response()
}

/// Query parameters, plus form-body parameters on a form POST (the query wins on a shared key).
fn read_params(
    query: Option<String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<RawParams, FormError> {
    let query = RawParams::parse(query.unwrap_or_default().as_bytes())?;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if body.is_empty() || !is_form {
        return Ok(query);
    }
    gateway::merge(&query, &RawParams::parse(body)?)
}

async fn gateway(
    State(shared): SharedState,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = OffsetDateTime::now_utc();
    let raw = match read_params(query, &headers, &body) {
        Ok(raw) => raw,
        Err(error) => return refuse(None, &GatewayError::Form(error)),
    };
    let method = gateway::requested_method(&raw);
    match gateway::check(&raw, &shared.apps, now) {
        Ok(request) if request.method == ApiMethod::PagePay => page_pay(&shared, &request, now),
        Ok(request) => api::answer(&shared, &request, now),
        Err(error) => refuse(method, &error),
    }
}

/// A browser (page pay) gets Alipay's error page, HTTP 200 as at Alipay; an API caller gets JSON.
fn refuse(method: Option<ApiMethod>, error: &GatewayError) -> Response {
    tracing::info!(sub_code = error.sub_code(), %error, "gateway request refused");
    if method == Some(ApiMethod::PagePay) {
        let markup = cashier::error(error.sub_code(), &error.sub_msg(), error.sign_content());
        return page(StatusCode::OK, markup);
    }
    api::gateway_failure(method, error)
}

fn trade_error_page(error: &TradeError) -> Response {
    tracing::info!(sub_code = error.sub_code(), %error, "page pay refused");
    page(
        StatusCode::OK,
        cashier::error(error.sub_code(), &error.sub_msg(), None),
    )
}

fn page_pay(shared: &Arc<Shared>, request: &GatewayRequest<'_>, now: OffsetDateTime) -> Response {
    let order = match biz::page_pay_order(&request.biz, now) {
        Ok(order) => order,
        Err(error) => return trade_error_page(&error),
    };
    let reply = Reply {
        charset: request.charset.clone(),
        notify_url: request.param("notify_url").map(str::to_owned),
        return_url: request.param("return_url").map(str::to_owned),
    };
    match lifecycle::open(shared, request.app, order, reply, now) {
        Ok(trade) => page(StatusCode::OK, cashier::cashier(&trade, request.app)),
        Err(error) => trade_error_page(&error),
    }
}

fn cashier_trade(shared: &Shared, cashier_id: &str) -> Option<Trade> {
    shared
        .book
        .with(|book| book.by_cashier_mut(cashier_id).map(|t| t.clone()))
}

async fn pay(State(shared): SharedState, Path(cashier_id): Path<String>) -> Response {
    let now = OffsetDateTime::now_utc();
    match lifecycle::pay(&shared, &cashier_id, now) {
        Ok(Paid::Now(trade) | Paid::Already(trade)) => back_to_merchant(&shared, &trade, now),
        Err(TradeError::NotExist) => page(StatusCode::NOT_FOUND, cashier::not_found()),
        Err(_) => match cashier_trade(&shared, &cashier_id) {
            Some(trade) => page(StatusCode::OK, cashier::closed(&trade)),
            None => page(StatusCode::NOT_FOUND, cashier::not_found()),
        },
    }
}

/// 303 to return_url with the signed return parameters, or a "paid" page without one.
fn back_to_merchant(shared: &Shared, trade: &Trade, now: OffsetDateTime) -> Response {
    let location = shared
        .apps
        .get(&trade.app_id)
        .and_then(|app| callbacks::return_location(trade, app, &shared.alipay_key, now))
        .and_then(|url| HeaderValue::from_str(&url).ok());
    match location {
        Some(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        None => page(StatusCode::OK, cashier::paid(trade)),
    }
}

/// Alipay does not send the buyer back on cancel; the simulator shows a closed page.
async fn cancel(State(shared): SharedState, Path(cashier_id): Path<String>) -> Response {
    let now = OffsetDateTime::now_utc();
    match lifecycle::cancel(&shared, &cashier_id, now) {
        Ok(trade) => page(StatusCode::OK, cashier::closed(&trade)),
        Err(TradeError::HasSuccess) => match cashier_trade(&shared, &cashier_id) {
            Some(trade) => page(StatusCode::OK, cashier::paid(&trade)),
            None => page(StatusCode::NOT_FOUND, cashier::not_found()),
        },
        Err(_) => page(StatusCode::NOT_FOUND, cashier::not_found()),
    }
}

async fn list_trades(State(shared): SharedState) -> Json<Vec<Trade>> {
    Json(shared.book.trades())
}

#[derive(Debug, Deserialize)]
struct AppFilter {
    app_id: Option<String>,
}

fn json_error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn show_trade(
    State(shared): SharedState,
    Path(out_trade_no): Path<String>,
    Query(filter): Query<AppFilter>,
) -> Response {
    let mut matching: Vec<Trade> = shared
        .book
        .trades()
        .into_iter()
        .filter(|t| t.out_trade_no == out_trade_no)
        .filter(|t| filter.app_id.as_ref().is_none_or(|id| *id == t.app_id))
        .collect();
    match matching.len() {
        0 => json_error(StatusCode::NOT_FOUND, format!("no trade {out_trade_no}")),
        1 => Json(matching.remove(0)).into_response(),
        _ => json_error(
            StatusCode::CONFLICT,
            "several apps have this out_trade_no: add ?app_id=".into(),
        ),
    }
}

async fn set_faults(
    State(shared): SharedState,
    Path(out_trade_no): Path<String>,
    body: Bytes,
) -> Response {
    match serde_json::from_slice::<Faults>(&body) {
        Ok(faults) => {
            shared.book.set_faults(&out_trade_no, faults.clone());
            Json(faults).into_response()
        }
        Err(error) => json_error(StatusCode::BAD_REQUEST, format!("invalid faults: {error}")),
    }
}

async fn public_key(State(shared): SharedState) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        shared.alipay_key.public_key_base64(),
    )
        .into_response()
}
