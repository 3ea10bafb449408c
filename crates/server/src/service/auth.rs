//! Admin authentication for the API: login with password (+ code once the admin has a token),
//! server-side sessions (bearer token stored only as a hash), and re-authentication that grants
//! a few minutes of elevated rights for sensitive changes.

use serde::Serialize;

use crate::clock::UnixTime;
use crate::crypto::{random_token, token_hash};
use crate::model::{Role, Session, TokenState, User, UserState};

use super::audit::Outcome;
use super::codes::{CodeCheck, normalize_code};
use super::{Actor, Error, Principal, Result, Service};

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

    /// Checks password and (when the user has active tokens) a code. The code is checked first,
    /// so someone without the token learns nothing about the password (SPEC F2). Returns the
    /// user, or the reason for the audit log.
    pub(crate) async fn check_credentials(
        &self,
        username: &str,
        password: &str,
        otp: Option<&str>,
    ) -> Result<User, &'static str> {
        let Ok(Some(user)) = self.store.user_by_name(username).await else {
            self.burn_password_check(password).await;
            return Err("unknown user");
        };
        let tokens = self
            .store
            .tokens_of(user.id)
            .await
            .map_err(|_| "storage failure")?;
        let active: Vec<_> = tokens
            .into_iter()
            .filter(|t| t.state == TokenState::Active)
            .collect();
        if !active.is_empty() {
            let Some(code) = otp.and_then(|c| normalize_code(c).ok()) else {
                return Err("code missing or malformed");
            };
            let mut accepted = false;
            let mut throttled = true;
            for t in active.iter().filter(|t| t.digits as usize == code.len()) {
                match self
                    .try_code(t, &code, TokenState::Active, TokenState::Active, None)
                    .await
                {
                    Ok(CodeCheck::Accepted { .. }) => {
                        accepted = true;
                        break;
                    }
                    Ok(CodeCheck::Rejected(_)) => throttled = false,
                    Ok(CodeCheck::Throttled) => {}
                    Err(_) => return Err("storage failure"),
                }
            }
            if !accepted {
                return Err(if throttled { "throttled" } else { "wrong code" });
            }
        } else if user.otp_required {
            return Err("otp required but user has no active token");
        }
        match user.password_hash.as_deref() {
            Some(hash) if self.hasher.verify(password, hash).await => {}
            Some(_) => return Err("wrong password"),
            None => {
                self.burn_password_check(password).await;
                return Err("no password set");
            }
        }
        if user.state != UserState::Active {
            return Err("user disabled");
        }
        Ok(user)
    }

    /// Spends the time of one password check, so that an unknown user or a user without a
    /// password answers as slowly as a wrong password (no enumeration by timing).
    async fn burn_password_check(&self, password: &str) {
        let dummy = self.dummy_password_hash().await;
        let _ = self.hasher.verify(password, &dummy).await;
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

    /// Logs an admin in to the API and opens a session.
    pub async fn login(
        &self,
        source: &str,
        username: &str,
        password: &str,
        otp: Option<&str>,
    ) -> Result<LoginResult> {
        let result = match self.check_credentials(username, password, otp).await {
            Ok(user) if user.role == Role::Admin => Ok(user),
            Ok(_) => Err("not an admin"),
            Err(reason) => Err(reason),
        };
        let user = match result {
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
        match self.check_credentials(username, password, otp).await {
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
