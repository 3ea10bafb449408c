//! The self-service portal (SPEC F5): the user's devices (rename, remove, add), recovery codes,
//! password, language and recent security events. Every operation names the logged-in user to
//! the service, which checks that a token id from a form belongs to that user.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::events;
use crate::i18n::Tr;
use crate::model::{AuditEntry, Language, TokenId};
use crate::service::{ErrorCode, TokenInfo};

use super::pages::{CodesPage, DeviceRow, EventRow, PortalPage};
use super::{AppState, FormData, Me, error_page, see_other, with_reauth};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/portal", get(get_portal))
        .route("/portal/devices/{id}/rename", post(post_rename))
        .route("/portal/devices/{id}/remove", post(post_remove))
        .route("/portal/devices/add", post(post_add))
        .route("/portal/hardware", post(post_hardware))
        .route("/portal/recovery", post(post_recovery))
        .route("/portal/password", post(post_password))
        .route("/portal/language", post(post_language))
}

/// What an admin can do with a device in its state: (operation, label key, button style).
fn device_actions(info: &TokenInfo) -> Vec<(&'static str, &'static str, &'static str)> {
    use crate::model::TokenState::*;
    let disable = ("disable", "web.token_disable", "secondary");
    let enable = ("enable", "web.token_enable", "secondary");
    let unlock = ("unlock", "web.token_unlock", "secondary");
    let revoke = ("revoke", "web.token_revoke", "danger");
    let remove = ("remove", "web.remove", "danger");
    let throttled = info.fail_count > 0 || info.throttled_until > 0;
    match info.state {
        Active if throttled => vec![unlock, disable, revoke, remove],
        Active => vec![disable, revoke, remove],
        Locked => vec![unlock, disable, revoke, remove],
        Disabled => vec![enable, revoke, remove],
        Pending | Revoked => vec![remove],
    }
}

pub fn device_row(t: Tr, info: TokenInfo) -> DeviceRow {
    DeviceRow {
        actions: device_actions(&info),
        kind: t.t(&format!("web.kind_{}", info.kind)),
        badge: if info.unusable.is_some() {
            "unusable"
        } else {
            info.state.as_str()
        },
        // An active device whose codes go nowhere any more is shown as what it is.
        state: match info.unusable {
            Some(why) => t.t(&format!("web.state_{why}")),
            None => t.t(&format!("web.state_{}", info.state)),
        },
        created: t.datetime(info.created_at),
        last_used: info
            .last_used_at
            .map_or_else(|| t.t("web.never").to_owned(), |at| t.datetime(at)),
        info,
    }
}

pub fn event_rows(t: Tr, entries: Vec<AuditEntry>) -> Vec<EventRow> {
    entries
        .into_iter()
        .map(|entry| EventRow {
            at: t.datetime(entry.event.at),
            action: events::action_text(t, &entry.event.action),
            result: events::result_text(t, &entry.event.result),
            reason: events::reason_text(t, &entry.event.reason),
            entry,
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
struct Notice {
    #[serde(default)]
    done: String,
}

/// The confirmation shown after a change (only known keys: the text is never taken from the URL).
fn notice_text(t: Tr, done: &str) -> String {
    match done {
        "renamed" | "removed" | "password" | "language" | "hardware" | "migrated" => {
            t.t(&format!("web.done_{done}")).to_owned()
        }
        _ => String::new(),
    }
}

async fn get_portal(State(s): State<AppState>, me: Me, Query(notice): Query<Notice>) -> Response {
    portal_page(&s, &me, notice_text(me.t, &notice.done), String::new()).await
}

/// The portal, with a notice after a change or the reason a password change was refused.
async fn portal_page(s: &AppState, me: &Me, notice: String, password_error: String) -> Response {
    let t = me.t;
    let devices = match s.my_devices(&me.web).await {
        Ok(d) => d,
        Err(e) => return error_page(s, t, Some(&me.web), &e),
    };
    let (left, total) = match s.my_recovery_codes(&me.web).await {
        Ok(c) => c,
        Err(e) => return error_page(s, t, Some(&me.web), &e),
    };
    let events = match s.my_events(&me.web, 15).await {
        Ok(e) => e,
        Err(e) => return error_page(s, t, Some(&me.web), &e),
    };
    let waiting = match super::program::waiting_rows(s, me, &me.web.user.username, false).await {
        Ok(w) => w,
        Err(e) => return error_page(s, t, Some(&me.web), &e),
    };
    PortalPage {
        waiting,
        program_action: "/portal/hardware/program".to_owned(),
        migrate_hint: t.f1("migrate.hint", "issuer", &s.config().issuer()),
        n: me.nav(s, "web.portal_title", "portal"),
        t,
        devices: devices.into_iter().map(|d| device_row(t, d)).collect(),
        codes_left: t.f2(
            "web.recovery_left",
            "left",
            &left.to_string(),
            "total",
            &total.to_string(),
        ),
        events: event_rows(t, events),
        notice,
        lang: t.code(),
        min_password: s.config().auth.min_password_length,
        password_error,
    }
    .into_response()
}

async fn post_rename(
    State(s): State<AppState>,
    me: Me,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    match s
        .rename_my_device(&me.web, TokenId(id), form.get("name"))
        .await
    {
        Ok(()) => see_other("/portal?done=renamed"),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}

async fn post_remove(
    State(s): State<AppState>,
    me: Me,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let action = format!("/portal/devices/{id}/remove");
    with_reauth(&me, &s, &action, &form, |web, _| {
        let s = s.clone();
        async move {
            s.remove_my_device(&web, TokenId(id)).await?;
            Ok(see_other("/portal?done=removed"))
        }
    })
    .await
}

async fn post_add(State(s): State<AppState>, me: Me, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let lang = me.t.code();
    with_reauth(&me, &s, "/portal/devices/add", &form, |web, _| {
        let s = s.clone();
        async move {
            let path = s.add_my_device(&web).await?;
            Ok(see_other(&format!("{path}?lang={lang}")))
        }
    })
    .await
}

/// "Add a hardware token": serial and current code (see `Service::claim_hardware_token`).
async fn post_hardware(State(s): State<AppState>, me: Me, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    match s
        .claim_hardware_token(
            &me.web,
            form.get("serial"),
            form.get("code"),
            form.get("next_code"),
        )
        .await
    {
        Ok(_) => see_other("/portal?done=hardware"),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}

async fn post_recovery(State(s): State<AppState>, me: Me, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let nav = me.nav(&s, "web.codes_title", "portal");
    let t = me.t;
    with_reauth(&me, &s, "/portal/recovery", &form, |web, _| {
        let s = s.clone();
        async move {
            let codes = s.regenerate_my_recovery_codes(&web).await?;
            Ok(CodesPage { n: nav, t, codes }.into_response())
        }
    })
    .await
}

/// Changes the password. A refusal (wrong current password, a new one that breaks the rule,
/// two new ones that differ) shows the portal again with the reason in its language.
async fn post_password(State(s): State<AppState>, me: Me, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let t = me.t;
    let refused = |status: StatusCode, why: String| {
        let (s, me) = (s.clone(), me.clone());
        async move {
            let mut page = portal_page(&s, &me, String::new(), why).await;
            if page.status() == StatusCode::OK {
                *page.status_mut() = status;
            }
            page
        }
    };
    // A form without the repeat field (an older page, a script) is checked by the service only.
    if form.has("new2") && form.get("new") != form.get("new2") {
        return refused(
            StatusCode::BAD_REQUEST,
            t.t("web.password_mismatch").to_owned(),
        )
        .await;
    }
    match s
        .change_my_password(&me.web, form.get("current"), form.get("new"))
        .await
    {
        Ok(()) => see_other("/portal?done=password"),
        Err(e) if e.code() == ErrorCode::InvalidCredentials => {
            refused(StatusCode::FORBIDDEN, t.t("web.password_wrong").to_owned()).await
        }
        Err(e) if e.code() == ErrorCode::InvalidInput => {
            let min = s.config().auth.min_password_length.to_string();
            refused(
                StatusCode::BAD_REQUEST,
                t.f1("web.password_rule", "min", &min),
            )
            .await
        }
        Err(e) => error_page(&s, t, Some(&me.web), &e),
    }
}

async fn post_language(State(s): State<AppState>, me: Me, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let Ok(language) = form.get("language").parse::<Language>() else {
        return error_page(
            &s,
            me.t,
            Some(&me.web),
            &crate::service::Error::Invalid(crate::msg::Msg::new(crate::msg::Key::Language)),
        );
    };
    // Back to the page the switch was used on (the header's form names its section); only
    // these fixed places, never an address from the form.
    let back = match form.get("back") {
        "admin" => "/admin",
        "apps" => "/admin/apps",
        "radius" => "/admin/radius",
        "inventory" => "/admin/inventory",
        "audit" => "/admin/audit",
        _ => "/portal?done=language",
    };
    match s.set_my_language(&me.web, language).await {
        Ok(()) => see_other(back),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}
