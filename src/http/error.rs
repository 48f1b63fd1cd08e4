//! Errors become responses here, one mapping per surface: the JSON API ([`ApiError`]) and the
//! buyer's HTML pages ([`PageError`]); the notify endpoint answers in its own protocol
//! (`http/notify.rs`). Internal causes go to the log, never to the response body.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

use super::pages;
use crate::alipay::form::FormError;
use crate::alipay::gateway::GatewayError;
use crate::orders::input::InputError;
use crate::orders::{OrderStatus, RefundRefused, StoreError};
use crate::refunds::RefundError;
use crate::report::Report;

/// Why the JSON API refused or failed a call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    #[error("invalid JSON")]
    Json(#[from] serde_json::Error),
    #[error("invalid order")]
    Input(#[from] InputError),
    #[error("order {0} exists with a different subject, amount or product")]
    OrderConflict(String),
    #[error("invalid query: {0}")]
    Query(String),
    #[error("no event {0}; `after` must be the id of an event")]
    UnknownCursor(String),
    #[error("no webhook endpoints are configured; set WEBHOOK_URL and WEBHOOK_SECRET")]
    NoEndpoints,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Refund(#[from] RefundError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Json(_) | Self::Input(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::OrderConflict(_) | Self::NoEndpoints => StatusCode::CONFLICT,
            Self::Query(_) | Self::UnknownCursor(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Refund(error) => match error {
                RefundError::Amount(_) | RefundError::OutRequestNo | RefundError::Reason => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                RefundError::Refused(RefundRefused::NotFound) => StatusCode::NOT_FOUND,
                RefundError::Refused(RefundRefused::Exceeds { .. }) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                RefundError::Refused(_) | RefundError::AlreadyFailed(_) => StatusCode::CONFLICT,
                RefundError::Rejected(_) | RefundError::OtherOrder(_) => StatusCode::BAD_GATEWAY,
                // No answer in time, or one we cannot believe (bad signature, untrusted
                // certificate): either way the refund's outcome is unknown.
                RefundError::Unknown(GatewayError::Network(_)) => StatusCode::GATEWAY_TIMEOUT,
                RefundError::Unknown(_) => StatusCode::BAD_GATEWAY,
                RefundError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Store(error) | Self::Refund(RefundError::Store(error)) => {
                tracing::error!(error = ?error, "database error");
                "temporarily unavailable, try again".to_owned()
            }
            other => Report(other).to_string(),
        };
        (self.status(), Json(serde_json::json!({ "error": message }))).into_response()
    }
}

/// Why a buyer's page (the checkout form) cannot go on; shown as a page.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("malformed form")]
    Form(#[from] FormError),
    #[error("invalid order")]
    Input(#[from] InputError),
    #[error("checkout is closed: orders are created through the API")]
    CheckoutClosed,
    #[error("order {0} is {1}")]
    NotPending(String, OrderStatus),
    #[error("order {0} has expired")]
    Expired(String),
    #[error("total_amount differs from the order's amount")]
    AmountDiffers,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Form(_) => StatusCode::BAD_REQUEST,
            Self::Input(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::CheckoutClosed => StatusCode::FORBIDDEN,
            Self::NotPending(..) | Self::Expired(_) | Self::AmountDiffers => StatusCode::CONFLICT,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let markup = match &self {
            Self::Store(error) => {
                tracing::error!(error = ?error, "database error");
                pages::unavailable()
            }
            other => pages::refused(&Report(other).to_string()),
        };
        (self.status(), Html(markup.into_string())).into_response()
    }
}
