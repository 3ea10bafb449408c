//! The admin area (`/admin`): users (search, paging, create, disable, delete), a user's page
//! with the OTP requirement and phone number (SPEC F3: saving either asks for the admin's own
//! password again), the user's devices and audit trail, applications, and the audit log. The
//! user's recovery settings and help live in `admin_recovery.rs`.
//!
//! Admins only: every handler takes [`AdminMe`] first, which answers everyone else with 403.
//! Every action calls the same service method as the API and the CLI, with the admin's actor.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::model::{AppId, AppMode, AuditFilter, Role, TokenId, UserState};
use crate::service::{CreateApp, CreateUser, Error, TokenAction, UserChanges};

use super::pages::{AdminAppsPage, AdminAuditPage, AdminUserPage, AdminUsersPage, AppRow};
use super::portal::{device_row, event_rows};
use super::{AppState, FormData, Me, error_page, message, see_other, with_reauth};

/// Users per page of the list.
const PAGE: i64 = 25;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(get_users))
        .route("/admin/users", post(post_create_user))
        .route("/admin/users/{name}", get(get_user).post(post_user))
        .route("/admin/users/{name}/state", post(post_user_state))
        .route("/admin/users/{name}/delete", post(post_delete_user))
        .route("/admin/users/{name}/invite", post(post_invite))
        .route("/admin/tokens/{id}/{action}", post(post_token))
        .route("/admin/audit", get(get_audit))
        .route("/admin/apps", get(get_apps).post(post_app))
        .route("/admin/apps/{id}/revoke", post(post_revoke_app))
}

/// A logged-in admin. Anyone else gets the 403 page, before the handler runs.
#[derive(Debug, Clone)]
pub struct AdminMe(pub Me);

impl FromRequestParts<AppState> for AdminMe {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let me = Me::from_request_parts(parts, s).await?;
        if !me.web.is_admin() {
            return Err(message(
                s,
                me.t,
                Some(&me.web),
                StatusCode::FORBIDDEN,
                "web.forbidden_title",
                me.t.t("web.forbidden_text").to_owned(),
            ));
        }
        Ok(AdminMe(me))
    }
}

pub(super) fn user_href(name: &str) -> String {
    format!(
        "/admin/users/{}",
        url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()
    )
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: i64,
}

async fn get_users(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Query(q): Query<ListQuery>,
) -> Response {
    let t = me.t;
    let page = q.page.max(0);
    let list = match s
        .list_users(&me.web.actor(), &q.q, PAGE, page.saturating_mul(PAGE))
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let from = if list.total == 0 { 0 } else { list.offset + 1 };
    let to = list.offset + i64::try_from(list.users.len()).unwrap_or(0);
    AdminUsersPage {
        n: me.nav(&s, "web.users_title", "admin"),
        t,
        default_lang: s.config().server.default_language.as_str(),
        summary: t.f(
            "web.users_summary",
            &[
                ("from", &from.to_string()),
                ("to", &to.to_string()),
                ("total", &list.total.to_string()),
            ],
        ),
        prev_href: if page > 0 {
            format!("/admin?q={}&page={}", enc(&q.q), page - 1)
        } else {
            String::new()
        },
        next_href: if to < list.total {
            format!("/admin?q={}&page={}", enc(&q.q), page + 1)
        } else {
            String::new()
        },
        users: list.users,
        q: q.q,
    }
    .into_response()
}

async fn post_create_user(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    with_reauth(&me, &s, "/admin/users", &form, |web, form| {
        let s = s.clone();
        async move {
            let password = form.get("password");
            let user = s
                .create_user(
                    &web.actor(),
                    CreateUser {
                        username: form.get("username").to_owned(),
                        display_name: form.get("display_name").to_owned(),
                        email: form.get("email").to_owned(),
                        phone: form.get("phone").to_owned(),
                        otp_required: form.has("otp_required"),
                        language: form.get("language").parse().ok(),
                        role: Some(if form.get("role") == "admin" {
                            Role::Admin
                        } else {
                            Role::User
                        }),
                        password: (!password.is_empty())
                            .then(|| crate::model::Password::new(password)),
                    },
                )
                .await?;
            Ok(see_other(&user_href(&user.username)))
        }
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
struct Done {
    #[serde(default)]
    done: String,
}

async fn get_user(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(name): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let t = me.t;
    let actor = me.web.actor();
    let user = match s.user_named(&name).await {
        Ok(u) => u,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let devices = match s.list_tokens(&actor, Some(&user.username), 100, 0).await {
        Ok(d) => d,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let filter = AuditFilter {
        username: Some(user.username.clone()),
        limit: 20,
        ..AuditFilter::default()
    };
    let events = match s.list_audit(&actor, filter).await {
        Ok(e) => e,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let rec = match super::admin_recovery::recovery_section(&s, &me, &user.username).await {
        Ok(r) => r,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let notice = match done.done.as_str() {
        d @ ("saved" | "invited" | "token") => t.t(&format!("web.done_{d}")).to_owned(),
        d @ ("recovery" | "codes_mailed" | "unlocked") => {
            t.t(&format!("admin_recovery.done_{d}")).to_owned()
        }
        _ => String::new(),
    };
    AdminUserPage {
        n: me.nav(&s, "web.user_title", "admin"),
        t,
        devices: devices.into_iter().map(|d| device_row(t, d)).collect(),
        events: event_rows(t, events),
        u: user,
        notice,
        rec,
    }
    .into_response()
}

/// Saves the user's page. Changing the OTP requirement or the phone number (or e-mail) needs
/// the admin's password again: the service answers `reauth_required`, and the password page
/// sends this same change again (SPEC F3).
async fn post_user(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let action = user_href(&name);
    with_reauth(&me, &s, &action, &form, |web, form| {
        let s = s.clone();
        async move {
            let user = s
                .update_user(
                    &web.actor(),
                    &name,
                    UserChanges {
                        display_name: Some(form.get("display_name").to_owned()),
                        email: Some(form.get("email").to_owned()),
                        phone: Some(form.get("phone").to_owned()),
                        // An unticked checkbox is not sent at all: absent means off.
                        otp_required: Some(form.has("otp_required")),
                        ..UserChanges::default()
                    },
                )
                .await?;
            Ok(see_other(&format!(
                "{}?done=saved",
                user_href(&user.username)
            )))
        }
    })
    .await
}

async fn post_user_state(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let state = if form.get("state") == "disabled" {
        UserState::Disabled
    } else {
        UserState::Active
    };
    let changes = UserChanges {
        state: Some(state),
        ..UserChanges::default()
    };
    match s.update_user(&me.web.actor(), &name, changes).await {
        Ok(u) => see_other(&format!("{}?done=saved", user_href(&u.username))),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}

async fn post_delete_user(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let action = format!("{}/delete", user_href(&name));
    with_reauth(&me, &s, &action, &form, |web, _| {
        let s = s.clone();
        async move {
            s.delete_user(&web.actor(), &name).await?;
            Ok(see_other("/admin"))
        }
    })
    .await
}

async fn post_invite(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    match s.invite_user(&me.web.actor(), &name, true).await {
        Ok(sent) => see_other(&format!("{}?done=invited", user_href(&sent.username))),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}

/// A device of any user: disable, enable, unlock, revoke ("lost or stolen") or remove.
async fn post_token(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path((id, op)): Path<(i64, String)>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let id = TokenId(id);
    let action = format!("/admin/tokens/{}/{op}", id.0);
    with_reauth(&me, &s, &action, &form, |web, _| {
        let s = s.clone();
        async move {
            let actor = web.actor();
            let owner = s.get_token(&actor, id).await?.username;
            match op.as_str() {
                "disable" => drop(
                    s.change_token_state(&actor, id, TokenAction::Disable)
                        .await?,
                ),
                "enable" => drop(
                    s.change_token_state(&actor, id, TokenAction::Enable)
                        .await?,
                ),
                "revoke" => drop(
                    s.change_token_state(&actor, id, TokenAction::Revoke)
                        .await?,
                ),
                "unlock" => drop(s.unlock_token(&actor, id).await?),
                "remove" => s.delete_token(&actor, id).await?,
                _ => return Err(Error::NotFound("action")),
            }
            Ok(see_other(&format!("{}?done=token", user_href(&owner))))
        }
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
struct AuditQuery {
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
}

async fn get_audit(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Query(q): Query<AuditQuery>,
) -> Response {
    let t = me.t;
    let actor = me.web.actor();
    let filter = AuditFilter {
        username: (!q.user.trim().is_empty()).then(|| q.user.trim().to_owned()),
        action: (!q.action.trim().is_empty()).then(|| q.action.trim().to_owned()),
        limit: 100,
        ..AuditFilter::default()
    };
    let events = match s.list_audit(&actor, filter).await {
        Ok(e) => e,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let v = match s.verify_audit(&actor, &[]).await {
        Ok(v) => v,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let verification = if v.ok {
        t.f1("web.audit_ok", "count", &v.entries.to_string())
    } else {
        t.f2(
            "web.audit_bad",
            "seq",
            &v.first_bad_seq.unwrap_or(0).to_string(),
            "problem",
            v.problem.as_deref().unwrap_or(""),
        )
    };
    AdminAuditPage {
        n: me.nav(&s, "web.audit_title", "audit"),
        t,
        events: event_rows(t, events),
        user: q.user,
        action: q.action,
        verification,
        intact: v.ok,
    }
    .into_response()
}

async fn apps_page(s: &AppState, me: &Me, new_key: String) -> Response {
    let t = me.t;
    match s.list_apps(&me.web.actor()).await {
        Ok(apps) => AdminAppsPage {
            n: me.nav(s, "web.apps_title", "apps"),
            t,
            apps: apps
                .into_iter()
                .map(|app| AppRow {
                    created: t.datetime(app.created_at),
                    app,
                })
                .collect(),
            new_key,
        }
        .into_response(),
        Err(e) => error_page(s, t, Some(&me.web), &e),
    }
}

async fn get_apps(State(s): State<AppState>, AdminMe(me): AdminMe) -> Response {
    apps_page(&s, &me, String::new()).await
}

async fn post_app(State(s): State<AppState>, AdminMe(me): AdminMe, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let me2 = me.clone();
    with_reauth(&me, &s, "/admin/apps", &form, |web, form| {
        let s = s.clone();
        async move {
            let mode = if form.get("mode") == "otp_only" {
                AppMode::OtpOnly
            } else {
                AppMode::PasswordAndOtp
            };
            let created = s
                .create_app(
                    &web.actor(),
                    CreateApp {
                        name: form.get("name").to_owned(),
                        mode: Some(mode),
                        passthrough: None,
                    },
                )
                .await?;
            // The key exists nowhere else: this answer is the only place it is shown.
            Ok(apps_page(&s, &me2, created.api_key).await)
        }
    })
    .await
}

async fn post_revoke_app(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    match s.revoke_app(&me.web.actor(), AppId(id)).await {
        Ok(_) => see_other("/admin/apps"),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}
