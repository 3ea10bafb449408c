//! The web pages' side of the service (SPEC F2, F5): login through the validation policy,
//! server-side sessions with idle and absolute timeouts, re-authentication, and the portal's
//! self-service operations.
//!
//! The login goes through the same checks as the validate API (`decide`): source rate limit,
//! account and token throttling, code before password, e-mail/SMS challenges. Every portal
//! operation on a token checks here that the token belongs to the logged-in user; handlers pass
//! ids from forms, never owners.

use crate::clock::UnixTime;
use crate::crypto::{random_token, token_hash};
use crate::model::{
    AppId, AppMode, AppState, Application, AuditEntry, AuditFilter, Invitation, Language, Password,
    Role, Token, TokenId, TokenKind, TokenState, User, UserState, WebSession,
};

use super::attempts::Front;
use super::audit::Outcome;
use super::tokens::TokenInfo;
use super::validate::{ValidateRequest, Verdict};
use super::{Actor, Error, Principal, Result, Service};

/// How long an enrollment link made at login or from the portal works: long enough to set up
/// a phone, short because nobody mailed it and the user is right there.
const SELF_INVITE_SECS: i64 = 30 * 60;

/// What a login attempt led to.
pub enum WebLogin {
    /// Logged in. `cookie` is the session's only copy of its id.
    Session { cookie: String, user: User },
    /// A code was sent by e-mail or SMS; the answer comes with this transaction id.
    Challenge {
        transaction_id: String,
        kind: TokenKind,
    },
    /// Password right, but the account requires a token and has none: the path of a fresh,
    /// short-lived enrollment link.
    Enroll { path: String },
    /// Password right, but no device of the user can give a code any more (e.g. the phone
    /// number of the SMS device was removed) and the account needs one: the way back is an
    /// enrollment link from the IT, never the password alone. `invited_until`: a link was sent
    /// and works until then; `None`: the user must ask for one.
    NoDevice { invited_until: Option<UnixTime> },
}

impl std::fmt::Debug for WebLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebLogin::Session { user, .. } => write!(f, "Session({})", user.username),
            WebLogin::Challenge { kind, .. } => write!(f, "Challenge({kind})"),
            WebLogin::Enroll { .. } => f.write_str("Enroll"),
            WebLogin::NoDevice { .. } => f.write_str("NoDevice"),
        }
    }
}

/// The logged-in person behind a web request.
#[derive(Clone)]
pub struct WebUser {
    pub user: User,
    /// The session id's hash (never the id itself).
    pub session_hash: String,
    /// The value every form of this session must carry.
    pub csrf: String,
    pub reauth_until: UnixTime,
    pub source: String,
}

impl std::fmt::Debug for WebUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebUser")
            .field("username", &self.user.username)
            .field("reauth_until", &self.reauth_until)
            .finish_non_exhaustive()
    }
}

impl WebUser {
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// The actor for service calls: an admin acts as admin (with the session's re-authentication),
    /// everyone else only on their own account.
    pub fn actor(&self) -> Actor {
        let principal = if self.is_admin() {
            Principal::Admin {
                id: self.user.id,
                username: self.user.username.clone(),
                reauth_until: self.reauth_until,
            }
        } else {
            Principal::SelfService {
                username: self.user.username.clone(),
            }
        };
        Actor {
            principal,
            source: self.source.clone(),
        }
    }
}

/// The validation policy's view of the login page: an application checking password and code.
fn web_app() -> Application {
    Application {
        id: AppId(0),
        name: "web-login".into(),
        key_prefix: String::new(),
        key_hash: String::new(),
        mode: AppMode::PasswordAndOtp,
        // Users who never had a token and need none log in with the password.
        passthrough: true,
        state: AppState::Active,
        created_at: 0,
        revoked_at: None,
    }
}

impl Service {
    /// Logs a person in to the web pages. Any failure is `invalid_credentials` for the client
    /// (no enumeration); the audit gets the reason.
    pub async fn web_login(
        &self,
        source: &str,
        username: &str,
        password: &str,
        code: &str,
        transaction_id: &str,
    ) -> Result<WebLogin> {
        let username = username.trim();
        if username.is_empty() || username.chars().count() > 256 {
            return Err(Error::InvalidCredentials);
        }
        if transaction_id.is_empty()
            && let Some(done) = self.login_to_enroll(source, username, password).await?
        {
            return Ok(done);
        }
        let req = ValidateRequest {
            username: username.to_owned(),
            password: Some(Password::new(password)),
            otp: (!code.trim().is_empty()).then(|| Password::new(code.trim())),
            pass: None,
            transaction_id: (!transaction_id.is_empty()).then(|| Password::new(transaction_id)),
        };
        let decision = self
            .decide(&web_app(), source, username, req, Front::Person)
            .await?;
        if decision.response.result != Verdict::Accept {
            // Failures change throttling state: read it fresh next time.
            self.user_cache.forget(username);
        }
        let target = match &decision.serial {
            Some(serial) => format!("token:{serial}"),
            None => format!("user:{username}"),
        };
        match decision.response.result {
            Verdict::Reject => {
                self.audit_as(
                    "anonymous",
                    source,
                    "web.login",
                    target,
                    username,
                    Outcome::Failure,
                    decision.reason,
                )
                .await?;
                if decision.replayed {
                    return Err(Error::CodeJustUsed);
                }
                Err(Error::InvalidCredentials)
            }
            Verdict::Challenge => {
                self.audit_as(
                    "anonymous",
                    source,
                    "web.login.challenge",
                    target,
                    username,
                    Outcome::Success,
                    decision.reason,
                )
                .await?;
                match (
                    decision.response.transaction_id,
                    decision.response.challenge_kind,
                ) {
                    (Some(transaction_id), Some(kind)) => Ok(WebLogin::Challenge {
                        transaction_id,
                        kind,
                    }),
                    _ => Err(Error::InvalidCredentials),
                }
            }
            Verdict::Accept => {
                let user = self.user_named(username).await?;
                let cookie = self.open_web_session(&user).await?;
                self.audit_as(
                    &format!("user:{}", user.username),
                    source,
                    "web.login",
                    target,
                    &user.username,
                    Outcome::Success,
                    decision.reason,
                )
                .await?;
                Ok(WebLogin::Session { cookie, user })
            }
        }
    }

    /// Logins that end before any code: an active user who must use a token but never had one
    /// (SPEC F1, last sentence; admins too under `auth.admin_second_factor`) is led into
    /// enrollment after the right password; a user who needs a second factor but whose devices
    /// can no longer give a code learns, after the right password, that the way back is the
    /// enrollment link (SPEC F3). `None` in every other situation. A user whose tokens were
    /// revoked, disabled or deleted enrolls a replacement only through recovery or an admin's
    /// link, never on the password alone.
    async fn login_to_enroll(
        &self,
        source: &str,
        username: &str,
        password: &str,
    ) -> Result<Option<WebLogin>> {
        let Some((user, tokens)) = self.store.user_with_tokens(username).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let admin_needs = user.role == Role::Admin && self.config.auth.admin_second_factor;
        // A locked token is a device still: it works again after the wait or an unlock.
        let has_device = tokens
            .iter()
            .any(|t| t.works_for(&user) || t.state == TokenState::Locked);
        if user.state != UserState::Active
            || !(user.needs_second_factor() || admin_needs)
            || has_device
            || user.throttled_until > now
            || self.stranger_budget_spent(Front::Person, username, source)
            || !self.source_allowed(source)
        {
            return Ok(None);
        }
        let first_enrollment = (user.otp_required || admin_needs)
            && user.second_factor_at.is_none()
            && !tokens.iter().any(|t| t.state == TokenState::Active)
            && !self
                .store
                .recovery_policy(user.id)
                .await?
                .self_service_locked;
        // The account's failure counter applies, as in validation.
        if !self.check_validate_password(&user, password).await? {
            self.audit_as(
                "anonymous",
                source,
                "web.login",
                format!("user:{}", user.username),
                &user.username,
                Outcome::Failure,
                if first_enrollment {
                    "enrollment required, but wrong password"
                } else {
                    "no working device, and wrong password"
                },
            )
            .await?;
            return Err(Error::InvalidCredentials);
        }
        let actor = Actor {
            principal: Principal::SelfService {
                username: user.username.clone(),
            },
            source: source.to_owned(),
        };
        if !first_enrollment {
            let invited_until = self.live_invitation(&user).await?.map(|i| i.expires_at);
            self.audit(
                &actor,
                "web.login",
                format!("user:{}", user.username),
                &user.username,
                Outcome::Failure,
                match invited_until {
                    Some(_) => "password right, but no working device: told to use the enrollment link sent",
                    None => "password right, but no working device: told to ask for an enrollment link",
                },
            )
            .await?;
            return Ok(Some(WebLogin::NoDevice { invited_until }));
        }
        let path = self.self_invitation(&actor, &user).await?;
        self.audit(
            &actor,
            "web.login",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            "password accepted; no token yet, led into enrollment",
        )
        .await?;
        Ok(Some(WebLogin::Enroll { path }))
    }

    /// A short-lived enrollment link for the user themself, not mailed: `/enroll/{token}`.
    async fn self_invitation(&self, actor: &Actor, user: &User) -> Result<String> {
        let now = self.clock.now();
        let link_token = random_token()?;
        self.store
            .insert_invitation(&Invitation {
                id_hash: token_hash(&link_token),
                user_id: user.id,
                created_at: now,
                expires_at: now.saturating_add(SELF_INVITE_SECS),
                used_at: None,
                superseded: false,
                failed_attempts: 0,
                token_id: None,
            })
            .await?;
        self.audit(
            actor,
            "enroll.invite",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            "link for the user themself, valid 30 minutes",
        )
        .await?;
        Ok(format!("/enroll/{link_token}"))
    }

    async fn open_web_session(&self, user: &User) -> Result<String> {
        let now = self.clock.now();
        let cookie = random_token()?;
        let absolute = i64::try_from(self.config.auth.session_absolute_hours.saturating_mul(3600))
            .unwrap_or(i64::MAX);
        self.store
            .insert_web_session(&WebSession {
                id_hash: token_hash(&cookie),
                user_id: user.id,
                created_at: now,
                last_seen_at: now,
                expires_at: now.saturating_add(absolute),
                // Logging in does not elevate: sensitive changes ask for the password again.
                reauth_until: 0,
                csrf_secret: random_token()?,
            })
            .await?;
        Ok(cookie)
    }

    /// The person behind a session cookie, or `unauthenticated` (unknown, expired, idle too
    /// long, or the user disabled). Each use moves the idle timeout on.
    pub async fn web_session(&self, cookie: &str, source: &str) -> Result<WebUser> {
        let hash = token_hash(cookie);
        let session = self
            .store
            .web_session(&hash)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let now = self.clock.now();
        if session.expires_at <= now || session.last_seen_at <= self.session_idle_since(now) {
            self.store.delete_web_session(&hash).await?;
            return Err(Error::Unauthenticated);
        }
        let user = self
            .store
            .user(session.user_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if user.state != UserState::Active {
            self.store.delete_web_session(&hash).await?;
            return Err(Error::Unauthenticated);
        }
        self.store.touch_web_session(&hash, now).await?;
        Ok(WebUser {
            user,
            session_hash: hash,
            csrf: session.csrf_secret,
            reauth_until: session.reauth_until,
            source: source.to_owned(),
        })
    }

    /// Ends the session.
    pub async fn web_logout(&self, me: &WebUser) -> Result<()> {
        self.store.delete_web_session(&me.session_hash).await?;
        self.audit(
            &me.actor(),
            "web.logout",
            format!("user:{}", me.user.username),
            &me.user.username,
            Outcome::Success,
            "",
        )
        .await?;
        Ok(())
    }

    /// Whether the session was re-authenticated recently enough for a sensitive change.
    pub fn web_reauth_valid(&self, me: &WebUser) -> bool {
        me.reauth_until > self.clock.now()
    }

    pub(super) fn require_web_reauth(&self, me: &WebUser) -> Result<()> {
        if self.web_reauth_valid(me) {
            Ok(())
        } else {
            Err(Error::ReauthRequired)
        }
    }

    /// Re-authentication on the web: the password again, counted against the account like a
    /// login. Grants `auth.reauth_minutes` of elevated rights to this session.
    pub async fn web_reauthenticate(&self, me: &WebUser, password: &str) -> Result<UnixTime> {
        let user = self
            .store
            .user(me.user.id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let now = self.clock.now();
        let ok =
            user.throttled_until <= now && self.check_validate_password(&user, password).await?;
        if !ok {
            self.user_cache.forget(&user.username);
            self.audit(
                &me.actor(),
                "auth.reauth",
                format!("user:{}", user.username),
                &user.username,
                Outcome::Failure,
                "wrong password or account throttled",
            )
            .await?;
            return Err(Error::InvalidCredentials);
        }
        let secs =
            i64::try_from(self.config.auth.reauth_minutes.saturating_mul(60)).unwrap_or(i64::MAX);
        let until = now.saturating_add(secs);
        self.store
            .set_web_session_reauth(&me.session_hash, until)
            .await?;
        self.audit(
            &me.actor(),
            "auth.reauth",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            format!("elevated for {} minutes", self.config.auth.reauth_minutes),
        )
        .await?;
        Ok(until)
    }

    /// Keeps a sensitive form that needs re-authentication with the session (sealed under the
    /// server key, bound to this session), so the password page need not repeat it: the page
    /// sends only the password, and [`Service::web_take_form`] gives the form back. A newer
    /// form replaces an older one.
    pub async fn web_hold_form(
        &self,
        me: &WebUser,
        action: &str,
        fields: Vec<(String, String)>,
    ) -> Result<()> {
        let pending = PendingForm {
            action: action.to_owned(),
            at: self.clock.now(),
            fields,
        };
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(&pending).unwrap_or_default());
        let sealed = self.keys.seal(&pending_aad(&me.session_hash), &plain)?;
        self.store
            .set_web_session_pending(&me.session_hash, Some(&sealed))
            .await?;
        Ok(())
    }

    /// The form kept by [`Service::web_hold_form`] for `action`, once: `None` when nothing
    /// waits, it was for another page, or it is older than [`PENDING_FORM_SECS`].
    pub async fn web_take_form(
        &self,
        me: &WebUser,
        action: &str,
    ) -> Result<Option<Vec<(String, String)>>> {
        let Some(sealed) = self.store.web_session_pending(&me.session_hash).await? else {
            return Ok(None);
        };
        if !self
            .store
            .clear_web_session_pending(&me.session_hash, &sealed)
            .await?
        {
            return Ok(None);
        }
        Ok(self.open_form(me, action, &sealed))
    }

    /// Like [`Service::web_take_form`], but leaves the form waiting (for the page after a
    /// wrong password, which shows again what is being confirmed).
    pub async fn web_peek_form(
        &self,
        me: &WebUser,
        action: &str,
    ) -> Result<Option<Vec<(String, String)>>> {
        let sealed = self.store.web_session_pending(&me.session_hash).await?;
        Ok(sealed.and_then(|sealed| self.open_form(me, action, &sealed)))
    }

    fn open_form(
        &self,
        me: &WebUser,
        action: &str,
        sealed: &[u8],
    ) -> Option<Vec<(String, String)>> {
        let plain = self
            .keys
            .open(&pending_aad(&me.session_hash), sealed)
            .ok()?;
        let pending = serde_json::from_slice::<PendingForm>(&plain).ok()?;
        let fresh = self.clock.now().saturating_sub(pending.at) <= PENDING_FORM_SECS;
        (pending.action == action && fresh).then_some(pending.fields)
    }

    /// The user's own tokens (the portal's device list).
    pub async fn my_devices(&self, me: &WebUser) -> Result<Vec<TokenInfo>> {
        let mut tokens = self.store.tokens_of(me.user.id).await?;
        tokens.retain(|t| t.state != TokenState::Pending);
        Ok(tokens.iter().map(|t| TokenInfo::new(t, &me.user)).collect())
    }

    /// A token of the logged-in user. Another user's token is `not_found`, exactly like a token
    /// that does not exist, and the attempt is audited.
    pub(super) async fn my_token(&self, me: &WebUser, id: TokenId) -> Result<Token> {
        match self.store.token(id).await? {
            Some(t) if t.user_id == me.user.id => Ok(t),
            Some(t) => {
                self.audit(
                    &me.actor(),
                    "portal.refused",
                    format!("token:{}", t.serial),
                    &me.user.username,
                    Outcome::Failure,
                    "token of another user",
                )
                .await?;
                Err(Error::NotFound("token"))
            }
            None => Err(Error::NotFound("token")),
        }
    }

    pub async fn rename_my_device(&self, me: &WebUser, id: TokenId, name: &str) -> Result<()> {
        self.my_token(me, id).await?;
        self.rename_token(&me.actor(), id, name).await?;
        Ok(())
    }

    /// Removes one of the user's tokens; needs a fresh re-authentication.
    pub async fn remove_my_device(&self, me: &WebUser, id: TokenId) -> Result<()> {
        let token = self.my_token(me, id).await?;
        self.require_web_reauth(me)?;
        if !self.store.delete_token(id).await? {
            return Err(Error::NotFound("token"));
        }
        self.audit(
            &me.actor(),
            "token.delete",
            format!("token:{}", token.serial),
            &me.user.username,
            Outcome::Success,
            format!("{} {:?} removed by its owner", token.kind, token.name),
        )
        .await?;
        self.notify(
            &me.user,
            super::notify::Notice::DeviceRemoved,
            None,
            &me.source,
        )
        .await;
        Ok(())
    }

    /// An enrollment link for another device of the user; needs a fresh re-authentication.
    pub async fn add_my_device(&self, me: &WebUser) -> Result<String> {
        self.require_web_reauth(me)?;
        self.self_invitation(&me.actor(), &me.user).await
    }

    /// Unused recovery codes, and how many were issued.
    pub async fn my_recovery_codes(&self, me: &WebUser) -> Result<(usize, usize)> {
        let codes = self.store.recovery_codes_of(me.user.id).await?;
        let left = codes.iter().filter(|c| c.used_at.is_none()).count();
        Ok((left, codes.len()))
    }

    /// New recovery codes (the old ones void); needs a fresh re-authentication. Shown once.
    pub async fn regenerate_my_recovery_codes(&self, me: &WebUser) -> Result<Vec<String>> {
        self.require_web_reauth(me)?;
        self.issue_recovery_codes(&me.actor(), &me.user).await
    }

    /// Changes the user's own password; the current one is required. Ends the user's other
    /// sessions.
    pub async fn change_my_password(&self, me: &WebUser, current: &str, new: &str) -> Result<()> {
        let mut user = self
            .store
            .user(me.user.id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if !self.check_validate_password(&user, current).await? {
            self.audit(
                &me.actor(),
                "user.passwd",
                format!("user:{}", user.username),
                &user.username,
                Outcome::Failure,
                "wrong current password",
            )
            .await?;
            return Err(Error::InvalidCredentials);
        }
        self.validate_password(new)?;
        user.password_hash = Some(self.hasher.hash(new).await?);
        user.updated_at = self.clock.now();
        if !self.store.update_user(&user).await? {
            return Err(Error::NotFound("user"));
        }
        self.store.delete_sessions_of(user.id).await?;
        self.store
            .delete_web_sessions_of(user.id, &me.session_hash)
            .await?;
        self.audit(
            &me.actor(),
            "user.passwd",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            "password changed by the user; other sessions ended",
        )
        .await?;
        Ok(())
    }

    pub async fn set_my_language(&self, me: &WebUser, language: Language) -> Result<()> {
        let mut user = self
            .store
            .user(me.user.id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if user.language == language {
            return Ok(());
        }
        user.language = language;
        user.updated_at = self.clock.now();
        self.store.update_user(&user).await?;
        self.audit(
            &me.actor(),
            "user.set",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            format!("language {language}"),
        )
        .await?;
        Ok(())
    }

    /// The user's recent security events, newest first.
    pub async fn my_events(&self, me: &WebUser, limit: i64) -> Result<Vec<AuditEntry>> {
        Ok(self
            .store
            .list_audit(&AuditFilter {
                username: Some(me.user.username.to_lowercase()),
                limit: limit.clamp(1, 100),
                ..AuditFilter::default()
            })
            .await?)
    }
}

/// How long a form waits for re-authentication: 10 minutes.
pub const PENDING_FORM_SECS: i64 = 600;

/// A sensitive form waiting for re-authentication (see [`Service::web_hold_form`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct PendingForm {
    action: String,
    at: UnixTime,
    fields: Vec<(String, String)>,
}

/// Binds a waiting form to its session: a sealed form moved to another session row does not open.
fn pending_aad(session_hash: &str) -> Vec<u8> {
    format!("tessera web pending form v1:{session_hash}").into_bytes()
}
