//! `POST /api/v1/validate`: the login check for registered applications.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{ApiJson, Source};
use crate::http::{ApiError, AppState};
use crate::model::Application;
use crate::service::{ErrorCode, ValidateRequest, ValidateResponse};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_validate))
}

/// The calling application, from `Authorization: Bearer <application key>`.
#[derive(Debug)]
pub struct App(pub Application);

impl FromRequestParts<AppState> for App {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "missing Authorization: Bearer <application key>",
                )
            })?;
        Ok(App(state.authenticate_app(key).await?))
    }
}

/// Is this login valid? Send `{"username", "password", "otp"}`, or `{"username", "pass"}` with
/// the password immediately followed by the code, or `{"username", "transaction_id", "otp"}` to
/// answer a challenge. Applications in `otp_only` mode send no password. Every decision is a 200
/// with `result` `accept`, `reject` or `challenge` (then with `transaction_id`); the reason of a
/// reject is in the audit log only. 4xx only for a malformed request or a bad key.
#[utoipa::path(post, path = "/validate", tag = "validate", request_body = ValidateRequest,
    security(("application_key" = [])),
    responses((status = 200, body = ValidateResponse), (status = 401, body = super::ErrorBody),
        (status = 400, body = super::ErrorBody)))]
async fn post_validate(
    State(s): State<AppState>,
    App(app): App,
    Source(source): Source,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> Result<Json<ValidateResponse>, ApiError> {
    Ok(Json(s.validate(&app, &source, req).await?))
}
