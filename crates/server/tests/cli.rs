//! The admin command line as an operator runs it: the real `tessera` binary on a fresh data
//! directory. Codes come from independent implementations (`oathtool`, totp-rs), never from our
//! own engine. The audit log and the database dump are checked in `cli_audit.rs`.
//!
//! The binary runs on the real system clock, so TOTP codes are computed right before use.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod cli_support;
mod common;

use cli_support::*;
use common::{run_cli, run_cli_env, stderr, stdout};
use tessera_otp::KeyUri;

/// Adds alice and a TOTP token, activates it with `code_of`'s code, and checks state and audit.
fn enroll_with(code_of: fn(&KeyUri) -> String) {
    let t = Tessera::new();
    t.add_user("alice");
    let (id, uri) = t.add_token("alice", &[]);
    // Computed right before use: the binary checks it against the real clock.
    let code = code_of(&uri);
    let token = t.json(&["token", "verify", &id, &code]);
    assert_eq!(token["state"], "active");
    assert_eq!(t.json(&["token", "show", &id])["state"], "active");

    let trail = t.json(&["audit", "list", "--user", "alice"]);
    let trail = actions(&trail);
    for action in ["user.add", "token.add", "token.activate"] {
        assert!(trail.contains(&action), "{action} missing from {trail:?}");
    }
    let activation = t.json(&["audit", "list", "--action", "token.activate"]);
    assert_eq!(activation[0]["result"], "success");
    assert_eq!(activation[0]["actor"], "cli:operator");
}

#[test]
fn enroll_totp_with_oathtool_code() {
    enroll_with(oathtool_totp);
}

#[test]
fn enroll_totp_with_totp_rs_code() {
    enroll_with(totp_rs_code);
}

#[test]
fn token_add_shows_uri_key_and_qr_once() {
    let t = Tessera::new();
    t.add_user("alice");
    let png = t.dir.path().join("token.png");
    let text = t.ok(&["token", "add", "alice", "--qr-png", png.to_str().unwrap()]);
    let uri_line = text.lines().find(|l| l.starts_with("Key URI")).unwrap();
    let uri = KeyUri::parse(uri_line.trim_start_matches("Key URI").trim()).unwrap();
    let key_line = text
        .lines()
        .find(|l| l.starts_with("Key ") && !l.starts_with("Key URI"))
        .unwrap();
    let grouped = key_line.trim_start_matches("Key").trim();
    assert_eq!(grouped.replace(' ', ""), uri.secret.to_base32());
    assert!(grouped.split(' ').all(|g| g.len() <= 4));
    assert!(text.contains('█'), "no terminal QR code in:\n{text}");

    let image = std::fs::read(&png).unwrap();
    assert!(image.starts_with(b"\x89PNG"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&png).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the PNG holds the key");
    }
    // Never overwritten, and nothing is added when the file cannot be created.
    let again = t.run(
        &["token", "add", "alice", "--qr-png", png.to_str().unwrap()],
        None,
    );
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(t.count(&["token", "list", "alice"]), 1);

    // Shown once: no later output repeats the key.
    let secret = uri.secret.to_base32();
    for args in [
        &["token", "list"][..],
        &["token", "show", "1"],
        &["user", "show", "alice"],
        &["audit", "list"],
    ] {
        assert!(!t.ok(args).contains(&secret), "{args:?} shows the key");
    }
}

#[test]
fn token_verify_refuses_an_already_active_token() {
    let t = Tessera::new();
    t.add_user("alice");
    let (id, uri) = t.add_token("alice", &[]);
    let code = oathtool_totp(&uri);
    t.ok(&["token", "verify", &id, &code]);
    t.fails(&["token", "verify", &id, &code], None, "token_state");
    assert_eq!(t.json(&["token", "show", &id])["state"], "active");
}

#[test]
fn token_verify_refuses_a_wrong_code() {
    let t = Tessera::new();
    t.add_user("alice");
    let (id, uri) = t.add_token("alice", &[]);
    let right = oathtool_totp(&uri);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    t.fails(&["token", "verify", &id, &wrong], None, "invalid_code");
    assert_eq!(t.json(&["token", "show", &id])["state"], "pending");
    let failed = t.json(&["audit", "list", "--action", "token.activate"]);
    assert_eq!(failed[0]["result"], "failure");
}

#[test]
fn bad_input_is_a_clear_error_and_changes_nothing() {
    let t = Tessera::new();
    t.add_user("alice");
    let (id, _) = t.add_token("alice", &[]);
    let before = t.ok(&["--json", "audit", "list"]);

    let verify_bad_code = format!("token verify {id} 12ab56");
    let cases = [
        ("user show nobody", "not_found"),
        ("token add nobody", "not_found"),
        ("user delete nobody", "not_found"),
        ("user add ALICE", "conflict"),
        ("user add bad/name", "invalid_input"),
        ("user set alice --email no-at", "invalid_input"),
        ("token add alice --digits 9", "invalid_input"),
        ("token add alice --period 0", "invalid_input"),
        ("token add alice --algorithm MD5", "invalid_input"),
        (&verify_bad_code, "invalid_input"),
        ("token verify 9999 123456", "not_found"),
        ("token show 9999", "not_found"),
        ("token delete 9999", "not_found"),
        ("audit list --since yesterday", "invalid_input"),
        ("app revoke 9999", "not_found"),
    ];
    for (command, code) in cases {
        let args: Vec<&str> = command.split_whitespace().collect();
        t.fails(&args, None, code);
    }
    let short = Some("short\n");
    t.fails(&["user", "passwd", "alice"], short, "invalid_input");
    t.fails(&["user", "passwd", "alice"], Some(""), "invalid_input");
    t.fails(
        &["user", "add", "bob", "--password-stdin"],
        short,
        "invalid_input",
    );
    let err = t.fails(&["audit", "list", "--until", "soon"], None, "invalid_input");
    assert!(err.contains("--until"), "{err}");

    // Nothing was written by any of them.
    assert_eq!(t.ok(&["--json", "audit", "list"]), before);
    assert_eq!(t.json(&["user", "list"])["total"], 1);
    assert_eq!(t.count(&["token", "list"]), 1);
}

#[test]
fn usage_errors_exit_with_2() {
    let t = Tessera::new();
    for args in [
        &["token", "show", "abc"][..],
        &["user", "set", "alice"],
        &["user", "set", "alice", "--otp-required", "maybe"],
        &["user", "add", "bob", "--password", "secret"],
        &["user", "add", "bob", "--language", "fr"],
        &["user", "frobnicate"],
        &["app", "add", "vpn", "--mode", "sometimes"],
        &["app", "add", "vpn", "--passthrough", "maybe"],
        &["audit", "list", "--limit", "0"],
        &["recovery", "history", "alice", "--limit", "0"],
        &["token", "add"],
        &["enroll", "send"],
        &[],
    ] {
        let out = t.run(args, None);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
    // A configuration that cannot be used is a usage error too.
    let env = [("TESSERA_SERVER__LISTEN", "nonsense")];
    let out = run_cli_env(&t.data_dir(), &["user", "list"], None, &env);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    // Nothing was opened: no key file, no database.
    assert_eq!(std::fs::read_dir(t.data_dir()).unwrap().count(), 0);
}

#[test]
fn service_errors_exit_with_1_and_one_line_naming_the_code() {
    let t = Tessera::new();
    t.add_user("alice");
    for (command, code) in [
        ("user show nobody", "not_found"),
        ("user add ALICE", "conflict"),
        ("token add alice --digits 9", "invalid_input"),
        ("enroll recovery nobody yes", "not_found"),
    ] {
        let args: Vec<&str> = command.split_whitespace().collect();
        let err = t.fails(&args, None, code);
        assert_eq!(err.lines().count(), 1, "{command}: {err}");
        assert!(
            err.starts_with(&format!("error ({code}): ")),
            "{command}: {err}"
        );
    }
    // A login the validation refuses: exit 1, the answer on stdout.
    let out = t.run(&["validate", "alice", "--otp", "123456"], None);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("reject"), "{}", stdout(&out));
}

#[test]
fn token_resync_moves_a_hotp_counter_far_ahead() {
    let t = Tessera::new();
    t.ok_with(
        &["user", "add", "bob", "--admin", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    let (id, uri) = t.add_token("bob", &["--kind", "hotp"]);
    t.ok(&["token", "verify", &id, &oathtool_hotp(&uri, 0)]);
    // Pressed far ahead: 50 is beyond the normal look-ahead, so only a resync finds it.
    let (c50, c51) = (oathtool_hotp(&uri, 50), oathtool_hotp(&uri, 51));
    let resynced = t.json(&["token", "resync", &id, &c50, &c51]);
    assert_eq!(resynced["state"], "active");
    // The same two codes are used up.
    t.fails(&["token", "resync", &id, &c50, &c51], None, "invalid_code");

    // Code 52 now logs in, through the same service the HTTP API uses.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = tessera_server::Config {
            data_dir: t.data_dir(),
            ..tessera_server::Config::default()
        };
        let clock = std::sync::Arc::new(tessera_server::clock::SystemClock);
        let (app, _) = tessera_server::build(config, clock).await.unwrap();
        let code = oathtool_hotp(&uri, 52);
        let login = app
            .service
            .login("127.0.0.1", "bob", PASSWORD, Some(&code))
            .await;
        assert!(login.is_ok(), "code 52 refused: {login:?}");
        let replay = app
            .service
            .login("127.0.0.1", "bob", PASSWORD, Some(&code))
            .await;
        assert!(replay.is_err(), "code 52 accepted twice");
    });
    let trail = t.json(&["audit", "list", "--action", "token.resync"]);
    assert_eq!(trail[0]["result"], "failure");
    assert_eq!(trail[1]["result"], "success");
    assert!(trail[1]["reason"].as_str().unwrap().contains("52"));
}

#[test]
fn user_lifecycle() {
    let t = Tessera::new();
    t.add_user("alice");
    let phone = "+49 30 1234567";
    let args = [
        "--phone",
        phone,
        "--otp-required",
        "true",
        "--language",
        "de",
    ];
    let user = t.json(&[&["user", "set", "alice"][..], &args].concat());
    assert_eq!(user["otp_required"], true);
    assert_eq!(user["language"], "de");
    let user = t.json(&["user", "set", "ALICE", "--phone", ""]);
    assert_eq!(user["phone"], "");
    assert_eq!(user["sms_enabled"], false);
    assert_eq!(t.json(&["user", "disable", "alice"])["state"], "disabled");
    assert_eq!(t.json(&["user", "enable", "alice"])["state"], "active");
    t.add_token("alice", &[]);
    let shown = t.json(&["user", "show", "alice"]);
    assert_eq!(shown["username"], "alice");
    assert_eq!(shown["tokens"].as_array().unwrap().len(), 1);
    assert!(shown.get("password_hash").is_none());
    t.ok_with(
        &["user", "passwd", "alice"],
        Some("another long password\r\n"),
    );
    assert_eq!(t.json(&["user", "list", "--search", "ali"])["total"], 1);
    t.ok(&["user", "delete", "alice"]);
    t.fails(&["user", "show", "alice"], None, "not_found");
    assert_eq!(t.count(&["token", "list"]), 0);
    assert_eq!(t.json(&["audit", "verify"])["ok"], true);
}

#[test]
fn token_state_changes() {
    let t = Tessera::new();
    t.add_user("alice");
    let (id, _) = t.add_token("alice", &["--name", "Work phone"]);
    assert_eq!(
        t.json(&["token", "rename", &id, "Diensthandy"])["name"],
        "Diensthandy"
    );
    assert_eq!(t.json(&["token", "disable", &id])["state"], "disabled");
    // Never activated: enabling returns it to pending, not active.
    assert_eq!(t.json(&["token", "enable", &id])["state"], "pending");
    assert_eq!(t.json(&["token", "unlock", &id])["fail_count"], 0);
    assert_eq!(t.json(&["token", "revoke", &id])["state"], "revoked");
    t.fails(&["token", "enable", &id], None, "token_state");
    assert_eq!(t.json(&["token", "delete", &id])["deleted"], true);
    t.fails(&["token", "show", &id], None, "not_found");
}

#[test]
fn app_key_is_shown_once() {
    let t = Tessera::new();
    let text = t.ok(&["app", "add", "vpn"]);
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("API key: "))
        .unwrap()
        .to_owned();
    assert!(key.starts_with("tsk_"));
    assert!(text.contains("shown only now"));
    let created = t.json(&["app", "add", "rdp", "--mode", "otp_only"]);
    assert_eq!(created["mode"], "otp_only");
    assert!(created["api_key"].as_str().unwrap().starts_with("tsk_"));
    t.fails(&["app", "add", "vpn"], None, "conflict");

    let list = t.ok(&["app", "list"]);
    assert!(list.contains("vpn") && !list.contains(&key));
    assert!(!t.ok(&["--json", "app", "list"]).contains(&key));
    assert_eq!(t.json(&["app", "revoke", "1"])["state"], "revoked");
}

#[test]
fn every_yes_no_value_takes_on_off_yes_no_true_false() {
    let t = Tessera::new();
    t.add_user("alice");
    let words = [
        ("ON", true),
        ("off", false),
        ("Yes", true),
        ("no", false),
        ("TRUE", true),
        ("False", false),
    ];
    for (i, (word, value)) in words.into_iter().enumerate() {
        let user = t.json(&["user", "set", "alice", "--otp-required", word]);
        assert_eq!(user["otp_required"], value, "user set {word}");
        let name = format!("user{i}");
        let added = t.json(&["user", "add", &name, "--otp-required", word]);
        assert_eq!(added["otp_required"], value, "user add {word}");
        let app = format!("app{i}");
        let created = t.json(&["app", "add", &app, "--passthrough", word]);
        assert_eq!(created["passthrough"], value, "app add {word}");
        let settings = t.json(&["recovery", "policy", "alice", "--self-service", word]);
        assert_eq!(
            settings["self_service"]["value"], value,
            "recovery policy {word}"
        );
        assert_eq!(settings["self_service"]["own"], true);
        let setting = t.json(&["enroll", "recovery", "alice", word]);
        assert_eq!(setting["recovery"], value, "enroll recovery {word}");
    }
    // The option alone still means yes, and `policy` still follows the configuration.
    assert_eq!(
        t.json(&["user", "add", "flag", "--otp-required"])["otp_required"],
        true
    );
    let settings = t.json(&["recovery", "policy", "alice", "--self-service", "Policy"]);
    assert_eq!(settings["self_service"]["own"], false);
    assert!(t.json(&["enroll", "recovery", "alice", "policy"])["recovery"].is_null());

    // Any other word is a usage error that names the accepted ones.
    for args in [
        &["user", "set", "alice", "--otp-required", "maybe"][..],
        &["user", "add", "bob", "--otp-required", "1"],
        &["app", "add", "vpn", "--passthrough", "y"],
        &[
            "recovery",
            "policy",
            "alice",
            "--revoke-old-devices",
            "sometimes",
        ],
        &["enroll", "recovery", "alice", "enabled"],
        &["user", "set", "alice", "--otp-required", "policy"],
    ] {
        let out = t.run(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("expected yes"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn recovery_policy_changes_only_the_settings_given() {
    let t = Tessera::new();
    t.add_user("alice");
    let all = [
        "recovery",
        "policy",
        "alice",
        "--self-service",
        "no",
        "--revoke-old-devices",
        "yes",
        "--delivery",
        "email",
    ];
    t.ok(&all);
    t.ok(&["enroll", "recovery", "alice", "no"]);

    let own = |value: serde_json::Value| serde_json::json!({"value": value, "own": true});
    let settings = t.json(&["recovery", "policy", "alice", "--delivery", "show"]);
    assert_eq!(settings["delivery"], own("show".into()));
    assert_eq!(settings["self_service"], own(false.into()));
    assert_eq!(settings["revoke_old_devices"], own(true.into()));
    assert_eq!(settings["codes_at_enrollment"], own(false.into()));

    let settings = t.json(&[
        "recovery",
        "policy",
        "alice",
        "--revoke-old-devices",
        "policy",
    ]);
    assert_eq!(settings["revoke_old_devices"]["own"], false);
    assert_eq!(settings["self_service"], own(false.into()));
    assert_eq!(settings["delivery"], own("show".into()));
    assert_eq!(settings["codes_at_enrollment"], own(false.into()));

    // Each change is audited once; a setting that was not given is not written again.
    let trail = t.json(&["audit", "list", "--user", "alice"]);
    let trail = actions(&trail);
    let count = |action: &str| trail.iter().filter(|a| **a == action).count();
    assert_eq!(count("user.recovery_policy"), 2, "{trail:?}");
    assert_eq!(count("user.recovery_delivery"), 2, "{trail:?}");
    assert_eq!(count("user.recovery"), 1, "{trail:?}");

    // Giving nothing to change is a usage error, as for `user set`.
    let out = t.run(&["recovery", "policy", "alice"], None);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn every_list_command_prints_items_and_total() {
    let t = Tessera::new();
    t.add_user("alice");
    t.add_user("bob");
    t.add_token("alice", &[]);
    t.add_token("alice", &["--kind", "hotp"]);
    t.add_token("bob", &[]);
    t.ok(&["app", "add", "vpn"]);
    for (args, total) in [
        (&["user", "list"][..], 2),
        (&["token", "list"], 3),
        (&["token", "list", "alice"], 2),
        (&["app", "list"], 1),
    ] {
        let listing = t.json(args);
        let keys: Vec<&str> = listing
            .as_object()
            .unwrap_or_else(|| panic!("{args:?} printed no object: {listing}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["items", "total"], "{args:?}");
        assert_eq!(listing["total"], total, "{args:?}");
        assert_eq!(
            listing["items"].as_array().unwrap().len(),
            total,
            "{args:?}"
        );
    }

    // A page holds what fits, the total says how many there are.
    let page = t.json(&["token", "list", "--limit", "2"]);
    assert_eq!(
        (page["items"].as_array().unwrap().len(), &page["total"]),
        (2, &3.into())
    );
    let rest = t.json(&["token", "list", "--limit", "2", "--offset", "2"]);
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["username"], "bob");
    let page = t.json(&["user", "list", "--limit", "1", "--offset", "1"]);
    assert_eq!(page["items"][0]["username"], "bob");
    assert_eq!(page["total"], 2);
    let text = t.ok(&["token", "list", "--limit", "2"]);
    assert!(text.contains("(1-2 of 3 tokens)"), "{text}");
}

#[test]
fn only_serve_and_migrate_create_an_installation() {
    let dir = tempfile::tempdir().unwrap();
    // A typo for "tessera-data": no such directory.
    let missing = dir.path().join("tessera-dat");
    for args in [
        &["user", "add", "alice"][..],
        &["user", "list"],
        &["token", "list"],
        &["app", "list"],
        &["audit", "verify"],
        &["enroll", "link", "alice"],
        &["recovery", "history", "alice"],
        &["validate", "alice", "--otp", "123456"],
        &["send-test-email", "it@example.org"],
    ] {
        let out = run_cli(&missing, args, None);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains(&missing.display().to_string()), "{err}");
        assert!(
            err.contains("does not exist") && err.contains("tessera migrate"),
            "{err}"
        );
        assert!(stdout(&out).is_empty());
        assert!(!missing.exists(), "{args:?} created the directory");
    }

    // `migrate` creates it (as `serve` does), and says what it made.
    let out = run_cli(&missing, &["migrate"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("created the data directory"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("tessera.key"), "{}", stderr(&out));
    let out = run_cli(&missing, &["user", "add", "alice"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).is_empty(),
        "nothing new to report: {}",
        stderr(&out)
    );

    // A directory made for Tessera (empty, e.g. a volume) is used: the installation starts there.
    let empty = dir.path().join("volume");
    std::fs::create_dir(&empty).unwrap();
    let out = run_cli(&empty, &["user", "add", "alice"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("created the encryption key file"),
        "{}",
        stderr(&out)
    );
    assert!(empty.join("tessera.key").exists());
}

#[test]
fn user_add_shows_sms_disabled_for_a_user_without_a_phone() {
    let t = Tessera::new();
    let text = t.ok(&["user", "add", "alice"]);
    assert!(
        text.contains("SMS           disabled (no phone number)"),
        "{text}"
    );
    assert_eq!(t.json(&["user", "show", "alice"])["sms_enabled"], false);

    let with_phone = t.json(&["user", "add", "bob", "--phone", "+49 30 1234567"]);
    assert_eq!(with_phone["sms_enabled"], true);
    assert!(
        t.ok(&["user", "show", "bob"])
            .contains("SMS           enabled")
    );
    // A number given later turns SMS on; removing it turns it off again.
    assert_eq!(
        t.json(&["user", "set", "alice", "--phone", "+49 30 7654321"])["sms_enabled"],
        true
    );
    let text = t.ok(&["user", "set", "alice", "--phone", ""]);
    assert!(
        text.contains("SMS           disabled (no phone number)"),
        "{text}"
    );
}

#[test]
fn user_add_invite_sends_the_invitation_and_says_where_it_went() {
    let t = Tessera::new();
    let out = t.ok(&[
        "user",
        "add",
        "olga",
        "--email",
        "olga@example.org",
        "--otp-required",
        "yes",
        "--invite",
    ]);
    assert!(
        out.contains("Invitation to olga@example.org") && out.contains("written to the outbox"),
        "{out}"
    );
    let v = t.json(&[
        "user",
        "add",
        "otto",
        "--otp-required",
        "yes",
        "--invite",
        "--json",
    ]);
    assert_eq!(v["username"], "otto", "{v}");
    assert_eq!(v["invitation"]["sent"], false, "{v}");
    assert_eq!(v["invitation"]["error"]["code"], "invalid_input", "{v}");
    // Not asked for: no invitation, and no word of one.
    let v = t.json(&["user", "add", "paul", "--otp-required", "yes", "--json"]);
    assert!(v.get("invitation").is_none(), "{v}");
}
