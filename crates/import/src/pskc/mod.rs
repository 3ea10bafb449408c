//! PSKC, the Portable Symmetric Key Container (RFC 6030): a streaming reader ([`PskcReader`]) and
//! an encrypting writer ([`PskcWriter`]).
//!
//! The reader handles plaintext files, pre-shared keys (AES-128/192/256-CBC, RFC 3394 key wrap,
//! 3DES-CBC) and passwords (PBKDF2 with any SHA PRF); HOTP and TOTP in every algorithm spelling
//! vendors write; `Suite` hashes, digits, counters, time steps, `TimeDrift` (in steps), policy
//! dates and device info. It holds one `KeyPackage` at a time, so 100,000 keys take no more
//! memory than one.
//!
//! Security rules it enforces: a DOCTYPE refuses the file (no entities, no external references);
//! every CBC-encrypted value needs a `ValueMAC` and every MAC must verify, or the whole file is
//! refused; a plaintext file (no MAC at all) is refused unless
//! [`PskcOptions::allow_unauthenticated`] is set; a wrong key, a wrong password and a changed
//! file all get the same answer.

mod crypto;
mod package;
mod reader;
mod writer;

pub(crate) use package::check_serial;
pub use reader::PskcReader;
pub use writer::{ExportProtection, PskcWriter, Random};

use zeroize::Zeroizing;

/// The key material the caller has for an encrypted file.
#[derive(Default)]
pub enum Protection {
    /// None given: only plaintext files can be read.
    #[default]
    None,
    /// A pre-shared key (RFC 6030 §6.1), raw bytes.
    Key(Zeroizing<Vec<u8>>),
    /// A password for PBKDF2 (RFC 6030 §6.2).
    Password(Zeroizing<String>),
}

impl std::fmt::Debug for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protection::None => "Protection::None",
            Protection::Key(_) => "Protection::Key(redacted)",
            Protection::Password(_) => "Protection::Password(redacted)",
        })
    }
}

/// How the reader treats a file.
#[derive(Debug, Default)]
pub struct PskcOptions {
    pub protection: Protection,
    /// Accept a plaintext file that carries no MAC (with a warning). Encrypted values always need
    /// their MAC.
    pub allow_unauthenticated: bool,
}

/// Longest run of bytes without `<` or `>`: a text node or tag. Real values are far below it
/// (a base64 secret of 128 bytes is 172 characters).
const MAX_RUN: usize = 64 * 1024;
/// Deepest nesting accepted; RFC 6030 files nest about 8 deep.
const MAX_DEPTH: usize = 32;
/// Keys in one `KeyPackage`.
const MAX_KEYS_PER_PACKAGE: usize = 16;
/// Highest PBKDF2 iteration count accepted: far above the 100,000 writers use, low enough that a
/// hostile file cannot keep the importer busy for minutes.
const MAX_ITERATIONS: u32 = 10_000_000;
