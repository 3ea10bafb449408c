//! HTTP front-end: routing, request limits and the mapping of service results to responses.
//! Handlers extract, call one service method, and map the result; no SQL, OTP math or clock here.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::service::Service;

pub mod api;
pub mod enroll;
pub mod error;
pub mod extract;
pub mod input;
pub mod serve;
pub mod web;

pub use error::ApiError;

/// Shared state of every handler.
pub type AppState = Arc<Service>;

/// The whole HTTP application.
pub fn router(service: Arc<Service>) -> Router {
    let config = service.config().server.clone();
    let (api, _) = api::router();
    Router::new()
        .route("/healthz", get(get_healthz))
        .route("/readyz", get(get_readyz))
        .merge(api)
        .merge(enroll::router())
        .merge(web::router())
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            service.clone(),
            input::refuse_nul,
        ))
        // Bodies above the limit are refused by the JSON extractor with `payload_too_large`.
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(config.request_timeout_secs),
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(service)
}

/// The request span: method and path, with link tokens (enrollment, account reset, "this wasn't
/// me") cut out of the path (they are credentials and must not reach a log).
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let path = loggable_path(req.uri().path());
    tracing::debug_span!("request", method = %req.method(), path = %path)
}

/// `path` without the secret part of a link path.
fn loggable_path(path: &str) -> String {
    for prefix in ["/enroll/", "/reset/", "/not-me/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            return match rest.split_once('/') {
                Some((_, sub)) => format!("{prefix}(link)/{sub}"),
                None => format!("{prefix}(link)"),
            };
        }
    }
    path.to_owned()
}

/// The router of the metrics listener (`metrics.listen`): `GET /metrics` only.
pub fn metrics_router(service: std::sync::Arc<crate::service::Service>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let service = service.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    service.render_metrics(),
                )
            }
        }),
    )
}

/// The process is alive.
async fn get_healthz() -> &'static str {
    "ok\n"
}

/// The node is not shutting down, the database answers and takes writes, and this node has the
/// active key.
async fn get_readyz(State(service): State<AppState>) -> axum::response::Response {
    if service.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining: shutting down\n").into_response();
    }
    match service.ready().await {
        Ok(()) => "ready\n".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            let body = match e {
                crate::service::Error::Crypto(_) => {
                    "the active server key is missing from this node's key file\n"
                }
                _ => "database unavailable or not writable\n",
            };
            (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
        }
    }
}

async fn fallback() -> ApiError {
    ApiError::not_found_route()
}

#[cfg(test)]
mod tests {
    #[test]
    fn link_tokens_never_reach_the_log() {
        assert_eq!(super::loggable_path("/enroll/abc/qr"), "/enroll/(link)/qr");
        assert_eq!(super::loggable_path("/reset/abc"), "/reset/(link)");
        assert_eq!(super::loggable_path("/not-me/abc"), "/not-me/(link)");
        assert_eq!(super::loggable_path("/recover"), "/recover");
    }
}
