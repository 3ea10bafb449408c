//! "Program a hardware token" (seed 004), for an admin on a user's page and for a user in the
//! portal: the seed shown once with the server's live clock (a style sheet made per request
//! sets the clock running: the pages run no scripts), then the first code with the offset and
//! parameter diagnosis of `Service::activate_programmed_token`.

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::i18n::Tr;
use crate::model::TokenId;
use crate::service::{
    BurnParams, ClockOffset, ErrorCode, ProgramActivation, ProgramToken, ProgrammedToken,
};

use super::pages::{ActivateForm, Nav, WaitingRow};
use super::{AdminMe, AppState, FormData, Me, error_page, user_href, with_reauth};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/clock.css", get(get_clock_css))
        .route("/admin/users/{name}/program", post(post_admin_program))
        .route("/admin/programmed/{id}/activate", post(post_admin_activate))
        .route("/portal/hardware/program", post(post_my_program))
        .route("/portal/programmed/{id}/activate", post(post_my_activate))
}

/// The seed, shown once, with the clock and the first-code form.
#[derive(Template, WebTemplate)]
#[template(path = "web/program.html")]
pub struct ProgramPage {
    pub n: Nav,
    pub t: Tr,
    pub p: ProgrammedToken,
    pub params: String,
    /// The server's time at the page, as the clock starts: `HH`, `MM`, `SS` and the date.
    pub hh: String,
    pub mm: String,
    pub ss: String,
    pub date: String,
    pub form: ActivateForm,
}

/// Leaves out the seed.
impl std::fmt::Debug for ProgramPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgramPage")
            .field("p", &self.p)
            .finish_non_exhaustive()
    }
}

/// The answer to a first code: the next code asked, or the token active with what was found.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/program_done.html")]
pub struct ProgramDonePage {
    pub n: Nav,
    pub t: Tr,
    pub serial: String,
    pub done: bool,
    pub lines: Vec<String>,
    pub form: ActivateForm,
    pub back: String,
}

/// "SHA-1" for people.
fn hash_name(params: BurnParams) -> &'static str {
    match params.algorithm {
        tessera_otp::HashAlgorithm::Sha1 => "SHA-1",
        tessera_otp::HashAlgorithm::Sha256 => "SHA-256",
        tessera_otp::HashAlgorithm::Sha512 => "SHA-512",
    }
}

/// "TOTP, SHA-1, 6 digits, 30 s".
fn params_text(t: Tr, params: BurnParams) -> String {
    t.f2(
        "program.params_value",
        "algorithm",
        hash_name(params),
        "period",
        &params.period.to_string(),
    )
}

fn offset_text(t: Tr, offset: ClockOffset) -> Vec<String> {
    let within = offset.within.to_string();
    if offset.agrees() {
        return vec![t.f1("program.offset_agrees", "within", &within)];
    }
    let key = if offset.seconds > 0 {
        "program.offset_ahead"
    } else {
        "program.offset_behind"
    };
    vec![
        t.f2(
            key,
            "seconds",
            &offset.seconds.unsigned_abs().to_string(),
            "within",
            &within,
        ),
        t.t("program.pc_wrong").to_owned(),
    ]
}

fn diagnosis(t: Tr, chosen: BurnParams, real: BurnParams, key: &str) -> String {
    t.f2(
        key,
        "real",
        &params_text(t, real),
        "chosen",
        &params_text(t, chosen),
    )
}

/// The rows of the programmed tokens of `username` waiting for their first code.
pub async fn waiting_rows(
    s: &AppState,
    me: &Me,
    username: &str,
    admin: bool,
) -> crate::service::Result<Vec<WaitingRow>> {
    let t = me.t;
    Ok(s.programmed_pending(username)
        .await?
        .into_iter()
        .map(|info| WaitingRow {
            params: params_text(
                t,
                BurnParams {
                    algorithm: info
                        .algorithm
                        .parse()
                        .unwrap_or(tessera_otp::HashAlgorithm::Sha1),
                    period: info.period.unwrap_or(30),
                },
            ),
            created: t.datetime(info.created_at),
            form: activate_form(me, info.id, admin, Vec::new(), false),
            info,
        })
        .collect())
}

fn activate_form(
    me: &Me,
    id: TokenId,
    admin: bool,
    lines: Vec<String>,
    ask_next: bool,
) -> ActivateForm {
    ActivateForm {
        action: if admin {
            format!("/admin/programmed/{}/activate", id.0)
        } else {
            format!("/portal/programmed/{}/activate", id.0)
        },
        key: id.0.to_string(),
        csrf: me.web.csrf.clone(),
        lines,
        ask_next,
    }
}

fn program_page(
    s: &AppState,
    me: &Me,
    p: ProgrammedToken,
    admin: bool,
    section: &'static str,
) -> Response {
    let t = me.t;
    let at = time::OffsetDateTime::from_unix_timestamp(p.server_time)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let form = activate_form(me, p.token.id, admin, Vec::new(), false);
    ProgramPage {
        n: me.nav(s, "program.title", section),
        t,
        params: params_text(t, p.params),
        hh: format!("{:02}", at.hour()),
        mm: format!("{:02}", at.minute()),
        ss: format!("{:02}", at.second()),
        date: format!(
            "{:04}-{:02}-{:02}",
            at.year(),
            u8::from(at.month()),
            at.day()
        ),
        form,
        p,
    }
    .into_response()
}

fn request(form: &FormData) -> ProgramToken {
    ProgramToken {
        serial: form.get("serial").to_owned(),
        name: form.get("name").to_owned(),
        sha256: form.has("sha256"),
        period60: form.has("period60"),
    }
}

async fn post_admin_program(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let action = format!("{}/program", user_href(&name));
    let me2 = me.clone();
    with_reauth(&me, &s, &action, &form, |web, form| {
        let s = s.clone();
        async move {
            let p = s
                .program_hardware_token(&web.actor(), &name, request(&form))
                .await?;
            Ok(program_page(&s, &me2, p, true, "admin"))
        }
    })
    .await
}

async fn post_my_program(State(s): State<AppState>, me: Me, body: Bytes) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let me2 = me.clone();
    with_reauth(&me, &s, "/portal/hardware/program", &form, |web, form| {
        let s = s.clone();
        async move {
            let p = s.program_my_hardware_token(&web, request(&form)).await?;
            Ok(program_page(&s, &me2, p, false, "portal"))
        }
    })
    .await
}

/// The page after a first code.
fn done_page(
    me: &Me,
    s: &AppState,
    id: TokenId,
    result: ProgramActivation,
    admin: bool,
) -> Response {
    let t = me.t;
    let (serial, done, lines, back) = match result {
        ProgramActivation::Active {
            token,
            offset,
            chosen,
            burned_as,
        } => {
            let mut lines = vec![t.t("program.active").to_owned()];
            lines.extend(offset_text(t, offset));
            if let Some(real) = burned_as {
                lines.push(diagnosis(t, chosen, real, "program.burned_as"));
            }
            let back = if admin {
                user_href(&token.username)
            } else {
                "/portal".to_owned()
            };
            (token.serial.0, true, lines, back)
        }
        ProgramActivation::NextCode {
            offset,
            chosen,
            burned_as,
        } => {
            let mut lines = Vec::new();
            match burned_as {
                Some(real) => lines.push(diagnosis(t, chosen, real, "program.next_params")),
                None => {
                    lines.extend(offset_text(t, offset));
                    lines.push(t.t("program.next_far").to_owned());
                }
            }
            (String::new(), false, lines, String::new())
        }
    };
    let form = activate_form(me, id, admin, Vec::new(), !done);
    ProgramDonePage {
        n: me.nav(
            s,
            "program.activate_title",
            if admin { "admin" } else { "portal" },
        ),
        t,
        serial,
        done,
        lines,
        form,
        back,
    }
    .into_response()
}

/// A wrong first code: the form again, with what was tried.
fn wrong_page(me: &Me, s: &AppState, id: TokenId, admin: bool) -> Response {
    let page = ProgramDonePage {
        n: me.nav(
            s,
            "program.activate_title",
            if admin { "admin" } else { "portal" },
        ),
        t: me.t,
        serial: String::new(),
        done: false,
        lines: vec![me.t.t("program.wrong").to_owned()],
        form: activate_form(me, id, admin, Vec::new(), false),
        back: String::new(),
    };
    (StatusCode::BAD_REQUEST, page).into_response()
}

async fn post_admin_activate(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let id = TokenId(id);
    match s
        .activate_programmed_token(&me.web.actor(), id, form.get("code"), form.get("next_code"))
        .await
    {
        Ok(result) => done_page(&me, &s, id, result, true),
        Err(e) if e.code() == ErrorCode::InvalidCode => wrong_page(&me, &s, id, true),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}

async fn post_my_activate(
    State(s): State<AppState>,
    me: Me,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let id = TokenId(id);
    match s
        .activate_my_programmed_token(&me.web, id, form.get("code"), form.get("next_code"))
        .await
    {
        Ok(result) => done_page(&me, &s, id, result, false),
        Err(e) if e.code() == ErrorCode::InvalidCode => wrong_page(&me, &s, id, false),
        Err(e) => error_page(&s, me.t, Some(&me.web), &e),
    }
}

/// The clock's style sheet, made now: registered integer properties for hours, minutes and
/// seconds run as stepped animations, started as far back as the server's time of day, and
/// counters show them in place of the time the page was made with. Not cached.
async fn get_clock_css(State(s): State<AppState>) -> Response {
    let ms = s.clock.now_millis().rem_euclid(86_400_000);
    let delay = format!("-{}.{:03}s", ms / 1000, ms % 1000);
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        clock_css(&delay),
    )
        .into_response()
}

fn clock_css(delay: &str) -> String {
    let mut css = String::new();
    for (unit, span, steps, top) in [
        ("h", 86_400, 24, 24),
        ("m", 3_600, 60, 60),
        ("s", 60, 60, 60),
    ] {
        css.push_str(&format!(
            "@property --clock-{unit} {{ syntax: '<integer>'; inherits: false; initial-value: 0; }}\n\
             @keyframes clock-{unit} {{ from {{ --clock-{unit}: 0; }} to {{ --clock-{unit}: {top}; }} }}\n\
             .utc-clock .{unit} {{ font-size: 0; }}\n\
             .utc-clock .{unit}::after {{ font-size: 2rem; counter-reset: clock-{unit} var(--clock-{unit}); \
             content: counter(clock-{unit}, decimal-leading-zero); \
             animation: clock-{unit} {span}s steps({steps}, end) {delay} infinite; }}\n"
        ));
    }
    css
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_clock_starts_at_the_time_of_day() {
        let css = super::clock_css("-3723.500s");
        assert!(css.contains("animation: clock-h 86400s steps(24, end) -3723.500s infinite"));
        assert!(css.contains("animation: clock-s 60s steps(60, end) -3723.500s infinite"));
    }
}
