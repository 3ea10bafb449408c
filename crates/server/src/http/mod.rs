//! HTTP front-end: routing, request limits and the mapping of service results to responses.
//! Handlers extract, call one service method, and map the result; no SQL, OTP math or clock here.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::service::Service;

pub mod error;

pub use error::ApiError;

/// Shared state of every handler.
pub type AppState = Arc<Service>;

/// The whole HTTP application.
pub fn router(service: Arc<Service>) -> Router {
    let config = service.config().server.clone();
    Router::new()
        .route("/healthz", get(get_healthz))
        .route("/readyz", get(get_readyz))
        .fallback(fallback)
        .layer(RequestBodyLimitLayer::new(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(config.request_timeout_secs),
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(service)
}

/// The process is alive.
async fn get_healthz() -> &'static str {
    "ok\n"
}

/// The database answers.
async fn get_readyz(State(service): State<AppState>) -> axum::response::Response {
    match service.ready().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn fallback() -> ApiError {
    ApiError::not_found_route()
}
