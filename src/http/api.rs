//! The authenticated JSON API for merchants' back ends: create orders, read their state.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Serialize;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::{AppState, Error};
use crate::orders::input::{valid_out_trade_no, OrderRequest};
use crate::orders::{Created, Order, OrderStatus, Refund};
use crate::refunds::{self, RefundRequest};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/orders", post(create_order))
        .route("/api/orders/{out_trade_no}", get(show_order))
        .route("/api/orders/{out_trade_no}/refunds", post(create_refund))
}

#[derive(Serialize)]
struct OrderWithPayUrl {
    #[serde(flatten)]
    order: Order,
    /// Present while the order can still be paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pay_url: Option<String>,
}

/// An order with its refunds, as `GET /api/orders/{out_trade_no}` shows it.
#[derive(Serialize)]
struct OrderView {
    #[serde(flatten)]
    order: Order,
    refunds: Vec<Refund>,
}

/// Reads a JSON body ourselves, so a bad one gets our error format (422) like any invalid input.
fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(body).map_err(|e| Error::BadRequest(format!("invalid JSON: {e}")))
}

/// Compares the bearer token in constant time; no token configured means no API.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Error> {
    let expected = state.api_token.as_ref().ok_or(Error::Unauthorized)?;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(Error::Unauthorized)?;
    let matches: bool = given
        .as_bytes()
        .ct_eq(expected.expose_secret().as_bytes())
        .into();
    matches.then_some(()).ok_or(Error::Unauthorized)
}

async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<OrderWithPayUrl>), Error> {
    authorize(&state, &headers)?;
    let request: OrderRequest = json(&body)?;
    let new = request
        .validate(OffsetDateTime::now_utc(), state.order_expiry)
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let (status, order) = match state.store.create_order(&new).await? {
        Created::New(order) => (StatusCode::CREATED, order),
        Created::Existing(order)
            if order.subject == new.subject && order.total_amount == new.total_amount =>
        {
            (StatusCode::OK, order)
        }
        Created::Existing(_) => {
            return Err(Error::Conflict(format!(
                "order {} exists with a different subject or amount",
                new.out_trade_no
            )))
        }
    };
    tracing::info!(out_trade_no = %order.out_trade_no, created = status == StatusCode::CREATED, "order");
    let pay_url = (order.status == OrderStatus::Pending).then(|| state.pay_url(&order));
    Ok((status, Json(OrderWithPayUrl { order, pay_url })))
}

async fn show_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(out_trade_no): Path<String>,
) -> Result<Json<OrderView>, Error> {
    authorize(&state, &headers)?;
    if !valid_out_trade_no(&out_trade_no) {
        return Err(Error::NotFound);
    }
    let order = state
        .store
        .order(&out_trade_no)
        .await?
        .ok_or(Error::NotFound)?;
    let refunds = state.store.refunds(&out_trade_no).await?;
    Ok(Json(OrderView { order, refunds }))
}

/// Refunds part or all of a paid order. Answers 201 with the refund and the order as it now is.
async fn create_refund(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(out_trade_no): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), Error> {
    authorize(&state, &headers)?;
    let request: RefundRequest = json(&body)?;
    let refund = refunds::refund(
        &state.alipay,
        state.store.as_ref(),
        &state.gateway,
        &out_trade_no,
        request,
    )
    .await?;
    let order = state
        .store
        .order(&out_trade_no)
        .await?
        .ok_or(Error::NotFound)?;
    let refunds = state.store.refunds(&out_trade_no).await?;
    let body = serde_json::json!({ "refund": refund, "order": OrderView { order, refunds } });
    Ok((StatusCode::CREATED, Json(body)))
}
