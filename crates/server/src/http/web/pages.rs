//! The templates of the login, portal and admin pages (`templates/web/`). Each page struct holds
//! what its template shows, already in the page's language.

use askama::Template;
use askama_web::WebTemplate;

use crate::i18n::Tr;
use crate::model::{AuditEntry, Language, User};
use crate::service::{TokenInfo, WebUser};

use super::AppState;

/// What every page shares: language, organisation, title, who is logged in, the navigation.
#[derive(Debug, Clone)]
pub struct Nav {
    pub t: Tr,
    pub org: String,
    pub title: String,
    /// Empty when nobody is logged in.
    pub user: String,
    pub admin: bool,
    pub csrf: String,
    /// `portal`, `admin`, `audit`, `apps` or empty: the current navigation entry.
    pub section: &'static str,
    pub other_lang: &'static str,
    /// When set, the language switch re-sends this form instead of following a link, so that a
    /// step held in hidden fields survives the switch.
    pub switch_form: Option<SwitchForm>,
}

/// The language switch as a form: where it posts and the hidden fields it re-sends.
#[derive(Clone)]
pub struct SwitchForm {
    pub action: &'static str,
    pub fields: Vec<(&'static str, String)>,
}

/// Names only: the fields carry the step's single-use values.
impl std::fmt::Debug for SwitchForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.fields.iter().map(|(name, _)| *name).collect();
        f.debug_struct("SwitchForm")
            .field("action", &self.action)
            .field("fields", &names)
            .finish()
    }
}

impl Nav {
    pub fn new(
        t: Tr,
        s: &AppState,
        title_key: &str,
        web: Option<&WebUser>,
        section: &'static str,
    ) -> Nav {
        Nav {
            t,
            org: s.config().enroll.organisation.clone(),
            title: t.t(title_key).to_owned(),
            user: web.map_or(String::new(), |w| {
                if w.user.display_name.is_empty() {
                    w.user.username.clone()
                } else {
                    w.user.display_name.clone()
                }
            }),
            admin: web.is_some_and(WebUser::is_admin),
            csrf: web.map_or(String::new(), |w| w.csrf.clone()),
            section,
            other_lang: match t.0 {
                Language::De => "en",
                Language::En => "de",
            },
            switch_form: None,
        }
    }

    /// The language switch as a form posted to `action` with `fields` (see [`Nav::switch_form`]).
    pub fn switch_by_post(
        mut self,
        action: &'static str,
        fields: Vec<(&'static str, String)>,
    ) -> Nav {
        self.switch_form = Some(SwitchForm { action, fields });
        self
    }

    /// `aria-current` for the navigation entry of this page.
    pub fn current(&self, section: &str) -> &'static str {
        if self.section == section {
            "page"
        } else {
            "false"
        }
    }
}

/// "Are you sure?" before an action that cannot be undone: names what it does, sends the form
/// again with `confirm=yes`, and "cancel" leads back to where it started.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/confirm.html")]
pub struct ConfirmPage {
    pub n: Nav,
    pub t: Tr,
    pub what: String,
    pub text: String,
    pub action: String,
    pub button: &'static str,
    pub back: String,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/message.html")]
pub struct MessagePage {
    pub n: Nav,
    pub t: Tr,
    pub text: String,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/reauth.html")]
pub struct ReauthPage {
    pub n: Nav,
    pub t: Tr,
    pub action: String,
    pub csrf: String,
    /// What is being confirmed, in words.
    pub what: String,
    /// Where "cancel" leads: the page the action started from.
    pub back: String,
    pub wrong: bool,
    pub minutes: String,
}

/// Which step of the login a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStep {
    Credentials,
    /// A code was sent by e-mail (`false`) or SMS (`true`).
    Challenge {
        sms: bool,
    },
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/login.html")]
pub struct LoginPage {
    pub n: Nav,
    pub t: Tr,
    pub step: LoginStep,
    pub form_value: String,
    pub username: String,
    pub transaction_id: String,
    pub failed: bool,
    /// The failure was a code used a moment ago (with the right password): "wait for the next".
    pub code_used: bool,
    /// Set when the password was right but no device can give a code: what to do instead.
    pub no_device: String,
    pub lang: &'static str,
    /// The password hint of the browser's hint cookie (never looked up by a typed username).
    pub hint: String,
}

/// `/recover`: the first step (empty `ticket`) or the e-mailed code's step.
#[derive(Template, WebTemplate)]
#[template(path = "web/recover.html")]
pub struct RecoverPage {
    pub n: Nav,
    pub t: Tr,
    pub form_value: String,
    pub ticket: String,
    pub failed: bool,
    /// On the code step: wrong codes the user may still enter (shown after a wrong one).
    pub tries_left: u64,
    pub lang: &'static str,
}

/// Without the ticket, which with the e-mailed code opens the enrollment of a new device.
impl std::fmt::Debug for RecoverPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoverPage")
            .field("n", &self.n)
            .field("code_step", &!self.ticket.is_empty())
            .field("failed", &self.failed)
            .field("lang", &self.lang)
            .finish_non_exhaustive()
    }
}

/// `/not-me/{link}`: the confirmation of "this wasn't me".
#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/not_me.html")]
pub struct NotMePage {
    pub n: Nav,
    pub t: Tr,
    pub link: String,
    pub form_token: String,
}

/// `/reset`: the request form, or the answer after it.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/reset.html")]
pub struct ResetPage {
    pub n: Nav,
    pub t: Tr,
    pub form_value: String,
    pub sent: bool,
    pub lang: &'static str,
}

/// `/reset/{link}`: what will be deleted, and the new password.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/reset_confirm.html")]
pub struct ResetConfirmPage {
    pub n: Nav,
    pub t: Tr,
    pub link: String,
    pub username: String,
    pub form_token: String,
    /// `auth.min_password_length`, for the browser's check and the hint.
    pub min_password: usize,
    /// Why the last try was refused (the form is shown again), in the page's language.
    pub error: String,
}

/// One device row of the portal or the admin's user page.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub info: TokenInfo,
    /// The badge's style: the state, or `unusable`.
    pub badge: &'static str,
    /// The admin's buttons for the device in its state: operation, label key, style.
    pub actions: Vec<(&'static str, &'static str, &'static str)>,
    pub kind: &'static str,
    pub state: &'static str,
    pub created: String,
    pub last_used: String,
}

/// One audit entry, formatted.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub at: String,
    /// The action's name, the result and the reason in the page's language.
    pub action: String,
    pub result: String,
    pub reason: String,
    pub entry: AuditEntry,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/portal.html")]
pub struct PortalPage {
    pub n: Nav,
    pub t: Tr,
    pub devices: Vec<DeviceRow>,
    pub codes_left: String,
    pub events: Vec<EventRow>,
    pub notice: String,
    pub lang: &'static str,
    /// `auth.min_password_length`, for the browser's check and the hint.
    pub min_password: usize,
    /// Why the password change was refused (the portal is shown again), in its language.
    pub password_error: String,
    /// Programmed hardware tokens waiting for their first code.
    pub waiting: Vec<WaitingRow>,
    pub program_action: String,
    /// How to get the export out of Google Authenticator, naming this server's issuer.
    pub migrate_hint: String,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/codes.html")]
pub struct CodesPage {
    pub n: Nav,
    pub t: Tr,
    pub codes: Vec<String>,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/admin_users.html")]
pub struct AdminUsersPage {
    pub n: Nav,
    pub t: Tr,
    pub users: Vec<User>,
    /// The language preselected for a new user (`server.default_language`).
    pub default_lang: &'static str,
    pub q: String,
    pub summary: String,
    pub prev_href: String,
    pub next_href: String,
    pub filters: Vec<FilterLink>,
    /// The filter in force (`all`, `locked`, `no_device`, `pending`).
    pub filter: &'static str,
    /// Whether the page offers to invite everyone it lists.
    pub bulk_invite: bool,
    pub total: i64,
    pub notice: String,
}

/// One filter of the user list.
#[derive(Debug, Clone)]
pub struct FilterLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/admin_user.html")]
pub struct AdminUserPage {
    pub n: Nav,
    pub t: Tr,
    pub u: User,
    pub devices: Vec<DeviceRow>,
    pub events: Vec<EventRow>,
    pub notice: String,
    pub rec: RecoverySection,
    /// Programmed hardware tokens waiting for their first code.
    pub waiting: Vec<WaitingRow>,
    pub program_action: String,
}

/// One choice of a recovery setting's list.
#[derive(Debug, Clone)]
pub struct PolicyChoice {
    pub value: &'static str,
    pub label: String,
    pub selected: bool,
}

/// One recovery setting on the admin's user page: the value in force and where it comes from.
#[derive(Debug, Clone)]
pub struct PolicyRow {
    /// The form field.
    pub field: &'static str,
    pub label: String,
    /// "Allowed (default of this server)" or "Forbidden (set for this user)".
    pub in_force: String,
    pub choices: Vec<PolicyChoice>,
}

/// The recovery part of the admin's user page (SPEC F4, F6).
#[derive(Debug, Clone)]
pub struct RecoverySection {
    pub policies: Vec<PolicyRow>,
    pub locked: bool,
    /// "7 of 10 recovery codes unused".
    pub codes_left: String,
    /// How "issue new codes" delivers them, in words.
    pub delivery_text: String,
    pub history: Vec<EventRow>,
}

/// Recovery codes an admin re-issued, shown this once with how to pass them on.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/admin_codes.html")]
pub struct AdminCodesPage {
    pub n: Nav,
    pub t: Tr,
    pub username: String,
    pub codes: Vec<String>,
}

/// The answer to an admin's account reset: what happened and the enrollment link to pass on.
#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/admin_reset_done.html")]
pub struct AdminResetDonePage {
    pub n: Nav,
    pub t: Tr,
    pub username: String,
    pub link: String,
    pub hint_set: bool,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/admin_audit.html")]
pub struct AdminAuditPage {
    pub n: Nav,
    pub t: Tr,
    pub events: Vec<EventRow>,
    pub user: String,
    pub action: String,
    pub verification: String,
    pub intact: bool,
}

/// One application row.
#[derive(Debug, Clone)]
pub struct AppRow {
    pub app: crate::model::Application,
    pub created: String,
}

#[derive(Debug, Template, WebTemplate)]
#[template(path = "web/admin_apps.html")]
pub struct AdminAppsPage {
    pub n: Nav,
    pub t: Tr,
    pub apps: Vec<AppRow>,
    /// A key just created: shown this once.
    pub new_key: String,
}

/// The first-code form of a programmed token.
#[derive(Debug, Clone)]
pub struct ActivateForm {
    pub action: String,
    /// Makes the form's element ids unique on a page (the token id).
    pub key: String,
    pub csrf: String,
    /// The explanation above the form (why the next code is asked), or empty.
    pub lines: Vec<String>,
    /// Whether the next code is asked for (the field is then required).
    pub ask_next: bool,
}

/// A programmed token waiting for its first code, on a user's page or the portal.
#[derive(Debug, Clone)]
pub struct WaitingRow {
    pub info: TokenInfo,
    pub params: String,
    pub created: String,
    pub form: ActivateForm,
}
