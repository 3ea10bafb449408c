//! From the invitation mail to a daily login with `tessera-auth` alone: the mailed link is
//! added with `tessera-auth add <link>` (the JSON twin of the enrollment pages), which activates
//! the token with its first code and keeps the recovery codes; the login then uses
//! `tessera-auth code`. Runs the real server on a port of its own and the built binary.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use support::Env;
use support::server::{PASSWORD, Server};
use tessera_server::model::AuditFilter;

/// Waits for the next TOTP step: a code is accepted once, and the first code used this one.
fn next_step() {
    let now = tessera_authenticator::clock::now_unix();
    std::thread::sleep(std::time::Duration::from_secs(30 - now % 30 + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitation_mail_to_login_with_tessera_auth() {
    let server = Server::spawn().await;
    server.user("alice").await;
    let link = server.invite("alice").await;
    assert!(link.contains("/enroll/"), "{link}");

    let env = Env::new();
    env.ok(&["init"]);
    let out = env.json(&["add", &link, "--name", "Laptop", "--json"]);
    assert_eq!(out["token_name"], "Laptop");
    let codes = out["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10, "{out}");
    // The recovery codes stay in the vault for reference.
    let kept = env.ok(&["recovery-codes", "Laptop"]);
    assert_eq!(kept.lines().count(), 10);
    let listed = env.json(&["list", "--json"]);
    assert_eq!(listed[0]["origin"], "enroll");
    assert_eq!(listed[0]["account"], "alice");

    // The link was used: a second add is refused with the server's code, and nothing is added.
    let again = env.run(&["add", &link]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("enrollment_used"));
    assert_eq!(env.json(&["list", "--json"]).as_array().unwrap().len(), 1);

    // The same audit rows as the pages write.
    let rows = server
        .app
        .service
        .list_audit(
            &tessera_server::service::Actor::operator(),
            AuditFilter {
                action: Some("enroll.complete".into()),
                limit: 10,
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);

    // Daily login: the VPN asks Tessera with the code tessera-auth shows.
    let key = server.app_key().await;
    next_step();
    let code = env.ok(&["code", "Laptop"]).trim().to_owned();
    assert_eq!(server.login(&key, "alice", PASSWORD, &code).await, "accept");
    // The same code again is a replay.
    assert_eq!(server.login(&key, "alice", PASSWORD, &code).await, "reject");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_link_adds_nothing() {
    let server = Server::spawn().await;
    let env = Env::new();
    env.ok(&["init"]);
    let link = format!(
        "{}/enroll/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        server.base
    );
    let out = env.run(&["add", &link]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not_found"));
    assert!(env.json(&["list", "--json"]).as_array().unwrap().is_empty());
}
