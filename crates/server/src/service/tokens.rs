//! Tokens: add (seed generated and sealed here, shown once), activation by a first correct code,
//! rename, disable/enable, revoke, delete, unlock, resynchronisation.
//!
//! Checking a code is [`Service::try_code`]: the window and throttling policy, then one atomic
//! store update, so the same code is never accepted twice (RFC 4226 §7.2, RFC 6238 §5.2).

use crate::msg::{Key, Msg, state_key};
use serde::{Deserialize, Serialize};
use tessera_otp::{HashAlgorithm, OtpError, Secret, Totp};

use crate::clock::UnixTime;
use crate::crypto::CryptoError;
use crate::model::{NewToken, Serial, Token, TokenId, TokenKind, TokenState, Unusable, User};
use crate::store::StoreError;

use super::audit::Outcome;
use super::codes::{CodeCheck, normalize_code, seed_aad};
use super::{Actor, Error, Result, Service};

/// Parameters of a new token; absent fields take the defaults (TOTP, SHA1, 6 digits, 30 s).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddToken {
    pub kind: Option<TokenKind>,
    pub name: Option<String>,
    pub algorithm: Option<String>,
    pub digits: Option<u32>,
    pub period: Option<u64>,
}

/// What an admin or user sees of a token. Never the seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: TokenId,
    pub serial: Serial,
    pub username: String,
    pub kind: TokenKind,
    pub name: String,
    #[schema(value_type = String, example = "SHA1")]
    pub algorithm: &'static str,
    pub digits: u32,
    /// Seconds per code (TOTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    pub state: TokenState,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    pub fail_count: i64,
    /// No code is checked before this time (0: not throttled).
    pub throttled_until: UnixTime,
    /// Learned clock drift in time steps (TOTP).
    pub drift: i64,
    /// Set when the token is active but cannot give a code: its codes go to a phone number or
    /// e-mail address the user no longer has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unusable: Option<Unusable>,
}

impl TokenInfo {
    pub fn new(t: &Token, owner: &User) -> TokenInfo {
        TokenInfo {
            id: t.id,
            serial: t.serial.clone(),
            username: owner.username.clone(),
            kind: t.kind,
            name: t.name.clone(),
            algorithm: t.algorithm.as_str(),
            digits: t.digits,
            period: (t.kind == TokenKind::Totp).then_some(t.period),
            state: t.state,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            fail_count: t.fail_count,
            throttled_until: t.throttled_until,
            drift: t.drift,
            unusable: (t.state == TokenState::Active)
                .then(|| t.unusable(owner))
                .flatten(),
        }
    }
}

/// A token just added: the Key URI and QR codes are shown this once and never again.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenCreated {
    #[serde(flatten)]
    pub token: TokenInfo,
    /// HOTP/TOTP only, like the next three fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otpauth_uri: Option<String>,
    /// The key in groups of four, for typing into an app.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_grouped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_png_base64: Option<String>,
}

impl std::fmt::Debug for TokenCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCreated")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// State changes an admin can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenAction {
    Disable,
    Enable,
    Revoke,
}

fn default_name(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Totp => "Authenticator",
        TokenKind::Hotp => "HOTP token",
        TokenKind::Email => "E-mail",
        TokenKind::Sms => "SMS",
    }
}

/// A new random serial, prefixed by the kind (`TOTP7K3M9QXA`).
fn new_serial(kind: TokenKind) -> Result<Serial> {
    let prefix = match kind {
        TokenKind::Totp => "TOTP",
        TokenKind::Hotp => "HOTP",
        TokenKind::Email => "MAIL",
        TokenKind::Sms => "SMS",
    };
    Ok(Serial(format!(
        "{prefix}{}",
        crate::crypto::random_readable(8)?
    )))
}

pub(crate) fn validate_token_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(Error::Invalid(Msg::new(Key::NameLength)));
    }
    Ok(name.to_owned())
}

impl Service {
    /// A token by id with its owner, or `not_found`.
    pub async fn token_with_owner(&self, id: TokenId) -> Result<(Token, User)> {
        let token = self
            .store
            .token(id)
            .await?
            .ok_or(Error::NotFound("token"))?;
        let user = self
            .store
            .user(token.user_id)
            .await?
            .ok_or(Error::NotFound("token"))?;
        Ok((token, user))
    }

    /// Adds a pending token with a fresh random seed. The Key URI and QR are returned this once.
    pub async fn add_token(
        &self,
        actor: &Actor,
        username: &str,
        req: AddToken,
    ) -> Result<TokenCreated> {
        let user = self.user_named(username).await?;
        let kind = req.kind.unwrap_or(TokenKind::Totp);
        if !kind.has_seed() {
            return self.add_challenge_token(actor, &user, kind, req).await;
        }
        let algorithm = match &req.algorithm {
            Some(a) => a
                .parse::<HashAlgorithm>()
                .map_err(|_| Error::Invalid(Msg::new(Key::Algorithm)))?,
            None => HashAlgorithm::Sha1,
        };
        let digits = req.digits.unwrap_or(6);
        let period = req.period.unwrap_or(30);
        // The engine validates the parameters; its messages name the rule.
        Totp::new(algorithm, digits, period).map_err(|e| {
            Error::Invalid(match e {
                OtpError::InvalidDigits(d) => Msg::new(Key::TokenDigits).arg("digits", d),
                OtpError::InvalidPeriod(p) => Msg::new(Key::TokenPeriod).arg("period", p),
                other => Msg::text(other.to_string()),
            })
        })?;
        let secret = Secret::generate().map_err(|_| Error::Crypto(CryptoError::Random))?;
        let serial = new_serial(kind)?;
        let new = NewToken {
            user_id: user.id,
            sealed_secret: self.keys.seal(&seed_aad(&serial), secret.as_bytes())?,
            serial,
            kind,
            name: validate_token_name(req.name.as_deref().unwrap_or(default_name(kind)))?,
            algorithm,
            digits,
            period,
            state: TokenState::Pending,
            next_counter: 0,
        };
        let token = self.insert_new_token(&new).await?;
        let uri = tessera_otp::KeyUri {
            kind: if kind == TokenKind::Totp {
                tessera_otp::UriKind::Totp { period }
            } else {
                tessera_otp::UriKind::Hotp { counter: 0 }
            },
            issuer: Some(self.config.issuer()),
            account: user.username.clone(),
            secret: secret.clone(),
            algorithm,
            digits,
        }
        .to_uri();
        let qr_err = |_| Error::Invalid(Msg::new(Key::KeyUriTooLong));
        let created = TokenCreated {
            token: TokenInfo::new(&token, &user),
            qr_svg: Some(crate::qr::svg(&uri, 256).map_err(qr_err)?),
            qr_png_base64: Some(crate::qr::png_base64(&uri, 256).map_err(qr_err)?),
            secret_grouped: Some(secret.to_base32_grouped()),
            otpauth_uri: Some(uri),
        };
        let period_text = if kind == TokenKind::Totp {
            format!(" {period}s")
        } else {
            String::new()
        };
        self.audit(
            actor,
            "token.add",
            format!("token:{}", token.serial),
            &user.username,
            Outcome::Success,
            format!(
                "{kind} {algorithm} {digits} digits{period_text}, pending until a first correct code"
            ),
        )
        .await?;
        Ok(created)
    }

    /// Adds an e-mail or SMS token: no seed; each login sends a fresh code to the address or
    /// number of the user record. Active at once, since it proves nothing to confirm it.
    async fn add_challenge_token(
        &self,
        actor: &Actor,
        user: &User,
        kind: TokenKind,
        req: AddToken,
    ) -> Result<TokenCreated> {
        if req.algorithm.is_some() || req.digits.is_some() || req.period.is_some() {
            return Err(Error::Invalid(
                Msg::new(Key::ParamsNotForKind).arg("kind", kind),
            ));
        }
        match kind {
            TokenKind::Email if user.email.is_empty() => {
                return Err(Error::Invalid(Msg::new(Key::NoEmail)));
            }
            TokenKind::Sms if user.phone.is_empty() || !user.sms_enabled => {
                return Err(Error::Invalid(Msg::new(Key::NoPhone)));
            }
            _ => {}
        }
        let new = NewToken {
            user_id: user.id,
            serial: new_serial(kind)?,
            kind,
            name: validate_token_name(req.name.as_deref().unwrap_or(default_name(kind)))?,
            algorithm: HashAlgorithm::Sha1,
            digits: self.config.validate.challenge_digits.clamp(6, 8),
            period: 0,
            sealed_secret: Vec::new(),
            state: TokenState::Active,
            next_counter: 0,
        };
        let token = self.insert_new_token(&new).await?;
        self.audit(
            actor,
            "token.add",
            format!("token:{}", token.serial),
            &user.username,
            Outcome::Success,
            format!("{kind} token, codes sent per login"),
        )
        .await?;
        Ok(TokenCreated {
            token: TokenInfo::new(&token, user),
            otpauth_uri: None,
            secret_grouped: None,
            qr_svg: None,
            qr_png_base64: None,
        })
    }

    pub(super) async fn insert_new_token(&self, new: &NewToken) -> Result<Token> {
        match self.store.insert_token(new, self.clock.now()).await {
            Err(StoreError::Conflict) => Err(Error::Conflict(Msg::new(Key::SerialExists))),
            other => Ok(other?),
        }
    }

    /// Activates a pending token with its first correct code. That code is consumed: it cannot be
    /// used to log in.
    pub async fn verify_first_code(
        &self,
        actor: &Actor,
        id: TokenId,
        code: &str,
    ) -> Result<TokenInfo> {
        let code = normalize_code(code)?;
        let (token, user) = self.token_with_owner(id).await?;
        let target = format!("token:{}", token.serial);
        if token.state != TokenState::Pending {
            return Err(Error::TokenState(
                Msg::new(Key::NotPending).arg_key("state", state_key(token.state)),
            ));
        }
        let check = self
            .try_code(&token, &code, TokenState::Pending, TokenState::Active, None)
            .await?;
        if let CodeCheck::Rejected(_) = check {
            // The operator or the enrolling user holds the token: the failure is its own.
            self.count_failure(&token).await?;
        }
        let (outcome, reason) = match check {
            CodeCheck::Accepted { .. } => (Outcome::Success, "first code correct, token active"),
            CodeCheck::Rejected(r) => (Outcome::Failure, r.as_reason()),
            CodeCheck::Throttled => (Outcome::Failure, "throttled after failed codes"),
        };
        self.audit(
            actor,
            "token.activate",
            target,
            &user.username,
            outcome,
            reason,
        )
        .await?;
        match check {
            CodeCheck::Accepted { .. } => {}
            CodeCheck::Rejected(_) => return Err(Error::InvalidCode),
            CodeCheck::Throttled => return Err(Error::Throttled),
        }
        let (token, user) = self.token_with_owner(id).await?;
        Ok(TokenInfo::new(&token, &user))
    }

    /// Tokens of one user, or all tokens (paged).
    pub async fn list_tokens(
        &self,
        _actor: &Actor,
        username: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<TokenInfo>> {
        if let Some(name) = username {
            let user = self.user_named(name).await?;
            let tokens = self.store.tokens_of(user.id).await?;
            return Ok(tokens.iter().map(|t| TokenInfo::new(t, &user)).collect());
        }
        let tokens = self
            .store
            .list_tokens(limit.clamp(1, super::users::MAX_PAGE), offset.max(0))
            .await?;
        let mut out = Vec::with_capacity(tokens.len());
        let mut owners = std::collections::HashMap::new();
        for t in &tokens {
            if !owners.contains_key(&t.user_id)
                && let Some(u) = self.store.user(t.user_id).await?
            {
                owners.insert(t.user_id, u);
            }
            if let Some(owner) = owners.get(&t.user_id) {
                out.push(TokenInfo::new(t, owner));
            }
        }
        Ok(out)
    }

    /// How many tokens there are, of all users: the total beside a page of [`Self::list_tokens`].
    pub async fn count_tokens(&self, _actor: &Actor) -> Result<i64> {
        Ok(self.store.count_tokens().await?)
    }

    pub async fn get_token(&self, _actor: &Actor, id: TokenId) -> Result<TokenInfo> {
        let (token, user) = self.token_with_owner(id).await?;
        Ok(TokenInfo::new(&token, &user))
    }

    pub async fn rename_token(&self, actor: &Actor, id: TokenId, name: &str) -> Result<TokenInfo> {
        let name = validate_token_name(name)?;
        let (token, user) = self.token_with_owner(id).await?;
        if !self.store.update_token(id, &name, token.state).await? {
            return Err(Error::NotFound("token"));
        }
        self.audit(
            actor,
            "token.rename",
            format!("token:{}", token.serial),
            &user.username,
            Outcome::Success,
            format!("renamed from {:?} to {:?}", token.name, name),
        )
        .await?;
        self.get_token(actor, id).await
    }

    /// Disables, enables or revokes a token. Revoking is final and needs re-authentication.
    pub async fn change_token_state(
        &self,
        actor: &Actor,
        id: TokenId,
        action: TokenAction,
    ) -> Result<TokenInfo> {
        let (token, user) = self.token_with_owner(id).await?;
        let new_state = match (action, token.state) {
            (_, TokenState::Revoked) => {
                return Err(Error::TokenState(Msg::new(Key::Revoked)));
            }
            (TokenAction::Disable, TokenState::Disabled) => TokenState::Disabled,
            (TokenAction::Disable, _) => TokenState::Disabled,
            (TokenAction::Enable, TokenState::Disabled) => {
                // A token never activated goes back to pending, not straight to active.
                if token.last_used_at.is_some() {
                    TokenState::Active
                } else {
                    TokenState::Pending
                }
            }
            (TokenAction::Enable, s) => s,
            (TokenAction::Revoke, _) => {
                actor.require_reauth(self.clock.now())?;
                TokenState::Revoked
            }
        };
        if new_state != token.state {
            if !self.store.update_token(id, &token.name, new_state).await? {
                return Err(Error::NotFound("token"));
            }
            self.audit(
                actor,
                &format!(
                    "token.{}",
                    match action {
                        TokenAction::Disable => "disable",
                        TokenAction::Enable => "enable",
                        TokenAction::Revoke => "revoke",
                    }
                ),
                format!("token:{}", token.serial),
                &user.username,
                Outcome::Success,
                format!("{} -> {}", token.state, new_state),
            )
            .await?;
        }
        self.get_token(actor, id).await
    }

    /// Deletes a token and its sealed seed. Needs re-authentication.
    pub async fn delete_token(&self, actor: &Actor, id: TokenId) -> Result<()> {
        let (token, user) = self.token_with_owner(id).await?;
        actor.require_reauth(self.clock.now())?;
        if !self.store.delete_token(id).await? {
            return Err(Error::NotFound("token"));
        }
        self.audit(
            actor,
            "token.delete",
            format!("token:{}", token.serial),
            &user.username,
            Outcome::Success,
            format!("{} {:?} deleted", token.kind, token.name),
        )
        .await?;
        self.notify(
            &user,
            super::notify::Notice::DeviceRemoved,
            None,
            &actor.source,
        )
        .await;
        Ok(())
    }

    /// Resynchronises a drifted TOTP clock or an HOTP counter far ahead from two consecutive codes.
    pub async fn resync_token(
        &self,
        actor: &Actor,
        id: TokenId,
        code1: &str,
        code2: &str,
    ) -> Result<TokenInfo> {
        let code1 = normalize_code(code1)?;
        let code2 = normalize_code(code2)?;
        let (token, user) = self.token_with_owner(id).await?;
        if !token.kind.has_seed() {
            return Err(Error::TokenState(Msg::new(Key::NotResynced)));
        }
        if matches!(token.state, TokenState::Revoked | TokenState::Disabled) {
            return Err(Error::TokenState(
                Msg::new(Key::TokenIs).arg_key("state", state_key(token.state)),
            ));
        }
        let now = self.clock.now();
        let secret = self.token_secret(&token)?;
        let found = self.find_consecutive(&token, &secret, &code1, &code2, now)?;
        let target = format!("token:{}", token.serial);
        let Some((second, drift)) = found else {
            self.audit(
                actor,
                "token.resync",
                target,
                &user.username,
                Outcome::Failure,
                "codes not consecutive within the resync window",
            )
            .await?;
            return Err(Error::InvalidCode);
        };
        self.store.resync_token(id, second + 1, drift, now).await?;
        self.audit(
            actor,
            "token.resync",
            target,
            &user.username,
            Outcome::Success,
            if token.kind == TokenKind::Totp {
                format!("clock drift {drift} step(s)")
            } else {
                format!(
                    "counter moved from {} to {}",
                    token.next_counter,
                    second + 1
                )
            },
        )
        .await?;
        self.get_token(actor, id).await
    }

    /// Clears the failure counter and throttling and unlocks a locked token.
    pub async fn unlock_token(&self, actor: &Actor, id: TokenId) -> Result<TokenInfo> {
        let (token, user) = self.token_with_owner(id).await?;
        self.store.unlock_token(id).await?;
        self.audit(
            actor,
            "token.unlock",
            format!("token:{}", token.serial),
            &user.username,
            Outcome::Success,
            format!(
                "{} failure(s) cleared, state was {}",
                token.fail_count, token.state
            ),
        )
        .await?;
        self.get_token(actor, id).await
    }
}
