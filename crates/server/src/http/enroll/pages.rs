//! The enrollment pages' templates (`templates/enroll/`). Each page struct holds what its
//! template shows, already in the request's language; the templates add no logic beyond loops
//! and conditions.

use askama::Template;
use askama_web::WebTemplate;

use crate::i18n::Tr;
use crate::service::{Device, EnrollmentView};

/// What every page shares: language, organisation, title, the language switch and the step.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub t: Tr,
    pub org: String,
    pub title: String,
    /// Link to this page in the other language; empty where switching would lose the page
    /// (the recovery codes are shown once).
    pub switch_href: String,
    pub switch_lang: &'static str,
    /// 1-4 for the progress indicator, 0 for none.
    pub step: u8,
}

impl Chrome {
    pub fn new(t: Tr, org: &str, title_key: &str, switch_href: String, step: u8) -> Chrome {
        Chrome {
            t,
            org: org.to_owned(),
            title: t.t(title_key).to_owned(),
            switch_href,
            switch_lang: match t.0 {
                crate::model::Language::De => "en",
                crate::model::Language::En => "de",
            },
            step,
        }
    }

    /// The steps of the progress indicator: (label, state) with state `done`, `current` or `todo`.
    pub fn steps(&self) -> Vec<(&'static str, &'static str)> {
        [
            "common.step_app",
            "common.step_add",
            "common.step_confirm",
            "common.step_codes",
        ]
        .iter()
        .zip(1u8..)
        .map(|(key, n)| {
            let state = match n.cmp(&self.step) {
                std::cmp::Ordering::Less => "done",
                std::cmp::Ordering::Equal => "current",
                std::cmp::Ordering::Greater => "todo",
            };
            (self.t.t(key), state)
        })
        .collect()
    }
}

/// A choice of phone on the landing page.
#[derive(Debug, Clone)]
pub struct DeviceChoice {
    pub label: &'static str,
    pub href: String,
    pub selected: bool,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "enroll/landing.html")]
pub struct LandingPage {
    pub c: Chrome,
    pub t: Tr,
    pub view: EnrollmentView,
    pub hello: String,
    pub intro: String,
    pub valid_until: String,
    pub devices: Vec<DeviceChoice>,
    pub store_hint: &'static str,
    pub device: Device,
    /// Opened on a phone: the direct path comes first.
    pub phone_first: bool,
    pub start_action: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "enroll/qr.html")]
pub struct QrPage {
    pub c: Chrome,
    pub t: Tr,
    pub qr_svg: String,
    pub issuer: String,
    pub account: String,
    pub secret_grouped: String,
    pub kind_value: String,
    pub next_href: String,
    pub app_href: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "enroll/app.html")]
pub struct AppPage {
    pub c: Chrome,
    pub t: Tr,
    pub otpauth_uri: String,
    pub secret_grouped: String,
    pub store_hint: &'static str,
    pub next_href: String,
    pub qr_href: String,
}

/// Why the last code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeError {
    Wrong,
    Throttled,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "enroll/verify.html")]
pub struct VerifyPage {
    pub c: Chrome,
    pub t: Tr,
    pub view: EnrollmentView,
    pub action: String,
    pub back_href: String,
    pub name: String,
    pub error: Option<CodeError>,
    pub code_hint: String,
    pub wrong_account: String,
    pub attempts_left: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "enroll/done.html")]
pub struct DonePage {
    pub c: Chrome,
    pub t: Tr,
    pub intro: String,
    pub codes: Vec<String>,
    pub download_href: String,
    pub form_token: String,
    pub action: String,
    pub finished: FinishedInfo,
}

/// How to sign in from now on (on the done page without recovery codes, and the last page).
#[derive(Debug, Clone)]
pub struct FinishedInfo {
    pub login_user: String,
    /// "Your password, as before", or that none is set yet.
    pub login_password: &'static str,
    pub login_code: String,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "enroll/finished.html")]
pub struct FinishedPage {
    pub c: Chrome,
    pub t: Tr,
    pub finished: FinishedInfo,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "enroll/problem.html")]
pub struct ProblemPage {
    pub c: Chrome,
    pub t: Tr,
    pub text: &'static str,
    /// Offer "ask for a new link" (for links that no longer work).
    pub new_link: bool,
    /// Where "back to the start" leads, if anywhere.
    pub start_href: String,
}
