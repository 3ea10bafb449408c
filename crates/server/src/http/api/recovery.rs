//! `/api/v1/users/{username}/recovery...`: a user's recovery settings (each with where it comes
//! from), the self-service lock and the recovery history (SPEC F4). The same service methods as
//! the admin's web page and `tessera recovery`; changes need re-authentication.
//! (`POST /users/{username}/recovery-codes` and `/reset` live in `users.rs`.)

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::AdminDelivery;
use crate::http::extract::{Admin, ApiJson, ApiPath, ApiQuery};
use crate::http::{ApiError, AppState};
use crate::model::AuditEntry;
use crate::service::{RecoveryChanges, RecoverySettings, Setting};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_recovery, put_recovery))
        .routes(routes!(post_unlock))
        .routes(routes!(get_history))
}

/// A yes/no setting: the value in force, and whether it is set for this user (`false`: it
/// follows the configuration).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Flag {
    value: bool,
    user_setting: bool,
}

impl From<Setting<bool>> for Flag {
    fn from(s: Setting<bool>) -> Flag {
        Flag {
            value: s.value,
            user_setting: s.overridden,
        }
    }
}

/// How re-issued recovery codes reach the user: `show` (once, to the admin) or `email`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    Show,
    Email,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliverySetting {
    value: Delivery,
    user_setting: bool,
}

/// A user's recovery settings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecoveryView {
    /// May recover themself on `/recover` (`recovery.self_service`).
    self_recovery: Flag,
    /// Old devices revoked after a recovery (`recovery.revoke_old_devices`).
    revoke_old_devices: Flag,
    /// Delivery of re-issued codes (`recovery.admin_delivery`).
    delivery: DeliverySetting,
    /// Recovery codes at enrollment (`enroll.recovery_codes_for_new_users`).
    codes_at_enrollment: Flag,
    /// Locked after "this wasn't me" until an admin unlocks it.
    self_service_locked: bool,
    codes_left: usize,
    codes_issued: usize,
}

impl From<RecoverySettings> for RecoveryView {
    fn from(r: RecoverySettings) -> RecoveryView {
        RecoveryView {
            self_recovery: r.self_recovery.into(),
            revoke_old_devices: r.revoke_old_devices.into(),
            delivery: DeliverySetting {
                value: match r.delivery.value {
                    AdminDelivery::Show => Delivery::Show,
                    AdminDelivery::Email => Delivery::Email,
                },
                user_setting: r.delivery.overridden,
            },
            codes_at_enrollment: r.codes_at_enrollment.into(),
            self_service_locked: r.self_service_locked,
            codes_left: r.codes_left,
            codes_issued: r.codes_issued,
        }
    }
}

/// A yes/no setting to set: `on`, `off`, or `policy` (follow the configuration again).
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FlagChoice {
    On,
    Off,
    Policy,
}

impl FlagChoice {
    fn value(self) -> Option<bool> {
        match self {
            FlagChoice::On => Some(true),
            FlagChoice::Off => Some(false),
            FlagChoice::Policy => None,
        }
    }
}

/// The delivery to set: `show`, `email`, or `policy` (follow the configuration again).
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryChoice {
    Show,
    Email,
    Policy,
}

/// What to change; a field left out stays as it is.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryUpdate {
    self_recovery: Option<FlagChoice>,
    revoke_old_devices: Option<FlagChoice>,
    delivery: Option<DeliveryChoice>,
    codes_at_enrollment: Option<FlagChoice>,
}

/// The user's recovery settings, each with whether it is set for the user or follows the
/// configuration.
#[utoipa::path(get, path = "/users/{username}/recovery", tag = "users",
    security(("session" = [])), params(("username" = String, Path)),
    responses((status = 200, body = RecoveryView)))]
async fn get_recovery(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
) -> Result<Json<RecoveryView>, ApiError> {
    Ok(Json(
        s.recovery_settings(&admin.actor, &username).await?.into(),
    ))
}

/// Change the user's recovery settings (needs re-authentication); returns them as now in force.
#[utoipa::path(put, path = "/users/{username}/recovery", tag = "users",
    request_body = RecoveryUpdate, security(("session" = [])),
    params(("username" = String, Path)), responses((status = 200, body = RecoveryView)))]
async fn put_recovery(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
    ApiJson(req): ApiJson<RecoveryUpdate>,
) -> Result<Json<RecoveryView>, ApiError> {
    let changes = RecoveryChanges {
        self_recovery: req.self_recovery.map(FlagChoice::value),
        revoke_old_devices: req.revoke_old_devices.map(FlagChoice::value),
        delivery: req.delivery.map(|d| match d {
            DeliveryChoice::Show => Some(AdminDelivery::Show),
            DeliveryChoice::Email => Some(AdminDelivery::Email),
            DeliveryChoice::Policy => None,
        }),
        codes_at_enrollment: req.codes_at_enrollment.map(FlagChoice::value),
    };
    Ok(Json(
        s.change_recovery_settings(&admin.actor, &username, changes)
            .await?
            .into(),
    ))
}

/// Clear the user's self-service lock, set by a "this wasn't me" link (needs re-authentication).
#[utoipa::path(post, path = "/users/{username}/self-service-unlock", tag = "users",
    security(("session" = [])), params(("username" = String, Path)),
    responses((status = 204)))]
async fn post_unlock(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    s.clear_self_service_lock(&admin.actor, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Entries, 1-1000 (default 50).
    limit: Option<i64>,
}

/// The user's recovery history, newest first: recoveries, resets, re-issued codes, blocks and
/// recovery setting changes.
#[utoipa::path(get, path = "/users/{username}/recovery-history", tag = "users",
    security(("session" = [])), params(("username" = String, Path), HistoryQuery),
    responses((status = 200, body = Vec<AuditEntry>)))]
async fn get_history(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    Ok(Json(
        s.recovery_history(&admin.actor, &username, limit).await?,
    ))
}
