//! `/api/v1/tokens`: show, rename, activate, disable/enable/revoke, unlock, resync, delete.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{Admin, ApiJson, ApiPath, ApiQuery};
use crate::http::{ApiError, AppState};
use crate::model::{Password, TokenId};
use crate::service::{TokenAction, TokenInfo};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_tokens))
        .routes(routes!(get_token, patch_token, delete_token))
        .routes(routes!(post_verify))
        .routes(routes!(post_action))
        .routes(routes!(post_unlock))
        .routes(routes!(post_resync))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1-500 (default 100).
    limit: Option<i64>,
    /// Entries to skip.
    offset: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The code the authenticator shows.
    code: Password,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResyncRequest {
    /// Two consecutive codes.
    code1: Password,
    code2: Password,
}

/// All tokens, paged.
#[utoipa::path(get, path = "/tokens", tag = "tokens", params(PageQuery), security(("session" = [])),
    responses((status = 200, body = Vec<TokenInfo>)))]
async fn get_tokens(
    State(s): State<AppState>,
    admin: Admin,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    Ok(Json(
        s.list_tokens(
            &admin.actor,
            None,
            q.limit.unwrap_or(100),
            q.offset.unwrap_or(0),
        )
        .await?,
    ))
}

/// One token.
#[utoipa::path(get, path = "/tokens/{id}", tag = "tokens", security(("session" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = TokenInfo), (status = 404, body = super::ErrorBody)))]
async fn get_token(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<TokenInfo>, ApiError> {
    Ok(Json(s.get_token(&admin.actor, TokenId(id)).await?))
}

/// Rename a token.
#[utoipa::path(patch, path = "/tokens/{id}", tag = "tokens", request_body = RenameRequest,
    security(("session" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = TokenInfo)))]
async fn patch_token(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<RenameRequest>,
) -> Result<Json<TokenInfo>, ApiError> {
    Ok(Json(
        s.rename_token(&admin.actor, TokenId(id), &req.name).await?,
    ))
}

/// Delete a token and its seed. Needs a fresh re-authentication.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens", security(("session" = [])),
    params(("id" = i64, Path)), responses((status = 204), (status = 403, body = super::ErrorBody)))]
async fn delete_token(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    s.delete_token(&admin.actor, TokenId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Activate a pending token with its first correct code (the code is consumed). Answers 422
/// `invalid_code` for a wrong code and 429 `throttled` while the token waits after failures.
#[utoipa::path(post, path = "/tokens/{id}/verify", tag = "tokens", request_body = CodeRequest,
    security(("session" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = TokenInfo), (status = 422, body = super::ErrorBody)))]
async fn post_verify(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Json<TokenInfo>, ApiError> {
    Ok(Json(
        s.verify_first_code(&admin.actor, TokenId(id), req.code.expose())
            .await?,
    ))
}

/// Disable, enable or revoke a token (`action` is `disable`, `enable` or `revoke`). Revoking is
/// final and needs a fresh re-authentication.
#[utoipa::path(post, path = "/tokens/{id}/{action}", tag = "tokens", security(("session" = [])),
    params(("id" = i64, Path), ("action" = TokenAction, Path)),
    responses((status = 200, body = TokenInfo)))]
async fn post_action(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath((id, action)): ApiPath<(i64, TokenAction)>,
) -> Result<Json<TokenInfo>, ApiError> {
    Ok(Json(
        s.change_token_state(&admin.actor, TokenId(id), action)
            .await?,
    ))
}

/// Clear the failure counter and unlock a locked token.
#[utoipa::path(post, path = "/tokens/{id}/unlock", tag = "tokens", security(("session" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = TokenInfo)))]
async fn post_unlock(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<TokenInfo>, ApiError> {
    Ok(Json(s.unlock_token(&admin.actor, TokenId(id)).await?))
}

/// Resynchronise a drifted clock or a counter far ahead from two consecutive codes.
#[utoipa::path(post, path = "/tokens/{id}/resync", tag = "tokens", request_body = ResyncRequest,
    security(("session" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = TokenInfo), (status = 422, body = super::ErrorBody)))]
async fn post_resync(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<ResyncRequest>,
) -> Result<Json<TokenInfo>, ApiError> {
    Ok(Json(
        s.resync_token(
            &admin.actor,
            TokenId(id),
            req.code1.expose(),
            req.code2.expose(),
        )
        .await?,
    ))
}
