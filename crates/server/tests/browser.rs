//! The web pages in a real browser: Debian's headless Chromium driven by playwright-core
//! (`tests/browser/*.mjs`, installed by `.ci/install-tools`), against a test server.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod web_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestServer;
use tessera_server::model::{Role, TokenState};
use tessera_server::service::Actor;
use web_support::{PASSWORD, add_totp, add_user, now};

/// The directory of the browser scripts, after checking the browser and its driver are there.
fn scripts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && Path::new("/usr/bin/chromium").exists(),
        "run .ci/install-tools first (chromium, and playwright-core in tests/browser)"
    );
    dir
}

/// Runs `node SCRIPT` in the scripts' directory with `env`; returns its output, after checking
/// it succeeded and printed `steps` "ok - " lines.
async fn run_script(script: &'static str, env: Vec<(&'static str, String)>, steps: usize) {
    let dir = scripts();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .current_dir(&dir)
            .envs(env)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("ok - ").count(), steps, "every step ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_through_login_portal_and_admin_in_chromium() {
    let dir = scripts();
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::User, true).await;
    add_user(&s, "bob", Role::User, false).await;
    add_user(&s, "root", Role::Admin, false).await;
    let (_, uri) = add_totp(&s, "alice", "Diensthandy").await;
    // The first code was used to activate; the browser logs in one time step later.
    s.clock.advance(30);
    let secret = url::Url::parse(&uri)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .unwrap()
        .1
        .into_owned();
    let base = s.base.clone();
    let at = now(&s).to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("flow.mjs")
            .current_dir(&dir)
            .env("BASE", base)
            .env("NOW", at)
            .env("PASSWORD", PASSWORD)
            .env("SECRET", secret)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser flow failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("ok - ").count(), 14, "every step ran");

    // What the browser did is in the database and the audit log.
    let bob = s.app.service.user_named("bob").await.unwrap();
    assert!(bob.otp_required && bob.phone.is_empty());
    let alice = s.app.service.user_named("alice").await.unwrap();
    let tokens = s.app.service.store().tokens_of(alice.id).await.unwrap();
    assert_eq!(tokens.len(), 1, "second device added, then removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_reset_and_the_admins_recovery_controls_in_chromium() {
    let s = TestServer::spawn().await;
    add_user(&s, "carol", Role::User, false).await;
    add_user(&s, "dave", Role::User, false).await;
    add_user(&s, "root", Role::Admin, false).await;
    add_totp(&s, "carol", "Diensthandy").await;
    add_totp(&s, "dave", "Diensthandy").await;
    let codes = s
        .app
        .service
        .admin_issue_recovery_codes(&Actor::operator(), "carol")
        .await
        .unwrap()
        .codes;
    s.clock.advance(30);
    let env = vec![
        ("BASE", s.base.clone()),
        ("NOW", now(&s).to_string()),
        ("PASSWORD", PASSWORD.to_owned()),
        ("RECOVERY_CODE", codes[0].clone()),
        (
            "OUTBOX",
            s.data_dir().join("outbox").to_string_lossy().into_owned(),
        ),
    ];
    run_script("recovery.mjs", env, 17).await;

    // What the browser did is in the database.
    let settings = s
        .app
        .service
        .recovery_settings(&Actor::operator(), "carol")
        .await
        .unwrap();
    assert!(!settings.self_service_locked && settings.delivery.overridden);
    for name in ["carol", "dave"] {
        let id = s.app.service.user_named(name).await.unwrap().id;
        let tokens = s.app.service.store().tokens_of(id).await.unwrap();
        let active = tokens
            .iter()
            .filter(|t| t.state == TokenState::Active)
            .count();
        assert_eq!(active, usize::from(name == "carol"), "{name}: {tokens:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn program_a_hardware_token_with_the_running_clock_in_chromium() {
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::User, false).await;
    add_user(&s, "root", Role::Admin, false).await;
    // 2026-12-01T13:37:00Z: not midnight, so hours and minutes are checked.
    s.clock.set(1_796_132_220);
    let env = vec![
        ("BASE", s.base.clone()),
        ("NOW", now(&s).to_string()),
        ("PASSWORD", PASSWORD.to_owned()),
    ];
    run_script("program.mjs", env, 8).await;
    let alice = s.app.service.user_named("alice").await.unwrap();
    let tokens = s.app.service.store().tokens_of(alice.id).await.unwrap();
    assert_eq!(
        (tokens.len(), tokens[0].state, tokens[0].drift),
        (1, TokenState::Active, 7)
    );
}
