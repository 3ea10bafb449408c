//! Security notifications (SPEC F4): a completed recovery, a new device, a removed device and an
//! account reset are mailed to the user with what happened, when and from where, and a "this
//! wasn't me" link. The link (256 random bits, stored only as SHA-256, single-use, expiring)
//! leads to a confirmation page; confirming revokes the device the event added, ends every
//! session of the user, locks self-service until an admin clears it, and tells the admins.

use crate::crypto::{ct_eq, random_token, token_hash};
use crate::model::{BlockLink, Language, Role, TokenId, TokenState, User, UserFilter, UserState};
use crate::msg::{Key, Msg};

use super::audit::Outcome;
use super::{Actor, Error, Result, Service};

/// Days a "this wasn't me" link works.
const BLOCK_LINK_DAYS: i64 = 7;
/// Purpose label of the confirmation form's keyed hash.
const BLOCK_FORM_PURPOSE: &str = "block-form";

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A recovery was completed and a new device enrolled.
    Recovery,
    /// A new device was enrolled.
    DeviceAdded,
    /// A device was removed.
    DeviceRemoved,
    /// The account was reset.
    Reset,
    /// An admin issued new recovery codes.
    CodesReissued,
}

impl Notice {
    fn as_str(self) -> &'static str {
        match self {
            Notice::Recovery => "recovery",
            Notice::DeviceAdded => "device.add",
            Notice::DeviceRemoved => "device.remove",
            Notice::Reset => "reset",
            Notice::CodesReissued => "recovery.issue",
        }
    }

    fn words(self, lang: Language) -> (&'static str, &'static str) {
        match (self, lang) {
            (Notice::Recovery, Language::En) => (
                "Your account was recovered",
                "your account was recovered with a recovery code and a new device was set up",
            ),
            (Notice::Recovery, Language::De) => (
                "Ihr Konto wurde wiederhergestellt",
                "Ihr Konto wurde mit einem Wiederherstellungscode wiederhergestellt und ein neues \
                 Gerät eingerichtet",
            ),
            (Notice::DeviceAdded, Language::En) => (
                "A new device was added",
                "a new device for one-time passcodes was added to your account",
            ),
            (Notice::DeviceAdded, Language::De) => (
                "Ein neues Gerät wurde hinzugefügt",
                "Ihrem Konto wurde ein neues Gerät für Einmalpasswörter hinzugefügt",
            ),
            (Notice::DeviceRemoved, Language::En) => (
                "A device was removed",
                "a device for one-time passcodes was removed from your account",
            ),
            (Notice::DeviceRemoved, Language::De) => (
                "Ein Gerät wurde entfernt",
                "Ein Gerät für Einmalpasswörter wurde aus Ihrem Konto entfernt",
            ),
            (Notice::Reset, Language::En) => (
                "Your account was reset",
                "your account was reset: all devices and recovery codes were deleted and a new \
                 password was set",
            ),
            (Notice::Reset, Language::De) => (
                "Ihr Konto wurde zurückgesetzt",
                "Ihr Konto wurde zurückgesetzt: alle Geräte und Wiederherstellungscodes wurden \
                 gelöscht und ein neues Passwort gesetzt",
            ),
            (Notice::CodesReissued, Language::En) => (
                "New recovery codes were issued",
                "an administrator issued new recovery codes for your account; the earlier ones \
                 no longer work",
            ),
            (Notice::CodesReissued, Language::De) => (
                "Neue Wiederherstellungscodes ausgestellt",
                "Ein Administrator hat neue Wiederherstellungscodes für Ihr Konto ausgestellt; \
                 die bisherigen gelten nicht mehr",
            ),
        }
    }
}

/// A confirmed "this wasn't me": the user's language for the answer page, and how many admins
/// were told by e-mail (the page must not claim the IT team knows when nobody could be reached).
#[derive(Debug, Clone, Copy)]
pub struct Blocked {
    pub language: Language,
    pub admins_told: usize,
}

/// What the confirmation page of a "this wasn't me" link shows.
#[derive(Debug, Clone)]
pub struct BlockView {
    pub language: Language,
    pub form_token: String,
}

impl Service {
    /// Mails the user a notification with a "this wasn't me" link. Never fails the operation that
    /// caused it: a notification that cannot be sent is logged and audited.
    pub(crate) async fn notify(
        &self,
        user: &User,
        notice: Notice,
        token: Option<TokenId>,
        source: &str,
    ) {
        if let Err(e) = self.try_notify(user, notice, token, source).await {
            tracing::warn!(user = %user.username, error = %e, "security notification not sent");
            let _ = self
                .audit_as(
                    "system",
                    source,
                    "security.notify",
                    format!("user:{}", user.username),
                    &user.username,
                    Outcome::Failure,
                    format!("{} notification not sent: {e}", notice.as_str()),
                )
                .await;
        }
    }

    async fn try_notify(
        &self,
        user: &User,
        notice: Notice,
        token: Option<TokenId>,
        source: &str,
    ) -> Result<()> {
        if user.email.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let link_token = random_token()?;
        self.store
            .insert_block_link(&BlockLink {
                id_hash: token_hash(&link_token),
                user_id: user.id,
                token_id: token,
                event: notice.as_str().to_owned(),
                created_at: now,
                expires_at: now.saturating_add(BLOCK_LINK_DAYS * 86_400),
                used_at: None,
            })
            .await?;
        let link = format!("{}/not-me/{link_token}", self.config.public_base_url());
        // In the organisation's zone, as on its pages.
        let when = crate::i18n::Tr::in_zone(user.language, self.config.server.zone()).datetime(now);
        let name = super::invite::display_name(user);
        let (subject, what) = notice.words(user.language);
        let text = match user.language {
            Language::De => format!(
                "Hallo {name},\n\n{what}.\n\nWann: {when}\nVon wo: {source}\nKonto: {username}\n\n\
                 Waren Sie das, ist nichts zu tun.\n\n\
                 Waren Sie das nicht, öffnen Sie diesen Link und bestätigen Sie dort. Das neue \
                 Gerät wird widerrufen, alle Sitzungen werden beendet, die Selbstbedienung Ihres \
                 Kontos wird gesperrt und Ihre IT informiert:\n\n    {link}\n\n\
                 Der Link gilt {BLOCK_LINK_DAYS} Tage und funktioniert einmal.\n",
                username = user.username
            ),
            Language::En => format!(
                "Hello {name},\n\n{what}.\n\nWhen: {when}\nFrom where: {source}\nAccount: {username}\n\n\
                 If this was you, there is nothing to do.\n\n\
                 If this wasn't you, open this link and confirm there. The new device is blocked, \
                 all sessions are ended, self-service for your account is locked and your IT team \
                 is told:\n\n    {link}\n\n\
                 The link works once, for {BLOCK_LINK_DAYS} days.\n",
                username = user.username
            ),
        };
        self.mailer
            .send(&crate::emails::notice(
                &user.email,
                user.language,
                &self.config.enroll.organisation,
                subject.to_owned(),
                text,
            ))
            .await
            .map_err(|e| Error::MailFailed(e.to_string()))?;
        self.audit_as(
            "system",
            source,
            "security.notify",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            format!("{} notification mailed to {}", notice.as_str(), user.email),
        )
        .await?;
        Ok(())
    }

    fn block_form_token(&self, id_hash: &str) -> Result<String> {
        Ok(self
            .keys
            .keyed_hash(BLOCK_FORM_PURPOSE, id_hash.as_bytes())?)
    }

    /// The confirmation page of a "this wasn't me" link, if it still works.
    pub async fn open_block_link(&self, link_token: &str) -> Result<BlockView> {
        let id_hash = token_hash(link_token);
        let link = self
            .store
            .block_link(&id_hash)
            .await?
            .filter(|l| l.used_at.is_none() && l.expires_at > self.clock.now())
            .ok_or(Error::NotFound("link"))?;
        let user = self
            .store
            .user(link.user_id)
            .await?
            .ok_or(Error::NotFound("link"))?;
        Ok(BlockView {
            language: user.language,
            form_token: self.block_form_token(&id_hash)?,
        })
    }

    /// "This wasn't me", confirmed: revokes the device the event added, ends all web and API
    /// sessions of the user, voids open enrollment links, locks self-service and tells the
    /// admins (every admin with an address; the notice itself is audited).
    pub async fn block_from_link(
        &self,
        source: &str,
        link_token: &str,
        form_token: &str,
    ) -> Result<Blocked> {
        let id_hash = token_hash(link_token);
        let valid = self
            .keys
            .keyed_hash_candidates(BLOCK_FORM_PURPOSE, id_hash.as_bytes())
            .iter()
            .any(|c| ct_eq(c.as_bytes(), form_token.as_bytes()));
        if !valid {
            return Err(Error::Forbidden(Msg::new(Key::FormInvalid)));
        }
        let link = self
            .store
            .use_block_link(&id_hash, self.clock.now())
            .await?
            .ok_or(Error::NotFound("link"))?;
        let user = self
            .store
            .user(link.user_id)
            .await?
            .ok_or(Error::NotFound("link"))?;
        let mut revoked = String::from("no device to revoke");
        if let Some(id) = link.token_id
            && let Some(t) = self.store.token(id).await?
            && t.user_id == user.id
        {
            self.store
                .update_token(t.id, &t.name, TokenState::Revoked)
                .await?;
            revoked = format!("device {} ({}) revoked", t.serial, t.name);
        }
        self.store.delete_sessions_of(user.id).await?;
        self.store.delete_web_sessions_of(user.id, "").await?;
        self.store.supersede_invitations(user.id).await?;
        self.store.set_self_service_locked(user.id, true).await?;
        let reason = format!(
            "\"this wasn't me\" after {}: {revoked}; all sessions ended; self-service locked \
             until an admin clears it",
            link.event
        );
        self.audit_as(
            &format!("self:{}", user.username),
            source,
            "security.blocked",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            reason.clone(),
        )
        .await?;
        let admins_told = self.tell_admins(&user, &reason, source).await;
        Ok(Blocked {
            language: user.language,
            admins_told,
        })
    }

    /// Every active admin with an e-mail address, all pages of the user list.
    async fn admins_with_address(&self) -> Result<Vec<User>> {
        const PAGE: i64 = 500;
        let mut admins = Vec::new();
        let mut offset = 0;
        loop {
            let (page, _) = self
                .store
                .list_users("", UserFilter::All, 0, PAGE, offset)
                .await?;
            let n = i64::try_from(page.len()).unwrap_or(PAGE);
            admins.extend(page.into_iter().filter(|a| {
                a.role == Role::Admin && !a.email.is_empty() && a.state == UserState::Active
            }));
            if n < PAGE {
                return Ok(admins);
            }
            offset += n;
        }
    }

    /// Mails every admin with an address and audits who was told (or that nobody could be).
    /// Failures are logged and audited, never block the caller. Returns how many were told.
    async fn tell_admins(&self, user: &User, reason: &str, source: &str) -> usize {
        let admins = match self.admins_with_address().await {
            Ok(admins) => admins,
            Err(e) => {
                tracing::warn!(error = %e, "admins not told about a blocked account");
                Vec::new()
            }
        };
        let mut told = Vec::new();
        let mut failed = Vec::new();
        for admin in &admins {
            let (subject, text) = match admin.language {
                Language::De => (
                    format!(
                        "{}: Konto {} gesperrt",
                        self.config.enroll.organisation, user.username
                    ),
                    format!(
                        "Der Benutzer {} hat über einen Sicherheitshinweis gemeldet, dass er eine \
                         Änderung nicht selbst vorgenommen hat.\n\n{reason}\n\nBitte prüfen Sie \
                         das Konto und heben Sie die Sperre der Selbstbedienung auf, wenn alles in \
                         Ordnung ist.\n",
                        user.username
                    ),
                ),
                Language::En => (
                    format!(
                        "{}: account {} blocked",
                        self.config.enroll.organisation, user.username
                    ),
                    format!(
                        "User {} reported through a security notification that a change was not \
                         theirs.\n\n{reason}\n\nPlease look at the account, and clear the \
                         self-service lock when all is well.\n",
                        user.username
                    ),
                ),
            };
            match self
                .mailer
                .send(&crate::emails::notice(
                    &admin.email,
                    admin.language,
                    &self.config.enroll.organisation,
                    subject,
                    text,
                ))
                .await
            {
                Ok(()) => told.push(admin.username.as_str()),
                Err(e) => {
                    tracing::warn!(admin = %admin.username, error = %e, "admin not told about a blocked account");
                    failed.push(admin.username.as_str());
                }
            }
        }
        let (outcome, reason) = match (told.is_empty(), failed.is_empty()) {
            (true, true) => (
                Outcome::Failure,
                "no admin could be told: no active admin has an e-mail address".to_owned(),
            ),
            (true, false) => (
                Outcome::Failure,
                format!(
                    "no admin could be told: mail to {} failed",
                    failed.join(", ")
                ),
            ),
            (false, true) => (Outcome::Success, format!("told {}", told.join(", "))),
            (false, false) => (
                Outcome::Success,
                format!(
                    "told {}; mail to {} failed",
                    told.join(", "),
                    failed.join(", ")
                ),
            ),
        };
        let n = told.len();
        if let Err(e) = self
            .audit_as(
                &format!("self:{}", user.username),
                source,
                "security.admins_notified",
                format!("user:{}", user.username),
                &user.username,
                outcome,
                reason,
            )
            .await
        {
            tracing::warn!(error = %e, "the notice to admins could not be audited");
        }
        n
    }

    /// Clears a user's self-service lock (after "this wasn't me"). Needs re-authentication.
    pub async fn clear_self_service_lock(&self, actor: &Actor, username: &str) -> Result<()> {
        let user = self.user_named(username).await?;
        actor.require_reauth(self.clock.now())?;
        self.store.set_self_service_locked(user.id, false).await?;
        self.audit(
            actor,
            "security.unlock",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            "self-service lock cleared",
        )
        .await?;
        Ok(())
    }
}
