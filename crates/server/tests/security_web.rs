//! Security regressions of secrets in answers and of notices (docs/security.md): API answers
//! that carry seeds, keys, links and session tokens are never cached; after "this wasn't me"
//! every admin with an address is told, the notice is audited, and the page says the truth when
//! nobody could be told. Each test failed on the code before its fix; every one runs on SQLite
//! and, when configured, on PostgreSQL.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod enroll_support;
mod recovery_support;
mod web_support;

use common::validate::Fixture;
use common::{TestServer, databases};
use enroll_support::{form_token, get, post};
use recovery_support::{
    code_after, enroll_new_device, enrolled_user, not_me_path, outbox, recover, verify,
};
use reqwest::Method;
use serde_json::json;
use tessera_server::model::{AppMode, AuditFilter, Language, Role};
use tessera_server::service::{Actor, CreateUser};
use web_support::{Browser, PASSWORD, add_user, hidden};

#[tokio::test]
async fn api_answers_with_secrets_are_not_cached() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::PasswordAndOtp).await;
        let admin = f.s.admin_session("root").await;
        let no_store = |r: &reqwest::Response, what: &str| {
            assert_eq!(
                r.headers()
                    .get("cache-control")
                    .and_then(|v| v.to_str().ok()),
                Some("no-store"),
                "{db:?}: {what}"
            );
        };
        // The session token of a login.
        let r =
            f.s.client
                .post(f.s.url("/api/v1/auth/login"))
                .json(&json!({"username": "root", "password": common::ADMIN_PASSWORD}))
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 200);
        no_store(&r, "login");
        let send = |method: Method, path: &str, body: Option<serde_json::Value>| {
            let mut req =
                f.s.client
                    .request(method, f.s.url(path))
                    .bearer_auth(&admin);
            if let Some(b) = body {
                req = req.json(&b);
            }
            req.send()
        };
        // An application key (after re-authentication).
        let r = send(
            Method::POST,
            "/api/v1/auth/reauth",
            Some(json!({"password": common::ADMIN_PASSWORD})),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200);
        let r = send(Method::POST, "/api/v1/apps", Some(json!({"name": "web"})))
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        no_store(&r, "new application key");
        // A seed (the Key URI of a new token) and an enrollment link.
        let r = send(
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "ann", "email": "ann@example.org"})),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        let r = send(
            Method::POST,
            "/api/v1/users/ann/tokens",
            Some(json!({"kind": "totp"})),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 201);
        no_store(&r, "new token with its seed");
        let r = send(
            Method::POST,
            "/api/v1/users/ann/invitations",
            Some(json!({"send": false})),
        )
        .await
        .unwrap();
        no_store(&r, "enrollment link");
        // Errors too: nothing of the API is cached.
        let r = send(Method::GET, "/api/v1/users/nobody", None)
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        no_store(&r, "an error");
    }
}

/// Recovers `name`'s account as an attacker would (recovery code and mailbox), enrolls a new
/// device, then confirms "this wasn't me" from the notice: returns the answer page's body.
async fn block_after_recovery(s: &TestServer, name: &str) -> String {
    let codes = enrolled_user(s, name, Language::En).await;
    let n = outbox(s).len();
    let mut attacker = Browser::new(s);
    let sent = recover(&mut attacker, name, &codes[0]).await;
    let code = code_after(s, n).await;
    let next = verify(&mut attacker, &sent, &code).await;
    let link = next.location.split('?').next().unwrap().to_owned();
    s.clock.advance(30);
    let n = outbox(s).len();
    enroll_new_device(s, &link).await;
    let mails = outbox(s);
    let notice = mails[n..]
        .iter()
        .find(|(_, text)| text.contains("/not-me/"))
        .expect("a notice with a \"this wasn't me\" link");
    let not_me = not_me_path(&notice.1);
    let page = get(s, &not_me, &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // The page before the confirmation promises nothing it cannot keep.
    assert!(!page.body.contains("told at once"), "{}", page.body);
    let done = post(s, &not_me, &[("form_token", &form_token(&page.body))]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    done.body
}

/// The newest `security.admins_notified` entry of `name`: (result, reason).
async fn notice_entry(s: &TestServer, name: &str) -> (String, String) {
    let e = s
        .app
        .service
        .list_audit(
            &Actor::operator(),
            AuditFilter {
                username: Some(name.into()),
                action: Some("security.admins_notified".into()),
                limit: 10,
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap();
    let first = e.first().expect("the notice to admins is audited");
    (first.event.result.clone(), first.event.reason.clone())
}

#[tokio::test]
async fn this_wasnt_me_tells_every_admin_with_an_address_or_says_nobody_was_told() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |_| {}).await;
        // The only admin has no address: nobody can be told, and the page says so.
        s.app
            .service
            .create_user(
                &Actor::operator(),
                CreateUser {
                    username: "root".into(),
                    role: Some(Role::Admin),
                    ..CreateUser::default()
                },
            )
            .await
            .unwrap();
        let body = block_after_recovery(&s, "alice").await;
        assert!(
            body.contains("could not be told automatically"),
            "{db:?}: {body}"
        );
        assert!(!body.contains("has been told"), "{db:?}: {body}");
        let (result, reason) = notice_entry(&s, "alice").await;
        assert_eq!(result, "failure", "{db:?}");
        assert!(
            reason.contains("no active admin has an e-mail address"),
            "{reason}"
        );

        // Two admins with addresses: both are told, by name in the audit log.
        for name in ["ops1", "ops2"] {
            s.app
                .service
                .create_user(
                    &Actor::operator(),
                    CreateUser {
                        username: name.into(),
                        email: format!("{name}@example.org"),
                        role: Some(Role::Admin),
                        ..CreateUser::default()
                    },
                )
                .await
                .unwrap();
        }
        let before = outbox(&s).len();
        let body = block_after_recovery(&s, "bob").await;
        assert!(body.contains("has been told by e-mail"), "{db:?}: {body}");
        let (result, reason) = notice_entry(&s, "bob").await;
        assert_eq!(result, "success", "{db:?}");
        assert!(
            reason.contains("ops1") && reason.contains("ops2"),
            "{reason}"
        );
        let told = outbox(&s)[before..]
            .iter()
            .filter(|(subject, _)| subject.contains("account bob blocked"))
            .count();
        assert_eq!(told, 2, "{db:?}: one mail per admin");
    }
}

#[tokio::test]
async fn the_password_page_keeps_the_form_on_the_server_and_never_echoes_it() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |_| {}).await;
        add_user(&s, "root", Role::Admin, false).await;
        let mut b = Browser::new(&s);
        assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
        // Past the login's own re-authentication window.
        let window = s.app.service.config().auth.reauth_minutes * 60 + 1;
        s.clock.advance(window.try_into().unwrap());
        let page = b.get("/admin").await;
        let csrf = hidden(&page.body, "csrf");
        let initial = "initial-secret-4242-eve";
        let form = [
            ("csrf", csrf.as_str()),
            ("username", "eve"),
            ("display_name", "Eve"),
            ("email", "eve@example.org"),
            ("phone", ""),
            ("role", "admin"),
            ("password", initial),
        ];
        let page = b.post("/admin/users", &form).await;
        assert_eq!(page.status, 403, "{db:?}: re-authentication asked");
        assert!(page.body.contains("reauth_password"), "{db:?}");
        assert!(
            !page.body.contains(initial),
            "{db:?}: the typed password is not echoed"
        );
        assert!(
            !page.body.contains("eve@example.org"),
            "{db:?}: nor other fields"
        );
        assert!(
            page.body.contains("Create the admin eve"),
            "{db:?}: {}",
            page.body
        );
        assert!(s.app.service.user_named("eve").await.is_err(), "{db:?}");

        // A wrong password: asked again, the form still waits and is still described.
        let wrong = [
            ("csrf", csrf.as_str()),
            ("resume", "1"),
            ("reauth_password", "not it"),
        ];
        let page = b.post("/admin/users", &wrong).await;
        assert_eq!(page.status, 403, "{db:?}");
        assert!(
            page.body.contains("Create the admin eve"),
            "{db:?}: {}",
            page.body
        );
        // Resumed at another address, the kept form does not run there (and is spent).
        let right = [
            ("csrf", csrf.as_str()),
            ("resume", "1"),
            ("reauth_password", PASSWORD),
        ];
        assert_eq!(b.post("/admin/apps", &right).await.status, 410, "{db:?}");
        assert!(s.app.service.user_named("eve").await.is_err(), "{db:?}");

        // A fresh session: the form waits, the right password runs it with its own fields, once.
        let mut c = Browser::new(&s);
        assert_eq!(c.login("root", PASSWORD, "").await.status, 303);
        s.clock.advance(window.try_into().unwrap());
        let page = c.get("/admin").await;
        let csrf = hidden(&page.body, "csrf");
        let mut again = form.to_vec();
        again[0] = ("csrf", csrf.as_str());
        assert_eq!(c.post("/admin/users", &again).await.status, 403, "{db:?}");
        let right = [
            ("csrf", csrf.as_str()),
            ("resume", "1"),
            ("reauth_password", PASSWORD),
        ];
        let page = c.post("/admin/users", &right).await;
        assert_eq!(page.status, 303, "{db:?}: {}", page.body);
        let eve = s.app.service.user_named("eve").await.unwrap();
        assert_eq!(
            eve.email, "eve@example.org",
            "{db:?}: the kept fields were used"
        );
        assert!(
            eve.password_hash.is_some(),
            "{db:?}: with the initial password"
        );
        let page = c.post("/admin/users", &right).await;
        assert_eq!(page.status, 410, "{db:?}: a kept form runs once");
    }
}
