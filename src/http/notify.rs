//! `POST /alipay/notify`: Alipay's asynchronous notifications. Answers `text/plain` `success`
//! only once the effect is committed; anything else makes Alipay resend.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use time::OffsetDateTime;

use super::AppState;
use crate::notify::{self, NotifyError};
use crate::orders::{Outcome, Verdict};

pub fn router() -> Router<AppState> {
    Router::new().route("/alipay/notify", post(receive))
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

/// The body of a form post, `None` for any other content type (whose body is not read). Reads
/// the header where it is: the `HeaderMap` extractor would copy every header of every request.
struct FormBody(Option<Bytes>);

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = BytesRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_form(request.headers()) {
            return Ok(Self(None));
        }
        Ok(Self(Some(Bytes::from_request(request, state).await?)))
    }
}

#[tracing::instrument(skip_all, fields(out_trade_no, verdict))]
async fn receive(State(state): State<AppState>, FormBody(body): FormBody) -> Reply {
    let started = Instant::now();
    let result = match body {
        Some(body) => {
            let received_at = OffsetDateTime::now_utc();
            notify::handle(&state.alipay, state.store.as_ref(), &body, received_at).await
        }
        None => Err(NotifyError::ContentType),
    };
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(outcome) => {
            acknowledged(&state, &outcome, seconds);
            reply(StatusCode::OK, "success")
        }
        Err(error) => {
            let status = refused(&state, &error, seconds);
            reply(status, "fail")
        }
    }
}

fn acknowledged(state: &AppState, outcome: &Outcome, seconds: f64) {
    let span = tracing::Span::current();
    if let Some(order) = &outcome.order {
        span.record("out_trade_no", order.out_trade_no.as_str());
    }
    span.record("verdict", outcome.verdict.as_str());
    state
        .metrics
        .notification(outcome.verdict.as_str(), "", seconds);
    if let (Verdict::Applied, Some(order)) = (outcome.verdict, &outcome.order) {
        state.metrics.transition("notify", order.status.as_str());
    }
    let status = outcome.order.as_ref().map(|o| o.status.as_str());
    tracing::info!(status, "notify acknowledged");
}

/// Logs and counts a notification answered `fail`, and picks its status code.
fn refused(state: &AppState, error: &NotifyError, seconds: f64) -> StatusCode {
    let reason = error.reason();
    match error {
        NotifyError::ContentType | NotifyError::Malformed(_) | NotifyError::Rejected(_) => {
            tracing::warn!(reason, error = %error, "notify rejected");
            state.metrics.notification("rejected", reason, seconds);
            if matches!(error, NotifyError::ContentType) {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            } else {
                StatusCode::BAD_REQUEST
            }
        }
        NotifyError::Anomaly {
            reason,
            out_trade_no,
        } => {
            tracing::error!(
                reason,
                out_trade_no = out_trade_no.as_deref(),
                "notify anomaly: a genuine notification disagrees with our records; order untouched"
            );
            state.metrics.notification("anomaly", reason, seconds);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        NotifyError::Store(cause) => {
            tracing::error!(error = ?cause, "notify not applied: database error");
            state.metrics.notification("error", reason, seconds);
            state.metrics.database_error("notify");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}
