//! The seed file: what `prepare` created on the server and everything `run` needs to compute
//! valid codes (application keys, and per token its user, secret and the next usable counter or
//! the last used time step).
//!
//! Only types and (de)serialisation; reading and writing the file is the binary's job. The file
//! holds token secrets and application keys in clear text: it is for test servers only. `Debug`
//! never prints a secret, a password or a key.

use std::fmt;

use serde::{Deserialize, Serialize};
use tessera_otp::{HashAlgorithm, Hotp, OtpError, Secret, Totp};

/// The version of the file layout below; `run` refuses files of another version.
pub const FORMAT_VERSION: u32 = 1;

/// The whole seed file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeedFile {
    /// [`FORMAT_VERSION`] when written.
    pub version: u32,
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The prefix of the user names (`<prefix>h0000`, `<prefix>t0000`).
    pub prefix: String,
    /// Unix time of `prepare`.
    pub created_at: u64,
    /// The application keys for the validate API.
    pub apps: Apps,
    /// HOTP tokens first, then TOTP tokens, each in user order.
    pub tokens: Vec<TokenSeed>,
}

impl SeedFile {
    /// Parses a seed file and checks its version.
    pub fn from_json(text: &str) -> Result<SeedFile, SeedError> {
        let file: SeedFile = serde_json::from_str(text).map_err(SeedError::Json)?;
        if file.version != FORMAT_VERSION {
            return Err(SeedError::Version(file.version));
        }
        Ok(file)
    }

    /// The file as pretty JSON (it is meant to be read by people too).
    pub fn to_json(&self) -> String {
        // Serialising plain structs with string keys cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Indexes (into [`tokens`](SeedFile::tokens)) of the tokens of one kind, in file order.
    pub fn indexes_of(&self, kind: TokenKind) -> Vec<usize> {
        self.tokens
            .iter()
            .enumerate()
            .filter(|(_, token)| token.kind == kind)
            .map(|(index, _)| index)
            .collect()
    }
}

/// The applications `prepare` registered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Apps {
    /// Mode `otp_only`: the request carries user name and code.
    pub otp_only: AppKey,
    /// Mode `password_and_otp`, only with `prepare --with-password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_and_otp: Option<AppKey>,
}

/// One application and its API key.
#[derive(Clone, Serialize, Deserialize)]
pub struct AppKey {
    /// The server's id of the application.
    pub id: ResourceId,
    /// Its name.
    pub name: String,
    /// The key sent as `Authorization: Bearer <api_key>` to the validate API.
    pub api_key: String,
}

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("api_key", &"redacted")
            .finish()
    }
}

/// A server id: the contract says integers today, a string is accepted too so the file survives
/// a change of id type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResourceId {
    /// A numeric database id.
    Number(i64),
    /// Any other id.
    Text(String),
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceId::Number(n) => write!(f, "{n}"),
            ResourceId::Text(s) => f.write_str(s),
        }
    }
}

/// HOTP or TOTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Counter-based (RFC 4226).
    Hotp,
    /// Time-based (RFC 6238).
    Totp,
}

impl TokenKind {
    /// `hotp` or `totp`, as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Hotp => "hotp",
            TokenKind::Totp => "totp",
        }
    }
}

/// One activated token and its user.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenSeed {
    /// The server's token id.
    pub id: ResourceId,
    /// The token's serial.
    pub serial: String,
    /// Its owner.
    pub username: String,
    /// The owner's password (users made with `--with-password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// HOTP or TOTP.
    pub kind: TokenKind,
    /// The shared secret, base32 without padding.
    pub secret: String,
    /// `SHA1`, `SHA256` or `SHA512`.
    pub algorithm: String,
    /// Digits per code.
    pub digits: u32,
    /// TOTP period in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    /// HOTP: the lowest counter not used yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_counter: Option<u64>,
    /// TOTP: the last time step the server accepted (or may have accepted); only later steps
    /// are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_step: Option<u64>,
}

impl fmt::Debug for TokenSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSeed")
            .field("id", &self.id)
            .field("serial", &self.serial)
            .field("username", &self.username)
            .field("kind", &self.kind)
            .field("secret", &"redacted")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .field("next_counter", &self.next_counter)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

impl TokenSeed {
    /// The secret and the code generator this entry describes.
    pub fn generator(&self) -> Result<(Secret, Generator), SeedError> {
        let secret = Secret::from_base32(&self.secret).map_err(SeedError::Otp)?;
        let algorithm: HashAlgorithm = self.algorithm.parse().map_err(SeedError::Otp)?;
        let generator = match self.kind {
            TokenKind::Hotp => {
                Generator::Hotp(Hotp::new(algorithm, self.digits).map_err(SeedError::Otp)?)
            }
            TokenKind::Totp => Generator::Totp(
                Totp::new(algorithm, self.digits, self.period.unwrap_or(30))
                    .map_err(SeedError::Otp)?,
            ),
        };
        Ok((secret, generator))
    }
}

/// A token's code generator.
#[derive(Debug, Clone, Copy)]
pub enum Generator {
    /// Counter-based.
    Hotp(Hotp),
    /// Time-based.
    Totp(Totp),
}

/// Why a seed file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// Not JSON of the expected shape.
    #[error("seed file: {0}")]
    Json(serde_json::Error),
    /// Written by another version of the tool.
    #[error("seed file version {0} is not {FORMAT_VERSION}: prepare it again")]
    Version(u32),
    /// A secret, algorithm or digit count the engine refuses.
    #[error("seed file token: {0}")]
    Otp(OtpError),
}
