//! The audit log and the stored seeds as an operator checks them from the command line: the
//! real `tessera` binary on a fresh data directory, the database changed and dumped from outside.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod cli_support;
mod common;

use cli_support::*;
use common::{Db, databases, stderr, stdout};
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

/// The audit chain's hash before it was keyed: SHA-256 over the previous hash and every field,
/// each length-prefixed. Written out here on its own, as someone editing the database with the
/// published formula would.
fn unkeyed_hash(prev_hash: &str, r: &AuditRow) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let (seq, at) = (r.seq.to_string(), r.at.to_string());
    for field in [
        "tessera-audit-v1",
        prev_hash,
        &seq,
        &at,
        &r.actor,
        &r.action,
        &r.target,
        &r.username,
        &r.source,
        &r.result,
        &r.reason,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    data_encoding::HEXLOWER.encode(&h.finalize())
}

/// Recomputes the chain with the unkeyed formula from entry `from` on, as stored now, and moves
/// the head to the new last hash: plain SQL, no key.
fn rechain_unkeyed(t: &Tessera, from: i64) {
    let rows = t.audit_rows();
    let mut prev = rows
        .iter()
        .find(|r| r.seq == from - 1)
        .map_or_else(|| "0".repeat(64), |r| r.hash.clone());
    let mut statements = Vec::new();
    for r in rows.iter().filter(|r| r.seq >= from) {
        let hash = unkeyed_hash(&prev, r);
        statements.push(format!(
            "UPDATE audit_log SET prev_hash = {}, hash = {} WHERE seq = {}",
            quote(&prev),
            quote(&hash),
            r.seq
        ));
        prev = hash;
    }
    statements.push(format!("UPDATE audit_head SET hash = {}", quote(&prev)));
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    t.sql(&statements);
}

/// `audit verify` must fail (exit 1, nothing on stdout) and name `entry`; returns stderr.
fn verify_fails(t: &Tessera, args: &[&str], entry: i64) -> String {
    let mut all = vec!["audit", "verify"];
    all.extend_from_slice(args);
    let out = t.run(&all, None);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{:?}: {err}", t.db_kind());
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(err.contains(&format!("entry {entry}")), "{err}");
    err
}

fn add_users(t: &Tessera, names: &[&str]) {
    for name in names {
        t.add_user(name);
    }
}

/// Issue 17: a database writer who edits an entry and recomputes the chain with the unkeyed
/// formula (the hash was plain SHA-256, needing no secret) made `audit verify` say "intact".
#[test]
fn audit_verify_fails_on_an_entry_edited_and_rechained_without_the_key() {
    for db in databases() {
        let t = Tessera::on(db);
        add_users(&t, &["alice", "bob", "carol", "dave"]);
        t.sql(&[
            "UPDATE audit_log SET reason = 'nothing happened', target = 'user:nobody' \
                 WHERE seq = 2",
        ]);
        rechain_unkeyed(&t, 2);
        let err = verify_fails(&t, &[], 2);
        assert!(err.contains("entry 2 was changed"), "{db:?}: {err}");
        // The stored chain links up, so only the key could have told.
        let rows = t.audit_rows();
        assert_eq!(rows[1].reason, "nothing happened");
        assert_eq!(rows[2].prev_hash, rows[1].hash);
    }
}

/// Issue 17: deleting the newest entries and putting back a head row copied while the log was
/// shorter leaves a log that is consistent in itself, so `audit verify` alone passes; only a
/// checkpoint kept elsewhere shows that entries are missing.
#[test]
fn audit_verify_with_a_checkpoint_sees_deleted_newest_entries() {
    for db in databases() {
        let t = Tessera::on(db);
        add_users(&t, &["alice", "bob"]);
        // What an attacker saw of the head row while the log had two entries.
        t.sql(&["CREATE TABLE head_copy AS SELECT * FROM audit_head"]);
        add_users(&t, &["carol", "dave"]);
        let checkpoint = t.ok(&["audit", "head"]);
        assert!(
            checkpoint.contains("tessera-audit-checkpoint v1 4 "),
            "{checkpoint}"
        );
        let file = t.dir.path().join("checkpoint.txt");
        std::fs::write(&file, &checkpoint).unwrap();
        let file = file.to_str().unwrap();
        assert_eq!(
            t.ok(&["audit", "verify", "--checkpoint", file]),
            "audit log intact: 4 entries, entry 4 matches the checkpoint\n"
        );

        t.sql(&[
            "DELETE FROM audit_log WHERE seq > 2",
            "DELETE FROM audit_head",
            "INSERT INTO audit_head SELECT * FROM head_copy",
        ]);
        // Consistent in itself: without the checkpoint this cannot be seen.
        assert_eq!(t.ok(&["audit", "verify"]), "audit log intact: 2 entries\n");
        let err = verify_fails(&t, &["--checkpoint", file], 4);
        assert!(err.contains("entry 4 is missing"), "{db:?}: {err}");
        let out = t.run(&["--json", "audit", "verify", "--checkpoint", file], None);
        assert_eq!(out.status.code(), Some(1));
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["first_bad_seq"], 3);

        // New entries fill the numbers again, but not with the entries the checkpoint saw.
        add_users(&t, &["erin", "frank"]);
        let err = verify_fails(&t, &["--checkpoint", file], 4);
        assert!(
            err.contains("does not match the checkpoint"),
            "{db:?}: {err}"
        );
    }
}

/// Issue 17: deleting the newest entries and moving the head row back to the last entry kept
/// (its number and hash, both in the table) made `audit verify` say "intact". The head is now
/// sealed with the key, so a head set by hand does not verify.
#[test]
fn audit_verify_sees_a_head_moved_back_by_hand() {
    for db in databases() {
        let t = Tessera::on(db);
        add_users(&t, &["alice", "bob", "carol", "dave"]);
        t.sql(&[
            "DELETE FROM audit_log WHERE seq > 2",
            "UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM audit_log WHERE seq = 2)",
        ]);
        let err = verify_fails(&t, &[], 3);
        assert!(err.contains("not sealed"), "{db:?}: {err}");
    }
}

/// Writes `n` entries on the unkeyed chain with plain SQL, as the release before the chain was
/// keyed did, and its head.
fn write_unkeyed_entries(t: &Tessera, n: i64) {
    let mut prev = "0".repeat(64);
    let mut statements = Vec::new();
    for seq in 1..=n {
        let r = AuditRow {
            seq,
            at: 1_700_000_000 + seq,
            actor: "cli:operator".into(),
            action: "user.add".into(),
            target: format!("user:u{seq}"),
            username: format!("u{seq}"),
            source: "cli".into(),
            result: "success".into(),
            reason: format!("it's entry {seq}"),
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        let hash = unkeyed_hash(&prev, &r);
        statements.push(format!(
            "INSERT INTO audit_log (seq, at, actor, action, target, username, source, result, \
             reason, prev_hash, hash) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            r.seq,
            r.at,
            quote(&r.actor),
            quote(&r.action),
            quote(&r.target),
            quote(&r.username),
            quote(&r.source),
            quote(&r.result),
            quote(&r.reason),
            quote(&prev),
            quote(&hash)
        ));
        prev = hash;
    }
    statements.push(format!(
        "UPDATE audit_head SET seq = {n}, hash = {}",
        quote(&prev)
    ));
    let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
    t.sql(&statements);
}

/// An installation the release before the chain was keyed left: migrations up to 0010 and
/// `n` entries on the unkeyed chain.
fn unkeyed_installation(db: Db, n: i64) -> Tessera {
    let t = Tessera::on(db);
    t.old_schema("0011");
    write_unkeyed_entries(&t, n);
    t
}

/// The event of a row, to compare rows before and after keying.
fn event_of(r: &AuditRow) -> (i64, i64, &str, &str, &str, &str, &str, &str, &str) {
    (
        r.seq,
        r.at,
        &r.actor,
        &r.action,
        &r.target,
        &r.username,
        &r.source,
        &r.result,
        &r.reason,
    )
}

#[test]
fn an_unkeyed_log_is_keyed_once_at_start_and_keeps_every_entry() {
    for db in databases() {
        let t = unkeyed_installation(db, 3);
        let before = t.audit_rows();
        assert_eq!(before.len(), 3);

        // The first command opens the database: migration 0011, then the keying.
        let out = t.run(&["audit", "verify"], None);
        assert_eq!(
            (out.status.code(), stdout(&out).as_str()),
            (Some(0), "audit log intact: 4 entries\n"),
            "{db:?}: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("audit log keyed"), "{}", stderr(&out));
        let after = t.audit_rows();
        assert_eq!(after.len(), 4, "{db:?}");
        for (old, new) in before.iter().zip(&after) {
            assert_eq!(event_of(old), event_of(new), "{db:?}: kept as it was");
            assert_ne!(old.hash, new.hash, "{db:?}: rehashed");
        }
        let record = &after[3];
        assert_eq!(
            (record.seq, record.action.as_str(), record.result.as_str()),
            (4, "audit.key", "success")
        );
        assert!(record.reason.contains("3 entries"), "{}", record.reason);

        // Once: the next commands leave the chain alone and append to it.
        t.add_user("alice");
        assert_eq!(t.ok(&["audit", "verify"]), "audit log intact: 5 entries\n");
        let again = t.audit_rows();
        assert_eq!(again[..4], after[..], "{db:?}");
        assert_eq!(again[4].prev_hash, after[3].hash);
    }
}

/// A log that no longer fitted its unkeyed chain when it was keyed keeps what it holds, and the
/// keying entry (which only the key could have written) says where the old chain broke.
#[test]
fn an_unkeyed_log_that_was_changed_before_keying_is_kept_and_reported() {
    for db in databases() {
        let t = unkeyed_installation(db, 3);
        t.sql(&["UPDATE audit_log SET reason = 'changed before the upgrade' WHERE seq = 2"]);
        let out = t.run(&["audit", "verify"], None);
        assert_eq!(out.status.code(), Some(0), "{db:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("did not fit the unkeyed chain"), "{err}");
        assert!(
            err.contains("warning: entry 4: ") && err.contains("entry 2 was changed"),
            "{err}"
        );
        let v = t.json(&["audit", "verify"]);
        assert_eq!(v["ok"], true);
        assert_eq!(v["entries"], 4);
        let warning = v["warnings"][0].as_str().unwrap();
        assert!(warning.contains("entry 2 was changed"), "{warning}");
        let rows = t.audit_rows();
        assert_eq!(rows[1].reason, "changed before the upgrade");
        assert_eq!(
            (rows[3].action.as_str(), rows[3].result.as_str()),
            ("audit.key", "failure")
        );
    }
}

/// Issue 17: the marker of the keyed chain (the head's seal) set back to an unkeyed head, and
/// every entry recomputed with the unkeyed formula after an edit: still does not verify, and
/// the server does not key the forged chain at its next start.
#[test]
fn a_keyed_log_set_back_to_the_unkeyed_chain_does_not_verify() {
    for db in databases() {
        let t = Tessera::on(db);
        add_users(&t, &["alice", "bob", "carol"]);
        t.sql(&["UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 2"]);
        rechain_unkeyed(&t, 1);
        t.sql(&["UPDATE audit_head SET seal = ''"]);
        let forged = t.audit_rows();
        for _ in 0..2 {
            let err = verify_fails(&t, &[], 1);
            assert!(err.contains("made without the key"), "{db:?}: {err}");
        }
        // Nothing was rehashed or added by the commands that opened the database.
        assert_eq!(t.audit_rows(), forged, "{db:?}");
        // Only the unkeyed head, no forged entries: the head alone gives it away.
        let t = Tessera::on(db);
        add_users(&t, &["alice"]);
        t.sql(&["UPDATE audit_head SET seal = 'v1:'"]);
        let err = verify_fails(&t, &[], 2);
        assert!(err.contains("not sealed"), "{db:?}: {err}");
    }
}

/// The one thing the database alone can still do: replace itself with a forged database from
/// before keying (the marker table made again, the head unsealed, every entry on the unkeyed
/// chain), which the next start keys, as it must a restored old backup. `audit verify` alone
/// then passes; a checkpoint taken before fails, and the log holds a second `audit.key` entry.
#[test]
fn a_forged_database_from_before_keying_is_caught_by_an_earlier_checkpoint() {
    for db in databases() {
        let t = Tessera::on(db);
        add_users(&t, &["alice", "bob", "carol"]);
        let file = t.dir.path().join("checkpoint.txt");
        std::fs::write(&file, t.ok(&["audit", "head"])).unwrap();
        let file = file.to_str().unwrap();

        t.sql(&[
            "UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 2",
            "UPDATE audit_head SET seal = ''",
            "CREATE TABLE audit_chain_unkeyed (id INTEGER PRIMARY KEY)",
        ]);
        rechain_unkeyed(&t, 1);
        assert_eq!(t.ok(&["audit", "verify"]), "audit log intact: 4 entries\n");
        let err = verify_fails(&t, &["--checkpoint", file], 3);
        assert!(
            err.contains("does not match the checkpoint"),
            "{db:?}: {err}"
        );
        let rows = t.audit_rows();
        assert_eq!(rows[3].action, "audit.key");
    }
}

#[test]
fn a_marker_table_made_again_on_a_keyed_log_changes_nothing() {
    let t = Tessera::new();
    add_users(&t, &["alice", "bob"]);
    let before = t.audit_rows();
    t.sql(&["CREATE TABLE audit_chain_unkeyed (id INTEGER PRIMARY KEY)"]);
    assert_eq!(t.ok(&["audit", "verify"]), "audit log intact: 2 entries\n");
    assert_eq!(t.audit_rows(), before);
}

#[test]
fn audit_head_prints_a_checkpoint_that_verify_reads_back() {
    let t = Tessera::new();
    add_users(&t, &["alice"]);
    let text = t.ok(&["audit", "head"]);
    let line = text.lines().find(|l| !l.starts_with('#')).unwrap();
    let rows = t.audit_rows();
    assert_eq!(
        line,
        format!("tessera-audit-checkpoint v1 1 {}", rows[0].hash)
    );
    let json = t.json(&["audit", "head"]);
    assert_eq!(json["seq"], 1);
    assert_eq!(json["hash"], rows[0].hash.as_str());

    // Checkpoints appended to one file, and the JSON form, are read back.
    let many = t.dir.path().join("checkpoints");
    std::fs::write(&many, &text).unwrap();
    add_users(&t, &["bob"]);
    let mut all = std::fs::read_to_string(&many).unwrap();
    all.push_str(&t.ok(&["audit", "head"]));
    std::fs::write(&many, all).unwrap();
    assert_eq!(
        t.ok(&["audit", "verify", "--checkpoint", many.to_str().unwrap()]),
        "audit log intact: 2 entries, 2 checkpoints match (the newest at entry 2)\n"
    );
    let json_file = t.dir.path().join("checkpoint.json");
    std::fs::write(&json_file, serde_json::to_string(&json).unwrap()).unwrap();
    assert_eq!(
        t.ok(&[
            "audit",
            "verify",
            "--checkpoint",
            json_file.to_str().unwrap()
        ]),
        "audit log intact: 2 entries, entry 1 matches the checkpoint\n"
    );
    // `audit verify --json` carries the same checkpoint.
    let v = t.json(&["audit", "verify"]);
    assert_eq!(v["head"]["seq"], 2);

    // A log that does not verify gets no checkpoint.
    t.sql(&["UPDATE audit_log SET reason = 'x' WHERE seq = 1"]);
    let out = t.run(&["audit", "head"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("entry 1 was changed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn audit_verify_refuses_a_malformed_checkpoint_file() {
    let t = Tessera::new();
    add_users(&t, &["alice"]);
    let dir = t.dir.path();
    let hash = "ab".repeat(32);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "no checkpoint"),
        ("words", b"hello world\n".to_vec(), "line 1: expected"),
        (
            "short-hash",
            format!("tessera-audit-checkpoint v1 1 {}\n", &hash[..10]).into_bytes(),
            "64 hexadecimal",
        ),
        (
            "bad-seq",
            format!("tessera-audit-checkpoint v1 one {hash}\n").into_bytes(),
            "not a number",
        ),
        ("binary", vec![0xff, 0xfe, 0x00, 0x01], "not UTF-8"),
        ("json", b"{\"seq\": 1}".to_vec(), "JSON"),
        ("huge", vec![b'#'; 2 << 20], "larger than"),
    ];
    for (name, bytes, reason) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = t.fails(
            &["audit", "verify", "--checkpoint", path.to_str().unwrap()],
            None,
            "invalid_input",
        );
        assert!(err.contains(name) && err.contains(reason), "{name}: {err}");
    }
    let missing = dir.join("no-such-file");
    let err = t.fails(
        &["audit", "verify", "--checkpoint", missing.to_str().unwrap()],
        None,
        "invalid_input",
    );
    assert!(err.contains("cannot open"), "{err}");
    // A well-formed checkpoint the log never had is a finding, not bad input.
    let other = dir.join("other");
    std::fs::write(&other, format!("tessera-audit-checkpoint v1 1 {hash}\n")).unwrap();
    let err = verify_fails(&t, &["--checkpoint", other.to_str().unwrap()], 1);
    assert!(err.contains("does not match the checkpoint"), "{err}");
}
