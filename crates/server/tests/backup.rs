//! Backup and restore as an operator runs them after losing a server: a backup taken while
//! logins go on, the server lost, the database put back on a new installation with the old key
//! file. No code accepted after the backup is accepted again (anti-rollback), the audit log
//! verifies and records the restore, and a restore that cannot be right is refused.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::sync::Arc;

use common::validate::Fixture;
use common::{Db, databases, oracle_totp};
use serde_json::json;
use tessera_otp::KeyUri;
use tessera_server::backup::{RestoreOptions, restore};
use tessera_server::clock::Clock as _;
use tessera_server::model::AppMode;
use tessera_server::service::{Actor, ValidateRequest, Verdict};
use tessera_server::{Config, Service};
use zeroize::Zeroizing;

const USERS: usize = 50;
const ROUNDS: u64 = 10;

/// A new installation's configuration for `db`: its own data directory holding a copy of the
/// lost installation's key file (the backup does not hold it) and, on PostgreSQL, a new empty
/// database.
async fn new_installation(db: Db, old: &Config, dir: &std::path::Path) -> Config {
    let mut config = Config {
        data_dir: dir.join("data"),
        ..old.clone()
    };
    config.database.url = String::new();
    if db == Db::Postgres {
        let base = tessera_server::testing::postgres_url().unwrap();
        config.database.url = tessera_server::testing::fresh_postgres_database(&base).await;
    }
    std::fs::create_dir_all(&config.data_dir).unwrap();
    std::fs::copy(old.key_file(), config.key_file()).unwrap();
    config
}

async fn login(svc: &Service, user: &str, code: &str) -> Verdict {
    let app = svc.list_apps(&Actor::operator()).await.unwrap().remove(0);
    let req: ValidateRequest =
        serde_json::from_value(json!({ "username": user, "otp": code })).unwrap();
    svc.validate(&app, "192.0.2.1", req).await.unwrap().result
}

#[tokio::test]
async fn no_code_accepted_after_the_backup_is_accepted_after_the_restore() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::OtpOnly).await;
        let mut tokens = Vec::new();
        for i in 0..USERS {
            let name = format!("u{i}");
            // No password: the application checks codes only (and Argon2 would slow the set-up).
            f.user_with(&name, |u| {
                u.otp_required = true;
                u.password = None;
            })
            .await;
            let hotp = KeyUri::parse(&f.token(&name, "hotp").await).unwrap();
            let totp = f.token(&name, "totp").await;
            tokens.push((name, hotp, totp));
        }
        let svc = f.s.app.service.clone();
        let work = tempfile::tempdir().unwrap();
        let file = work.path().join("tessera.backup");
        let done = svc
            .backup(
                &Actor::operator(),
                &file,
                Some(Zeroizing::new(b"backup passphrase".to_vec())),
            )
            .await
            .unwrap();
        assert!(done.encrypted);
        assert_eq!(done.manifest.tokens, 2 * USERS as i64, "{db:?}");
        // 1,000 codes accepted after the backup: ten rounds of one HOTP and one TOTP code per
        // user (HOTP counters 1-10 after activation used 0; TOTP one step per round).
        let mut used = Vec::new();
        for round in 1..=ROUNDS {
            f.s.clock.advance(30);
            for (name, hotp, totp) in &tokens {
                let h = hotp.hotp().unwrap().generate(&hotp.secret, round);
                let t = oracle_totp(totp, f.now());
                for code in [h, t] {
                    assert_eq!(
                        f.result(json!({"username": name, "otp": code})).await,
                        "accept"
                    );
                    used.push((name.clone(), code));
                }
            }
        }
        assert_eq!(used.len(), 1000);

        // The server is lost; a new installation gets the key file and the backup.
        let new_dir = tempfile::tempdir().unwrap();
        let config = new_installation(db, f.s.app.service.config(), new_dir.path()).await;
        let clock = f.s.clock.clone();
        let restored = restore(
            config.clone(),
            Arc::new(clock.clone()),
            &file,
            RestoreOptions {
                passphrase: Some(Zeroizing::new(b"backup passphrase".to_vec())),
                ..RestoreOptions::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(restored.rolled_forward.totp_tokens, USERS as u64, "{db:?}");
        assert_eq!(restored.rolled_forward.hotp_tokens, USERS as u64);
        assert_eq!(restored.hotp_advance, 10, "the configured look-ahead");
        assert!(!config.data_dir.join("restore-in-progress").exists());

        let (app, _) = tessera_server::build(config.clone(), Arc::new(clock.clone()))
            .await
            .unwrap();
        let svc2 = app.service;
        for (name, code) in &used {
            assert_eq!(
                login(&svc2, name, code).await,
                Verdict::Reject,
                "{db:?}: {name}'s code used after the backup was accepted again"
            );
        }
        // The tokens go on working: TOTP from the step after the refused ones, HOTP from the
        // counter moved forward by the look-ahead (the activation left it at 1).
        clock.advance(60);
        let (name, hotp, totp) = &tokens[0];
        let t = oracle_totp(totp, u64::try_from(clock.now()).unwrap());
        assert_eq!(login(&svc2, name, &t).await, Verdict::Accept, "{db:?}");
        let h = hotp.hotp().unwrap().generate(&hotp.secret, 1 + 10);
        assert_eq!(login(&svc2, name, &h).await, Verdict::Accept, "{db:?}");

        // The restored log verifies and says what happened.
        let verified = svc2.verify_audit(&Actor::operator(), &[]).await.unwrap();
        assert!(verified.ok, "{db:?}: {:?}", verified.problem);
        let entries = svc2
            .store()
            .list_audit(&tessera_server::model::AuditFilter {
                action: Some("backup.restore".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(entries.len(), 1, "{db:?}");
        assert!(
            entries[0]
                .event
                .reason
                .contains("50 TOTP and 50 HOTP tokens"),
            "{}",
            entries[0].event.reason
        );
    }
}

#[tokio::test]
async fn a_restore_that_cannot_be_right_is_refused_and_changes_nothing() {
    let f = Fixture::new(Db::Sqlite, AppMode::OtpOnly).await;
    f.user("alice", true).await;
    f.token("alice", "totp").await;
    let svc = f.s.app.service.clone();
    let work = tempfile::tempdir().unwrap();
    let plain = work.path().join("plain.backup");
    let enc = work.path().join("enc.backup");
    svc.backup(&Actor::operator(), &plain, None).await.unwrap();
    svc.backup(
        &Actor::operator(),
        &enc,
        Some(Zeroizing::new(b"pw".to_vec())),
    )
    .await
    .unwrap();
    // An existing file is never overwritten.
    let again = svc
        .backup(&Actor::operator(), &plain, None)
        .await
        .unwrap_err();
    assert!(again.to_string().contains("exists"), "{again}");

    let clock = || Arc::new(f.s.clock.clone());
    let dir = tempfile::tempdir().unwrap();
    let config = new_installation(Db::Sqlite, svc.config(), dir.path()).await;
    let db = config.data_dir.join("tessera.db");
    let opts = |pass: Option<&[u8]>, force: bool| RestoreOptions {
        passphrase: pass.map(|p| Zeroizing::new(p.to_vec())),
        force,
        hotp_advance: None,
    };
    let err = |r: anyhow::Result<_>| format!("{:#}", r.expect_err("refused"));

    let e = err(restore(config.clone(), clock(), &enc, opts(Some(b"wrong"), false)).await);
    assert!(e.contains("wrong passphrase"), "{e}");
    let e = err(restore(config.clone(), clock(), &enc, opts(None, false)).await);
    assert!(e.contains("passphrase_required"), "{e}");
    // A cut file, and a file that is no backup.
    let bytes = std::fs::read(&plain).unwrap();
    let cut = work.path().join("cut.backup");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = err(restore(config.clone(), clock(), &cut, opts(None, false)).await);
    assert!(e.contains("truncated"), "{e}");
    let e = err(restore(
        config.clone(),
        clock(),
        &db.with_extension("x"),
        opts(None, false),
    )
    .await);
    assert!(e.contains("cannot open"), "{e}");
    assert!(!db.exists(), "a refused restore wrote a database");

    // Without the key file nothing can be opened: refused before anything is written.
    let key = config.key_file();
    std::fs::rename(&key, key.with_extension("aside")).unwrap();
    let e = err(restore(config.clone(), clock(), &plain, opts(None, false)).await);
    assert!(e.contains("no key file"), "{e}");
    std::fs::rename(key.with_extension("aside"), &key).unwrap();

    // A key file of another installation: the audit log does not verify, nothing is used.
    let other = tempfile::tempdir().unwrap();
    let mut foreign = new_installation(Db::Sqlite, svc.config(), other.path()).await;
    std::fs::remove_file(foreign.key_file()).unwrap();
    tessera_server::crypto::KeyRing::load_or_create(&foreign.key_file()).unwrap();
    foreign.database.url = String::new();
    let e = err(restore(foreign.clone(), clock(), &plain, opts(None, false)).await);
    assert!(e.contains("does not verify"), "{e}");
    // The marker stays: the server refuses a database that was not rolled forward.
    let e = format!(
        "{:#}",
        tessera_server::build(foreign, clock())
            .await
            .expect_err("refused")
    );
    assert!(
        e.contains("restore into this installation did not finish"),
        "{e}"
    );

    // A good restore, then a second one over it only with --force, keeping the first.
    restore(config.clone(), clock(), &plain, opts(None, false))
        .await
        .unwrap();
    let e = err(restore(config.clone(), clock(), &plain, opts(None, false)).await);
    assert!(e.contains("--force"), "{e}");
    let done = restore(config.clone(), clock(), &enc, opts(Some(b"pw"), true))
        .await
        .unwrap();
    let kept = done.previous.expect("the replaced database is kept");
    assert!(std::path::Path::new(&kept).exists(), "{kept}");
}

#[tokio::test]
async fn a_backup_taken_while_logins_go_on_is_consistent() {
    for db in databases() {
        let f = Arc::new(Fixture::new(db, AppMode::OtpOnly).await);
        let mut uris = Vec::new();
        for i in 0..4 {
            let name = format!("busy{i}");
            f.user_with(&name, |u| u.password = None).await;
            uris.push((
                name.clone(),
                KeyUri::parse(&f.token(&name, "hotp").await).unwrap(),
            ));
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut load = Vec::new();
        for (name, uri) in uris.clone() {
            let (f, stop) = (f.clone(), stop.clone());
            load.push(tokio::spawn(async move {
                let mut counter = 1;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let code = uri.hotp().unwrap().generate(&uri.secret, counter);
                    assert_eq!(
                        f.result(json!({"username": name, "otp": code})).await,
                        "accept"
                    );
                    counter += 1;
                }
                counter - 1
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let work = tempfile::tempdir().unwrap();
        let file = work.path().join("busy.backup");
        let svc = f.s.app.service.clone();
        let done = svc.backup(&Actor::operator(), &file, None).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut accepted = 0;
        for task in load {
            accepted += task.await.unwrap();
        }
        assert!(accepted > 0);

        // The copy restores, its audit log verifies up to (at least) the head the backup saw,
        // and it holds every token.
        let dir = tempfile::tempdir().unwrap();
        let config = new_installation(db, svc.config(), dir.path()).await;
        let clock = Arc::new(f.s.clock.clone());
        let restored = restore(config, clock, &file, RestoreOptions::default())
            .await
            .unwrap();
        assert!(
            restored.audit_entries >= done.manifest.audit_seq,
            "{db:?}: {} < {}",
            restored.audit_entries,
            done.manifest.audit_seq
        );
        assert_eq!(restored.rolled_forward.hotp_tokens, 4, "{db:?}");
    }
}
