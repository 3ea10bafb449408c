//! Extractors whose rejections are API errors (`{"error": {...}}` with a stable code), and the
//! admin authentication extractor.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts};
use axum::http::request::Parts;

use crate::service::{Actor, ErrorCode};

use super::{ApiError, AppState};

/// `Json<T>` that answers malformed bodies with `bad_request` (or `payload_too_large`).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `Query<T>` that answers bad query strings with `bad_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `Path<T>` that answers a malformed path segment with `bad_request`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, r.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, r.body_text())
    }
}

/// The client's address as the server saw it (no proxy headers are trusted).
pub fn source_of(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |ci| ci.0.ip().to_string())
}

/// The source address of the request.
#[derive(Debug, Clone)]
pub struct Source(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Source(source_of(parts)))
    }
}

/// A logged-in admin, from `Authorization: Bearer <session token>`. Every admin endpoint takes
/// this extractor first: without a valid session the handler never runs.
#[derive(Debug, Clone)]
pub struct Admin {
    pub actor: Actor,
    /// The session token, for re-authentication and logout of this session.
    pub token: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "missing Authorization: Bearer <session token> (POST /api/v1/auth/login)",
                )
            })?;
        let actor = state.authenticate_session(token, &source_of(parts)).await?;
        Ok(Admin {
            actor,
            token: token.to_owned(),
        })
    }
}
