//! Recovery codes (SPEC F1, F4): ten single-use codes issued at enrollment, shown once.
//!
//! A code has 10 symbols of a 32-letter alphabet (50 bits). Plain SHA-256 of that could be
//! brute-forced from a database dump; the codes are stored as HMAC-SHA256 under a subkey of the
//! server key (see `KeyRing::keyed_hash`), which the dump alone does not contain.

use std::time::Duration;

use crate::crypto::{ct_eq, random_readable, random_token, token_hash};
use crate::mail::Email;
use crate::model::{Invitation, Language, TokenId, TokenState, User, UserState};

use super::attempts::Front;
use super::audit::Outcome;
use super::challenge::random_code;
use super::notify::Notice;
use super::{Actor, Error, Result, Service};

/// How long the enrollment link reached by a recovery works (the user is right there).
const RECOVERY_INVITE_SECS: i64 = 30 * 60;
/// Every answer of the recovery page takes at least this long, so the time does not tell
/// whether the user exists or the recovery code was right (the e-mail is sent in the background).
const MIN_ANSWER: Duration = Duration::from_millis(250);
/// Digits of the e-mailed recovery code.
const EMAILED_CODE_DIGITS: u32 = 8;

fn emailed_code_hash(ticket: &str, code: &str) -> String {
    token_hash(&format!("recovery:{ticket}:{code}"))
}

/// Recovery codes issued at enrollment.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Purpose label of the codes' keyed hash (its own subkey).
const RECOVERY_PURPOSE: &str = "recovery-code";

/// Strips what people type around a recovery code (spaces, dashes, lower case).
pub(crate) fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A new recovery code, `ABCDE-FGHJK`: 10 symbols of 32, 50 bits.
fn new_recovery_code() -> Result<String> {
    let raw = random_readable(10)?;
    Ok(format!("{}-{}", &raw[..5], &raw[5..]))
}

impl Service {
    /// Whether `username` gets recovery codes at enrollment: `Some(on)` for this user, or `None`
    /// to follow `enroll.recovery_codes_for_new_users`. A policy change: needs re-authentication.
    pub async fn set_recovery_policy(
        &self,
        actor: &Actor,
        username: &str,
        enabled: Option<bool>,
    ) -> Result<()> {
        let user = self.user_named(username).await?;
        actor.require_reauth(self.clock.now())?;
        if !self.store.set_recovery_enabled(user.id, enabled).await? {
            return Err(super::Error::NotFound("user"));
        }
        self.audit(
            actor,
            "user.recovery",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            match enabled {
                Some(true) => "recovery codes on for this user".to_owned(),
                Some(false) => "recovery codes off for this user".to_owned(),
                None => format!(
                    "recovery codes follow the policy (now {})",
                    if self.config.enroll.recovery_codes_for_new_users {
                        "on"
                    } else {
                        "off"
                    }
                ),
            },
        )
        .await?;
        Ok(())
    }

    /// Whether the user gets recovery codes at enrollment (own setting, else the policy).
    pub(crate) async fn recovery_enabled_for(&self, user: &User) -> Result<bool> {
        Ok(self
            .store
            .recovery_enabled(user.id)
            .await?
            .unwrap_or(self.config.enroll.recovery_codes_for_new_users))
    }

    /// Replaces the user's recovery codes by ten new ones, stored as keyed hashes; returns the
    /// codes, which exist nowhere else.
    pub(crate) async fn issue_recovery_codes(
        &self,
        actor: &Actor,
        user: &User,
    ) -> Result<Vec<String>> {
        let mut codes = Vec::with_capacity(RECOVERY_CODE_COUNT);
        let mut hashes = Vec::with_capacity(RECOVERY_CODE_COUNT);
        while codes.len() < RECOVERY_CODE_COUNT {
            let code = new_recovery_code()?;
            let hash = self
                .keys
                .keyed_hash(RECOVERY_PURPOSE, normalize_recovery_code(&code).as_bytes())?;
            if !hashes.contains(&hash) {
                hashes.push(hash);
                codes.push(code);
            }
        }
        self.store
            .replace_recovery_codes(user.id, &hashes, self.clock.now())
            .await?;
        self.audit(
            actor,
            "recovery.issue",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            format!("{RECOVERY_CODE_COUNT} recovery codes issued, earlier ones void"),
        )
        .await?;
        Ok(codes)
    }
}

impl Service {
    /// Whether `user` may recover themself: the user's own setting, else the configuration; never
    /// while self-service is locked.
    pub(super) async fn self_recovery_allowed(&self, user: &User) -> Result<bool> {
        let policy = self.store.recovery_policy(user.id).await?;
        Ok(!policy.self_service_locked
            && policy
                .self_recovery
                .unwrap_or(self.config.recovery.self_service))
    }

    /// Sets a user's recovery policies (`None`: follow the configuration): self-recovery allowed,
    /// and old devices revoked after a recovery. A policy change: needs re-authentication.
    pub async fn set_self_recovery_policy(
        &self,
        actor: &Actor,
        username: &str,
        self_recovery: Option<bool>,
        revoke_old_devices: Option<bool>,
    ) -> Result<()> {
        let user = self.user_named(username).await?;
        actor.require_reauth(self.clock.now())?;
        if !self
            .store
            .set_recovery_policy(user.id, self_recovery, revoke_old_devices)
            .await?
        {
            return Err(Error::NotFound("user"));
        }
        let show = |v: Option<bool>| match v {
            Some(true) => "yes",
            Some(false) => "no",
            None => "policy",
        };
        self.audit(
            actor,
            "user.recovery_policy",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            format!(
                "self-recovery {}, revoke old devices after a recovery {}",
                show(self_recovery),
                show(revoke_old_devices)
            ),
        )
        .await?;
        Ok(())
    }

    /// First step of a self-service recovery (SPEC F4): username and one recovery code. Always
    /// returns a fresh ticket and takes at least `MIN_ANSWER`, whatever happened, so the answer
    /// tells nothing; only when both were right (and the policy allows) does the ticket exist and
    /// a one-time code go to the user's e-mail address. The recovery code is consumed.
    pub async fn start_recovery(&self, source: &str, username: &str, code: &str) -> Result<String> {
        // The deadline is fixed now; awaiting it at the end pads the answer to `MIN_ANSWER`.
        let floor = tokio::time::sleep(MIN_ANSWER);
        let ticket = random_token()?;
        let outcome = self
            .try_start_recovery(source, username, code, &ticket)
            .await;
        floor.await;
        outcome.map(|()| ticket)
    }

    async fn try_start_recovery(
        &self,
        source: &str,
        username: &str,
        code: &str,
        ticket: &str,
    ) -> Result<()> {
        let username = username.trim();
        let now = self.clock.now();
        // The same work for unknown users: the code's keyed hashes are always computed.
        let normalized = normalize_recovery_code(code);
        let candidates = self
            .keys
            .keyed_hash_candidates(RECOVERY_PURPOSE, normalized.as_bytes());
        let fail = |reason: &'static str| async move {
            self.audit_as(
                "anonymous",
                source,
                "recovery.start",
                format!("user:{username}"),
                username,
                Outcome::Failure,
                reason,
            )
            .await
            .map(|_| ())
        };
        if !self.recovery_limiter.allow(source, now) {
            return fail("too many recovery attempts from this address").await;
        }
        // Wrong recovery codes count against the address they came from (overall and for this
        // account), never against the account itself: a stranger cannot block the owner's
        // recovery. A recovery code has 50 random bits, so the per-address budgets are ample.
        if self.stranger_budget_spent(Front::Person, username, source) {
            return fail("too many wrong recovery codes from this address").await;
        }
        let user = if username.is_empty() || username.chars().count() > 256 {
            None
        } else {
            self.store.user_by_name(username).await?
        };
        let Some(user) = user else {
            self.record_stranger_failure(Front::Person, username, source);
            return fail("unknown user").await;
        };
        if user.state != UserState::Active {
            return fail("user disabled").await;
        }
        let no_email = user.email.is_empty();
        if !self.self_recovery_allowed(&user).await? || no_email {
            // Only someone holding one of the account's codes learns why nothing will be
            // mailed, and the code is not spent: the owner is told to ask the IT instead of
            // waiting for a mail that never comes. Anyone else sees the usual answer.
            let holds_code = self
                .store
                .recovery_codes_of(user.id)
                .await?
                .iter()
                .filter(|c| c.used_at.is_none())
                .any(|c| {
                    candidates
                        .iter()
                        .any(|h| ct_eq(h.as_bytes(), c.code_hash.as_bytes()))
                });
            if !holds_code {
                self.record_stranger_failure(Front::Person, username, source);
                return fail("wrong or used recovery code").await;
            }
            let reason = if no_email {
                "right recovery code, but the user has no e-mail address: told to ask the IT"
            } else {
                "right recovery code, but self-recovery is not allowed or locked: told to ask the IT"
            };
            fail(reason).await?;
            return Err(Error::Forbidden(crate::msg::Msg::new(
                crate::msg::Key::SelfRecoveryImpossible,
            )));
        }
        let mut used = false;
        for hash in &candidates {
            if self.store.use_recovery_code(user.id, hash, now).await? {
                used = true;
                break;
            }
        }
        if !used {
            self.record_stranger_failure(Front::Person, username, source);
            return fail("wrong or used recovery code").await;
        }
        // Recoveries started (each mails a code) per account and hour: only the owner, who
        // holds the codes, can spend this.
        let per_hour = self
            .store
            .record_recovery_attempt(user.id, now, now.saturating_sub(3599))
            .await?;
        if u64::try_from(per_hour).unwrap_or(u64::MAX)
            > self.config.recovery.max_per_account_per_hour
        {
            return fail("too many recoveries for this account").await;
        }
        let emailed = random_code(EMAILED_CODE_DIGITS)?;
        let ttl_minutes = self.config.recovery.code_ttl_minutes.max(1);
        let ttl = i64::try_from(ttl_minutes.saturating_mul(60)).unwrap_or(900);
        self.store
            .insert_recovery_request(&crate::model::RecoveryRequest {
                id_hash: token_hash(ticket),
                user_id: user.id,
                code_hash: emailed_code_hash(ticket, &emailed),
                created_at: now,
                expires_at: now.saturating_add(ttl),
                attempts: 0,
                used_at: None,
                invitation_hash: None,
                source: source.to_owned(),
            })
            .await?;
        let email = recovery_code_mail(
            &user,
            &self.config.enroll.organisation,
            &emailed,
            ttl_minutes,
            source,
        );
        // In the background: the page answers before the mail server does, so the time of the
        // answer does not depend on whether a mail was sent.
        let mailer = self.mailer.clone();
        let who = user.username.clone();
        tokio::spawn(async move {
            if let Err(e) = mailer.send(&email).await {
                tracing::warn!(user = %who, error = %e, "recovery code mail not sent");
            }
        });
        self.audit_as(
            &format!("self:{}", user.username),
            source,
            "recovery.start",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            format!(
                "recovery code accepted and used; one-time code e-mailed, valid {ttl_minutes} minutes"
            ),
        )
        .await?;
        Ok(())
    }

    /// Second step: the ticket from the first answer and the e-mailed code. Right, unused, in
    /// time and within the attempts: returns the path of a fresh enrollment link
    /// (`/enroll/{token}`). Anything else is `invalid_credentials`, the same for every reason.
    /// No session is opened: a recovery only permits enrolling a device.
    pub async fn finish_recovery(&self, source: &str, ticket: &str, code: &str) -> Result<String> {
        // Padded like the first step: the time must not tell a real ticket (a right first step)
        // from a made-up one.
        let floor = tokio::time::sleep(MIN_ANSWER);
        let outcome = self.try_finish_recovery(source, ticket, code).await;
        floor.await;
        outcome
    }

    async fn try_finish_recovery(&self, source: &str, ticket: &str, code: &str) -> Result<String> {
        let now = self.clock.now();
        let id_hash = token_hash(ticket);
        let request = self.store.recovery_request(&id_hash).await?;
        let user = match &request {
            Some(r) => self.store.user(r.user_id).await?,
            None => None,
        };
        let username = user.as_ref().map_or("", |u| u.username.as_str());
        let fail = |reason: &'static str| async move {
            self.audit_as(
                "anonymous",
                source,
                "recovery.verify",
                format!("user:{username}"),
                username,
                Outcome::Failure,
                reason,
            )
            .await?;
            Err::<String, Error>(Error::InvalidCredentials)
        };
        if !self.recovery_limiter.allow(source, now) {
            return fail("too many recovery attempts from this address").await;
        }
        let (Some(request), Some(user)) = (request, user.clone()) else {
            return fail("unknown recovery ticket").await;
        };
        if request.used_at.is_some() {
            return fail("e-mailed code already used").await;
        }
        if request.expires_at <= now {
            return fail("e-mailed code expired").await;
        }
        let attempts = self.store.recovery_request_attempt(&id_hash).await?;
        if u64::try_from(attempts).unwrap_or(u64::MAX) > self.config.recovery.max_attempts {
            return fail("recovery void after too many wrong codes").await;
        }
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if !ct_eq(
            emailed_code_hash(ticket, &code).as_bytes(),
            request.code_hash.as_bytes(),
        ) {
            return fail("wrong e-mailed code").await;
        }
        if user.state != UserState::Active || !self.self_recovery_allowed(&user).await? {
            return fail("user disabled, or self-recovery no longer allowed").await;
        }
        let link_token = random_token()?;
        let invitation_hash = token_hash(&link_token);
        if !self
            .store
            .use_recovery_request(&id_hash, &invitation_hash, now)
            .await?
        {
            return fail("e-mailed code already used").await;
        }
        self.store
            .insert_invitation(&Invitation {
                id_hash: invitation_hash,
                user_id: user.id,
                created_at: now,
                expires_at: now.saturating_add(RECOVERY_INVITE_SECS),
                used_at: None,
                superseded: false,
                failed_attempts: 0,
                token_id: None,
            })
            .await?;
        self.audit_as(
            &format!("self:{}", user.username),
            source,
            "recovery.verify",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            "e-mailed code accepted; enrollment link for a new device, valid 30 minutes",
        )
        .await?;
        Ok(format!("/enroll/{link_token}"))
    }

    /// Called when an enrollment's token was activated: if the link came from a recovery, the
    /// recovery is complete, and the policy decides whether the user's older devices are revoked.
    pub(super) async fn after_enrollment(
        &self,
        actor: &Actor,
        invitation_hash: &str,
        user: &User,
        new_token: TokenId,
    ) -> Result<()> {
        let Some(request) = self
            .store
            .recovery_request_by_invitation(invitation_hash)
            .await?
        else {
            self.notify(user, Notice::DeviceAdded, Some(new_token), &actor.source)
                .await;
            return Ok(());
        };
        let policy = self.store.recovery_policy(user.id).await?;
        let revoke = policy
            .revoke_on_recovery
            .unwrap_or(self.config.recovery.revoke_old_devices);
        let mut revoked = 0usize;
        if revoke {
            for t in self.store.tokens_of(user.id).await? {
                if t.id != new_token && t.state != TokenState::Revoked {
                    self.store
                        .update_token(t.id, &t.name, TokenState::Revoked)
                        .await?;
                    revoked += 1;
                }
            }
        }
        self.audit(
            actor,
            "recovery.complete",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            if revoke {
                format!(
                    "new device active after a recovery from {}; {revoked} old devices revoked",
                    request.source
                )
            } else {
                format!(
                    "new device active after a recovery from {}; old devices kept",
                    request.source
                )
            },
        )
        .await?;
        self.notify(user, Notice::Recovery, Some(new_token), &request.source)
            .await;
        Ok(())
    }
}

/// The e-mail with the one-time recovery code, in the user's language.
fn recovery_code_mail(
    user: &User,
    organisation: &str,
    code: &str,
    minutes: u64,
    source: &str,
) -> Email {
    let name = super::invite::display_name(user);
    let (subject, text) = match user.language {
        Language::De => (
            "Ihr Wiederherstellungscode".to_owned(),
            format!(
                "Hallo {name},\n\nmit einem Ihrer Wiederherstellungscodes wurde gerade die \
                 Wiederherstellung Ihres Kontos {username} begonnen (Adresse {source}).\n\n\
                 Ihr Einmalcode lautet:\n\n    {code}\n\n\
                 Er ist {minutes} Minuten gültig und funktioniert einmal. Geben Sie ihn nicht \
                 weiter.\nWaren Sie das nicht, informieren Sie sofort Ihre IT: Jemand kennt \
                 einen Ihrer Wiederherstellungscodes.\n",
                username = user.username
            ),
        ),
        Language::En => (
            "Your recovery code".to_owned(),
            format!(
                "Hello {name},\n\none of your recovery codes was just used to start recovering \
                 your account {username} (address {source}).\n\n\
                 Your one-time code is:\n\n    {code}\n\n\
                 It is valid for {minutes} minutes and works once. Do not share it.\n\
                 If this wasn't you, tell your IT team at once: someone knows one of your \
                 recovery codes.\n",
                username = user.username
            ),
        ),
    };
    crate::emails::notice(&user.email, user.language, organisation, subject, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_readable_and_normalise() {
        let code = new_recovery_code().unwrap();
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert_eq!(normalize_recovery_code(" abcde-fghjk "), "ABCDEFGHJK");
    }
}
