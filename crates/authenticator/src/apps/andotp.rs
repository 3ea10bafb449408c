//! andOTP backups: a JSON array of entries, or that JSON encrypted with a password:
//! `iterations (4 bytes, big endian) ‖ salt (12) ‖ nonce (12) ‖ AES-256-GCM ciphertext+tag`,
//! key = PBKDF2-HMAC-SHA1(password, salt, iterations). The iteration count comes from the file,
//! so it is bounded before it runs (1,000 to 10,000,000, as Aegis bounds it).

use serde::Deserialize;
use tessera_import::Refusal;
use zeroize::Zeroizing;

use super::{AppError, PasswordSource, Raw, gcm_open, json, locate, malformed, push};
use crate::import::Found;

const MAX_ITERATIONS: u32 = 10_000_000;
const MIN_ITERATIONS: u32 = 1_000;

#[derive(Deserialize)]
struct Item {
    secret: Option<String>,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    label: String,
    digits: Option<i64>,
    period: Option<i64>,
    counter: Option<i64>,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    algorithm: String,
}

/// Reads an andOTP backup; binary content is the encrypted form.
pub fn read(bytes: &[u8], locator: &str, pw: &mut dyn PasswordSource) -> Result<Found, AppError> {
    let trimmed = String::from_utf8_lossy(&bytes[..bytes.len().min(16)])
        .trim_start()
        .to_owned();
    let items: Vec<Item> = if trimmed.starts_with('[') {
        json(bytes, "andOTP backup")?
    } else {
        if bytes.len() < 4 + 12 + 12 + 16 {
            return Err(malformed("too short for an encrypted andOTP backup"));
        }
        let iterations = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(Refusal::KdfInvalid {
                problem: format!(
                    "PBKDF2 iterations {iterations} outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"
                ),
            }
            .into());
        }
        let (salt, rest) = bytes[4..].split_at(12);
        let (nonce, ct) = rest.split_at(12);
        let password = pw.password(locator)?;
        let mut key = Zeroizing::new([0u8; 32]);
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password.as_bytes(), salt, iterations, key.as_mut());
        let plain =
            gcm_open(key.as_ref(), nonce, ct).ok_or(AppError::Refused(Refusal::WrongKeyOrMac))?;
        json(&plain, "andOTP backup")?
    };
    let mut found = Found::default();
    for (i, it) in items.into_iter().take(super::MAX_ENTRIES).enumerate() {
        // Old andOTP versions kept "Issuer - account" in the label with an empty issuer.
        let (issuer, account) = match (it.issuer.is_empty(), it.label.split_once(" - ")) {
            (true, Some((a, b))) => (a.to_owned(), b.to_owned()),
            _ => (it.issuer, it.label),
        };
        let loc = locate(i + 1, &issuer, &account);
        let raw = Raw {
            kind: it.kind,
            secret: None,
            secret_b32: it.secret.map(Zeroizing::new),
            algorithm: it.algorithm,
            digits: it.digits,
            period: it.period,
            counter: it.counter,
            issuer,
            account,
            note: String::new(),
        };
        push(&mut found, raw, loc, "andotp");
    }
    Ok(found)
}
