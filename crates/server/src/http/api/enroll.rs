//! `/api/v1/users/{username}/invitations`: send a user an enrollment e-mail, or get the link.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{Admin, ApiPath};
use crate::http::{ApiError, AppState};
use crate::service::ErrorCode;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_invitations))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationRequest {
    /// Mail the link to the user's address (default). `false`: return the link instead, for the
    /// admin to pass on.
    #[serde(default)]
    send: Option<bool>,
}

/// An invitation just created. `link` is present only with `"send": false`: it is the only copy.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitationCreated {
    username: String,
    /// Unix time after which the link no longer works.
    expires_at: i64,
    /// The address the link was mailed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    emailed_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

impl std::fmt::Debug for InvitationCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitationCreated")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Invite a user to enroll a token (SPEC F1). The link works once, expires after
/// `enroll.link_ttl_hours`, and replaces every earlier link of the user. A mail that cannot be
/// sent fails with 502 `mail_failed` and the new link does not work.
#[utoipa::path(post, path = "/users/{username}/invitations", tag = "enrollment",
    request_body(content = Option<InvitationRequest>, description = "Optional; `{}` mails the link"),
    security(("session" = [])), params(("username" = String, Path)),
    responses((status = 201, body = InvitationCreated),
        (status = 400, body = super::ErrorBody, description = "disabled user, or no e-mail address"),
        (status = 404, body = super::ErrorBody),
        (status = 502, body = super::ErrorBody, description = "`mail_failed`: not sent")))]
async fn post_invitations(
    State(s): State<AppState>,
    admin: Admin,
    ApiPath(username): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<InvitationCreated>), ApiError> {
    // The body is optional: an empty one means "mail the link".
    let req: InvitationRequest = if body.iter().all(u8::is_ascii_whitespace) {
        InvitationRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("invalid JSON body: {e}")))?
    };
    let send = req.send.unwrap_or(true);
    let sent = s.invite_user(&admin.actor, &username, send).await?;
    Ok((
        StatusCode::CREATED,
        Json(InvitationCreated {
            username: sent.username,
            expires_at: sent.expires_at,
            link: if send { None } else { Some(sent.link) },
            emailed_to: sent.emailed_to,
        }),
    ))
}
