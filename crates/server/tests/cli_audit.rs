//! The audit log and the stored seeds as an operator checks them from the command line: the
//! real `tessera` binary on a fresh data directory, the database changed and dumped from outside.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod cli_support;
mod common;

use cli_support::*;
use common::{stderr, stdout};
use serde_json::Value;
use tessera_otp::KeyUri;

#[test]
fn audit_verify_passes_on_an_untouched_log() {
    let t = Tessera::new();
    t.add_user("alice");
    t.add_token("alice", &[]);
    assert_eq!(t.ok(&["audit", "verify"]), "audit log intact: 2 entries\n");
    let v = t.json(&["audit", "verify"]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["entries"], 2);
}

#[test]
fn audit_verify_names_a_changed_entry() {
    let t = Tessera::new();
    t.add_user("alice");
    t.add_user("bob");
    t.add_token("alice", &[]);
    sql(
        &t.db(),
        &["UPDATE audit_log SET reason = 'x' WHERE seq = 2"],
    );

    let out = t.run(&["audit", "verify"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(err.contains("entry 2 was changed"), "{err}");
}

#[test]
fn audit_verify_sees_a_deleted_newest_entry() {
    let t = Tessera::new();
    t.add_user("alice");
    t.add_user("bob");
    t.add_user("carol");
    sql(&t.db(), &["DELETE FROM audit_log WHERE seq = 3"]);

    let out = t.run(&["--json", "audit", "verify"], None);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_bad_seq"], 3);
    assert!(stderr(&out).contains("entry 3"), "{}", stderr(&out));
}

/// Every encoding a seed could leak in.
fn encodings(seed: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    use data_encoding::{BASE32, BASE32_NOPAD, BASE64, HEXLOWER, HEXUPPER};
    vec![
        ("raw", seed.to_vec()),
        ("hex", HEXLOWER.encode(seed).into_bytes()),
        ("HEX", HEXUPPER.encode(seed).into_bytes()),
        ("base32", BASE32_NOPAD.encode(seed).into_bytes()),
        ("base32 padded", BASE32.encode(seed).into_bytes()),
        (
            "base32 lower",
            BASE32_NOPAD.encode(seed).to_lowercase().into_bytes(),
        ),
        ("base64", BASE64.encode(seed).into_bytes()),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn database_dump_reveals_no_seed() {
    let t = Tessera::new();
    t.add_user("alice");
    let mut seeds = Vec::new();
    let mut serials = Vec::new();
    for args in [
        &[][..],
        &["--kind", "hotp"],
        &["--algorithm", "SHA512", "--digits", "8"],
    ] {
        let mut all = vec!["--json", "token", "add", "alice"];
        all.extend_from_slice(args);
        let created: Value = serde_json::from_str(&t.ok(&all)).unwrap();
        let uri = KeyUri::parse(created["otpauth_uri"].as_str().unwrap()).unwrap();
        seeds.push(uri.secret.as_bytes().to_vec());
        serials.push(created["serial"].as_str().unwrap().to_owned());
    }
    // One token used, so its row was rewritten too.
    let (id, uri) = t.add_token("alice", &[]);
    seeds.push(uri.secret.as_bytes().to_vec());
    t.ok(&["token", "verify", &id, &oathtool_totp(&uri)]);

    // A consistent copy of everything the database holds, plus the raw files as they lie.
    let copy = t.dir.path().join("dump.db");
    sql(
        &t.db(),
        &[&format!("VACUUM INTO '{}'", copy.to_str().unwrap())],
    );
    let mut dumps = vec![("copy", std::fs::read(&copy).unwrap())];
    for name in ["tessera.db", "tessera.db-wal"] {
        if let Ok(bytes) = std::fs::read(t.data_dir().join(name)) {
            dumps.push((name, bytes));
        }
    }
    let copy_bytes = &dumps[0].1;
    // The search works: what is stored in clear is found.
    for serial in &serials {
        assert!(
            contains(copy_bytes, serial.as_bytes()),
            "{serial} not found"
        );
    }
    for (file, bytes) in &dumps {
        for seed in &seeds {
            for (encoding, needle) in encodings(seed) {
                assert!(
                    !contains(bytes, &needle),
                    "{file} contains a seed ({encoding})"
                );
            }
        }
        assert!(!contains(bytes, PASSWORD.as_bytes()), "{file}: password");
    }
}

#[test]
fn audit_list_filters_by_time() {
    let t = Tessera::new();
    t.add_user("alice");
    assert_eq!(t.count(&["audit", "list"]), 1);
    let long_ago = [
        "audit",
        "list",
        "--since",
        "2000-01-01",
        "--until",
        "2001-01-01",
    ];
    assert_eq!(t.count(&long_ago), 0);
    assert_eq!(
        t.count(&["audit", "list", "--since", "2000-01-01T00:00:00Z"]),
        1
    );
    let table = t.ok(&["audit", "list"]);
    assert!(table.starts_with("SEQ"), "{table}");
    // Times are shown as RFC 3339.
    let row = table.lines().nth(1).unwrap();
    let time = row.split_whitespace().nth(1).unwrap();
    assert!(tessera_server::clock::parse_time(time).is_some(), "{row}");
    assert!(time.ends_with('Z'), "{row}");
}
