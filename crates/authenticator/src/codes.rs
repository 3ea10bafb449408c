//! Codes of vault entries at a given time: TOTP and HOTP through the `otp` engine, Steam Guard's
//! five-character codes here (the engine makes decimal codes only). Pure: the caller passes the
//! time.

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use tessera_otp::{Hotp, Secret, Totp};

use crate::entry::{Entry, EntryKind};

/// Steam's code alphabet (no vowels but Y, no look-alikes).
const STEAM_ALPHABET: &[u8; 26] = b"23456789BCDFGHJKMNPQRTVWXY";

/// The code an entry shows now, with what the listing needs.
#[derive(Debug, Clone, Serialize)]
pub struct Shown {
    pub id: String,
    pub label: String,
    pub issuer: String,
    pub account: String,
    pub kind: &'static str,
    /// `None` for HOTP in listings (a code costs a counter: `tessera-auth code NAME`).
    pub code: Option<String>,
    /// Seconds until the code changes (TOTP and Steam).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_left: Option<u64>,
    /// The next code, during the last 5 seconds of a step (type it if the current one is
    /// about to expire).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_code: Option<String>,
}

/// Why a code cannot be made (parameters the engine refuses, e.g. 10 digits from an import).
#[derive(Debug, thiserror::Error)]
#[error("this token's parameters cannot make codes: {0}")]
pub struct CodeError(String);

/// The code for a time step of a TOTP-like entry.
fn at_step(entry: &Entry, secret: &Secret, period: u64, step: u64) -> Result<String, CodeError> {
    match entry.kind {
        EntryKind::Steam => Ok(steam(secret, step)),
        _ => {
            let totp = Totp::new(entry.algorithm, entry.digits, period)
                .map_err(|e| CodeError(e.to_string()))?;
            Ok(totp.generate_step(secret, step))
        }
    }
}

/// What `codes` shows for an entry at `now` (HOTP entries show no code).
pub fn show(entry: &Entry, now: u64) -> Result<Shown, CodeError> {
    let mut shown = Shown {
        id: entry.id.clone(),
        label: entry.label(),
        issuer: entry.issuer.clone(),
        account: entry.account.clone(),
        kind: match entry.kind {
            EntryKind::Totp { .. } => "totp",
            EntryKind::Hotp { .. } => "hotp",
            EntryKind::Steam => "steam",
        },
        code: None,
        seconds_left: None,
        next_code: None,
    };
    let Some(secret) = &entry.secret else {
        return Ok(shown);
    };
    let period = match entry.kind {
        EntryKind::Totp { period } => period,
        EntryKind::Steam => 30,
        EntryKind::Hotp { .. } => return Ok(shown),
    };
    if period == 0 {
        return Err(CodeError("period 0".into()));
    }
    let step = now / period;
    let left = period - now % period;
    shown.code = Some(at_step(entry, secret, period, step)?);
    shown.seconds_left = Some(left);
    if left <= 5 {
        shown.next_code = Some(at_step(entry, secret, period, step + 1)?);
    }
    Ok(shown)
}

/// The HOTP code for the entry's current counter; the caller advances and saves the counter.
pub fn hotp(entry: &Entry) -> Result<(String, u64), CodeError> {
    let (EntryKind::Hotp { counter }, Some(secret)) = (&entry.kind, &entry.secret) else {
        return Err(CodeError("not an HOTP token".into()));
    };
    let h = Hotp::new(entry.algorithm, entry.digits).map_err(|e| CodeError(e.to_string()))?;
    Ok((h.generate(secret, *counter), *counter))
}

/// Steam Guard: RFC 4226 dynamic truncation of HMAC-SHA1(step), then five base-26 digits.
fn steam(secret: &Secret, step: u64) -> String {
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = usize::from(h[19] & 0x0f);
    let mut v = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
    let mut out = String::with_capacity(5);
    for _ in 0..5 {
        out.push(char::from(STEAM_ALPHABET[(v % 26) as usize]));
        v /= 26;
    }
    out
}

/// Splits a code in two halves for reading (`123 456`, `1234 5678`).
pub fn grouped(code: &str) -> String {
    if code.len() < 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return code.to_owned();
    }
    let mid = code.len() / 2;
    format!("{} {}", &code[..mid], &code[mid..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_otp::HashAlgorithm;

    fn entry(kind: EntryKind, algo: HashAlgorithm, digits: u32, seed: &[u8]) -> Entry {
        Entry::new(
            kind,
            Secret::from_bytes(seed.to_vec()).unwrap(),
            algo,
            digits,
            0,
        )
        .unwrap()
    }

    #[test]
    fn totp_matches_rfc6238_table() {
        // RFC 6238 Appendix B, T = 59 and T = 1111111109, SHA-1, 8 digits.
        let e = entry(
            EntryKind::Totp { period: 30 },
            HashAlgorithm::Sha1,
            8,
            b"12345678901234567890",
        );
        assert_eq!(show(&e, 59).unwrap().code.as_deref(), Some("94287082"));
        assert_eq!(
            show(&e, 1111111109).unwrap().code.as_deref(),
            Some("07081804")
        );
        // 59 is the last second of its step: the next code is shown too.
        let s = show(&e, 59).unwrap();
        assert_eq!(s.seconds_left, Some(1));
        assert_eq!(
            s.next_code.as_deref(),
            Some(show(&e, 60).unwrap().code.unwrap().as_str())
        );
        assert!(show(&e, 40).unwrap().next_code.is_none());
    }

    #[test]
    fn hotp_matches_rfc4226_table() {
        let mut e = entry(
            EntryKind::Hotp { counter: 0 },
            HashAlgorithm::Sha1,
            6,
            b"12345678901234567890",
        );
        assert_eq!(hotp(&e).unwrap().0, "755224");
        e.kind = EntryKind::Hotp { counter: 9 };
        assert_eq!(hotp(&e).unwrap().0, "520489");
        assert!(show(&e, 0).unwrap().code.is_none());
    }

    #[test]
    fn steam_code_uses_steam_alphabet() {
        let e = entry(
            EntryKind::Steam,
            HashAlgorithm::Sha1,
            5,
            b"12345678901234567890",
        );
        let code = show(&e, 1_700_000_000).unwrap().code.unwrap();
        assert_eq!(code.len(), 5);
        assert!(code.bytes().all(|b| STEAM_ALPHABET.contains(&b)), "{code}");
    }

    #[test]
    fn codes_are_grouped_for_reading() {
        assert_eq!(grouped("123456"), "123 456");
        assert_eq!(grouped("12345678"), "1234 5678");
        assert_eq!(grouped("7YB2K"), "7YB2K");
    }
}
