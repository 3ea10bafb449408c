//! HOTP (RFC 4226): the HMAC, dynamic truncation and constant-time verification over a range of
//! counters. TOTP is built on top of this module.
//!
//! Owns the only OTP arithmetic in the crate. Must not decide policy (how far to look ahead,
//! whether a counter was used before): callers pass counters and windows and get back which
//! counter matched, so the service can refuse replays and resynchronise.

use std::fmt;
use std::str::FromStr;

use hmac::{EagerHash, Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::error::OtpError;
use crate::secret::Secret;

/// The hash function under the HMAC (RFC 6238 §1.2 allows SHA-1, SHA-256 and SHA-512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HashAlgorithm {
    /// HMAC-SHA-1, the RFC 4226 default and the only algorithm every authenticator app honours.
    /// SHA-1's collision weakness does not carry over to HMAC (RFC 4226 Appendix B.2).
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// The name used in key URIs: `"SHA1"`, `"SHA256"` or `"SHA512"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "SHA1",
            HashAlgorithm::Sha256 => "SHA256",
            HashAlgorithm::Sha512 => "SHA512",
        }
    }
}

impl fmt::Display for HashAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HashAlgorithm {
    type Err = OtpError;

    /// Case-insensitive; accepts `SHA1` and `SHA-1` spellings (and likewise for 256 and 512).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        match name.as_str() {
            "sha1" | "sha-1" => Ok(HashAlgorithm::Sha1),
            "sha256" | "sha-256" => Ok(HashAlgorithm::Sha256),
            "sha512" | "sha-512" => Ok(HashAlgorithm::Sha512),
            _ => Err(OtpError::UnknownAlgorithm(s.to_owned())),
        }
    }
}

/// An HOTP generator and verifier: a hash algorithm and a number of digits.
///
/// Holds no secret; pass the [`Secret`] to each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hotp {
    algorithm: HashAlgorithm,
    digits: u32,
}

impl Default for Hotp {
    /// HMAC-SHA-1 with 6 digits, the RFC 4226 reference parameters.
    fn default() -> Self {
        Hotp {
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
        }
    }
}

impl Hotp {
    /// The most counters one [`verify`](Hotp::verify) call checks beyond the first: larger
    /// `look_ahead` values are clamped to this. It bounds the work an input can cause (each
    /// counter costs one HMAC) while leaving room for resynchronisation windows.
    pub const MAX_LOOK_AHEAD: u64 = 1000;

    /// Creates a generator; `digits` must be 6, 7 or 8 (RFC 4226 §5.3).
    pub fn new(algorithm: HashAlgorithm, digits: u32) -> Result<Hotp, OtpError> {
        check_digits(digits)?;
        Ok(Hotp { algorithm, digits })
    }

    /// Builds a generator from parameters already validated by [`check_digits`].
    pub(crate) const fn from_checked(algorithm: HashAlgorithm, digits: u32) -> Hotp {
        Hotp { algorithm, digits }
    }

    /// The hash algorithm under the HMAC.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The number of digits in a code.
    pub fn digits(&self) -> u32 {
        self.digits
    }

    /// The code for `counter`, zero-padded to [`digits`](Hotp::digits) characters.
    pub fn generate(&self, secret: &Secret, counter: u64) -> String {
        let mac = KeyedMac::new(self.algorithm, secret);
        let value = mac.truncated(counter) % modulus(self.digits);
        format!("{value:0width$}", width = self.digits as usize)
    }

    /// Checks counters `counter..=counter + look_ahead` and returns the first one whose code
    /// equals `code`.
    ///
    /// The end saturates at `u64::MAX` (never overflows) and `look_ahead` is clamped to
    /// [`Hotp::MAX_LOOK_AHEAD`]. A code of the wrong length or with non-digits is `None`.
    pub fn verify(
        &self,
        secret: &Secret,
        code: &str,
        counter: u64,
        look_ahead: u64,
    ) -> Option<u64> {
        let last = counter.saturating_add(look_ahead.min(Self::MAX_LOOK_AHEAD));
        self.verify_range(secret, code, counter, last)
    }

    /// Checks every counter in `first..=last` and returns the first match.
    ///
    /// Callers bound the range (at most a few thousand counters).
    pub(crate) fn verify_range(
        &self,
        secret: &Secret,
        code: &str,
        first: u64,
        last: u64,
    ) -> Option<u64> {
        let code = code.as_bytes();
        // The shape of the submitted code says nothing about the secret, so refusing it early
        // leaks nothing; it also guarantees equal lengths for the constant-time comparison.
        if code.len() != self.digits as usize || !code.iter().all(u8::is_ascii_digit) {
            return None;
        }

        let mac = KeyedMac::new(self.algorithm, secret);
        let modulus = modulus(self.digits);
        let mut found = Choice::from(0);
        let mut matched = 0u64;
        // Every counter in the range is computed and compared, with no early exit and no
        // data-dependent branch, so timing tells neither whether nor where the code matched.
        for candidate in first..=last {
            let digits = ascii_digits(mac.truncated(candidate) % modulus, self.digits);
            let hit = digits[..code.len()].ct_eq(code);
            // Keep the first match: the service stores it to refuse this counter next time.
            matched.conditional_assign(&candidate, hit & !found);
            found |= hit;
        }
        if bool::from(found) {
            Some(matched)
        } else {
            None
        }
    }
}

/// Refuses digit counts outside 6..=8 (RFC 4226 §5.3; 10^8 still fits the 31-bit truncation).
pub(crate) fn check_digits(digits: u32) -> Result<(), OtpError> {
    if (6..=8).contains(&digits) {
        Ok(())
    } else {
        Err(OtpError::InvalidDigits(digits))
    }
}

/// 10^digits, the modulus of RFC 4226 §5.3 step 3. `digits` is 6..=8 here.
fn modulus(digits: u32) -> u32 {
    10u32.pow(digits)
}

/// `value` as `digits` ASCII digits, zero-padded on the left, in a fixed buffer (no allocation
/// per candidate). Only the first `digits` bytes are meaningful.
fn ascii_digits(mut value: u32, digits: u32) -> [u8; 8] {
    let mut out = [b'0'; 8];
    for slot in out[..digits as usize].iter_mut().rev() {
        // `value % 10` is below 10, so the cast cannot truncate.
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
    out
}

/// An HMAC already keyed with the secret. Keying costs two hash blocks, so verification keys
/// once and clones the state for each counter.
enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

impl KeyedMac {
    fn new(algorithm: HashAlgorithm, secret: &Secret) -> KeyedMac {
        let key = secret.as_bytes();
        match algorithm {
            HashAlgorithm::Sha1 => KeyedMac::Sha1(keyed(key)),
            HashAlgorithm::Sha256 => KeyedMac::Sha256(keyed(key)),
            HashAlgorithm::Sha512 => KeyedMac::Sha512(keyed(key)),
        }
    }

    /// HMAC(K, C) with C as 8 big-endian bytes, then dynamic truncation (RFC 4226 §5.2-5.3).
    fn truncated(&self, counter: u64) -> u32 {
        match self {
            KeyedMac::Sha1(mac) => truncate(&mac_counter(mac, counter)),
            KeyedMac::Sha256(mac) => truncate(&mac_counter(mac, counter)),
            KeyedMac::Sha512(mac) => truncate(&mac_counter(mac, counter)),
        }
    }
}

fn keyed<D: EagerHash>(key: &[u8]) -> Hmac<D> {
    // HMAC takes keys of any length (RFC 2104 §2 hashes long keys and pads short ones), so this
    // cannot fail; `hmac`'s own `KeyInit::new` relies on the same fact.
    Hmac::<D>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn mac_counter<M: Mac + Clone>(keyed: &M, counter: u64) -> hmac::digest::Output<M> {
    let mut mac = keyed.clone();
    mac.update(&counter.to_be_bytes());
    mac.finalize().into_bytes()
}

/// RFC 4226 §5.3 dynamic truncation: the low 4 bits of the last byte pick an offset, and the
/// 31 bits at that offset are the value (the top bit is masked to avoid signed/unsigned
/// ambiguity).
fn truncate(hmac: &[u8]) -> u32 {
    // HMAC output is at least 20 bytes and the offset at most 15, so offset + 3 <= 18 is in
    // bounds for every supported hash.
    let offset = usize::from(hmac[hmac.len() - 1] & 0x0f);
    let word = [
        hmac[offset],
        hmac[offset + 1],
        hmac[offset + 2],
        hmac[offset + 3],
    ];
    u32::from_be_bytes(word) & 0x7fff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> Secret {
        Secret::from_bytes(b"12345678901234567890".to_vec()).unwrap()
    }

    #[test]
    fn new_refuses_digits_outside_6_to_8() {
        for digits in [0, 5, 9, 10, u32::MAX] {
            assert_eq!(
                Hotp::new(HashAlgorithm::Sha1, digits),
                Err(OtpError::InvalidDigits(digits))
            );
        }
        for digits in 6..=8 {
            assert_eq!(
                Hotp::new(HashAlgorithm::Sha256, digits).unwrap().digits(),
                digits
            );
        }
    }

    #[test]
    fn default_is_sha1_six_digits() {
        let hotp = Hotp::default();
        assert_eq!(hotp.algorithm(), HashAlgorithm::Sha1);
        assert_eq!(hotp.digits(), 6);
    }

    #[test]
    fn verify_at_counter_max_with_look_ahead_does_not_overflow() {
        let hotp = Hotp::default();
        let secret = rfc_secret();
        let code = hotp.generate(&secret, u64::MAX);
        assert_eq!(hotp.verify(&secret, &code, u64::MAX, 10), Some(u64::MAX));
        assert_eq!(
            hotp.verify(&secret, &code, u64::MAX - 3, u64::MAX),
            Some(u64::MAX)
        );
        let earlier = hotp.generate(&secret, u64::MAX - 1);
        if earlier != code {
            assert_eq!(hotp.verify(&secret, &earlier, u64::MAX, 10), None);
        }
    }

    #[test]
    fn verify_refuses_malformed_codes() {
        let hotp = Hotp::default();
        let secret = rfc_secret();
        // 755224 is the RFC 4226 code for counter 0.
        for code in [
            "",
            "75522",
            "7552240",
            "75522a",
            "+55224",
            " 755224",
            "７５５２２４",
            "-55224",
        ] {
            assert_eq!(hotp.verify(&secret, code, 0, 10), None, "{code:?}");
        }
        assert_eq!(hotp.verify(&secret, "755224", 0, 0), Some(0));
    }

    #[test]
    fn verify_returns_the_matching_counter_not_the_start() {
        let hotp = Hotp::default();
        let secret = rfc_secret();
        // 162583 is the RFC 4226 code for counter 7.
        assert_eq!(hotp.verify(&secret, "162583", 3, 10), Some(7));
        assert_eq!(hotp.verify(&secret, "162583", 3, 3), None);
        assert_eq!(hotp.verify(&secret, "162583", 8, 10), None);
    }

    #[test]
    fn look_ahead_is_clamped() {
        let hotp = Hotp::default();
        let secret = rfc_secret();
        let beyond = Hotp::MAX_LOOK_AHEAD + 1;
        let code = hotp.generate(&secret, beyond);
        let found = hotp.verify(&secret, &code, 0, u64::MAX);
        // Only a chance collision inside the clamped range may match, never the counter beyond it.
        assert_ne!(found, Some(beyond));
        if let Some(counter) = found {
            assert!(counter <= Hotp::MAX_LOOK_AHEAD);
            assert_eq!(hotp.generate(&secret, counter), code);
        }
    }

    #[test]
    fn ascii_digits_pads_with_zeros() {
        assert_eq!(&ascii_digits(42, 6)[..6], b"000042");
        assert_eq!(&ascii_digits(99_999_999, 8)[..8], b"99999999");
        assert_eq!(&ascii_digits(0, 7)[..7], b"0000000");
    }

    #[test]
    fn algorithm_names_parse_case_insensitively() {
        for (name, algorithm) in [
            ("SHA1", HashAlgorithm::Sha1),
            ("sha1", HashAlgorithm::Sha1),
            ("SHA-1", HashAlgorithm::Sha1),
            ("sha-256", HashAlgorithm::Sha256),
            ("Sha256", HashAlgorithm::Sha256),
            ("SHA-512", HashAlgorithm::Sha512),
            ("sha512", HashAlgorithm::Sha512),
        ] {
            assert_eq!(name.parse::<HashAlgorithm>(), Ok(algorithm), "{name}");
        }
        assert_eq!(
            "MD5".parse::<HashAlgorithm>(),
            Err(OtpError::UnknownAlgorithm("MD5".to_owned()))
        );
        assert_eq!(HashAlgorithm::Sha256.to_string(), "SHA256");
        assert_eq!(HashAlgorithm::default().as_str(), "SHA1");
    }
}
