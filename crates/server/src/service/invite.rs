//! Enrollment invitations (SPEC F1): creating a link, mailing it, the automatic invitation when
//! `otp_required` is switched on, and the operator's test mail.
//!
//! The link token (256 random bits) is handed out once and stored only as its SHA-256; a new
//! invitation supersedes the user's earlier links in the same transaction. A mail that cannot be
//! sent voids its link and is reported to the caller and the audit, never dropped.

use crate::clock::UnixTime;
use crate::crypto::{random_token, token_hash};
use crate::model::{Invitation, TokenState, User, UserState};
use crate::msg::{Key, Msg};

use super::audit::Outcome;
use super::{Actor, Error, Result, Service};

/// An invitation just created. `link` is the only copy of the link token: shown or mailed once.
pub struct InvitationSent {
    pub username: String,
    pub link: String,
    pub expires_at: UnixTime,
    /// The address the link was mailed to; `None` when it was returned instead.
    pub emailed_to: Option<String>,
}

impl std::fmt::Debug for InvitationSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitationSent")
            .field("username", &self.username)
            .field("expires_at", &self.expires_at)
            .field("emailed_to", &self.emailed_to)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Creates an invitation for `username`, superseding older ones, and mails the link (or, with
    /// `send` false, returns it for the admin to pass on). A mail that cannot be sent voids the
    /// new link and fails with `mail_failed`; both outcomes are audited.
    pub async fn invite_user(
        &self,
        actor: &Actor,
        username: &str,
        send: bool,
    ) -> Result<InvitationSent> {
        let user = self.user_named(username).await?;
        let target = format!("user:{}", user.username);
        if user.state != UserState::Active {
            return self
                .refuse_invitation(
                    actor,
                    &user,
                    Msg::new(Key::UserDisabled).arg("name", &user.username),
                )
                .await;
        }
        if send && user.email.is_empty() {
            let reason = Msg::new(Key::InviteNoEmail).arg("name", &user.username);
            return self.refuse_invitation(actor, &user, reason).await;
        }
        let now = self.clock.now();
        let ttl_hours = i64::try_from(self.config.enroll.link_ttl_hours).unwrap_or(72);
        let link_token = random_token()?;
        let invitation = Invitation {
            id_hash: token_hash(&link_token),
            user_id: user.id,
            created_at: now,
            expires_at: now.saturating_add(ttl_hours.saturating_mul(3600)),
            used_at: None,
            superseded: false,
            failed_attempts: 0,
            token_id: None,
        };
        self.store.insert_invitation(&invitation).await?;
        let link = format!("{}/enroll/{link_token}", self.config.public_base_url());
        let expires = crate::clock::rfc3339(invitation.expires_at);
        if !send {
            self.audit(
                actor,
                "enroll.invite",
                target,
                &user.username,
                Outcome::Success,
                format!("link handed to the admin, valid until {expires}"),
            )
            .await?;
            return Ok(InvitationSent {
                username: user.username,
                link,
                expires_at: invitation.expires_at,
                emailed_to: None,
            });
        }
        let email = crate::emails::invitation(&crate::emails::InvitationMail {
            to: &user.email,
            language: user.language,
            name: display_name(&user),
            username: &user.username,
            organisation: &self.config.enroll.organisation,
            link: &link,
            expires_at: invitation.expires_at,
            zone: self.config.server.zone(),
        })
        .map_err(|e| Error::MailFailed(format!("cannot render the e-mail: {e}")))?;
        if let Err(e) = self.mailer.send(&email).await {
            // The link never arrived: it must not stay usable.
            self.store.supersede_invitations(user.id).await?;
            tracing::warn!(user = %user.username, error = %e, "invitation mail not sent");
            self.audit(
                actor,
                "enroll.invite",
                target,
                &user.username,
                Outcome::Failure,
                format!("mail to {} not sent: {e}", user.email),
            )
            .await?;
            return Err(Error::MailFailed(e.to_string()));
        }
        self.audit(
            actor,
            "enroll.invite",
            target,
            &user.username,
            Outcome::Success,
            format!("link mailed to {}, valid until {expires}", user.email),
        )
        .await?;
        Ok(InvitationSent {
            username: user.username,
            link,
            expires_at: invitation.expires_at,
            emailed_to: Some(user.email.clone()),
        })
    }

    async fn refuse_invitation(
        &self,
        actor: &Actor,
        user: &User,
        reason: Msg,
    ) -> Result<InvitationSent> {
        self.audit(
            actor,
            "enroll.invite",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Failure,
            reason.english(),
        )
        .await?;
        Err(Error::Invalid(reason))
    }

    /// Users who must use a one-time password but have no active token yet.
    pub async fn users_needing_enrollment(&self, _actor: &Actor) -> Result<Vec<User>> {
        Ok(self.store.users_needing_enrollment().await?)
    }

    /// Called after a user change: when the change leaves a user who must use a second factor
    /// without a working device (OTP switched on for a user without one, or the phone number or
    /// e-mail address removed that the user's only device sent its codes to: SPEC F3), an
    /// invitation goes out, when configured. Never fails the change itself: a failed invitation
    /// is audited (and logged) by `invite_user`.
    /// `None` when no invitation was due, else what became of it.
    pub(crate) async fn after_user_update(
        &self,
        actor: &Actor,
        before: &User,
        after: &User,
    ) -> Option<Result<InvitationSent>> {
        if !after.otp_required
            || after.state != UserState::Active
            || !self.config.enroll.auto_invite_on_otp_required
        {
            return None;
        }
        let tokens = match self.store.tokens_of(after.id).await {
            Ok(tokens) => tokens,
            Err(e) => {
                tracing::warn!(user = %after.username, error = %e, "automatic invitation skipped");
                return None;
            }
        };
        let worked_before = before.otp_required && tokens.iter().any(|t| t.works_for(before));
        let works_now = tokens.iter().any(|t| t.works_for(after));
        // Tokens waiting for their first code: an enrollment is under way already.
        let enrolling = tokens.iter().any(|t| t.state == TokenState::Pending);
        if works_now || (before.otp_required && !worked_before) || enrolling {
            return None;
        }
        let sent = self.invite_user(actor, &after.username, true).await;
        if let Err(e) = &sent {
            tracing::warn!(user = %after.username, error = %e, "automatic invitation failed");
        }
        Some(sent)
    }

    /// The invitation asked for when a user is created. A failure (e.g. no e-mail address) is
    /// audited by [`Self::invite_user`] and logged; it never undoes the user.
    pub(crate) async fn invite_new_user(
        &self,
        actor: &Actor,
        user: &User,
    ) -> Result<InvitationSent> {
        let sent = self.invite_user(actor, &user.username, true).await;
        if let Err(e) = &sent {
            tracing::warn!(user = %user.username, error = %e, "invitation of a new user failed");
        }
        sent
    }

    /// The newest invitation of the user that can still be used (not used, not replaced, not
    /// expired), if any.
    pub async fn live_invitation(&self, user: &User) -> Result<Option<Invitation>> {
        Ok(self
            .store
            .live_invitation(user.id, self.clock.now())
            .await?)
    }

    /// Sends a test e-mail to `address` (checks the mail set-up); audited either way.
    pub async fn send_test_email(&self, actor: &Actor, address: &str) -> Result<()> {
        let email = crate::emails::test_mail(address, &self.config.enroll.organisation);
        let result = self.mailer.send(&email).await;
        let (outcome, reason) = match &result {
            Ok(()) => (
                Outcome::Success,
                format!("test mail to {address} handed over"),
            ),
            Err(e) => (
                Outcome::Failure,
                format!("test mail to {address} not sent: {e}"),
            ),
        };
        self.audit(
            actor,
            "mail.test",
            format!("mail:{address}"),
            "",
            outcome,
            reason,
        )
        .await?;
        result.map_err(|e| match e {
            crate::mail::MailError::InvalidAddress(a) => {
                Error::Invalid(Msg::new(Key::InvalidAddress).arg("address", format!("{a:?}")))
            }
            other => Error::MailFailed(other.to_string()),
        })
    }
}

/// The name to greet a user by.
pub(super) fn display_name(user: &User) -> &str {
    if user.display_name.is_empty() {
        &user.username
    } else {
        &user.display_name
    }
}
