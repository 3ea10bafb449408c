//! Account reset, the last resort (SPEC F6), over HTTP: the mailed link, what it deletes and
//! keeps, identical answers, expiry, rollback; and the admin's recovery help on the CLI and the
//! API (new codes, history, reset, policies).

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod enroll_support;
mod recovery_support;
mod web_support;

use common::{Db, TestServer};
use enroll_support::{contains, database_bytes, form_token, get, post};
use recovery_support::{
    actions, code_after, enroll_new_device, enrolled_user, outbox, recover, request_reset,
};
use tessera_server::Config;
use tessera_server::model::Language;
use web_support::Browser;

async fn spawn(tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::spawn_with(Db::Sqlite, tweak).await
}

/// The `/reset/<token>` path of the newest reset mail after the first `before` mails.
async fn reset_link_after(s: &TestServer, before: usize) -> String {
    for _ in 0..100 {
        if let Some((_, text)) = outbox(s)
            .into_iter()
            .skip(before)
            .find(|(subject, _)| subject == "Reset your account" || subject == "Konto zurücksetzen")
        {
            let start = text.find("/reset/").unwrap();
            return text[start..].split_whitespace().next().unwrap().to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no reset mail after {before}");
}

#[tokio::test]
async fn reset_deletes_every_secret_keeps_the_account_and_starts_enrollment() {
    let s = spawn(|_| {}).await;
    enrolled_user(&s, "alice", Language::En).await;
    let user = s.app.service.user_named("alice").await.unwrap();
    let store = s.app.service.store().clone();
    assert!(!store.recovery_codes_of(user.id).await.unwrap().is_empty());
    // The account's stored secrets before the reset: sealed seeds and recovery-code hashes.
    let old_seeds: Vec<Vec<u8>> = store
        .tokens_of(user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.sealed_secret)
        .collect();
    let old_codes: Vec<String> = store
        .recovery_codes_of(user.id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.code_hash)
        .collect();
    assert!(!old_seeds.is_empty());

    let n = outbox(&s).len();
    let mut b = Browser::new(&s);
    let answer = request_reset(&mut b, "ALICE@example.org").await;
    assert_eq!(answer.status, 200);
    let link = reset_link_after(&s, n).await;
    let page = get(&s, &link, &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("deletes all your devices"),
        "{}",
        page.body
    );
    assert!(page.body.contains("never need a reset"));
    assert!(page.body.contains("alice"));

    let n = outbox(&s).len();
    let done = post(
        &s,
        &link,
        &[
            ("form_token", &form_token(&page.body)),
            ("password", "a brand new long password"),
            ("hint", "the usual one, with the year"),
        ],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let enroll = done.headers["location"].to_str().unwrap().to_owned();
    assert!(enroll.starts_with("/enroll/"), "{enroll}");

    // Every secret gone, the account and its settings kept.
    assert!(store.tokens_of(user.id).await.unwrap().is_empty());
    assert!(store.recovery_codes_of(user.id).await.unwrap().is_empty());
    let after = store.user(user.id).await.unwrap().unwrap();
    assert_eq!(after.email, user.email);
    assert_eq!(after.display_name, user.display_name);
    assert_eq!(after.language, user.language);
    assert_ne!(after.password_hash, user.password_hash);
    // The notification went out.
    assert!(
        outbox(&s)[n..]
            .iter()
            .any(|(subject, text)| subject == "Your account was reset" && text.contains("/not-me/")),
    );
    // The link worked once.
    assert_eq!(get(&s, &link, &[]).await.status, 404);
    // The enrollment link works: a new device.
    let enroll = enroll.split('?').next().unwrap().to_owned();
    s.clock.advance(30);
    enroll_new_device(&s, &enroll).await;
    assert_eq!(store.tokens_of(user.id).await.unwrap().len(), 1);
    let db = database_bytes(&s);
    assert!(!contains(&db, link.trim_start_matches("/reset/")));
    assert!(!contains(&db, "a brand new long password"));
    // A dump of the database (every row it holds) has none of the old secrets left.
    let dump = logical_dump(&s).await;
    for seed in &old_seeds {
        assert!(
            !dump.windows(seed.len()).any(|w| w == seed.as_slice()),
            "an old seed"
        );
    }
    for code in &old_codes {
        assert!(!contains(&dump, code), "an old recovery-code hash");
    }
}

/// Every row of the server's database, as `VACUUM INTO` writes it to a new file.
async fn logical_dump(s: &TestServer) -> Vec<u8> {
    use sqlx::Connection as _;
    let copy = s.data_dir().join("dump.db");
    let url = format!("sqlite://{}", s.data_dir().join("tessera.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "VACUUM INTO '{}'",
        copy.display()
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let bytes = std::fs::read(&copy).unwrap();
    std::fs::remove_file(&copy).unwrap();
    assert!(bytes.len() > 4096, "the dump holds the database");
    bytes
}

#[tokio::test]
async fn the_reset_request_answers_the_same_for_unknown_addresses() {
    let s = spawn(|_| {}).await;
    enrolled_user(&s, "alice", Language::En).await;
    let mut bodies = Vec::new();
    for email in ["nobody@example.org", "alice@example.org"] {
        let mut b = Browser::new(&s);
        let started = tokio::time::Instant::now();
        let page = request_reset(&mut b, email).await;
        assert!(started.elapsed() >= std::time::Duration::from_millis(250));
        bodies.push((page.status, page.body));
    }
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test]
async fn an_expired_reset_link_and_a_weak_password_change_nothing() {
    let s = spawn(|_| {}).await;
    enrolled_user(&s, "alice", Language::En).await;
    let user = s.app.service.user_named("alice").await.unwrap();
    let n = outbox(&s).len();
    let mut b = Browser::new(&s);
    request_reset(&mut b, "alice@example.org").await;
    let link = reset_link_after(&s, n).await;
    let page = get(&s, &link, &[]).await;
    let weak = post(
        &s,
        &link,
        &[
            ("form_token", &form_token(&page.body)),
            ("password", "short"),
        ],
    )
    .await;
    assert_eq!(weak.status, 400, "{}", weak.body);
    // The form again, saying why, with the configured minimum in the browser's check too.
    assert!(
        weak.body
            .contains("at least 10 and at most 1024 characters")
            && weak.body.contains(r#"minlength="10""#)
            && weak.body.contains("form_token"),
        "{}",
        weak.body
    );
    let differ = post(
        &s,
        &link,
        &[
            ("form_token", &form_token(&page.body)),
            ("password", "a brand new long password"),
            ("password2", "a brand new long passwort"),
        ],
    )
    .await;
    assert_eq!(differ.status, 400, "{}", differ.body);
    assert!(differ.body.contains("do not match"), "{}", differ.body);
    assert_eq!(
        s.app
            .service
            .store()
            .tokens_of(user.id)
            .await
            .unwrap()
            .len(),
        1
    );
    s.clock.advance(31 * 60);
    assert_eq!(get(&s, &link, &[]).await.status, 404);
    let late = post(
        &s,
        &link,
        &[
            ("form_token", &form_token(&page.body)),
            ("password", "a brand new long password"),
        ],
    )
    .await;
    assert_eq!(late.status, 404);
    assert_eq!(
        s.app
            .service
            .store()
            .tokens_of(user.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_reset_failing_midway_rolls_back_completely() {
    let s = spawn(|_| {}).await;
    enrolled_user(&s, "alice", Language::En).await;
    enrolled_user(&s, "bob", Language::En).await;
    let store = s.app.service.store().clone();
    let alice = s.app.service.user_named("alice").await.unwrap();
    let bob = s.app.service.user_named("bob").await.unwrap();
    // Bob has an open invitation; a reset of alice whose new invitation collides with it fails
    // at the very last step, after all deletions.
    let taken = tessera_server::model::Invitation {
        id_hash: "c".repeat(64),
        user_id: bob.id,
        created_at: 0,
        expires_at: i64::MAX,
        used_at: None,
        superseded: false,
        failed_attempts: 0,
        token_id: None,
    };
    store.insert_invitation(&taken).await.unwrap();
    let tokens = store.tokens_of(alice.id).await.unwrap();
    let codes = store.recovery_codes_of(alice.id).await.unwrap();
    let result = store
        .reset_account(
            alice.id,
            None,
            "new-hash",
            "hint",
            &tessera_server::model::Invitation {
                user_id: alice.id,
                ..taken.clone()
            },
            1_700_000_100,
        )
        .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(store.tokens_of(alice.id).await.unwrap(), tokens);
    assert_eq!(store.recovery_codes_of(alice.id).await.unwrap(), codes);
    let after = store.user(alice.id).await.unwrap().unwrap();
    assert_eq!(after.password_hash, alice.password_hash);
}

#[tokio::test]
async fn an_admin_reissues_codes_on_the_cli_and_sees_the_history() {
    let s = spawn(|_| {}).await;
    let old = enrolled_user(&s, "alice", Language::En).await;
    let dir = s.data_dir();
    let out = tokio::task::spawn_blocking(move || {
        common::run_cli(&dir, &["recovery", "issue", "alice", "--json"], None)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let issued: serde_json::Value = serde_json::from_str(&common::stdout(&out)).unwrap();
    let codes: Vec<String> = issued["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    // The old set no longer works, the new one does.
    let n = outbox(&s).len();
    let mut b = Browser::new(&s);
    recover(&mut b, "alice", &old[5]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(outbox(&s).len(), n);
    recover(&mut b, "alice", &codes[0]).await;
    code_after(&s, n).await;

    let dir = s.data_dir();
    let out = tokio::task::spawn_blocking(move || {
        common::run_cli(&dir, &["recovery", "history", "alice"], None)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let text = common::stdout(&out);
    assert!(
        text.contains("recovery.issue") && text.contains("recovery.start"),
        "{text}"
    );
    assert!(!text.contains("web.login"), "only recovery events: {text}");
}

#[tokio::test]
async fn an_admin_resets_an_account_and_mails_new_codes_over_the_api_after_reauth() {
    use reqwest::Method;
    use serde_json::json;
    let s = spawn(|c| {
        c.recovery.admin_delivery = tessera_server::config::AdminDelivery::Email;
    })
    .await;
    enrolled_user(&s, "alice", Language::De).await;
    let admin = s.admin_session("root").await;
    let body = json!({"password": "a brand new long password", "hint": "hint"});
    let (st, answer) = s
        .call(
            &admin,
            Method::POST,
            "/api/v1/users/alice/reset",
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        (st, answer["error"]["code"].as_str()),
        (403, Some("reauth_required"))
    );
    let user = s.app.service.user_named("alice").await.unwrap();
    assert_eq!(
        s.app
            .service
            .store()
            .tokens_of(user.id)
            .await
            .unwrap()
            .len(),
        1
    );
    let (st, _) = s
        .call(
            &admin,
            Method::POST,
            "/api/v1/auth/reauth",
            Some(json!({"password": common::ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(st, 200);
    let n = outbox(&s).len();
    let (st, answer) = s
        .call(
            &admin,
            Method::POST,
            "/api/v1/users/alice/recovery-codes",
            None,
        )
        .await;
    assert_eq!(st, 200, "{answer}");
    assert_eq!(
        answer["codes"].as_array().unwrap().len(),
        0,
        "mailed, not shown"
    );
    assert_eq!(answer["emailed_to"], "alice@example.org");
    assert!(
        outbox(&s)[n..]
            .iter()
            .any(|(subject, _)| subject == "Neue Wiederherstellungscodes")
    );
    assert!(
        outbox(&s)[n..].iter().any(|(subject, text)| {
            subject == "Neue Wiederherstellungscodes ausgestellt" && text.contains("/not-me/")
        }),
        "the user is notified"
    );

    let (st, answer) = s
        .call(
            &admin,
            Method::POST,
            "/api/v1/users/alice/reset",
            Some(body),
        )
        .await;
    assert_eq!(st, 200, "{answer}");
    assert!(
        answer["enrollment_link"]
            .as_str()
            .unwrap()
            .contains("/enroll/")
    );
    assert!(
        s.app
            .service
            .store()
            .tokens_of(user.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.app
            .service
            .store()
            .recovery_codes_of(user.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        outbox(&s)
            .iter()
            .any(|(subject, _)| subject == "Ihr Konto wurde zurückgesetzt")
    );
}

#[tokio::test]
async fn the_cli_sets_a_users_recovery_policy() {
    let s = spawn(|_| {}).await;
    enrolled_user(&s, "alice", Language::En).await;
    let dir = s.data_dir();
    let out = tokio::task::spawn_blocking(move || {
        common::run_cli(
            &dir,
            &[
                "recovery",
                "policy",
                "alice",
                "--self-service",
                "off",
                "--revoke-old-devices",
                "on",
            ],
            None,
        )
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let user = s.app.service.user_named("alice").await.unwrap();
    let policy = s
        .app
        .service
        .store()
        .recovery_policy(user.id)
        .await
        .unwrap();
    assert_eq!(policy.self_recovery, Some(false));
    assert_eq!(policy.revoke_on_recovery, Some(true));
    let log = actions(&s, "alice").await;
    assert!(
        log.iter().any(|(a, _)| a == "user.recovery_policy"),
        "{log:?}"
    );
}
