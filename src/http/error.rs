//! The one place where errors become HTTP responses. Internal causes go to the log, never to the
//! response body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::orders::{RefundRefused, StoreError};
use crate::refunds::RefundError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    #[error("malformed form: {0}")]
    InvalidForm(String),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Refund(#[from] RefundError),
}

impl Error {
    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidForm(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
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
                RefundError::Unknown(_) => StatusCode::GATEWAY_TIMEOUT,
                RefundError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Store(error) | Self::Refund(RefundError::Store(error)) => {
                tracing::error!(error = ?error, "database error");
                "temporarily unavailable, try again".to_owned()
            }
            other => other.to_string(),
        };
        (self.status(), Json(serde_json::json!({ "error": message }))).into_response()
    }
}
