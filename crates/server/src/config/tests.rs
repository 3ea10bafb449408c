use super::*;
use std::path::Path;

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

#[test]
fn time_zone_is_checked_at_start() {
    let c = Config::load(None, env(&[("TESSERA_SERVER__TIME_ZONE", "Europe/Berlin")])).unwrap();
    assert_eq!(c.server.zone().name(), "Europe/Berlin");
    let err = Config::load(
        None,
        env(&[("TESSERA_SERVER__TIME_ZONE", "Europe/Berlinn")]),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("server.time_zone"), "{text}");
    assert!(text.contains("Europe/Berlinn"), "{text}");
    assert!(text.contains("IANA"), "{text}");
    // Empty: the system's zone, always valid.
    Config::load(None, env(&[("TESSERA_SERVER__TIME_ZONE", "")])).unwrap();
}
