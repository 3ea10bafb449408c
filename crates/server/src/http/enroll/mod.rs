//! The enrollment pages under `/enroll/{link token}` (SPEC F1): server-rendered HTML that works
//! without JavaScript, in German and English.
//!
//! Handlers extract, call one service method, and map the result to a page. The link token in the
//! path is the capability; every form also carries a form token the service checks. The pages
//! answer with a strict CSP, no referrer (the URLs carry the token), no caching and no sniffing.
//! A link that no longer works gets its own page with 410 (used, expired, replaced, ended) or 404
//! (unknown), never the QR code again.

use axum::Form;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::i18n::{Tr, Zone, negotiate};
use crate::model::Language;
use crate::msg::{Key, Msg};
use crate::service::{Device, EnrollmentView, Error, ErrorCode, FirstCode};

use super::AppState;

mod pages;

use pages::{
    AppPage, Chrome, CodeError, DeviceChoice, DonePage, FinishedInfo, FinishedPage, LandingPage,
    ProblemPage, QrPage, VerifyPage,
};

const CSS: &str = include_str!("../../../static/enroll.css");

/// Inline scripts and foreign resources are refused; `data:` images only for the QR fallback.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
    frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The enrollment pages and their stylesheet.
pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/enroll/{token}", get(get_landing))
        .route("/enroll/{token}/start", post(post_start))
        .route("/enroll/{token}/qr", get(get_qr))
        .route("/enroll/{token}/qr.png", get(get_qr_png))
        .route("/enroll/{token}/app", get(get_app))
        .route("/enroll/{token}/verify", get(get_verify).post(post_verify))
        .route("/enroll/{token}/done", post(post_done))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        // The URLs carry the link token: never send them to another site.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        // Pages show seeds and recovery codes: no copy in any cache.
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    Router::new()
        .route("/static/enroll.css", get(get_css))
        .merge(pages)
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

/// What a page request says about its reader: the language asked for and the device.
#[derive(Debug, Clone, Default)]
struct Reader {
    lang: Option<String>,
    accept_language: Option<String>,
    device: Option<Device>,
    phone: Option<Device>,
    /// The zone of times on the pages (`server.time_zone`).
    zone: Zone,
}

#[derive(Debug, Default, Deserialize)]
struct ReaderQuery {
    lang: Option<String>,
    device: Option<String>,
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        let query = axum::extract::Query::<ReaderQuery>::try_from_uri(&parts.uri)
            .map(|q| q.0)
            .unwrap_or_default();
        let header_text = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Reader {
            zone: s.config().server.zone(),
            lang: query.lang,
            accept_language: header_text(header::ACCEPT_LANGUAGE),
            device: query.device.as_deref().and_then(Device::parse),
            phone: header_text(header::USER_AGENT)
                .as_deref()
                .and_then(Device::from_user_agent),
        })
    }
}

impl Reader {
    fn tr(&self, fallback: Language) -> Tr {
        Tr::in_zone(
            negotiate(
                self.lang.as_deref(),
                self.accept_language.as_deref(),
                fallback,
            ),
            self.zone,
        )
    }
}

/// `/enroll/{token}{sub}?lang=xx`: every link keeps the language.
fn href(token: &str, sub: &str, t: Tr) -> String {
    format!("/enroll/{token}{sub}?lang={}", t.code())
}

/// This page in the other language.
fn switch(token: &str, sub: &str, t: Tr, extra: &str) -> String {
    let other = match t.0 {
        Language::De => "en",
        Language::En => "de",
    };
    format!("/enroll/{token}{sub}?lang={other}{extra}")
}

fn store_hint(t: Tr, device: Device) -> &'static str {
    t.t(match device {
        Device::Android => "common.store_android",
        Device::Iphone => "common.store_iphone",
        Device::Other => "common.store_other",
    })
}

/// The page for a link or form that cannot be served, with the status that says why.
fn problem(s: &AppState, reader: &Reader, token: &str, e: &Error) -> Response {
    let t = reader.tr(s.config().server.default_language);
    let (status, kind, new_link) = match e.code() {
        ErrorCode::EnrollmentUsed => (StatusCode::GONE, "used", false),
        ErrorCode::EnrollmentExpired => (StatusCode::GONE, "expired", true),
        ErrorCode::EnrollmentSuperseded => (StatusCode::GONE, "superseded", false),
        ErrorCode::EnrollmentEnded => (StatusCode::GONE, "ended", true),
        ErrorCode::NotFound => (StatusCode::NOT_FOUND, "unknown", true),
        ErrorCode::Forbidden | ErrorCode::InvalidInput => (StatusCode::BAD_REQUEST, "form", false),
        // Not started yet, or not finished: the landing page knows where the user stands.
        ErrorCode::TokenState => {
            return Redirect::to(&href(token, "", t)).into_response();
        }
        _ => {
            // The detail goes to the log (never the link token: it is not in the error).
            tracing::error!(error = %e, "enrollment page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "error", false)
        }
    };
    let start_href = if matches!(kind, "form" | "error") {
        href(token, "", t)
    } else {
        String::new()
    };
    let page = ProblemPage {
        c: Chrome::new(
            t,
            &s.config().enroll.organisation,
            &format!("problem.{kind}_title"),
            String::new(),
            0,
        ),
        t,
        text: t.t(&format!("problem.{kind}_text")),
        new_link,
        start_href,
    };
    (status, page).into_response()
}

fn chrome(view: &EnrollmentView, t: Tr, title: &str, switch_href: String, step: u8) -> Chrome {
    Chrome::new(t, &view.organisation, title, switch_href, step)
}

async fn get_landing(
    State(s): State<AppState>,
    Path(token): Path<String>,
    reader: Reader,
) -> Response {
    let view = match s.open_enrollment(&token).await {
        Ok(v) => v,
        Err(e) => return problem(&s, &reader, &token, &e),
    };
    let t = reader.tr(view.language);
    let device = reader.device.or(reader.phone);
    let devices = [Device::Android, Device::Iphone, Device::Other]
        .into_iter()
        .map(|d| DeviceChoice {
            label: t.t(match d {
                Device::Android => "common.android",
                Device::Iphone => "common.iphone",
                Device::Other => "common.other",
            }),
            href: format!("{}&device={}#phone", href(&token, "", t), d.as_str()),
            selected: device == Some(d),
        })
        .collect();
    let extra = device.map_or(String::new(), |d| format!("&device={}", d.as_str()));
    let page = LandingPage {
        c: chrome(&view, t, "landing.title", switch(&token, "", t, &extra), 1),
        t,
        hello: t.f1("landing.hello", "name", &view.display_name),
        intro: t.f1("landing.intro", "org", &view.organisation),
        valid_until: t.f1(
            "common.valid_until",
            "expires",
            &t.datetime(view.expires_at),
        ),
        devices,
        store_hint: store_hint(t, device.unwrap_or(Device::Other)),
        device: device.unwrap_or(Device::Other),
        phone_first: reader.phone.is_some(),
        start_action: href(&token, "/start", t),
        view,
    };
    // After an admin's reset with a password hint, the browser that opens the link may show the
    // hint at the login later (see `Service::login_hint`).
    match s.enrollment_hint_cookie(&token).await {
        Ok(Some(v)) => (
            [(header::SET_COOKIE, crate::http::web::hint_cookie(&s, &v))],
            page,
        )
            .into_response(),
        Ok(None) => page.into_response(),
        Err(e) => problem(&s, &reader, &token, &e),
    }
}

#[derive(Debug, Deserialize)]
struct StartForm {
    form_token: String,
    #[serde(default)]
    device: String,
    #[serde(default)]
    path: String,
}

async fn post_start(
    State(s): State<AppState>,
    Path(token): Path<String>,
    reader: Reader,
    form: Result<Form<StartForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return problem(
            &s,
            &reader,
            &token,
            &Error::Forbidden(Msg::new(Key::FormMalformed)),
        );
    };
    let device = Device::parse(&form.device).unwrap_or(Device::Other);
    match s.start_enrollment(&token, &form.form_token, device).await {
        Ok(view) => {
            let t = reader.tr(view.language);
            let sub = if form.path == "app" { "/app" } else { "/qr" };
            Redirect::to(&format!(
                "{}&device={}",
                href(&token, sub, t),
                device.as_str()
            ))
            .into_response()
        }
        Err(e) => problem(&s, &reader, &token, &e),
    }
}

async fn get_qr(State(s): State<AppState>, Path(token): Path<String>, reader: Reader) -> Response {
    let key = match s.enrollment_key(&token).await {
        Ok(k) => k,
        Err(e) => return problem(&s, &reader, &token, &e),
    };
    let t = reader.tr(key.view.language);
    let svg = key
        .qr_svg
        .find("<svg")
        .map_or(key.qr_svg.as_str(), |i| &key.qr_svg[i..])
        .to_owned();
    QrPage {
        c: chrome(&key.view, t, "qr.title", switch(&token, "/qr", t, ""), 2),
        t,
        qr_svg: svg,
        kind_value: t.f2(
            "qr.kind_value",
            "digits",
            &key.digits.to_string(),
            "period",
            &key.period.to_string(),
        ),
        issuer: key.issuer,
        account: key.account,
        secret_grouped: key.secret_grouped,
        next_href: href(&token, "/verify", t),
        app_href: href(&token, "/app", t),
    }
    .into_response()
}

async fn get_qr_png(
    State(s): State<AppState>,
    Path(token): Path<String>,
    reader: Reader,
) -> Response {
    match s.enrollment_qr_png(&token).await {
        Ok(png) => ([(header::CONTENT_TYPE, "image/png")], png).into_response(),
        Err(e) => problem(&s, &reader, &token, &e),
    }
}

async fn get_app(State(s): State<AppState>, Path(token): Path<String>, reader: Reader) -> Response {
    let key = match s.enrollment_key(&token).await {
        Ok(k) => k,
        Err(e) => return problem(&s, &reader, &token, &e),
    };
    let t = reader.tr(key.view.language);
    let device = reader.device.or(reader.phone).unwrap_or(Device::Other);
    AppPage {
        c: chrome(&key.view, t, "app.title", switch(&token, "/app", t, ""), 2),
        t,
        otpauth_uri: key.otpauth_uri,
        secret_grouped: key.secret_grouped,
        store_hint: store_hint(t, device),
        next_href: href(&token, "/verify", t),
        qr_href: href(&token, "/qr", t),
    }
    .into_response()
}

fn verify_page(
    s: &AppState,
    token: &str,
    t: Tr,
    view: EnrollmentView,
    name: String,
    error: Option<CodeError>,
) -> VerifyPage {
    let issuer = s.config().issuer();
    VerifyPage {
        c: chrome(&view, t, "verify.title", switch(token, "/verify", t, ""), 3),
        t,
        action: href(token, "/verify", t),
        back_href: href(token, "/qr", t),
        code_hint: t.f1("verify.code_hint", "issuer", &issuer),
        wrong_account: t.f2(
            "verify.wrong_account",
            "issuer",
            &issuer,
            "account",
            &view.username,
        ),
        attempts_left: t.f1(
            "verify.attempts_left",
            "count",
            &view.attempts_left.to_string(),
        ),
        name,
        error,
        view,
    }
}

async fn get_verify(
    State(s): State<AppState>,
    Path(token): Path<String>,
    reader: Reader,
) -> Response {
    let view = match s.open_enrollment(&token).await {
        Ok(v) if v.started => v,
        Ok(v) => return Redirect::to(&href(&token, "", reader.tr(v.language))).into_response(),
        Err(e) => return problem(&s, &reader, &token, &e),
    };
    let t = reader.tr(view.language);
    let name = view.token_name.clone().unwrap_or_default();
    verify_page(&s, &token, t, view, name, None).into_response()
}

#[derive(Deserialize)]
struct VerifyForm {
    form_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    code: String,
}

async fn post_verify(
    State(s): State<AppState>,
    Path(token): Path<String>,
    reader: Reader,
    form: Result<Form<VerifyForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return problem(
            &s,
            &reader,
            &token,
            &Error::Forbidden(Msg::new(Key::FormMalformed)),
        );
    };
    let outcome = s
        .submit_first_code(&token, &form.form_token, &form.name, &form.code)
        .await;
    match outcome {
        Ok(FirstCode::Activated(done)) => {
            let t = reader.tr(done.view.language);
            let finished = finished_info(&s, t, &done.view);
            let download_href = recovery_file(t, &done.view, &done.recovery_codes);
            // No language switch here: the codes are shown once, a reload would lose them.
            DonePage {
                c: chrome(&done.view, t, "done.title", String::new(), 4),
                t,
                intro: t.f1("done.intro", "token", &done.token_name),
                codes: done.recovery_codes,
                download_href,
                form_token: done.view.form_token.clone(),
                action: href(&token, "/done", t),
                finished,
            }
            .into_response()
        }
        Ok(FirstCode::Rejected { view, throttled }) => {
            let t = reader.tr(view.language);
            let (status, error) = if throttled {
                (StatusCode::TOO_MANY_REQUESTS, CodeError::Throttled)
            } else {
                (StatusCode::UNPROCESSABLE_ENTITY, CodeError::Wrong)
            };
            let page = verify_page(&s, &token, t, view, form.name, Some(error));
            (status, page).into_response()
        }
        Err(e) => problem(&s, &reader, &token, &e),
    }
}

fn finished_info(s: &AppState, t: Tr, view: &EnrollmentView) -> FinishedInfo {
    FinishedInfo {
        login_user: t.f1("finished.login_user", "username", &view.username),
        // A user who never set a password must not be told to use it "as before".
        login_password: t.t(if view.has_password {
            "finished.login_password"
        } else {
            "finished.login_no_password"
        }),
        login_code: t.f1("finished.login_code", "issuer", &s.config().issuer()),
    }
}

/// The recovery codes as a `data:` URL of a text file: the download needs no second request,
/// so the codes never have to exist on the server again.
fn recovery_file(t: Tr, view: &EnrollmentView, codes: &[String]) -> String {
    let mut text = t.f2(
        "done.file_title",
        "account",
        &view.username,
        "org",
        &view.organisation,
    );
    text.push_str("\r\n\r\n");
    for code in codes {
        text.push_str(code);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.push_str(t.t("done.file_note"));
    text.push_str("\r\n");
    let mut url = String::from("data:text/plain;charset=utf-8,");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

#[derive(Deserialize)]
struct DoneForm {
    form_token: String,
    #[serde(default)]
    saved: String,
}

async fn post_done(
    State(s): State<AppState>,
    Path(token): Path<String>,
    reader: Reader,
    form: Result<Form<DoneForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return problem(
            &s,
            &reader,
            &token,
            &Error::Forbidden(Msg::new(Key::FormMalformed)),
        );
    };
    // The browser enforces the checkbox (`required`); a request without it is refused too.
    if form.saved != "yes" {
        return problem(
            &s,
            &reader,
            &token,
            &Error::Forbidden(Msg::new(Key::CodesNotConfirmed)),
        );
    }
    match s.finished_enrollment(&token, &form.form_token).await {
        Ok(view) => {
            let t = reader.tr(view.language);
            FinishedPage {
                c: chrome(&view, t, "finished.title", String::new(), 0),
                t,
                finished: finished_info(&s, t, &view),
            }
            .into_response()
        }
        Err(e) => problem(&s, &reader, &token, &e),
    }
}
