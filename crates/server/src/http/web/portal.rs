//! The self-service portal (SPEC F5): the user's devices (rename, remove, add), recovery codes,
//! password, language and recent security events. Every operation names the logged-in user to
//! the service, which checks that a token id from a form belongs to that user.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::events;
use crate::i18n::Tr;
use crate::model::{AuditEntry, Language, TokenId};
use crate::service::{ErrorCode, TokenInfo};

use super::pages::{CodesPage, DeviceRow, EventRow, PortalPage};
use super::{AppState, FormData, Me, error_page, message, see_other, with_reauth};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/portal", get(get_portal))
        .route("/portal/devices/{id}/rename", post(post_rename))
        .route("/portal/devices/{id}/remove", post(post_remove))
        .route("/portal/devices/add", post(post_add))
        .route("/portal/recovery", post(post_recovery))
        .route("/portal/password", post(post_password))
        .route("/portal/language", post(post_language))
}

pub fn device_row(t: Tr, info: TokenInfo) -> DeviceRow {
    DeviceRow {
        kind: t.t(&format!("web.kind_{}", info.kind)),
        state: t.t(&format!("web.state_{}", info.state)),
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
        "renamed" | "removed" | "password" | "language" => {
            t.t(&format!("web.done_{done}")).to_owned()
        }
        _ => String::new(),
    }
}

async fn get_portal(State(s): State<AppState>, me: Me, Query(notice): Query<Notice>) -> Response {
    let t = me.t;
    let devices = match s.my_devices(&me.web).await {
        Ok(d) => d,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let (left, total) = match s.my_recovery_codes(&me.web).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    let events = match s.my_events(&me.web, 15).await {
        Ok(e) => e,
        Err(e) => return error_page(&s, t, Some(&me.web), &e),
    };
    PortalPage {
        n: me.nav(&s, "web.portal_title", "portal"),
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
        notice: notice_text(t, &notice.done),
        lang: t.code(),
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

async fn post_password(State(s): State<AppState>, me: Me, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    match s
        .change_my_password(&me.web, form.get("current"), form.get("new"))
        .await
    {
        Ok(()) => see_other("/portal?done=password"),
        Err(e) if e.code() == ErrorCode::InvalidCredentials => message(
            &s,
            me.t,
            Some(&me.web),
            axum::http::StatusCode::FORBIDDEN,
            "web.password_title",
            me.t.t("web.password_wrong").to_owned(),
        ),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
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
        "audit" => "/admin/audit",
        _ => "/portal?done=language",
    };
    match s.set_my_language(&me.web, language).await {
        Ok(()) => see_other(back),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}
