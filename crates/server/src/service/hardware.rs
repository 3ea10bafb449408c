//! Hardware tokens after the import: assignment by an admin, self-service claiming by serial
//! and current code, retirement, and the encrypted export.
//!
//! Policy here: a token is assigned once (the store's one transaction decides), a claim answers
//! an unknown serial and a wrong code alike and is throttled per user and per source, the first
//! code of a factory token is looked for in its own wide window, and the export is off unless
//! the configuration allows it.

use tessera_import::{Kind, Record};
use tessera_otp::Secret;

use crate::model::{
    ImportRecord, InventoryFilter, InventoryState, InventoryToken, NewToken, TokenKind, TokenState,
};
use crate::msg::{Key, Msg};

use super::audit::Outcome;
use super::codes::seed_aad;
use super::inventory::inventory_aad;
use super::tokens::{TokenInfo, validate_token_name};
use super::{Actor, Error, Result, Service};

impl Service {
    /// An inventory token by serial, or `not_found`.
    pub async fn inventory_token(&self, serial: &str) -> Result<InventoryToken> {
        self.store
            .inventory_token(serial.trim())
            .await?
            .ok_or(Error::NotFound("inventory token"))
    }

    pub async fn list_inventory(
        &self,
        filter: &InventoryFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<InventoryToken>, i64)> {
        Ok(self
            .store
            .list_inventory(filter, limit.clamp(1, super::MAX_PAGE), offset.max(0))
            .await?)
    }

    pub async fn imports(&self, limit: i64) -> Result<Vec<ImportRecord>> {
        Ok(self.store.imports(limit.clamp(1, super::MAX_PAGE)).await?)
    }

    /// Assigns an in-stock token to a user: a copy becomes the user's token, active (the seed
    /// came from the maker), with the counter and drift the inventory knows. An admin needs a
    /// fresh re-authentication.
    pub async fn assign_inventory_token(
        &self,
        actor: &Actor,
        serial: &str,
        username: &str,
        name: Option<&str>,
    ) -> Result<TokenInfo> {
        actor.require_reauth(self.clock.now())?;
        let inv = self.inventory_token(serial).await?;
        if inv.state != InventoryState::InStock {
            return Err(Error::Conflict(Msg::new(Key::NotInStock)));
        }
        let user = self.user_named(username).await?;
        let secret = self
            .keys
            .open(&inventory_aad(&inv.serial.0), &inv.sealed_secret)?;
        let name = match name {
            Some(n) => validate_token_name(n)?,
            None => validate_token_name(&format!("Hardware token {}", inv.serial.0))?,
        };
        let new = NewToken {
            user_id: user.id,
            sealed_secret: self.keys.seal(&seed_aad(&inv.serial), &secret)?,
            serial: inv.serial.clone(),
            kind: inv.kind,
            name,
            algorithm: inv.algorithm,
            digits: inv.digits,
            period: inv.period,
            state: TokenState::Active,
            next_counter: inv.counter,
        };
        let now = self.clock.now();
        let token = match self
            .store
            .assign_inventory(
                &inv.serial.0,
                &new,
                inv.drift,
                first_use_window(&inv, now),
                now,
            )
            .await
        {
            Ok(Some(t)) => t,
            Ok(None) => return Err(Error::Conflict(Msg::new(Key::NotInStock))),
            Err(crate::store::StoreError::Conflict) => {
                return Err(Error::Conflict(Msg::new(Key::SerialExists)));
            }
            Err(e) => return Err(e.into()),
        };
        self.audit(
            actor,
            "inventory.assign",
            format!("token:{}", token.serial),
            &user.username,
            Outcome::Success,
            format!("{} {} from stock, active", inv.kind, inv.serial.0),
        )
        .await?;
        Ok(TokenInfo::new(&token, &user))
    }

    /// Takes an in-stock token out of stock (lost, broken, expired).
    pub async fn retire_inventory_token(&self, actor: &Actor, serial: &str) -> Result<()> {
        actor.require_reauth(self.clock.now())?;
        let inv = self.inventory_token(serial).await?;
        if !self
            .store
            .retire_inventory(&inv.serial.0, self.clock.now())
            .await?
        {
            return Err(Error::Conflict(Msg::new(Key::NotInStock)));
        }
        self.audit(
            actor,
            "inventory.retire",
            format!("inventory:{}", inv.serial.0),
            "",
            Outcome::Success,
            "taken out of stock",
        )
        .await?;
        Ok(())
    }

    /// Writes every in-stock token to `out` as encrypted PSKC (see
    /// [`InventoryConfig`](crate::config::InventoryConfig): off unless allowed). Returns the
    /// number written.
    pub async fn export_inventory<W: std::io::Write + Send>(
        &self,
        actor: &Actor,
        out: W,
        protection: tessera_import::pskc::ExportProtection,
    ) -> Result<u64> {
        if !self.config.inventory.allow_seed_export {
            return Err(Error::Forbidden(Msg::new(Key::ExportDisabled)));
        }
        let random: tessera_import::pskc::Random = Box::new(|buf: &mut [u8]| {
            crate::crypto::fill_random(buf).map_err(std::io::Error::other)
        });
        let io = |e: std::io::Error| Error::Invalid(Msg::text(format!("export failed: {e}")));
        let mut writer =
            tessera_import::pskc::PskcWriter::new(out, protection, random).map_err(io)?;
        let (mut after, mut count) = (0i64, 0u64);
        loop {
            let page = self.store.inventory_after(after, 500).await?;
            if page.is_empty() {
                break;
            }
            for inv in &page {
                after = inv.id;
                let secret = self
                    .keys
                    .open(&inventory_aad(&inv.serial.0), &inv.sealed_secret)?;
                let secret = Secret::from_bytes(secret.to_vec())
                    .map_err(|e| Error::Invalid(Msg::text(e.to_string())))?;
                let record = export_record(inv, secret);
                writer.write(&record).map_err(io)?;
                count += 1;
            }
        }
        writer.finish().map_err(io)?;
        self.audit(
            actor,
            "inventory.export",
            "inventory".into(),
            "",
            Outcome::Success,
            format!("{count} seeds exported, encrypted PSKC"),
        )
        .await?;
        Ok(count)
    }
}

/// Seconds in a (Julian) year, for drift that grows with the years a token lay in a box.
const YEAR_SECS: i64 = 31_557_600;

/// How far a factory token's first code is looked for: TOTP ±max(15 min, 3 min per year since
/// it was made (its `StartDate`) or came into stock), in steps; HOTP 1,000 counters ahead. The
/// Feitian c200 spec allows ±3 steps of 30 s a year; 7-8 steps after a few years were seen.
fn first_use_window(inv: &InventoryToken, now: crate::clock::UnixTime) -> i64 {
    match inv.kind {
        TokenKind::Hotp => 1000,
        _ => {
            let since = inv.not_before.unwrap_or(inv.created_at);
            let age = now.saturating_sub(since).max(0);
            // 3 minutes per year, counted in whole seconds.
            let secs = (age.saturating_mul(180) / YEAR_SECS).max(15 * 60);
            let period = i64::try_from(inv.period.max(1)).unwrap_or(30);
            ((secs + period - 1) / period).min(1000)
        }
    }
}

/// A stored token as the PSKC writer takes it.
fn export_record(inv: &InventoryToken, secret: Secret) -> Record {
    let kind = match inv.kind {
        TokenKind::Hotp => Kind::Hotp {
            counter: u64::try_from(inv.counter).unwrap_or(0),
        },
        _ => Kind::Totp {
            period: inv.period,
            drift: inv.drift,
        },
    };
    let mut r = tessera_import::uri::record_from_uri(
        tessera_otp::KeyUri {
            kind: tessera_otp::UriKind::Totp { period: 30 },
            issuer: None,
            account: inv.serial.0.clone(),
            secret,
            algorithm: inv.algorithm,
            digits: inv.digits,
        },
        String::new(),
    );
    r.kind = kind;
    r.serial = Some(inv.serial.0.clone());
    r.manufacturer = Some(inv.manufacturer.clone()).filter(|m| !m.is_empty());
    r.model = Some(inv.model.clone()).filter(|m| !m.is_empty());
    r
}

/// A serial as typed, for the audit log: printable and at most 64 characters.
fn typed_serial(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// Failed claims per hour: per user, and per source address (serials are printed on the
/// tokens and often sequential, so guessing is cheap without a limit).
pub(super) const CLAIM_FAILURES_PER_USER: u64 = 5;
pub(super) const CLAIM_FAILURES_PER_SOURCE: u64 = 20;

/// Where a claim's code matched: the next counter or step, the drift, and whether it was near
/// enough for one code.
struct ClaimMatch {
    next: i64,
    drift: i64,
    near: bool,
}

impl Service {
    /// Looks for `code` in the token's first-use window (see [`first_use_window`]).
    fn match_first_code(
        &self,
        inv: &InventoryToken,
        code: &str,
        now: crate::clock::UnixTime,
    ) -> Result<Option<ClaimMatch>> {
        let secret = self
            .keys
            .open(&inventory_aad(&inv.serial.0), &inv.sealed_secret)?;
        let secret = Secret::from_bytes(secret.to_vec())
            .map_err(|_| Error::Crypto(crate::crypto::CryptoError::Open { key_id: 0 }))?;
        let side = u64::try_from(first_use_window(inv, now)).unwrap_or(0);
        let bad = |e: tessera_otp::OtpError| {
            Error::Store(crate::store::StoreError::Corrupt(e.to_string()))
        };
        Ok(match inv.kind {
            TokenKind::Hotp => {
                let hotp = tessera_otp::Hotp::new(inv.algorithm, inv.digits).map_err(bad)?;
                let from = u64::try_from(inv.counter).unwrap_or(0);
                hotp.verify(&secret, code, from, side).map(|c| ClaimMatch {
                    next: i64::try_from(c + 1).unwrap_or(i64::MAX),
                    drift: 0,
                    near: c - from <= self.config.otp.hotp_look_ahead,
                })
            }
            _ => {
                let totp =
                    tessera_otp::Totp::new(inv.algorithm, inv.digits, inv.period).map_err(bad)?;
                let current =
                    i64::try_from(totp.step(u64::try_from(now).unwrap_or(0))).unwrap_or(0);
                let center = u64::try_from(current.saturating_add(inv.drift)).unwrap_or(0);
                let window = tessera_otp::Window {
                    back: side,
                    forward: side,
                };
                totp.verify_step(&secret, code, center, window).map(|s| {
                    let step = i64::try_from(s).unwrap_or(i64::MAX);
                    let drift = step - current;
                    ClaimMatch {
                        next: step.saturating_add(1),
                        drift,
                        near: drift.unsigned_abs().saturating_mul(inv.period)
                            <= super::codes::FIRST_USE_ONE_CODE_SECS,
                    }
                })
            }
        })
    }

    /// A user adds a hardware token from stock with its serial and the code it shows now (and,
    /// when its clock is far off, the next code too): bound and active in one step. An unknown
    /// serial, a token not in stock and a wrong code get the same answer; failures are
    /// throttled per user and per source address.
    pub async fn claim_hardware_token(
        &self,
        me: &super::WebUser,
        serial: &str,
        code: &str,
        next_code: &str,
    ) -> Result<TokenInfo> {
        let now = self.clock.now();
        let user_key = format!("user:{}", me.user.id.0);
        let source_key = format!("source:{}", me.source);
        let serial = serial.trim();
        let target = format!("inventory:{}", typed_serial(serial));
        if self.claim_user_failures.spent(&user_key, now)
            || self.claim_source_failures.spent(&source_key, now)
        {
            self.audit(
                &me.actor(),
                "inventory.claim",
                target,
                &me.user.username,
                Outcome::Failure,
                "too many failed claims",
            )
            .await?;
            return Err(Error::Throttled);
        }
        let code = super::codes::normalize_code(code)?;
        let next_code = next_code.trim();
        let next_code = if next_code.is_empty() {
            None
        } else {
            Some(super::codes::normalize_code(next_code)?)
        };
        let inv = self
            .store
            .inventory_token(serial)
            .await?
            .filter(|t| t.state == InventoryState::InStock && !serial.is_empty());
        let found = match &inv {
            Some(inv) => self.match_first_code(inv, &code, now)?,
            None => None,
        };
        let (inv, found) = match (inv, found) {
            (Some(inv), Some(found)) => (inv, found),
            (inv, _) => {
                self.claim_user_failures.record(&user_key, now);
                self.claim_source_failures.record(&source_key, now);
                let why = if inv.is_some() {
                    "wrong code"
                } else {
                    "no such serial in stock"
                };
                self.audit(
                    &me.actor(),
                    "inventory.claim",
                    target,
                    &me.user.username,
                    Outcome::Failure,
                    why,
                )
                .await?;
                return Err(Error::InvalidCode);
            }
        };
        let mut next = found.next;
        if !found.near {
            // Far off: the next consecutive code must follow, as in a resync.
            let Some(next_code) = next_code else {
                return Err(Error::Invalid(Msg::new(Key::ClaimNextCode)));
            };
            if self.match_next(&inv, &next_code, next)? {
                next += 1;
            } else {
                self.claim_user_failures.record(&user_key, now);
                self.claim_source_failures.record(&source_key, now);
                self.audit(
                    &me.actor(),
                    "inventory.claim",
                    target,
                    &me.user.username,
                    Outcome::Failure,
                    "next code wrong",
                )
                .await?;
                return Err(Error::InvalidCode);
            }
        }
        let secret = self
            .keys
            .open(&inventory_aad(&inv.serial.0), &inv.sealed_secret)?;
        let new = NewToken {
            user_id: me.user.id,
            sealed_secret: self.keys.seal(&seed_aad(&inv.serial), &secret)?,
            serial: inv.serial.clone(),
            kind: inv.kind,
            name: validate_token_name(&format!("Hardware token {}", inv.serial.0))?,
            algorithm: inv.algorithm,
            digits: inv.digits,
            period: inv.period,
            state: TokenState::Active,
            next_counter: next,
        };
        let Some(token) = self
            .store
            .assign_inventory(&inv.serial.0, &new, found.drift, 0, now)
            .await?
        else {
            return Err(Error::InvalidCode);
        };
        self.store.mark_second_factor(me.user.id, now).await?;
        let offset = found
            .drift
            .saturating_mul(i64::try_from(inv.period).unwrap_or(0));
        let reason = match inv.kind {
            TokenKind::Totp => {
                format!("claimed with serial and code, active; token clock {offset:+} s off")
            }
            _ => format!("claimed with serial and code, active; counter {}", next - 1),
        };
        self.audit(
            &me.actor(),
            "inventory.claim",
            format!("token:{}", token.serial),
            &me.user.username,
            Outcome::Success,
            reason,
        )
        .await?;
        Ok(TokenInfo::new(&token, &me.user))
    }

    /// Whether `code` is the one at counter or step `at` exactly.
    fn match_next(&self, inv: &InventoryToken, code: &str, at: i64) -> Result<bool> {
        let secret = self
            .keys
            .open(&inventory_aad(&inv.serial.0), &inv.sealed_secret)?;
        let secret = Secret::from_bytes(secret.to_vec())
            .map_err(|_| Error::Crypto(crate::crypto::CryptoError::Open { key_id: 0 }))?;
        let at = u64::try_from(at).unwrap_or(0);
        let bad = |e: tessera_otp::OtpError| {
            Error::Store(crate::store::StoreError::Corrupt(e.to_string()))
        };
        let expected = match inv.kind {
            TokenKind::Hotp => tessera_otp::Hotp::new(inv.algorithm, inv.digits)
                .map_err(bad)?
                .generate(&secret, at),
            _ => tessera_otp::Totp::new(inv.algorithm, inv.digits, inv.period)
                .map_err(bad)?
                .generate_step(&secret, at),
        };
        Ok(crate::crypto::ct_eq(expected.as_bytes(), code.as_bytes()))
    }
}
