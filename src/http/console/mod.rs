//! The operations console under `/console`: server-rendered pages (maud escapes every value) for
//! the people who answer "did this buyer pay?". Off unless operators are configured.
//!
//! - [`auth`]: operators, sessions, CSRF tokens, the login brake.
//! - `layout`: the frame, stylesheet and policy of every page.
//! - `overview`: the first page; `export`: the order list as CSV; `login`: logging in and out; `orders`: the order list; `order`: an order's page; `actions`:
//!   what operators do to an order, confirmed first and recorded; `anomalies`: the messages that
//!   disagree with our records, and their reviews.

mod actions;
mod anomalies;
pub mod auth;
mod export;
mod layout;
mod login;
mod order;
mod orders;
mod overview;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use time::OffsetDateTime;

use super::AppState;
use auth::{LoginBrake, Operators, Session};

/// What the console keeps for its whole life.
#[derive(Debug)]
pub struct Console {
    pub operators: Operators,
    pub brake: LoginBrake,
    /// Cookies get `Secure` when the service is reached over HTTPS (PUBLIC_URL).
    pub secure_cookies: bool,
    /// PUBLIC_URL's origin: a form posted from any other is refused.
    origin: String,
    csp: HeaderValue,
}

impl Console {
    /// `public_url`: where browsers reach the service (PUBLIC_URL).
    pub fn new(operators: Operators, public_url: &url::Url) -> Self {
        Self {
            operators,
            brake: LoginBrake::default(),
            secure_cookies: public_url.scheme() == "https",
            origin: public_url.origin().ascii_serialization(),
            csp: layout::content_security_policy(),
        }
    }
}

/// Refuses a POST whose `Origin` (browsers send it with every form post) is not ours: a second
/// wall behind SameSite cookies and CSRF tokens, and the only one for the login form (a page
/// elsewhere cannot log a browser in to someone else's session).
async fn same_origin(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let foreign = request.method() == axum::http::Method::POST
        && request
            .headers()
            .get(header::ORIGIN)
            .zip(state.console.as_ref())
            .is_some_and(|(origin, console)| origin.as_bytes() != console.origin.as_bytes());
    if foreign {
        tracing::warn!(
            path = request.uri().path(),
            "console post from another origin refused"
        );
        return StatusCode::FORBIDDEN.into_response();
    }
    next.run(request).await
}

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/console", get(overview::page))
        .route("/console/login", get(login::form).post(login::submit))
        .route("/console/logout", post(login::logout))
        .route("/console/anomalies", get(anomalies::list))
        .route("/console/anomalies/{id}", get(anomalies::message))
        .route(
            "/console/anomalies/messages/{id}/raw",
            get(anomalies::bytes),
        )
        .route("/console/anomalies/{id}/review", post(anomalies::review))
        .route("/console/orders", get(orders::list))
        .route("/console/orders.csv", get(export::csv))
        .route("/console/orders/{out_trade_no}", get(order::page))
        .route(
            "/console/orders/{out_trade_no}/messages/{id}",
            get(order::raw_message),
        )
        .route(
            "/console/orders/{out_trade_no}/messages/{id}/raw",
            get(order::raw_bytes),
        )
        .route(
            "/console/orders/{out_trade_no}/redeliver",
            post(actions::redeliver),
        )
        .route(
            "/console/orders/{out_trade_no}/reconcile",
            post(actions::reconcile),
        )
        .route(
            "/console/orders/{out_trade_no}/refund",
            post(actions::refund),
        )
        .route("/console/orders/{out_trade_no}/close", post(actions::close))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            same_origin,
        ))
}

/// The console, for handlers: 404 when it is off (its routes are not mounted then anyway).
pub struct On(pub Arc<Console>);

impl FromRequestParts<AppState> for On {
    type Rejection = StatusCode;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, StatusCode> {
        state.console.clone().map(On).ok_or(StatusCode::NOT_FOUND)
    }
}

/// The session of the request's cookie; without one, the browser is sent to log in.
impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let On(console) = On::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        cookie(&parts.headers, auth::COOKIE)
            .and_then(|value| console.operators.session(&value, OffsetDateTime::now_utc()))
            .ok_or_else(|| Redirect::to("/console/login").into_response())
    }
}

/// One cookie's value from the request's `Cookie` headers.
fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The peer's address (the proxy's, behind one; the brake then slows the proxy's clients
/// together, which errs on the safe side).
fn peer(parts: &axum::http::Extensions) -> IpAddr {
    parts
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// An order number inside a URL path.
fn path_segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
