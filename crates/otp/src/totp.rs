//! TOTP (RFC 6238): HOTP over time steps T = floor(unix_time / period), with T0 = 0.
//!
//! No clock: callers pass the Unix time or the step. Must not decide policy (window size,
//! replay refusal): verification returns the step that matched so the service can refuse it
//! next time (RFC 6238 §5.2) and learn the client's drift.

use crate::error::OtpError;
use crate::hotp::{HashAlgorithm, Hotp, check_digits};
use crate::secret::Secret;

/// How many time steps before and after the current one verification accepts.
///
/// Each side is clamped to [`Window::MAX_SIDE`]. RFC 6238 §5.2 recommends at most one step
/// back for network delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Steps accepted before the current step.
    pub back: u64,
    /// Steps accepted after the current step.
    pub forward: u64,
}

impl Window {
    /// The most steps checked on each side of the centre; larger values are clamped. It bounds
    /// the work one verification can cost (each step is one HMAC).
    pub const MAX_SIDE: u64 = 1000;
}

impl Default for Window {
    /// One step back and one forward (±30 s at the default period).
    fn default() -> Self {
        Window {
            back: 1,
            forward: 1,
        }
    }
}

/// A TOTP generator and verifier: hash algorithm, digits and period in seconds.
///
/// Holds no secret; pass the [`Secret`] to each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totp {
    algorithm: HashAlgorithm,
    digits: u32,
    period: u64,
}

impl Default for Totp {
    /// HMAC-SHA-1, 6 digits, 30 seconds: what every authenticator app supports.
    fn default() -> Self {
        Totp {
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

impl Totp {
    /// Longest accepted period: one day.
    pub const MAX_PERIOD: u64 = 86_400;

    /// Creates a generator; `digits` must be 6..=8 and `period` 1..=[`MAX_PERIOD`](Totp::MAX_PERIOD).
    pub fn new(algorithm: HashAlgorithm, digits: u32, period: u64) -> Result<Totp, OtpError> {
        check_digits(digits)?;
        // A zero period would divide by zero in `step`.
        if !(1..=Self::MAX_PERIOD).contains(&period) {
            return Err(OtpError::InvalidPeriod(period));
        }
        Ok(Totp {
            algorithm,
            digits,
            period,
        })
    }

    /// The hash algorithm under the HMAC.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The number of digits in a code.
    pub fn digits(&self) -> u32 {
        self.digits
    }

    /// The time step X in seconds.
    pub fn period(&self) -> u64 {
        self.period
    }

    /// The time step containing `unix_time`: T = floor(unix_time / period) (RFC 6238 §4.2, T0 = 0).
    pub fn step(&self, unix_time: u64) -> u64 {
        // `period` is at least 1 by construction.
        unix_time / self.period
    }

    /// The code for time step `step`.
    pub fn generate_step(&self, secret: &Secret, step: u64) -> String {
        self.hotp().generate(secret, step)
    }

    /// The code for the step containing `unix_time`.
    pub fn generate(&self, secret: &Secret, unix_time: u64) -> String {
        self.generate_step(secret, self.step(unix_time))
    }

    /// Checks steps `center_step - back ..= center_step + forward` (saturating at 0 and
    /// `u64::MAX`, each side clamped to [`Window::MAX_SIDE`]) and returns the first step whose
    /// code equals `code`. A code of the wrong length or with non-digits is `None`.
    pub fn verify_step(
        &self,
        secret: &Secret,
        code: &str,
        center_step: u64,
        window: Window,
    ) -> Option<u64> {
        let first = center_step.saturating_sub(window.back.min(Window::MAX_SIDE));
        let last = center_step.saturating_add(window.forward.min(Window::MAX_SIDE));
        self.hotp().verify_range(secret, code, first, last)
    }

    /// [`verify_step`](Totp::verify_step) around the step containing `unix_time`.
    pub fn verify(
        &self,
        secret: &Secret,
        code: &str,
        unix_time: u64,
        window: Window,
    ) -> Option<u64> {
        self.verify_step(secret, code, self.step(unix_time), window)
    }

    /// RFC 6238 §4.2: TOTP is HOTP with the time step as counter.
    fn hotp(&self) -> Hotp {
        Hotp::from_checked(self.algorithm, self.digits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::from_bytes(b"12345678901234567890".to_vec()).unwrap()
    }

    #[test]
    fn new_validates_digits_and_period() {
        assert_eq!(
            Totp::new(HashAlgorithm::Sha1, 6, 0),
            Err(OtpError::InvalidPeriod(0))
        );
        assert_eq!(
            Totp::new(HashAlgorithm::Sha1, 6, 86_401),
            Err(OtpError::InvalidPeriod(86_401))
        );
        assert_eq!(
            Totp::new(HashAlgorithm::Sha1, 9, 30),
            Err(OtpError::InvalidDigits(9))
        );
        let totp = Totp::new(HashAlgorithm::Sha512, 8, 86_400).unwrap();
        assert_eq!(
            (totp.algorithm(), totp.digits(), totp.period()),
            (HashAlgorithm::Sha512, 8, 86_400)
        );
        assert_eq!(Totp::new(HashAlgorithm::Sha1, 6, 1).unwrap().step(59), 59);
    }

    #[test]
    fn default_is_sha1_six_digits_thirty_seconds() {
        let totp = Totp::default();
        assert_eq!(
            (totp.algorithm(), totp.digits(), totp.period()),
            (HashAlgorithm::Sha1, 6, 30)
        );
        assert_eq!(
            Window::default(),
            Window {
                back: 1,
                forward: 1
            }
        );
    }

    #[test]
    fn time_zero_and_max_do_not_overflow() {
        let totp = Totp::default();
        let secret = secret();
        assert_eq!(totp.step(0), 0);
        assert_eq!(totp.step(u64::MAX), u64::MAX / 30);
        // RFC 4226 counter 0 is 755224, and TOTP at t = 0 is step 0.
        assert_eq!(totp.generate(&secret, 0), "755224");
        assert_eq!(
            totp.verify(&secret, "755224", 0, Window::default()),
            Some(0)
        );
        let wide = Window {
            back: u64::MAX,
            forward: u64::MAX,
        };
        assert_eq!(totp.verify(&secret, "755224", 0, wide), Some(0));

        // At the far end of time the window saturates at u64::MAX instead of wrapping.
        let last = u64::MAX / 30;
        let code = totp.generate(&secret, u64::MAX);
        let expected =
            (last - Window::MAX_SIDE..=last).find(|&s| totp.generate_step(&secret, s) == code);
        assert_eq!(totp.verify(&secret, &code, u64::MAX, wide), expected);
        assert!(expected.is_some());
        let code = totp.generate_step(&secret, u64::MAX);
        assert_eq!(
            totp.verify_step(
                &secret,
                &code,
                u64::MAX,
                Window {
                    back: 0,
                    forward: u64::MAX
                }
            ),
            Some(u64::MAX)
        );
    }

    #[test]
    fn verify_reports_the_step_that_matched() {
        let totp = Totp::default();
        let secret = secret();
        let center = totp.step(1_111_111_111);
        let previous = totp.generate_step(&secret, center - 1);
        assert_eq!(
            totp.verify(&secret, &previous, 1_111_111_111, Window::default()),
            Some(center - 1)
        );
        assert_eq!(
            totp.verify(
                &secret,
                &previous,
                1_111_111_111,
                Window {
                    back: 0,
                    forward: 1
                }
            ),
            None
        );
    }
}
