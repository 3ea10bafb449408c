//! The web login and its sessions over HTTP: login with password and code, logout, the cookie's
//! flags, identical failures, a code accepted once, the idle timeout and the removal of ended
//! sessions.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod web_support;

use common::TestServer;
use tessera_server::model::Role;
use tessera_server::service::Actor;
use web_support::{Browser, PASSWORD, add_totp, add_user, hidden, next_code};

#[tokio::test]
async fn login_with_password_and_code_then_logout() {
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::User, true).await;
    let (_, uri) = add_totp(&s, "alice", "Diensthandy").await;
    let mut b = Browser::new(&s);
    let page = b.login("alice", PASSWORD, &next_code(&s, &uri)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location, "/portal");
    let set = page.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(set.starts_with("tessera_session="), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain http: {set}");

    let portal = b.get("/portal").await;
    assert_eq!(portal.status, 200);
    assert!(portal.body.contains("Diensthandy"));
    let csp = portal.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'none'"));
    assert_eq!(portal.headers["referrer-policy"], "no-referrer");

    let csrf = hidden(&portal.body, "csrf");
    let out = b.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert!(out.location.starts_with("/login"));
    assert!(!b.cookies.contains_key("tessera_session"));
    // The old cookie no longer opens anything, even if replayed.
    let mut replay = Browser::new(&s);
    replay.cookies.insert("tessera_session".into(), "x".into());
    assert_eq!(replay.get("/portal").await.status, 303);
}

#[tokio::test]
async fn the_session_cookie_is_secure_over_https() {
    let s = TestServer::spawn_with(common::Db::Sqlite, |c| {
        c.server.public_url = "https://tessera.example.org".into();
    })
    .await;
    add_user(&s, "alice", Role::User, false).await;
    let mut b = Browser::new(&s);
    let page = b.login("alice", PASSWORD, "").await;
    assert_eq!(page.status, 303);
    let set = page.headers.get("set-cookie").unwrap().to_str().unwrap();
    assert!(set.contains("; Secure"), "{set}");
}

#[tokio::test]
async fn login_failures_look_the_same_and_a_code_is_accepted_once() {
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::User, true).await;
    let (_, uri) = add_totp(&s, "alice", "phone").await;
    let code = next_code(&s, &uri);
    let mut b = Browser::new(&s);
    let wrong_password = b.login("alice", "not the password", &code).await;
    let unknown = b.login("nobody", PASSWORD, &code).await;
    let no_code = b.login("alice", PASSWORD, "").await;
    for p in [&wrong_password, &unknown, &no_code] {
        assert_eq!(p.status, 401);
        assert!(p.body.contains("Sign-in failed"));
        assert!(!b.cookies.contains_key("tessera_session"));
    }
    // The code was consumed by the attempt with the wrong password: it never works again.
    assert_eq!(b.login("alice", PASSWORD, &code).await.status, 401);
    assert_eq!(
        b.login("alice", PASSWORD, &next_code(&s, &uri))
            .await
            .status,
        303
    );
    let events = s
        .app
        .service
        .list_audit(
            &Actor::operator(),
            tessera_server::model::AuditFilter {
                action: Some("web.login".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event.reason.contains("wrong password"))
    );
    assert!(events.iter().any(|e| e.event.reason == "unknown user"));
}

#[tokio::test]
async fn the_session_ends_after_the_idle_timeout() {
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::User, false).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("alice", PASSWORD, "").await.status, 303);
    assert_eq!(b.get("/portal").await.status, 200);
    s.clock.advance(31 * 60);
    let page = b.get("/portal").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location, "/login");
}

#[tokio::test]
async fn housekeeping_removes_idle_sessions_and_keeps_live_ones() {
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::User, false).await;
    add_user(&s, "bob", Role::User, false).await;
    let mut idle = Browser::new(&s);
    assert_eq!(idle.login("alice", PASSWORD, "").await.status, 303);
    s.clock.advance(20 * 60);
    let mut live = Browser::new(&s);
    assert_eq!(live.login("bob", PASSWORD, "").await.status, 303);
    assert_eq!(s.app.service.purge_expired().await.unwrap(), 0);
    s.clock.advance(11 * 60);
    // Alice's session was idle for 31 minutes: removed; Bob's for 11: kept and still usable.
    assert_eq!(s.app.service.purge_expired().await.unwrap(), 1);
    assert_eq!(live.get("/portal").await.status, 200);
    assert_eq!(idle.get("/portal").await.status, 303);
}
