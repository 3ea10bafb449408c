//! Online key rotation as an operator runs it on two nodes under load: `tessera key add`,
//! restart, `activate`, `rewrap`, `check`, `retire`, with every login accepted throughout, a
//! node without the active key unready, and the keys that must stay refused.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::validate::Fixture;
use common::{databases, run_cli_env, stderr, stdout};
use serde_json::json;
use tessera_otp::KeyUri;
use tessera_server::model::AppMode;
use tessera_server::service::{Actor, ValidateRequest, Verdict};
use tessera_server::{Config, Service};

async fn login(svc: &Service, user: &str, code: &str) -> Verdict {
    let app = svc.list_apps(&Actor::operator()).await.unwrap().remove(0);
    let req: ValidateRequest =
        serde_json::from_value(json!({ "username": user, "otp": code })).unwrap();
    svc.validate(&app, "192.0.2.1", req).await.unwrap().result
}

fn cli(config: &Config, args: &[&str]) -> std::process::Output {
    let env: Vec<(&str, &str)> = if config.database.url.is_empty() {
        vec![]
    } else {
        vec![("TESSERA_DATABASE__URL", config.database.url.as_str())]
    };
    run_cli_env(&config.data_dir, args, None, &env)
}

fn ok(config: &Config, args: &[&str]) -> String {
    let out = cli(config, args);
    assert!(out.status.success(), "tessera {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// A node restarted with the key file as it is now: a new service on the same database.
async fn restart(f: &Fixture) -> Arc<Service> {
    let config = f.s.app.service.config().clone();
    let (app, _) = tessera_server::build(config, Arc::new(f.s.clock.clone()))
        .await
        .unwrap();
    app.service
}

/// Logins on `svc` until stopped, each user's HOTP codes in turn; every one must be accepted.
fn load(
    svc: Arc<Service>,
    users: Vec<(String, KeyUri, u64)>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<(String, KeyUri, u64)>> {
    tokio::spawn(async move {
        let mut users = users;
        while !stop.load(Ordering::Relaxed) {
            for (name, uri, counter) in users.iter_mut() {
                let code = uri.hotp().unwrap().generate(&uri.secret, *counter);
                assert_eq!(
                    login(&svc, name, &code).await,
                    Verdict::Accept,
                    "{name} at {counter}"
                );
                *counter += 1;
            }
        }
        users
    })
}

// Several threads: the CLI runs block the test's thread while the load goes on beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_while_two_nodes_serve_without_a_failed_login() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::OtpOnly).await;
        let mut users = Vec::new();
        for i in 0..20 {
            let name = format!("k{i}");
            f.user_with(&name, |u| u.password = None).await;
            users.push((
                name.clone(),
                KeyUri::parse(&f.token(&name, "hotp").await).unwrap(),
                1,
            ));
        }
        let config = f.s.app.service.config().clone();
        let node_a = f.s.app.service.clone();
        // A RADIUS client's shared secret is sealed too, and rewrapped with the seeds.
        ok(
            &config,
            &[
                "radius",
                "client",
                "add",
                "vpn",
                "--address",
                "127.0.0.1/32",
            ],
        );
        // So is a hardware token's seed in the inventory (SafeID CSV: serial, base32 seed).
        let csv = config.data_dir.join("stock.csv");
        std::fs::write(&csv, "SF0000001,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n").unwrap();
        ok(
            &config,
            &["import", "csv", "--format", "safeid", csv.to_str().unwrap()],
        );
        let list = ok(&config, &["key", "list"]);
        assert!(list.contains("keys the audit chain"), "{list}");

        // Node A serves; a key is added to the file (not active) and node B starts with it.
        let stop = Arc::new(AtomicBool::new(false));
        let a_load = load(node_a.clone(), users, stop.clone());
        assert!(ok(&config, &["key", "add"]).contains("key 2 added"));
        stop.store(true, Ordering::Relaxed);
        let users = a_load.await.unwrap();
        let node_b = restart(&f).await;
        assert_eq!(
            node_b.keys_current(),
            1,
            "{db:?}: the added key became active by itself"
        );

        // Activated while B serves: B follows, A (whose key file was read before) turns unready
        // but its logins still work with the seeds it can open.
        let stop = Arc::new(AtomicBool::new(false));
        let users_before = users.clone();
        let b_load = load(node_b.clone(), users, stop.clone());
        ok(&config, &["key", "activate", "2"]);
        node_b.refresh_active_key().await.unwrap();
        assert_eq!(node_b.keys_current(), 2);
        node_b.ready().await.unwrap();
        let unready = node_a.ready().await.unwrap_err();
        assert!(
            format!("{unready:?}").contains("key_id: 2"),
            "{db:?}: {unready:?}"
        );

        // Rewrapped while B serves: no login fails.
        let out = ok(&config, &["--json", "key", "rewrap"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["rewrapped"], 22,
            "{db:?}: 20 seeds, a RADIUS secret and a seed in stock: {out}"
        );
        assert!(v["unreadable"].as_array().unwrap().is_empty());
        let out = ok(&config, &["key", "check"]);
        assert!(out.contains("0 under another key"), "{db:?}: {out}");
        stop.store(true, Ordering::Relaxed);
        let before: u64 = users_sum(&users_before);
        let users = b_load.await.unwrap();
        assert!(
            users_sum(&users) > before,
            "{db:?}: no login ran during the rotation"
        );

        // Key 1 keys the audit chain and stays; key 2 is active and stays.
        for (id, why) in [("1", "audit log"), ("2", "is active")] {
            let out = cli(&config, &["key", "retire", id]);
            assert_eq!(out.status.code(), Some(1), "{db:?}: retire {id}");
            assert!(stderr(&out).contains(why), "{db:?}: {}", stderr(&out));
        }
        // A second rotation retires key 2 once nothing needs it; logins go on under key 3.
        ok(&config, &["key", "add"]);
        let node_c = restart(&f).await;
        ok(&config, &["key", "activate", "3"]);
        let out = cli(&config, &["key", "retire", "2"]);
        assert!(
            stderr(&out).contains("key rewrap"),
            "{db:?}: {}",
            stderr(&out)
        );
        ok(&config, &["key", "rewrap"]);
        let out = ok(&config, &["key", "retire", "2"]);
        assert!(out.contains("key 2 removed"), "{out}");
        let retired =
            std::fs::read_to_string(config.key_file().with_extension("key.retired")).unwrap();
        assert!(retired.starts_with("tessera-key v1 2 "));
        let key_file = std::fs::read_to_string(config.key_file()).unwrap();
        assert!(!key_file.contains("tessera-key v1 2 "));
        let node_d = restart(&f).await;
        node_c.refresh_active_key().await.unwrap();
        for (name, uri, counter) in &users {
            let code = uri.hotp().unwrap().generate(&uri.secret, *counter);
            assert_eq!(
                login(&node_d, name, &code).await,
                Verdict::Accept,
                "{db:?}: {name}"
            );
        }
        // Everything stored still opens with the key file as it is now.
        let out = ok(&config, &["--json", "key", "check"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["secrets"], 22, "{db:?}: {out}");
        // The token in stock, assigned after the rotations, logs its user in.
        f.user_with("stock", |u| u.password = None).await;
        ok(&config, &["inventory", "assign", "SF0000001", "stock"]);
        let seed = tessera_otp::Secret::from_base32("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").unwrap();
        let code = tessera_otp::Totp::default().generate(&seed, f.now());
        assert_eq!(
            login(&node_d, "stock", &code).await,
            Verdict::Accept,
            "{db:?}"
        );
        assert!(
            v["unreadable"].as_array().unwrap().is_empty(),
            "{db:?}: {out}"
        );
        let verified = node_d.verify_audit(&Actor::operator(), &[]).await.unwrap();
        assert!(verified.ok, "{db:?}: {:?}", verified.problem);
    }
}

fn users_sum(users: &[(String, KeyUri, u64)]) -> u64 {
    users.iter().map(|u| u.2).sum()
}
