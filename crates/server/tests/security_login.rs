//! Security regressions of the login rules (docs/security.md): no password-only path past the
//! second factor, throttling claimed before the comparison on every path, strangers who cannot
//! lock an owner out, one device's success no failure of another, the same work for unknown
//! users, a reset that obeys the recovery policy. Each test failed on the code before its fix;
//! every one runs on SQLite and, when configured, on PostgreSQL.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod web_support;

use common::validate::{Fixture, PASSWORD};
use common::{Db, TestServer, databases};
use serde_json::{Value, json};
use tessera_otp::KeyUri;
use tessera_server::model::{AppMode, Password, Role, TokenId};
use tessera_server::service::{Actor, CreateApp, CreateUser, TokenAction};
use web_support::Browser;

/// The next HOTP code of a Key URI at `counter`.
fn hotp_code(uri: &str, counter: u64) -> String {
    let k = KeyUri::parse(uri).unwrap();
    k.hotp().unwrap().generate(&k.secret, counter)
}

async fn admin(f: &Fixture, name: &str) {
    f.user_with(name, |u| u.role = Some(Role::Admin)).await;
}

async fn api_login(s: &TestServer, body: Value) -> u16 {
    s.client
        .post(s.url("/api/v1/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn token_id(f: &Fixture, user: &str, n: usize) -> TokenId {
    f.s.app
        .service
        .list_tokens(&Actor::operator(), Some(user), 0, 0)
        .await
        .unwrap()[n]
        .id
}

async fn fail_count(f: &Fixture, id: TokenId) -> i64 {
    f.s.app
        .service
        .store()
        .token(id)
        .await
        .unwrap()
        .unwrap()
        .fail_count
}

async fn fixture(db: Db, mode: AppMode) -> Fixture {
    Fixture::new(db, mode).await
}

#[tokio::test]
async fn api_login_refuses_the_password_alone_when_the_token_is_disabled_or_locked() {
    for db in databases() {
        let f = fixture(db, AppMode::PasswordAndOtp).await;
        admin(&f, "ada").await;
        let uri = f.token("ada", "hotp").await;
        let id = token_id(&f, "ada", 0).await;
        let svc = &f.s.app.service;
        svc.change_token_state(&Actor::operator(), id, TokenAction::Disable)
            .await
            .unwrap();
        let body = json!({"username": "ada", "password": PASSWORD});
        assert_eq!(api_login(&f.s, body.clone()).await, 401, "{db:?}: disabled");
        svc.change_token_state(&Actor::operator(), id, TokenAction::Enable)
            .await
            .unwrap();
        // Locked after failures (as ten wrong codes at the web login leave it).
        f.s.app
            .service
            .store()
            .count_token_failure(id, 0, i64::MAX / 2, true)
            .await
            .unwrap();
        assert_eq!(api_login(&f.s, body).await, 401, "{db:?}: locked");
        svc.unlock_token(&Actor::operator(), id).await.unwrap();
        let ok = json!({"username": "ada", "password": PASSWORD, "otp": hotp_code(&uri, 1)});
        assert_eq!(api_login(&f.s, ok).await, 200, "{db:?}");
    }
}

#[tokio::test]
async fn revoked_devices_do_not_lead_into_enrollment_on_the_password_alone() {
    for db in databases() {
        let f = fixture(db, AppMode::PasswordAndOtp).await;
        f.user("bea", true).await;
        f.token("bea", "totp").await;
        let id = token_id(&f, "bea", 0).await;
        f.s.app
            .service
            .change_token_state(&Actor::operator(), id, TokenAction::Revoke)
            .await
            .unwrap();
        let mut b = Browser::new(&f.s);
        let page = b.login("bea", PASSWORD, "").await;
        assert!(
            !page.location.starts_with("/enroll/"),
            "{db:?}: led into enrollment: {}",
            page.location
        );
        assert_ne!(page.status, 303, "{db:?}: no session either");
        // The same with the token deleted: the account remembers it had a second factor.
        f.s.app
            .service
            .delete_token(&Actor::operator(), id)
            .await
            .unwrap();
        let page = b.login("bea", PASSWORD, "").await;
        assert_ne!(page.status, 303, "{db:?}: {}", page.location);
        // A user who never had a token still enrolls after the password (SPEC F1).
        f.user("cem", true).await;
        let page = b.login("cem", PASSWORD, "").await;
        assert!(page.location.starts_with("/enroll/"), "{db:?}: {page:?}");
    }
}

#[tokio::test]
async fn otp_only_application_lets_no_tokenless_user_in_unless_its_policy_says_so() {
    for db in databases() {
        let f = fixture(db, AppMode::OtpOnly).await;
        f.user("dan", false).await;
        // Also a user with no password at all.
        f.user_with("eve", |u| u.password = None).await;
        for user in ["dan", "eve"] {
            assert_eq!(
                f.result(json!({"username": user, "otp": "123456"})).await,
                "reject",
                "{db:?}: {user}"
            );
            assert!(f.last_reason(user).await.contains("no passthrough"));
        }
        // With passthrough switched on for an application, explicitly, and audited as such.
        let app =
            f.s.app
                .service
                .create_app(
                    &Actor::operator(),
                    CreateApp {
                        name: "rdp".into(),
                        mode: Some(AppMode::OtpOnly),
                        passthrough: Some(true),
                    },
                )
                .await
                .unwrap();
        let r =
            f.s.client
                .post(f.s.url("/api/v1/validate"))
                .bearer_auth(&app.api_key)
                .json(&json!({"username": "dan", "otp": "123456"}))
                .send()
                .await
                .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["result"], "accept", "{db:?}");
        let reason = f.last_reason("dan").await;
        assert!(reason.contains("passthrough"), "{reason}");
        assert!(!reason.contains("password only"), "{reason}");
    }
}

#[tokio::test]
async fn api_login_wrong_passwords_are_throttled() {
    for db in databases() {
        let f = fixture(db, AppMode::PasswordAndOtp).await;
        admin(&f, "fay").await;
        for _ in 0..12 {
            let wrong = json!({"username": "fay", "password": "not the password"});
            assert_eq!(api_login(&f.s, wrong).await, 401);
        }
        let right = json!({"username": "fay", "password": PASSWORD});
        assert_eq!(
            api_login(&f.s, right.clone()).await,
            401,
            "{db:?}: throttled"
        );
        f.s.clock.advance(3600);
        assert_eq!(api_login(&f.s, right).await, 200, "{db:?}: after the wait");
    }
}

#[tokio::test]
async fn web_login_counts_every_wrong_password_within_one_second() {
    for db in databases() {
        let f = fixture(db, AppMode::PasswordAndOtp).await;
        f.user("gil", false).await;
        let mut b = Browser::new(&f.s);
        // The clock stands still: all in one second, where a cached user used to hide them.
        for _ in 0..11 {
            let page = b.login("gil", "not the password", "").await;
            assert_ne!(page.status, 303);
        }
        let user = f.s.app.service.user_named("gil").await.unwrap();
        assert!(user.fail_count >= 10, "{db:?}: {}", user.fail_count);
        let page = b.login("gil", PASSWORD, "").await;
        assert_ne!(
            page.status, 303,
            "{db:?}: the right password after 11 wrong ones"
        );
    }
}

#[tokio::test]
async fn portal_password_change_is_throttled() {
    for db in databases() {
        let f = fixture(db, AppMode::PasswordAndOtp).await;
        f.user("hal", false).await;
        let mut b = Browser::new(&f.s);
        assert_eq!(b.login("hal", PASSWORD, "").await.status, 303);
        let csrf = b.csrf().await;
        let before =
            f.s.app
                .service
                .user_named("hal")
                .await
                .unwrap()
                .password_hash;
        let change = |current: &'static str| {
            vec![
                ("csrf", csrf.clone()),
                ("current", current.to_owned()),
                ("new", "a brand new password".to_owned()),
                ("repeat", "a brand new password".to_owned()),
            ]
        };
        for _ in 0..12 {
            let fields = change("not the password");
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.post("/portal/password", &fields).await;
        }
        let fields = change(PASSWORD);
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post("/portal/password", &fields).await;
        let after =
            f.s.app
                .service
                .user_named("hal")
                .await
                .unwrap()
                .password_hash;
        assert_eq!(
            before, after,
            "{db:?}: the password was changed after 12 wrong current passwords"
        );
    }
}

#[tokio::test]
async fn concurrent_wrong_codes_count_once() {
    for db in databases() {
        let f = fixture(db, AppMode::OtpOnly).await;
        f.user("ivo", false).await;
        let uri = f.token("ivo", "hotp").await;
        let id = token_id(&f, "ivo", 0).await;
        let mut set = tokio::task::JoinSet::new();
        for i in 0..50 {
            let client = f.s.client.clone();
            let url = f.s.url("/api/v1/validate");
            let key = f.key.clone();
            set.spawn(async move {
                let v: Value = client
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({"username": "ivo", "otp": format!("{:06}", 100_000 + i)}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                v["result"].as_str().unwrap().to_owned()
            });
        }
        let results = set.join_all().await;
        assert!(results.iter().all(|r| r == "reject"));
        assert_eq!(
            fail_count(&f, id).await,
            1,
            "{db:?}: one comparison per count"
        );
        f.s.clock.advance(30);
        assert_eq!(
            f.result(json!({"username": "ivo", "otp": hotp_code(&uri, 1)}))
                .await,
            "accept",
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn strangers_wrong_codes_do_not_throttle_the_owner() {
    for db in databases() {
        let f = fixture(db, AppMode::PasswordAndOtp).await;
        f.user("jan", true).await;
        let uri = f.token("jan", "hotp").await;
        let id = token_id(&f, "jan", 0).await;
        let svc = &f.s.app.service;
        // A stranger: no password, wrong codes, from one address.
        for _ in 0..25 {
            let _ = svc
                .web_login("203.0.113.9", "jan", "guess", "000000", "")
                .await;
        }
        assert_eq!(
            fail_count(&f, id).await,
            0,
            "{db:?}: the token is not blamed"
        );
        let user = svc.user_named("jan").await.unwrap();
        assert_eq!(user.fail_count, 0, "{db:?}: the account is not blamed");
        // The stranger's address is refused now, even with the right password and code...
        let refused = svc
            .web_login("203.0.113.9", "jan", PASSWORD, &hotp_code(&uri, 1), "")
            .await;
        assert!(refused.is_err(), "{db:?}");
        // ...while the owner, from elsewhere, logs in at once.
        let ok = svc
            .web_login("198.51.100.4", "jan", PASSWORD, &hotp_code(&uri, 2), "")
            .await;
        assert!(ok.is_ok(), "{db:?}: {ok:?}");
        // Someone who knows the password but not the code does spend the token's budget.
        let _ = svc
            .web_login("198.51.100.4", "jan", PASSWORD, "000000", "")
            .await;
        assert_eq!(fail_count(&f, id).await, 1, "{db:?}");
    }
}

#[tokio::test]
async fn strangers_wrong_recovery_codes_do_not_block_the_owners_recovery_or_reset() {
    for db in databases() {
        let f = fixture(db, AppMode::PasswordAndOtp).await;
        f.user("kai", false).await;
        let svc = &f.s.app.service;
        let codes = svc
            .admin_issue_recovery_codes(&Actor::operator(), "kai")
            .await
            .unwrap()
            .codes;
        for _ in 0..8 {
            let _ = svc
                .start_recovery("203.0.113.9", "kai", "AAAAA-AAAAA")
                .await
                .unwrap();
        }
        let before = svc
            .list_audit(&Actor::operator(), audit_filter("kai", "recovery.start"))
            .await
            .unwrap()
            .len();
        svc.start_recovery("198.51.100.4", "kai", &codes[0])
            .await
            .unwrap();
        let entries = svc
            .list_audit(&Actor::operator(), audit_filter("kai", "recovery.start"))
            .await
            .unwrap();
        assert_eq!(entries.len(), before + 1);
        assert_eq!(
            entries[0].event.result, "success",
            "{db:?}: {}",
            entries[0].event.reason
        );
    }
}

fn audit_filter(user: &str, action: &str) -> tessera_server::model::AuditFilter {
    tessera_server::model::AuditFilter {
        username: Some(user.into()),
        action: Some(action.into()),
        limit: 100,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_valid_code_of_one_device_is_no_failure_of_the_other() {
    for db in databases() {
        let f = fixture(db, AppMode::OtpOnly).await;
        f.user("lea", false).await;
        // The app first (it is tried first), then the hardware token that is used.
        f.token("lea", "totp").await;
        let hw = f.token("lea", "hotp").await;
        let app_token = token_id(&f, "lea", 0).await;
        for counter in 1..=12 {
            assert_eq!(
                f.result(json!({"username": "lea", "otp": hotp_code(&hw, counter)}))
                    .await,
                "accept",
                "{db:?}"
            );
        }
        assert_eq!(fail_count(&f, app_token).await, 0, "{db:?}");
        let t =
            f.s.app
                .service
                .store()
                .token(app_token)
                .await
                .unwrap()
                .unwrap();
        assert_eq!(t.state.as_str(), "active", "{db:?}");
    }
}

#[tokio::test]
async fn unknown_and_existing_users_take_the_same_work() {
    for db in databases() {
        let f = fixture(db, AppMode::PasswordAndOtp).await;
        f.user("max", true).await;
        f.token("max", "totp").await;
        let svc = &f.s.app.service;
        let checks = |_: ()| svc.login_password_checks();
        let mut b = Browser::new(&f.s);
        for (user, password) in [
            ("max", PASSWORD),
            ("max", "wrong password"),
            ("nobody", PASSWORD),
        ] {
            let before = checks(());
            b.login(user, password, "000000").await;
            assert_eq!(checks(()) - before, 1, "{db:?}: web login {user}");
            let before = checks(());
            f.result(json!({"username": user, "password": password, "otp": "000000"}))
                .await;
            assert_eq!(checks(()) - before, 1, "{db:?}: validate {user}");
        }
    }
}

#[tokio::test]
async fn reset_follows_the_recovery_policy_and_its_switch() {
    for db in databases() {
        let f = Fixture::with(db, AppMode::PasswordAndOtp, |_| {}).await;
        f.user("nia", false).await;
        let svc = &f.s.app.service;
        svc.set_self_recovery_policy(&Actor::operator(), "nia", Some(false), None)
            .await
            .unwrap();
        svc.request_reset("198.51.100.4", "nia@example.com")
            .await
            .unwrap();
        let reasons = f.reasons("nia", "reset.request").await;
        assert!(
            reasons[0].contains("self-recovery not allowed"),
            "{db:?}: {reasons:?}"
        );
        // Off for everyone.
        let g = Fixture::with(db, AppMode::PasswordAndOtp, |c| {
            c.recovery.self_reset = false;
        })
        .await;
        g.user("ole", false).await;
        g.s.app
            .service
            .request_reset("198.51.100.4", "ole@example.com")
            .await
            .unwrap();
        let reasons = g.reasons("ole", "reset.request").await;
        assert!(reasons[0].contains("switched off"), "{db:?}: {reasons:?}");
    }
}

#[tokio::test]
async fn admin_login_does_not_spend_a_users_code() {
    for db in databases() {
        let f = fixture(db, AppMode::OtpOnly).await;
        f.user("pia", false).await;
        let uri = f.token("pia", "hotp").await;
        let code = hotp_code(&uri, 1);
        let body = json!({"username": "pia", "password": PASSWORD, "otp": code});
        assert_eq!(api_login(&f.s, body).await, 401);
        assert_eq!(
            f.result(json!({"username": "pia", "otp": code})).await,
            "accept",
            "{db:?}: the code still works where it belongs"
        );
    }
}

#[tokio::test]
async fn admins_without_a_second_factor_enroll_one_first() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |c| c.auth.admin_second_factor = true).await;
        s.app
            .service
            .create_user(
                &Actor::operator(),
                CreateUser {
                    username: "quinn".into(),
                    role: Some(Role::Admin),
                    password: Some(Password::new(PASSWORD)),
                    ..CreateUser::default()
                },
            )
            .await
            .unwrap();
        let mut b = Browser::new(&s);
        let page = b.login("quinn", PASSWORD, "").await;
        assert!(page.location.starts_with("/enroll/"), "{db:?}: {page:?}");
        let body = json!({"username": "quinn", "password": PASSWORD});
        assert_eq!(api_login(&s, body).await, 401, "{db:?}: no API session yet");
    }
}
