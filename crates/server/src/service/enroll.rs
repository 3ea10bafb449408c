//! Self-enrollment by e-mail (SPEC F1): the steps behind the enrollment pages (open, start, key,
//! first code, finish). Invitations are in `invite.rs`, recovery codes in `recovery.rs`.
//!
//! The link token is the capability; only its SHA-256 is stored. Every step
//! reads the invitation row again, so the enrollment's state lives in the database and any node
//! serves any step. Checks that race (attaching the pending token, using the link, counting wrong
//! codes) are single conditional store updates. Link tokens, seeds and recovery codes never reach
//! a log, an error message or the audit.

use crate::msg::{Key, Msg};
use tessera_otp::{KeyUri, UriKind};

use crate::clock::UnixTime;
use crate::crypto::{ct_eq, random_bytes, token_hash};
use crate::model::{Invitation, Language, TokenKind, TokenState, User, UserState};

use super::audit::Outcome;
use super::tokens::validate_token_name;
use super::{Actor, AddToken, Error, ErrorCode, Principal, Result, Service};

/// Purpose label of the form tokens' keyed hash (its own subkey).
const FORM_PURPOSE: &str = "enroll-form";

/// Why an enrollment link no longer works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkProblem {
    /// The enrollment was completed with this link.
    Used,
    /// The link's time ran out.
    Expired,
    /// A newer invitation replaced it.
    Superseded,
    /// Too many wrong first codes.
    Ended,
}

impl LinkProblem {
    pub fn code(self) -> ErrorCode {
        match self {
            LinkProblem::Used => ErrorCode::EnrollmentUsed,
            LinkProblem::Expired => ErrorCode::EnrollmentExpired,
            LinkProblem::Superseded => ErrorCode::EnrollmentSuperseded,
            LinkProblem::Ended => ErrorCode::EnrollmentEnded,
        }
    }

    pub fn key(self) -> Key {
        match self {
            LinkProblem::Used => Key::EnrollmentUsed,
            LinkProblem::Expired => Key::EnrollmentExpired,
            LinkProblem::Superseded => Key::EnrollmentSuperseded,
            LinkProblem::Ended => Key::EnrollmentEnded,
        }
    }

    /// The message in English (API, CLI, log).
    pub fn message(self) -> String {
        Msg::new(self.key()).english()
    }
}

/// The phone the user says they enroll on: picks the store hint and the token's default name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Android,
    Iphone,
    Other,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Android => "android",
            Device::Iphone => "iphone",
            Device::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Device> {
        match s {
            "android" => Some(Device::Android),
            "iphone" => Some(Device::Iphone),
            "other" => Some(Device::Other),
            _ => None,
        }
    }

    /// The phone a browser's User-Agent names, if it is a phone at all.
    pub fn from_user_agent(ua: &str) -> Option<Device> {
        if ua.contains("Android") {
            Some(Device::Android)
        } else if ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod") {
            Some(Device::Iphone)
        } else if ua.contains("Mobile") {
            Some(Device::Other)
        } else {
            None
        }
    }

    /// The token's name until the user picks one.
    fn default_token_name(self, lang: Language) -> &'static str {
        match (self, lang) {
            (Device::Android, Language::De) => "Android-Smartphone",
            (Device::Android, Language::En) => "Android phone",
            (Device::Iphone, _) => "iPhone",
            (Device::Other, _) => "Authenticator",
        }
    }
}

/// What the enrollment pages show about an open invitation.
#[derive(Debug, Clone)]
pub struct EnrollmentView {
    pub username: String,
    pub display_name: String,
    pub language: Language,
    pub organisation: String,
    pub expires_at: UnixTime,
    /// The user started: a pending token exists.
    pub started: bool,
    pub token_name: Option<String>,
    /// Wrong first codes still allowed before the link ends.
    pub attempts_left: u64,
    /// The user has a password in Tessera (the last page says "your password, as before" only
    /// then).
    pub has_password: bool,
    /// A fresh form token for this page's forms (see [`Service::check_form_token`]).
    pub form_token: String,
}

/// The key of the pending token, for the QR and direct-link pages. `Debug` shows no secret.
pub struct EnrollmentKey {
    pub view: EnrollmentView,
    pub issuer: String,
    pub account: String,
    pub otpauth_uri: String,
    pub secret_grouped: String,
    pub qr_svg: String,
    pub digits: u32,
    pub period: u64,
}

impl std::fmt::Debug for EnrollmentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentKey")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// A completed enrollment; the recovery codes are in this value only. `Debug` hides them.
pub struct EnrollmentDone {
    pub view: EnrollmentView,
    pub token_name: String,
    /// Empty when recovery is off for the user.
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for EnrollmentDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentDone")
            .field("token_name", &self.token_name)
            .field("recovery_codes", &self.recovery_codes.len())
            .finish_non_exhaustive()
    }
}

/// What a first code gave.
#[derive(Debug)]
pub enum FirstCode {
    /// The token is active and the link used.
    Activated(EnrollmentDone),
    /// Not accepted; the user may try again (`throttled`: only after the app shows a new code).
    Rejected {
        view: EnrollmentView,
        throttled: bool,
    },
}

impl Service {
    fn self_service(user: &User) -> Actor {
        Actor {
            principal: Principal::SelfService {
                username: user.username.clone(),
            },
            source: "enroll-link".to_owned(),
        }
    }

    /// The invitation behind a link token, if it still works, with its user.
    pub(super) async fn open_invitation(&self, link_token: &str) -> Result<(Invitation, User)> {
        let unknown = Error::NotFound("enrollment link");
        let Some(inv) = self.store.invitation(&token_hash(link_token)).await? else {
            return Err(unknown);
        };
        let Some(user) = self.store.user(inv.user_id).await? else {
            return Err(unknown);
        };
        let problem = if inv.used_at.is_some() {
            Some(LinkProblem::Used)
        } else if inv.superseded || user.state != UserState::Active {
            Some(LinkProblem::Superseded)
        } else if u64::try_from(inv.failed_attempts).unwrap_or(u64::MAX)
            >= self.config.enroll.max_failed_codes
        {
            Some(LinkProblem::Ended)
        } else if inv.expires_at <= self.clock.now() {
            Some(LinkProblem::Expired)
        } else {
            None
        };
        match problem {
            Some(p) => Err(Error::EnrollmentLink(p)),
            None => Ok((inv, user)),
        }
    }

    async fn view_of(&self, inv: &Invitation, user: &User) -> Result<EnrollmentView> {
        let token_name = match inv.token_id {
            Some(id) => self.store.token(id).await?.map(|t| t.name),
            None => None,
        };
        let failed = u64::try_from(inv.failed_attempts).unwrap_or(u64::MAX);
        Ok(EnrollmentView {
            username: user.username.clone(),
            display_name: super::invite::display_name(user).to_owned(),
            language: user.language,
            organisation: self.config.enroll.organisation.clone(),
            expires_at: inv.expires_at,
            started: token_name.is_some(),
            token_name,
            attempts_left: self.config.enroll.max_failed_codes.saturating_sub(failed),
            has_password: user.password_hash.is_some(),
            form_token: self.form_token(&inv.id_hash)?,
        })
    }

    /// A random form token bound to this invitation by a keyed hash: `nonce.mac`. The link token
    /// already is a capability; this keeps a form from being replayed from another page load's
    /// leftovers and ties every POST to a page this server rendered.
    fn form_token(&self, id_hash: &str) -> Result<String> {
        let nonce = data_encoding::HEXLOWER.encode(&random_bytes(16)?);
        let mac = self
            .keys
            .keyed_hash(FORM_PURPOSE, format!("{id_hash}/{nonce}").as_bytes())?;
        Ok(format!("{nonce}.{mac}"))
    }

    fn check_form_token(&self, id_hash: &str, form_token: &str) -> Result<()> {
        let ok = form_token.split_once('.').is_some_and(|(nonce, mac)| {
            self.keys
                .keyed_hash_candidates(FORM_PURPOSE, format!("{id_hash}/{nonce}").as_bytes())
                .iter()
                .any(|c| ct_eq(c.as_bytes(), mac.as_bytes()))
        });
        if ok {
            Ok(())
        } else {
            Err(Error::Forbidden(Msg::new(Key::FormInvalid)))
        }
    }

    /// The landing page's view of an open link.
    pub async fn open_enrollment(&self, link_token: &str) -> Result<EnrollmentView> {
        let (inv, user) = self.open_invitation(link_token).await?;
        self.view_of(&inv, &user).await
    }

    /// Starts the enrollment: adds a pending TOTP token for the user (once; a second start, also
    /// on another node, finds the first one's token).
    pub async fn start_enrollment(
        &self,
        link_token: &str,
        form_token: &str,
        device: Device,
    ) -> Result<EnrollmentView> {
        let (inv, user) = self.open_invitation(link_token).await?;
        self.check_form_token(&inv.id_hash, form_token)?;
        if inv.token_id.is_none() {
            let created = self
                .add_token(
                    &Self::self_service(&user),
                    &user.username,
                    AddToken {
                        kind: Some(TokenKind::Totp),
                        name: Some(device.default_token_name(user.language).to_owned()),
                        ..AddToken::default()
                    },
                )
                .await?;
            let id = created.token.id;
            if !self.store.attach_invitation_token(&inv.id_hash, id).await? {
                // Another request attached its token first (or the link closed): drop ours.
                self.store.delete_token(id).await?;
            }
        }
        let (inv, user) = self.open_invitation(link_token).await?;
        self.view_of(&inv, &user).await
    }

    /// The pending token's key for the QR and direct-link pages. Before the start, `token_state`.
    pub async fn enrollment_key(&self, link_token: &str) -> Result<EnrollmentKey> {
        let (inv, user) = self.open_invitation(link_token).await?;
        let token = match inv.token_id {
            Some(id) => self.store.token(id).await?,
            None => None,
        };
        let Some(token) = token.filter(|t| t.state == TokenState::Pending) else {
            return Err(Error::TokenState(Msg::new(Key::EnrollmentNotStarted)));
        };
        let secret = self.token_secret(&token)?;
        let uri = KeyUri {
            kind: UriKind::Totp {
                period: token.period,
            },
            issuer: Some(self.config.issuer()),
            account: user.username.clone(),
            secret: secret.clone(),
            algorithm: token.algorithm,
            digits: token.digits,
        }
        .to_uri();
        let qr_svg =
            crate::qr::svg(&uri, 264).map_err(|_| Error::Invalid(Msg::new(Key::KeyUriTooLong)))?;
        Ok(EnrollmentKey {
            view: self.view_of(&inv, &user).await?,
            issuer: self.config.issuer(),
            account: user.username.clone(),
            secret_grouped: secret.to_base32_grouped(),
            otpauth_uri: uri,
            qr_svg,
            digits: token.digits,
            period: token.period,
        })
    }

    /// The pending token's QR code as PNG (for saving, and for decoders in tests).
    pub async fn enrollment_qr_png(&self, link_token: &str) -> Result<Vec<u8>> {
        let key = self.enrollment_key(link_token).await?;
        crate::qr::png(&key.otpauth_uri, 400)
            .map_err(|_| Error::Invalid(Msg::new(Key::KeyUriTooLong)))
    }

    /// Names the token and checks the first code. Only a correct code activates the token (the
    /// code is consumed); then the link is used and, when recovery is on for the user, ten
    /// recovery codes are issued and returned this once. Wrong codes count against the link.
    pub async fn submit_first_code(
        &self,
        link_token: &str,
        form_token: &str,
        name: &str,
        code: &str,
    ) -> Result<FirstCode> {
        let (inv, user) = self.open_invitation(link_token).await?;
        self.check_form_token(&inv.id_hash, form_token)?;
        let token = match inv.token_id {
            Some(id) => self.store.token(id).await?,
            None => None,
        };
        let Some(token) = token.filter(|t| t.state == TokenState::Pending) else {
            return Err(Error::TokenState(Msg::new(Key::EnrollmentNotStarted)));
        };
        let name = validate_token_name(name)?;
        if name != token.name {
            self.store
                .update_token(token.id, &name, TokenState::Pending)
                .await?;
        }
        let actor = Self::self_service(&user);
        let target = format!("user:{}", user.username);
        match self.verify_first_code(&actor, token.id, code).await {
            Ok(_) => {}
            Err(Error::Throttled) => {
                return Ok(FirstCode::Rejected {
                    view: self.view_of(&inv, &user).await?,
                    throttled: true,
                });
            }
            // Not a code at all (letters, empty): nothing was checked, nothing counted.
            Err(Error::Invalid(_)) => {
                return Ok(FirstCode::Rejected {
                    view: self.view_of(&inv, &user).await?,
                    throttled: false,
                });
            }
            Err(Error::InvalidCode) => {
                let failed = self.store.record_invitation_failure(&inv.id_hash).await?;
                if u64::try_from(failed).unwrap_or(u64::MAX) >= self.config.enroll.max_failed_codes
                {
                    // The link ends; the pending seed goes with it.
                    self.store.delete_token(token.id).await?;
                    self.audit(
                        &actor,
                        "enroll.end",
                        target,
                        &user.username,
                        Outcome::Failure,
                        format!("{failed} wrong first codes: link void, pending token deleted"),
                    )
                    .await?;
                    return Err(Error::EnrollmentLink(LinkProblem::Ended));
                }
                let (inv, user) = self.open_invitation(link_token).await?;
                return Ok(FirstCode::Rejected {
                    view: self.view_of(&inv, &user).await?,
                    throttled: false,
                });
            }
            Err(e) => return Err(e),
        }
        self.store
            .use_invitation(&inv.id_hash, self.clock.now())
            .await?;
        self.after_enrollment(&actor, &inv.id_hash, &user, token.id)
            .await?;
        let recovery_codes = if self.recovery_enabled_for(&user).await? {
            self.issue_recovery_codes(&actor, &user).await?
        } else {
            Vec::new()
        };
        self.audit(
            &actor,
            "enroll.complete",
            target,
            &user.username,
            Outcome::Success,
            format!(
                "token {} ({name}) active; {} recovery codes",
                token.serial,
                recovery_codes.len()
            ),
        )
        .await?;
        let mut view = self.view_of(&inv, &user).await?;
        view.started = true;
        Ok(FirstCode::Activated(EnrollmentDone {
            view,
            token_name: name,
            recovery_codes,
        }))
    }

    /// The last page after the user confirmed saving the recovery codes: only for a used link.
    pub async fn finished_enrollment(
        &self,
        link_token: &str,
        form_token: &str,
    ) -> Result<EnrollmentView> {
        let unknown = Error::NotFound("enrollment link");
        let inv = self
            .store
            .invitation(&token_hash(link_token))
            .await?
            .ok_or(unknown)?;
        self.check_form_token(&inv.id_hash, form_token)?;
        if inv.used_at.is_none() {
            return Err(Error::TokenState(Msg::new(Key::EnrollmentNotComplete)));
        }
        let user = self
            .store
            .user(inv.user_id)
            .await?
            .ok_or(Error::NotFound("enrollment link"))?;
        self.view_of(&inv, &user).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_recognised_by_user_agent() {
        let android = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Mobile Safari";
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148";
        let desktop = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131 Safari";
        assert_eq!(Device::from_user_agent(android), Some(Device::Android));
        assert_eq!(Device::from_user_agent(iphone), Some(Device::Iphone));
        assert_eq!(Device::from_user_agent(desktop), None);
    }
}
