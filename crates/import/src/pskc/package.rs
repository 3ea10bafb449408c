//! One `KeyPackage` as read (text and attributes, values still encrypted), and how it becomes
//! records or skips: algorithm and hash spellings, digits, integers in their five encodings,
//! policy rules.

use std::collections::HashSet;

use data_encoding::BASE64;
use tessera_otp::{HashAlgorithm, Secret};
use zeroize::Zeroizing;

use super::crypto::{Cipher, MacHash};
use crate::reason::detail;
use crate::{Item, Kind, Record, Refusal, Skip, SkipReason};

/// A `Data` child: `PlainValue`, or `EncryptedValue` with its `ValueMAC`.
#[derive(Debug, Default)]
pub(super) struct Value {
    pub plain: Option<Zeroizing<String>>,
    pub cipher: Option<String>,
    pub cipher_value: Option<Zeroizing<String>>,
    pub mac: Option<String>,
}

impl Value {
    fn is_empty(&self) -> bool {
        self.plain.is_none() && self.cipher_value.is_none()
    }
}

#[derive(Debug, Default)]
pub(super) struct KeyDraft {
    pub id: Option<String>,
    pub algorithm: Option<String>,
    pub issuer: Option<String>,
    pub friendly_name: Option<String>,
    pub user_id: Option<String>,
    pub key_reference: bool,
    pub suite: Option<String>,
    pub suite_hashalgo: Option<String>,
    pub length: Option<String>,
    pub encoding: Option<String>,
    pub check_digits: Option<String>,
    pub secret: Value,
    pub counter: Value,
    pub time: Value,
    pub interval: Value,
    pub drift: Value,
    pub start: Option<String>,
    pub expiry: Option<String>,
    pub key_usage: Vec<String>,
    pub policy_unsupported: Option<String>,
    pub policy_unknown: Option<String>,
}

#[derive(Debug, Default)]
pub(super) struct Package {
    pub manufacturer: Option<String>,
    pub serial: Option<String>,
    pub model: Option<String>,
    pub start: Option<String>,
    pub expiry: Option<String>,
    pub user_id: Option<String>,
    pub module_id: Option<String>,
    pub keys: Vec<KeyDraft>,
}

/// The container's keys, once known: what decrypts values and what checks their MACs.
#[derive(Debug, Default)]
pub(super) struct Keys {
    pub key: Option<Zeroizing<Vec<u8>>>,
    pub mac: Option<(MacHash, Zeroizing<Vec<u8>>)>,
    pub allow_unauthenticated: bool,
}

/// Why a value could not be read: the whole file, or just this key.
pub(super) enum Fail {
    File(Refusal),
    Key(SkipReason),
}

impl From<Refusal> for Fail {
    fn from(r: Refusal) -> Fail {
        Fail::File(r)
    }
}

impl Keys {
    /// The bytes of a value: decrypted and MAC-checked, or the plain text as bytes. `None` if the
    /// value is absent.
    fn bytes(&self, v: &Value) -> Result<Option<Zeroizing<Vec<u8>>>, Fail> {
        if let Some(plain) = &v.plain {
            return Ok(Some(Zeroizing::new(plain.as_bytes().to_vec())));
        }
        let Some(b64) = &v.cipher_value else {
            return Ok(None);
        };
        let raw = Zeroizing::new(
            BASE64
                .decode(strip_ws(b64).as_bytes())
                .map_err(|_| Fail::Key(SkipReason::SecretInvalid))?,
        );
        let uri = v.cipher.as_deref().unwrap_or("");
        let cipher = Cipher::from_uri(uri).map_err(|_| {
            Fail::Key(SkipReason::EncryptionUnsupported {
                algorithm: detail(uri),
            })
        })?;
        let key = self.key.as_ref().ok_or(Refusal::KeyRequired {
            name: String::new(),
        })?;
        if cipher.needs_mac() {
            // RFC 6030 §6.1.1: the MAC is over the IV and ciphertext. A CBC value without one
            // cannot be told from one an attacker made or changed.
            let (hash, mac_key) = self.mac.as_ref().ok_or(Refusal::MacMissing)?;
            let mac = v.mac.as_deref().ok_or(Refusal::MacMissing)?;
            let expected = BASE64
                .decode(strip_ws(mac).as_bytes())
                .map_err(|_| Refusal::WrongKeyOrMac)?;
            hash.verify(mac_key, &raw, &expected)?;
        }
        Ok(Some(cipher.decrypt(key, &raw)?))
    }

    /// A plain secret is base64 text; an encrypted one is the raw key.
    fn secret(&self, v: &Value) -> Result<Option<Secret>, Fail> {
        let encrypted = v.plain.is_none();
        let Some(bytes) = self.bytes(v)? else {
            return Ok(None);
        };
        let raw = if encrypted {
            bytes
        } else {
            // A plain value has no MAC: nothing shows it came from the vendor unchanged.
            if !self.allow_unauthenticated {
                return Err(Fail::File(Refusal::Unauthenticated));
            }
            let text =
                std::str::from_utf8(&bytes).map_err(|_| Fail::Key(SkipReason::SecretInvalid))?;
            Zeroizing::new(
                BASE64
                    .decode(strip_ws(text).as_bytes())
                    .map_err(|_| Fail::Key(SkipReason::SecretInvalid))?,
            )
        };
        if raw.is_empty() {
            return Err(Fail::Key(SkipReason::NoSecret));
        }
        Secret::from_bytes(raw.to_vec())
            .map(Some)
            .map_err(|_| Fail::Key(SkipReason::SecretInvalid))
    }

    /// An integer in any of the encodings met in files: decimal text; base64 of ASCII digits or
    /// of a big-endian integer; encrypted, either way.
    fn integer(&self, v: &Value, field: &'static str) -> Result<Option<i64>, Fail> {
        let bad = || Fail::Key(SkipReason::IntegerInvalid { field });
        let encrypted = v.plain.is_none();
        let Some(bytes) = self.bytes(v)? else {
            return Ok(None);
        };
        let decoded;
        let raw: &[u8] = if encrypted {
            &bytes
        } else {
            let text = std::str::from_utf8(&bytes).map_err(|_| bad())?.trim();
            if let Ok(n) = text.parse::<i64>() {
                return Ok(Some(n));
            }
            decoded = BASE64.decode(text.as_bytes()).map_err(|_| bad())?;
            &decoded
        };
        if !raw.is_empty() && raw.len() <= 19 && raw.iter().all(u8::is_ascii_digit) {
            return std::str::from_utf8(raw)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(bad);
        }
        if raw.is_empty() || raw.len() > 8 {
            return Err(bad());
        }
        let n = raw.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b));
        i64::try_from(n).map(Some).map_err(|_| bad())
    }
}

pub(super) fn strip_ws(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.chars().filter(|c| !c.is_ascii_whitespace()).collect())
}

/// The algorithm's name after the last `:` or `#`, lower case.
fn algorithm_name(uri: &str) -> String {
    uri.rsplit([':', '#'])
        .next()
        .unwrap_or(uri)
        .trim()
        .to_ascii_lowercase()
}

/// `HMAC-SHA256`, `sha256`, `sha-256`, `SHA1`: strip an `hmac-` prefix and dashes.
fn hash_from_suite(suite: &str) -> Result<HashAlgorithm, SkipReason> {
    let name = suite.trim().to_ascii_lowercase();
    let name = name.strip_prefix("hmac-").unwrap_or(&name).replace('-', "");
    match name.as_str() {
        "" | "sha1" => Ok(HashAlgorithm::Sha1),
        "sha256" => Ok(HashAlgorithm::Sha256),
        "sha512" => Ok(HashAlgorithm::Sha512),
        _ => Err(SkipReason::HashUnsupported {
            name: detail(suite),
        }),
    }
}

/// Serial numbers are kept as written; they appear in reports and on screens.
pub(crate) fn check_serial(s: &str) -> Result<String, SkipReason> {
    let s = s.trim();
    if s.is_empty() || s.chars().count() > 64 || s.chars().any(char::is_control) {
        return Err(SkipReason::SerialInvalid);
    }
    Ok(s.to_owned())
}

impl Package {
    /// Turns the package into one item per key; `seen` holds the serials met so far in the file.
    pub(super) fn finish(
        self,
        index: usize,
        keys: &Keys,
        seen: &mut HashSet<String>,
        out: &mut Vec<Item>,
    ) -> Result<(), Refusal> {
        let otp_keys = self
            .keys
            .iter()
            .filter(|k| {
                let a = algorithm_name(k.algorithm.as_deref().unwrap_or(""));
                a == "hotp" || a == "totp"
            })
            .count();
        for (n, key) in self.keys.iter().enumerate() {
            let mut serial = self.serial.clone().or_else(|| key.id.clone());
            // Several OTP keys in one device: tell them apart by the key's Id (or position).
            if otp_keys > 1 {
                let suffix = key.id.clone().unwrap_or_else(|| (n + 1).to_string());
                serial = serial.map(|s| format!("{s}:{suffix}"));
            }
            let locator = match &serial {
                Some(s) => format!("KeyPackage #{index} serial={}", detail(s)),
                None => format!("KeyPackage #{index}"),
            };
            match self.record(key, serial, keys, locator.clone()) {
                Ok(record) => {
                    let serial = record.serial.clone().unwrap_or_default();
                    if seen.contains(&serial) {
                        out.push(Item::Skip(Skip::new(locator, SkipReason::DuplicateSerial)));
                    } else {
                        seen.insert(serial);
                        out.push(Item::Record(Box::new(record)));
                    }
                }
                Err(Fail::Key(reason)) => out.push(Item::Skip(Skip::new(locator, reason))),
                Err(Fail::File(refusal)) => return Err(refusal),
            }
        }
        Ok(())
    }

    fn record(
        &self,
        key: &KeyDraft,
        serial: Option<String>,
        keys: &Keys,
        locator: String,
    ) -> Result<Record, Fail> {
        let skip = |r| Err(Fail::Key(r));
        let uri = key.algorithm.as_deref().unwrap_or("");
        let suite = key.suite.as_deref().unwrap_or("");
        let name = algorithm_name(uri);
        match name.as_str() {
            "hotp" | "totp" if suite.to_ascii_uppercase().starts_with("OCRA") => {
                return skip(SkipReason::Ocra);
            }
            "hotp" | "totp" => {}
            "ocra" => return skip(SkipReason::Ocra),
            "pin" => return skip(SkipReason::PinKey),
            "yubikey-aes" => return skip(SkipReason::YubicoOtp),
            _ => {
                return skip(SkipReason::AlgorithmUnknown { name: detail(uri) });
            }
        }
        if let Some(element) = &key.policy_unknown {
            return skip(SkipReason::PolicyUnknown {
                element: element.clone(),
            });
        }
        if let Some(element) = &key.policy_unsupported {
            return skip(SkipReason::PolicyUnsupported {
                element: element.clone(),
            });
        }
        if !key.key_usage.is_empty() && !key.key_usage.iter().any(|u| u.eq_ignore_ascii_case("OTP"))
        {
            return skip(SkipReason::KeyUsageNotOtp);
        }
        let serial = match serial {
            Some(s) => check_serial(&s).map_err(Fail::Key)?,
            None => return skip(SkipReason::NoSerial),
        };
        if let Some(enc) = &key.encoding
            && !enc.trim().eq_ignore_ascii_case("DECIMAL")
        {
            return skip(SkipReason::NotDecimal {
                encoding: detail(enc),
            });
        }
        if key
            .check_digits
            .as_deref()
            .is_some_and(|c| matches!(c.trim(), "true" | "1"))
        {
            return skip(SkipReason::CheckDigits);
        }
        let digits = match key.length.as_deref().map(str::trim) {
            None => 6,
            Some(l) => match l.parse::<u32>() {
                Ok(d @ 6..=8) => d,
                _ => {
                    return skip(SkipReason::DigitsUnsupported { digits: detail(l) });
                }
            },
        };
        let suite_text = key
            .suite
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .or(key.suite_hashalgo.as_deref())
            .unwrap_or("");
        let algorithm = hash_from_suite(suite_text).map_err(Fail::Key)?;
        if key.key_reference && key.secret.is_empty() {
            return skip(SkipReason::NoSecret);
        }
        let Some(secret) = keys.secret(&key.secret)? else {
            return skip(SkipReason::NoSecret);
        };
        let kind = if name == "hotp" {
            let counter = keys.integer(&key.counter, "Counter")?.unwrap_or(0);
            let counter = u64::try_from(counter)
                .map_err(|_| Fail::Key(SkipReason::IntegerInvalid { field: "Counter" }))?;
            Kind::Hotp { counter }
        } else {
            if keys.integer(&key.time, "Time")?.unwrap_or(0) != 0 {
                return skip(SkipReason::TimeNonZero);
            }
            let period = keys.integer(&key.interval, "TimeInterval")?.unwrap_or(30);
            if !(1..=86_400).contains(&period) {
                return skip(SkipReason::PeriodInvalid);
            }
            let drift = keys.integer(&key.drift, "TimeDrift")?.unwrap_or(0);
            if drift.unsigned_abs() > 1_000_000 {
                return skip(SkipReason::IntegerInvalid { field: "TimeDrift" });
            }
            Kind::Totp {
                period: period.unsigned_abs(),
                drift,
            }
        };
        let date = |s: &Option<String>| s.as_deref().and_then(crate::parse_datetime);
        let mut record = Record::new(kind, secret, locator);
        if key.secret.plain.is_some() {
            record.warnings.push(crate::Warning::Unauthenticated);
        }
        record.serial = Some(serial);
        record.algorithm = algorithm;
        record.digits = digits;
        record.manufacturer = self.manufacturer.clone();
        record.model = self.model.clone();
        record.issuer = key.issuer.clone();
        record.account = key.friendly_name.clone();
        record.user = key.user_id.clone().or_else(|| self.user_id.clone());
        // The key's own policy dates win over the device's.
        record.not_before = date(&key.start).or_else(|| date(&self.start));
        record.not_after = date(&key.expiry).or_else(|| date(&self.expiry));
        Ok(record)
    }
}

/// Checked as soon as the header is known, before any package: a file nobody can read.
pub(super) fn max_keys_reached(count: usize) -> Result<(), Refusal> {
    if count >= super::MAX_KEYS_PER_PACKAGE {
        return Err(Refusal::TooLarge {
            limit: format!(
                "more than {} keys in one KeyPackage",
                super::MAX_KEYS_PER_PACKAGE
            ),
        });
    }
    Ok(())
}
