//! What an admin does about a user's recovery (SPEC F4, F6): the user's recovery settings with
//! where each comes from (the configuration or a per-user choice), re-issuing recovery codes,
//! the recovery history; and the sealed "password hint" cookie of the login page.
//!
//! Authorization is the caller's: every method here is reached only by admins (the API's and the
//! web's admin extractors, the CLI as operator); changes need a fresh re-authentication.

use crate::config::AdminDelivery;
use crate::model::{Language, User, UserId};
use crate::msg::{Key, Msg};

use super::audit::Outcome;
use super::notify::Notice;
use super::{Actor, Error, Result, Service};

/// One recovery setting of a user: the value in force, and whether it is the user's own
/// (an admin's choice) or follows the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub overridden: bool,
}

impl<T: Copy> Setting<T> {
    fn of(own: Option<T>, default: T) -> Setting<T> {
        Setting {
            value: own.unwrap_or(default),
            overridden: own.is_some(),
        }
    }
}

/// A user's recovery settings as an admin sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoverySettings {
    /// Recovery codes at enrollment.
    pub codes_at_enrollment: Setting<bool>,
    /// May recover themself on `/recover`.
    pub self_recovery: Setting<bool>,
    /// Old devices revoked after a recovery.
    pub revoke_old_devices: Setting<bool>,
    /// How re-issued recovery codes reach the user.
    pub delivery: Setting<AdminDelivery>,
    /// Self-service locked after "this wasn't me", until an admin clears it.
    pub self_service_locked: bool,
    /// Unused recovery codes, and how many were issued.
    pub codes_left: usize,
    pub codes_issued: usize,
}

fn delivery_name(d: AdminDelivery) -> &'static str {
    match d {
        AdminDelivery::Show => "show",
        AdminDelivery::Email => "email",
    }
}

fn parse_delivery(v: &str) -> Option<AdminDelivery> {
    match v {
        "show" => Some(AdminDelivery::Show),
        "email" => Some(AdminDelivery::Email),
        _ => None,
    }
}

/// Changes to a user's recovery settings. For each: `None` leaves it as it is, `Some(None)`
/// follows the configuration again, `Some(Some(v))` is the user's own setting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryChanges {
    pub self_recovery: Option<Option<bool>>,
    pub revoke_old_devices: Option<Option<bool>>,
    pub delivery: Option<Option<AdminDelivery>>,
    pub codes_at_enrollment: Option<Option<bool>>,
}

fn own<T: Copy>(s: Setting<T>) -> Option<T> {
    s.overridden.then_some(s.value)
}

/// Purpose label of the login-hint cookie's MAC (its own subkey of the server key).
const HINT_COOKIE_PURPOSE: &str = "login-hint-cookie";

impl Service {
    /// The delivery of re-issued codes in force for `user`, and whether it is the user's own.
    async fn effective_delivery(&self, user: &User) -> Result<Setting<AdminDelivery>> {
        let own = self
            .store
            .recovery_delivery(user.id)
            .await?
            .as_deref()
            .and_then(parse_delivery);
        Ok(Setting::of(own, self.config.recovery.admin_delivery))
    }

    /// The user's recovery settings, each with where it comes from.
    pub async fn recovery_settings(
        &self,
        _actor: &Actor,
        username: &str,
    ) -> Result<RecoverySettings> {
        let user = self.user_named(username).await?;
        let policy = self.store.recovery_policy(user.id).await?;
        let cfg = &self.config;
        let codes = self.store.recovery_codes_of(user.id).await?;
        Ok(RecoverySettings {
            codes_at_enrollment: Setting::of(
                self.store.recovery_enabled(user.id).await?,
                cfg.enroll.recovery_codes_for_new_users,
            ),
            self_recovery: Setting::of(policy.self_recovery, cfg.recovery.self_service),
            revoke_old_devices: Setting::of(
                policy.revoke_on_recovery,
                cfg.recovery.revoke_old_devices,
            ),
            delivery: self.effective_delivery(&user).await?,
            self_service_locked: policy.self_service_locked,
            codes_left: codes.iter().filter(|c| c.used_at.is_none()).count(),
            codes_issued: codes.len(),
        })
    }

    /// Changes the user's recovery settings (a policy change: needs re-authentication, even
    /// when nothing changes). Only what differs is written, each through the method the CLI
    /// uses, so each change is its own audit entry. Returns the settings now in force.
    pub async fn change_recovery_settings(
        &self,
        actor: &Actor,
        username: &str,
        changes: RecoveryChanges,
    ) -> Result<RecoverySettings> {
        self.user_named(username).await?;
        actor.require_reauth(self.clock.now())?;
        let now = self.recovery_settings(actor, username).await?;
        let self_recovery = changes.self_recovery.unwrap_or(own(now.self_recovery));
        let revoke = changes
            .revoke_old_devices
            .unwrap_or(own(now.revoke_old_devices));
        if self_recovery != own(now.self_recovery) || revoke != own(now.revoke_old_devices) {
            self.set_self_recovery_policy(actor, username, self_recovery, revoke)
                .await?;
        }
        if let Some(delivery) = changes.delivery.filter(|d| *d != own(now.delivery)) {
            self.set_recovery_delivery(actor, username, delivery)
                .await?;
        }
        if let Some(codes) = changes
            .codes_at_enrollment
            .filter(|c| *c != own(now.codes_at_enrollment))
        {
            self.set_recovery_policy(actor, username, codes).await?;
        }
        self.recovery_settings(actor, username).await
    }

    /// Sets how re-issued recovery codes reach this user (`None`: follow
    /// `recovery.admin_delivery`). A policy change: needs re-authentication.
    pub async fn set_recovery_delivery(
        &self,
        actor: &Actor,
        username: &str,
        delivery: Option<AdminDelivery>,
    ) -> Result<()> {
        let user = self.user_named(username).await?;
        actor.require_reauth(self.clock.now())?;
        if !self
            .store
            .set_recovery_delivery(user.id, delivery.map(delivery_name))
            .await?
        {
            return Err(Error::NotFound("user"));
        }
        self.audit(
            actor,
            "user.recovery_delivery",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            match delivery {
                Some(d) => format!("re-issued recovery codes: {}", delivery_name(d)),
                None => format!(
                    "re-issued recovery codes follow the policy (now {})",
                    delivery_name(self.config.recovery.admin_delivery)
                ),
            },
        )
        .await?;
        Ok(())
    }

    /// What the hint cookie's MAC covers: the account (id and creation time, so a cookie of a
    /// deleted account never names a later one with the same id) and the hint itself (so a
    /// cookie shows only the hint that was set when the browser got it, never a later one).
    fn hint_cookie_mac_input(user: &User, hint: &str) -> String {
        format!("{}:{}:{}", user.id.0, user.created_at, hint.trim())
    }

    /// The value of the login-hint cookie for `user` and its current `hint`: the user id with a
    /// MAC under the server key, so a browser can neither forge it nor point it at another
    /// account. It holds no hint.
    pub(crate) fn hint_cookie(&self, user: &User, hint: &str) -> Result<String> {
        let mac = self.keys.keyed_hash(
            HINT_COOKIE_PURPOSE,
            Self::hint_cookie_mac_input(user, hint).as_bytes(),
        )?;
        Ok(format!("{}.{mac}", user.id.0))
    }

    /// The password hint for the login page, if `cookie` is a hint cookie this server made for
    /// this user and this very hint, and the user is still active. Anything else is `None`, never an error: the login
    /// page must look the same for a forged or stale cookie as for none.
    pub async fn login_hint(&self, cookie: &str) -> Result<Option<String>> {
        let Some((id, mac)) = cookie.split_once('.') else {
            return Ok(None);
        };
        let Ok(id) = id.parse::<i64>() else {
            return Ok(None);
        };
        let Some(user) = self.store.user(UserId(id)).await? else {
            return Ok(None);
        };
        if user.state != crate::model::UserState::Active {
            return Ok(None);
        }
        let hint = self.store.password_hint(user.id).await?.unwrap_or_default();
        if hint.trim().is_empty() {
            return Ok(None);
        }
        let valid = self
            .keys
            .keyed_hash_candidates(
                HINT_COOKIE_PURPOSE,
                Self::hint_cookie_mac_input(&user, &hint).as_bytes(),
            )
            .iter()
            .any(|c| crate::crypto::ct_eq(c.as_bytes(), mac.as_bytes()));
        Ok(valid.then_some(hint))
    }

    /// The hint cookie for the user of an enrollment link, when that user has a password hint
    /// (after an admin's reset): whoever holds the link may enroll a device on the account, so
    /// they may also see the hint at the login later.
    pub async fn enrollment_hint_cookie(&self, link_token: &str) -> Result<Option<String>> {
        let Ok((_, user)) = self.open_invitation(link_token).await else {
            return Ok(None);
        };
        let hint = self.store.password_hint(user.id).await?.unwrap_or_default();
        if hint.trim().is_empty() {
            return Ok(None);
        }
        Ok(Some(self.hint_cookie(&user, &hint)?))
    }
}

/// Recovery codes an admin re-issued: shown once, or mailed to the user.
pub struct ReissuedCodes {
    /// The codes, when the policy shows them to the admin; empty when they were mailed.
    pub codes: Vec<String>,
    /// The address they were mailed to.
    pub emailed_to: Option<String>,
}

impl std::fmt::Debug for ReissuedCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReissuedCodes")
            .field("codes", &self.codes.len())
            .field("emailed_to", &self.emailed_to)
            .finish()
    }
}

/// Audit actions that belong to a user's recovery history.
const HISTORY_PREFIXES: &[&str] = &[
    "recovery.",
    "reset.",
    "account.reset",
    "security.",
    "user.recovery",
];

impl Service {
    /// An admin issues a new set of recovery codes for a user (re-authentication; the old set
    /// stops working), delivered as the user's setting or `recovery.admin_delivery` allows.
    pub async fn admin_issue_recovery_codes(
        &self,
        actor: &Actor,
        username: &str,
    ) -> Result<ReissuedCodes> {
        let user = self.user_named(username).await?;
        actor.require_reauth(self.clock.now())?;
        let email = self.effective_delivery(&user).await?.value == AdminDelivery::Email;
        if email && user.email.is_empty() {
            return Err(Error::Invalid(
                Msg::new(Key::ReissueNoEmail).arg("name", &user.username),
            ));
        }
        let codes = self.issue_recovery_codes(actor, &user).await?;
        self.notify(&user, Notice::CodesReissued, None, &actor.source)
            .await;
        if !email {
            return Ok(ReissuedCodes {
                codes,
                emailed_to: None,
            });
        }
        let list = codes.join("\n    ");
        let name = super::invite::display_name(&user);
        let (subject, text) = match user.language {
            Language::De => (
                "Neue Wiederherstellungscodes".to_owned(),
                format!(
                    "Hallo {name},\n\nIhre IT hat Ihnen neue Wiederherstellungscodes ausgestellt; \
                     die bisherigen gelten nicht mehr. Jeder Code funktioniert einmal. Bewahren \
                     Sie sie sicher auf und löschen Sie diese E-Mail danach:\n\n    {list}\n"
                ),
            ),
            Language::En => (
                "New recovery codes".to_owned(),
                format!(
                    "Hello {name},\n\nyour IT team issued new recovery codes for you; the earlier \
                     ones no longer work. Each code works once. Keep them safe and delete this \
                     e-mail afterwards:\n\n    {list}\n"
                ),
            ),
        };
        self.mailer
            .send(&crate::emails::notice(
                &user.email,
                user.language,
                &self.config.enroll.organisation,
                subject,
                text,
            ))
            .await
            .map_err(|e| Error::MailFailed(e.to_string()))?;
        self.audit(
            actor,
            "recovery.deliver",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            format!("re-issued recovery codes mailed to {}", user.email),
        )
        .await?;
        Ok(ReissuedCodes {
            codes: Vec::new(),
            emailed_to: Some(user.email),
        })
    }

    /// The user's recovery history: recoveries, resets, re-issued codes, blocks and policy
    /// changes, newest first.
    pub async fn recovery_history(
        &self,
        _actor: &Actor,
        username: &str,
        limit: i64,
    ) -> Result<Vec<crate::model::AuditEntry>> {
        let user = self.user_named(username).await?;
        Ok(self
            .store
            .list_audit(&crate::model::AuditFilter {
                username: Some(user.username.to_lowercase()),
                action_prefixes: HISTORY_PREFIXES.iter().map(|p| (*p).to_owned()).collect(),
                limit: limit.clamp(1, super::MAX_AUDIT_PAGE),
                ..crate::model::AuditFilter::default()
            })
            .await?)
    }
}
