//! `/api/v1/audit`: list with filters, verify the hash chain.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::clock::parse_time;
use crate::http::extract::{Admin, ApiQuery};
use crate::http::{ApiError, AppState};
use crate::model::{AuditEntry, AuditFilter};
use crate::service::{AuditVerification, ErrorCode};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_audit))
        .routes(routes!(get_verify))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only events concerning this user.
    user: Option<String>,
    /// Only this action, e.g. `token.add`.
    action: Option<String>,
    /// From this time (RFC 3339 or YYYY-MM-DD).
    since: Option<String>,
    /// Before this time (RFC 3339 or YYYY-MM-DD).
    until: Option<String>,
    /// Page size, 1-1000 (default 100).
    limit: Option<i64>,
    /// Entries older than this sequence number (next page).
    before: Option<i64>,
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            parse_time(v).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidInput,
                    format!("{name}: expected RFC 3339 (2026-11-21T10:00:00Z) or YYYY-MM-DD"),
                )
            })
        })
        .transpose()
}

/// Audit entries, newest first.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery), security(("session" = [])),
    responses((status = 200, body = Vec<AuditEntry>)))]
async fn get_audit(
    State(s): State<AppState>,
    admin: Admin,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    let filter = AuditFilter {
        since: time_param("since", q.since.as_deref())?,
        until: time_param("until", q.until.as_deref())?,
        username: q.user,
        action: q.action,
        limit: q.limit.unwrap_or(100),
        before_seq: q.before,
        ..AuditFilter::default()
    };
    Ok(Json(s.list_audit(&admin.actor, filter).await?))
}

/// Recompute the hash chain with the server's audit key; names the first entry that was changed
/// or deleted. When the log verifies, `head` is its newest entry as a checkpoint to keep
/// elsewhere (`tessera audit verify --checkpoint FILE` checks it later).
#[utoipa::path(get, path = "/audit/verify", tag = "audit", security(("session" = [])),
    responses((status = 200, body = AuditVerification)))]
async fn get_verify(
    State(s): State<AppState>,
    admin: Admin,
) -> Result<Json<AuditVerification>, ApiError> {
    Ok(Json(s.verify_audit(&admin.actor, &[]).await?))
}
