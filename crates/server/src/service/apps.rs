//! Applications (VPN gateways, remote desktops, web apps) that call the validate API with a key.
//! The key is shown once and stored only as a SHA-256 hash (it has 256 random bits).

use crate::msg::{Key, Msg};
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::crypto::{random_token, token_hash};
use crate::model::{AppId, AppMode, AppState, Application};
use crate::store::StoreError;

use super::audit::Outcome;
use super::{Actor, Error, Result, Service};

/// Prefix of every application key, so a leaked key is recognisable in logs and scanners.
pub const APP_KEY_PREFIX: &str = "tsk_";

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    pub name: String,
    #[serde(default)]
    pub mode: Option<AppMode>,
    /// Let users who never had a token and need none in without a code. Default: on for
    /// `password_and_otp` (the password is checked), off for `otp_only` (which would accept
    /// such a user with no check of ours at all).
    #[serde(default)]
    pub passthrough: Option<bool>,
}

/// A new application with its key, shown this once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AppCreated {
    #[serde(flatten)]
    pub app: Application,
    pub api_key: String,
}

impl std::fmt::Debug for AppCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCreated")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Registers an application. Creating a key is a sensitive change.
    pub async fn create_app(&self, actor: &Actor, req: CreateApp) -> Result<AppCreated> {
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(Error::Invalid(Msg::new(Key::NameLength)));
        }
        actor.require_reauth(self.clock.now())?;
        let key = format!("{APP_KEY_PREFIX}{}", random_token()?);
        let prefix: String = key.chars().take(APP_KEY_PREFIX.len() + 6).collect();
        let mode = req.mode.unwrap_or(AppMode::PasswordAndOtp);
        let passthrough = req.passthrough.unwrap_or(mode == AppMode::PasswordAndOtp);
        let app = match self
            .store
            .insert_app(
                name,
                &prefix,
                &token_hash(&key),
                mode,
                passthrough,
                self.clock.now(),
            )
            .await
        {
            Err(StoreError::Conflict) => {
                return Err(Error::Conflict(Msg::new(Key::AppExists).arg("name", name)));
            }
            other => other?,
        };
        self.audit(
            actor,
            "app.add",
            format!("app:{}", app.name),
            "",
            Outcome::Success,
            format!(
                "mode {}, passthrough {}, key {}...",
                app.mode,
                if app.passthrough { "on" } else { "off" },
                app.key_prefix
            ),
        )
        .await?;
        Ok(AppCreated { app, api_key: key })
    }

    pub async fn list_apps(&self, _actor: &Actor) -> Result<Vec<Application>> {
        Ok(self.store.list_apps().await?)
    }

    /// Revokes an application's key: from now on its requests are refused.
    pub async fn revoke_app(&self, actor: &Actor, id: AppId) -> Result<Application> {
        let app = self
            .store
            .app(id)
            .await?
            .ok_or(Error::NotFound("application"))?;
        if app.state == AppState::Revoked {
            return Ok(app);
        }
        self.store.revoke_app(id, self.clock.now()).await?;
        self.app_cache.forget(id);
        self.audit(
            actor,
            "app.revoke",
            format!("app:{}", app.name),
            "",
            Outcome::Success,
            "key revoked",
        )
        .await?;
        self.store
            .app(id)
            .await?
            .ok_or(Error::NotFound("application"))
    }

    /// The active application holding `key`, or `unauthenticated`.
    pub async fn authenticate_app(&self, key: &str) -> Result<Application> {
        // Looked up by hash: the comparison happens on a SHA-256 of the key, so timing reveals
        // nothing about the key itself.
        let hash = token_hash(key);
        let now = self.clock.now();
        if let Some(app) = self.app_cache.get(&hash, now) {
            return Ok(app);
        }
        match self.store.app_by_key_hash(&hash).await? {
            Some(app) if app.state == AppState::Active => {
                self.app_cache.put(hash, app.clone(), now);
                Ok(app)
            }
            _ => Err(Error::Unauthenticated),
        }
    }
}

/// Recently authenticated applications, so that the validate hot path does not read the
/// application row on every request. An entry lives [`APP_CACHE_SECS`] seconds: a key revoked on
/// this node stops at once (the entry is dropped), on another node within that time.
#[derive(Debug, Default)]
pub(crate) struct AppCache {
    entries: std::sync::Mutex<std::collections::HashMap<String, (Application, UnixTime)>>,
}

/// How long a looked-up application key is trusted without asking the database again.
pub const APP_CACHE_SECS: i64 = 2;

impl AppCache {
    fn get(&self, hash: &str, now: UnixTime) -> Option<Application> {
        let entries = self.entries.lock().ok()?;
        let (app, at) = entries.get(hash)?;
        (now.saturating_sub(*at) < APP_CACHE_SECS).then(|| app.clone())
    }

    fn put(&self, hash: String, app: Application, now: UnixTime) {
        if let Ok(mut entries) = self.entries.lock() {
            // Only valid keys are cached, so this holds at most the registered applications.
            entries.retain(|_, (_, at)| now.saturating_sub(*at) < APP_CACHE_SECS);
            entries.insert(hash, (app, now));
        }
    }

    fn forget(&self, id: AppId) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (app, _)| app.id != id);
        }
    }
}
