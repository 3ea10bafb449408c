//! `/api/v1/auth`: admin login, re-authentication, logout.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{Admin, ApiJson, Source};
use crate::http::{ApiError, AppState};
use crate::model::Password;
use crate::service::LoginResult;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_login))
        .routes(routes!(post_reauth))
        .routes(routes!(post_logout))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: Password,
    /// Required once the admin has an active token.
    #[serde(default)]
    otp: Option<Password>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthRequest {
    password: Password,
    #[serde(default)]
    otp: Option<Password>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReauthResult {
    /// Sensitive changes are allowed on this session until this Unix time.
    reauth_until: i64,
}

/// Log in as an admin and get a session token (valid for `auth.session_absolute_hours`, ended
/// after `auth.session_idle_minutes` without use). Answers 401 `invalid_credentials` for any
/// wrong username, password or code.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResult), (status = 401, body = super::ErrorBody)))]
async fn post_login(
    State(s): State<AppState>,
    Source(source): Source,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResult>, ApiError> {
    let otp = req.otp.as_ref().map(Password::expose);
    Ok(Json(
        s.login(&source, &req.username, req.password.expose(), otp)
            .await?,
    ))
}

/// Re-enter the password (and a code when the admin has a token) to get a few minutes of
/// elevated rights for sensitive changes on this session.
#[utoipa::path(post, path = "/auth/reauth", tag = "auth", request_body = ReauthRequest,
    security(("session" = [])),
    responses((status = 200, body = ReauthResult), (status = 401, body = super::ErrorBody)))]
async fn post_reauth(
    State(s): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<ReauthRequest>,
) -> Result<Json<ReauthResult>, ApiError> {
    let otp = req.otp.as_ref().map(Password::expose);
    let until = s
        .reauthenticate(&admin.actor, &admin.token, req.password.expose(), otp)
        .await?;
    Ok(Json(ReauthResult {
        reauth_until: until,
    }))
}

/// End this session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("session" = [])),
    responses((status = 204)))]
async fn post_logout(State(s): State<AppState>, admin: Admin) -> Result<StatusCode, ApiError> {
    s.logout(&admin.actor, &admin.token).await?;
    Ok(StatusCode::NO_CONTENT)
}
