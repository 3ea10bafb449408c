//! 2FAS Authenticator backups (`.2fas`, schema versions 1 to 4): a JSON object with `services`,
//! or with `servicesEncrypted = base64(ciphertext+tag):base64(salt):base64(iv)` encrypted by
//! AES-256-GCM under PBKDF2-HMAC-SHA256(password, salt, 10,000 iterations).

use data_encoding::BASE64;
use serde::Deserialize;
use tessera_import::Refusal;
use zeroize::Zeroizing;

use super::{AppError, PasswordSource, Raw, gcm_open, json, locate, malformed, push};
use crate::import::Found;

/// PBKDF2 iterations of 2FAS's backups (fixed by the app, not stored in the file).
pub const ITERATIONS: u32 = 10_000;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    schema_version: u32,
    #[serde(default)]
    services: Vec<Service>,
    services_encrypted: Option<String>,
}

#[derive(Deserialize)]
struct Service {
    #[serde(default)]
    name: String,
    secret: Option<String>,
    #[serde(default)]
    otp: Otp,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Otp {
    account: Option<String>,
    label: Option<String>,
    issuer: Option<String>,
    digits: Option<i64>,
    period: Option<i64>,
    algorithm: Option<String>,
    token_type: Option<String>,
    counter: Option<i64>,
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, AppError> {
    BASE64
        .decode(s.trim().as_bytes())
        .map_err(|_| malformed(&format!("{what} is not base64")))
}

/// Reads a 2FAS backup (asks for the password if it is encrypted).
pub fn read(bytes: &[u8], locator: &str, pw: &mut dyn PasswordSource) -> Result<Found, AppError> {
    let file: File = json(bytes, "2FAS backup")?;
    if !(1..=4).contains(&file.schema_version) {
        return Err(Refusal::Version {
            version: file.schema_version.to_string(),
        }
        .into());
    }
    let services: Vec<Service> = match &file.services_encrypted {
        Some(enc) if !enc.is_empty() => {
            let parts: Vec<&str> = enc.split(':').collect();
            let [ct, salt, iv] = parts[..] else {
                return Err(malformed("servicesEncrypted is not ciphertext:salt:iv"));
            };
            let (ct, salt, iv) = (b64(ct, "ciphertext")?, b64(salt, "salt")?, b64(iv, "iv")?);
            let password = pw.password(locator)?;
            let mut key = Zeroizing::new([0u8; 32]);
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                password.as_bytes(),
                &salt,
                ITERATIONS,
                key.as_mut(),
            );
            let plain = gcm_open(key.as_ref(), &iv, &ct)
                .ok_or(AppError::Refused(Refusal::WrongKeyOrMac))?;
            json(&plain, "2FAS services")?
        }
        _ => file.services,
    };
    let mut found = Found::default();
    for (i, s) in services.into_iter().take(super::MAX_ENTRIES).enumerate() {
        let issuer = s.otp.issuer.filter(|i| !i.is_empty()).unwrap_or(s.name);
        let account = s.otp.account.or(s.otp.label).unwrap_or_default();
        let loc = locate(i + 1, &issuer, &account);
        let raw = Raw {
            kind: s.otp.token_type.unwrap_or_else(|| "totp".into()),
            secret: None,
            secret_b32: s.secret.map(Zeroizing::new),
            algorithm: s.otp.algorithm.unwrap_or_default(),
            digits: s.otp.digits,
            period: s.otp.period,
            counter: s.otp.counter,
            issuer,
            account,
            note: String::new(),
        };
        push(&mut found, raw, loc, "2fas");
    }
    Ok(found)
}
