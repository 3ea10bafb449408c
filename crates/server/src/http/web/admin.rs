//! The admin area (`/admin`): users (search, paging, create, disable, delete), a user's page
//! with the OTP requirement and phone number (SPEC F3: saving either asks for the admin's own
//! password again), the user's devices and audit trail, applications, and the audit log. The
//! user's recovery settings and help live in `admin_recovery.rs`.
//!
//! Admins only: every handler takes [`AdminMe`] first, which answers everyone else with 403.
//! Every action calls the same service method as the API and the CLI, with the admin's actor.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::model::{AppId, AppMode, AuditFilter, Role, TokenId, UserFilter, UserState};
use crate::service::{CreateApp, CreateUser, Error, TokenAction, UserChanges};

use super::pages::{
    AdminAppsPage, AdminAuditPage, AdminUserPage, AdminUsersPage, AppRow, ConfirmPage, FilterLink,
};
use super::portal::{device_row, event_rows};
use super::{AdminMe, AppState, FormData, Me, error_page, see_other, user_href, with_reauth};

/// Users per page of the list.
const PAGE: i64 = 25;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(get_users))
        .route("/admin/users", post(post_create_user))
        .route("/admin/invite-all", post(post_invite_all))
        .route("/admin/users/{name}", get(get_user).post(post_user))
        .route("/admin/users/{name}/state", post(post_user_state))
        .route("/admin/users/{name}/delete", post(post_delete_user))
        .route("/admin/users/{name}/invite", post(post_invite))
        .route("/admin/tokens/{id}/{action}", post(post_token))
        .route("/admin/audit", get(get_audit))
        .route("/admin/apps", get(get_apps).post(post_app))
        .route("/admin/apps/{id}/revoke", post(post_revoke_app))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: i64,
    /// `locked`, `no_device` or `pending`; anything else shows everyone.
    #[serde(default)]
    filter: String,
    /// After a bulk invitation: how many went out and how many failed.
    #[serde(default)]
    sent: Option<u64>,
    #[serde(default)]
    failed: Option<u64>,
}

/// The filters of the user list, in the order of their links, with their label keys.
const FILTERS: [(UserFilter, &str); 4] = [
    (UserFilter::All, "web.filter_all"),
    (UserFilter::Locked, "web.filter_locked"),
    (UserFilter::NoDevice, "web.filter_no_device"),
    (UserFilter::Pending, "web.filter_pending"),
];

fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn list_href(q: &str, filter: UserFilter, page: i64) -> String {
    let mut href = format!("/admin?q={}", enc(q));
    if filter != UserFilter::All {
        href.push_str(&format!("&filter={filter}"));
    }
    if page > 0 {
        href.push_str(&format!("&page={page}"));
    }
    href
}

async fn get_users(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Query(q): Query<ListQuery>,
) -> Response {
    let t = me.t;
    let page = q.page.max(0);
    let filter: UserFilter = q.filter.parse().unwrap_or_default();
    let list = match s
        .list_users(
            &me.web.actor(),
            &q.q,
            filter,
            PAGE,
            page.saturating_mul(PAGE),
        )
        .await
    {
        Ok(l) => l,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let from = if list.total == 0 { 0 } else { list.offset + 1 };
    let to = list.offset + i64::try_from(list.users.len()).unwrap_or(0);
    let notice = match (q.sent, q.failed) {
        (Some(sent), Some(0)) => t.f1("web.bulk_invited", "sent", &sent.to_string()),
        (Some(sent), Some(failed)) => t.f2(
            "web.bulk_invited_failed",
            "sent",
            &sent.to_string(),
            "failed",
            &failed.to_string(),
        ),
        _ => String::new(),
    };
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
            list_href(&q.q, filter, page - 1)
        } else {
            String::new()
        },
        next_href: if to < list.total {
            list_href(&q.q, filter, page + 1)
        } else {
            String::new()
        },
        filters: FILTERS
            .iter()
            .map(|(f, key)| FilterLink {
                label: t.t(key),
                href: list_href(&q.q, *f, 0),
                current: *f == filter,
            })
            .collect(),
        filter: filter.as_str(),
        // Those without a working device, or with a link under way: one click invites them all.
        bulk_invite: matches!(filter, UserFilter::NoDevice | UserFilter::Pending) && list.total > 0,
        total: list.total,
        notice,
        users: list.users,
        q: q.q,
    }
    .into_response()
}

/// Invites every user of a filtered list (up to the largest page, 500): those without a
/// working device, or those whose link is under way (a new link replaces theirs). Users without
/// an e-mail address are counted as failed, and every attempt is audited by the service.
async fn post_invite_all(State(s): State<AppState>, AdminMe(me): AdminMe, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let filter: UserFilter = form.get("filter").parse().unwrap_or_default();
    if !matches!(filter, UserFilter::NoDevice | UserFilter::Pending) {
        return error_page(
            &s,
            me.t,
            Some(&me.web),
            &Error::Invalid(crate::msg::Msg::new(crate::msg::Key::BulkFilter)),
        );
    }
    let actor = me.web.actor();
    let q = form.get("q");
    let users = match s
        .list_users(&actor, q, filter, crate::service::MAX_PAGE, 0)
        .await
    {
        Ok(l) => l.users,
        Err(e) => return error_page(&s, me.t, Some(&me.web), &e),
    };
    let (mut sent, mut failed) = (0u64, 0u64);
    for user in users {
        match s.invite_user(&actor, &user.username, true).await {
            Ok(_) => sent += 1,
            Err(e) if e.code() == crate::service::ErrorCode::Internal => {
                return error_page(&s, me.t, Some(&me.web), &e);
            }
            Err(_) => failed += 1,
        }
    }
    see_other(&format!(
        "{}&sent={sent}&failed={failed}",
        list_href(q, filter, 0)
    ))
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
            let (user, invitation) = s
                .create_user_invited(
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
                        invite: form.has("invite"),
                    },
                )
                .await?;
            // The notice on the user's page says what happened, the invitation included.
            let done = match &invitation {
                None => "created",
                Some(Ok(_)) => "created_invited",
                Some(Err(_)) if user.email.is_empty() => "created_no_email",
                Some(Err(_)) => "created_invite_failed",
            };
            Ok(see_other(&format!(
                "{}?done={done}",
                user_href(&user.username)
            )))
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
    let waiting = match super::program::waiting_rows(&s, &me, &user.username, true).await {
        Ok(w) => w,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let notice = match done.done.as_str() {
        d @ ("saved"
        | "saved_invited"
        | "saved_no_email"
        | "saved_invite_failed"
        | "invited"
        | "token"
        | "assigned"
        | "created"
        | "created_invited"
        | "created_no_email"
        | "created_invite_failed") => t.t(&format!("web.done_{d}")).to_owned(),
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
        program_action: format!("{}/program", user_href(&user.username)),
        u: user,
        notice,
        rec,
        waiting,
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
            let (user, invitation) = s
                .update_user_invited(
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
            let done = match &invitation {
                None => "saved",
                Some(Ok(_)) => "saved_invited",
                Some(Err(_)) if user.email.is_empty() => "saved_no_email",
                Some(Err(_)) => "saved_invite_failed",
            };
            Ok(see_other(&format!(
                "{}?done={done}",
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

/// Whether an action that cannot be undone still needs its "are you sure?" (a form sent back
/// from the password page was confirmed before it was kept).
fn unconfirmed(form: &FormData) -> bool {
    form.get("confirm") != "yes" && !form.has("resume")
}

/// The "are you sure?" page of an action: names it, and leads back to `back` on cancel.
fn confirm_page(
    s: &AppState,
    me: &Me,
    what: String,
    text_key: &str,
    button_key: &str,
    action: String,
    back: String,
) -> Response {
    ConfirmPage {
        n: me.nav(s, "web.confirm_title", "admin"),
        t: me.t,
        what,
        text: me.t.t(text_key).to_owned(),
        action,
        button: me.t.t(button_key),
        back,
    }
    .into_response()
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
    if unconfirmed(&form) {
        let t = me.t;
        if let Err(e) = s.user_named(&name).await {
            return error_page(&s, t, Some(&me.web), &e);
        }
        let what = t.f1("reauth.delete_user", "name", &name);
        return confirm_page(
            &s,
            &me,
            what,
            "web.confirm_delete_user",
            "web.delete_user",
            action,
            user_href(&name),
        );
    }
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
    if op == "remove" && unconfirmed(&form) {
        let t = me.t;
        let token = match s.get_token(&me.web.actor(), id).await {
            Ok(token) => token,
            Err(e) => return error_page(&s, t, Some(&me.web), &e),
        };
        let what = t.f2(
            "web.confirm_remove_device_what",
            "device",
            &format!("{} ({})", token.name, token.serial.0),
            "name",
            &token.username,
        );
        return confirm_page(
            &s,
            &me,
            what,
            "web.confirm_remove_device",
            "web.remove",
            action,
            user_href(&token.username),
        );
    }
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
