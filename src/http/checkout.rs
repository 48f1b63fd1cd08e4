//! The buyer's side: the shop form that sends a browser to Alipay, and the return_url page
//! it comes back to. Neither ever marks an order paid; only verified notifications do.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use time::OffsetDateTime;

use super::paylink::start_payment;
use super::{pages, AppState, PageError};
use crate::alipay::form::RawParams;
use crate::alipay::product::Product;
use crate::money::Amount;
use crate::orders::events::EventType;
use crate::orders::input::{choose_product, valid_out_trade_no, InputError, OrderRequest};
use crate::orders::{Created, Order, OrderStatus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(shop))
        .route("/alipay/create", post(create))
        .route("/payment/success", get(payment_return))
}

async fn shop(State(state): State<AppState>) -> Html<String> {
    Html(pages::shop(&state.checkout).into_string())
}

#[derive(Debug)]
struct CheckoutForm {
    out_trade_no: Option<String>,
    subject: Option<String>,
    total_amount: Option<String>,
    product: Option<String>,
}

impl CheckoutForm {
    /// Decoded as strictly as notifications: bad escapes, invalid UTF-8 or repeated fields are
    /// refused rather than guessed at.
    fn parse(body: &[u8]) -> Result<Self, PageError> {
        let fields = RawParams::parse(body).and_then(|raw| raw.decode())?;
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        Ok(Self {
            out_trade_no: field("out_trade_no"),
            subject: field("subject"),
            total_amount: field("total_amount"),
            product: field("product"),
        })
    }
}

/// A phone's browser, by the User-Agent tokens every phone browser sends (and tablets mostly
/// don't): such a buyer gets the phone cashier unless the form chose a product.
fn is_phone(headers: &HeaderMap) -> bool {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    [
        "Mobile",
        "Android",
        "iPhone",
        "AlipayClient",
        "MicroMessenger",
    ]
    .iter()
    .any(|token| agent.contains(token))
}

/// Sends the browser on to pay: to the gateway (page, wap) or to the QR page (qr). The price of an
/// existing order comes from the database; a new order from a form is accepted only when checkout
/// is open. App orders are made through the API: a browser cannot pay them.
async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let form = CheckoutForm::parse(&body)?;
    let existing = match form.out_trade_no.as_deref().filter(|s| !s.is_empty()) {
        Some(no) if !valid_out_trade_no(no) => return Err(InputError::OutTradeNo.into()),
        Some(no) => state.store.order(no).await?,
        None => None,
    };
    let order = match existing {
        Some(order) => payable(order, form.total_amount.as_deref())?,
        None if !state.checkout.open => return Err(PageError::CheckoutClosed),
        None => {
            let fallback = if is_phone(&headers) {
                Product::Wap
            } else {
                Product::Page
            };
            let in_browser: Vec<Product> = state
                .checkout
                .products
                .iter()
                .copied()
                .filter(|p| *p != Product::App)
                .collect();
            let product = choose_product(form.product.as_deref(), fallback, &in_browser)?;
            let request = OrderRequest {
                out_trade_no: form.out_trade_no,
                subject: form.subject.unwrap_or_default(),
                total_amount: form.total_amount.unwrap_or_default(),
                body: None,
                product: None,
            };
            let new = request.validate(
                product,
                OffsetDateTime::now_utc(),
                state.checkout.order_expiry,
            )?;
            match state.store.create_order(&new).await? {
                Created::New(order) => order,
                // Raced with another request for the same number: same rules as an existing order.
                Created::Existing(order) => payable(order, Some(&new.total_amount.to_string()))?,
            }
        }
    };
    tracing::info!(out_trade_no = %order.out_trade_no, product = %order.product, "buyer sent to pay");
    if order.product == Product::Qr {
        // The QR page lives at the pay link, so that reloading or sharing it works.
        let link = state.checkout.pay_link(&order.out_trade_no);
        return Ok(Redirect::to(&link).into_response());
    }
    Ok(start_payment(&state, &order).await)
}

/// An existing order can be paid while pending and unexpired, at its stored amount only.
fn payable(order: Order, form_amount: Option<&str>) -> Result<Order, PageError> {
    if order.status != OrderStatus::Pending {
        return Err(PageError::NotPending(order.out_trade_no, order.status));
    }
    if order.expires_at <= OffsetDateTime::now_utc() {
        return Err(PageError::Expired(order.out_trade_no));
    }
    if let Some(amount) = form_amount.filter(|a| !a.is_empty()) {
        if Amount::parse(amount.trim()).ok() != Some(order.total_amount) {
            return Err(PageError::AmountDiffers);
        }
    }
    Ok(order)
}

/// Alipay's return_url. The signature is checked so the page never shows forged data, but the
/// status shown is the stored one: the browser's word never marks an order paid.
async fn payment_return(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let page = |status, markup: maud::Markup| {
        (
            status,
            [(header::CACHE_CONTROL, "no-store")],
            Html(markup.into_string()),
        )
            .into_response()
    };
    let raw = RawParams::parse(query.unwrap_or_default().as_bytes());
    let verified = match raw
        .map_err(Into::into)
        .and_then(|raw| state.alipay.verify_callback(&raw))
    {
        Ok(verified) => verified,
        Err(error) => {
            tracing::warn!(reason = error.reason(), "return_url rejected");
            return page(StatusCode::BAD_REQUEST, pages::unverified());
        }
    };
    let Some(out_trade_no) = verified.get("out_trade_no") else {
        return page(StatusCode::BAD_REQUEST, pages::unverified());
    };
    if !valid_out_trade_no(out_trade_no) {
        return page(StatusCode::NOT_FOUND, pages::unknown_order(out_trade_no));
    }
    match state.store.order(out_trade_no).await {
        Ok(Some(order)) => {
            let told = if state.webhook_endpoints.is_empty() || order.status != OrderStatus::Paid {
                None
            } else {
                let paid = EventType::OrderPaid;
                state.store.delivered(out_trade_no, paid).await.ok()
            };
            let back = &state.checkout.quit_url;
            page(StatusCode::OK, pages::order_status(&order, told, back))
        }
        Ok(None) => page(StatusCode::NOT_FOUND, pages::unknown_order(out_trade_no)),
        Err(error) => {
            tracing::error!(error = ?error, "return_url: database error");
            page(StatusCode::SERVICE_UNAVAILABLE, pages::unavailable())
        }
    }
}
