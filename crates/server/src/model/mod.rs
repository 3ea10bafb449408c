//! Plain data shared by every layer: identifiers, users, tokens, applications, sessions, audit
//! entries. No behaviour beyond parsing and naming; no I/O.

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

mod audit_chain;
pub use audit_chain::*;
mod radius;
pub use radius::{Cidr, RadiusClient, RadiusMode};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
            utoipa::ToSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A user's database id.
    UserId
);
id_type!(
    /// A token's database id.
    TokenId
);
id_type!(
    /// A registered application's database id.
    AppId
);

/// A token's serial number: unique, shown to admins, and bound into the sealed seed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Serial(pub String);

impl std::fmt::Display for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Declares a string enum stored as text, with `as_str` and `FromStr`.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        // The stored and serialised names are the variants in snake_case (checked by a test).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "expected one of {}, got {:?}",
                        [$($text),+].join(", "),
                        s
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod inventory;
pub use inventory::*;

text_enum!(
    /// Whether a user may log in.
    UserState { Active = "active", Disabled = "disabled" }
);
text_enum!(
    /// What a user may do: `admin` manages everything, `user` only their own devices.
    Role { User = "user", Admin = "admin" }
);
text_enum!(
    /// Language of pages and e-mails.
    Language { En = "en", De = "de" }
);
text_enum!(
    /// How a token produces codes.
    TokenKind { Totp = "totp", Hotp = "hotp", Email = "email", Sms = "sms" }
);
text_enum!(
    /// A token's life cycle: `pending` until a first correct code, then `active`.
    TokenState {
        Pending = "pending",
        Active = "active",
        Disabled = "disabled",
        Locked = "locked",
        Revoked = "revoked",
    }
);
text_enum!(
    /// What a registered application sends to the validate API.
    AppMode { PasswordAndOtp = "password_and_otp", OtpOnly = "otp_only" }
);
text_enum!(
    /// Whether an application's key is accepted.
    AppState { Active = "active", Revoked = "revoked" }
);

/// A person who logs in. `Debug` leaves out the password hash (it could be attacked offline).
#[derive(Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub phone: String,
    /// False while the user has no phone number (from the start, or once it was removed): no
    /// SMS is sent to this user.
    pub sms_enabled: bool,
    pub language: Language,
    pub state: UserState,
    pub otp_required: bool,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// Consecutive wrong passwords at validation.
    pub fail_count: i64,
    /// No validation is checked for this account before this time.
    pub throttled_until: UnixTime,
    /// When the user's first token was activated; `None` while the user never had one. Stays
    /// set when tokens are revoked or deleted: from then on a second factor is always needed.
    pub second_factor_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl User {
    /// Whether every login of this user needs a valid second factor: the account requires one,
    /// or a token was activated once (even if it is gone now).
    pub fn needs_second_factor(&self) -> bool {
        self.otp_required || self.second_factor_at.is_some()
    }
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("state", &self.state)
            .field("role", &self.role)
            .field("otp_required", &self.otp_required)
            .finish_non_exhaustive()
    }
}

/// What a new user starts with. `Debug` leaves out the password hash.
#[derive(Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub phone: String,
    /// Whether SMS codes may go to `phone`: false without a phone number.
    pub sms_enabled: bool,
    pub language: Language,
    pub otp_required: bool,
    pub role: Role,
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A device or app that holds a shared secret. The seed stays sealed in `sealed_secret`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub id: TokenId,
    pub user_id: UserId,
    pub serial: Serial,
    pub kind: TokenKind,
    pub name: String,
    pub algorithm: tessera_otp::HashAlgorithm,
    pub digits: u32,
    pub period: u64,
    pub sealed_secret: Vec<u8>,
    pub state: TokenState,
    /// The lowest counter (HOTP) or time step (TOTP) still acceptable: every lower one is used.
    pub next_counter: i64,
    /// Learned clock drift of a TOTP token, in time steps.
    pub drift: i64,
    pub fail_count: i64,
    /// No code is checked for this token before this time (throttling after failures).
    pub throttled_until: UnixTime,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    /// A counter or step matched outside the window: the next consecutive code resynchronises.
    pub resync_hint: Option<i64>,
    pub resync_hint_at: UnixTime,
    /// A factory token before its first accepted code: how far (TOTP steps, HOTP counters) a
    /// code is also looked for; 0 once it was used (see `service/codes.rs`).
    pub first_use_window: i64,
}

text_enum!(
    /// Which users a list shows: everyone (`all`); `locked`: throttled after failures, with a
    /// locked or throttled device, or with self-service locked after "this wasn't me";
    /// `no_device`: must use a second factor but has no device that can give a code; `pending`:
    /// has an enrollment link that still works.
    UserFilter { All = "all", Locked = "locked", NoDevice = "no_device", Pending = "pending" }
);

// `text_enum!` writes the enum, so `#[derive(Default)]` cannot be put on it.
#[allow(clippy::derivable_impls)]
impl Default for UserFilter {
    fn default() -> Self {
        UserFilter::All
    }
}

text_enum!(
    /// Why an active token cannot give a code now: its codes go to an address the user record
    /// no longer has.
    Unusable { NoPhone = "no_phone", NoEmail = "no_email" }
);

impl Token {
    /// Why this token cannot be used by `owner` now, or `None` when it can give codes (in its
    /// state: a disabled or revoked token is unusable by its state, not by this).
    pub fn unusable(&self, owner: &User) -> Option<Unusable> {
        match self.kind {
            TokenKind::Sms if owner.phone.is_empty() || !owner.sms_enabled => {
                Some(Unusable::NoPhone)
            }
            TokenKind::Email if owner.email.is_empty() => Some(Unusable::NoEmail),
            _ => None,
        }
    }

    /// Active and able to give a code: a device the user can log in with.
    pub fn works_for(&self, owner: &User) -> bool {
        self.state == TokenState::Active && self.unusable(owner).is_none()
    }
}

impl TokenKind {
    /// Kinds whose codes come from a shared secret (as opposed to codes sent by e-mail or SMS).
    pub fn has_seed(self) -> bool {
        matches!(self, TokenKind::Totp | TokenKind::Hotp)
    }
}

/// A code sent by e-mail or SMS, waiting for its answer. Only hashes are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// SHA-256 of the transaction id given to the client.
    pub id_hash: String,
    pub user_id: UserId,
    pub token_id: TokenId,
    /// SHA-256 over the transaction id and the code.
    pub code_hash: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub attempts: i64,
    pub used: bool,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("id", &self.id)
            .field("serial", &self.serial)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("sealed_secret", &"(sealed)")
            .finish_non_exhaustive()
    }
}

/// What a new token starts with.
#[derive(Clone)]
pub struct NewToken {
    pub user_id: UserId,
    pub serial: Serial,
    pub kind: TokenKind,
    pub name: String,
    pub algorithm: tessera_otp::HashAlgorithm,
    pub digits: u32,
    pub period: u64,
    pub sealed_secret: Vec<u8>,
    pub state: TokenState,
    pub next_counter: i64,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("serial", &self.serial)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A VPN, remote desktop or web app that calls the validate API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Application {
    pub id: AppId,
    pub name: String,
    /// The first characters of the key, to recognise it; the key itself is stored only hashed.
    pub key_prefix: String,
    #[serde(skip)]
    pub key_hash: String,
    pub mode: AppMode,
    /// Users who never had a token and need none are let in without a code (with the password
    /// for `password_and_otp`; `otp_only` applications check the password themselves).
    pub passthrough: bool,
    pub state: AppState,
    pub created_at: UnixTime,
    pub revoked_at: Option<UnixTime>,
}

/// An admin API session. The bearer token is stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: UnixTime,
    pub last_seen_at: UnixTime,
    pub expires_at: UnixTime,
    /// Elevated rights for sensitive changes until this time (re-authentication).
    pub reauth_until: UnixTime,
}

/// A web page session (login, portal, admin area). The cookie value is stored only as a hash.
#[derive(Clone, PartialEq, Eq)]
pub struct WebSession {
    pub id_hash: String,
    pub user_id: UserId,
    pub created_at: UnixTime,
    pub last_seen_at: UnixTime,
    pub expires_at: UnixTime,
    /// Sensitive changes are allowed until this time (re-authentication).
    pub reauth_until: UnixTime,
    /// Every form of the session carries this value (CSRF protection).
    pub csrf_secret: String,
}

impl std::fmt::Debug for WebSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSession")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .field("reauth_until", &self.reauth_until)
            .finish_non_exhaustive()
    }
}

/// One event of the audit log, before it is chained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub at: UnixTime,
    /// Who acted: `user:NAME`, `app:NAME`, `cli:operator`, `anonymous`.
    pub actor: String,
    /// What happened, dotted: `token.add`, `user.set`, `validate`.
    pub action: String,
    /// What it happened to: `user:NAME`, `token:SERIAL`, `app:NAME`.
    pub target: String,
    /// The user the event concerns, to filter a user's trail (kept after the user is deleted).
    pub username: String,
    /// Source address of the request, or `cli`.
    pub source: String,
    /// `success` or `failure`.
    pub result: String,
    /// Why, in words for admins. Never a secret.
    pub reason: String,
}

/// A stored, chained audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// The entry's number: unique across chains, and in each chain rising in chain order.
    pub seq: i64,
    /// The hash chain the entry belongs to (see [`AuditHead`]); its hash covers its position
    /// there, not `seq`.
    #[serde(skip)]
    pub chain: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    pub prev_hash: String,
    pub hash: String,
}

/// Filters for listing the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub username: Option<String>,
    pub action: Option<String>,
    /// Entries whose action starts with one of these (none: any action).
    pub action_prefixes: Vec<String>,
    pub since: Option<UnixTime>,
    pub until: Option<UnixTime>,
    pub limit: i64,
    /// Entries with a sequence number below this (paging backwards from the newest).
    pub before_seq: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_the_stored_names() {
        fn check<T: Serialize + Copy>(all: &[T], text: impl Fn(&T) -> &'static str) {
            for v in all {
                assert_eq!(serde_json::to_value(v).unwrap(), text(v));
            }
        }
        check(UserState::ALL, UserState::as_str);
        check(Role::ALL, Role::as_str);
        check(Language::ALL, Language::as_str);
        check(TokenKind::ALL, TokenKind::as_str);
        check(TokenState::ALL, TokenState::as_str);
        check(AppMode::ALL, AppMode::as_str);
        check(AppState::ALL, AppState::as_str);
    }
}

/// The hash the chain starts from.
pub const AUDIT_GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A password or code as it arrives in a request: `Debug` never shows it, and it is wiped from
/// memory when dropped.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, format = Password)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Password {
        Password(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(redacted)")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// An enrollment invitation (SPEC F1). The link token itself is never stored: `id_hash` is its
/// SHA-256. The row also records the enrollment's progress, so every node can serve every step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id_hash: String,
    pub user_id: UserId,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    /// When the enrollment completed; the link works no more.
    pub used_at: Option<UnixTime>,
    /// A newer invitation for the same user replaced this one.
    pub superseded: bool,
    /// Wrong first codes typed on this invitation's pages.
    pub failed_attempts: i64,
    /// The pending token being enrolled, once the user started.
    pub token_id: Option<TokenId>,
}

/// A stored recovery code: only its keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryCode {
    pub user_id: UserId,
    pub code_hash: String,
    pub created_at: UnixTime,
    pub used_at: Option<UnixTime>,
}

/// A recovery in progress (SPEC F4): only hashes of its ticket and of the e-mailed code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryRequest {
    pub id_hash: String,
    pub user_id: UserId,
    pub code_hash: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub attempts: i64,
    pub used_at: Option<UnixTime>,
    /// The enrollment link the recovery led to, as its hash.
    pub invitation_hash: Option<String>,
    pub source: String,
}

/// A user's recovery policies: `None` follows the configuration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoveryPolicy {
    pub self_recovery: Option<bool>,
    pub revoke_on_recovery: Option<bool>,
    pub self_service_locked: bool,
}

/// A "this wasn't me" link of a security notification: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockLink {
    pub id_hash: String,
    pub user_id: UserId,
    /// The device the notified event added, revoked when the link is used.
    pub token_id: Option<TokenId>,
    /// What happened: `recovery`, `device.add`, `device.remove`, `reset`.
    pub event: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
}

/// A mailed account-reset link (SPEC F6): only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequest {
    pub id_hash: String,
    pub user_id: UserId,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub used_at: Option<UnixTime>,
}
