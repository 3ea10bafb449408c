//! Tessera's token engine: HOTP (RFC 4226), TOTP (RFC 6238), shared secrets and
//! `otpauth://` key URIs.
//!
//! Pure: no I/O, no clock, no async runtime, no policy. Callers pass the time or counter and get
//! back *which* step or counter matched (`Option<u64>`), so the service can refuse replays and
//! learn drift. A wrong code is `None`, never an error; [`OtpError`] is for invalid parameters,
//! secrets and URIs only. Codes are compared in constant time and secrets are zeroized on drop.
//!
//! ```
//! use tessera_otp::{Secret, Totp, Window};
//!
//! let secret = Secret::generate()?;
//! let totp = Totp::default();
//! let code = totp.generate(&secret, 1_700_000_000);
//! assert_eq!(
//!     totp.verify(&secret, &code, 1_700_000_000, Window::default()),
//!     Some(totp.step(1_700_000_000))
//! );
//! # Ok::<(), tessera_otp::OtpError>(())
//! ```

mod error;
mod hotp;
mod secret;
mod totp;
mod uri;

pub use error::OtpError;
pub use hotp::{HashAlgorithm, Hotp};
pub use secret::Secret;
pub use totp::{Totp, Window};
pub use uri::{KeyUri, UriKind};
