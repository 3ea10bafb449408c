//! The service's errors. Each has a stable [`ErrorCode`]: the API's `error.code`, the CLI's
//! message prefix, and the list in `docs/api.md`. Internal failures keep their detail for the log
//! and show clients a generic message.

use crate::crypto::CryptoError;
use crate::msg::{Key, Msg};
use crate::store::StoreError;

/// Stable, machine-readable error codes. Renaming one breaks clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: bad JSON, a missing field, a value of the wrong type.
    BadRequest,
    /// A field has a value that is not allowed (named in the message).
    InvalidInput,
    /// No such user, token or application.
    NotFound,
    /// A user, token serial or application of that name exists already.
    Conflict,
    /// Not logged in, or the session expired.
    Unauthenticated,
    /// Username, password or code wrong (never says which).
    InvalidCredentials,
    /// Logged in, but not allowed to do this.
    Forbidden,
    /// A sensitive change needs a fresh re-authentication (`POST /api/v1/auth/reauth`).
    ReauthRequired,
    /// The code did not match (for operations on one token, e.g. activation).
    InvalidCode,
    /// The token is in a state that does not allow this operation.
    TokenState,
    /// Too many failed codes: wait (the message says until when) or ask an admin to unlock.
    Throttled,
    /// The request body is larger than the server accepts.
    PayloadTooLarge,
    /// Something failed on the server; details are in its log.
    Internal,
    /// The enrollment link was used already.
    EnrollmentUsed,
    /// The enrollment link expired.
    EnrollmentExpired,
    /// A newer invitation replaced this enrollment link.
    EnrollmentSuperseded,
    /// Too many wrong codes ended this enrollment link.
    EnrollmentEnded,
    /// The e-mail could not be handed to the mail server (the message has its answer).
    MailFailed,
    /// A vault backup upload did not name the newest stored generation (another device
    /// uploaded meanwhile, or an account reset wiped the backups): download, merge, retry.
    BackupConflict,
}

impl ErrorCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::ReauthRequired => "reauth_required",
            ErrorCode::InvalidCode => "invalid_code",
            ErrorCode::TokenState => "token_state",
            ErrorCode::Throttled => "throttled",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::Internal => "internal",
            ErrorCode::EnrollmentUsed => "enrollment_used",
            ErrorCode::EnrollmentExpired => "enrollment_expired",
            ErrorCode::EnrollmentSuperseded => "enrollment_superseded",
            ErrorCode::EnrollmentEnded => "enrollment_ended",
            ErrorCode::MailFailed => "mail_failed",
            ErrorCode::BackupConflict => "backup_conflict",
        }
    }

    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::BadRequest,
        ErrorCode::InvalidInput,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::Unauthenticated,
        ErrorCode::InvalidCredentials,
        ErrorCode::Forbidden,
        ErrorCode::ReauthRequired,
        ErrorCode::InvalidCode,
        ErrorCode::TokenState,
        ErrorCode::Throttled,
        ErrorCode::PayloadTooLarge,
        ErrorCode::Internal,
        ErrorCode::EnrollmentUsed,
        ErrorCode::EnrollmentExpired,
        ErrorCode::EnrollmentSuperseded,
        ErrorCode::EnrollmentEnded,
        ErrorCode::MailFailed,
        ErrorCode::BackupConflict,
    ];
}

/// A service error. Texts go by key ([`Msg`]): pages show them in the reader's language, the API,
/// the CLI and the log in English (`Display`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value is not allowed; the message names the field and the rule.
    #[error("{0}")]
    Invalid(Msg),
    /// The named thing does not exist.
    #[error("{} not found", .0)]
    NotFound(&'static str),
    /// The named thing exists already.
    #[error("{0}")]
    Conflict(Msg),
    #[error("{}", Msg::new(Key::Unauthenticated))]
    Unauthenticated,
    #[error("{}", Msg::new(Key::InvalidCredentials))]
    InvalidCredentials,
    /// `InvalidCredentials` to every client but the web login page, which can say why: the
    /// password was right and the code was used a moment ago (wait for the next one).
    #[error("{}", Msg::new(Key::InvalidCredentials))]
    CodeJustUsed,
    #[error("{0}")]
    Forbidden(Msg),
    #[error("{}", Msg::new(Key::ReauthRequired))]
    ReauthRequired,
    #[error("{}", Msg::new(Key::InvalidCode))]
    InvalidCode,
    #[error("{0}")]
    TokenState(Msg),
    #[error("{}", Msg::new(Key::Throttled))]
    Throttled,
    #[error("storage failure")]
    Store(#[from] StoreError),
    #[error("cryptography failure")]
    Crypto(#[from] CryptoError),
    /// An enrollment link that no longer works, and why.
    #[error("{}", .0.message())]
    EnrollmentLink(super::enroll::LinkProblem),
    /// A mail could not be handed over; the text is the mail server's answer or the I/O error.
    #[error("{}", Msg::new(Key::MailFailed).arg("detail", .0))]
    MailFailed(String),
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Invalid(_) => ErrorCode::InvalidInput,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::Unauthenticated => ErrorCode::Unauthenticated,
            Error::InvalidCredentials | Error::CodeJustUsed => ErrorCode::InvalidCredentials,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::ReauthRequired => ErrorCode::ReauthRequired,
            Error::InvalidCode => ErrorCode::InvalidCode,
            Error::TokenState(_) => ErrorCode::TokenState,
            Error::Throttled => ErrorCode::Throttled,
            Error::Store(StoreError::Conflict) => ErrorCode::Conflict,
            Error::Store(_) | Error::Crypto(_) => ErrorCode::Internal,
            Error::EnrollmentLink(p) => p.code(),
            Error::MailFailed(_) => ErrorCode::MailFailed,
        }
    }

    /// What a person may be told, by key: internal details are replaced by a generic text.
    pub fn public_msg(&self) -> Msg {
        match self {
            Error::Invalid(m) | Error::Conflict(m) | Error::Forbidden(m) | Error::TokenState(m) => {
                m.clone()
            }
            Error::NotFound(what) => Msg::new(Key::NotFound).arg("what", what),
            Error::Unauthenticated => Msg::new(Key::Unauthenticated),
            Error::InvalidCredentials | Error::CodeJustUsed => Msg::new(Key::InvalidCredentials),
            Error::ReauthRequired => Msg::new(Key::ReauthRequired),
            Error::InvalidCode => Msg::new(Key::InvalidCode),
            Error::Throttled => Msg::new(Key::Throttled),
            Error::Store(StoreError::Conflict) => Msg::new(Key::Exists),
            Error::Store(_) | Error::Crypto(_) => Msg::new(Key::Internal),
            Error::EnrollmentLink(p) => Msg::new(p.key()),
            Error::MailFailed(detail) => Msg::new(Key::MailFailed).arg("detail", detail),
        }
    }

    /// The message a client of the API may see, in English.
    pub fn public_message(&self) -> String {
        self.public_msg().english()
    }
}
