//! `/api/v1/me/…`: what a user (not an admin) does through the API, for `tessera-auth`. The
//! login is the web login's (password and code, the same throttling and audit), and its session
//! is sent back as `Authorization: Bearer <session>`; `me/backup` keeps the user's end-to-end
//! encrypted vault backup, an opaque blob the server cannot read (SPEC F9): ETags name the
//! generation (`"g<N>"`), an upload must say which generation it replaces (`If-Match`, or
//! `If-None-Match: *` for the first), and a stale one answers 412 `backup_conflict`.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{ApiJson, ApiQuery, Source, source_of};
use crate::http::{ApiError, AppState};
use crate::model::Password;
use crate::service::{BackupMeta, BackupPut, ErrorCode, WebLogin, WebUser};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_me_login))
        .routes(routes!(get_me_backup, put_me_backup, delete_me_backup))
        .routes(routes!(get_me_backup_meta))
}

/// The logged-in user behind `Authorization: Bearer <session>` (from `POST /me/login`).
pub struct Me(pub WebUser);

impl FromRequestParts<AppState> for Me {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthenticated,
                    "missing Authorization: Bearer <session> (POST /api/v1/me/login)",
                )
            })?;
        Ok(Me(state.web_session(token, &source_of(parts)).await?))
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeLogin {
    username: String,
    password: Password,
    #[serde(default)]
    otp: Option<Password>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeSession {
    /// Send as `Authorization: Bearer <session>`; it ends like a web session.
    session: String,
}

impl std::fmt::Debug for MeSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MeSession(redacted)")
    }
}

/// Log in as a user (password and code) for the `/me` endpoints. Any failure, and a login that
/// would need an e-mailed code or an enrollment first, answers 401 `invalid_credentials`.
#[utoipa::path(post, path = "/me/login", tag = "me", request_body = MeLogin,
    responses((status = 200, body = MeSession), (status = 401, body = super::ErrorBody)))]
async fn post_me_login(
    State(s): State<AppState>,
    Source(source): Source,
    ApiJson(req): ApiJson<MeLogin>,
) -> Result<Json<MeSession>, ApiError> {
    let otp = req.otp.as_ref().map(Password::expose).unwrap_or("");
    match s
        .web_login(&source, &req.username, req.password.expose(), otp, "")
        .await?
    {
        WebLogin::Session { cookie, .. } => Ok(Json(MeSession { session: cookie })),
        // The other outcomes need the web pages (a code to send, an enrollment to do).
        _ => Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "log in on the web pages first: this account needs a step the API does not offer",
        )),
    }
}

fn etag(generation: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"g{generation}\""))
        .unwrap_or(HeaderValue::from_static("\"g0\""))
}

/// The newest generation of the caller's backup: the blob as stored, `ETag: "g<N>"`.
#[utoipa::path(get, path = "/me/backup", tag = "me", security(("session" = [])),
    responses((status = 200, description = "the blob", content_type = "application/octet-stream"),
        (status = 404, body = super::ErrorBody, description = "`not_found`: nothing stored")))]
async fn get_me_backup(State(s): State<AppState>, Me(me): Me) -> Result<Response, ApiError> {
    let Some(b) = s.my_vault_backup(&me).await? else {
        return Err(ApiError::new(ErrorCode::NotFound, "no backup stored"));
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::ETAG, etag(b.generation)),
        ],
        b.blob,
    )
        .into_response())
}

/// The newest generation, its size and time, and the last account reset (a device that set up
/// its backup before `reset_at` must stop uploading).
#[utoipa::path(get, path = "/me/backup/meta", tag = "me", security(("session" = [])),
    responses((status = 200, body = BackupMeta), (status = 401, body = super::ErrorBody)))]
async fn get_me_backup_meta(
    State(s): State<AppState>,
    Me(me): Me,
) -> Result<Json<BackupMeta>, ApiError> {
    Ok(Json(s.my_vault_backup_meta(&me).await?))
}

/// Which generation an upload replaces: `If-Match: "g<N>"`, or `If-None-Match: *` for none.
fn expected_generation(headers: &HeaderMap) -> Result<i64, ApiError> {
    let text = |h| {
        headers
            .get(h)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(m) = text(header::IF_MATCH) {
        return m
            .trim_matches('"')
            .strip_prefix('g')
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "If-Match must be \"g<N>\""));
    }
    if text(header::IF_NONE_MATCH) == Some("*") {
        return Ok(0);
    }
    Err(ApiError::new(
        ErrorCode::BadRequest,
        "say which generation this replaces: If-Match: \"g<N>\", or If-None-Match: * for the first",
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BackupStored {
    generation: i64,
}

/// Store a new generation (an opaque blob of at most `authenticator.backup_max_bytes`). Two
/// generations are kept. 412 `backup_conflict` when the generation named is not the newest.
#[utoipa::path(put, path = "/me/backup", tag = "me", security(("session" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = BackupStored),
        (status = 400, body = super::ErrorBody, description = "no If-Match / If-None-Match"),
        (status = 412, body = super::ErrorBody, description = "`backup_conflict`"),
        (status = 413, body = super::ErrorBody, description = "`payload_too_large`")))]
async fn put_me_backup(
    State(s): State<AppState>,
    Me(me): Me,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let expected = expected_generation(&headers)?;
    let limit = s.config().authenticator.backup_max_bytes;
    // One byte over the limit is enough to refuse; nothing larger is buffered.
    let Ok(bytes) = axum::body::to_bytes(body, limit + 1).await else {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the backup is larger than {limit} bytes"),
        ));
    };
    match s.put_my_vault_backup(&me, expected, &bytes).await? {
        BackupPut::Stored(generation) => Ok((
            StatusCode::CREATED,
            [(header::ETAG, etag(generation))],
            Json(BackupStored { generation }),
        )
            .into_response()),
        BackupPut::Conflict { current } => Err(ApiError::new(
            ErrorCode::BackupConflict,
            format!("the newest stored generation is {current}: download, merge and upload again"),
        )),
        BackupPut::TooLarge { limit } => Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the backup is larger than {limit} bytes"),
        )),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BackupDeleted {
    deleted: u64,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Delete only the generations below this one (after a kit rotation).
    older_than: Option<i64>,
}

/// Delete the caller's backup: every generation, or with `older_than=N` those below N.
#[utoipa::path(delete, path = "/me/backup", tag = "me", security(("session" = [])),
    params(DeleteQuery),
    responses((status = 200, body = BackupDeleted)))]
async fn delete_me_backup(
    State(s): State<AppState>,
    Me(me): Me,
    ApiQuery(q): ApiQuery<DeleteQuery>,
) -> Result<Json<BackupDeleted>, ApiError> {
    Ok(Json(BackupDeleted {
        deleted: s.delete_my_vault_backup(&me, q.older_than).await?,
    }))
}
