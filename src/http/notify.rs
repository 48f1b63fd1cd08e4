//! `POST /alipay/notify`: Alipay's asynchronous notifications. Answers `text/plain` `success`
//! only once the effect is committed; anything else makes Alipay resend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::routing::post;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError};
use prometheus_client::metrics::gauge::Gauge;
use time::OffsetDateTime;

use super::{AppState, BODY_LIMIT};
use crate::alipay::callback::CallbackError;
use crate::notify::{self, NotifyError};
use crate::orders::Verdict;
use crate::report::Report;

/// Not under the other routes' timeout and body limit layers: they would answer in their own
/// words, and every reply here must be `success` or `fail`.
pub fn router() -> Router<AppState> {
    Router::new().route("/alipay/notify", post(receive).fallback(wrong_method))
}

type Reply = (
    StatusCode,
    [(header::HeaderName, &'static str); 1],
    &'static str,
);

fn reply(status: StatusCode, body: &'static str) -> Reply {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
}

/// Alipay sometimes sends `application/x-www-form-urlencoded; text/html; charset=utf-8`.
fn is_form(headers: &HeaderMap) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    content_type.is_some_and(|v| {
        v.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

/// A notification refused here, at the HTTP edge, or by the notify path. Each is answered
/// `fail` (Alipay resends), counted with its reason and logged.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("body larger than {BODY_LIMIT} bytes")]
    TooLarge,
    #[error("body not received within the request timeout")]
    BodyTimeout,
    #[error("body could not be read: {0}")]
    BodyUnreadable(axum::Error),
    #[error("not answered within the request timeout")]
    Timeout,
    #[error("method {0} is not POST")]
    Method(Method),
    #[error("{0} notifications in flight already")]
    Overloaded(usize),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

impl Refusal {
    fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::BodyTimeout => "body_timeout",
            Self::BodyUnreadable(_) => "body_unreadable",
            Self::Timeout => "timeout",
            Self::Method(_) => "method",
            Self::Overloaded(_) => "overloaded",
            Self::Notify(error) => error.reason(),
        }
    }
}

/// The whole request, body read and effect committed, within the request timeout; a body is
/// read only from a form post, and only up to `BODY_LIMIT`. One log line each, without a span:
/// at thousands a second a span's formatting cost as much as the line.
async fn receive(State(state): State<AppState>, request: Request) -> Reply {
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started) + state.request_timeout;
    let result = process(&state, request, deadline).await;
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(handled) => {
            acknowledged(&state, &handled, seconds);
            reply(StatusCode::OK, "success")
        }
        Err(refusal) => {
            let status = refused(&state, &refusal, seconds);
            reply(status, "fail")
        }
    }
}

async fn process(
    state: &AppState,
    request: Request,
    deadline: tokio::time::Instant,
) -> Result<notify::Handled, Refusal> {
    if !is_form(request.headers()) {
        return Err(NotifyError::ContentType.into());
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > BODY_LIMIT as u64) {
        return Err(Refusal::TooLarge);
    }
    let limited = http_body_util::Limited::new(request.into_body(), BODY_LIMIT);
    let body = match tokio::time::timeout_at(deadline, limited.collect()).await {
        Err(_) => return Err(Refusal::BodyTimeout),
        Ok(Err(error)) if error.is::<LengthLimitError>() => return Err(Refusal::TooLarge),
        Ok(Err(error)) => return Err(Refusal::BodyUnreadable(axum::Error::new(error))),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    // After the body is read, so the connection stays fit for its next request; before any
    // work on it, so a refusal costs next to nothing.
    let _admitted = state.notify_admission.enter()?;
    let received_at = OffsetDateTime::now_utc();
    let handled = notify::handle(&state.alipay, state.store.as_ref(), &body, received_at);
    // Dropping the work at the deadline is safe: what was committed stays committed, and
    // Alipay's resend of a `fail` finds it as a duplicate.
    match tokio::time::timeout_at(deadline, handled).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Refusal::Timeout),
    }
}

/// Alipay only POSTs; anything else is refused in the protocol's own words.
async fn wrong_method(State(state): State<AppState>, method: Method) -> Reply {
    let status = refused(&state, &Refusal::Method(method), 0.0);
    reply(status, "fail")
}

fn acknowledged(state: &AppState, handled: &notify::Handled, seconds: f64) {
    let outcome = &handled.outcome;
    state
        .metrics
        .notification(outcome.verdict.as_str(), "", seconds);
    if let (Verdict::Applied, Some(order)) = (outcome.verdict, &outcome.order) {
        state.metrics.transition("notify", order.status.as_str());
    }
    let status = outcome.order.as_ref().map(|o| o.status.as_str());
    tracing::info!(
        out_trade_no = handled.out_trade_no,
        notify_id = handled.notify_id,
        verdict = outcome.verdict.as_str(),
        status,
        ms = (seconds * 1000.0).round() as u64,
        "notify acknowledged"
    );
}

/// Logs and counts a notification answered `fail`, and picks its status code. Refusals of
/// input are `warn` (they are not our failures); anomalies and database errors are `error`.
fn refused(state: &AppState, refusal: &Refusal, seconds: f64) -> StatusCode {
    let reason = refusal.reason();
    let (verdict, status) = match refusal {
        Refusal::TooLarge => ("rejected", StatusCode::PAYLOAD_TOO_LARGE),
        Refusal::BodyTimeout => ("rejected", StatusCode::REQUEST_TIMEOUT),
        Refusal::BodyUnreadable(_) => ("rejected", StatusCode::BAD_REQUEST),
        Refusal::Method(_) => ("rejected", StatusCode::METHOD_NOT_ALLOWED),
        Refusal::Notify(NotifyError::ContentType) => {
            ("rejected", StatusCode::UNSUPPORTED_MEDIA_TYPE)
        }
        Refusal::Notify(NotifyError::Rejected(CallbackError::Signature))
            if state.alipay.certificates().is_some() =>
        {
            // Perhaps signed with a certificate Alipay rotated to since our last API call.
            state
                .gateway
                .clone()
                .refresh_certificate_soon(state.alipay.clone());
            ("rejected", StatusCode::BAD_REQUEST)
        }
        Refusal::Notify(NotifyError::Malformed(_) | NotifyError::Rejected(_)) => {
            ("rejected", StatusCode::BAD_REQUEST)
        }
        Refusal::Overloaded(_) => {
            // Counted, and logged now and then by `Admission`: a line each would add to the load.
            state.metrics.notification("shed", reason, seconds);
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        Refusal::Timeout => {
            tracing::warn!(reason, "notify not answered in time; Alipay will resend");
            state.metrics.notification("error", reason, seconds);
            return StatusCode::SERVICE_UNAVAILABLE;
        }
        Refusal::Notify(NotifyError::Anomaly {
            reason,
            out_trade_no,
        }) => {
            let reason = reason.as_str();
            tracing::error!(
                reason,
                out_trade_no = out_trade_no.as_deref(),
                "notify anomaly: a genuine notification disagrees with our records; order untouched"
            );
            state.metrics.notification("anomaly", reason, seconds);
            return StatusCode::UNPROCESSABLE_ENTITY;
        }
        Refusal::Notify(NotifyError::Store(cause)) => {
            tracing::error!(error = ?cause, "notify not applied: database error");
            state.metrics.notification("error", reason, seconds);
            state.metrics.database_error("notify");
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    };
    tracing::warn!(reason, error = %Report(refusal), "notify rejected");
    state.metrics.notification(verdict, reason, seconds);
    status
}

/// Load shedding. Past capacity, a notification that waits for a commit behind hundreds of
/// others gains nothing: its wait grows until Alipay's client (or ours) gives up, and memory
/// grows with it. Above `limit` in flight, a notification is answered `fail` before any work is
/// done on it; Alipay resends it (after 4 minutes, then 10, …, over 25 hours), and the ones let in
/// are committed at full speed.
pub struct Admission {
    /// 0: no limit.
    limit: usize,
    in_flight: Gauge,
    started: Instant,
    /// Milliseconds from `started` of the last warning, and refusals since.
    warned_at: AtomicU64,
    refused: AtomicU64,
}

/// Warn at most this often while shedding.
const WARN_EVERY: Duration = Duration::from_secs(10);

impl Admission {
    pub fn new(limit: usize, in_flight: Gauge) -> Self {
        Self {
            limit,
            in_flight,
            started: Instant::now(),
            warned_at: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Counts a notification in until the returned guard is dropped, or refuses it.
    fn enter(&self) -> Result<Admitted<'_>, Refusal> {
        let before = usize::try_from(self.in_flight.inc()).unwrap_or(0);
        let admitted = Admitted(&self.in_flight);
        if self.limit == 0 || before < self.limit {
            return Ok(admitted);
        }
        drop(admitted);
        self.note_refusal();
        Err(Refusal::Overloaded(self.limit))
    }

    fn note_refusal(&self) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.warned_at.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && self
                .warned_at
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.refused.fetch_sub(refused, Ordering::Relaxed);
            tracing::warn!(
                max_in_flight = self.limit,
                refused,
                "overloaded: answering notifications `fail` at once (Alipay resends them)"
            );
        }
    }
}

struct Admitted<'a>(&'a Gauge);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
