//! Programmable hardware tokens (seed 004): Tessera makes the seed, shows it once (QR code,
//! base32 and hex) beside its own clock, and the token is burned with a programming tool that
//! copies the programming PC's clock into it. The token then waits (pending) for its first
//! code, which is looked for within ±15 minutes: the offset found is learned and reported, so a
//! wrong PC clock is named instead of a token that "never works". Up to 5 minutes off one code
//! is enough; farther, the next consecutive code must follow. A code that fits none of the
//! chosen parameters is tried with SHA-256 and with 60 s steps too (the options burner tools
//! leave on): a match needs the next code as well, and then the token is kept with the
//! parameters it really uses, and the page says so.
//!
//! The seed is shown only in the answer to [`Service::program_hardware_token`]; reprogramming
//! means a new token.

use serde::Serialize;
use tessera_otp::{HashAlgorithm, Secret, Totp, Window};

use crate::clock::UnixTime;
use crate::crypto::CryptoError;
use crate::model::{NewToken, Serial, Token, TokenId, TokenKind, TokenState};
use crate::msg::{Key, Msg, state_key};
use crate::store::StoreError;

use super::audit::Outcome;
use super::codes::{FIRST_USE_ONE_CODE_SECS, normalize_code, seed_aad};
use super::tokens::{TokenInfo, validate_token_name};
use super::{Actor, Error, Result, Service, WebUser};

/// How far from the server's clock a programmed token's first code is looked for.
pub const PROGRAM_WINDOW_SECS: u64 = 15 * 60;

/// The digits every programmable token shows (Token2 single-profile tokens have no digits
/// setting at all).
const DIGITS: u32 = 6;

/// The hash and time step a programmable token computes its codes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BurnParams {
    #[serde(serialize_with = "algorithm_name")]
    pub algorithm: HashAlgorithm,
    pub period: u64,
}

fn algorithm_name<S: serde::Serializer>(a: &HashAlgorithm, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(a.as_str())
}

impl BurnParams {
    /// What every programmable token accepts: SHA-1, 30 s.
    pub const DEFAULT: BurnParams = BurnParams {
        algorithm: HashAlgorithm::Sha1,
        period: 30,
    };

    /// "SHA1 30s", as the audit log writes parameters.
    pub fn text(self) -> String {
        format!("{} {}s", self.algorithm, self.period)
    }

    /// The parameters tried after the chosen ones: the other hash, the other step, both.
    fn alternatives(self) -> [BurnParams; 3] {
        let hash = match self.algorithm {
            HashAlgorithm::Sha1 => HashAlgorithm::Sha256,
            _ => HashAlgorithm::Sha1,
        };
        let period = if self.period == 30 { 60 } else { 30 };
        [
            BurnParams {
                algorithm: hash,
                period: self.period,
            },
            BurnParams {
                algorithm: self.algorithm,
                period,
            },
            BurnParams {
                algorithm: hash,
                period,
            },
        ]
    }

    /// Steps on each side of the current one within [`PROGRAM_WINDOW_SECS`].
    fn side(self) -> u64 {
        PROGRAM_WINDOW_SECS.div_ceil(self.period.max(1))
    }
}

/// What the admin or user chose for a token to program.
#[derive(Debug, Clone, Default)]
pub struct ProgramToken {
    /// The serial printed on the token; empty: Tessera makes one.
    pub serial: String,
    /// Empty: "Hardware token SERIAL".
    pub name: String,
    /// SHA-256 instead of SHA-1: only when the device supports it.
    pub sha256: bool,
    /// 60 s steps instead of 30 s: only when the device supports it.
    pub period60: bool,
}

/// A programmed token just made: the seed is in here this once and never again.
#[derive(Serialize)]
pub struct ProgrammedToken {
    pub token: TokenInfo,
    pub params: BurnParams,
    pub otpauth_uri: String,
    /// Base32 in groups of four.
    pub secret_base32: String,
    /// Lower-case hex in groups of eight (some burner tools ask for hex).
    pub secret_hex: String,
    pub qr_svg: String,
    /// The server's time when the seed was made.
    pub server_time: UnixTime,
}

impl std::fmt::Debug for ProgrammedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgrammedToken")
            .field("token", &self.token)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// How far the token's clock is from the server's, measured from the accepted code: the token
/// showed the code of `step` while the server was at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ClockOffset {
    /// Seconds the token's clock runs ahead (negative: behind), the middle of the step.
    pub seconds: i64,
    /// Half a time step: how exact `seconds` is.
    pub within: u64,
}

impl ClockOffset {
    fn measure(step: u64, period: u64, now: UnixTime) -> ClockOffset {
        let start = i64::try_from(step.saturating_mul(period)).unwrap_or(i64::MAX);
        let half = i64::try_from(period / 2).unwrap_or(0);
        ClockOffset {
            seconds: start.saturating_add(half).saturating_sub(now),
            within: period / 2,
        }
    }

    /// Whether the clocks agree to within the step (the token showed the server's current code).
    pub fn agrees(self) -> bool {
        self.seconds.unsigned_abs() <= self.within
    }
}

/// The answer to a programmed token's first code(s).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ProgramActivation {
    /// Active. `burned_as`: the parameters the token really uses, when they are not the chosen
    /// ones (it is stored with them).
    Active {
        token: TokenInfo,
        offset: ClockOffset,
        chosen: BurnParams,
        burned_as: Option<BurnParams>,
    },
    /// The code fits, but far off or with other parameters: the code shown now and the next
    /// one are needed. `burned_as` as above; `offset` where the code was found.
    NextCode {
        offset: ClockOffset,
        chosen: BurnParams,
        burned_as: Option<BurnParams>,
    },
}

/// Where a first code fits: the parameters, the step of the last code used, the server's step
/// then, and whether two codes were used.
#[derive(Debug, Clone, Copy)]
struct Fit {
    params: BurnParams,
    step: u64,
    current: u64,
}

enum Search {
    Accept(Fit),
    NextCode(Fit),
    Nothing,
}

/// A printed serial: 1-64 letters, digits or `. _ - :`.
fn validate_serial(serial: &str) -> Result<String> {
    let s = serial.trim();
    if s.is_empty()
        || s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
    {
        return Err(Error::Invalid(Msg::new(Key::SerialFormat)));
    }
    Ok(s.to_owned())
}

/// Looks for `code` (and `next`, the code after it) within ±15 minutes, first with the chosen
/// parameters, then with the alternatives. One code is enough only with the chosen parameters
/// and up to [`FIRST_USE_ONE_CODE_SECS`] off.
fn search(
    secret: &Secret,
    code: &str,
    next: Option<&str>,
    now: UnixTime,
    chosen: BurnParams,
) -> Result<Search> {
    let mut far = None;
    let all = std::iter::once(chosen).chain(chosen.alternatives());
    for (i, params) in all.enumerate() {
        let totp = Totp::new(params.algorithm, DIGITS, params.period)
            .map_err(|e| Error::Store(StoreError::Corrupt(e.to_string())))?;
        let current = totp.step(u64::try_from(now).unwrap_or(0));
        let side = params.side().min(Window::MAX_SIDE);
        let (lo, hi) = (current.saturating_sub(side), current.saturating_add(side));
        let mut from = lo;
        // Every step in the window where the code fits (a 6-digit code may fit twice).
        while from <= hi {
            let window = Window {
                back: 0,
                forward: hi - from,
            };
            let Some(step) = totp.verify_step(secret, code, from, window) else {
                break;
            };
            if let Some(next) = next {
                let expected = totp.generate_step(secret, step.saturating_add(1));
                if crate::crypto::ct_eq(expected.as_bytes(), next.as_bytes()) {
                    return Ok(Search::Accept(Fit {
                        params,
                        step: step + 1,
                        current,
                    }));
                }
            }
            let off = step.abs_diff(current).saturating_mul(params.period);
            let fit = Fit {
                params,
                step,
                current,
            };
            if i == 0 && off <= FIRST_USE_ONE_CODE_SECS {
                return Ok(Search::Accept(fit));
            }
            far.get_or_insert(fit);
            from = step.saturating_add(1);
        }
    }
    Ok(far.map_or(Search::Nothing, Search::NextCode))
}

impl Service {
    /// Makes a programmable token for `username`: pending, TOTP, 6 digits, SHA-1/30 s unless
    /// the device supports more, with a fresh 20-byte seed returned this once. An admin needs a
    /// fresh re-authentication, as for every seed shown.
    pub async fn program_hardware_token(
        &self,
        actor: &Actor,
        username: &str,
        req: ProgramToken,
    ) -> Result<ProgrammedToken> {
        actor.require_reauth(self.clock.now())?;
        let user = self.user_named(username).await?;
        self.program_for(actor, &user, req).await
    }

    /// [`Service::program_hardware_token`] for the logged-in user (portal); needs a fresh
    /// re-authentication.
    pub async fn program_my_hardware_token(
        &self,
        me: &WebUser,
        req: ProgramToken,
    ) -> Result<ProgrammedToken> {
        self.require_web_reauth(me)?;
        self.program_for(&me.actor(), &me.user, req).await
    }

    async fn program_for(
        &self,
        actor: &Actor,
        user: &crate::model::User,
        req: ProgramToken,
    ) -> Result<ProgrammedToken> {
        let params = BurnParams {
            algorithm: if req.sha256 {
                HashAlgorithm::Sha256
            } else {
                HashAlgorithm::Sha1
            },
            period: if req.period60 { 60 } else { 30 },
        };
        let serial = if req.serial.trim().is_empty() {
            Serial(format!("PROG{}", crate::crypto::random_readable(8)?))
        } else {
            Serial(validate_serial(&req.serial)?)
        };
        let name = if req.name.trim().is_empty() {
            validate_token_name(&format!("Hardware token {}", serial.0))?
        } else {
            validate_token_name(&req.name)?
        };
        let secret = Secret::generate().map_err(|_| Error::Crypto(CryptoError::Random))?;
        let new = NewToken {
            user_id: user.id,
            sealed_secret: self.keys.seal(&seed_aad(&serial), secret.as_bytes())?,
            serial: serial.clone(),
            kind: TokenKind::Totp,
            name,
            algorithm: params.algorithm,
            digits: DIGITS,
            period: params.period,
            state: TokenState::Pending,
            next_counter: 0,
        };
        let now = self.clock.now();
        let token = match self.store.insert_token(&new, now).await {
            Err(StoreError::Conflict) => {
                return Err(Error::Conflict(
                    Msg::new(Key::SerialInUse).arg("serial", &serial.0),
                ));
            }
            other => other?,
        };
        // The first-use window marks it as programmed: its first code is looked for widely.
        let side = i64::try_from(params.side()).unwrap_or(0);
        self.store
            .set_pending_params(token.id, params.algorithm, params.period, side)
            .await?;
        let uri = tessera_otp::KeyUri {
            kind: tessera_otp::UriKind::Totp {
                period: params.period,
            },
            issuer: Some(self.config.issuer()),
            account: user.username.clone(),
            secret: secret.clone(),
            algorithm: params.algorithm,
            digits: DIGITS,
        }
        .to_uri();
        let qr_svg =
            crate::qr::svg(&uri, 256).map_err(|_| Error::Invalid(Msg::new(Key::KeyUriTooLong)))?;
        let hex = zeroize::Zeroizing::new(secret.to_hex());
        let secret_hex = hex
            .as_bytes()
            .chunks(8)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        self.audit(
            actor,
            "token.program",
            format!("token:{}", token.serial),
            &user.username,
            Outcome::Success,
            format!(
                "programmable token, totp {} 6 digits, seed shown once, pending until a first code",
                params.text()
            ),
        )
        .await?;
        Ok(ProgrammedToken {
            token: TokenInfo::new(&token, user),
            params,
            qr_svg,
            secret_base32: secret.to_base32_grouped(),
            secret_hex,
            otpauth_uri: uri,
            server_time: now,
        })
    }

    /// Whether a token is a programmed one still waiting for its first code.
    fn waits_for_programming(token: &Token) -> bool {
        token.state == TokenState::Pending
            && token.kind == TokenKind::Totp
            && token.first_use_window > 0
    }

    /// The user's programmed tokens still waiting for their first code.
    pub async fn programmed_pending(&self, username: &str) -> Result<Vec<TokenInfo>> {
        let user = self.user_named(username).await?;
        let tokens = self.store.tokens_of(user.id).await?;
        Ok(tokens
            .iter()
            .filter(|t| Self::waits_for_programming(t))
            .map(|t| TokenInfo::new(t, &user))
            .collect())
    }

    /// Activates a programmed token with its first code (and, when asked, the code after it):
    /// see the module notes. A wrong code counts against the token like any first code.
    pub async fn activate_programmed_token(
        &self,
        actor: &Actor,
        id: TokenId,
        code: &str,
        next_code: &str,
    ) -> Result<ProgramActivation> {
        let (token, user) = self.token_with_owner(id).await?;
        self.activate_programmed(actor, token, &user, code, next_code)
            .await
    }

    /// [`Service::activate_programmed_token`] for one of the logged-in user's own tokens.
    pub async fn activate_my_programmed_token(
        &self,
        me: &WebUser,
        id: TokenId,
        code: &str,
        next_code: &str,
    ) -> Result<ProgramActivation> {
        let token = self.my_token(me, id).await?;
        self.activate_programmed(&me.actor(), token, &me.user, code, next_code)
            .await
    }

    async fn activate_programmed(
        &self,
        actor: &Actor,
        token: Token,
        user: &crate::model::User,
        code: &str,
        next_code: &str,
    ) -> Result<ProgramActivation> {
        let code = normalize_code(code)?;
        let next = match next_code.trim() {
            "" => None,
            n => Some(normalize_code(n)?),
        };
        if !Self::waits_for_programming(&token) {
            return Err(Error::TokenState(
                Msg::new(Key::NotPending).arg_key("state", state_key(token.state)),
            ));
        }
        let now = self.clock.now();
        if token.throttled_until > now {
            return Err(Error::Throttled);
        }
        let target = format!("token:{}", token.serial);
        let chosen = BurnParams {
            algorithm: token.algorithm,
            period: token.period,
        };
        let secret = self.token_secret(&token)?;
        let found = if code.len() == DIGITS as usize {
            search(&secret, &code, next.as_deref(), now, chosen)?
        } else {
            Search::Nothing
        };
        let fit = match found {
            Search::Accept(fit) => fit,
            Search::NextCode(fit) if next.is_none() => {
                let burned_as = (fit.params != chosen).then_some(fit.params);
                return Ok(ProgramActivation::NextCode {
                    offset: ClockOffset::measure(fit.step, fit.params.period, now),
                    chosen,
                    burned_as,
                });
            }
            Search::NextCode(_) | Search::Nothing => {
                self.count_failure(&token).await?;
                let why = if next.is_some() {
                    "programmed token: codes not consecutive within 15 minutes"
                } else {
                    "programmed token: wrong code (not within 15 minutes, with SHA1 or SHA256, 30s or 60s)"
                };
                self.audit(
                    actor,
                    "token.activate",
                    target,
                    &user.username,
                    Outcome::Failure,
                    why,
                )
                .await?;
                return Err(Error::InvalidCode);
            }
        };
        let mut token = token;
        let burned_as = (fit.params != chosen).then_some(fit.params);
        if let Some(real) = burned_as {
            // Kept with what the token really computes.
            let side = i64::try_from(real.side()).unwrap_or(0);
            if !self
                .store
                .set_pending_params(token.id, real.algorithm, real.period, side)
                .await?
            {
                return Err(Error::TokenState(
                    Msg::new(Key::NotPending).arg_key("state", state_key(TokenState::Active)),
                ));
            }
            token.algorithm = real.algorithm;
            token.period = real.period;
        }
        let step = i64::try_from(fit.step).unwrap_or(i64::MAX);
        let drift = step - i64::try_from(fit.current).unwrap_or(0);
        let (done, _) = self
            .advance(
                &token,
                step,
                drift,
                TokenState::Pending,
                TokenState::Active,
                now,
                None,
                None,
            )
            .await?;
        if !done {
            return Err(Error::InvalidCode);
        }
        self.store.mark_second_factor(user.id, now).await?;
        let offset = ClockOffset::measure(fit.step, fit.params.period, now);
        let mut reason = format!(
            "programmed token active, token clock {:+} s off",
            offset.seconds
        );
        if let Some(real) = burned_as {
            reason.push_str(&format!(
                "; burned as {}, not {} as chosen",
                real.text(),
                chosen.text()
            ));
        }
        self.audit(
            actor,
            "token.activate",
            target,
            &user.username,
            Outcome::Success,
            reason,
        )
        .await?;
        let (token, user) = self.token_with_owner(token.id).await?;
        Ok(ProgramActivation::Active {
            token: TokenInfo::new(&token, &user),
            offset,
            chosen,
            burned_as,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_are_the_other_hash_and_step() {
        let alt = BurnParams::DEFAULT.alternatives();
        assert_eq!(
            alt.map(BurnParams::text),
            ["SHA256 30s", "SHA1 60s", "SHA256 60s"]
        );
        assert_eq!(BurnParams::DEFAULT.side(), 30);
        assert_eq!(alt[1].side(), 15);
    }

    #[test]
    fn the_offset_is_the_middle_of_the_step() {
        // The server at 1000 s shows step 33 (990-1019); the token showed step 40.
        let o = ClockOffset::measure(40, 30, 1000);
        assert_eq!((o.seconds, o.within), (215, 15));
        assert!(!o.agrees());
        assert!(ClockOffset::measure(33, 30, 1000).agrees());
    }

    #[test]
    fn printed_serials() {
        assert_eq!(validate_serial(" 2100123456 ").unwrap(), "2100123456");
        for bad in ["", "a b", "x/y", &"9".repeat(65)] {
            assert!(validate_serial(bad).is_err(), "{bad}");
        }
    }
}
