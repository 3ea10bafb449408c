//! `/recover` (SPEC F4): username and one recovery code, then the code e-mailed to the user, then
//! the enrollment pages for a new device. The first step answers the same page with the same
//! status whatever happened (no enumeration); the service decides and pads the time. No session
//! is opened: a recovery only permits enrolling a device.
//!
//! Both forms are bound to the pre-login cookie, as the login form is.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::crypto::{ct_eq, random_token};
use crate::i18n::Tr;
use crate::service::Error;
use crate::service::ErrorCode;

use super::login::LoginLang;
use super::pages::{Nav, NotMePage, RecoverPage, ResetConfirmPage, ResetPage};
use super::{
    AppState, FormData, LOGIN_COOKIE, cookie, error_page, hint_cookie, message, see_other,
    set_cookie,
};
use crate::http::extract::Source;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/recover", get(get_recover).post(post_recover))
        .route("/recover/code", post(post_code))
        .route("/recover/lang", post(post_lang))
        .route("/not-me/{link}", get(get_not_me).post(post_not_me))
        .route("/reset", get(get_reset).post(post_reset))
        .route("/reset/{link}", get(get_reset_link).post(post_reset_link))
}

fn page(s: &AppState, t: Tr, form_value: String, ticket: String, failed: bool) -> RecoverPage {
    let tries = s.config().recovery.max_attempts;
    code_page(s, t, form_value, ticket, failed, tries)
}

fn code_page(
    s: &AppState,
    t: Tr,
    form_value: String,
    ticket: String,
    failed: bool,
    tries_left: u64,
) -> RecoverPage {
    let mut n = Nav::new(t, s, "recover.title", None, "");
    if !ticket.is_empty() {
        // The code step lives in hidden fields: switching the language re-sends them.
        n = n.switch_by_post(
            "/recover/lang",
            vec![
                ("recover_form", form_value.clone()),
                ("ticket", ticket.clone()),
            ],
        );
    }
    RecoverPage {
        n,
        t,
        form_value,
        ticket,
        failed,
        tries_left,
        lang: t.code(),
    }
}

async fn get_recover(
    State(s): State<AppState>,
    LoginLang(t): LoginLang,
    headers: HeaderMap,
) -> Response {
    let value = match cookie(&headers, LOGIN_COOKIE) {
        Some(v) => v,
        None => match random_token() {
            Ok(v) => v,
            Err(e) => return error_page(&s, t, None, &e.into()),
        },
    };
    let set = set_cookie(&s, LOGIN_COOKIE, &value, Some(3600));
    (
        [(header::SET_COOKIE, set)],
        page(&s, t, value, String::new(), false),
    )
        .into_response()
}

/// The form's value bound to the pre-login cookie, or the refusal page.
fn bound_form(
    s: &AppState,
    t: Tr,
    headers: &HeaderMap,
    form: &FormData,
) -> Result<String, Box<Response>> {
    bound_field(s, t, headers, form, "recover_form")
}

fn bound_field(
    s: &AppState,
    t: Tr,
    headers: &HeaderMap,
    form: &FormData,
    field: &str,
) -> Result<String, Box<Response>> {
    let bound = cookie(headers, LOGIN_COOKIE).unwrap_or_default();
    if bound.is_empty() || !ct_eq(bound.as_bytes(), form.get(field).as_bytes()) {
        return Err(Box::new(message(
            s,
            t,
            None,
            StatusCode::FORBIDDEN,
            "web.csrf_title",
            t.t("web.csrf_login").to_owned(),
        )));
    }
    Ok(bound)
}

async fn post_recover(
    State(s): State<AppState>,
    LoginLang(t): LoginLang,
    Source(source): Source,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let bound = match bound_form(&s, t, &headers, &form) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match s
        .start_recovery(&source, form.get("username"), form.get("recovery_code"))
        .await
    {
        Ok(ticket) => page(&s, t, bound, ticket, false).into_response(),
        // Only after a right recovery code: nothing will be mailed, the IT must help.
        Err(e) if e.code() == ErrorCode::Forbidden => message(
            &s,
            t,
            None,
            StatusCode::FORBIDDEN,
            "recover.title",
            t.t("recover.contact_it").to_owned(),
        ),
        Err(e) => error_page(&s, t, None, &e),
    }
}

async fn post_code(
    State(s): State<AppState>,
    LoginLang(t): LoginLang,
    Source(source): Source,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let bound = match bound_form(&s, t, &headers, &form) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match s
        .finish_recovery(&source, form.get("ticket"), form.get("code"))
        .await
    {
        Ok(path) => see_other(&format!("{path}?lang={}", t.code())),
        Err(e) if e.code() == ErrorCode::InvalidCredentials => {
            // A typo costs one try, not the recovery code: the code step stays, with the tries
            // left. The count travels in the form and goes down the same way for every ticket
            // (the service keeps the real count and refuses beyond it), so the page tells no
            // real ticket from a made-up one. At zero the user starts again.
            let max = s.config().recovery.max_attempts;
            let left = form
                .get("tries")
                .parse::<u64>()
                .unwrap_or(max)
                .min(max)
                .saturating_sub(1);
            let ticket = form.get("ticket");
            let again = if left == 0 || ticket.is_empty() || ticket.len() > 128 {
                page(&s, t, bound, String::new(), true)
            } else {
                code_page(&s, t, bound, ticket.to_owned(), true, left)
            };
            (StatusCode::UNAUTHORIZED, again).into_response()
        }
        Err(e) => error_page(&s, t, None, &e),
    }
}

/// The code step again, in the language of `?lang=`: nothing is checked or spent, the ticket is
/// only carried (an unknown one fails at the next step, as it would have).
async fn post_lang(
    State(s): State<AppState>,
    LoginLang(t): LoginLang,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let bound = match bound_form(&s, t, &headers, &form) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let ticket = form.get("ticket");
    if ticket.is_empty() || ticket.len() > 128 {
        return see_other(&format!("/recover?lang={}", t.code()));
    }
    page(&s, t, bound, ticket.to_owned(), false).into_response()
}

/// A link that does not work (any more): the same page for every reason.
fn invalid_link(s: &AppState, t: Tr, e: &Error, title: &'static str, text: &str) -> Response {
    match e {
        Error::NotFound(_) => message(
            s,
            t,
            None,
            StatusCode::NOT_FOUND,
            title,
            t.t(text).to_owned(),
        ),
        other => error_page(s, t, None, other),
    }
}

async fn get_not_me(
    State(s): State<AppState>,
    LoginLang(t): LoginLang,
    Path(link): Path<String>,
) -> Response {
    match s.open_block_link(&link).await {
        Ok(view) => {
            let t = Tr::in_zone(view.language, s.config().server.zone());
            NotMePage {
                n: Nav::new(t, &s, "recover.not_me_title", None, ""),
                t,
                link,
                form_token: view.form_token,
            }
            .into_response()
        }
        Err(e) => invalid_link(&s, t, &e, "recover.not_me_title", "recover.not_me_invalid"),
    }
}

async fn post_not_me(
    State(s): State<AppState>,
    LoginLang(t): LoginLang,
    Source(source): Source,
    Path(link): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    match s
        .block_from_link(&source, &link, form.get("form_token"))
        .await
    {
        Ok(blocked) => {
            let t = Tr::in_zone(blocked.language, s.config().server.zone());
            let text = if blocked.admins_told > 0 {
                "recover.not_me_done"
            } else {
                "recover.not_me_done_untold"
            };
            message(
                &s,
                t,
                None,
                StatusCode::OK,
                "recover.not_me_title",
                t.t(text).to_owned(),
            )
        }
        Err(e) => invalid_link(&s, t, &e, "recover.not_me_title", "recover.not_me_invalid"),
    }
}

fn reset_page(s: &AppState, t: Tr, form_value: String, sent: bool) -> ResetPage {
    ResetPage {
        n: Nav::new(t, s, "reset.title", None, ""),
        t,
        form_value,
        sent,
        lang: t.code(),
    }
}

async fn get_reset(
    State(s): State<AppState>,
    LoginLang(t): LoginLang,
    headers: HeaderMap,
) -> Response {
    let value = match cookie(&headers, LOGIN_COOKIE) {
        Some(v) => v,
        None => match random_token() {
            Ok(v) => v,
            Err(e) => return error_page(&s, t, None, &e.into()),
        },
    };
    let set = set_cookie(&s, LOGIN_COOKIE, &value, Some(3600));
    ([(header::SET_COOKIE, set)], reset_page(&s, t, value, false)).into_response()
}

async fn post_reset(
    State(s): State<AppState>,
    LoginLang(t): LoginLang,
    Source(source): Source,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let bound = match bound_field(&s, t, &headers, &form, "reset_form") {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match s.request_reset(&source, form.get("email")).await {
        Ok(()) => reset_page(&s, t, bound, true).into_response(),
        Err(e) => error_page(&s, t, None, &e),
    }
}

async fn get_reset_link(
    State(s): State<AppState>,
    LoginLang(t): LoginLang,
    Path(link): Path<String>,
) -> Response {
    reset_form(&s, t, link, None).await
}

/// The reset page for a link, in the account's language; with `error` (a key of the `reset` or
/// `web` catalogue) when the last try was refused and nothing was changed.
async fn reset_form(s: &AppState, t: Tr, link: String, error: Option<&str>) -> Response {
    match s.open_reset(&link).await {
        Ok(view) => {
            let t = Tr::in_zone(view.language, s.config().server.zone());
            let min = s.config().auth.min_password_length;
            let page = ResetConfirmPage {
                n: Nav::new(t, s, "reset.confirm_title", None, ""),
                t,
                link,
                username: view.username,
                form_token: view.form_token,
                min_password: min,
                error: error.map_or_else(String::new, |key| t.f1(key, "min", &min.to_string())),
            };
            let status = if error.is_some() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            (status, page).into_response()
        }
        Err(e) => invalid_link(s, t, &e, "reset.title", "reset.invalid"),
    }
}

async fn post_reset_link(
    State(s): State<AppState>,
    LoginLang(t): LoginLang,
    Source(source): Source,
    Path(link): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    // What the user can correct is said on the form again, in the account's language; the
    // service checks the same rules (and changes nothing when one is broken).
    let password = form.get("password");
    let hint = form.get("hint").trim();
    let len = password.chars().count();
    let refusal = if form.has("password2") && password != form.get("password2") {
        Some("web.password_mismatch")
    } else if len < s.config().auth.min_password_length || len > 1024 {
        Some("web.password_rule")
    } else if hint.chars().count() > 200 {
        Some("reset.hint_too_long")
    } else if !hint.is_empty() && hint.contains(password) {
        Some("reset.hint_has_password")
    } else {
        None
    };
    if refusal.is_some() {
        return reset_form(&s, t, link, refusal).await;
    }
    match s
        .confirm_reset(
            &source,
            &link,
            form.get("form_token"),
            form.get("password"),
            form.get("hint"),
        )
        .await
    {
        Ok(done) => {
            let to = see_other(&format!("{}?lang={}", done.enroll_path, t.code()));
            match done.hint_cookie {
                Some(v) => ([(header::SET_COOKIE, hint_cookie(&s, &v))], to).into_response(),
                None => to,
            }
        }
        Err(e) => invalid_link(&s, t, &e, "reset.title", "reset.invalid"),
    }
}
