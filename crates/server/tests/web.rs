//! The web portal and admin pages over HTTP: CSRF refusal, re-authentication, ownership of
//! devices, and the admin area's 403 for everyone else (the login and its sessions are in
//! web_login.rs).

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod web_support;

use common::TestServer;
use tessera_server::model::{Role, TokenId};
use tessera_server::service::Actor;
use web_support::{Browser, PASSWORD, add_totp, add_user, hidden, next_code};

async fn token_name(s: &TestServer, id: TokenId) -> Option<String> {
    s.app
        .service
        .get_token(&Actor::operator(), id)
        .await
        .ok()
        .map(|t| t.name)
}

#[tokio::test]
async fn a_user_who_must_enroll_is_led_into_the_enrollment_pages() {
    let s = TestServer::spawn().await;
    add_user(&s, "newbie", Role::User, true).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("newbie", "wrong password", "").await.status, 401);
    let page = b.login("newbie", PASSWORD, "").await;
    assert_eq!(page.status, 303);
    assert!(page.location.starts_with("/enroll/"), "{}", page.location);
    let landing = b.get(&page.location).await;
    assert_eq!(landing.status, 200);
    assert!(landing.body.contains("newbie"));
}

#[tokio::test]
async fn forms_without_the_csrf_value_are_refused() {
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::Admin, false).await;
    add_user(&s, "bob", Role::User, false).await;
    let (id, _) = add_totp(&s, "alice", "phone").await;
    let mut b = Browser::new(&s);
    // Without the login form value, the login itself is refused.
    let page = b
        .post("/login", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, 403);
    // Forms of a logged-in admin: every one refuses a missing or forged CSRF value.
    add_user(&s, "root", Role::Admin, false).await;
    assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
    let forms: &[&str] = &[
        "/logout",
        "/portal/devices/1/rename",
        "/portal/devices/1/remove",
        "/portal/devices/add",
        "/portal/recovery",
        "/portal/password",
        "/portal/language",
        "/admin/users",
        "/admin/users/bob",
        "/admin/users/bob/state",
        "/admin/users/bob/delete",
        "/admin/users/bob/invite",
        "/admin/tokens/1/disable",
        "/admin/apps",
        "/admin/apps/1/revoke",
    ];
    for path in forms {
        let page = b
            .post(
                path,
                &[("csrf", "forged"), ("name", "x"), ("state", "disabled")],
            )
            .await;
        assert_eq!(page.status, 403, "{path}");
        let page = b.post(path, &[("name", "x")]).await;
        assert_eq!(page.status, 403, "{path}");
    }
    assert_eq!(token_name(&s, id).await.as_deref(), Some("phone"));
    let bob = s.app.service.user_named("bob").await.unwrap();
    assert_eq!(bob.state.as_str(), "active");
    assert_eq!(b.get("/portal").await.status, 200, "still logged in");
}

#[tokio::test]
async fn a_user_can_never_see_or_touch_another_users_devices() {
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::User, false).await;
    add_user(&s, "bob", Role::User, false).await;
    let (bobs, _) = add_totp(&s, "bob", "Bobs Handy").await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("alice", PASSWORD, "").await.status, 303);
    let portal = b.get("/portal").await;
    assert!(!portal.body.contains("Bobs Handy"));
    let csrf = hidden(&portal.body, "csrf");
    let rename = format!("/portal/devices/{}/rename", bobs.0);
    let remove = format!("/portal/devices/{}/remove", bobs.0);
    let page = b
        .post(&rename, &[("csrf", &csrf), ("name", "mine now")])
        .await;
    assert_eq!(page.status, 404);
    // Even with the password re-entered: the token is not hers.
    let page = b
        .post(&remove, &[("csrf", &csrf), ("reauth_password", PASSWORD)])
        .await;
    assert_eq!(page.status, 404);
    assert_eq!(token_name(&s, bobs).await.as_deref(), Some("Bobs Handy"));
    let events = b.get("/portal").await.body;
    assert!(!events.contains("Bobs Handy"));
}

#[tokio::test]
async fn removing_a_device_needs_the_password_again() {
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::User, true).await;
    let (one, uri) = add_totp(&s, "alice", "Diensthandy").await;
    let (two, _) = add_totp(&s, "alice", "Tablet").await;
    let mut b = Browser::new(&s);
    assert_eq!(
        b.login("alice", PASSWORD, &next_code(&s, &uri))
            .await
            .status,
        303
    );
    let csrf = b.csrf().await;

    let rename = format!("/portal/devices/{}/rename", two.0);
    let page = b.post(&rename, &[("csrf", &csrf), ("name", "iPad")]).await;
    assert_eq!(page.status, 303);
    assert_eq!(token_name(&s, two).await.as_deref(), Some("iPad"));

    let remove = format!("/portal/devices/{}/remove", two.0);
    let page = b.post(&remove, &[("csrf", &csrf)]).await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("reauth_password"),
        "asks for the password"
    );
    assert!(token_name(&s, two).await.is_some());
    let page = b
        .post(&remove, &[("csrf", &csrf), ("reauth_password", "wrong")])
        .await;
    assert_eq!(page.status, 403);
    assert!(token_name(&s, two).await.is_some());
    let page = b
        .post(&remove, &[("csrf", &csrf), ("reauth_password", PASSWORD)])
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(token_name(&s, two).await.is_none());
    // Within the re-authentication window the next removal asks no more; after it, again.
    s.clock.advance(6 * 60);
    let remove = format!("/portal/devices/{}/remove", one.0);
    assert_eq!(b.post(&remove, &[("csrf", &csrf)]).await.status, 403);
    assert!(token_name(&s, one).await.is_some());
}

#[tokio::test]
async fn recovery_codes_are_regenerated_after_reauthentication_and_shown_once() {
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::User, false).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("alice", PASSWORD, "").await.status, 303);
    let csrf = b.csrf().await;
    assert_eq!(
        b.post("/portal/recovery", &[("csrf", &csrf)]).await.status,
        403
    );
    let page = b
        .post(
            "/portal/recovery",
            &[("csrf", &csrf), ("reauth_password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body.matches("<li><code>").count(), 10);
    let portal = b.get("/portal").await;
    assert!(portal.body.contains("10 of 10"));
}

#[tokio::test]
async fn adding_a_device_leads_into_enrollment_after_reauthentication() {
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::User, false).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("alice", PASSWORD, "").await.status, 303);
    let csrf = b.csrf().await;
    assert_eq!(
        b.post("/portal/devices/add", &[("csrf", &csrf)])
            .await
            .status,
        403
    );
    let page = b
        .post(
            "/portal/devices/add",
            &[("csrf", &csrf), ("reauth_password", PASSWORD)],
        )
        .await;
    assert_eq!(page.status, 303);
    assert!(page.location.starts_with("/enroll/"));
    assert_eq!(b.get(&page.location).await.status, 200);
}

#[tokio::test]
async fn password_change_needs_the_current_password() {
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::User, false).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("alice", PASSWORD, "").await.status, 303);
    let csrf = b.csrf().await;
    let page = b
        .post(
            "/portal/password",
            &[
                ("csrf", &csrf),
                ("current", "wrong"),
                ("new", "another long password"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
    let page = b
        .post(
            "/portal/password",
            &[
                ("csrf", &csrf),
                ("current", PASSWORD),
                ("new", "another long password"),
            ],
        )
        .await;
    assert_eq!(page.status, 303);
    let mut other = Browser::new(&s);
    assert_eq!(other.login("alice", PASSWORD, "").await.status, 401);
    assert_eq!(
        other
            .login("alice", "another long password", "")
            .await
            .status,
        303
    );
    // Language preference.
    let page = b
        .post("/portal/language", &[("csrf", &csrf), ("language", "de")])
        .await;
    assert_eq!(page.status, 303);
    assert!(b.get("/portal").await.body.contains("Mein Konto"));
}

#[tokio::test]
async fn a_non_admin_gets_403_on_every_admin_page() {
    let s = TestServer::spawn().await;
    add_user(&s, "alice", Role::User, false).await;
    add_user(&s, "bob", Role::User, false).await;
    let (bobs, _) = add_totp(&s, "bob", "phone").await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("alice", PASSWORD, "").await.status, 303);
    let csrf = b.csrf().await;
    for path in [
        "/admin",
        "/admin/users/bob",
        "/admin/audit",
        "/admin/apps",
        "/admin?q=b",
    ] {
        let page = b.get(path).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(!page.body.contains("bob@example.org"), "{path}");
    }
    let token = format!("/admin/tokens/{}/remove", bobs.0);
    for path in [
        "/admin/users",
        "/admin/users/bob",
        "/admin/users/bob/state",
        "/admin/users/bob/delete",
        "/admin/users/bob/invite",
        token.as_str(),
        "/admin/apps",
        "/admin/apps/1/revoke",
    ] {
        let page = b
            .post(
                path,
                &[
                    ("csrf", &csrf),
                    ("reauth_password", PASSWORD),
                    ("state", "disabled"),
                    ("username", "mallory"),
                ],
            )
            .await;
        assert_eq!(page.status, 403, "{path}");
    }
    assert!(token_name(&s, bobs).await.is_some());
    assert!(s.app.service.user_named("mallory").await.is_err());
    assert_eq!(
        s.app
            .service
            .user_named("bob")
            .await
            .unwrap()
            .state
            .as_str(),
        "active"
    );
    // Not logged in at all: the login page.
    let mut anon = Browser::new(&s);
    assert_eq!(anon.get("/admin").await.location, "/login");
}

#[tokio::test]
async fn switching_a_user_to_otp_asks_for_the_admins_password_then_saves_and_audits() {
    let s = TestServer::spawn().await;
    add_user(&s, "root", Role::Admin, false).await;
    add_user(&s, "bob", Role::User, false).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
    let page = b.get("/admin/users/bob").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("One-time password (OTP) required"));
    let csrf = hidden(&page.body, "csrf");
    let change = [
        ("csrf", csrf.as_str()),
        ("display_name", "bob Example"),
        ("email", "bob@example.org"),
        ("phone", ""),
        ("otp_required", "on"),
    ];
    let page = b.post("/admin/users/bob", &change).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("reauth_password"));
    // The password page says what it confirms; the change waits on the server.
    assert!(
        page.body.contains("Change the account of bob"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("name=\"otp_required\""));
    let bob = s.app.service.user_named("bob").await.unwrap();
    assert!(
        !bob.otp_required && !bob.phone.is_empty(),
        "nothing changed yet"
    );

    let mut with_password = change.to_vec();
    with_password.push(("reauth_password", "wrong"));
    assert_eq!(b.post("/admin/users/bob", &with_password).await.status, 403);
    with_password.pop();
    with_password.push(("reauth_password", PASSWORD));
    let page = b.post("/admin/users/bob", &with_password).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let bob = s.app.service.user_named("bob").await.unwrap();
    assert!(bob.otp_required);
    assert!(bob.phone.is_empty() && !bob.sms_enabled);
    let page = b.get("/admin/users/bob?done=saved").await;
    assert!(page.body.contains("phone cleared, SMS disabled"), "audited");
    let audit = b.get("/admin/audit?user=bob&action=user.set").await;
    assert_eq!(audit.status, 200);
    assert!(audit.body.contains("otp_required true"));
    assert!(audit.body.contains("Hash chain intact"));
}

#[tokio::test]
async fn admin_manages_users_devices_and_applications() {
    let s = TestServer::spawn().await;
    add_user(&s, "root", Role::Admin, false).await;
    add_user(&s, "bob", Role::User, false).await;
    let (bobs, _) = add_totp(&s, "bob", "lost phone").await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
    let csrf = b.csrf().await;
    let list = b.get("/admin?q=bo").await;
    assert!(list.body.contains("bob@example.org") && !list.body.contains("root@example.org"));

    let page = b
        .post(
            "/admin/users",
            &[
                ("csrf", &csrf),
                ("username", "carol"),
                ("email", "carol@example.org"),
            ],
        )
        .await;
    assert_eq!(page.status, 303);
    // No OTP required: no invitation, and the notice says the user was created.
    assert_eq!(page.location, "/admin/users/carol?done=created");
    assert!(
        b.get(&page.location)
            .await
            .body
            .contains("The user was created.")
    );
    let page = b
        .post(
            "/admin/users/carol/state",
            &[("csrf", &csrf), ("state", "disabled")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        s.app
            .service
            .user_named("carol")
            .await
            .unwrap()
            .state
            .as_str(),
        "disabled"
    );
    assert_eq!(
        b.post("/admin/users/bob/invite", &[("csrf", &csrf)])
            .await
            .status,
        303
    );

    let revoke = format!("/admin/tokens/{}/revoke", bobs.0);
    assert_eq!(b.post(&revoke, &[("csrf", &csrf)]).await.status, 403);
    let page = b
        .post(&revoke, &[("csrf", &csrf), ("reauth_password", PASSWORD)])
        .await;
    assert_eq!(page.status, 303);
    let info = s
        .app
        .service
        .get_token(&Actor::operator(), bobs)
        .await
        .unwrap();
    assert_eq!(info.state.as_str(), "revoked");
    // Removing asks first, naming the device and its owner; cancel leads back to bob's page.
    let remove = format!("/admin/tokens/{}/remove", bobs.0);
    let ask = b.post(&remove, &[("csrf", &csrf)]).await;
    assert_eq!(ask.status, 200);
    assert!(
        ask.body.contains("Remove the device lost phone") && ask.body.contains("of bob"),
        "{}",
        ask.body
    );
    assert!(
        ask.body.contains(r#"href="/admin/users/bob""#),
        "{}",
        ask.body
    );
    assert!(token_name(&s, bobs).await.is_some(), "nothing removed yet");
    assert_eq!(
        b.post(&remove, &[("csrf", &csrf), ("confirm", "yes")])
            .await
            .status,
        303,
        "still elevated"
    );
    assert!(token_name(&s, bobs).await.is_none());

    let page = b
        .post(
            "/admin/apps",
            &[("csrf", &csrf), ("name", "vpn"), ("mode", "otp_only")],
        )
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("tsk_"), "key shown once");
    let again = b.get("/admin/apps").await;
    assert!(again.body.contains("vpn"));
    let key = page
        .body
        .split("id=\"new-key\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert!(!again.body.contains(key), "never shown again");

    // Deleting always asks, naming the user, even with a fresh re-authentication.
    let page = b
        .post("/admin/users/carol/delete", &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Delete the user carol"), "{}", page.body);
    assert!(
        page.body.contains(r#"href="/admin/users/carol""#),
        "cancel goes back"
    );
    assert!(s.app.service.user_named("carol").await.is_ok(), "not yet");
    let page = b
        .post(
            "/admin/users/carol/delete",
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    assert_eq!(page.status, 303);
    assert!(s.app.service.user_named("carol").await.is_err());
}

/// The code in the newest outbox mail: its one run of six or more digits.
fn newest_mail_code(s: &TestServer) -> String {
    let mut files: Vec<_> = std::fs::read_dir(s.data_dir().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    let raw = std::fs::read(files.last().expect("a mail")).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = msg.body_text(0).unwrap().into_owned();
    let runs: Vec<&str> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() >= 6)
        .collect();
    assert_eq!(runs.len(), 1, "one code in the mail");
    runs[0].to_owned()
}

#[tokio::test]
async fn an_email_code_user_gets_a_second_step_after_the_password() {
    let s = TestServer::spawn().await;
    add_user(&s, "erika", Role::User, true).await;
    s.app
        .service
        .add_token(
            &Actor::operator(),
            "erika",
            tessera_server::service::AddToken {
                kind: Some(tessera_server::model::TokenKind::Email),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut b = Browser::new(&s);
    // A wrong password sends nothing and looks like any failure. (The outbox holds the
    // invitation mailed when erika was created with OTP required.)
    let mails = mail_count(&s);
    assert_eq!(b.login("erika", "wrong password", "").await.status, 401);
    assert_eq!(
        mail_count(&s),
        mails,
        "no code mailed after a wrong password"
    );
    let page = b.login("erika", PASSWORD, "").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("We sent a passcode to your e-mail address")
    );
    let tid = hidden(&page.body, "transaction_id");
    let form = hidden(&page.body, "login_form");
    let code = newest_mail_code(&s);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let answer = |form: &str, code: &str| -> Vec<(String, String)> {
        [
            ("login_form", form),
            ("username", "erika"),
            ("transaction_id", tid.as_str()),
            ("code", code),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    };
    let post = async |b: &mut Browser<'_>, v: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        b.post("/login", &pairs).await
    };
    assert_eq!(post(&mut b, answer(&form, wrong)).await.status, 401);
    let page = post(&mut b, answer(&form, &code)).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(b.get("/portal").await.status, 200);
    // The code is used up: a second browser cannot answer the same challenge again.
    let mut other = Browser::new(&s);
    other.get("/login").await;
    let other_form = other.cookies["tessera_login"].clone();
    assert_eq!(
        post(&mut other, answer(&other_form, &code)).await.status,
        401
    );
}

/// How many mails the outbox holds.
fn mail_count(s: &TestServer) -> usize {
    std::fs::read_dir(s.data_dir().join("outbox"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0)
}
