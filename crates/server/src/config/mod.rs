//! Configuration: defaults, then an optional TOML file, then `TESSERA_<SECTION>__<KEY>` environment
//! variables (a value may instead be read from a file named by `..._FILE`).
//!
//! Unknown keys in the file or the environment stop start-up with a message naming the key, so a
//! typo never silently falls back to a default. This module reads files and the environment only;
//! it opens no database and creates nothing.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::model::Language;

mod radius;
pub use radius::{RadiusConfig, ReplyRule};
use serde::{Deserialize, Serialize};

/// The whole configuration. Every field has a default, so an empty file is valid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory for the SQLite database, the key file and the mail outbox.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub keys: KeysConfig,
    pub auth: AuthConfig,
    pub otp: OtpConfig,
    pub validate: ValidateConfig,
    pub mail: MailConfig,
    pub sms: SmsConfig,
    pub enroll: EnrollConfig,
    pub recovery: RecoveryConfig,
    pub metrics: MetricsConfig,
    pub radius: RadiusConfig,
    pub inventory: InventoryConfig,
    pub authenticator: AuthenticatorConfig,
}

/// Prometheus metrics on a listener of their own (docs/operations.md, "Metrics").
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `GET /metrics` is served, e.g. "127.0.0.1:9464"; empty (the default): nowhere.
    /// Apart from `server.listen`, so that the metrics need not be reachable by the users.
    pub listen: String,
}

impl MetricsConfig {
    /// The metrics listener's address; `None` when off.
    pub fn address(&self) -> Result<Option<SocketAddr>, String> {
        let listen = self.listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        listen.parse().map(Some).map_err(|_| {
            format!("metrics.listen: {listen:?} is not an address like \"127.0.0.1:9464\"")
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Log format: "human" or "json".
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// A request taking longer than this is answered with 503 (reading the body included).
    pub request_timeout_secs: u64,
    /// Seconds between SIGTERM and closing the listener: `/readyz` answers 503 meanwhile while
    /// requests are still served, so that a load balancer takes the node out first.
    pub drain_secs: u64,
    /// Seconds a connection may take to send a request's line and headers, counted from the
    /// connection's start or the end of the previous response (so it also closes kept-alive
    /// connections that send nothing more).
    pub header_timeout_secs: u64,
    /// A connection on which no byte moved either way for this many seconds is closed (e.g. a
    /// client that stopped reading its response).
    pub idle_timeout_secs: u64,
    /// Open HTTP connections at most; more are answered with 503 and closed. Lowered at start to
    /// stay below the process's open-file limit.
    pub max_connections: usize,
    /// The URL people reach this server at, for links in e-mails (`https://otp.example.org`).
    /// Empty: `http://<listen>`.
    pub public_url: String,
    /// Language of new users (web, API, CLI) when none is given, and of pages for visitors whose
    /// browser asks for neither German nor English: "en" or "de".
    pub default_language: Language,
    /// Time zone of times on pages and in mails, an IANA name such as "Europe/Berlin". Empty:
    /// the system's (the `TZ` environment variable, else `/etc/localtime`).
    pub time_zone: String,
}

impl ServerConfig {
    /// The zone of `time_zone` (checked at start; UTC should it fail later).
    pub fn zone(&self) -> crate::i18n::Zone {
        crate::i18n::Zone::named(&self.time_zone).unwrap_or_else(|_| crate::i18n::Zone::utc())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Empty: SQLite at `<data_dir>/tessera.db`. Otherwise `sqlite://PATH` or `postgres://...`.
    pub url: String,
    /// Connections in the pool.
    pub max_connections: u32,
    /// SQLite durability: "normal" (survives a killed process; a power loss may lose the last
    /// commits) or "full" (fsync on every commit).
    pub sqlite_synchronous: SqliteSynchronous,
}

impl std::fmt::Debug for DatabaseConfig {
    // The URL may carry a password: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    Normal,
    Full,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// File holding the encryption keys for secrets at rest. Empty: `<data_dir>/tessera.key`.
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Minutes of elevated rights after an admin re-enters the password.
    pub reauth_minutes: u64,
    /// Hours an admin API session lives without use.
    pub session_idle_minutes: u64,
    /// Hours an admin API session lives at most.
    pub session_absolute_hours: u64,
    /// Password hashes computed at the same time (each Argon2id hash takes ~19 MiB).
    pub max_concurrent_password_hashes: usize,
    /// Shortest password accepted.
    pub min_password_length: usize,
    /// Admins must use a second factor: one without a token is led into enrollment at the web
    /// login and gets no API session on the password alone.
    pub admin_second_factor: bool,
    /// Failed logins per source address and hour, by someone who did not know the password
    /// (wrong password and no valid code, or an unknown user), after which that address is
    /// refused for the rest of the hour. Never counted against the account or its tokens. Per
    /// node; 0: no limit.
    pub source_failures_per_hour: u64,
    /// The same, for one account from one source address: that address is refused for that
    /// account; the owner elsewhere is not affected. Per node; 0: no limit.
    pub account_source_failures_per_hour: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OtpConfig {
    /// Name shown in authenticator apps (the Key URI issuer). Empty (the default): the
    /// organisation's name (`enroll.organisation`), so one setting names you everywhere.
    pub issuer: String,
    /// TOTP steps accepted before the current one.
    pub totp_window_back: u64,
    /// TOTP steps accepted after the current one.
    pub totp_window_forward: u64,
    /// HOTP counters checked ahead of the stored one.
    pub hotp_look_ahead: u64,
    /// TOTP steps (each way) searched when resynchronising a drifted token.
    pub totp_resync_window: u64,
    /// HOTP counters searched when resynchronising a token far ahead.
    pub hotp_resync_window: u64,
    /// Longest delay, in seconds, between attempts after consecutive failed codes.
    pub throttle_max_secs: u64,
    /// Consecutive failed codes after which a token is locked.
    pub lockout_failures: u64,
    /// Minutes a locked token stays locked unless an admin unlocks it earlier.
    pub lockout_minutes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ValidateConfig {
    /// Resynchronise automatically when a code outside the window is followed by the next one.
    pub auto_resync: bool,
    /// Consecutive wrong passwords (with any code) after which an account waits.
    pub account_lockout_failures: u64,
    /// Requests per minute accepted from one source address (0: no limit).
    pub source_requests_per_minute: u64,
    /// Seconds an e-mail or SMS challenge code stays valid.
    pub challenge_ttl_secs: u64,
    /// Wrong answers after which a challenge is void.
    pub challenge_max_attempts: u64,
    /// Challenge codes sent to one user per hour, at most.
    pub challenge_max_per_hour: u64,
    /// Digits of an e-mail or SMS challenge code.
    pub challenge_digits: u32,
    /// Password checks (Argon2id) running at the same time for validation; OTP-only requests
    /// never wait for these, so password traffic cannot starve them.
    pub max_concurrent_password_checks: usize,
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// Sender address of every e-mail.
    pub from: String,
    /// SMTP server host. Empty: mails are written to `<data_dir>/outbox/` as `.eml` files.
    pub smtp_host: String,
    /// SMTP port (587 for STARTTLS, 465 for TLS, 25 plain).
    pub smtp_port: u16,
    /// "starttls", "tls" or "none" (only for a server on the same host or a test sink).
    pub smtp_security: SmtpSecurity,
    /// SMTP user name; empty: no authentication.
    pub smtp_username: String,
    /// SMTP password (better: `TESSERA_MAIL__SMTP_PASSWORD_FILE`).
    pub smtp_password: String,
    /// Seconds to wait for the SMTP server.
    pub smtp_timeout_secs: u64,
}

impl std::fmt::Debug for MailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailConfig")
            .field("from", &self.from)
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_security", &self.smtp_security)
            .field("smtp_username", &self.smtp_username)
            .field("smtp_password", &"(redacted)")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    None,
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// HTTP gateway URL. Empty: messages are written to `<data_dir>/outbox/` as `.sms` files.
    pub gateway_url: String,
    /// HTTP method for the gateway: "POST", "PUT" or "GET".
    pub method: String,
    /// Extra headers, "Name: value" each (e.g. an API key).
    pub headers: Vec<String>,
    /// Request body with `{phone}` and `{message}` replaced (JSON-escaped when the content type is
    /// JSON). For GET, the placeholders may stand in `gateway_url` (URL-encoded).
    pub body_template: String,
    /// Content type of the body.
    pub content_type: String,
    /// Seconds to wait for the gateway.
    pub timeout_secs: u64,
}

impl std::fmt::Debug for SmsConfig {
    // Headers usually carry the gateway's credentials, and a GET gateway's URL its key: print
    // the URL's origin only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let gateway = match url::Url::parse(&self.gateway_url) {
            Ok(u) => u.origin().ascii_serialization(),
            Err(_) if self.gateway_url.is_empty() => String::new(),
            Err(_) => "(redacted)".to_owned(),
        };
        f.debug_struct("SmsConfig")
            .field("gateway_url", &gateway)
            .field("method", &self.method)
            .field("headers", &format!("({} redacted)", self.headers.len()))
            .finish_non_exhaustive()
    }
}

impl Default for ValidateConfig {
    fn default() -> Self {
        Self {
            auto_resync: true,
            account_lockout_failures: 10,
            source_requests_per_minute: 0,
            challenge_ttl_secs: 300,
            challenge_max_attempts: 3,
            challenge_max_per_hour: 10,
            challenge_digits: 6,
            max_concurrent_password_checks: 1,
        }
    }
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: "Tessera <tessera@localhost>".to_owned(),
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: String::new(),
            smtp_password: String::new(),
            smtp_timeout_secs: 20,
        }
    }
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            gateway_url: String::new(),
            method: "POST".to_owned(),
            headers: Vec::new(),
            body_template: r#"{"to": "{phone}", "text": "{message}"}"#.to_owned(),
            content_type: "application/json".to_owned(),
            timeout_secs: 10,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./tessera-data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            keys: KeysConfig::default(),
            auth: AuthConfig::default(),
            otp: OtpConfig::default(),
            validate: ValidateConfig::default(),
            mail: MailConfig::default(),
            sms: SmsConfig::default(),
            enroll: EnrollConfig::default(),
            recovery: RecoveryConfig::default(),
            metrics: MetricsConfig::default(),
            radius: RadiusConfig::default(),
            inventory: InventoryConfig::default(),
            authenticator: AuthenticatorConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log_format: LogFormat::Human,
            max_body_bytes: 64 * 1024,
            request_timeout_secs: 30,
            drain_secs: 2,
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 4096,
            public_url: String::new(),
            default_language: Language::En,
            time_zone: String::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 8,
            sqlite_synchronous: SqliteSynchronous::Normal,
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            key_file: PathBuf::new(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            reauth_minutes: 5,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            max_concurrent_password_hashes: 2,
            min_password_length: 10,
            admin_second_factor: true,
            source_failures_per_hour: 100,
            account_source_failures_per_hour: 20,
        }
    }
}

impl Default for OtpConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            totp_window_back: 1,
            totp_window_forward: 1,
            hotp_look_ahead: 10,
            totp_resync_window: 60,
            hotp_resync_window: 1000,
            throttle_max_secs: 900,
            lockout_failures: 10,
            lockout_minutes: 60,
        }
    }
}

/// Self-enrollment by e-mail (SPEC F1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EnrollConfig {
    /// Hours an enrollment link stays valid.
    pub link_ttl_hours: u64,
    /// Wrong first codes after which an enrollment link is void.
    pub max_failed_codes: u64,
    /// Switching `otp_required` on for a user without an active token sends an invitation.
    pub auto_invite_on_otp_required: bool,
    /// Users without an explicit setting get recovery codes at enrollment.
    pub recovery_codes_for_new_users: bool,
    /// The organisation named in invitations and on the enrollment pages.
    pub organisation: String,
}

impl Default for EnrollConfig {
    fn default() -> Self {
        Self {
            link_ttl_hours: 72,
            max_failed_codes: 5,
            auto_invite_on_otp_required: true,
            recovery_codes_for_new_users: true,
            organisation: "Tessera".to_owned(),
        }
    }
}

/// Hardware tokens in stock and their seed files (imports, exports).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InventoryConfig {
    /// `tessera inventory export` writes the seeds of tokens in stock (encrypted PSKC only). Off
    /// by default: a seed that leaves the server can make codes anywhere.
    pub allow_seed_export: bool,
    /// PBKDF2-HMAC-SHA256 iterations of a password-encrypted export.
    pub export_iterations: u32,
}

impl Default for InventoryConfig {
    fn default() -> Self {
        Self {
            allow_seed_export: false,
            export_iterations: 600_000,
        }
    }
}

/// What the server keeps for `tessera-auth`, the end-user authenticator (SPEC F9).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthenticatorConfig {
    /// Largest end-to-end encrypted vault backup accepted (`PUT /api/v1/me/backup`), in bytes.
    pub backup_max_bytes: usize,
}

impl Default for AuthenticatorConfig {
    fn default() -> Self {
        Self {
            backup_max_bytes: 1024 * 1024,
        }
    }
}

/// Self-service recovery with a recovery code and an e-mailed code (SPEC F4).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    /// Users without an explicit setting may recover themselves on `/recover`.
    pub self_service: bool,
    /// Users without an explicit setting lose all their old devices when the device enrolled
    /// after a recovery is activated.
    pub revoke_old_devices: bool,
    /// Minutes the e-mailed recovery code stays valid.
    pub code_ttl_minutes: u64,
    /// Wrong e-mailed codes after which the recovery is void.
    pub max_attempts: u64,
    /// Recoveries started (with a right recovery code) and reset mails sent, per account and
    /// hour. Wrong recovery codes are not counted here: they count against the source address
    /// (`auth.source_failures_per_hour`, `auth.account_source_failures_per_hour`), so a
    /// stranger cannot block the owner's recovery.
    pub max_per_account_per_hour: u64,
    /// Recovery attempts per source address and minute (per node).
    pub max_per_source_per_minute: u64,
    /// Minutes a mailed account-reset link stays valid (SPEC F6).
    pub reset_link_ttl_minutes: u64,
    /// Users may reset their own account by e-mail (`/reset`, SPEC F6). Even when on, a reset
    /// follows the user's self-recovery policy and the self-service lock.
    pub self_reset: bool,
    /// How recovery codes an admin re-issues reach the user: "show" (shown once to the admin,
    /// who passes them on by phone, post or in person) or "email" (low-security setups only).
    pub admin_delivery: AdminDelivery,
}

/// How re-issued recovery codes are delivered.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AdminDelivery {
    Show,
    Email,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            self_service: true,
            revoke_old_devices: false,
            code_ttl_minutes: 15,
            max_attempts: 5,
            max_per_account_per_hour: 5,
            max_per_source_per_minute: 10,
            reset_link_ttl_minutes: 30,
            self_reset: true,
            admin_delivery: AdminDelivery::Show,
        }
    }
}

mod load;

pub use load::{ConfigError, one_url_per_host, redact_url};

#[cfg(test)]
mod tests;
