//! The simulator's HTTP surface: the gateway itself (`/gateway.do`), the buyer's pages and buttons
//! (`buyer`: cashier, app SDK, QR page), and `/sim/…` routes for tests and people: trades with
//! their delivery attempts, fault knobs, and the simulator's Alipay public key.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use time::OffsetDateTime;
use tower_http::trace::TraceLayer;

use super::api;
use super::buyer;
use super::faults::Faults;
use super::gateway::{self, ApiMethod, Entry, GatewayError};
use super::layout::Screen;
use super::server::Shared;
use super::trades::Trade;
use alipay_notify::alipay::form::{FormError, RawParams};

type SharedState = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/gateway.do", get(gateway).post(gateway))
        .route("/sim/app/pay", post(buyer::app_pay))
        .route("/sim/cashier/{id}/login", post(buyer::login))
        .route("/sim/cashier/{id}/pay", post(buyer::pay))
        .route("/sim/cashier/{id}/cancel", post(buyer::cancel))
        .route("/sim/qr/{id}", get(buyer::qr_page))
        .route("/sim/qr/{id}/scan", post(buyer::login))
        .route("/sim/trades", get(list_trades))
        .route("/sim/trades/{out_trade_no}", get(show_trade))
        .route("/sim/trades/{out_trade_no}/faults", post(set_faults))
        .route("/sim/alipay_public_key", get(public_key))
        .with_state(shared)
        .layer(TraceLayer::new_for_http())
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
    match gateway::check(&raw, &shared.apps, shared.pki.as_ref(), Entry::Gateway, now) {
        Ok(request) => match request.method.cashier_product() {
            Some(product) => buyer::open_cashier(&shared, &request, product, now),
            None => api::answer(&shared, &request, now),
        },
        Err(error) => refuse(method, &error),
    }
}

/// A browser (page or wap pay) gets Alipay's error page, HTTP 200 as at Alipay; an API caller
/// gets JSON.
fn refuse(method: Option<ApiMethod>, error: &GatewayError) -> Response {
    match method.and_then(ApiMethod::cashier_product) {
        Some(product) => buyer::refused(error, Screen::of(product)),
        None => {
            tracing::info!(sub_code = error.sub_code(), %error, "gateway request refused");
            api::gateway_failure(method, error)
        }
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
