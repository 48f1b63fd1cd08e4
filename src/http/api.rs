//! The authenticated JSON API for merchants' back ends: create orders, read their state.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Serialize;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::paylink::pay_order;
use super::{ApiError, AppState};
use crate::alipay::product::Product;
use crate::orders::input::{choose_product, valid_out_trade_no, OrderRequest};
use crate::orders::{Created, Order, OrderDocument, OrderStatus};
use crate::refunds::{self, RefundRequest};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/orders", post(create_order))
        .route("/api/orders/{out_trade_no}", get(show_order))
        .route("/api/orders/{out_trade_no}/refunds", post(create_refund))
}

/// A created order with what its product needs to be paid, while it can still be paid: the pay
/// link (page, wap, qr) to send the buyer to, or the order string (app) for the merchant's app.
#[derive(Serialize)]
struct CreatedOrder {
    #[serde(flatten)]
    order: Order,
    #[serde(skip_serializing_if = "Option::is_none")]
    pay_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_string: Option<String>,
}

impl CreatedOrder {
    fn new(state: &AppState, order: Order) -> Self {
        let (mut pay_url, mut order_string) = (None, None);
        if order.status == OrderStatus::Pending {
            match order.product {
                // Signed now, for the app to use now; an app asks again for a fresh one.
                Product::App => {
                    let request = pay_order(&order);
                    order_string = Some(
                        state
                            .alipay
                            .app_order_string(&request, OffsetDateTime::now_utc()),
                    );
                }
                _ => pay_url = Some(state.checkout.pay_link(&order.out_trade_no)),
            }
        }
        Self {
            order,
            pay_url,
            order_string,
        }
    }
}

/// An order with its refunds, as `GET /api/orders/{out_trade_no}` shows it (and events carry it).
async fn document(state: &AppState, out_trade_no: &str) -> Result<OrderDocument, ApiError> {
    let order = state
        .store
        .order(out_trade_no)
        .await?
        .ok_or(ApiError::NotFound)?;
    let refunds = state.store.refunds(out_trade_no).await?;
    Ok(OrderDocument { order, refunds })
}

/// Reads a JSON body ourselves, so a bad one gets our error format (422) like any invalid input.
fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    Ok(serde_json::from_slice(body)?)
}

/// A caller that presented the API token. Taking it as an argument is what makes a handler
/// authenticated: there is no call to forget.
pub(crate) struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    /// Compares the bearer token in constant time; no token configured means no API.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let expected = state.api_token.as_ref().ok_or(ApiError::Unauthorized)?;
        let given = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        let matches: bool = given
            .as_bytes()
            .ct_eq(expected.expose_secret().as_bytes())
            .into();
        matches.then_some(Self).ok_or(ApiError::Unauthorized)
    }
}

/// Creates an order, or answers the existing one for a repeated request (200), so a merchant may
/// retry safely. The same number with another subject, amount or product is a conflict.
async fn create_order(
    _: Authorized,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<CreatedOrder>), ApiError> {
    let request: OrderRequest = json(&body)?;
    let checkout = &state.checkout;
    let product = choose_product(
        request.product.as_deref(),
        Product::Page,
        &checkout.products,
    )?;
    let new = request.validate(product, OffsetDateTime::now_utc(), checkout.order_expiry)?;
    let (status, order) = match state.store.create_order(&new).await? {
        Created::New(order) => (StatusCode::CREATED, order),
        Created::Existing(order)
            if order.subject == new.subject
                && order.total_amount == new.total_amount
                && order.product == new.product =>
        {
            (StatusCode::OK, order)
        }
        Created::Existing(_) => return Err(ApiError::OrderConflict(new.out_trade_no)),
    };
    tracing::info!(out_trade_no = %order.out_trade_no, product = %order.product, created = status == StatusCode::CREATED, "order");
    Ok((status, Json(CreatedOrder::new(&state, order))))
}

async fn show_order(
    _: Authorized,
    State(state): State<AppState>,
    Path(out_trade_no): Path<String>,
) -> Result<Json<OrderDocument>, ApiError> {
    if !valid_out_trade_no(&out_trade_no) {
        return Err(ApiError::NotFound);
    }
    Ok(Json(document(&state, &out_trade_no).await?))
}

/// Refunds part or all of a paid order. Answers 201 with the refund and the order as it now is.
async fn create_refund(
    _: Authorized,
    State(state): State<AppState>,
    Path(out_trade_no): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let request: RefundRequest = json(&body)?;
    let refund = refunds::refund(
        &state.alipay,
        state.store.as_ref(),
        &state.gateway,
        &out_trade_no,
        request,
    )
    .await?;
    let order = document(&state, &out_trade_no).await?;
    let body = serde_json::json!({ "refund": refund, "order": order });
    Ok((StatusCode::CREATED, Json(body)))
}
