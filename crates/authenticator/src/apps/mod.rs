//! Other authenticator apps' export files: Aegis (plain and encrypted), 2FAS (plain and
//! encrypted), andOTP (plain and encrypted) and FreeOTP+. Written from the apps' published
//! format descriptions; every key-derivation parameter read from a file is bounded **before**
//! it runs, every entry is checked by the engine's rules, and what is skipped is reported per
//! entry (`entry 3 "GitHub"`), never with its secret.
//!
//! Pure: bytes and a password in, candidates and skips out. The password is asked for only when
//! the file is encrypted.

pub mod aegis;
pub mod andotp;
pub mod freeotp;
pub mod twofas;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use tessera_import::{Refusal, Skip, SkipReason};
use tessera_otp::{HashAlgorithm, Hotp, Secret, Totp};
use zeroize::Zeroizing;

use crate::cli::Secrets;
use crate::entry::EntryKind;
use crate::import::{Candidate, Format, Found};

/// Largest export file read.
pub const MAX_FILE: usize = 16 * 1024 * 1024;
/// Most entries taken from one file.
pub const MAX_ENTRIES: usize = 100_000;

/// Why an app file gave nothing.
#[derive(Debug)]
pub enum AppError {
    /// The file is refused as a whole (wrong password, malformed, unsupported).
    Refused(Refusal),
    /// Asking for a password failed.
    Other(anyhow::Error),
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> AppError {
        AppError::Refused(r)
    }
}

/// Asks for a file's password only when the reader needs one.
pub trait PasswordSource {
    fn password(&mut self, file: &str) -> Result<Zeroizing<String>, AppError>;
}

impl PasswordSource for Secrets {
    fn password(&mut self, file: &str) -> Result<Zeroizing<String>, AppError> {
        Secrets::password(self, &format!("password of {file}: ")).map_err(AppError::Other)
    }
}

/// A fixed password (tests, and callers that already asked). `Debug` does not print it.
pub struct Given(pub Option<Zeroizing<String>>);

impl std::fmt::Debug for Given {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Given(redacted)")
    }
}

impl PasswordSource for Given {
    fn password(&mut self, file: &str) -> Result<Zeroizing<String>, AppError> {
        self.0.clone().ok_or_else(|| {
            AppError::Refused(Refusal::PasswordRequired {
                name: file.to_owned(),
            })
        })
    }
}

/// Reads an app's export.
pub fn read(
    format: Format,
    bytes: &[u8],
    locator: &str,
    pw: &mut dyn PasswordSource,
) -> Result<Found, AppError> {
    if bytes.len() > MAX_FILE {
        return Err(Refusal::TooLarge {
            limit: format!("{} MiB", MAX_FILE / 1024 / 1024),
        }
        .into());
    }
    match format {
        Format::Aegis => aegis::read(bytes, locator, pw),
        Format::TwoFas => twofas::read(bytes, locator, pw),
        Format::AndOtp => andotp::read(bytes, locator, pw),
        Format::FreeOtpPlus => freeotp::read(bytes),
        other => Err(Refusal::AlgorithmUnsupported {
            algorithm: format!("{} is not an app export", other.origin()),
        }
        .into()),
    }
}

pub(crate) fn malformed(problem: &str) -> AppError {
    AppError::Refused(Refusal::Malformed {
        problem: problem.to_owned(),
    })
}

/// Parses JSON of a file, refusing it as malformed (serde's message names positions, not values).
pub(crate) fn json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, AppError> {
    serde_json::from_slice(bytes).map_err(|e| {
        malformed(&format!(
            "{what}: {} at line {} column {}",
            match e.classify() {
                serde_json::error::Category::Data => "unexpected content",
                serde_json::error::Category::Eof => "truncated",
                _ => "not JSON",
            },
            e.line(),
            e.column()
        ))
    })
}

/// AES-256-GCM decryption (tag appended to the ciphertext, no associated data).
pub(crate) fn gcm_open(key: &[u8], nonce: &[u8], ct: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let nonce = Nonce::try_from(nonce).ok()?;
    cipher
        .decrypt(&nonce, Payload { msg: ct, aad: b"" })
        .ok()
        .map(Zeroizing::new)
}

/// AES-256-GCM encryption with a 12-byte nonce (for our Aegis export).
pub(crate) fn gcm_seal(key: &[u8], nonce: &[u8; 12], msg: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte AES key");
    cipher
        .encrypt(&Nonce::from(*nonce), Payload { msg, aad: b"" })
        .expect("AES-GCM encrypts any message below 64 GiB")
}

/// One entry as an app describes it, before the engine's checks. `Debug` names no secret.
#[derive(Default)]
pub(crate) struct Raw {
    /// `totp`, `hotp`, `steam` (any case); others are skipped.
    pub kind: String,
    pub secret: Option<Zeroizing<Vec<u8>>>,
    pub secret_b32: Option<Zeroizing<String>>,
    pub algorithm: String,
    pub digits: Option<i64>,
    pub period: Option<i64>,
    pub counter: Option<i64>,
    pub issuer: String,
    pub account: String,
    pub note: String,
}

impl std::fmt::Debug for Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Raw")
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

impl Raw {
    /// Checks the entry by the engine's rules: a candidate or a skip with its reason.
    pub fn check(self, locator: String, origin: &'static str) -> Result<Candidate, Skip> {
        let skip = |reason| Skip::new(locator.clone(), reason);
        let secret = match (self.secret, self.secret_b32) {
            (Some(bytes), _) if !bytes.is_empty() => Secret::from_bytes(bytes.to_vec()),
            (_, Some(b32)) if !b32.trim().is_empty() => Secret::from_base32(&b32),
            _ => return Err(skip(SkipReason::NoSecret)),
        }
        .map_err(|_| skip(SkipReason::SecretInvalid))?;
        let algorithm = match self.algorithm.to_ascii_uppercase().as_str() {
            "" | "SHA1" | "SHA-1" => HashAlgorithm::Sha1,
            "SHA256" | "SHA-256" => HashAlgorithm::Sha256,
            "SHA512" | "SHA-512" => HashAlgorithm::Sha512,
            "MD5" => return Err(skip(SkipReason::HashMd5)),
            other => {
                return Err(skip(SkipReason::HashUnsupported {
                    name: other.chars().take(20).collect(),
                }));
            }
        };
        let kind_name = self.kind.to_ascii_lowercase();
        let digits_default = if kind_name == "steam" { 5 } else { 6 };
        let digits = self.digits.unwrap_or(digits_default);
        let digits = u32::try_from(digits).map_err(|_| {
            skip(SkipReason::DigitsUnsupported {
                digits: digits.to_string(),
            })
        })?;
        let int = |v: Option<i64>, default: u64, field: &'static str| -> Result<u64, Skip> {
            match v {
                None => Ok(default),
                Some(v) => u64::try_from(v).map_err(|_| skip(SkipReason::IntegerInvalid { field })),
            }
        };
        let kind = match kind_name.as_str() {
            "totp" | "" => {
                let period = int(self.period, 30, "period")?;
                if period == 0 || period > Totp::MAX_PERIOD {
                    return Err(skip(SkipReason::PeriodInvalid));
                }
                Totp::new(algorithm, digits, period).map_err(|_| {
                    skip(SkipReason::DigitsUnsupported {
                        digits: digits.to_string(),
                    })
                })?;
                EntryKind::Totp { period }
            }
            "hotp" => {
                let counter = int(self.counter, 0, "counter")?;
                Hotp::new(algorithm, digits).map_err(|_| {
                    skip(SkipReason::DigitsUnsupported {
                        digits: digits.to_string(),
                    })
                })?;
                EntryKind::Hotp { counter }
            }
            "steam" => {
                if algorithm != HashAlgorithm::Sha1 {
                    return Err(skip(SkipReason::HashUnsupported {
                        name: algorithm.as_str().into(),
                    }));
                }
                EntryKind::Steam
            }
            other => {
                return Err(skip(SkipReason::AlgorithmUnknown {
                    name: other.chars().take(20).collect(),
                }));
            }
        };
        Ok(Candidate {
            kind,
            secret,
            algorithm,
            digits: if kind == EntryKind::Steam { 5 } else { digits },
            issuer: self.issuer.trim().to_owned(),
            account: self.account.trim().to_owned(),
            name: String::new(),
            note: self.note,
            locator,
            origin,
        })
    }
}

/// `entry N "label"` for reports (the label is the issuer or account, never the secret).
pub(crate) fn locate(n: usize, issuer: &str, account: &str) -> String {
    let label = if issuer.is_empty() { account } else { issuer };
    let label: String = label.chars().filter(|c| !c.is_control()).take(40).collect();
    if label.is_empty() {
        format!("entry {n}")
    } else {
        format!("entry {n} \"{label}\"")
    }
}

/// Adds a checked entry to what was found.
pub(crate) fn push(found: &mut Found, raw: Raw, locator: String, origin: &'static str) {
    match raw.check(locator, origin) {
        Ok(c) => found.candidates.push(c),
        Err(s) => found.skips.push(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_raw_entries_candidates_and_passwords_prints_no_secret() {
        let raw = || Raw {
            kind: "totp".into(),
            secret: Some(Zeroizing::new(b"Hello!\xde\xad\xbe\xef".to_vec())),
            secret_b32: Some(Zeroizing::new("JBSWY3DPEHPK3PXP".into())),
            issuer: "Acme".into(),
            ..Raw::default()
        };
        let c = raw().check("entry 1".into(), "aegis").unwrap();
        let pw = Given(Some(Zeroizing::new("hunter2-password".into())));
        for text in [format!("{:?}", raw()), format!("{c:?}"), format!("{pw:?}")] {
            for needle in ["JBSWY3DPEHPK3PXP", "48656c6c6f", "72, 101", "hunter2"] {
                assert!(!text.contains(needle), "{text}");
            }
        }
    }
}
