//! The web login, the self-service portal (`/portal`) and the admin area (`/admin`): server-
//! rendered pages that work without JavaScript, in German and English.
//!
//! Sessions live in the database (any node serves any request); the cookie `tessera_session`
//! carries the session id, `HttpOnly`, `SameSite=Lax`, `Secure` when the public URL is https.
//! Every POST form carries the session's CSRF secret, compared in constant time; the login form
//! carries a value bound to a short pre-login cookie. Handlers extract, call one service method
//! and map the result to a page: ownership and re-authentication are decided in the service.

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::crypto::ct_eq;
use crate::i18n::{Tr, negotiate};
use crate::model::Language;
use crate::service::{Error, ErrorCode, WebUser};

use super::AppState;
use super::extract::source_of;

mod admin;
mod admin_inventory;
mod admin_radius;
mod admin_recovery;
mod login;
mod pages;
mod portal;
mod portal_migrate;
mod program;
mod recover;

use pages::{MessagePage, Nav, ReauthPage};

pub const SESSION_COOKIE: &str = "tessera_session";
const LOGIN_COOKIE: &str = "tessera_login";
/// The login-hint cookie: the user id with a MAC under the server key (see
/// `Service::login_hint`). Set only where the user proved control of the account's reset or
/// enrollment link, never from a typed username: the login page must not tell which names exist.
pub(crate) const HINT_COOKIE: &str = "tessera_hint";
/// How long the browser keeps the hint cookie: 180 days.
const HINT_COOKIE_SECS: u64 = 180 * 24 * 3600;
const CSS: &str = include_str!("../../../static/web.css");

/// No scripts at all, no foreign resources, no framing.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; \
    frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The login, portal and admin pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal") }))
        .route("/static/web.css", get(get_css))
        .merge(login::router())
        .merge(portal::router())
        .merge(recover::router())
        .merge(admin::router())
        .merge(admin_recovery::router())
        .merge(admin_radius::router())
        .merge(program::router())
        .merge(admin_inventory::router())
        .merge(portal_migrate::router())
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        // Pages show recovery codes, API keys and enrollment links: no referrer, no cache.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}

async fn get_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// The value of cookie `name` in the request.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Secure` when served over https.
fn set_cookie(s: &AppState, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let secure = if s.config().server.public_url.trim().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let age = max_age.map_or(String::new(), |a| format!("; Max-Age={a}"));
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax{age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// The `Set-Cookie` value of the login-hint cookie.
pub(crate) fn hint_cookie(s: &AppState, value: &str) -> HeaderValue {
    set_cookie(s, HINT_COOKIE, value, Some(HINT_COOKIE_SECS))
}

/// The password hint the login page shows for this browser: empty without a valid hint
/// cookie, or when the user has no hint.
async fn hint_of(s: &AppState, headers: &HeaderMap) -> String {
    let Some(value) = cookie(headers, HINT_COOKIE) else {
        return String::new();
    };
    match s.login_hint(&value).await {
        Ok(hint) => hint.unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "password hint not read");
            String::new()
        }
    }
}

/// The `?lang=` of a request.
fn query_lang(parts: &Parts) -> Option<String> {
    parts.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| v.into_owned())
    })
}

/// The logged-in person and the language of their pages (their own setting, unless `?lang=`).
#[derive(Debug, Clone)]
pub struct Me {
    pub web: WebUser,
    pub t: Tr,
}

impl FromRequestParts<AppState> for Me {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Me, Response> {
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(Redirect::to("/login").into_response());
        };
        match s.web_session(&value, &source_of(parts)).await {
            Ok(web) => {
                let t = Tr::in_zone(
                    negotiate(query_lang(parts).as_deref(), None, web.user.language),
                    s.config().server.zone(),
                );
                Ok(Me { web, t })
            }
            Err(e) if e.code() == ErrorCode::Unauthenticated => {
                Err(Redirect::to("/login").into_response())
            }
            Err(e) => Err(error_page(s, Tr::new(Language::En), None, &e)),
        }
    }
}

impl Me {
    pub fn nav(&self, s: &AppState, title_key: &str, section: &'static str) -> Nav {
        Nav::new(self.t, s, title_key, Some(&self.web), section)
    }

    /// The refusal of a form without this session's CSRF secret (compared in constant time),
    /// or `None` when the form carries it.
    pub fn check_csrf(&self, s: &AppState, form: &FormData) -> Option<Response> {
        if ct_eq(form.get("csrf").as_bytes(), self.web.csrf.as_bytes()) {
            None
        } else {
            Some(message(
                s,
                self.t,
                Some(&self.web),
                StatusCode::FORBIDDEN,
                "web.csrf_title",
                self.t.t("web.csrf_text").to_owned(),
            ))
        }
    }
}

/// A submitted form as name/value pairs (kept whole, so a form interrupted by re-authentication
/// can be sent again as it was).
#[derive(Debug, Clone, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The field's value, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// The fields to keep while re-authentication is asked: not the CSRF value, not the
    /// password of the re-authentication, not the marker of a resumed form.
    fn pending(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "reauth_password" | "resume"))
            .cloned()
            .collect()
    }
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

/// A page with a title and a text, with the status.
pub fn message(
    s: &AppState,
    t: Tr,
    web: Option<&WebUser>,
    status: StatusCode,
    title_key: &str,
    text: String,
) -> Response {
    let page = MessagePage {
        n: Nav::new(t, s, title_key, web, ""),
        t,
        text,
    };
    (status, page).into_response()
}

/// The page for a service error.
pub fn error_page(s: &AppState, t: Tr, web: Option<&WebUser>, e: &Error) -> Response {
    let code = e.code();
    let status = super::error::status_of(code);
    let (title, text) = match code {
        ErrorCode::NotFound => ("web.not_found_title", t.t("web.not_found_text").to_owned()),
        ErrorCode::Forbidden => ("web.forbidden_title", t.t("web.forbidden_text").to_owned()),
        // The service's message, in the page's language.
        ErrorCode::InvalidInput | ErrorCode::Conflict | ErrorCode::TokenState => {
            ("web.invalid_title", t.msg(&e.public_msg()))
        }
        ErrorCode::Internal => {
            tracing::error!(error = %e, "web page failed");
            ("web.error_title", t.t("web.error_text").to_owned())
        }
        _ => ("web.error_title", t.msg(&e.public_msg())),
    };
    message(s, t, web, status, title, text)
}

/// Re-authentication: a sensitive form was sent without a recent password. The form waits on
/// the server, with the session ([`crate::service::Service::web_hold_form`]); the page says what
/// is being confirmed and sends back only the password (never the form's fields, which may hold
/// a new user's password), to the same place.
pub fn reauth_page(me: &Me, s: &AppState, action: &str, form: &FormData, wrong: bool) -> Response {
    let page = ReauthPage {
        n: me.nav(s, "web.reauth_title", ""),
        t: me.t,
        what: describe(me.t, action, form),
        back: back_of(action, form, me.web.is_admin()),
        action: action.to_owned(),
        csrf: me.web.csrf.clone(),
        wrong,
        minutes: me.t.f1(
            "web.reauth_text",
            "minutes",
            &s.config().auth.reauth_minutes.to_string(),
        ),
    };
    (StatusCode::FORBIDDEN, page).into_response()
}

/// Where "cancel" on a confirmation page leads: back to where the action started. A form may
/// name it (`back`, a path of this site's own pages only); otherwise it follows from the
/// action's address.
pub fn back_of(action: &str, form: &FormData, admin: bool) -> String {
    let named = form.get("back");
    let own_page = (named.starts_with("/admin") || named.starts_with("/portal"))
        && !named.contains("//")
        && !named.contains('\\')
        && named.chars().all(|c| c.is_ascii_graphic());
    if own_page {
        return named.to_owned();
    }
    let parts: Vec<&str> = action.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["admin", "users", name, ..] => format!("/admin/users/{name}"),
        ["admin", "apps", ..] => "/admin/apps".to_owned(),
        ["admin", "radius", ..] => "/admin/radius".to_owned(),
        ["admin", "inventory", ..] => "/admin/inventory".to_owned(),
        ["admin", ..] => "/admin".to_owned(),
        _ if !admin || action.starts_with("/portal") => "/portal".to_owned(),
        _ => "/admin".to_owned(),
    }
}

/// The name in a path segment made by `admin::user_href`.
fn segment_name(segment: &str) -> String {
    url::form_urlencoded::parse(format!("n={segment}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// What the password page confirms, from the form's address and fields.
fn describe(t: Tr, action: &str, form: &FormData) -> String {
    let parts: Vec<&str> = action.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["admin", "users"] if form.get("role") == "admin" => {
            t.f1("reauth.create_admin", "name", form.get("username"))
        }
        ["admin", "users"] => t.f1("reauth.create_user", "name", form.get("username")),
        ["admin", "users", name] => t.f1("reauth.change_user", "name", &segment_name(name)),
        ["admin", "users", name, what] => {
            let key = match *what {
                "delete" => "reauth.delete_user",
                "recovery-policy" => "reauth.recovery_policy",
                "recovery-codes" => "reauth.recovery_codes",
                "self-service-unlock" => "reauth.unlock",
                "reset" => "reauth.reset",
                "program" => "reauth.program_token",
                _ => "reauth.change_user",
            };
            t.f1(key, "name", &segment_name(name))
        }
        ["admin", "tokens", id, op] => t.f2("reauth.token", "id", id, "op", op),
        ["admin", "apps"] => t.f1("reauth.create_app", "name", form.get("name")),
        ["admin", "inventory", "import", "confirm"] => t.t("reauth.import_confirm").to_owned(),
        ["admin", "inventory", serial, "assign"] => t.f2(
            "reauth.inventory_assign",
            "serial",
            &segment_name(serial),
            "name",
            form.get("user"),
        ),
        ["admin", "inventory", serial, "retire"] => {
            t.f1("reauth.inventory_retire", "serial", &segment_name(serial))
        }
        ["admin", "radius"] => t.f1("reauth.radius_add", "name", form.get("name")),
        ["admin", "radius", name, "rotate"] if form.has("retire") => {
            t.f1("reauth.radius_retire", "name", &segment_name(name))
        }
        ["admin", "radius", name, "rotate"] => {
            t.f1("reauth.radius_rotate", "name", &segment_name(name))
        }
        ["admin", "radius", name, "remove"] => {
            t.f1("reauth.radius_remove", "name", &segment_name(name))
        }
        ["portal", "devices", "add"] => t.t("reauth.add_device").to_owned(),
        ["portal", "hardware", "program"] => t.t("reauth.program_my_token").to_owned(),
        ["portal", "migrate", "confirm"] => t.t("reauth.migrate").to_owned(),
        ["portal", "devices", _, "remove"] => t.t("reauth.remove_device").to_owned(),
        ["portal", "recovery"] => t.t("reauth.new_codes").to_owned(),
        _ => t.t("reauth.other").to_owned(),
    }
}

/// Runs a sensitive change. Without a fresh re-authentication the service answers
/// `reauth_required`: the form is kept with the session and the password page shown. The page
/// sends `reauth_password` and `resume`; then the kept form is taken back (once, for this
/// address only) and `op` runs with it and the refreshed session. A form that carries its own
/// `reauth_password` (scripts, older pages) runs as sent.
pub async fn with_reauth<F, Fut>(
    me: &Me,
    s: &AppState,
    action: &str,
    form: &FormData,
    op: F,
) -> Response
where
    F: FnOnce(WebUser, FormData) -> Fut,
    Fut: std::future::Future<Output = Result<Response, Error>>,
{
    let mut web = me.web.clone();
    let mut form = form.clone();
    if form.has("reauth_password") {
        match s
            .web_reauthenticate(&web, form.get("reauth_password"))
            .await
        {
            Ok(until) => web.reauth_until = until,
            Err(e) if e.code() == ErrorCode::InvalidCredentials => {
                // The kept form stays kept: the next try may have the right password.
                let shown = match s.web_peek_form(&web, action).await {
                    Ok(Some(kept)) => FormData(kept),
                    _ => form,
                };
                return reauth_page(me, s, action, &shown, true);
            }
            Err(e) => return error_page(s, me.t, Some(&me.web), &e),
        }
        if form.has("resume") {
            match s.web_take_form(&web, action).await {
                Ok(Some(kept)) => form = FormData(kept),
                Ok(None) => {
                    return message(
                        s,
                        me.t,
                        Some(&me.web),
                        StatusCode::GONE,
                        "web.reauth_title",
                        me.t.t("web.reauth_expired").to_owned(),
                    );
                }
                Err(e) => return error_page(s, me.t, Some(&me.web), &e),
            }
        }
    }
    let shown = FormData(form.pending());
    let kept = form.pending();
    match op(web, form).await {
        Ok(r) => r,
        Err(e) if e.code() == ErrorCode::ReauthRequired => {
            if let Err(e) = s.web_hold_form(&me.web, action, kept).await {
                return error_page(s, me.t, Some(&me.web), &e);
            }
            reauth_page(me, s, action, &shown, false)
        }
        Err(e) => error_page(s, me.t, Some(&me.web), &e),
    }
}

/// A `multipart/form-data` form: its text fields and its files (name, bytes; empty file fields
/// left out). The body limit of the route bounds the whole.
pub async fn read_multipart(
    mut mp: axum::extract::Multipart,
) -> Result<(FormData, Vec<(String, Vec<u8>)>), Error> {
    let bad = |_| Error::Invalid(crate::msg::Msg::new(crate::msg::Key::FormMalformed));
    let mut fields = Vec::new();
    let mut files = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_owned();
        if let Some(file_name) = field.file_name() {
            let file_name: String = file_name
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect();
            let bytes = field.bytes().await.map_err(bad)?;
            if !bytes.is_empty() {
                files.push((file_name, bytes.to_vec()));
            }
            continue;
        }
        fields.push((name, field.text().await.map_err(bad)?));
    }
    Ok((FormData(fields), files))
}

/// `303 See Other` to `to` (after a successful POST).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}
