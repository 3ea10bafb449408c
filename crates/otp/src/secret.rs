//! The shared secret K of RFC 4226: generation, parsing from base32 and hex, encoding.
//!
//! Owns every copy of key material the engine makes: each buffer that holds key bytes or their
//! encoding is zeroized on drop. Must not print the key (no `Display`; `Debug` is redacted) and
//! must not name key characters in errors. The only randomness in the crate is here.

use std::fmt;

use data_encoding::{BASE32_NOPAD, HEXLOWER, HEXLOWER_PERMISSIVE};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::OtpError;

/// RFC 4648 base32 alphabet, to map symbols to their 5-bit values and back.
const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// An HOTP/TOTP shared secret.
///
/// The bytes live in a [`Zeroizing`] buffer, so every copy (including clones) is wiped on drop.
/// Equality is constant-time. `Debug` prints `Secret(redacted)`; there is deliberately no
/// `Display`: encode explicitly with [`to_base32`](Secret::to_base32) where the key must be shown.
#[derive(Clone)]
pub struct Secret {
    bytes: Zeroizing<Vec<u8>>,
}

impl Secret {
    /// Length of generated secrets: 160 bits, the length RFC 4226 §4 (R6) recommends.
    pub const DEFAULT_BYTES: usize = 20;

    /// Longest accepted secret. Far above any real token; it bounds the work a pasted key can
    /// cause.
    pub const MAX_BYTES: usize = 128;

    /// Below this many bits a secret is [weak](Secret::is_weak): RFC 4226 §4 (R6) says "The
    /// length of the shared secret MUST be at least 128 bits".
    pub const MIN_STRONG_BITS: usize = 128;

    /// A new random secret of [`DEFAULT_BYTES`](Secret::DEFAULT_BYTES) (160 bits) from the
    /// operating system's random number generator.
    pub fn generate() -> Result<Secret, OtpError> {
        Self::generate_len(Self::DEFAULT_BYTES)
    }

    /// A new random secret of `len` bytes from the operating system's random number generator.
    ///
    /// `len` must be 1..=[`MAX_BYTES`](Secret::MAX_BYTES); lengths under 16 bytes are accepted
    /// but [weak](Secret::is_weak).
    pub fn generate_len(len: usize) -> Result<Secret, OtpError> {
        check_len(len)?;
        let mut bytes = Zeroizing::new(vec![0u8; len]);
        // Key material must come from the OS CSPRNG (RFC 4226 §7.5); this is the engine's one
        // source of randomness and the only getrandom call the workspace allows outside crypto.rs.
        #[allow(clippy::disallowed_methods)] // key generation is the engine's single RNG home
        getrandom::fill(&mut bytes).map_err(|_| OtpError::Random)?;
        Ok(Secret { bytes })
    }

    /// Takes ownership of raw key bytes: 1..=[`MAX_BYTES`](Secret::MAX_BYTES) of them.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Secret, OtpError> {
        // Wrap first so the bytes are wiped even when they are refused.
        let bytes = Zeroizing::new(bytes);
        check_len(bytes.len())?;
        Ok(Secret { bytes })
    }

    /// Parses an RFC 4648 base32 secret as people paste or type it.
    ///
    /// Accepts lower case, whitespace and hyphens anywhere, and `=` padding at the end (present,
    /// absent or partial). Refuses any other character, naming it and its position, and lengths
    /// no encoder produces (1, 3 or 6 symbols modulo 8).
    pub fn from_base32(s: &str) -> Result<Secret, OtpError> {
        // First pass: validate and count without copying key material.
        let mut symbols = 0usize;
        let mut padding_at = None;
        for (position, character) in s.chars().enumerate() {
            if is_separator(character) {
                continue;
            }
            if character == '=' {
                padding_at.get_or_insert(position);
                continue;
            }
            if !is_base32_symbol(character) {
                return Err(OtpError::InvalidBase32 {
                    position,
                    character,
                });
            }
            // A symbol after padding means the padding is misplaced: name the '='.
            if let Some(position) = padding_at {
                return Err(OtpError::InvalidBase32 {
                    position,
                    character: '=',
                });
            }
            symbols += 1;
        }
        if symbols == 0 {
            return Err(OtpError::EmptySecret);
        }
        // Bits left over after the last whole byte, by symbol count modulo 8 (RFC 4648 §6).
        let trailing_bits = match symbols % 8 {
            0 => 0,
            2 => 2,
            4 => 4,
            5 => 1,
            7 => 3,
            _ => return Err(OtpError::InvalidBase32Length { symbols }),
        };
        let len = symbols * 5 / 8;
        check_len(len)?;

        let mut normalized = Zeroizing::new(Vec::with_capacity(symbols));
        // Pass one proved every non-separator, non-padding character is an ASCII symbol, and
        // separators are never ASCII alphanumerics (multi-byte whitespace has no ASCII bytes).
        normalized.extend(
            s.bytes()
                .filter(u8::is_ascii_alphanumeric)
                .map(|b| b.to_ascii_uppercase()),
        );
        // Authenticator apps ignore the unused low bits of the last symbol; clearing them makes a
        // non-canonical key decode to the same bytes the user's app uses instead of failing.
        if let Some(last) = normalized.last_mut() {
            let value = symbol_value(*last);
            *last = BASE32_ALPHABET[usize::from(value & !((1u8 << trailing_bits) - 1))];
        }
        let bytes = BASE32_NOPAD
            .decode(&normalized)
            .map_err(|_| OtpError::InvalidBase32Length { symbols })?;
        Self::from_bytes(bytes)
    }

    /// Parses a hex secret: upper or lower case digits, whitespace ignored, an even count.
    pub fn from_hex(s: &str) -> Result<Secret, OtpError> {
        let mut digits = Zeroizing::new(Vec::with_capacity(s.len()));
        for character in s.chars() {
            if character.is_whitespace() {
                continue;
            }
            if !character.is_ascii_hexdigit() {
                return Err(OtpError::InvalidHex);
            }
            // An ASCII hex digit is one byte.
            digits.push(character as u8);
        }
        if digits.is_empty() {
            return Err(OtpError::EmptySecret);
        }
        if digits.len() % 2 != 0 {
            return Err(OtpError::InvalidHex);
        }
        check_len(digits.len() / 2)?;
        let bytes = HEXLOWER_PERMISSIVE
            .decode(&digits)
            .map_err(|_| OtpError::InvalidHex)?;
        Self::from_bytes(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// RFC 4648 base32, upper case, without `=` padding (what authenticator apps expect).
    pub fn to_base32(&self) -> String {
        BASE32_NOPAD.encode(&self.bytes)
    }

    /// [`to_base32`](Secret::to_base32) in groups of four separated by spaces, for typing by hand.
    pub fn to_base32_grouped(&self) -> String {
        let plain = Zeroizing::new(self.to_base32());
        let mut grouped = String::with_capacity(plain.len() + plain.len() / 4);
        for (i, character) in plain.chars().enumerate() {
            if i > 0 && i % 4 == 0 {
                grouped.push(' ');
            }
            grouped.push(character);
        }
        grouped
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        HEXLOWER.encode(&self.bytes)
    }

    /// Length of the key in bits.
    pub fn bits(&self) -> usize {
        self.bytes.len() * 8
    }

    /// True below 128 bits. RFC 4226 §4 (R6): "The length of the shared secret MUST be at least
    /// 128 bits. This document RECOMMENDs a shared secret length of 160 bits." Weak secrets are
    /// still accepted (imported hardware tokens may have them) so the caller can warn.
    pub fn is_weak(&self) -> bool {
        self.bits() < Self::MIN_STRONG_BITS
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the bytes, not even their length: logs and panics must not leak key material.
        f.write_str("Secret(redacted)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        // Constant time in the contents; lengths are not secret.
        self.bytes.as_slice().ct_eq(other.bytes.as_slice()).into()
    }
}

impl Eq for Secret {}

fn check_len(len: usize) -> Result<(), OtpError> {
    if len == 0 {
        Err(OtpError::EmptySecret)
    } else if len > Secret::MAX_BYTES {
        Err(OtpError::SecretTooLong { bytes: len })
    } else {
        Ok(())
    }
}

/// Characters people and apps put between groups of a key: they carry no data.
fn is_separator(character: char) -> bool {
    character.is_whitespace() || character == '-'
}

fn is_base32_symbol(character: char) -> bool {
    character.is_ascii_alphabetic() || ('2'..='7').contains(&character)
}

/// The 5-bit value of an upper-case base32 symbol.
fn symbol_value(symbol: u8) -> u8 {
    match symbol {
        b'A'..=b'Z' => symbol - b'A',
        b'2'..=b'7' => symbol - b'2' + 26,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(redacted)");
        assert_eq!(format!("{secret:#?}"), "Secret(redacted)");
    }

    #[test]
    fn eighty_bit_secret_is_weak_and_128_is_not() {
        let weak = Secret::from_bytes(vec![7; 10]).unwrap();
        assert_eq!(weak.bits(), 80);
        assert!(weak.is_weak());
        assert!(!Secret::from_bytes(vec![7; 16]).unwrap().is_weak());
        assert!(!Secret::from_bytes(vec![7; 20]).unwrap().is_weak());
    }

    #[test]
    fn generate_makes_distinct_160_bit_secrets() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert_eq!(a.bits(), 160);
        assert!(!a.is_weak());
        assert_ne!(a, b);
        assert_eq!(Secret::generate_len(32).unwrap().as_bytes().len(), 32);
        assert_eq!(Secret::generate_len(0), Err(OtpError::EmptySecret));
        assert_eq!(
            Secret::generate_len(129),
            Err(OtpError::SecretTooLong { bytes: 129 })
        );
    }

    #[test]
    fn from_bytes_enforces_length_limits() {
        assert_eq!(Secret::from_bytes(Vec::new()), Err(OtpError::EmptySecret));
        assert_eq!(
            Secret::from_bytes(vec![1; 129]),
            Err(OtpError::SecretTooLong { bytes: 129 })
        );
        assert_eq!(Secret::from_bytes(vec![1; 128]).unwrap().bits(), 1024);
    }

    #[test]
    fn base32_encodings_match_rfc_4648() {
        // RFC 4648 §10 test vectors, without padding.
        let secret = Secret::from_bytes(b"foobar".to_vec()).unwrap();
        assert_eq!(secret.to_base32(), "MZXW6YTBOI");
        assert_eq!(secret.to_base32_grouped(), "MZXW 6YTB OI");
        assert_eq!(secret.to_hex(), "666f6f626172");
        assert_eq!(Secret::from_base32("MZXW6YTBOI======").unwrap(), secret);
        assert_eq!(Secret::from_base32("mzxw-6ytb oi").unwrap(), secret);
    }

    #[test]
    fn base32_errors_name_the_bad_character() {
        assert_eq!(
            Secret::from_base32("MZXW 6YTB O1"),
            Err(OtpError::InvalidBase32 {
                position: 11,
                character: '1'
            })
        );
        assert_eq!(
            Secret::from_base32("MZ=XW6YTBOI"),
            Err(OtpError::InvalidBase32 {
                position: 2,
                character: '='
            })
        );
        assert_eq!(
            Secret::from_base32("MZXWé"),
            Err(OtpError::InvalidBase32 {
                position: 4,
                character: 'é'
            })
        );
        assert_eq!(Secret::from_base32(" -= "), Err(OtpError::EmptySecret));
        assert_eq!(
            Secret::from_base32("MZXW6YQ"),
            Ok(Secret::from_bytes(b"foob".to_vec()).unwrap())
        );
        for bad in ["M", "MZX", "MZXW6Y", "MZXW6YTBO"] {
            assert!(
                matches!(
                    Secret::from_base32(bad),
                    Err(OtpError::InvalidBase32Length { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn base32_ignores_non_canonical_trailing_bits() {
        // "MY" is canonical for "f"; "MZ" differs only in the two unused bits.
        let f = Secret::from_bytes(b"f".to_vec()).unwrap();
        assert_eq!(Secret::from_base32("MY").unwrap(), f);
        assert_eq!(Secret::from_base32("MZ").unwrap(), f);
    }

    #[test]
    fn base32_refuses_overlong_secrets() {
        let long = "A".repeat(208);
        assert_eq!(
            Secret::from_base32(&long),
            Err(OtpError::SecretTooLong { bytes: 130 })
        );
    }

    #[test]
    fn hex_accepts_case_and_spaces() {
        let secret = Secret::from_hex("66 6F 6f 62\t61 72").unwrap();
        assert_eq!(secret.as_bytes(), b"foobar");
        assert_eq!(secret.to_hex(), "666f6f626172");
        assert_eq!(Secret::from_hex("666"), Err(OtpError::InvalidHex));
        assert_eq!(Secret::from_hex("66g6"), Err(OtpError::InvalidHex));
        assert_eq!(Secret::from_hex("  "), Err(OtpError::EmptySecret));
    }

    #[test]
    fn equality_compares_contents() {
        let a = Secret::from_bytes(vec![1, 2, 3]).unwrap();
        assert_eq!(a, a.clone());
        assert_ne!(a, Secret::from_bytes(vec![1, 2, 4]).unwrap());
        assert_ne!(a, Secret::from_bytes(vec![1, 2, 3, 4]).unwrap());
    }
}
