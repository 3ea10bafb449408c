//! Account reset, the last resort (SPEC F6): the user enters the e-mail address, Tessera mails a
//! single-use, short-lived link (256 random bits, stored only as SHA-256), and confirming it
//! deletes every credential and stored secret of the account in one transaction, keeps the
//! account and its settings, sets a new password (and hint), notifies the user and starts
//! enrollment. Admins can reset an account too (re-authentication).

use crate::msg::{Key, Msg};
use std::time::Duration;

use crate::crypto::{ct_eq, random_token, token_hash};
use crate::mail::Email;
use crate::model::{Invitation, Language, ResetRequest, User, UserState};

use super::audit::Outcome;
use super::notify::Notice;
use super::{Actor, Error, Result, Service};

/// Every answer of the reset request takes at least this long (no timing tells).
const MIN_ANSWER: Duration = Duration::from_millis(250);
/// How long the enrollment link after a reset works.
const RESET_INVITE_SECS: i64 = 30 * 60;
const RESET_FORM_PURPOSE: &str = "reset-form";

/// What the reset confirmation page shows.
#[derive(Debug, Clone)]
pub struct ResetView {
    pub username: String,
    pub language: Language,
    pub form_token: String,
}

/// A confirmed reset: where enrollment starts, and the login-hint cookie for this browser.
pub struct ResetDone {
    /// `/enroll/{token}`.
    pub enroll_path: String,
    /// Set when the user gave a hint.
    pub hint_cookie: Option<String>,
}

impl std::fmt::Debug for ResetDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetDone").finish_non_exhaustive()
    }
}

impl Service {
    /// Mails a reset link to every account with this address that may use self-service. The
    /// same answer, in at least `MIN_ANSWER`, whatever happened.
    pub async fn request_reset(&self, source: &str, email: &str) -> Result<()> {
        let floor = tokio::time::sleep(MIN_ANSWER);
        let outcome = self.try_request_reset(source, email.trim()).await;
        floor.await;
        outcome
    }

    async fn try_request_reset(&self, source: &str, email: &str) -> Result<()> {
        let now = self.clock.now();
        let refuse = |reason: &'static str| async move {
            self.audit_as(
                "anonymous",
                source,
                "reset.request",
                format!("mail:{email}"),
                "",
                Outcome::Failure,
                reason,
            )
            .await
            .map(|_| ())
        };
        if !self.recovery_limiter.allow(source, now) {
            return refuse("too many requests from this address").await;
        }
        if email.is_empty() || email.len() > 320 {
            return refuse("no address").await;
        }
        let users = self.store.users_by_email(email).await?;
        if users.is_empty() {
            return refuse("no account with this address").await;
        }
        for user in users {
            self.reset_request_for(source, &user, now).await?;
        }
        Ok(())
    }

    async fn reset_request_for(&self, source: &str, user: &User, now: i64) -> Result<()> {
        let target = format!("user:{}", user.username);
        let per_hour = self
            .store
            .record_recovery_attempt(user.id, now, now.saturating_sub(3599))
            .await?;
        let refusal = if u64::try_from(per_hour).unwrap_or(u64::MAX)
            > self.config.recovery.max_per_account_per_hour
        {
            Some("too many requests for this account")
        } else {
            self.self_reset_refusal(user).await?
        };
        if let Some(reason) = refusal {
            self.audit_as(
                "anonymous",
                source,
                "reset.request",
                target,
                &user.username,
                Outcome::Failure,
                reason,
            )
            .await?;
            return Ok(());
        }
        let minutes = self.config.recovery.reset_link_ttl_minutes.max(1);
        let link_token = random_token()?;
        self.store
            .insert_reset_request(&ResetRequest {
                id_hash: token_hash(&link_token),
                user_id: user.id,
                created_at: now,
                expires_at: now
                    .saturating_add(i64::try_from(minutes.saturating_mul(60)).unwrap_or(1800)),
                used_at: None,
            })
            .await?;
        let link = format!("{}/reset/{link_token}", self.config.public_base_url());
        let email = reset_mail(
            user,
            &self.config.enroll.organisation,
            &link,
            minutes,
            source,
        );
        let mailer = self.mailer.clone();
        let who = user.username.clone();
        tokio::spawn(async move {
            if let Err(e) = mailer.send(&email).await {
                tracing::warn!(user = %who, error = %e, "reset mail not sent");
            }
        });
        self.audit_as(
            "anonymous",
            source,
            "reset.request",
            target,
            &user.username,
            Outcome::Success,
            format!("reset link mailed, valid {minutes} minutes"),
        )
        .await?;
        Ok(())
    }

    fn reset_form_token(&self, id_hash: &str) -> Result<String> {
        Ok(self
            .keys
            .keyed_hash(RESET_FORM_PURPOSE, id_hash.as_bytes())?)
    }

    /// Why `user` may not reset the account by e-mail now, if not: the reset is stronger than a
    /// recovery (a mailbox alone suffices), so it never goes where recovery may not.
    async fn self_reset_refusal(&self, user: &User) -> Result<Option<&'static str>> {
        Ok(if !self.config.recovery.self_reset {
            Some("self-service reset switched off (recovery.self_reset)")
        } else if user.state != UserState::Active {
            Some("user disabled")
        } else if self
            .store
            .recovery_policy(user.id)
            .await?
            .self_service_locked
        {
            Some("self-service locked")
        } else if !self.self_recovery_allowed(user).await? {
            Some("self-recovery not allowed for this user, so no reset either")
        } else {
            None
        })
    }

    /// The confirmation page of a reset link, if it still works.
    pub async fn open_reset(&self, link_token: &str) -> Result<ResetView> {
        let id_hash = token_hash(link_token);
        let request = self
            .store
            .reset_request(&id_hash)
            .await?
            .filter(|r| r.used_at.is_none() && r.expires_at > self.clock.now())
            .ok_or(Error::NotFound("reset link"))?;
        let user = self
            .store
            .user(request.user_id)
            .await?
            .ok_or(Error::NotFound("reset link"))?;
        // A link mailed before the policy changed works no more.
        if self.self_reset_refusal(&user).await?.is_some() {
            return Err(Error::NotFound("reset link"));
        }
        Ok(ResetView {
            username: user.username,
            language: user.language,
            form_token: self.reset_form_token(&id_hash)?,
        })
    }

    /// Confirms a reset from a mailed link: returns the path of the enrollment link, and the
    /// login-hint cookie when the user set a hint.
    pub async fn confirm_reset(
        &self,
        source: &str,
        link_token: &str,
        form_token: &str,
        password: &str,
        hint: &str,
    ) -> Result<ResetDone> {
        let id_hash = token_hash(link_token);
        let valid = self
            .keys
            .keyed_hash_candidates(RESET_FORM_PURPOSE, id_hash.as_bytes())
            .iter()
            .any(|c| ct_eq(c.as_bytes(), form_token.as_bytes()));
        if !valid {
            return Err(Error::Forbidden(Msg::new(Key::FormInvalid)));
        }
        let request = self
            .store
            .reset_request(&id_hash)
            .await?
            .ok_or(Error::NotFound("reset link"))?;
        let user = self
            .store
            .user(request.user_id)
            .await?
            .ok_or(Error::NotFound("reset link"))?;
        if let Some(reason) = self.self_reset_refusal(&user).await? {
            self.audit_as(
                "anonymous",
                source,
                "reset.confirm",
                format!("user:{}", user.username),
                &user.username,
                Outcome::Failure,
                reason,
            )
            .await?;
            return Err(Error::NotFound("reset link"));
        }
        let actor = Actor {
            principal: super::Principal::SelfService {
                username: user.username.clone(),
            },
            source: source.to_owned(),
        };
        let enroll_path = self
            .reset(&actor, &user, Some(&id_hash), password, hint)
            .await?;
        // The browser that confirmed the reset may show the hint at the login later (see
        // `login_hint`); the hint was just typed there.
        let hint_cookie = if hint.trim().is_empty() {
            None
        } else {
            Some(self.hint_cookie(&user, hint)?)
        };
        Ok(ResetDone {
            enroll_path,
            hint_cookie,
        })
    }

    /// An admin resets a user's account (re-authentication): the same deletion, the admin sets
    /// the new password. Returns the enrollment link's path, to pass on.
    pub async fn admin_reset_account(
        &self,
        actor: &Actor,
        username: &str,
        password: &str,
        hint: &str,
    ) -> Result<String> {
        let user = self.user_named(username).await?;
        actor.require_reauth(self.clock.now())?;
        self.reset(actor, &user, None, password, hint).await
    }

    async fn reset(
        &self,
        actor: &Actor,
        user: &User,
        reset_hash: Option<&str>,
        password: &str,
        hint: &str,
    ) -> Result<String> {
        self.validate_password(password)?;
        let hint = hint.trim();
        if hint.chars().count() > 200 {
            return Err(Error::Invalid(Msg::new(Key::HintLength)));
        }
        if !hint.is_empty() && hint.contains(password) {
            return Err(Error::Invalid(Msg::new(Key::HintHasPassword)));
        }
        let password_hash = self.hasher.hash(password).await?;
        let now = self.clock.now();
        let link_token = random_token()?;
        let invitation = Invitation {
            id_hash: token_hash(&link_token),
            user_id: user.id,
            created_at: now,
            expires_at: now.saturating_add(RESET_INVITE_SECS),
            used_at: None,
            superseded: false,
            failed_attempts: 0,
            token_id: None,
        };
        if !self
            .store
            .reset_account(user.id, reset_hash, &password_hash, hint, &invitation, now)
            .await?
        {
            return Err(Error::NotFound("reset link"));
        }
        self.audit(
            actor,
            "account.reset",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            "tokens, recovery codes, invitations, sessions deleted; new password set; \
             enrollment link valid 30 minutes",
        )
        .await?;
        self.notify(user, Notice::Reset, None, &actor.source).await;
        Ok(format!("/enroll/{link_token}"))
    }
}

fn reset_mail(user: &User, organisation: &str, link: &str, minutes: u64, source: &str) -> Email {
    let name = super::invite::display_name(user);
    let (subject, text) = match user.language {
        Language::De => (
            "Konto zurücksetzen".to_owned(),
            format!(
                "Hallo {name},\n\nfür Ihr Konto {username} wurde ein Zurücksetzen angefordert \
                 (Adresse {source}). Dabei werden alle Geräte, Wiederherstellungscodes und \
                 Sitzungen gelöscht; Sie setzen ein neues Passwort und richten ein neues Gerät \
                 ein.\n\nKennen Sie Ihr Passwort noch, brauchen Sie das nicht: ignorieren Sie \
                 diese E-Mail.\n\nZum Zurücksetzen öffnen Sie diesen Link ({minutes} Minuten \
                 gültig, einmal verwendbar):\n\n    {link}\n",
                username = user.username
            ),
        ),
        Language::En => (
            "Reset your account".to_owned(),
            format!(
                "Hello {name},\n\na reset was requested for your account {username} (address \
                 {source}). A reset deletes all your devices, recovery codes and sessions; you \
                 set a new password and set up a new device.\n\nIf you still know your password, \
                 you do not need this: ignore this e-mail.\n\nTo reset, open this link (valid \
                 for {minutes} minutes, works once):\n\n    {link}\n",
                username = user.username
            ),
        ),
    };
    crate::emails::notice(&user.email, user.language, organisation, subject, text)
}
