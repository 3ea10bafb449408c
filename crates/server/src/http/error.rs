//! Service errors as HTTP responses: `{"error": {"code": "...", "message": "..."}}` with the status
//! chosen by one `match` on the code. Internal errors are logged here and answered generically.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::service::{Error, ErrorCode};

/// An error answer of the JSON API.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn not_found_route() -> ApiError {
        ApiError::new(ErrorCode::NotFound, "no such endpoint")
    }
}

/// The HTTP status for each code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest | ErrorCode::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict | ErrorCode::TokenState => StatusCode::CONFLICT,
        ErrorCode::Unauthenticated | ErrorCode::InvalidCredentials => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden | ErrorCode::ReauthRequired => StatusCode::FORBIDDEN,
        ErrorCode::InvalidCode => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Throttled => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::EnrollmentUsed
        | ErrorCode::EnrollmentExpired
        | ErrorCode::EnrollmentSuperseded
        | ErrorCode::EnrollmentEnded => StatusCode::GONE,
        ErrorCode::MailFailed => StatusCode::BAD_GATEWAY,
        ErrorCode::BackupConflict => StatusCode::PRECONDITION_FAILED,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        if e.code() == ErrorCode::Internal {
            // The detail goes to the log only; it may name tables or paths.
            tracing::error!(error = %e, source = ?std::error::Error::source(&e), "internal error");
        }
        ApiError::new(e.code(), e.public_message())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(ErrorCode::PayloadTooLarge, "request body too large");
        }
        // body_text names the field and the expected type, never the server's internals.
        ApiError::new(ErrorCode::BadRequest, r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code.as_str(), "message": self.message }
        });
        (status_of(self.code), Json(body)).into_response()
    }
}
