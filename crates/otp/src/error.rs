//! The engine's one error type: invalid parameters, secrets and key URIs.
//!
//! A wrong one-time code is never an error (verification answers `None`). No message may echo a
//! secret: variants carry only lengths, positions and characters that are provably not key material.

/// Why a parameter, secret or key URI was refused.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum OtpError {
    /// The number of digits is outside 6..=8. RFC 4226 §5.3: "Implementations MUST extract a
    /// 6-digit code at a minimum and possibly 7 and 8-digit code."
    #[error("digits must be 6, 7 or 8, got {0}")]
    InvalidDigits(u32),

    /// The TOTP period (time step X of RFC 6238 §4.1) is 0 or longer than one day.
    #[error("period must be between 1 and 86400 seconds, got {0}")]
    InvalidPeriod(u64),

    /// The secret has no bytes (an empty key makes every code predictable).
    #[error("secret must not be empty")]
    EmptySecret,

    /// The secret is longer than [`Secret::MAX_BYTES`](crate::Secret::MAX_BYTES) (128 bytes).
    #[error("secret must be at most 128 bytes, got {bytes}")]
    SecretTooLong {
        /// Length of the refused secret in bytes.
        bytes: usize,
    },

    /// A base32 secret holds a character outside the RFC 4648 alphabet (separators and padding
    /// aside). Naming it is safe: a character that is not base32 is not part of the key.
    #[error("invalid base32 character {character:?} at position {position}")]
    InvalidBase32 {
        /// Zero-based position of the character, counted in characters of the input.
        position: usize,
        /// The offending character.
        character: char,
    },

    /// A base32 secret has a number of symbols no RFC 4648 encoder produces (1, 3 or 6 modulo 8),
    /// which usually means a character was lost while copying.
    #[error(
        "base32 secret has an impossible length of {symbols} symbols (a character is missing or extra)"
    )]
    InvalidBase32Length {
        /// Number of base32 symbols, separators and padding excluded.
        symbols: usize,
    },

    /// A hex secret holds a character outside 0-9, a-f, A-F or an odd number of digits.
    #[error("secret is not valid hex: expected pairs of 0-9 and a-f")]
    InvalidHex,

    /// The hash algorithm name is not SHA1, SHA256 or SHA512.
    #[error("unknown algorithm {0:?}: expected SHA1, SHA256 or SHA512")]
    UnknownAlgorithm(String),

    /// The operating system's random number generator failed, so no secret was made.
    #[error("the operating system's random number generator failed")]
    Random,

    /// An `otpauth://` key URI is malformed; the message says exactly what is wrong.
    #[error("invalid key URI: {0}")]
    InvalidUri(String),
}
