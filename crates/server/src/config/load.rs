//! Reading the layers: defaults, the TOML file, the environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Config;

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
        // Several hosts (`host1:port,host2:port`, for failover) are one URL each.
        if url.starts_with("postgres")
            && one_url_per_host(url)
                .iter()
                .any(|u| url::Url::parse(u).is_err())
        {
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
        self.radius.check().map_err(ConfigError::Invalid)?;
        let server = &self.server;
        if server.header_timeout_secs == 0
            || server.idle_timeout_secs == 0
            || server.request_timeout_secs == 0
            || server.max_connections == 0
        {
            return Err(ConfigError::Invalid(
                "server.header_timeout_secs, idle_timeout_secs, request_timeout_secs and \
                 max_connections must be at least 1"
                    .into(),
            ));
        }
        if self.auth.max_concurrent_password_hashes == 0 {
            return Err(ConfigError::Invalid(
                "auth.max_concurrent_password_hashes must be at least 1".into(),
            ));
        }
        if self.otp.issuer.contains(':') {
            return Err(ConfigError::Invalid(
                "otp.issuer must not contain ':' (apps read it as the end of the issuer)".into(),
            ));
        }
        if self.enroll.organisation.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "enroll.organisation must name the organisation (it is shown in mails, pages, \
                 SMS and authenticator apps)"
                    .into(),
            ));
        }
        if let Err(e) = crate::i18n::Zone::named(&self.server.time_zone) {
            return Err(ConfigError::Invalid(format!("server.time_zone: {e}")));
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

    /// The name authenticator apps show for Tessera's entries (the Key URI issuer): `otp.issuer`
    /// if set, else the organisation's name (a colon in it, which apps would read as the end of
    /// the issuer, becomes a space).
    pub fn issuer(&self) -> String {
        let explicit = self.otp.issuer.trim();
        if explicit.is_empty() {
            self.enroll.organisation.trim().replace(':', " ")
        } else {
            explicit.to_owned()
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
        Ok(_) => url.to_owned(),
        // Not one URL (several hosts, or malformed): the password goes all the same.
        Err(_) => match url.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('@') {
                Some((userinfo, tail)) if userinfo.contains(':') => {
                    let user = userinfo.split(':').next().unwrap_or("");
                    format!("{scheme}://{user}:redacted@{tail}")
                }
                _ => url.to_owned(),
            },
            None => url.to_owned(),
        },
    }
}

/// `scheme://userinfo@host1:port1,host2:port2/rest` as one URL per host (one for a plain URL).
pub fn one_url_per_host(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return vec![url.to_owned()];
    };
    let (authority, tail) = rest
        .find(['/', '?'])
        .map_or((rest, ""), |i| rest.split_at(i));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((user, hosts)) => (format!("{user}@"), hosts),
        None => (String::new(), authority),
    };
    hosts
        .split(',')
        .map(|host| format!("{scheme}://{userinfo}{host}{tail}"))
        .collect()
}

#[cfg(test)]
mod url_tests {
    #[test]
    fn a_multi_host_url_is_split_and_its_password_redacted() {
        let url = "postgres://tessera:s3cret@db1:5432,db2:5433/tessera?sslmode=require";
        assert_eq!(
            super::one_url_per_host(url),
            [
                "postgres://tessera:s3cret@db1:5432/tessera?sslmode=require",
                "postgres://tessera:s3cret@db2:5433/tessera?sslmode=require"
            ]
        );
        let shown = super::redact_url(url);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(
            shown,
            "postgres://tessera:redacted@db1:5432,db2:5433/tessera?sslmode=require"
        );
        assert!(!super::redact_url("postgres://u:pw@db/x").contains("pw@"));
    }
}
