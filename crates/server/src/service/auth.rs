//! Admin authentication for the API: login with password (+ code once the admin has a token),
//! server-side sessions (bearer token stored only as a hash), and re-authentication that grants
//! a few minutes of elevated rights for sensitive changes.

use serde::Serialize;

use crate::clock::UnixTime;
use crate::crypto::{random_token, token_hash};
use crate::model::{
    AppId, AppMode, AppState, Application, Password, Role, Session, User, UserState,
};

use super::attempts::Front;
use super::audit::Outcome;
use super::validate::{ValidateRequest, Verdict};
use super::{Actor, Error, Principal, Result, Service};

/// The validation policy's view of the admin API login: password and code.
fn api_login_app() -> Application {
    Application {
        id: AppId(0),
        name: "api-login".into(),
        key_prefix: String::new(),
        key_hash: String::new(),
        mode: AppMode::PasswordAndOtp,
        // Only admins who never had a token and need none (`auth.admin_second_factor` off).
        passthrough: true,
        state: AppState::Active,
        created_at: 0,
        revoked_at: None,
    }
}

/// A new session: the bearer token is shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResult {
    pub token: String,
    pub expires_at: UnixTime,
    pub username: String,
}

impl std::fmt::Debug for LoginResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResult")
            .field("expires_at", &self.expires_at)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Sessions (API and web) last used at this time or earlier have ended
    /// (`auth.session_idle_minutes`).
    pub(super) fn session_idle_since(&self, now: UnixTime) -> UnixTime {
        let idle = i64::try_from(self.config.auth.session_idle_minutes.saturating_mul(60))
            .unwrap_or(i64::MAX);
        now.saturating_sub(idle)
    }

    /// A hash of a throw-away password, made once.
    pub(crate) async fn dummy_password_hash(&self) -> String {
        self.dummy_hash
            .get_or_init(|| async {
                self.hasher
                    .hash("tessera-dummy-password")
                    .await
                    .unwrap_or_default()
            })
            .await
            .clone()
    }

    /// Checks an admin's password and code through the validation rules (`decide`: source
    /// budgets, throttling claimed before comparing, code before password, no password-only
    /// pass for anyone who needs a second factor). Returns the admin, or the reason for the
    /// audit log. An admin-only endpoint must not spend anyone else's code, so the role is
    /// checked before any code is compared.
    async fn check_admin(
        &self,
        source: &str,
        username: &str,
        password: &str,
        otp: Option<&str>,
    ) -> Result<std::result::Result<User, String>> {
        let username = username.trim();
        if username.is_empty() || username.chars().count() > 256 {
            self.burn_validate_password().await;
            return Ok(Err("username malformed".into()));
        }
        if let Some(user) = self.store.user_by_name(username).await?
            && user.role != Role::Admin
        {
            // The same work as an admin's wrong code, and nothing of the user's is touched.
            self.burn_validate_password().await;
            self.record_stranger_failure(Front::Person, username, source);
            return Ok(Err("not an admin (code not checked)".into()));
        }
        let req = ValidateRequest {
            username: username.to_owned(),
            password: Some(Password::new(password)),
            otp: otp
                .filter(|c| !c.trim().is_empty())
                .map(|c| Password::new(c.trim())),
            pass: None,
            transaction_id: None,
        };
        let decision = self
            .decide(&api_login_app(), source, username, req, Front::Person)
            .await?;
        match decision.response.result {
            Verdict::Accept => {}
            Verdict::Reject => {
                self.user_cache.forget(username);
                return Ok(Err(decision.reason));
            }
            Verdict::Challenge => {
                return Ok(Err(
                    "only e-mail or SMS tokens: the API login needs a code token".into(),
                ));
            }
        }
        match self.store.user_by_name(username).await? {
            Some(user) if user.role == Role::Admin && user.state == UserState::Active => {
                Ok(Ok(user))
            }
            _ => Ok(Err("no longer an active admin".into())),
        }
    }

    /// Logs an admin in to the API and opens a session.
    pub async fn login(
        &self,
        source: &str,
        username: &str,
        password: &str,
        otp: Option<&str>,
    ) -> Result<LoginResult> {
        let user = match self.check_admin(source, username, password, otp).await? {
            Ok(u) => u,
            Err(reason) => {
                self.audit_as(
                    "anonymous",
                    source,
                    "auth.login",
                    format!("user:{username}"),
                    username,
                    Outcome::Failure,
                    reason,
                )
                .await?;
                return Err(Error::InvalidCredentials);
            }
        };
        let now = self.clock.now();
        let token = random_token()?;
        let expires_at = now.saturating_add(
            i64::try_from(self.config.auth.session_absolute_hours.saturating_mul(3600))
                .unwrap_or(i64::MAX),
        );
        self.store
            .insert_session(&Session {
                token_hash: token_hash(&token),
                user_id: user.id,
                created_at: now,
                last_seen_at: now,
                expires_at,
                // Logging in does not elevate: sensitive changes ask for the password again
                // (SPEC F3), so a session left open is not enough to make them.
                reauth_until: 0,
            })
            .await?;
        let actor = Actor {
            principal: Principal::Admin {
                id: user.id,
                username: user.username.clone(),
                reauth_until: 0,
            },
            source: source.to_owned(),
        };
        self.audit(
            &actor,
            "auth.login",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            "admin session opened",
        )
        .await?;
        Ok(LoginResult {
            token,
            expires_at,
            username: user.username,
        })
    }

    fn reauth_secs(&self) -> i64 {
        i64::try_from(self.config.auth.reauth_minutes.saturating_mul(60)).unwrap_or(i64::MAX)
    }

    /// The admin behind a session token, or `unauthenticated` (unknown, expired, idle too long,
    /// or the user is no longer an active admin).
    pub async fn authenticate_session(&self, token: &str, source: &str) -> Result<Actor> {
        let hash = token_hash(token);
        let session = self
            .store
            .session(&hash)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let now = self.clock.now();
        if session.expires_at <= now || session.last_seen_at <= self.session_idle_since(now) {
            self.store.delete_session(&hash).await?;
            return Err(Error::Unauthenticated);
        }
        let user = self
            .store
            .user(session.user_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if user.role != Role::Admin || user.state != UserState::Active {
            return Err(Error::Unauthenticated);
        }
        self.store.touch_session(&hash, now).await?;
        Ok(Actor {
            principal: Principal::Admin {
                id: user.id,
                username: user.username,
                reauth_until: session.reauth_until,
            },
            source: source.to_owned(),
        })
    }

    /// Re-authentication: the admin re-enters the password (and a code when they have a token)
    /// and gets `auth.reauth_minutes` of elevated rights on this session.
    pub async fn reauthenticate(
        &self,
        actor: &Actor,
        token: &str,
        password: &str,
        otp: Option<&str>,
    ) -> Result<UnixTime> {
        let Principal::Admin { username, id, .. } = &actor.principal else {
            return Err(Error::Unauthenticated);
        };
        match self
            .check_admin(&actor.source, username, password, otp)
            .await?
        {
            Ok(user) if user.id == *id => {}
            Ok(_) | Err(_) => {
                self.audit(
                    actor,
                    "auth.reauth",
                    format!("user:{username}"),
                    username,
                    Outcome::Failure,
                    "wrong password or code",
                )
                .await?;
                return Err(Error::InvalidCredentials);
            }
        }
        let until = self.clock.now().saturating_add(self.reauth_secs());
        self.store
            .set_session_reauth(&token_hash(token), until)
            .await?;
        self.audit(
            actor,
            "auth.reauth",
            format!("user:{username}"),
            username,
            Outcome::Success,
            format!("elevated for {} minutes", self.config.auth.reauth_minutes),
        )
        .await?;
        Ok(until)
    }

    /// Ends a session.
    pub async fn logout(&self, actor: &Actor, token: &str) -> Result<()> {
        self.store.delete_session(&token_hash(token)).await?;
        if let Principal::Admin { username, .. } = &actor.principal {
            self.audit(
                actor,
                "auth.logout",
                format!("user:{username}"),
                username,
                Outcome::Success,
                "",
            )
            .await?;
        }
        Ok(())
    }
}
