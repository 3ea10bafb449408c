//! The JSON API under `/api/v1`, described by the OpenAPI document at `/api/v1/openapi.json`
//! (generated from these handlers; `docs/openapi.json` is the committed copy a test compares).

use axum::Json;
use axum::http::header::{self, HeaderValue};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use super::AppState;

mod apps;
mod audit;
mod auth;
mod enroll;
mod enrollment;
mod me;
mod recovery;
mod tokens;
mod users;
mod validate;

/// The error body of every failed request.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code (see docs/api.md).
    #[schema(example = "reauth_required")]
    pub code: String,
    /// Human-readable explanation; may change between versions.
    pub message: String,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tessera API",
        description = "Admin and validation API of Tessera, a self-hosted two-factor authentication server. Errors are `{\"error\": {\"code\", \"message\"}}`; the codes are stable.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Admin session token from POST /api/v1/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "application_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Application key from POST /api/v1/apps"))
                    .build(),
            ),
        );
    }
}

/// The API routes and their OpenAPI description.
pub fn router() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(
            "/api/v1",
            OpenApiRouter::new()
                .merge(auth::router())
                .merge(users::router())
                .merge(recovery::router())
                .merge(tokens::router())
                .merge(apps::router())
                .merge(audit::router())
                .merge(validate::router())
                .merge(enroll::router())
                .merge(enrollment::router())
                .merge(me::router()),
        )
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let json = std::sync::Arc::new(doc.clone());
    let router = router.route(
        "/api/v1/openapi.json",
        get(move || {
            let json = json.clone();
            async move { Json(json.as_ref().clone()) }
        }),
    );
    // Answers carry seeds, API keys, recovery codes, enrollment links and session tokens: no
    // copy in any cache (browser, proxy). Nothing here is worth caching anyway.
    let router = router.layer(SetResponseHeaderLayer::if_not_present(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ));
    (router, doc)
}

/// The OpenAPI document as pretty JSON (what `docs/openapi.json` holds).
pub fn openapi_json() -> String {
    let (_, doc) = router();
    let mut s = doc.to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}
