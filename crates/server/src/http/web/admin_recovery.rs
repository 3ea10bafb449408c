//! The recovery part of the admin's user page (SPEC F4, F6): the user's recovery settings (each
//! with where it comes from, and a way back to the server's default), issuing new recovery
//! codes, clearing a "this wasn't me" lock, resetting the account, and the recovery history.
//!
//! Admins only ([`AdminMe`]); every form carries the session's CSRF secret, and every change
//! asks for the admin's password again (`with_reauth`): the service refuses without a fresh
//! re-authentication, and the password page sends the same form again. Each change calls the
//! same service method as the CLI and the API, which audits it.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::config::AdminDelivery;
use crate::i18n::Tr;
use crate::msg::{Key, Msg};
use crate::service::{Error, RecoveryChanges, RecoverySettings, Setting};

use super::pages::{AdminCodesPage, AdminResetDonePage, PolicyChoice, PolicyRow, RecoverySection};
use super::portal::event_rows;
use super::{AdminMe, user_href};
use super::{AppState, FormData, Me, see_other, with_reauth};

/// Entries of the recovery history on the user's page.
const HISTORY: i64 = 10;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users/{name}/recovery-policy", post(post_policy))
        .route("/admin/users/{name}/recovery-codes", post(post_codes))
        .route("/admin/users/{name}/self-service-unlock", post(post_unlock))
        .route("/admin/users/{name}/reset", post(post_reset))
}

fn yes_no(t: Tr, on: bool, yes: &str, no: &str) -> String {
    t.t(if on { yes } else { no }).to_owned()
}

fn delivery_label(t: Tr, d: AdminDelivery) -> String {
    t.t(match d {
        AdminDelivery::Show => "admin_recovery.delivery_show",
        AdminDelivery::Email => "admin_recovery.delivery_email",
    })
    .to_owned()
}

/// "Allowed (server default)" / "Forbidden (set for this user)".
fn in_force(t: Tr, value: String, overridden: bool) -> String {
    t.f1(
        if overridden {
            "admin_recovery.in_force_user"
        } else {
            "admin_recovery.in_force_default"
        },
        "value",
        &value,
    )
}

/// A yes/no setting's row: "default", "on", "off".
fn bool_row(
    t: Tr,
    field: &'static str,
    label: &str,
    s: Setting<bool>,
    default: bool,
    yes: &str,
    no: &str,
) -> PolicyRow {
    let own = s.overridden.then_some(s.value);
    PolicyRow {
        field,
        label: t.t(label).to_owned(),
        in_force: in_force(t, yes_no(t, s.value, yes, no), s.overridden),
        choices: vec![
            PolicyChoice {
                value: "default",
                label: t.f1(
                    "admin_recovery.choice_default",
                    "value",
                    &yes_no(t, default, yes, no),
                ),
                selected: own.is_none(),
            },
            PolicyChoice {
                value: "on",
                label: t.t(yes).to_owned(),
                selected: own == Some(true),
            },
            PolicyChoice {
                value: "off",
                label: t.t(no).to_owned(),
                selected: own == Some(false),
            },
        ],
    }
}

/// The recovery part of the user's page.
pub async fn recovery_section(s: &AppState, me: &Me, name: &str) -> Result<RecoverySection, Error> {
    let t = me.t;
    let actor = me.web.actor();
    let r: RecoverySettings = s.recovery_settings(&actor, name).await?;
    let cfg = s.config();
    let allowed = ("admin_recovery.allowed", "admin_recovery.forbidden");
    let revoke = ("admin_recovery.revoke", "admin_recovery.keep");
    let own_delivery = r.delivery.overridden.then_some(r.delivery.value);
    let default_delivery = cfg.recovery.admin_delivery;
    let delivery = PolicyRow {
        field: "delivery",
        label: t.t("admin_recovery.delivery").to_owned(),
        in_force: in_force(
            t,
            delivery_label(t, r.delivery.value),
            r.delivery.overridden,
        ),
        choices: vec![
            PolicyChoice {
                value: "default",
                label: t.f1(
                    "admin_recovery.choice_default",
                    "value",
                    &delivery_label(t, default_delivery),
                ),
                selected: own_delivery.is_none(),
            },
            PolicyChoice {
                value: "show",
                label: delivery_label(t, AdminDelivery::Show),
                selected: own_delivery == Some(AdminDelivery::Show),
            },
            PolicyChoice {
                value: "email",
                label: delivery_label(t, AdminDelivery::Email),
                selected: own_delivery == Some(AdminDelivery::Email),
            },
        ],
    };
    let policies = vec![
        bool_row(
            t,
            "self_recovery",
            "admin_recovery.self_recovery",
            r.self_recovery,
            cfg.recovery.self_service,
            allowed.0,
            allowed.1,
        ),
        bool_row(
            t,
            "revoke_old_devices",
            "admin_recovery.revoke_old_devices",
            r.revoke_old_devices,
            cfg.recovery.revoke_old_devices,
            revoke.0,
            revoke.1,
        ),
        delivery,
        bool_row(
            t,
            "codes_at_enrollment",
            "admin_recovery.codes_at_enrollment",
            r.codes_at_enrollment,
            cfg.enroll.recovery_codes_for_new_users,
            "admin_recovery.yes",
            "admin_recovery.no",
        ),
    ];
    let history = s.recovery_history(&actor, name, HISTORY).await?;
    Ok(RecoverySection {
        policies,
        locked: r.self_service_locked,
        codes_left: if r.codes_issued == 0 {
            t.t("admin_recovery.codes_none").to_owned()
        } else {
            t.f2(
                "admin_recovery.codes_left",
                "left",
                &r.codes_left.to_string(),
                "issued",
                &r.codes_issued.to_string(),
            )
        },
        delivery_text: t
            .t(match r.delivery.value {
                AdminDelivery::Show => "admin_recovery.issue_show",
                AdminDelivery::Email => "admin_recovery.issue_email",
            })
            .to_owned(),
        history: event_rows(t, history),
    })
}

/// `default` → `None` (follow the server's setting), `on`/`off` → the user's own choice.
fn bool_choice(v: &str) -> Result<Option<bool>, Error> {
    match v {
        "default" => Ok(None),
        "on" => Ok(Some(true)),
        "off" => Ok(Some(false)),
        _ => Err(Error::Invalid(
            Msg::new(Key::UnknownSetting).arg("value", format!("{v:?}")),
        )),
    }
}

fn delivery_choice(v: &str) -> Result<Option<AdminDelivery>, Error> {
    match v {
        "default" => Ok(None),
        "show" => Ok(Some(AdminDelivery::Show)),
        "email" => Ok(Some(AdminDelivery::Email)),
        _ => Err(Error::Invalid(
            Msg::new(Key::UnknownSetting).arg("value", format!("{v:?}")),
        )),
    }
}

/// Saves the user's recovery settings: only what changed is written (each change is its own
/// audit entry), after re-authentication.
async fn post_policy(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let action = format!("{}/recovery-policy", user_href(&name));
    with_reauth(&me, &s, &action, &form, |web, form| {
        let s = s.clone();
        async move {
            let changes = RecoveryChanges {
                self_recovery: Some(bool_choice(form.get("self_recovery"))?),
                revoke_old_devices: Some(bool_choice(form.get("revoke_old_devices"))?),
                delivery: Some(delivery_choice(form.get("delivery"))?),
                codes_at_enrollment: Some(bool_choice(form.get("codes_at_enrollment"))?),
            };
            s.change_recovery_settings(&web.actor(), &name, changes)
                .await?;
            Ok(see_other(&format!(
                "{}?done=recovery#recovery",
                user_href(&name)
            )))
        }
    })
    .await
}

/// Issues a new set of recovery codes: shown this once, or mailed to the user, as the user's
/// delivery setting says. The old set stops working.
async fn post_codes(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let action = format!("{}/recovery-codes", user_href(&name));
    let me2 = me.clone();
    with_reauth(&me, &s, &action, &form, |web, _| {
        let s = s.clone();
        async move {
            let issued = s.admin_issue_recovery_codes(&web.actor(), &name).await?;
            if issued.emailed_to.is_some() {
                return Ok(see_other(&format!(
                    "{}?done=codes_mailed#recovery",
                    user_href(&name)
                )));
            }
            // The codes exist nowhere else: this answer is the only place they are shown.
            Ok(AdminCodesPage {
                n: me2.nav(&s, "admin_recovery.codes_title", "admin"),
                t: me2.t,
                username: name,
                codes: issued.codes,
            }
            .into_response())
        }
    })
    .await
}

/// Clears the self-service lock a "this wasn't me" link set.
async fn post_unlock(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let action = format!("{}/self-service-unlock", user_href(&name));
    with_reauth(&me, &s, &action, &form, |web, _| {
        let s = s.clone();
        async move {
            s.clear_self_service_lock(&web.actor(), &name).await?;
            Ok(see_other(&format!(
                "{}?done=unlocked#recovery",
                user_href(&name)
            )))
        }
    })
    .await
}

/// Resets the account (SPEC F6): every device, recovery code, link and session goes, the admin
/// sets the new password (and hint); the answer shows the enrollment link to pass on. The form
/// carries the admin's own password, so the usual path re-authenticates in the same request and
/// no password page has to carry the user's new password along in a hidden field.
async fn post_reset(
    State(s): State<AppState>,
    AdminMe(me): AdminMe,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let form = FormData::parse(&body);
    if let Some(r) = me.check_csrf(&s, &form) {
        return r;
    }
    let action = format!("{}/reset", user_href(&name));
    let me2 = me.clone();
    with_reauth(&me, &s, &action, &form, |web, form| {
        let s = s.clone();
        async move {
            if form.get("confirm") != "yes" {
                return Err(Error::Invalid(Msg::new(Key::ResetUnconfirmed)));
            }
            let hint = form.get("hint");
            let path = s
                .admin_reset_account(&web.actor(), &name, form.get("new_password"), hint)
                .await?;
            Ok(AdminResetDonePage {
                n: me2.nav(&s, "admin_recovery.reset_done_title", "admin"),
                t: me2.t,
                username: name,
                link: format!("{}{path}", s.config().public_base_url()),
                hint_set: !hint.trim().is_empty(),
            }
            .into_response())
        }
    })
    .await
}
