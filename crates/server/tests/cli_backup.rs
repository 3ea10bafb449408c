//! `tessera backup` and `tessera restore` from the shell, as the operations guide shows them:
//! the real binary, a passphrase on stdin, the key file copied by hand, JSON and text output.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod cli_support;
mod common;

use cli_support::*;
use common::{databases, run_cli_env, stderr};

/// A second installation beside `t`: its own data directory with `t`'s key file (copied, as an
/// operator puts back the key file kept apart) and, on PostgreSQL, its own empty database.
fn second(t: &Tessera) -> Tessera {
    let n = Tessera::on(t.db_kind());
    std::fs::copy(
        t.data_dir().join("tessera.key"),
        n.data_dir().join("tessera.key"),
    )
    .unwrap();
    n
}

#[test]
fn backup_and_restore_from_the_shell() {
    for db in databases() {
        let t = Tessera::on(db);
        t.add_user("alice");
        let (id, uri) = t.add_token("alice", &["--kind", "hotp"]);
        t.ok(&["token", "verify", &id, &oathtool_hotp(&uri, 0)]);
        let file = t.dir.path().join("nightly.backup");
        let file_s = file.to_str().unwrap();
        let out = t.ok_with(
            &["backup", file_s, "--passphrase-stdin"],
            Some("s3cret pass\n"),
        );
        assert!(out.contains("encrypted"), "{out}");
        assert!(out.contains("the key file is not in the backup"), "{out}");
        // Never over an existing file.
        let again = t.run(&["backup", file_s], None);
        assert_eq!(again.status.code(), Some(1));
        assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
        // The passphrase is nowhere in the file.
        assert!(!String::from_utf8_lossy(&std::fs::read(&file).unwrap()).contains("s3cret"));
        assert!(
            t.json(&["audit", "list", "--action", "backup.create"])
                .as_array()
                .unwrap()
                .len()
                == 1
        );

        let n = second(&t);
        let env: Vec<(&str, &str)> = n
            .postgres
            .iter()
            .map(|u| ("TESSERA_DATABASE__URL", u.as_str()))
            .collect();
        // Without the passphrase: refused, with the reason's code.
        let out = run_cli_env(&n.data_dir(), &["restore", file_s], None, &env);
        assert_eq!(out.status.code(), Some(1), "{db:?}");
        assert!(
            stderr(&out).contains("passphrase_required"),
            "{}",
            stderr(&out)
        );
        let out = run_cli_env(
            &n.data_dir(),
            &[
                "--json",
                "restore",
                file_s,
                "--passphrase-stdin",
                "--hotp-advance",
                "50",
            ],
            Some("s3cret pass\n"),
            &env,
        );
        assert!(out.status.success(), "{db:?}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["rolled_forward"]["hotp_tokens"], 1);
        assert_eq!(v["hotp_advance"], 50);
        assert_eq!(v["manifest"]["tokens"], 1);
        // The restored installation knows alice: the code past the advance is accepted, and
        // her code from before it (counter 1, maybe used after the backup) is refused.
        let past = oathtool_hotp(&uri, 51);
        n.ok(&["validate", "alice", "--otp", &past]);
        let next = oathtool_hotp(&uri, 1);
        let out = n.run(&["validate", "alice", "--otp", &next], None);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{db:?}: a code from before was accepted"
        );
        assert_eq!(n.ok(&["audit", "verify"]).lines().count(), 1);
    }
}
