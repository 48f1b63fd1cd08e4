//! `POST /alipay/notify`: Alipay's asynchronous notifications. Answers `text/plain` `success`
//! only once the effect is committed; anything else makes Alipay resend.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use time::OffsetDateTime;

use super::AppState;
use crate::notify::{self, NotifyError};

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

#[tracing::instrument(skip_all, fields(out_trade_no, verdict))]
async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Reply {
    // Alipay sometimes sends `application/x-www-form-urlencoded; text/html; charset=utf-8`.
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        tracing::warn!(reason = "content_type", "notify rejected");
        return reply(StatusCode::UNSUPPORTED_MEDIA_TYPE, "fail");
    }
    match notify::handle(
        &state.alipay,
        state.store.as_ref(),
        &body,
        OffsetDateTime::now_utc(),
    )
    .await
    {
        Ok(outcome) => {
            let span = tracing::Span::current();
            if let Some(order) = &outcome.order {
                span.record("out_trade_no", order.out_trade_no.as_str());
            }
            span.record("verdict", outcome.verdict.as_str());
            tracing::info!(status = ?outcome.order.as_ref().map(|o| o.status), "notify acknowledged");
            reply(StatusCode::OK, "success")
        }
        Err(error) => {
            let status = match &error {
                NotifyError::Malformed(_) | NotifyError::Rejected(_) => {
                    tracing::warn!(reason = error.reason(), error = %error, "notify rejected");
                    StatusCode::BAD_REQUEST
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
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                NotifyError::Store(cause) => {
                    tracing::error!(error = ?cause, "notify not applied: database error");
                    StatusCode::SERVICE_UNAVAILABLE
                }
            };
            reply(status, "fail")
        }
    }
}
