//! Validation end to end (SPEC F2): a real server on a random port, a `FixedClock`, SQLite and
//! PostgreSQL. Every rule of the validate API has a test here.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use common::validate::{Fixture, PASSWORD};
use common::{Db, databases, oracle_totp};
use serde_json::{Value, json};
use tessera_otp::{Hotp, KeyUri, Secret};
use tessera_server::model::AppMode;
use tessera_server::service::{Actor, UserChanges};

/// The time TOTP tests start at: the step after the one used for activation.
const NOW: u64 = 1_700_000_030;

fn hotp_code(uri: &str, counter: u64) -> String {
    let k = KeyUri::parse(uri).unwrap();
    k.hotp().unwrap().generate(&k.secret, counter)
}

#[tokio::test]
async fn valid_code_accepted_once_then_replay_refused() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::PasswordAndOtp).await;
        f.user("alice", true).await;
        let uri = f.token("alice", "totp").await;
        let code = oracle_totp(&uri, NOW);
        let body = json!({"username": "alice", "password": PASSWORD, "otp": code});
        assert_eq!(f.result(body.clone()).await, "accept", "{db:?}");
        assert_eq!(f.result(body).await, "reject", "{db:?}: replay");
        assert!(
            f.last_reason("alice").await.contains("replay"),
            "{}",
            f.last_reason("alice").await
        );
        // HOTP: the reused counter lies behind the look-ahead window; still named a replay.
        f.user("alf", true).await;
        let uri = f.token("alf", "hotp").await;
        let body = json!({"username": "alf", "password": PASSWORD, "otp": hotp_code(&uri, 1)});
        assert_eq!(f.result(body.clone()).await, "accept", "{db:?}");
        assert_eq!(f.result(body).await, "reject", "{db:?}: replay");
        assert!(f.last_reason("alf").await.contains("replay"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_submissions_of_one_code_accept_exactly_one() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::OtpOnly).await;
        f.user("bob", true).await;
        let uri = f.token("bob", "hotp").await;
        let body = json!({"username": "bob", "otp": hotp_code(&uri, 1)});
        let f = std::sync::Arc::new(f);
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let f = f.clone();
                let body = body.clone();
                tokio::spawn(async move { f.result(body).await })
            })
            .collect();
        let mut accepted = 0;
        for t in tasks {
            if t.await.unwrap() == "accept" {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 1, "{db:?}");
    }
}

#[tokio::test]
async fn codes_from_oathtool_are_accepted_by_a_running_server() {
    let f = Fixture::new(Db::Sqlite, AppMode::OtpOnly).await;
    f.user("carol", true).await;
    let uri = f.token("carol", "totp").await;
    let secret = KeyUri::parse(&uri).unwrap().secret.to_base32();
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-b", &secret, "--now", "2023-11-14 22:13:50 UTC"])
        .output()
        .expect("oathtool is installed by .ci/install-tools");
    let code = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(code.len(), 6);
    assert_eq!(
        f.result(json!({"username": "carol", "otp": code})).await,
        "accept"
    );
    // HOTP from oathtool: counter 1 (0 was used to activate).
    f.user("carl", true).await;
    let uri = f.token("carl", "hotp").await;
    let secret = KeyUri::parse(&uri).unwrap().secret.to_base32();
    let out = std::process::Command::new("oathtool")
        .args(["--hotp", "-c", "1", "-b", &secret])
        .output()
        .unwrap();
    let code = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(
        f.result(json!({"username": "carl", "otp": code})).await,
        "accept"
    );
}

#[tokio::test]
async fn drift_is_learned_and_applied() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::OtpOnly).await;
        f.user("dan", true).await;
        let uri = f.token("dan", "totp").await;
        // The token's clock runs one step fast: accepted within the window, drift learned.
        assert_eq!(
            f.result(json!({"username": "dan", "otp": oracle_totp(&uri, NOW + 30)}))
                .await,
            "accept"
        );
        let t =
            &f.s.app
                .service
                .list_tokens(&Actor::operator(), Some("dan"), 0, 0)
                .await
                .unwrap()[0];
        assert_eq!(t.drift, 1, "{db:?}");
        // Later it runs two steps fast: outside ±1 of the server's step, inside ±1 of the
        // drift-corrected one.
        f.s.clock.advance(120);
        assert_eq!(
            f.result(json!({"username": "dan", "otp": oracle_totp(&uri, NOW + 120 + 60)}))
                .await,
            "accept",
            "{db:?}: drift applied"
        );
        let t =
            &f.s.app
                .service
                .list_tokens(&Actor::operator(), Some("dan"), 0, 0)
                .await
                .unwrap()[0];
        assert_eq!(t.drift, 2);
    }
}

#[tokio::test]
async fn automatic_resync_after_two_consecutive_codes() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::OtpOnly).await;
        f.user("erin", true).await;
        let uri = f.token("erin", "totp").await;
        // Ten steps fast: refused, but remembered.
        assert_eq!(
            f.result(json!({"username": "erin", "otp": oracle_totp(&uri, NOW + 300)}))
                .await,
            "reject"
        );
        assert!(
            f.last_reason("erin").await.contains("resync pending"),
            "{}",
            f.last_reason("erin").await
        );
        // The next code of the token, one step later, completes the resync.
        f.s.clock.advance(30);
        assert_eq!(
            f.result(json!({"username": "erin", "otp": oracle_totp(&uri, NOW + 330)}))
                .await,
            "accept",
            "{db:?}"
        );
        assert!(f.last_reason("erin").await.contains("automatic resync"));
        let t =
            &f.s.app
                .service
                .list_tokens(&Actor::operator(), Some("erin"), 0, 0)
                .await
                .unwrap()[0];
        assert_eq!(t.drift, 10);

        // HOTP far ahead (counter 100, look-ahead is 10): the same two-step resync.
        f.user("eric", true).await;
        let uri = f.token("eric", "hotp").await;
        assert_eq!(
            f.result(json!({"username": "eric", "otp": hotp_code(&uri, 100)}))
                .await,
            "reject"
        );
        f.s.clock.advance(30);
        assert_eq!(
            f.result(json!({"username": "eric", "otp": hotp_code(&uri, 101)}))
                .await,
            "accept",
            "{db:?}"
        );
        assert_eq!(
            f.result(json!({"username": "eric", "otp": hotp_code(&uri, 101)}))
                .await,
            "reject"
        );
        f.s.clock.advance(30);
        assert_eq!(
            f.result(json!({"username": "eric", "otp": hotp_code(&uri, 102)}))
                .await,
            "accept"
        );
    }
}

#[tokio::test]
async fn automatic_resync_can_be_switched_off() {
    let f = Fixture::with(Db::Sqlite, AppMode::OtpOnly, |c| {
        c.validate.auto_resync = false
    })
    .await;
    f.user("fred", true).await;
    let uri = f.token("fred", "hotp").await;
    assert_eq!(
        f.result(json!({"username": "fred", "otp": hotp_code(&uri, 100)}))
            .await,
        "reject"
    );
    f.s.clock.advance(30);
    assert_eq!(
        f.result(json!({"username": "fred", "otp": hotp_code(&uri, 101)}))
            .await,
        "reject"
    );
}

#[tokio::test]
async fn failures_throttle_then_lock_until_unlock_or_cool_down() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::OtpOnly).await;
        f.user("gus", true).await;
        let uri = f.token("gus", "hotp").await;
        let svc = &f.s.app.service;
        // After a wrong code, even the right one is refused until the delay passed.
        assert_eq!(
            f.result(json!({"username": "gus", "otp": "000000"})).await,
            "reject"
        );
        assert_eq!(
            f.result(json!({"username": "gus", "otp": hotp_code(&uri, 1)}))
                .await,
            "reject"
        );
        assert!(f.last_reason("gus").await.contains("throttled"));
        f.s.clock.advance(30);
        assert_eq!(
            f.result(json!({"username": "gus", "otp": hotp_code(&uri, 1)}))
                .await,
            "accept",
            "{db:?}"
        );
        // Ten failures in a row (waiting out each delay) lock the token.
        for _ in 0..10 {
            assert_eq!(
                f.result(json!({"username": "gus", "otp": "000000"})).await,
                "reject"
            );
            f.s.clock.advance(901);
        }
        let t = svc
            .list_tokens(&Actor::operator(), Some("gus"), 0, 0)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(t.state.as_str(), "locked", "{db:?}");
        assert_eq!(
            f.result(json!({"username": "gus", "otp": hotp_code(&uri, 2)}))
                .await,
            "reject"
        );
        assert!(f.last_reason("gus").await.contains("locked"));
        svc.unlock_token(&Actor::operator(), t.id).await.unwrap();
        assert_eq!(
            f.result(json!({"username": "gus", "otp": hotp_code(&uri, 2)}))
                .await,
            "accept"
        );
        // Locked again, then the cool-down (60 minutes) unlocks it by itself.
        for _ in 0..10 {
            f.result(json!({"username": "gus", "otp": "000000"})).await;
            f.s.clock.advance(901);
        }
        assert_eq!(
            f.result(json!({"username": "gus", "otp": hotp_code(&uri, 3)}))
                .await,
            "reject"
        );
        f.s.clock.advance(3601);
        assert_eq!(
            f.result(json!({"username": "gus", "otp": hotp_code(&uri, 3)}))
                .await,
            "accept",
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn code_is_checked_before_the_password() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::PasswordAndOtp).await;
        f.user("hal", true).await;
        let uri = f.token("hal", "hotp").await;
        let svc = &f.s.app.service;
        // Wrong code and wrong password: the password is never looked at.
        f.result(json!({"username": "hal", "password": "wrong", "otp": "000000"}))
            .await;
        let u = svc.user_named("hal").await.unwrap();
        assert_eq!(u.fail_count, 0, "{db:?}: password not checked");
        assert!(f.last_reason("hal").await.contains("wrong code"));
        // Right code, wrong password: counts against the account, not the token.
        f.s.clock.advance(30);
        let r = f
            .result(json!({"username": "hal", "password": "wrong", "otp": hotp_code(&uri, 1)}))
            .await;
        assert_eq!(r, "reject");
        assert!(f.last_reason("hal").await.contains("wrong password"));
        let u = svc.user_named("hal").await.unwrap();
        assert_eq!(u.fail_count, 1, "{db:?}");
        let t = svc
            .list_tokens(&Actor::operator(), Some("hal"), 0, 0)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(t.fail_count, 0, "{db:?}: the token is not blamed");
        // Both right: accepted, account failures reset.
        assert_eq!(
            f.result(json!({"username": "hal", "password": PASSWORD, "otp": hotp_code(&uri, 2)}))
                .await,
            "accept"
        );
        assert_eq!(svc.user_named("hal").await.unwrap().fail_count, 0);
    }
}

#[tokio::test]
async fn wrong_passwords_throttle_the_account() {
    let f = Fixture::with(Db::Sqlite, AppMode::PasswordAndOtp, |c| {
        c.validate.account_lockout_failures = 3;
    })
    .await;
    f.user("ida", false).await;
    for _ in 0..3 {
        assert_eq!(
            f.result(json!({"username": "ida", "password": "nope"}))
                .await,
            "reject"
        );
    }
    assert_eq!(
        f.result(json!({"username": "ida", "password": PASSWORD}))
            .await,
        "reject"
    );
    assert!(f.last_reason("ida").await.contains("account throttled"));
    f.s.clock.advance(31);
    assert_eq!(
        f.result(json!({"username": "ida", "password": PASSWORD}))
            .await,
        "accept"
    );
}

#[tokio::test]
async fn single_field_pass_is_split_by_the_code_length() {
    let f = Fixture::new(Db::Sqlite, AppMode::PasswordAndOtp).await;
    f.user("jan", true).await;
    let uri = f.token("jan", "hotp").await;
    let pass = format!("{PASSWORD}{}", hotp_code(&uri, 1));
    assert_eq!(
        f.result(json!({"username": "jan", "pass": pass})).await,
        "accept"
    );
    // A password that itself ends in digits works too.
    f.user("jo", false).await;
    assert_eq!(
        f.result(json!({"username": "jo", "pass": PASSWORD})).await,
        "accept",
        "no token: all password"
    );
}

#[tokio::test]
async fn users_without_tokens_follow_the_otp_requirement() {
    let f = Fixture::new(Db::Sqlite, AppMode::PasswordAndOtp).await;
    f.user("kai", false).await;
    f.user("kim", true).await;
    assert_eq!(
        f.result(json!({"username": "kai", "password": PASSWORD}))
            .await,
        "accept"
    );
    assert_eq!(
        f.result(json!({"username": "kim", "password": PASSWORD}))
            .await,
        "reject"
    );
    assert!(f.last_reason("kim").await.contains("no active token"));
    // Switching the requirement on closes the password-only path.
    f.s.app
        .service
        .update_user(
            &Actor::operator(),
            "kai",
            UserChanges {
                otp_required: Some(true),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        f.result(json!({"username": "kai", "password": PASSWORD}))
            .await,
        "reject"
    );
}

#[tokio::test]
async fn otp_only_mode_never_looks_at_a_password() {
    let f = Fixture::new(Db::Sqlite, AppMode::OtpOnly).await;
    f.user("lea", true).await;
    let uri = f.token("lea", "hotp").await;
    assert_eq!(
        f.result(json!({"username": "lea", "otp": hotp_code(&uri, 1)}))
            .await,
        "accept"
    );
    assert_eq!(
        f.result(json!({"username": "LEA", "otp": hotp_code(&uri, 2)}))
            .await,
        "accept",
        "names ignore case"
    );
}

#[tokio::test]
async fn disabled_users_and_unknown_users_are_rejected_alike() {
    let f = Fixture::new(Db::Sqlite, AppMode::OtpOnly).await;
    f.user("max", true).await;
    let uri = f.token("max", "hotp").await;
    f.s.app
        .service
        .update_user(
            &Actor::operator(),
            "max",
            UserChanges {
                state: Some("disabled".parse().unwrap()),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    let (_, a) = f
        .validate(json!({"username": "max", "otp": hotp_code(&uri, 1)}))
        .await;
    let (_, b) = f
        .validate(json!({"username": "nobody", "otp": "123456"}))
        .await;
    assert_eq!(a, b, "the client learns nothing about which");
    assert_eq!(a["result"], "reject");
    assert_eq!(f.last_reason("max").await, "user disabled");
    assert_eq!(f.last_reason("nobody").await, "unknown user");
}

#[tokio::test]
async fn revoked_and_disabled_tokens_never_match() {
    let f = Fixture::new(Db::Sqlite, AppMode::OtpOnly).await;
    f.user("ned", true).await;
    let uri = f.token("ned", "hotp").await;
    let svc = &f.s.app.service;
    let t = svc
        .list_tokens(&Actor::operator(), Some("ned"), 0, 0)
        .await
        .unwrap()
        .remove(0);
    svc.change_token_state(&Actor::operator(), t.id, "disable".parse_action())
        .await
        .unwrap();
    assert_eq!(
        f.result(json!({"username": "ned", "otp": hotp_code(&uri, 1)}))
            .await,
        "reject"
    );
}

trait ParseAction {
    fn parse_action(&self) -> tessera_server::service::TokenAction;
}

impl ParseAction for str {
    fn parse_action(&self) -> tessera_server::service::TokenAction {
        serde_json::from_value(json!(self)).unwrap()
    }
}

#[tokio::test]
async fn malformed_requests_get_4xx_never_500() {
    let f = Fixture::new(Db::Sqlite, AppMode::PasswordAndOtp).await;
    f.user("olga", true).await;
    f.token("olga", "hotp").await;
    let huge = "9".repeat(60_000);
    let bodies: Vec<(String, u16)> = vec![
        ("{not json".into(), 400),
        ("{}".into(), 400),
        (r#"{"username": 7}"#.into(), 400),
        (r#"{"username": "olga", "otp": 123456}"#.into(), 400),
        (
            r#"{"username": "olga", "password": "x", "pass": "y"}"#.into(),
            400,
        ),
        (r#"{"username": ""}"#.into(), 400),
        (format!(r#"{{"username": "{huge}"}}"#), 400),
        (format!(r#"{{"username": "olga", "otp": "{huge}"}}"#), 200),
        (r#"{"username": "olga", "otp": "12ab56"}"#.into(), 200),
        (r#"{"username": "olga", "otp": "1234567"}"#.into(), 200),
        (r#"{"username": "olga", "otp": ""}"#.into(), 200),
        (
            r#"{"username": "olga", "pass": "Ω≈ç√∫˜µ≤≥÷123456"}"#.into(),
            200,
        ),
        (r#"{"username": "nobody", "otp": "123456"}"#.into(), 200),
        (
            format!(
                r#"{{"username": "olga", "password": "{}"}}"#,
                "x".repeat(100_000)
            ),
            413,
        ),
    ];
    for (i, (body, status)) in bodies.into_iter().enumerate() {
        let r =
            f.s.client
                .post(f.s.url("/api/v1/validate"))
                .bearer_auth(&f.key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
        assert_eq!(r.status().as_u16(), status, "case {i}");
        let v: Value = r.json().await.unwrap();
        if status == 200 {
            assert_eq!(v["result"], "reject", "case {i}");
        } else {
            assert!(v["error"]["code"].is_string(), "case {i}: {v}");
        }
    }
    // A bad or missing key is a 401.
    for key in ["", "tsk_wrong"] {
        let r =
            f.s.client
                .post(f.s.url("/api/v1/validate"))
                .bearer_auth(key)
                .json(&json!({"username": "olga", "otp": "123456"}))
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 401);
    }
}

#[tokio::test]
async fn source_address_limit() {
    let f = Fixture::with(Db::Sqlite, AppMode::OtpOnly, |c| {
        c.validate.source_requests_per_minute = 3;
    })
    .await;
    f.user("pia", true).await;
    let uri = f.token("pia", "hotp").await;
    for _ in 0..3 {
        f.result(json!({"username": "nobody", "otp": "123456"}))
            .await;
    }
    assert_eq!(
        f.result(json!({"username": "pia", "otp": hotp_code(&uri, 1)}))
            .await,
        "reject"
    );
    assert_eq!(f.last_reason("pia").await, "source address rate limit");
    f.s.clock.advance(60);
    assert_eq!(
        f.result(json!({"username": "pia", "otp": hotp_code(&uri, 1)}))
            .await,
        "accept"
    );
}

#[test]
fn hotp_codes_of_the_fixture_match_the_engine() {
    // Guards the helper above: HOTP counter 0 of the RFC 4226 seed.
    let s = Secret::from_bytes(b"12345678901234567890".to_vec()).unwrap();
    assert_eq!(Hotp::default().generate(&s, 0), "755224");
}
