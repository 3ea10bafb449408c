//! Imports as a user runs them, against files made by independent writers (Python
//! `cryptography`, from the formats' published descriptions: tests/peers/), the shared QR
//! fixtures, and our own exports read back by an independent decoder.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use std::process::{Command, Stdio};

use serde_json::{Value, json};
use support::{Env, fixture, oathtool};

/// Runs a peer script with `stdin`; `None` (with a message) when Python or `cryptography` is
/// missing (.ci/install-tools installs both).
fn peer(script: &str, args: &[&str], stdin: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: python3 with cryptography is not installed");
        return None;
    }
    let path = format!("{}/tests/peers/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

/// The seven varied tokens of the Aegis test vault (SHA-1/256/512, 6/7/8 digits, periods
/// 30/20/50, HOTP counters, Steam), with their own secrets.
fn aegis_entries() -> Value {
    let e = |kind: &str, issuer: &str, name: &str, info: Value| {
        json!({"type": kind, "uuid": "5a1c6e2a-7d8b-4c5e-9f10-0123456789ab", "name": name,
               "issuer": issuer, "note": "", "icon": null, "info": info})
    };
    json!([
        e(
            "totp",
            "Deno",
            "Mason",
            json!({"secret": "4SJHB4GSD43FZBAI7C2HLRJGPQ", "algo": "SHA1", "digits": 6, "period": 30})
        ),
        e(
            "totp",
            "SPDX",
            "James",
            json!({"secret": "5OM4WOOGPLQEF6UGN3CPEOOLWU", "algo": "SHA256", "digits": 7, "period": 20})
        ),
        e(
            "totp",
            "Airbnb",
            "Elijah",
            json!({"secret": "7ELGJSGXNCCTV3O6LKJWYFV2RA", "algo": "SHA512", "digits": 8, "period": 50})
        ),
        e(
            "hotp",
            "Issuu",
            "James",
            json!({"secret": "YOOMIXWS5GN6RTBPUFFWKTW5M4", "algo": "SHA1", "digits": 6, "counter": 1})
        ),
        e(
            "hotp",
            "Air Canada",
            "Benjamin",
            json!({"secret": "KUVJJOM753IHTNDSZVCNKL7GII", "algo": "SHA256", "digits": 7, "counter": 50})
        ),
        e(
            "hotp",
            "WWE",
            "Mason",
            json!({"secret": "5VAML3X35THCEBVRLV24CGBKOY", "algo": "SHA512", "digits": 8, "counter": 10300})
        ),
        e(
            "steam",
            "Boeing",
            "Sophia",
            json!({"secret": "JRZCL47CMXVOQMNPZR2F7J4RGI", "algo": "SHA1", "digits": 5, "period": 30})
        ),
    ])
}

fn write(env: &Env, name: &str, bytes: &[u8]) -> String {
    let p = env.dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_owned()
}

fn counts(r: &Value) -> (usize, usize, usize) {
    let n = |k: &str| r[k].as_array().map_or(0, Vec::len);
    (n("added"), n("duplicate"), n("skipped"))
}

fn add_json(env: &Env, args: &[&str], stdin: &str) -> (bool, Value, String) {
    let mut all = vec!["add"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = env.run_stdin(&all, stdin);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.success(),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn aegis_encrypted_by_an_independent_writer_imports_all_seven() {
    let Some(vault) = peer(
        "write_aegis.py",
        &["test"],
        aegis_entries().to_string().as_bytes(),
    ) else {
        return;
    };
    let env = Env::new();
    env.ok(&["init"]);
    let file = write(&env, "aegis.json", &vault);

    // A wrong password: refused as a whole, nothing added, no oracle beyond "wrong or changed".
    let (ok, r, _) = add_json(&env, &["--password-stdin", &file], "nope\n");
    assert!(!ok);
    assert_eq!(r["skipped"][0]["code"], "wrong_key_or_mac");

    let (ok, r, err) = add_json(&env, &["--password-stdin", &file], "test\n");
    assert!(ok, "{err}");
    assert_eq!(counts(&r), (7, 0, 0), "{r}");
    assert!(!r.to_string().contains("4SJHB4GSD43FZBAI7C2HLRJGPQ"));
    // Importing the same file again finds only duplicates.
    let (_, r, _) = add_json(&env, &["--password-stdin", &file], "test\n");
    assert_eq!(counts(&r), (0, 7, 0));

    // SHA-256, 7 digits, 20 s: the code agrees with oathtool.
    let codes = env.json(&["codes", "SPDX", "--json"]);
    let code = codes[0]["code"].as_str().unwrap();
    if let Some(now) = oathtool(&[
        "--totp=sha256",
        "-d",
        "7",
        "-s",
        "20",
        "-b",
        "5OM4WOOGPLQEF6UGN3CPEOOLWU",
    ]) {
        let prev = oathtool(&[
            "--totp=sha256",
            "-d",
            "7",
            "-s",
            "20",
            "-b",
            "5OM4WOOGPLQEF6UGN3CPEOOLWU",
            "-N",
            "now - 20 seconds",
        ])
        .unwrap();
        assert!(code == now || code == prev, "{code} vs {now}");
    }
    // HOTP counter 10300 with SHA-512 and 8 digits.
    let c = env.ok(&["code", "WWE"]);
    if let Some(expected) =
        // oathtool's HOTP is SHA-1 only; HOTP(C) = TOTP at time C · 30 for the other hashes.
        oathtool(&[
            "--totp=sha512",
            "-d",
            "8",
            "-N",
            "@309000",
            "-b",
            "5VAML3X35THCEBVRLV24CGBKOY",
        ])
    {
        assert_eq!(c.trim(), expected);
    }
    let steam = env.json(&["codes", "Boeing", "--json"]);
    assert_eq!(steam[0]["kind"], "steam");
    assert_eq!(steam[0]["code"].as_str().unwrap().len(), 5);
}

#[test]
fn aegis_plain_with_unsupported_entries_reports_them() {
    let mut entries = aegis_entries();
    entries.as_array_mut().unwrap().push(
        json!({"type": "motp", "uuid": "x", "name": "m", "issuer": "MOTP",
        "info": {"secret": "JBSWY3DPEHPK3PXP", "algo": "MD5", "digits": 6, "period": 10}}),
    );
    entries.as_array_mut().unwrap().push(
        json!({"type": "totp", "uuid": "y", "name": "n", "issuer": "Broken",
        "info": {"secret": "not base32!", "algo": "SHA1", "digits": 6, "period": 30}}),
    );
    let file = json!({"version": 1, "header": {"slots": null, "params": null},
                      "db": {"version": 2, "entries": entries, "groups": []}});
    let env = Env::new();
    env.ok(&["init"]);
    let path = write(&env, "plain.json", file.to_string().as_bytes());
    let (ok, r, _) = add_json(&env, &[&path], "");
    assert!(ok);
    assert_eq!(counts(&r), (7, 0, 2), "{r}");
    assert_eq!(r["skipped"][0]["locator"], "entry 8 \"MOTP\"");
    assert_eq!(r["skipped"][0]["code"], "hash_md5");
    assert_eq!(r["skipped"][1]["code"], "secret_invalid");
}

#[test]
fn twofas_encrypted_by_an_independent_writer_imports() {
    let services = json!([
        {"name": "GitHub", "secret": "JBSWY3DPEHPK3PXP", "otp": {"account": "octo", "issuer": "GitHub", "digits": 6, "period": 30, "algorithm": "SHA1", "tokenType": "TOTP"}},
        {"name": "Bank", "secret": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "otp": {"account": "me", "digits": 8, "algorithm": "SHA256", "tokenType": "HOTP", "counter": 3}},
        {"name": "Old", "secret": "MFRGGZDFMZTWQ2LK", "otp": {"label": "legacy"}},
    ]);
    let Some(file) = peer("write_2fas.py", &["test"], services.to_string().as_bytes()) else {
        return;
    };
    let env = Env::new();
    env.ok(&["init"]);
    let path = write(&env, "backup.2fas", &file);
    let (ok, r, err) = add_json(&env, &["--password-stdin", &path], "test\n");
    assert!(ok, "{err}");
    assert_eq!(counts(&r), (3, 0, 0), "{r}");
    let list = env.json(&["list", "--json"]);
    assert_eq!(list[1]["issuer"], "Bank");
    assert_eq!(list[1]["counter"], 3);
    assert_eq!(list[2]["account"], "legacy");
    let c = env.ok(&["code", "Bank"]);
    if let Some(expected) = oathtool(&[
        "--totp=sha256",
        "-d",
        "8",
        "-N",
        "@90",
        "-b",
        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    ]) {
        assert_eq!(c.trim(), expected);
    }
}

#[test]
fn andotp_encrypted_by_an_independent_writer_imports() {
    let entries = json!([
        {"secret": "JBSWY3DPEHPK3PXP", "issuer": "", "label": "Mastodon - alice", "digits": 6, "type": "TOTP", "algorithm": "SHA1", "period": 30, "tags": []},
        {"secret": "GEZDGNBVGY3TQOJQ", "issuer": "Yandex", "label": "y", "digits": 8, "type": "YAOTP", "algorithm": "SHA256", "period": 30},
    ]);
    let Some(file) = peer("write_andotp.py", &["test"], entries.to_string().as_bytes()) else {
        return;
    };
    let env = Env::new();
    env.ok(&["init"]);
    let path = write(&env, "otp_accounts.json.aes", &file);
    let (ok, r, err) = add_json(&env, &["--password-stdin", &path], "test\n");
    assert!(ok, "{err}");
    assert_eq!(counts(&r), (1, 0, 1), "{r}");
    assert_eq!(r["added"][0]["label"], "Mastodon (alice)");
    assert_eq!(r["skipped"][0]["code"], "algorithm_unknown");
}

#[test]
fn freeotp_plus_export_imports() {
    // "Hello!\xde\xad\xbe\xef" as Java's signed bytes: JBSWY3DPEHPK3PXP.
    let file = json!({"tokenOrder": ["Acme:alice"], "tokens": [
        {"algo": "SHA1", "counter": 0, "digits": 6, "issuerExt": "Acme", "issuerInt": "Acme", "label": "alice",
         "period": 30, "secret": [72, 101, 108, 108, 111, 33, -34, -83, -66, -17], "type": "TOTP"}]});
    let env = Env::new();
    env.ok(&["init"]);
    let path = write(&env, "freeotp-backup.json", file.to_string().as_bytes());
    let (ok, r, _) = add_json(&env, &[&path], "");
    assert!(ok);
    assert_eq!(counts(&r), (1, 0, 0));
    let uris = env.ok(&["export", "--format", "uris", "-o", "-"]);
    assert!(uris.contains("secret=JBSWY3DPEHPK3PXP"), "{uris}");
}

#[test]
fn our_aegis_export_is_read_by_an_independent_decoder() {
    let env = Env::new();
    env.ok(&["init"]);
    let plain = json!({"version": 1, "header": {"slots": null, "params": null},
                       "db": {"version": 2, "entries": aegis_entries(), "groups": []}});
    let src = write(&env, "src.json", plain.to_string().as_bytes());
    env.ok(&["add", &src]);
    for (format, pw) in [("aegis", None), ("aegis-encrypted", Some("exportpass"))] {
        let out = env.dir.path().join(format!("{format}.json"));
        let o = env.run_stdin(
            &[
                "export",
                "--format",
                format,
                "-o",
                out.to_str().unwrap(),
                "--password-stdin",
            ],
            &format!("{}\n", pw.unwrap_or("")),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut args = vec![out.to_str().unwrap()];
        args.extend(pw);
        let Some(lines) = peer("read_aegis.py", &args, b"") else {
            return;
        };
        let read: Vec<Value> = String::from_utf8(lines)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(read.len(), 7, "{format}");
        for (ours, theirs) in read.iter().zip(aegis_entries().as_array().unwrap()) {
            assert_eq!(ours["secret"], theirs["info"]["secret"], "{format}");
            assert_eq!(ours["algo"], theirs["info"]["algo"]);
            assert_eq!(ours["digits"], theirs["info"]["digits"]);
            assert_eq!(ours["issuer"], theirs["issuer"]);
            assert_eq!(ours["type"], theirs["type"]);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}

#[test]
fn qr_fixtures_import_enrollment_codes_and_google_exports() {
    let (Some(enroll_png), Some(enroll_jpg), Some(migration), Some(dim13)) = (
        fixture("keyroost/enroll.png"),
        fixture("keyroost/enroll.jpg"),
        fixture("keyroost/migration.png"),
        fixture("dim13/example.png"),
    ) else {
        return;
    };
    let env = Env::new();
    env.ok(&["init"]);
    let p = |p: &std::path::PathBuf| p.to_str().unwrap().to_owned();
    let (ok, r, err) = add_json(
        &env,
        &[&p(&enroll_png), &p(&enroll_jpg), &p(&migration), &p(&dim13)],
        "",
    );
    assert!(ok, "{err}");
    // enroll.png and enroll.jpg hold the same token; dim13's has the same secret under another
    // issuer (a different token by name, the same by secret: reported as a duplicate).
    assert_eq!(counts(&r), (2, 2, 0), "{r}");
    let list = env.json(&["list", "--json"]);
    assert_eq!(list[0]["issuer"], "Acme");
    assert_eq!(list[0]["origin"], "qr");
    // The Google Authenticator export's entry: Acme:alice with the prefix stripped.
    assert_eq!(list[1]["account"], "alice");
    let uris = env.ok(&["export", "--format", "uris", "-o", "-"]);
    assert!(uris.contains("secret=JBSWY3DPEHPK3PXP"));
    assert!(uris.contains("secret=GAYTEMZUGU3DOOBZ"), "{uris}"); // "0123456789"
    let codes = env.json(&["codes", "--json"]);
    if let Some(expected) = oathtool(&["--totp", "-b", "JBSWY3DPEHPK3PXP"]) {
        let prev =
            oathtool(&["--totp", "-b", "JBSWY3DPEHPK3PXP", "-N", "now - 30 seconds"]).unwrap();
        let c = codes[0]["code"].as_str().unwrap();
        assert!(c == expected || c == prev);
    }
}

#[test]
fn google_export_parts_in_any_order_complete_one_batch() {
    use tessera_import::uri::record_from_uri;
    use tessera_otp::KeyUri;
    let records: Vec<_> = (0..25)
        .map(|i| {
            let secret =
                data_encoding::BASE32_NOPAD.encode(format!("secret-number-{i:06}").as_bytes());
            let uri = KeyUri::parse(&format!(
                "otpauth://totp/Svc{i}:user{i}?secret={secret}&issuer=Svc{i}"
            ))
            .unwrap();
            record_from_uri(uri, format!("r{i}"))
        })
        .collect();
    let (links, written) = tessera_import::migration::export_uris(&records, 10, -1_320_898_453);
    assert_eq!((links.len(), written), (3, 25));
    let env = Env::new();
    env.ok(&["init"]);
    // Parts 3, 1, 2: one argument each.
    let (ok, r, err) = add_json(&env, &[&links[2], &links[0], &links[1]], "");
    assert!(ok, "{err}");
    assert_eq!(counts(&r), (25, 0, 0), "{r}");
    // Only two of three parts: every entry of the batch is reported incomplete, none added.
    let env = Env::new();
    env.ok(&["init"]);
    let (ok, r, _) = add_json(&env, &[&links[0], &links[2]], "");
    assert!(!ok);
    assert_eq!(counts(&r).0, 0);
    assert_eq!(r["skipped"][0]["code"], "batch_incomplete");
}

#[test]
fn ten_thousand_uri_lines_import() {
    let env = Env::new();
    env.ok(&["init"]);
    let mut list = String::new();
    for i in 0..10_000 {
        let secret = data_encoding::BASE32_NOPAD.encode(format!("secret-number-{i:06}").as_bytes());
        list.push_str(&format!(
            "otpauth://totp/Svc:user{i}?secret={secret}&issuer=Svc\n"
        ));
    }
    let path = write(&env, "big.txt", list.as_bytes());
    let (ok, r, _) = add_json(&env, &[&path], "");
    assert!(ok);
    assert_eq!(counts(&r), (10_000, 0, 0));
    assert_eq!(
        env.json(&["list", "--json"]).as_array().unwrap().len(),
        10_000
    );
}
