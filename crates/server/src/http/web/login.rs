//! `/login` and `/logout` (SPEC F2): username, password and code in one form, so a daily login
//! is one step; users of e-mail or SMS codes leave the code empty and get a second step; users
//! who must enroll first are sent into the enrollment pages with a fresh short-lived link.
//!
//! The login form is bound to a pre-login cookie (login CSRF: another site cannot log a
//! browser in to an attacker's account). Every failure shows the same message.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::crypto::{ct_eq, random_token};
use crate::i18n::{Tr, negotiate};
use crate::model::TokenKind;
use crate::service::{ErrorCode, WebLogin};

use super::pages::{LoginPage, LoginStep, Nav};
use super::{
    AppState, FormData, LOGIN_COOKIE, Me, SESSION_COOKIE, cookie, error_page, hint_of, message,
    see_other, set_cookie,
};
use crate::http::extract::Source;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(get_login).post(post_login))
        .route("/logout", post(post_logout))
}

/// The language of the login page: `?lang=`, then `Accept-Language`.
#[derive(Debug, Clone, Copy)]
pub(super) struct LoginLang(pub(super) Tr);

impl axum::extract::FromRequestParts<AppState> for LoginLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let accept = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Ok(LoginLang(Tr::in_zone(
            negotiate(
                super::query_lang(parts).as_deref(),
                accept,
                s.config().server.default_language,
            ),
            s.config().server.zone(),
        )))
    }
}

fn login_page(s: &AppState, t: Tr, form_value: String) -> LoginPage {
    LoginPage {
        n: Nav::new(t, s, "web.login_title", None, ""),
        t,
        step: LoginStep::Credentials,
        form_value,
        username: String::new(),
        transaction_id: String::new(),
        failed: false,
        code_used: false,
        no_device: String::new(),
        lang: t.code(),
        hint: String::new(),
    }
}

async fn get_login(
    State(s): State<AppState>,
    LoginLang(t): LoginLang,
    headers: HeaderMap,
) -> Response {
    // Keep the pre-login value across reloads, so two open tabs both work.
    let value = match cookie(&headers, LOGIN_COOKIE) {
        Some(v) => v,
        None => match random_token() {
            Ok(v) => v,
            Err(e) => return error_page(&s, t, None, &e.into()),
        },
    };
    let cookie = set_cookie(&s, LOGIN_COOKIE, &value, Some(3600));
    let page = LoginPage {
        hint: hint_of(&s, &headers).await,
        ..login_page(&s, t, value)
    };
    ([(header::SET_COOKIE, cookie)], page).into_response()
}

async fn post_login(
    State(s): State<AppState>,
    LoginLang(t): LoginLang,
    Source(source): Source,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    let bound = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if bound.is_empty() || !ct_eq(bound.as_bytes(), form.get("login_form").as_bytes()) {
        return message(
            &s,
            t,
            None,
            StatusCode::FORBIDDEN,
            "web.csrf_title",
            t.t("web.csrf_login").to_owned(),
        );
    }
    let result = s
        .web_login(
            &source,
            form.get("username"),
            form.get("password"),
            form.get("code"),
            form.get("transaction_id"),
        )
        .await;
    match result {
        Ok(WebLogin::Session { cookie, .. }) => {
            let set = set_cookie(&s, SESSION_COOKIE, &cookie, None);
            ([(header::SET_COOKIE, set)], see_other("/portal")).into_response()
        }
        Ok(WebLogin::Challenge {
            transaction_id,
            kind,
        }) => LoginPage {
            step: LoginStep::Challenge {
                sms: kind == TokenKind::Sms,
            },
            username: form.get("username").trim().to_owned(),
            transaction_id,
            ..login_page(&s, t, bound)
        }
        .into_response(),
        Ok(WebLogin::Enroll { path }) => see_other(&format!("{path}?lang={}", t.code())),
        Ok(WebLogin::NoDevice { invited_until }) => {
            let page = LoginPage {
                username: form.get("username").trim().to_owned(),
                no_device: match invited_until {
                    Some(at) => t.f1("web.login_no_device_invited", "until", &t.datetime(at)),
                    None => t.t("web.login_no_device_ask").to_owned(),
                },
                ..login_page(&s, t, bound)
            };
            (StatusCode::UNAUTHORIZED, page).into_response()
        }
        Err(e) if e.code() == ErrorCode::InvalidCredentials => {
            let page = LoginPage {
                username: form.get("username").trim().to_owned(),
                failed: true,
                code_used: matches!(e, crate::service::Error::CodeJustUsed),
                hint: hint_of(&s, &headers).await,
                ..login_page(&s, t, bound)
            };
            (StatusCode::UNAUTHORIZED, page).into_response()
        }
        Err(e) => error_page(&s, t, None, &e),
    }
}

async fn post_logout(State(s): State<AppState>, me: Me, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    if let Err(e) = s.web_logout(&me.web).await {
        return error_page(&s, me.t, Some(&me.web), &e);
    }
    let clear = set_cookie(&s, SESSION_COOKIE, "", Some(0));
    (
        [(header::SET_COOKIE, clear)],
        see_other(&format!("/login?lang={}", me.t.code())),
    )
        .into_response()
}
