//! Checking codes: the window and drift policy, throttling after failures, automatic and manual
//! resynchronisation (finding consecutive codes; the admin operation is in `tokens.rs`, which
//! builds on this module and never the other way round). Every acceptance is one atomic store
//! update, so the same code is never accepted twice (RFC 4226 §7.2, RFC 6238 §5.2), also under
//! concurrent requests.

use crate::msg::{Key, Msg};
use tessera_otp::{Hotp, Secret, Totp, Window};

use crate::clock::UnixTime;
use crate::crypto::CryptoError;
use crate::model::{AuditEvent, Serial, Token, TokenKind, TokenState};
use crate::store::{Advance, RequestPrint, StoreError};

use super::{Error, Result, Service};

/// The associated data binding a sealed seed to its token row.
pub(crate) fn seed_aad(serial: &Serial) -> Vec<u8> {
    [b"tessera/token-seed/v1/".as_slice(), serial.0.as_bytes()].concat()
}

/// What checking one code against one token gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeCheck {
    /// Accepted and consumed: this counter or step can never be used again. `resynced`: the code
    /// completed an automatic resync; `audited`: the caller's event was committed with it.
    Accepted {
        matched: i64,
        resynced: bool,
        audited: bool,
    },
    /// Refused. Not counted yet: the caller decides whom the failure is blamed on
    /// ([`Service::count_failure`]).
    Rejected(Rejection),
    /// Not checked: the token waits after earlier failures.
    Throttled,
}

/// Why a code was refused (for the audit log only; clients get a generic answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Matches nothing near the expected position.
    Wrong,
    /// Matched a counter or step that was used already (or lost a race to an identical request).
    Replay,
    /// Matched far outside the window: remembered; the next consecutive code resynchronises.
    ResyncPending,
    /// Internal to `auto_resync`: the code completed a resync at this counter or step.
    Resynced(i64),
}

impl Rejection {
    pub(crate) fn as_reason(self) -> &'static str {
        match self {
            Rejection::Wrong => "wrong code",
            Rejection::Replay => "code already used (replay)",
            Rejection::ResyncPending => "code outside the window: resync pending",
            Rejection::Resynced(_) => "resynchronised",
        }
    }
}

/// A factory token's first code this far off (seconds) or less is accepted alone; farther off,
/// the next consecutive code must follow (research: hardware-imports §3).
pub(crate) const FIRST_USE_ONE_CODE_SECS: u64 = 300;

/// How long an out-of-window match waits for the next consecutive code.
const RESYNC_HINT_SECS: i64 = 300;

/// Strips the spaces people type into codes ("123 456") and checks the form.
pub(crate) fn normalize_code(code: &str) -> Result<String> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.is_empty() || code.len() > 10 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Invalid(Msg::new(Key::CodeFormat)));
    }
    Ok(code)
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

    /// Where `code` matches within `window` around the token's expected position, if anywhere:
    /// (counter or step, drift in steps). For TOTP the window is centred on the current step
    /// moved by the learned drift (RFC 6238 §6); for HOTP it looks ahead of the next counter.
    fn find_code(
        &self,
        token: &Token,
        secret: &Secret,
        code: &str,
        now: UnixTime,
        window: Window,
    ) -> Result<Option<(i64, i64)>> {
        Ok(match token.kind {
            TokenKind::Totp => {
                let totp = Self::totp_of(token)?;
                let current = step_of(&totp, now);
                let center = u64::try_from(current.saturating_add(token.drift)).unwrap_or(0);
                totp.verify_step(secret, code, center, window)
                    .and_then(|s| i64::try_from(s).ok())
                    .map(|s| (s, s - current))
            }
            TokenKind::Hotp => {
                let hotp = Self::hotp_of(token)?;
                let from = u64::try_from(token.next_counter).unwrap_or(0);
                hotp.verify(secret, code, from, window.forward)
                    .and_then(|c| i64::try_from(c).ok())
                    .map(|c| (c, 0))
            }
            // Their codes are sent per login and checked as challenges, never from a seed.
            TokenKind::Email | TokenKind::Sms => None,
        })
    }

    /// The drift a TOTP token has when `step` is its current step now.
    fn drift_at(token: &Token, step: i64, now: UnixTime) -> Result<i64> {
        Ok(match token.kind {
            TokenKind::Totp => step - step_of(&Self::totp_of(token)?, now),
            _ => 0,
        })
    }

    /// Checks one code against one token in state `from`, moving it to `to` on success. Applies
    /// throttling before checking and (for active tokens, when configured) completes an automatic
    /// resync with the code after an out-of-window one. A refusal is not counted here: the
    /// caller knows whether the failure is the token's ([`Service::count_failure`]).
    pub(crate) async fn try_code(
        &self,
        token: &Token,
        code: &str,
        from: TokenState,
        to: TokenState,
        on_accept: Option<AuditEvent>,
    ) -> Result<CodeCheck> {
        self.try_code_for(token, code, from, to, on_accept, None)
            .await
    }

    /// [`Service::try_code`] for a request with a fingerprint, stored with the counter.
    pub(crate) async fn try_code_for(
        &self,
        token: &Token,
        code: &str,
        from: TokenState,
        to: TokenState,
        on_accept: Option<AuditEvent>,
        request: Option<&RequestPrint>,
    ) -> Result<CodeCheck> {
        let now = self.clock.now();
        if token.throttled_until > now {
            return Ok(CodeCheck::Throttled);
        }
        if code.len() != token.digits as usize || !token.kind.has_seed() {
            return Ok(CodeCheck::Rejected(Rejection::Wrong));
        }
        let secret = self.token_secret(token)?;
        let cfg = &self.config.otp;
        let window = match token.kind {
            TokenKind::Totp => Window {
                back: cfg.totp_window_back,
                forward: cfg.totp_window_forward,
            },
            _ => Window {
                back: 0,
                forward: cfg.hotp_look_ahead,
            },
        };
        let mut rejection = Rejection::Wrong;
        if let Some((matched, drift)) = self.find_code(token, &secret, code, now, window)? {
            // Save the step or counter so only later ones are accepted (RFC 6238 §5.2); the
            // conditional update decides which of concurrent identical requests wins.
            if matched >= token.next_counter {
                let (done, audited) = self
                    .advance(token, matched, drift, from, to, now, on_accept, request)
                    .await?;
                if done {
                    if from == TokenState::Pending && to == TokenState::Active {
                        // From now on this user always needs a second factor.
                        self.store.mark_second_factor(token.user_id, now).await?;
                    }
                    return Ok(CodeCheck::Accepted {
                        matched,
                        resynced: false,
                        audited,
                    });
                }
            }
            rejection = Rejection::Replay;
        } else if token.kind == TokenKind::Hotp
            && token.next_counter > 0
            && crate::crypto::ct_eq(
                Self::hotp_of(token)?
                    .generate(&secret, (token.next_counter - 1) as u64)
                    .as_bytes(),
                code.as_bytes(),
            )
        {
            // The window only looks ahead; name a reuse of the last code for the audit.
            rejection = Rejection::Replay;
        } else if token.first_use_window > 0 {
            match self
                .first_use(token, &secret, code, now, (from, to), (on_accept, request))
                .await?
            {
                Ok(accepted) => return Ok(accepted),
                Err(r) => rejection = r,
            }
        } else if from == TokenState::Active && self.config.validate.auto_resync {
            rejection = self.auto_resync(token, &secret, code, now).await?;
            if let Rejection::Resynced(matched) = rejection {
                return Ok(CodeCheck::Accepted {
                    matched,
                    resynced: true,
                    audited: false,
                });
            }
        }
        Ok(CodeCheck::Rejected(rejection))
    }

    #[allow(clippy::too_many_arguments)] // the fields of one compare-and-set
    pub(super) async fn advance(
        &self,
        token: &Token,
        matched: i64,
        drift: i64,
        from: TokenState,
        to: TokenState,
        now: UnixTime,
        audit: Option<AuditEvent>,
        request: Option<&RequestPrint>,
    ) -> Result<(bool, bool)> {
        let adv = Advance {
            matched,
            drift,
            from,
            to,
            now,
            fails: token.fail_count,
            request: request.copied(),
        };
        self.writer.advance(token.id, adv, audit).await
    }

    /// A factory token's first use: its clock ran (or its counter moved) for years in a box, so
    /// a code is looked for in the token's own wide window. Up to [`FIRST_USE_ONE_CODE_SECS`]
    /// off, one code is enough; farther (and always for HOTP beyond the normal look-ahead) the
    /// next consecutive code must follow, as in a resync. The accepted code sets the drift and
    /// ends the first use (the store clears the window with every accepted code).
    async fn first_use(
        &self,
        token: &Token,
        secret: &Secret,
        code: &str,
        now: UnixTime,
        (from, to): (TokenState, TokenState),
        (on_accept, request): (Option<AuditEvent>, Option<&RequestPrint>),
    ) -> Result<std::result::Result<CodeCheck, Rejection>> {
        let side = u64::try_from(token.first_use_window)
            .unwrap_or(0)
            .min(Window::MAX_SIDE);
        let wide = match token.kind {
            TokenKind::Totp => Window {
                back: side,
                forward: side,
            },
            _ => Window {
                back: 0,
                forward: side,
            },
        };
        let Some((matched, drift)) = self.find_code(token, secret, code, now, wide)? else {
            return Ok(Err(Rejection::Wrong));
        };
        if matched < token.next_counter {
            return Ok(Err(Rejection::Replay));
        }
        let near = token.kind == TokenKind::Totp
            && drift.unsigned_abs().saturating_mul(token.period) <= FIRST_USE_ONE_CODE_SECS;
        let follows = token.resync_hint == Some(matched - 1)
            && now.saturating_sub(token.resync_hint_at) <= RESYNC_HINT_SECS;
        if !near && !follows {
            self.store
                .set_resync_hint(token.id, Some(matched), now)
                .await?;
            return Ok(Err(Rejection::ResyncPending));
        }
        let (done, audited) = self
            .advance(token, matched, drift, from, to, now, on_accept, request)
            .await?;
        if !done {
            return Ok(Err(Rejection::Replay));
        }
        if follows {
            self.store.set_resync_hint(token.id, None, now).await?;
        }
        if from == TokenState::Pending && to == TokenState::Active {
            self.store.mark_second_factor(token.user_id, now).await?;
        }
        Ok(Ok(CodeCheck::Accepted {
            matched,
            resynced: follows,
            audited,
        }))
    }

    /// A code outside the normal window: if it follows a remembered out-of-window code, accept
    /// it and move the token there; otherwise, if it lies within the resync window, remember it.
    async fn auto_resync(
        &self,
        token: &Token,
        secret: &Secret,
        code: &str,
        now: UnixTime,
    ) -> Result<Rejection> {
        if let Some(hint) = token.resync_hint
            && now.saturating_sub(token.resync_hint_at) <= RESYNC_HINT_SECS
            && hint >= token.next_counter
        {
            let next = hint.saturating_add(1);
            let expected = match token.kind {
                TokenKind::Totp => Self::totp_of(token)?.generate_step(secret, next as u64),
                _ => Self::hotp_of(token)?.generate(secret, next as u64),
            };
            if crate::crypto::ct_eq(expected.as_bytes(), code.as_bytes()) {
                let drift = Self::drift_at(token, next, now)?;
                if self
                    .advance(
                        token,
                        next,
                        drift,
                        TokenState::Active,
                        TokenState::Active,
                        now,
                        None,
                        None,
                    )
                    .await?
                    .0
                {
                    self.store.set_resync_hint(token.id, None, now).await?;
                    return Ok(Rejection::Resynced(next));
                }
                return Ok(Rejection::Replay);
            }
        }
        let cfg = &self.config.otp;
        let wide = match token.kind {
            TokenKind::Totp => Window {
                back: cfg.totp_resync_window,
                forward: cfg.totp_resync_window,
            },
            _ => Window {
                back: 0,
                forward: cfg.hotp_resync_window,
            },
        };
        // Search around the plain current step: the learned drift may be what went wrong.
        let mut plain = token.clone();
        plain.drift = 0;
        match self.find_code(&plain, secret, code, now, wide)? {
            Some((matched, _)) if matched >= token.next_counter => {
                self.store
                    .set_resync_hint(token.id, Some(matched), now)
                    .await?;
                Ok(Rejection::ResyncPending)
            }
            _ => Ok(Rejection::Wrong),
        }
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
            TokenKind::Email | TokenKind::Sms => None,
        }
        .filter(|(second, _)| *second > token.next_counter))
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
