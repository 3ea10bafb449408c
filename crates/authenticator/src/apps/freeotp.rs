//! FreeOTP+ exports (`freeotp-backup.json`): `{"tokens":[{"type","algo","digits","period",
//! "counter","issuerExt","label","secret":[signed bytes]}],"tokenOrder":[…]}`. Plain text only
//! (FreeOTP+ writes no encrypted export).

use serde::Deserialize;
use zeroize::Zeroizing;

use super::{AppError, Raw, json, locate, malformed, push};
use crate::import::Found;

#[derive(Deserialize)]
struct File {
    tokens: Vec<Token>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Token {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    algo: String,
    digits: Option<i64>,
    period: Option<i64>,
    counter: Option<i64>,
    #[serde(default)]
    issuer_ext: String,
    #[serde(default)]
    issuer_int: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    secret: Vec<i64>,
}

/// Reads a FreeOTP+ export.
pub fn read(bytes: &[u8]) -> Result<Found, AppError> {
    let file: File = json(bytes, "FreeOTP+ export")?;
    let mut found = Found::default();
    for (i, t) in file.tokens.into_iter().take(super::MAX_ENTRIES).enumerate() {
        let issuer = if t.issuer_ext.is_empty() {
            t.issuer_int
        } else {
            t.issuer_ext
        };
        let loc = locate(i + 1, &issuer, &t.label);
        // Java bytes are signed: -128..=127 are the byte values 0x80..=0x7f.
        let mut secret = Zeroizing::new(Vec::with_capacity(t.secret.len()));
        for b in &t.secret {
            match i8::try_from(*b) {
                Ok(v) => secret.push(v as u8),
                Err(_) => {
                    return Err(malformed(&format!(
                        "{loc}: a secret byte is outside -128..127"
                    )));
                }
            }
        }
        let raw = Raw {
            kind: t.kind,
            secret: Some(secret),
            secret_b32: None,
            algorithm: t.algo,
            digits: t.digits,
            period: t.period,
            counter: t.counter,
            issuer,
            account: t.label,
            note: String::new(),
        };
        push(&mut found, raw, loc, "freeotp+");
    }
    Ok(found)
}
