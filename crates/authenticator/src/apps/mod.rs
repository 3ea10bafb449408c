//! Other authenticator apps' export files. Each reader checks bounds before any key derivation
//! and reports per entry what it skipped.

use tessera_import::Refusal;

use crate::cli::Secrets;
use crate::import::{Format, Found};

/// Why an app file gave nothing.
#[derive(Debug)]
pub enum AppError {
    /// The file is refused as a whole (wrong password, malformed, unsupported).
    Refused(Refusal),
    /// Asking for a password failed.
    Other(anyhow::Error),
}

/// Reads an app's export.
pub fn read(
    format: Format,
    _bytes: &[u8],
    _locator: &str,
    _secrets: &mut Secrets,
) -> Result<Found, AppError> {
    Err(AppError::Refused(Refusal::AlgorithmUnsupported {
        algorithm: format!("{} files are not read by this version", format.origin()),
    }))
}
