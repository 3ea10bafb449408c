//! `/api/v1/enrollment/{link}/…`: the JSON twin of the enrollment pages (SPEC F1, F9), for
//! `tessera-auth add https://host/enroll/TOKEN`. The link token in the path is the capability,
//! exactly as for the pages; the same service methods run, so the same rules hold (single use,
//! expiry, replaced links, wrong first codes counted against the link, throttling) and the same
//! audit rows are written. The pages' form token guards browsers against cross-site forms; a
//! JSON request carries no cookie to abuse, so the handler takes the link's own form token.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{ApiJson, ApiPath};
use crate::http::{ApiError, AppState};
use crate::service::{Device, ErrorCode, FirstCode};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_enrollment_start))
        .routes(routes!(post_enrollment_verify))
}

/// The pending token's key, to be stored by the authenticator.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EnrollmentStarted {
    username: String,
    organisation: String,
    issuer: String,
    account: String,
    /// The `otpauth://` key URI (carries the seed: keep it only in the authenticator).
    otpauth_uri: String,
    digits: u32,
    period: u64,
    /// Unix time after which the link no longer works.
    expires_at: i64,
    /// Wrong first codes left before the link ends.
    attempts_left: u64,
}

impl std::fmt::Debug for EnrollmentStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentStarted")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Start (or resume) the enrollment a link invites to and get the new token's key. Starting
/// twice returns the same key until the token is activated.
#[utoipa::path(post, path = "/enrollment/{link}/start", tag = "enrollment",
    params(("link" = String, Path, description = "the token of the enrollment link")),
    responses((status = 200, body = EnrollmentStarted),
        (status = 404, body = super::ErrorBody, description = "`not_found`: unknown link"),
        (status = 410, body = super::ErrorBody,
            description = "`enrollment_used`, `enrollment_expired`, `enrollment_superseded`, `enrollment_ended`")))]
async fn post_enrollment_start(
    State(s): State<AppState>,
    ApiPath(link): ApiPath<String>,
) -> Result<Json<EnrollmentStarted>, ApiError> {
    let view = s.open_enrollment(&link).await?;
    if !view.started {
        s.start_enrollment(&link, &view.form_token, Device::Other)
            .await?;
    }
    let key = s.enrollment_key(&link).await?;
    Ok(Json(EnrollmentStarted {
        username: key.view.username,
        organisation: key.view.organisation,
        issuer: key.issuer,
        account: key.account,
        otpauth_uri: key.otpauth_uri,
        digits: key.digits,
        period: key.period,
        expires_at: key.view.expires_at,
        attempts_left: key.view.attempts_left,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The token's name in the user's device list ("Laptop").
    name: String,
    /// The first code the authenticator shows: only a correct one activates the token.
    code: String,
}

impl std::fmt::Debug for VerifyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyRequest")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The activated token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EnrollmentActivated {
    token_name: String,
    username: String,
    /// Recovery codes, shown this once (empty when recovery is off for the user).
    recovery_codes: Vec<String>,
}

impl std::fmt::Debug for EnrollmentActivated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentActivated")
            .field("token_name", &self.token_name)
            .field("recovery_codes", &self.recovery_codes.len())
            .finish_non_exhaustive()
    }
}

/// Name the token and activate it with its first code. A wrong code answers 422
/// `invalid_code` and counts against the link (after `enroll.max_failed_codes` the link ends:
/// 410 `enrollment_ended`); too many tries at once answer 429 `throttled`.
#[utoipa::path(post, path = "/enrollment/{link}/verify", tag = "enrollment",
    params(("link" = String, Path, description = "the token of the enrollment link")),
    request_body = VerifyRequest,
    responses((status = 200, body = EnrollmentActivated),
        (status = 400, body = super::ErrorBody, description = "`invalid_input`: the name"),
        (status = 409, body = super::ErrorBody, description = "`token_state`: not started"),
        (status = 410, body = super::ErrorBody),
        (status = 422, body = super::ErrorBody, description = "`invalid_code`"),
        (status = 429, body = super::ErrorBody, description = "`throttled`")))]
async fn post_enrollment_verify(
    State(s): State<AppState>,
    ApiPath(link): ApiPath<String>,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<(StatusCode, Json<EnrollmentActivated>), ApiError> {
    let view = s.open_enrollment(&link).await?;
    match s
        .submit_first_code(&link, &view.form_token, &req.name, &req.code)
        .await?
    {
        FirstCode::Activated(done) => Ok((
            StatusCode::OK,
            Json(EnrollmentActivated {
                token_name: done.token_name,
                username: done.view.username,
                recovery_codes: done.recovery_codes,
            }),
        )),
        FirstCode::Rejected { view, throttled } => Err(if throttled {
            ApiError::new(
                ErrorCode::Throttled,
                "too many tries: wait for the next code",
            )
        } else {
            ApiError::new(
                ErrorCode::InvalidCode,
                format!(
                    "the code is not correct ({} tries left); check the device's clock",
                    view.attempts_left
                ),
            )
        }),
    }
}
