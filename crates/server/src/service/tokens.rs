//! Tokens: add (seed generated and sealed here, shown once), activation by a first correct code,
//! rename, disable/enable, revoke, delete, unlock, resynchronisation.
//!
//! Checking a code is [`Service::try_code`]: the window and throttling policy, then one atomic
//! store update, so the same code is never accepted twice (RFC 4226 §7.2, RFC 6238 §5.2).

use serde::{Deserialize, Serialize};
use tessera_otp::{HashAlgorithm, Hotp, Secret, Totp, Window};

use crate::clock::UnixTime;
use crate::crypto::CryptoError;
use crate::model::{NewToken, Serial, Token, TokenId, TokenKind, TokenState, User};
use crate::store::{Advance, StoreError};

use super::audit::Outcome;
use super::throttle::penalty;
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
}

impl TokenInfo {
    pub fn new(t: &Token, username: &str) -> TokenInfo {
        TokenInfo {
            id: t.id,
            serial: t.serial.clone(),
            username: username.to_owned(),
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
        }
    }
}

/// A token just added: the Key URI and QR codes are shown this once and never again.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenCreated {
    #[serde(flatten)]
    pub token: TokenInfo,
    pub otpauth_uri: String,
    /// The key in groups of four, for typing into an app.
    pub secret_grouped: String,
    pub qr_svg: String,
    pub qr_png_base64: String,
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

/// What checking one code against one token gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeCheck {
    /// Accepted and consumed: this counter or step can never be used again.
    Accepted { matched: i64 },
    /// Wrong, reused, or lost a race with an identical request; failure counted.
    Rejected,
    /// Not checked: the token waits after earlier failures.
    Throttled,
}

/// The associated data binding a sealed seed to its token row.
fn seed_aad(serial: &Serial) -> Vec<u8> {
    [b"tessera/token-seed/v1/".as_slice(), serial.0.as_bytes()].concat()
}

/// Strips the spaces people type into codes ("123 456") and checks the form.
pub(crate) fn normalize_code(code: &str) -> Result<String> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.is_empty() || code.len() > 10 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Invalid("code: 6 to 8 digits".into()));
    }
    Ok(code)
}

fn validate_token_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(Error::Invalid("name: 1-64 characters".into()));
    }
    Ok(name.to_owned())
}

fn step_of(totp: &Totp, now: UnixTime) -> i64 {
    i64::try_from(totp.step(u64::try_from(now).unwrap_or(0))).unwrap_or(i64::MAX)
}

impl Service {
    /// Opens a token's sealed seed.
    pub(crate) fn token_secret(&self, token: &Token) -> Result<Secret> {
        let bytes = self
            .keys
            .open(&seed_aad(&token.serial), &token.sealed_secret)?;
        Secret::from_bytes(bytes.to_vec())
            .map_err(|_| Error::Crypto(CryptoError::Open { key_id: 0 }))
    }

    pub(crate) fn totp_of(token: &Token) -> Result<Totp> {
        Totp::new(token.algorithm, token.digits, token.period)
            .map_err(|e| Error::Store(StoreError::Corrupt(e.to_string())))
    }

    pub(crate) fn hotp_of(token: &Token) -> Result<Hotp> {
        Hotp::new(token.algorithm, token.digits)
            .map_err(|e| Error::Store(StoreError::Corrupt(e.to_string())))
    }

    /// Where `code` matches within the normal window, if anywhere: (counter or step, drift).
    /// Counters or steps below `next_counter` were used already and never match.
    fn find_code(
        &self,
        token: &Token,
        secret: &Secret,
        code: &str,
        now: UnixTime,
    ) -> Result<Option<(i64, i64)>> {
        let cfg = &self.config.otp;
        let found = match token.kind {
            TokenKind::Totp => {
                let totp = Self::totp_of(token)?;
                let current = step_of(&totp, now);
                // Apply the drift learned on earlier successes (RFC 6238 §6).
                let center = u64::try_from(current.saturating_add(token.drift)).unwrap_or(0);
                let window = Window {
                    back: cfg.totp_window_back,
                    forward: cfg.totp_window_forward,
                };
                totp.verify_step(secret, code, center, window)
                    .and_then(|s| i64::try_from(s).ok())
                    .map(|s| (s, s - current))
            }
            TokenKind::Hotp => {
                let hotp = Self::hotp_of(token)?;
                let from = u64::try_from(token.next_counter).unwrap_or(0);
                hotp.verify(secret, code, from, cfg.hotp_look_ahead)
                    .and_then(|c| i64::try_from(c).ok())
                    .map(|c| (c, 0))
            }
        };
        Ok(found.filter(|(matched, _)| *matched >= token.next_counter))
    }

    /// Checks one code against one token in state `from`, moving it to `to` on success. Applies
    /// throttling before checking and counts a failure after a wrong code.
    pub(crate) async fn try_code(
        &self,
        token: &Token,
        code: &str,
        from: TokenState,
        to: TokenState,
    ) -> Result<CodeCheck> {
        let now = self.clock.now();
        if token.throttled_until > now {
            return Ok(CodeCheck::Throttled);
        }
        let secret = self.token_secret(token)?;
        if code.len() == token.digits as usize
            && let Some((matched, drift)) = self.find_code(token, &secret, code, now)?
        {
            let adv = Advance {
                matched,
                drift,
                from,
                to,
                now,
            };
            // The atomic compare-and-set decides: of concurrent identical codes one wins.
            if self.store.advance_token(token.id, adv).await? {
                return Ok(CodeCheck::Accepted { matched });
            }
        }
        self.count_failure(token).await?;
        Ok(CodeCheck::Rejected)
    }

    /// Counts a failed code and applies the delay or lock that follows.
    pub(crate) async fn count_failure(&self, token: &Token) -> Result<()> {
        let fails = self.store.record_token_failure(token.id).await?;
        let step = if token.kind == TokenKind::Totp {
            token.period
        } else {
            30
        };
        let p = penalty(&self.config.otp, step, fails, self.clock.now());
        self.store.throttle_token(token.id, p.until, p.lock).await?;
        Ok(())
    }

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
        let algorithm = match &req.algorithm {
            Some(a) => a
                .parse::<HashAlgorithm>()
                .map_err(|_| Error::Invalid("algorithm: SHA1, SHA256 or SHA512".into()))?,
            None => HashAlgorithm::Sha1,
        };
        let digits = req.digits.unwrap_or(6);
        let period = req.period.unwrap_or(30);
        // The engine validates the parameters; its messages name the rule.
        Totp::new(algorithm, digits, period).map_err(|e| Error::Invalid(e.to_string()))?;
        let name = validate_token_name(req.name.as_deref().unwrap_or(match kind {
            TokenKind::Totp => "Authenticator",
            TokenKind::Hotp => "HOTP token",
        }))?;
        let secret = Secret::generate().map_err(|_| Error::Crypto(CryptoError::Random))?;
        let serial = Serial(format!(
            "{}{}",
            match kind {
                TokenKind::Totp => "TOTP",
                TokenKind::Hotp => "HOTP",
            },
            crate::crypto::random_readable(8)?
        ));
        let new = NewToken {
            user_id: user.id,
            sealed_secret: self.keys.seal(&seed_aad(&serial), secret.as_bytes())?,
            serial,
            kind,
            name,
            algorithm,
            digits,
            period,
            state: TokenState::Pending,
            next_counter: 0,
        };
        let token = match self.store.insert_token(&new, self.clock.now()).await {
            Err(StoreError::Conflict) => {
                return Err(Error::Conflict(
                    "token serial exists already; try again".into(),
                ));
            }
            other => other?,
        };
        let uri = tessera_otp::KeyUri {
            kind: match kind {
                TokenKind::Totp => tessera_otp::UriKind::Totp { period },
                TokenKind::Hotp => tessera_otp::UriKind::Hotp { counter: 0 },
            },
            issuer: Some(self.config.otp.issuer.clone()),
            account: user.username.clone(),
            secret: secret.clone(),
            algorithm,
            digits,
        }
        .to_uri();
        let qr_err = |_| Error::Invalid("the Key URI is too long for a QR code".into());
        let created = TokenCreated {
            token: TokenInfo::new(&token, &user.username),
            qr_svg: crate::qr::svg(&uri, 256).map_err(qr_err)?,
            qr_png_base64: crate::qr::png_base64(&uri, 256).map_err(qr_err)?,
            secret_grouped: secret.to_base32_grouped(),
            otpauth_uri: uri,
        };
        self.audit(
            actor,
            "token.add",
            format!("token:{}", token.serial),
            &user.username,
            Outcome::Success,
            format!(
                "{} {} {} digits{}, pending until a first correct code",
                kind,
                algorithm,
                digits,
                if kind == TokenKind::Totp {
                    format!(" {period}s")
                } else {
                    String::new()
                }
            ),
        )
        .await?;
        Ok(created)
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
            return Err(Error::TokenState(format!(
                "token is {}, only a pending token is activated with a first code",
                token.state
            )));
        }
        let check = self
            .try_code(&token, &code, TokenState::Pending, TokenState::Active)
            .await?;
        let (outcome, reason) = match check {
            CodeCheck::Accepted { .. } => (Outcome::Success, "first code correct, token active"),
            CodeCheck::Rejected => (Outcome::Failure, "wrong code"),
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
            CodeCheck::Rejected => return Err(Error::InvalidCode),
            CodeCheck::Throttled => return Err(Error::Throttled),
        }
        let (token, user) = self.token_with_owner(id).await?;
        Ok(TokenInfo::new(&token, &user.username))
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
            return Ok(tokens
                .iter()
                .map(|t| TokenInfo::new(t, &user.username))
                .collect());
        }
        let tokens = self
            .store
            .list_tokens(limit.clamp(1, super::users::MAX_PAGE), offset.max(0))
            .await?;
        let mut out = Vec::with_capacity(tokens.len());
        let mut names = std::collections::HashMap::new();
        for t in &tokens {
            if !names.contains_key(&t.user_id)
                && let Some(u) = self.store.user(t.user_id).await?
            {
                names.insert(t.user_id, u.username);
            }
            let name = names.get(&t.user_id).map_or("", String::as_str);
            out.push(TokenInfo::new(t, name));
        }
        Ok(out)
    }

    pub async fn get_token(&self, _actor: &Actor, id: TokenId) -> Result<TokenInfo> {
        let (token, user) = self.token_with_owner(id).await?;
        Ok(TokenInfo::new(&token, &user.username))
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
                return Err(Error::TokenState(
                    "token is revoked; revoking is final".into(),
                ));
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
        Ok(())
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

    /// Finds two consecutive codes within the wide resync window: returns the counter or step of
    /// the second one and the drift.
    pub(crate) fn find_consecutive(
        &self,
        token: &Token,
        secret: &Secret,
        code1: &str,
        code2: &str,
        now: UnixTime,
    ) -> Result<Option<(i64, i64)>> {
        let cfg = &self.config.otp;
        Ok(match token.kind {
            TokenKind::Totp => {
                let totp = Self::totp_of(token)?;
                let current = step_of(&totp, now);
                let window = Window {
                    back: cfg.totp_resync_window,
                    forward: cfg.totp_resync_window,
                };
                let center = u64::try_from(current).unwrap_or(0);
                // Try every step where code1 matches; code2 must match the step after it.
                let lo = center.saturating_sub(window.back.min(Window::MAX_SIDE));
                let hi = center.saturating_add(window.forward.min(Window::MAX_SIDE));
                let mut found = None;
                let mut s = lo;
                while s <= hi {
                    match totp.verify_step(
                        secret,
                        code1,
                        s,
                        Window {
                            back: 0,
                            forward: hi - s,
                        },
                    ) {
                        Some(m) => {
                            if totp
                                .verify_step(
                                    secret,
                                    code2,
                                    m + 1,
                                    Window {
                                        back: 0,
                                        forward: 0,
                                    },
                                )
                                .is_some()
                            {
                                found = i64::try_from(m + 1).ok();
                                break;
                            }
                            s = m + 1;
                        }
                        None => break,
                    }
                }
                found.map(|second| (second, second - current))
            }
            TokenKind::Hotp => {
                let hotp = Self::hotp_of(token)?;
                let mut from = u64::try_from(token.next_counter).unwrap_or(0);
                let end = from.saturating_add(cfg.hotp_resync_window);
                let mut found = None;
                while from <= end {
                    match hotp.verify(secret, code1, from, end - from) {
                        Some(m) => {
                            if hotp.verify(secret, code2, m + 1, 0).is_some() {
                                found = i64::try_from(m + 1).ok();
                                break;
                            }
                            from = m + 1;
                        }
                        None => break,
                    }
                }
                found.map(|second| (second, 0))
            }
        }
        .filter(|(second, _)| *second > token.next_counter))
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
        if matches!(token.state, TokenState::Revoked | TokenState::Disabled) {
            return Err(Error::TokenState(format!("token is {}", token.state)));
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
            match token.kind {
                TokenKind::Totp => format!("clock drift {drift} step(s)"),
                TokenKind::Hotp => format!(
                    "counter moved from {} to {}",
                    token.next_counter,
                    second + 1
                ),
            },
        )
        .await?;
        self.get_token(actor, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_normalized() {
        assert_eq!(normalize_code(" 123 456 ").unwrap(), "123456");
        for bad in ["", "12a456", "１２３４５６", "12345678901"] {
            assert!(normalize_code(bad).is_err(), "{bad}");
        }
    }
}
