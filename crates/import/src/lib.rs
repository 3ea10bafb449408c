//! Tessera's token file readers: PSKC (RFC 6030), CSV seed files of token vendors and other
//! servers, `otpauth://` URI lists, Google Authenticator exports (`otpauth-migration://`, as text
//! or QR images) and QR images of ordinary enrollment codes. Plus a PSKC writer (encrypted only).
//!
//! Pure: no database, no async, no clock. Every reader is a streaming iterator of
//! [`Item`]s (a [`Record`] or a [`Skip`]) that ends early with a [`Refusal`] when the whole file
//! must be refused (a wrong MAC, a DOCTYPE, a missing key). A skip names where it happened
//! (`KeyPackage #12 serial=…`, `line 7`, `QR 2/3 entry 4`) and why, with a stable code and a
//! German and English message; no skip, refusal or `Debug` output carries secret bytes.
//!
//! ```
//! use tessera_import::{uri, Item};
//!
//! let list = "# exported\notpauth://totp/Acme:alice?secret=JBSWY3DPEHPK3PXP&issuer=Acme\n";
//! let items: Vec<Item> = uri::UriListReader::new(list.as_bytes())
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! assert!(matches!(&items[0], Item::Record(r) if r.account.as_deref() == Some("alice")));
//! ```

pub mod csv;
pub mod leftover;
mod limits;
pub mod migration;
pub mod pskc;
pub mod qr;
mod reason;
pub mod safenet;
mod time;
pub mod uri;
mod xml;

pub use limits::BoundedRead;
pub use reason::{Lang, Refusal, SkipReason, Warning};
pub use time::parse_datetime;

use tessera_otp::{HashAlgorithm, Secret};

/// What kind of one-time code a record makes, with the parameter only that kind has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// RFC 6238: codes from the time, `period` seconds a step; `drift` is the token clock's known
    /// offset in steps (PSKC `TimeDrift`; positive: the token is ahead).
    Totp { period: u64, drift: i64 },
    /// RFC 4226: codes from a counter; `counter` is the next one the token will use.
    Hotp { counter: u64 },
}

/// One token read from a file. `Debug` prints the secret as `Secret(redacted)`.
#[derive(Debug, Clone)]
pub struct Record {
    /// The serial number printed on the device, kept as written (leading zeros matter). `None`
    /// for sources that have none (URI lists, Google Authenticator exports).
    pub serial: Option<String>,
    pub kind: Kind,
    pub algorithm: HashAlgorithm,
    pub digits: u32,
    pub secret: Secret,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    /// The provider shown above the account in apps (URIs, exports, PSKC `Issuer`).
    pub issuer: Option<String>,
    /// The account name of a URI or export entry, or PSKC `FriendlyName`.
    pub account: Option<String>,
    /// The user the file assigns the token to (Entra `upn`, PSKC `UserId`); used only when the
    /// admin asks to assign on import.
    pub user: Option<String>,
    /// Validity from the file (PSKC `StartDate`/`ExpiryDate`), Unix seconds.
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    /// Where in the file it came from, as in a [`Skip`].
    pub locator: String,
    /// Things worth telling the admin that do not stop the import (a weak secret).
    pub warnings: Vec<Warning>,
}

impl Record {
    /// A record with the defaults every authenticator app uses (SHA-1, 6 digits), for readers
    /// to fill in.
    fn new(kind: Kind, secret: Secret, locator: String) -> Record {
        let mut warnings = Vec::new();
        if secret.is_weak() {
            warnings.push(Warning::WeakSecret {
                bits: secret.bits(),
            });
        }
        Record {
            serial: None,
            kind,
            algorithm: HashAlgorithm::Sha1,
            digits: 6,
            secret,
            manufacturer: None,
            model: None,
            issuer: None,
            account: None,
            user: None,
            not_before: None,
            not_after: None,
            locator,
            warnings,
        }
    }
}

/// An entry of the file that was not imported, and why. Never holds secret bytes: the locator
/// names a position and at most a serial number, the reason is a code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skip {
    pub locator: String,
    pub reason: SkipReason,
}

impl Skip {
    pub fn new(locator: impl Into<String>, reason: SkipReason) -> Skip {
        Skip {
            locator: locator.into(),
            reason,
        }
    }
}

/// What a reader yields for each entry of a file.
#[derive(Debug, Clone)]
pub enum Item {
    Record(Box<Record>),
    Skip(Skip),
}

/// Any reader, as the server drives them: items until the end or a refusal.
pub type Source<'a> = Box<dyn Iterator<Item = Result<Item, Refusal>> + Send + 'a>;
