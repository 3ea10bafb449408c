//! Imports and the inventory as an operator runs them: the real `tessera` binary on a fresh
//! installation (SQLite, and PostgreSQL when configured). Seed files come from the import crate's
//! writer with secrets the test knows; codes come from `oathtool`.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod cli_support;
mod common;

use std::path::{Path, PathBuf};

use cli_support::*;
use common::{databases, run_cli_env, stderr, stdout};
use data_encoding::{BASE32_NOPAD, BASE64, HEXLOWER};
use tessera_import::pskc::{ExportProtection, PskcWriter};
use tessera_import::{Kind, Record};
use tessera_otp::{KeyUri, Secret};
use zeroize::Zeroizing;

fn record(serial: &str, secret: &[u8], kind: Kind) -> Record {
    let mut r = tessera_import::uri::record_from_uri(
        KeyUri::parse("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP").unwrap(),
        String::new(),
    );
    r.serial = Some(serial.to_owned());
    r.secret = Secret::from_bytes(secret.to_vec()).unwrap();
    r.kind = kind;
    r.manufacturer = Some("Feitian".into());
    r.model = Some("c200".into());
    r
}

/// Secrets the test knows: 20 bytes each, different per serial.
fn secret_of(n: usize) -> Vec<u8> {
    format!("known-seed-{n:09}").into_bytes()
}

fn write_pskc(path: &Path, n: usize, password: &str) {
    let random: tessera_import::pskc::Random = Box::new(|buf: &mut [u8]| {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(7);
        }
        Ok(())
    });
    let out = std::fs::File::create(path).unwrap();
    let protection = ExportProtection::Password {
        password: Zeroizing::new(password.into()),
        iterations: 1000,
    };
    let mut w = PskcWriter::new(out, protection, random).unwrap();
    for i in 0..n {
        let kind = if i == 0 {
            Kind::Hotp { counter: 5 }
        } else {
            Kind::Totp {
                period: 30,
                drift: 0,
            }
        };
        w.write(&record(&format!("FT{i:06}"), &secret_of(i), kind))
            .unwrap();
    }
    w.finish().unwrap();
}

/// Fails if any of the secrets appears in `text` in hex, base32 or base64.
fn assert_no_secrets(text: &str, n: usize) {
    for i in 0..n {
        let s = secret_of(i);
        for form in [
            HEXLOWER.encode(&s),
            BASE32_NOPAD.encode(&s),
            BASE64.encode(&s),
        ] {
            assert!(!text.contains(&form), "a secret appears in output");
        }
        assert!(!text.contains(std::str::from_utf8(&s).unwrap()));
    }
}

fn file(t: &Tessera, name: &str) -> PathBuf {
    t.dir.path().join(name)
}

fn env(t: &Tessera, extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&str, String)> = extra.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    if let Some(url) = &t.postgres {
        v.push(("TESSERA_DATABASE__URL", url.clone()));
    }
    v
}

fn run_env(
    t: &Tessera,
    args: &[&str],
    stdin: Option<&str>,
    extra: &[(&'static str, &'static str)],
) -> std::process::Output {
    let env = env(t, extra);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_cli_env(&t.data_dir(), args, stdin, &env)
}

#[test]
fn pskc_import_dry_run_reimport_wrong_password_assign_and_login() {
    for db in databases() {
        let t = Tessera::on(db);
        t.ok(&["migrate"]);
        let pskc = file(&t, "seeds.pskc");
        write_pskc(&pskc, 30, "vendor password");
        let path = pskc.to_str().unwrap();
        let mut seen = String::new();

        let out = t.run(
            &[
                "--json",
                "import",
                "pskc",
                path,
                "--password-stdin",
                "--dry-run",
            ],
            Some("vendor password\n"),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(
            (report["imported"].as_i64(), report["dry_run"].as_bool()),
            (Some(30), Some(true))
        );
        assert_eq!(report["tokens"][1]["manufacturer"], "Feitian");
        seen += &stdout(&out);
        assert_eq!(
            t.json(&["inventory", "list"])["total"],
            0,
            "a dry run keeps nothing"
        );

        let report_file = file(&t, "report.json");
        let out = t.run(
            &[
                "import",
                "pskc",
                path,
                "--password-stdin",
                "--report",
                report_file.to_str().unwrap(),
            ],
            Some("vendor password\n"),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(stdout(&out).contains("imported 30"), "{}", stdout(&out));
        seen += &stdout(&out);
        seen += &std::fs::read_to_string(&report_file).unwrap();
        assert_eq!(t.json(&["inventory", "list"])["total"], 30);

        // Again: every serial is in stock already; exit 2, nothing changed.
        let out = t.run(
            &["--json", "import", "pskc", path, "--password-stdin"],
            Some("vendor password\n"),
        );
        assert_eq!(out.status.code(), Some(2));
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(
            (report["imported"].as_i64(), report["existing"].as_i64()),
            (Some(0), Some(30))
        );

        // A wrong password: refused, exit 1, one answer.
        let out = t.run(
            &["--json", "import", "pskc", path, "--password-stdin"],
            Some("wrong\n"),
        );
        assert_eq!(out.status.code(), Some(1));
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(report["refused"]["code"], "wrong_key_or_mac");
        seen += &(stdout(&out) + &stderr(&out));

        // Hand FT000001 (TOTP) to alice: an oathtool code logs her in.
        t.add_user("alice");
        let assigned = t.json(&["inventory", "assign", "FT000001", "alice"]);
        assert_eq!(assigned["state"], "active");
        let b32 = BASE32_NOPAD.encode(&secret_of(1));
        let code = oathtool(&["--totp", "-b", &b32]);
        let out = t.run(&["validate", "alice", "--otp", &code], None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );
        assert_eq!(
            t.json(&["inventory", "show", "FT000001"])["state"],
            "assigned"
        );
        t.fails(
            &["inventory", "assign", "FT000001", "alice"],
            None,
            "conflict",
        );
        // HOTP FT000000 starts at its file counter 5.
        t.add_user("bob");
        t.ok(&["inventory", "assign", "FT000000", "bob"]);
        let code = oathtool(&["--hotp", "-c", "5", &HEXLOWER.encode(&secret_of(0))]);
        let out = t.run(&["validate", "bob", "--otp", &code], None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            stdout(&out),
            stderr(&out)
        );

        t.ok(&["inventory", "retire", "FT000002"]);
        t.fails(
            &["inventory", "assign", "FT000002", "bob"],
            None,
            "conflict",
        );
        let imports = t.json(&["inventory", "imports"]);
        assert_eq!(
            imports["items"][0]["file_sha256"].as_str().unwrap().len(),
            64
        );
        let audit = t.json(&["audit", "list"]);
        let trail = actions(&audit);
        for action in ["import.tokens", "inventory.assign", "inventory.retire"] {
            assert!(trail.contains(&action), "{action} missing from {trail:?}");
        }
        seen += &t.ok(&["audit", "list"]);
        seen += &t.ok(&["inventory", "list"]);
        assert_no_secrets(&seen, 30);
    }
}

#[test]
fn entra_csv_with_assign_and_tampered_file() {
    for db in databases() {
        let t = Tessera::on(db);
        t.add_user("carol");
        let csv = file(&t, "entra.csv");
        std::fs::write(
            &csv,
            "upn,serial number,secret key,time interval,manufacturer,model\n\
             carol,10001001,GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ,30,Deepnet Security,SafeID/Classic\n\
             nobody,10001002,JBSWY3DPEHPK3PXP,60,Deepnet Security,SafeID/Classic\n\
             ,10001003,NOT*BASE32,30,Token2,C202\n",
        )
        .unwrap();
        let out = t.run(
            &[
                "--json",
                "import",
                "csv",
                "--format",
                "entra",
                csv.to_str().unwrap(),
                "--assign",
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(report["imported"], 2);
        assert_eq!(report["skips"][0]["locator"], "line 4");
        assert_eq!(report["skips"][0]["code"], "secret_invalid");
        assert_eq!(report["assignments"][0]["user"], "carol");
        assert!(report["assignments"][0]["error"].is_null());
        assert!(
            report["assignments"][1]["error"].is_string(),
            "nobody is no user"
        );
        let code = oathtool(&["--totp", "-b", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"]);
        let out = t.run(&["validate", "carol", "--otp", &code], None);
        assert_eq!(out.status.code(), Some(0));

        // A PSKC file with one byte of a MAC changed: refused, nothing of it kept.
        let pskc = file(&t, "tampered.pskc");
        write_pskc(&pskc, 5, "pw");
        let text = std::fs::read_to_string(&pskc).unwrap();
        let at = text.rfind("<ValueMAC>").unwrap() + "<ValueMAC>".len() + 2;
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        std::fs::write(&pskc, bytes).unwrap();
        let out = t.run(
            &["import", "pskc", pskc.to_str().unwrap(), "--password-stdin"],
            Some("pw\n"),
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(stdout(&out).contains("nothing was imported"));
        let filter = ["inventory", "list", "--search", "FT"];
        assert_eq!(
            t.json(&filter)["total"],
            0,
            "no key of a refused file stays"
        );
    }
}

fn fixture(path: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/imports")
        .join(path);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: fixture {} is absent", p.display());
        None
    }
}

#[test]
fn qr_images_and_export_round_trip() {
    let t = Tessera::new();
    let (Some(migration), Some(enroll)) = (
        fixture("keyroost/migration.png"),
        fixture("dim13/example.png"),
    ) else {
        return;
    };
    t.add_user("alice");
    let out = t.run(
        &[
            "--json",
            "import",
            "qr",
            migration.to_str().unwrap(),
            enroll.to_str().unwrap(),
            "--assign",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    // Both decode; keyroost's export names alice (assigned), dim13's alice@google.com (no user).
    assert_eq!(report["imported"], 2);
    assert_eq!(report["warnings"][0]["code"], "weak_secret");
    assert!(
        report["assignments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["user"] == "alice" && a["error"].is_null())
    );
    // Text named .png: refused.
    let fake = file(&t, "fake.png");
    std::fs::write(&fake, "this is not an image").unwrap();
    let out = t.run(&["import", "qr", fake.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("image_format"), "{}", stdout(&out));

    // Export: off by default; allowed, it writes encrypted PSKC that another server imports.
    let target = file(&t, "export.pskc");
    let out = run_env(
        &t,
        &[
            "inventory",
            "export",
            target.to_str().unwrap(),
            "--password-stdin",
        ],
        Some("export pw\n"),
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("allow_seed_export"),
        "{}",
        stderr(&out)
    );
    let on = [
        ("TESSERA_INVENTORY__ALLOW_SEED_EXPORT", "true"),
        ("TESSERA_INVENTORY__EXPORT_ITERATIONS", "2000"),
    ];
    let out = run_env(
        &t,
        &[
            "inventory",
            "export",
            target.to_str().unwrap(),
            "--password-stdin",
        ],
        Some("export pw\n"),
        &on,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let exported = std::fs::read_to_string(&target).unwrap();
    assert!(exported.contains("pbkdf2") && !exported.contains("PlainValue>JBSWY"));
    let other = Tessera::new();
    let out = other.run(
        &[
            "--json",
            "import",
            "pskc",
            target.to_str().unwrap(),
            "--password-stdin",
        ],
        Some("export pw\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["imported"], 1, "the assigned one stays behind");
}

/// `--leftover`: the skipped KeyPackages come back as a PSKC file that the same password opens
/// (its header and MAC key copied), mode 0600.
#[test]
fn pskc_leftover_holds_the_skipped_packages() {
    use std::os::unix::fs::PermissionsExt as _;
    let t = Tessera::on(databases()[0]);
    t.ok(&["migrate"]);
    let random: tessera_import::pskc::Random = Box::new(|buf: &mut [u8]| {
        buf.iter_mut().for_each(|b| *b = 7);
        Ok(())
    });
    let pskc = file(&t, "dup.pskc");
    let protection = ExportProtection::Password {
        password: Zeroizing::new("vendor password".into()),
        iterations: 1000,
    };
    let mut w = PskcWriter::new(std::fs::File::create(&pskc).unwrap(), protection, random).unwrap();
    let totp = Kind::Totp {
        period: 30,
        drift: 0,
    };
    for (serial, n) in [("FT000000", 0), ("FT000001", 1), ("FT000001", 2)] {
        w.write(&record(serial, &secret_of(n), totp)).unwrap();
    }
    w.finish().unwrap();
    let rest = file(&t, "rest.pskc");
    let (path, rest_path) = (pskc.to_str().unwrap(), rest.to_str().unwrap());
    let out = t.run(
        &[
            "import",
            "pskc",
            path,
            "--password-stdin",
            "--leftover",
            rest_path,
        ],
        Some("vendor password\n"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1 skipped KeyPackages written to"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::metadata(&rest).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The leftover opens with the same password and holds the third package only.
    let out = t.run(
        &[
            "--json",
            "import",
            "pskc",
            rest_path,
            "--password-stdin",
            "--dry-run",
        ],
        Some("vendor password\n"),
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (
            report["imported"].as_i64(),
            report["existing"].as_i64(),
            report["skipped"].as_i64()
        ),
        (Some(0), Some(1), Some(0)),
        "{report}"
    );
    // Standard input cannot be read twice.
    let out = t.run(&["import", "pskc", "-", "--leftover", "x.pskc"], Some(""));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--leftover takes exactly one PSKC file"));
}
