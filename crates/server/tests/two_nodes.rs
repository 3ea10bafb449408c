//! Two nodes on one PostgreSQL (issue 23): two servers sharing the database, the key file and
//! the clock, each with its own listener, writers and caches, as two `tessera serve` behind a
//! load balancer. Every rule that holds on one node must hold across both: a code is accepted
//! once, failures count in total, sessions and revocations are seen by both, a resync started
//! on one finishes on the other, and the audit log (one hash chain per writer and node) still
//! shows any change. PostgreSQL only: skipped without `TESSERA_TEST_POSTGRES_URL`. Crashes and a
//! database restart are in tests/two_nodes_crash.rs.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use common::validate::Fixture;
use common::{Db, TestServer, oracle_totp};
use serde_json::{Value, json};
use tessera_otp::KeyUri;
use tessera_server::model::{AppMode, AuditFilter};
use tessera_server::service::{Actor, TokenAction};

fn hotp_code(uri: &str, counter: u64) -> String {
    let k = KeyUri::parse(uri).unwrap();
    k.hotp().unwrap().generate(&k.secret, counter)
}

/// Node A (the fixture's server) and node B, or `None` without PostgreSQL.
async fn two_nodes() -> Option<(Fixture, TestServer)> {
    tessera_server::testing::postgres_url()?;
    let f = Fixture::new(Db::Postgres, AppMode::OtpOnly).await;
    let b = f.s.node().await;
    Some((f, b))
}

async fn validate_on(s: &TestServer, key: &str, body: &Value) -> (u16, Value) {
    let r = s
        .client
        .post(s.url("/api/v1/validate"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn result_on(s: &TestServer, key: &str, body: Value) -> String {
    let (status, v) = validate_on(s, key, &body).await;
    assert_eq!(status, 200, "{v}");
    v["result"].as_str().unwrap().to_owned()
}

/// An OTP-only user (no password: nothing to hash) with one token of `kind`; its Key URI.
async fn otp_user(f: &Fixture, name: &str, kind: &str) -> String {
    f.user_with(name, |u| u.password = None).await;
    f.token(name, kind).await
}

/// 50 tokens × 50 simultaneous identical submissions, split across the nodes: exactly one
/// accept per token, for HOTP and for TOTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_codes_sent_to_both_nodes_at_once_are_accepted_once() {
    let Some((f, b)) = two_nodes().await else {
        return;
    };
    for kind in ["hotp", "totp"] {
        let mut codes = Vec::new();
        for n in 0..50 {
            let name = format!("{kind}{n}");
            let uri = otp_user(&f, &name, kind).await;
            codes.push((name, uri));
        }
        // TOTP tokens were made at different steps (each activation moves the clock on):
        // all codes are for the step the clock shows now.
        let now = f.now();
        let mut accepted = std::collections::HashMap::<String, usize>::new();
        for group in codes.chunks(5) {
            let mut tasks = Vec::new();
            for (name, uri) in group {
                let code = if kind == "hotp" {
                    hotp_code(uri, 1)
                } else {
                    oracle_totp(uri, now)
                };
                for i in 0..50 {
                    let node = if i % 2 == 0 {
                        f.s.base.clone()
                    } else {
                        b.base.clone()
                    };
                    let client = f.s.client.clone();
                    let key = f.key.clone();
                    let body = json!({"username": name, "otp": code});
                    let name = name.clone();
                    tasks.push(tokio::spawn(async move {
                        let r = client
                            .post(format!("{node}/api/v1/validate"))
                            .bearer_auth(key)
                            .json(&body)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.status(), 200);
                        let v: Value = r.json().await.unwrap();
                        (name, v["result"] == "accept")
                    }));
                }
            }
            for t in tasks {
                let (name, ok) = t.await.unwrap();
                *accepted.entry(name).or_default() += usize::from(ok);
            }
        }
        for (name, _) in &codes {
            assert_eq!(accepted.get(name), Some(&1), "{kind}: {name}");
        }
    }
    // The log of all that, written on both nodes' chains, verifies.
    let v =
        f.s.app
            .service
            .verify_audit(&Actor::operator(), &[])
            .await
            .unwrap();
    assert!(v.ok, "{v:?}");
}

/// A code accepted on A is a replay on B, and so is an older step's code after a newer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_accepted_on_one_node_is_refused_on_the_other() {
    let Some((f, b)) = two_nodes().await else {
        return;
    };
    let uri = otp_user(&f, "ann", "totp").await;
    let now = f.now();
    let code = oracle_totp(&uri, now);
    assert_eq!(
        result_on(&f.s, &f.key, json!({"username": "ann", "otp": code})).await,
        "accept"
    );
    assert_eq!(
        result_on(&b, &f.key, json!({"username": "ann", "otp": code})).await,
        "reject"
    );
    f.s.clock.advance(30);
    let newer = oracle_totp(&uri, now + 30);
    assert_eq!(
        result_on(&b, &f.key, json!({"username": "ann", "otp": newer})).await,
        "accept"
    );
    // The step before, still inside the window, is spent on every node.
    let older = oracle_totp(&uri, now);
    for node in [&f.s, &b] {
        assert_eq!(
            result_on(node, &f.key, json!({"username": "ann", "otp": older})).await,
            "reject"
        );
    }
    assert!(
        f.last_reason("ann").await.contains("replay"),
        "{}",
        f.last_reason("ann").await
    );
}

/// Wrong codes sent to A and B in turn count in total: the token locks after the configured
/// number of failures, whichever node saw them, and stays locked on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_on_alternating_nodes_lock_the_token_after_the_total() {
    let Some((f, b)) = two_nodes().await else {
        return;
    };
    let uri = otp_user(&f, "gus", "hotp").await;
    let lockout = f.s.app.service.config().otp.lockout_failures;
    for n in 0..lockout {
        let node = if n % 2 == 0 { &f.s } else { &b };
        assert_eq!(
            result_on(node, &f.key, json!({"username": "gus", "otp": "000000"})).await,
            "reject"
        );
        // Past the delay after each failure (at most throttle_max_secs).
        f.s.clock.advance(901);
    }
    let t =
        f.s.app
            .service
            .list_tokens(&Actor::operator(), Some("gus"), 0, 0)
            .await
            .unwrap()
            .remove(0);
    assert_eq!(t.state.as_str(), "locked");
    for node in [&f.s, &b] {
        assert_eq!(
            result_on(
                node,
                &f.key,
                json!({"username": "gus", "otp": hotp_code(&uri, 1)})
            )
            .await,
            "reject"
        );
    }
    assert!(f.last_reason("gus").await.contains("locked"));
}

/// An admin signs in on A and works on B; signing out on B ends the session on A too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_session_is_one_session_on_both_nodes() {
    let Some((f, b)) = two_nodes().await else {
        return;
    };
    let token = f.s.admin_session("root").await;
    let (status, _) = b
        .call(&token, reqwest::Method::GET, "/api/v1/users", None)
        .await;
    assert_eq!(status, 200, "the session made on A works on B");
    let (status, _) = b
        .call(&token, reqwest::Method::POST, "/api/v1/auth/logout", None)
        .await;
    assert!(status == 200 || status == 204, "logout on B: {status}");
    for node in [&f.s, &b] {
        let (status, _) = node
            .call(&token, reqwest::Method::GET, "/api/v1/users", None)
            .await;
        assert_eq!(status, 401, "ended on every node");
    }
}

/// A token disabled through B is refused by A once the clock moves on (A caches a user and
/// tokens for the second they were read in: that is the bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_disabled_on_one_node_is_refused_by_the_other() {
    let Some((f, b)) = two_nodes().await else {
        return;
    };
    let uri = otp_user(&f, "ida", "hotp").await;
    assert_eq!(
        result_on(
            &f.s,
            &f.key,
            json!({"username": "ida", "otp": hotp_code(&uri, 1)})
        )
        .await,
        "accept"
    );
    let t = b
        .app
        .service
        .list_tokens(&Actor::operator(), Some("ida"), 0, 0)
        .await
        .unwrap()
        .remove(0);
    b.app
        .service
        .change_token_state(&Actor::operator(), t.id, TokenAction::Disable)
        .await
        .unwrap();
    f.s.clock.advance(1);
    assert_eq!(
        result_on(
            &f.s,
            &f.key,
            json!({"username": "ida", "otp": hotp_code(&uri, 2)})
        )
        .await,
        "reject"
    );
}

/// The first code of an automatic resync on A, the second on B: the resync completes, and its
/// codes are spent on both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_started_on_one_node_finishes_on_the_other() {
    let Some((f, b)) = two_nodes().await else {
        return;
    };
    let uri = otp_user(&f, "eric", "hotp").await;
    // Counter 100: beyond the look-ahead, so only a resync can accept it.
    assert_eq!(
        result_on(
            &f.s,
            &f.key,
            json!({"username": "eric", "otp": hotp_code(&uri, 100)})
        )
        .await,
        "reject"
    );
    assert!(f.last_reason("eric").await.contains("resync pending"));
    f.s.clock.advance(30);
    assert_eq!(
        result_on(
            &b,
            &f.key,
            json!({"username": "eric", "otp": hotp_code(&uri, 101)})
        )
        .await,
        "accept"
    );
    for node in [&f.s, &b] {
        assert_eq!(
            result_on(
                node,
                &f.key,
                json!({"username": "eric", "otp": hotp_code(&uri, 101)})
            )
            .await,
            "reject"
        );
    }
}

/// After both nodes wrote (each on chains of its own, with cross-chain checkpoints), the log
/// verifies; an entry changed, an entry deleted, or one chain's newest entries deleted together
/// with its head put back to an earlier sealed state are each found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_of_two_nodes_shows_any_change() {
    let Some((f, b)) = two_nodes().await else {
        return;
    };
    let url = f.s.app.service.config().database_url();
    let uri = otp_user(&f, "zoe", "hotp").await;
    let mut counter = 1;
    let mut send = async |node: &TestServer| {
        let code = hotp_code(&uri, counter);
        counter += 1;
        assert_eq!(
            result_on(node, &f.key, json!({"username": "zoe", "otp": code})).await,
            "accept"
        );
    };
    for _ in 0..6 {
        send(&f.s).await;
        send(&b).await;
    }
    // A head of B's chain as an attacker could copy it now (sealed, so it passes as genuine).
    let conn = || async {
        <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .unwrap()
    };
    let mut db = conn().await;
    let b_chain: i64 = sqlx::query_scalar(
        "SELECT chain FROM audit_log WHERE action = 'validate' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    sqlx::query("CREATE TABLE head_copy AS SELECT * FROM audit_head WHERE id = $1")
        .bind(b_chain)
        .execute(&mut db)
        .await
        .unwrap();
    let copied: i64 = sqlx::query_scalar("SELECT entry FROM head_copy")
        .fetch_one(&mut db)
        .await
        .unwrap();
    // More entries on that chain, then a checkpoint of another chain naming its head.
    for _ in 0..3 {
        send(&f.s).await;
        send(&b).await;
    }
    let checkpoints = async || {
        f.s.app
            .service
            .list_audit(
                &Actor::operator(),
                AuditFilter {
                    action: Some("audit.checkpoint".into()),
                    limit: 100,
                    ..AuditFilter::default()
                },
            )
            .await
            .unwrap()
    };
    let named = format!("{b_chain}:");
    let mut waited = 0;
    loop {
        let newest: i64 = sqlx::query_scalar("SELECT entry FROM audit_head WHERE id = $1")
            .bind(b_chain)
            .fetch_one(&mut db)
            .await
            .unwrap();
        let seen = checkpoints().await.iter().any(|e| {
            e.chain != b_chain
                && e.event.reason.split(' ').any(|c| {
                    c.strip_prefix(&named)
                        .and_then(|rest| rest.split(':').next())
                        .and_then(|s| s.parse::<i64>().ok())
                        .is_some_and(|seq| seq > copied && seq <= newest)
                })
        });
        if seen {
            break;
        }
        waited += 1;
        assert!(
            waited < 100,
            "no checkpoint named chain {b_chain} after its copied head"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let verify = async || {
        f.s.app
            .service
            .verify_audit(&Actor::operator(), &[])
            .await
            .unwrap()
    };
    let v = verify().await;
    assert!(v.ok, "{v:?}");

    // A changed entry.
    let (victim, reason): (i64, String) = sqlx::query_as(
        "SELECT seq, reason FROM audit_log WHERE action = 'validate' ORDER BY seq LIMIT 1",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    sqlx::query("UPDATE audit_log SET reason = 'nothing happened' WHERE seq = $1")
        .bind(victim)
        .execute(&mut db)
        .await
        .unwrap();
    let v = verify().await;
    assert!(!v.ok && v.first_bad_seq == Some(victim), "{v:?}");
    sqlx::query("UPDATE audit_log SET reason = $2 WHERE seq = $1")
        .bind(victim)
        .bind(&reason)
        .execute(&mut db)
        .await
        .unwrap();
    assert!(verify().await.ok, "put back as it was");

    // A deleted entry in the middle of a chain.
    let middle: i64 = sqlx::query_scalar(
        "SELECT seq FROM audit_log WHERE chain = $1 AND seq < $2 ORDER BY seq DESC LIMIT 1",
    )
    .bind(b_chain)
    .bind(copied)
    .fetch_one(&mut db)
    .await
    .unwrap();
    sqlx::query("CREATE TABLE row_copy AS SELECT * FROM audit_log WHERE seq = $1")
        .bind(middle)
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE seq = $1")
        .bind(middle)
        .execute(&mut db)
        .await
        .unwrap();
    let v = verify().await;
    assert!(!v.ok, "a deleted entry: {v:?}");
    sqlx::query("INSERT INTO audit_log SELECT * FROM row_copy")
        .execute(&mut db)
        .await
        .unwrap();
    assert!(verify().await.ok, "put back as it was");

    // B's chain cut back to the copied head: consistent in itself, but a checkpoint on another
    // chain saw a later entry of it.
    sqlx::query("DELETE FROM audit_log WHERE chain = $1 AND seq > $2")
        .bind(b_chain)
        .bind(copied)
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_head WHERE id = $1")
        .bind(b_chain)
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("INSERT INTO audit_head SELECT * FROM head_copy")
        .execute(&mut db)
        .await
        .unwrap();
    let v = verify().await;
    assert!(!v.ok, "a chain cut back: {v:?}");
    assert!(
        v.problem.as_deref().unwrap_or("").contains("checkpoint"),
        "{v:?}"
    );
}
