//! The HTTP surface: routes, shared state and the middleware every request passes through.

mod api;
mod checkout;
pub mod console;
mod error;
mod events;
mod health;
pub mod notify;
mod pages;
mod paylink;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::Router;
use secrecy::SecretString;
use tower::ServiceBuilder;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

pub use error::{ApiError, PageError};
pub use paylink::Checkout;

use crate::alipay::gateway::GatewayClient;
use crate::alipay::Alipay;
use crate::metrics::Metrics;
use crate::orders::OrderStore;

/// Larger than any Alipay notification (a few KiB); bigger bodies are refused with 413.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// Everything a handler needs, passed explicitly.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn OrderStore>,
    pub alipay: Arc<Alipay>,
    /// `None` disables the JSON API: every call answers 401.
    pub api_token: Option<Arc<SecretString>>,
    pub checkout: Arc<Checkout>,
    /// For gateway API calls (refunds).
    pub gateway: Arc<GatewayClient>,
    pub metrics: Arc<Metrics>,
    /// Load shedding on the notify route.
    pub notify_admission: Arc<notify::Admission>,
    /// A request not answered by then, e.g. from a client too slow to send its body, gets 408.
    pub request_timeout: Duration,
    /// The configured webhook endpoints' names (a redelivery goes to each).
    pub webhook_endpoints: Arc<Vec<String>>,
    /// `None` turns the operations console off: its routes are not mounted.
    pub console: Option<Arc<console::Console>>,
}

pub fn router(state: AppState) -> Router {
    let timeout = state.request_timeout;
    let csp = content_security_policy(&state.alipay.config.gateway);
    let header = |name, value: HeaderValue| SetResponseHeaderLayer::if_not_present(name, value);
    let mut others = Router::new()
        .merge(health::router())
        .merge(api::router())
        .merge(checkout::router())
        .merge(paylink::router());
    if state.console.is_some() {
        others = others.merge(console::router(&state));
    }
    let others = others
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(RequestBodyTimeoutLayer::new(timeout));
    let browsers_and_api = Router::new()
        .merge(others)
        // Long polls wait up to 30 s; they read no body.
        .merge(events::router().layer(DefaultBodyLimit::max(0)))
        .merge(paylink::status_router().layer(DefaultBodyLimit::max(0)))
        // Unknown paths get the stack's headers and span too.
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
                .layer(
                    TraceLayer::new_for_http()
                        // Every 5xx of ours is logged with its cause where it happens; at error
                        // level tower-http would add a second line each.
                        .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG))
                        .make_span_with(|request: &Request<_>| {
                            let id = request
                                .headers()
                                .get("x-request-id")
                                .and_then(|v| v.to_str().ok());
                            tracing::info_span!(
                                "request",
                                id = id.unwrap_or("-"),
                                method = %request.method(),
                                path = request.uri().path(),
                            )
                        }),
                )
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(header(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(header(
                    header::X_FRAME_OPTIONS,
                    HeaderValue::from_static("DENY"),
                ))
                .layer(header(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ))
                .layer(header(header::CONTENT_SECURITY_POLICY, csp)),
        );
    Router::new()
        .merge(browsers_and_api)
        // Alipay's route is outside that stack: a machine reads its one-word reply, so browser
        // headers mean nothing there, and its one log line (with the order, the notify_id and
        // the verdict) finds a notification better than a request id would. The stack's request
        // id, span and headers were a tenth of the CPU a notification costs (README, "Where the
        // CPU went"). It keeps its own body limit and timeout, answering them in the protocol's
        // words.
        .merge(notify::router())
        .with_state(state)
}

/// A random (v4) UUID per request, from a thread-local generator: tower-http's `MakeRequestUuid`
/// asks the kernel for every one, a system call per request. An id is for finding a request in
/// the logs, not a secret.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let uuid = uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid();
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let value = HeaderValue::from_str(uuid.hyphenated().encode_lower(&mut text)).ok()?;
        Some(RequestId::new(value))
    }
}

/// Pages load nothing from elsewhere (the one script is ours); forms may only go to us and (by
/// redirect) the gateway.
fn content_security_policy(gateway: &str) -> HeaderValue {
    let origin = url::Url::parse(gateway)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let policy = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; \
         form-action 'self' {origin}; frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"))
}
