//! Configuration: defaults, then an optional TOML file, then `TESSERA_<SECTION>__<KEY>` environment
//! variables (a value may instead be read from a file named by `..._FILE`).
//!
//! Unknown keys in the file or the environment stop start-up with a message naming the key, so a
//! typo never silently falls back to a default. This module reads files and the environment only;
//! it opens no database and creates nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    /// A request taking longer than this is answered with 503.
    pub request_timeout_secs: u64,
    /// The URL people reach this server at, for links in e-mails (`https://otp.example.org`).
    /// Empty: `http://<listen>`.
    pub public_url: String,
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct OtpConfig {
    /// Name shown in authenticator apps (the Key URI issuer).
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
            public_url: String::new(),
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
        }
    }
}

impl Default for OtpConfig {
    fn default() -> Self {
        Self {
            issuer: "Tessera".to_owned(),
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
    /// Recovery attempts (right or wrong) per account and hour.
    pub max_per_account_per_hour: u64,
    /// Recovery attempts per source address and minute (per node).
    pub max_per_source_per_minute: u64,
    /// Minutes a mailed account-reset link stays valid (SPEC F6).
    pub reset_link_ttl_minutes: u64,
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
            admin_delivery: AdminDelivery::Show,
        }
    }
}

/// Why the configuration could not be loaded. Every message names the file, key or variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Environment variables that belong to Tessera but are not config keys.
const NON_KEY_VARS: &[&str] = &["TESSERA_DATA_DIR", "TESSERA_CONFIG", "TESSERA_LOG"];

impl Config {
    /// Loads defaults, then `file` (if any), then the given environment.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
                        path: path.to_owned(),
                        source,
                    })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Syntax {
                        path: path.to_owned(),
                        message: e.message().to_owned(),
                    })?
            }
            None => toml::Table::new(),
        };
        let defaults = toml::Table::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let env: BTreeMap<String, String> = env.into_iter().collect();
        for (var, value) in &env {
            apply_env(&mut table, &defaults, var, value)?;
        }
        let config: Config =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    let where_ = file
                        .map(|p| format!(" (in {})", p.display()))
                        .unwrap_or_default();
                    ConfigError::Invalid(format!("{}{where_}", e.message()))
                })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let url = self.database.url.trim();
        let known_scheme = url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://");
        if !url.is_empty() && !known_scheme {
            return Err(ConfigError::Invalid(format!(
                "database.url must start with sqlite:, postgres:// or postgresql://, got {:?}",
                redact_url(url)
            )));
        }
        if url.starts_with("postgres") && url::Url::parse(url).is_err() {
            return Err(ConfigError::Invalid(format!(
                "database.url is not a valid URL: {:?}",
                redact_url(url)
            )));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "database.max_connections must be at least 1".into(),
            ));
        }
        if self.auth.max_concurrent_password_hashes == 0 {
            return Err(ConfigError::Invalid(
                "auth.max_concurrent_password_hashes must be at least 1".into(),
            ));
        }
        if self.otp.issuer.trim().is_empty() || self.otp.issuer.contains(':') {
            return Err(ConfigError::Invalid(
                "otp.issuer must be non-empty and must not contain ':'".into(),
            ));
        }
        let public_url = self.server.public_url.trim();
        if !public_url.is_empty()
            && !url::Url::parse(public_url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        {
            return Err(ConfigError::Invalid(format!(
                "server.public_url must be an http:// or https:// URL, got {public_url:?}"
            )));
        }
        if self.enroll.link_ttl_hours == 0 || self.enroll.max_failed_codes == 0 {
            return Err(ConfigError::Invalid(
                "enroll.link_ttl_hours and enroll.max_failed_codes must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The base URL for links in e-mails, without a trailing slash.
    pub fn public_base_url(&self) -> String {
        let url = self.server.public_url.trim().trim_end_matches('/');
        if url.is_empty() {
            format!("http://{}", self.server.listen)
        } else {
            url.to_owned()
        }
    }

    /// Where the key file lives.
    pub fn key_file(&self) -> PathBuf {
        if self.keys.key_file.as_os_str().is_empty() {
            self.data_dir.join("tessera.key")
        } else {
            self.keys.key_file.clone()
        }
    }

    /// The database URL, with the SQLite default filled in.
    pub fn database_url(&self) -> String {
        let url = self.database.url.trim();
        if url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("tessera.db").display())
        } else {
            url.to_owned()
        }
    }
}

/// Applies one `TESSERA_SECTION__KEY[_FILE]` variable to the table. Variables without `__` are not
/// config keys; unknown Tessera variables are refused so that a typo is noticed.
fn apply_env(
    table: &mut toml::Table,
    defaults: &toml::Table,
    var: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let Some(rest) = var.strip_prefix("TESSERA_") else {
        return Ok(());
    };
    if NON_KEY_VARS.contains(&var) || rest.starts_with("TEST_") || !rest.contains("__") {
        return Ok(());
    }
    let env_err = |message: String| ConfigError::Env {
        var: var.to_owned(),
        message,
    };
    let (path, value) = match rest.strip_suffix("_FILE") {
        Some(base) if lookup(defaults, &key_path(base)).is_some() => {
            let text = std::fs::read_to_string(value)
                .map_err(|e| env_err(format!("cannot read {value}: {e}")))?;
            (
                key_path(base),
                text.trim_end_matches(['\r', '\n']).to_owned(),
            )
        }
        _ => (key_path(rest), value.to_owned()),
    };
    let Some(default) = lookup(defaults, &path) else {
        return Err(env_err(format!(
            "unknown configuration key {}",
            path.join(".")
        )));
    };
    // Type the string by the default's type, so "8" stays a string where a string is expected.
    let typed = match default {
        toml::Value::Integer(_) => value
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| env_err(format!("expected an integer, got {value:?}")))?,
        toml::Value::Boolean(_) => match value.trim() {
            "true" | "1" | "yes" => toml::Value::Boolean(true),
            "false" | "0" | "no" => toml::Value::Boolean(false),
            _ => return Err(env_err(format!("expected true or false, got {value:?}"))),
        },
        // Lists are written as TOML arrays: TESSERA_SMS__HEADERS='["X-Key: abc"]'.
        toml::Value::Array(_) => format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(toml::Value::is_array)
            .ok_or_else(|| {
                env_err(format!(
                    "expected a TOML array like [\"a\", \"b\"], got {value:?}"
                ))
            })?,
        _ => toml::Value::String(value),
    };
    let (last, parents) = path
        .split_last()
        .ok_or_else(|| env_err("empty key".into()))?;
    let mut node = table;
    for part in parents {
        let entry = node
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry
            .as_table_mut()
            .ok_or_else(|| env_err(format!("{part} is not a section")))?;
    }
    node.insert(last.clone(), typed);
    Ok(())
}

fn key_path(rest: &str) -> Vec<String> {
    rest.split("__").map(|p| p.to_ascii_lowercase()).collect()
}

fn lookup<'a>(table: &'a toml::Table, path: &[String]) -> Option<&'a toml::Value> {
    let (first, rest) = path.split_first()?;
    let value = table.get(first)?;
    if rest.is_empty() {
        Some(value)
    } else {
        lookup(value.as_table()?, rest)
    }
}

/// Hides the password part of a database URL.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn paths(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in table {
            let p = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => paths(&p, t, out),
                _ => out.push(p),
            }
        }
    }

    #[test]
    fn example_config_parses_and_covers_every_field() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config.example.toml");
        Config::load(Some(&example), Vec::new()).expect("example parses");
        let text = std::fs::read_to_string(&example).unwrap();
        let mut documented = Vec::new();
        paths("", &text.parse::<toml::Table>().unwrap(), &mut documented);
        let mut fields = Vec::new();
        paths(
            "",
            &toml::Table::try_from(Config::default()).unwrap(),
            &mut fields,
        );
        let missing: Vec<_> = fields.iter().filter(|f| !documented.contains(f)).collect();
        assert!(missing.is_empty(), "undocumented keys: {missing:?}");
    }

    #[test]
    fn env_overrides_file_and_defaults() {
        let c = Config::load(
            None,
            env(&[
                ("TESSERA_SERVER__LISTEN", "0.0.0.0:9000"),
                ("TESSERA_AUTH__REAUTH_MINUTES", "7"),
                ("TESSERA_OTP__ISSUER", "123"),
                ("PATH", "/bin"),
                ("TESSERA_TEST_POSTGRES_URL", "postgres://x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.auth.reauth_minutes, 7);
        assert_eq!(c.otp.issuer, "123");
    }

    #[test]
    fn unknown_env_key_is_refused_by_name() {
        let err = Config::load(None, env(&[("TESSERA_SERVER__LISTN", "x")])).unwrap_err();
        assert!(err.to_string().contains("server.listn"), "{err}");
    }

    #[test]
    fn unknown_file_key_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[server]\nlisen = \"1.2.3.4:5\"\n").unwrap();
        let err = Config::load(Some(&f), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
    }

    #[test]
    fn malformed_database_url_is_refused() {
        let err = Config::load(None, env(&[("TESSERA_DATABASE__URL", "mysql://x")])).unwrap_err();
        assert!(err.to_string().contains("database.url"), "{err}");
    }

    #[test]
    fn secret_from_file_variable() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("url");
        std::fs::write(&f, "postgres://u:pw@localhost/db\n").unwrap();
        let c = Config::load(
            None,
            env(&[("TESSERA_DATABASE__URL_FILE", f.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(c.database.url, "postgres://u:pw@localhost/db");
        assert!(!format!("{:?}", c.database).contains("pw@"));
    }

    #[test]
    fn list_values_from_env_are_toml_arrays() {
        let c = Config::load(
            None,
            env(&[("TESSERA_SMS__HEADERS", r#"["X-Key: a", "X-B: b"]"#)]),
        )
        .unwrap();
        assert_eq!(c.sms.headers, vec!["X-Key: a", "X-B: b"]);
        assert!(Config::load(None, env(&[("TESSERA_SMS__HEADERS", "X-Key: a")])).is_err());
    }

    #[test]
    fn sms_debug_hides_gateway_key_and_headers() {
        let sms = SmsConfig {
            gateway_url: "https://gw.example.net/send?key=k3y&to={phone}".into(),
            headers: vec!["X-Key: h3ader".into()],
            ..SmsConfig::default()
        };
        let printed = format!("{sms:?}");
        assert!(printed.contains("https://gw.example.net"), "{printed}");
        assert!(
            !printed.contains("k3y") && !printed.contains("h3ader"),
            "{printed}"
        );
    }

    #[test]
    fn wrong_type_names_the_variable() {
        let err = Config::load(None, env(&[("TESSERA_AUTH__REAUTH_MINUTES", "soon")])).unwrap_err();
        assert!(
            err.to_string().contains("TESSERA_AUTH__REAUTH_MINUTES"),
            "{err}"
        );
    }
}
