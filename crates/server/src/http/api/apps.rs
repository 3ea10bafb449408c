//! `/api/v1/apps`: register applications (key shown once), list, revoke.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{Admin, ApiJson, ApiPath};
use crate::http::{ApiError, AppState};
use crate::model::{AppId, Application};
use crate::service::{AppCreated, CreateApp};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_apps, post_apps))
        .routes(routes!(post_revoke))
}

/// Registered applications (keys are never shown again).
#[utoipa::path(get, path = "/apps", tag = "apps", security(("session" = [])),
    responses((status = 200, body = Vec<Application>)))]
async fn get_apps(
    State(s): State<AppState>,
    admin: Admin,
) -> Result<Json<Vec<Application>>, ApiError> {
    Ok(Json(s.list_apps(&admin.actor).await?))
}

/// Register an application; the answer holds its API key, shown this once. Needs a fresh
/// re-authentication.
#[utoipa::path(post, path = "/apps", tag = "apps", request_body = CreateApp,
    security(("session" = [])),
    responses((status = 201, body = AppCreated), (status = 403, body = super::ErrorBody)))]
async fn post_apps(
    State(s): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateApp>,
) -> Result<(StatusCode, Json<AppCreated>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.create_app(&admin.actor, req).await?),
    ))
}

/// Revoke an application's key.
#[utoipa::path(post, path = "/apps/{id}/revoke", tag = "apps", security(("session" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = Application)))]
async fn post_revoke(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Application>, ApiError> {
    Ok(Json(s.revoke_app(&admin.actor, AppId(id)).await?))
}
