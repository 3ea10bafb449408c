//! `/api/v1/users`: create, list, show, change, delete users; set passwords; a user's tokens.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{Admin, ApiJson, ApiPath, ApiQuery};
use crate::http::{ApiError, AppState};
use crate::model::{Password, User, UserFilter};
use crate::service::{AddToken, CreateUser, TokenCreated, TokenInfo, UserChanges, UserPage};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_users, post_users))
        .routes(routes!(get_user, patch_user, delete_user))
        .routes(routes!(put_password))
        .routes(routes!(post_reset))
        .routes(routes!(post_recovery_codes))
        .routes(routes!(get_user_tokens, post_user_tokens))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Part of a username, display name or e-mail (case-insensitive).
    #[serde(default)]
    search: String,
    /// Only users an admin may have to help (`locked`, `no_device`, `pending`), or `all`.
    #[serde(default)]
    filter: UserFilter,
    /// Page size, 1-500 (default 50).
    limit: Option<i64>,
    /// Entries to skip.
    offset: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    user: User,
    tokens: Vec<TokenInfo>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    password: Password,
}

/// List users, by name, with search and paging.
#[utoipa::path(get, path = "/users", tag = "users", params(ListQuery), security(("session" = [])),
    responses((status = 200, body = UserPage)))]
async fn get_users(
    State(s): State<AppState>,
    admin: Admin,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<UserPage>, ApiError> {
    let page = s
        .list_users(
            &admin.actor,
            &q.search,
            q.filter,
            q.limit.unwrap_or(50),
            q.offset.unwrap_or(0),
        )
        .await?;
    Ok(Json(page))
}

/// Create a user. Creating an admin needs a fresh re-authentication.
#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateUser,
    security(("session" = [])),
    responses((status = 201, body = User), (status = 409, body = super::ErrorBody)))]
async fn post_users(
    State(s): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.create_user(&admin.actor, req).await?),
    ))
}

/// A user with their tokens.
#[utoipa::path(get, path = "/users/{username}", tag = "users", security(("session" = [])),
    params(("username" = String, Path)),
    responses((status = 200, body = UserDetail), (status = 404, body = super::ErrorBody)))]
async fn get_user(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
) -> Result<Json<UserDetail>, ApiError> {
    let user = s.user_named(&username).await?;
    let tokens = s
        .list_tokens(&admin.actor, Some(&user.username), 0, 0)
        .await?;
    Ok(Json(UserDetail { user, tokens }))
}

/// Change a user. Changing `otp_required`, `phone`, `email` or `role` needs a fresh
/// re-authentication (403 `reauth_required` otherwise). An empty `phone` removes the number and
/// stops SMS delivery to the user.
#[utoipa::path(patch, path = "/users/{username}", tag = "users", request_body = UserChanges,
    security(("session" = [])), params(("username" = String, Path)),
    responses((status = 200, body = User), (status = 403, body = super::ErrorBody)))]
async fn patch_user(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
    ApiJson(changes): ApiJson<UserChanges>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(s.update_user(&admin.actor, &username, changes).await?))
}

/// Delete a user with all tokens and secrets (the audit keeps the event). Needs a fresh
/// re-authentication.
#[utoipa::path(delete, path = "/users/{username}", tag = "users", security(("session" = [])),
    params(("username" = String, Path)), responses((status = 204)))]
async fn delete_user(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.delete_user(&admin.actor, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Set a user's password (ends the user's sessions).
#[utoipa::path(put, path = "/users/{username}/password", tag = "users",
    request_body = PasswordRequest, security(("session" = [])),
    params(("username" = String, Path)), responses((status = 204)))]
async fn put_password(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> Result<StatusCode, ApiError> {
    s.set_password(&admin.actor, &username, req.password.expose())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The new password.
    password: Password,
    /// An optional password hint.
    #[serde(default)]
    hint: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResetDone {
    /// The enrollment link for the user's new device (valid 30 minutes), shown this once.
    enrollment_link: String,
}

/// Reset the account (the last resort, SPEC F6; needs re-authentication): deletes every token,
/// recovery code, invitation and session of the user in one transaction, keeps the account, sets
/// the new password and hint, notifies the user and returns an enrollment link.
#[utoipa::path(post, path = "/users/{username}/reset", tag = "users",
    request_body = ResetRequest, security(("session" = [])),
    params(("username" = String, Path)), responses((status = 200, body = ResetDone)))]
async fn post_reset(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
    ApiJson(req): ApiJson<ResetRequest>,
) -> Result<Json<ResetDone>, ApiError> {
    let path = s
        .admin_reset_account(&admin.actor, &username, req.password.expose(), &req.hint)
        .await?;
    Ok(Json(ResetDone {
        enrollment_link: format!("{}{path}", s.config().public_base_url()),
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecoveryCodesIssued {
    /// The new codes when the delivery is "show" (shown this once); empty when they were
    /// mailed.
    codes: Vec<String>,
    /// The address the codes were mailed to.
    emailed_to: Option<String>,
}

/// Issue a new set of recovery codes for the user (needs re-authentication); the old set stops
/// working. Delivered as the user's delivery setting, else `recovery.admin_delivery`, allows.
#[utoipa::path(post, path = "/users/{username}/recovery-codes", tag = "users",
    security(("session" = [])),
    params(("username" = String, Path)), responses((status = 200, body = RecoveryCodesIssued)))]
async fn post_recovery_codes(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
) -> Result<Json<RecoveryCodesIssued>, ApiError> {
    let issued = s
        .admin_issue_recovery_codes(&admin.actor, &username)
        .await?;
    Ok(Json(RecoveryCodesIssued {
        codes: issued.codes,
        emailed_to: issued.emailed_to,
    }))
}

/// The user's tokens.
#[utoipa::path(get, path = "/users/{username}/tokens", tag = "tokens", security(("session" = [])),
    params(("username" = String, Path)), responses((status = 200, body = Vec<TokenInfo>)))]
async fn get_user_tokens(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    Ok(Json(
        s.list_tokens(&admin.actor, Some(&username), 0, 0).await?,
    ))
}

/// Add a token (pending until its first correct code). The Key URI and QR codes are in this
/// answer only; they are never shown again.
#[utoipa::path(post, path = "/users/{username}/tokens", tag = "tokens", request_body = AddToken,
    security(("session" = [])), params(("username" = String, Path)),
    responses((status = 201, body = TokenCreated), (status = 400, body = super::ErrorBody)))]
async fn post_user_tokens(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
    ApiJson(req): ApiJson<AddToken>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    let created = s.add_token(&admin.actor, &username, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}
