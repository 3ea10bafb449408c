//! The recovery controls of the admin's user page (SPEC F4, F6) over HTTP: every change asks for
//! the admin's password again, is audited and shows where a setting comes from; new recovery
//! codes shown once or mailed; the self-service lock cleared; an account reset; and the password
//! hint at the login, shown only to a browser holding the sealed hint cookie.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod enroll_support;
mod recovery_support;
mod web_support;

use common::{Db, TestServer};
use enroll_support::newest_outbox_mail;
use recovery_support::{actions, outbox_text, recover, request_reset};
use tessera_server::Config;
use tessera_server::config::AdminDelivery;
use tessera_server::model::Role;
use tessera_server::service::Actor;
use web_support::{Browser, PASSWORD, add_totp, add_user, hidden};

const ADMIN_PAGE: &str = "/admin/users/alice";

async fn spawn(tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::spawn_with(Db::Sqlite, tweak).await
}

/// A server with admin `root` logged in (English pages) and user `alice` with a device.
async fn admin_and_alice(s: &TestServer) -> (Browser<'_>, String) {
    add_user(s, "root", Role::Admin, false).await;
    add_user(s, "alice", Role::User, false).await;
    add_totp(s, "alice", "Diensthandy").await;
    let mut b = Browser::new(s);
    assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
    let csrf = b.csrf().await;
    (b, csrf)
}

/// Posts `fields` without a fresh password (expects the password page, nothing changed yet),
/// then again with it; returns the second answer.
async fn post_with_reauth(
    b: &mut Browser<'_>,
    path: &str,
    fields: &[(&str, &str)],
) -> web_support::Page {
    let first = b.post(path, fields).await;
    assert_eq!(first.status, 403, "{}", first.body);
    assert!(first.body.contains("reauth_password"), "{}", first.body);
    let mut again = fields.to_vec();
    again.push(("reauth_password", PASSWORD));
    b.post(path, &again).await
}

#[tokio::test]
async fn recovery_settings_need_reauth_show_their_source_and_return_to_the_default() {
    let s = spawn(|_| {}).await;
    let (mut b, csrf) = admin_and_alice(&s).await;
    let page = b.get(ADMIN_PAGE).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("In force: Allowed (server default)"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("In force: Shown once to the admin (server default)")
    );

    let path = "/admin/users/alice/recovery-policy";
    let fields = [
        ("csrf", csrf.as_str()),
        ("self_recovery", "off"),
        ("revoke_old_devices", "on"),
        ("delivery", "email"),
        ("codes_at_enrollment", "default"),
    ];
    let first = b.post(path, &fields).await;
    assert_eq!(first.status, 403);
    let settings = s
        .app
        .service
        .recovery_settings(&Actor::operator(), "alice")
        .await
        .unwrap();
    assert!(
        !settings.self_recovery.overridden,
        "nothing set before the password"
    );
    let mut again = fields.to_vec();
    again.push(("reauth_password", PASSWORD));
    let done = b.post(path, &again).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let settings = s
        .app
        .service
        .recovery_settings(&Actor::operator(), "alice")
        .await
        .unwrap();
    assert!(settings.self_recovery.overridden && !settings.self_recovery.value);
    assert!(settings.revoke_old_devices.overridden && settings.revoke_old_devices.value);
    assert_eq!(settings.delivery.value, AdminDelivery::Email);
    assert!(settings.delivery.overridden);
    assert!(!settings.codes_at_enrollment.overridden);
    let page = b.get(&done.location).await;
    assert!(page.body.contains("The recovery settings were saved."));
    assert!(
        page.body
            .contains("In force: Forbidden (set for this user)")
    );
    assert!(page.body.contains("In force: Revoked (set for this user)"));
    assert!(
        page.body
            .contains("In force: E-mailed to the user (set for this user)")
    );
    let log = actions(&s, "alice").await;
    for action in ["user.recovery_policy", "user.recovery_delivery"] {
        assert!(
            log.contains(&(action.to_owned(), "success".to_owned())),
            "{action}: {log:?}"
        );
    }
    assert!(
        !log.iter().any(|(a, _)| a == "user.recovery"),
        "an unchanged setting is not written: {log:?}"
    );

    // Back to the server's default (still elevated: no password page).
    let back = b
        .post(
            path,
            &[
                ("csrf", csrf.as_str()),
                ("self_recovery", "default"),
                ("revoke_old_devices", "default"),
                ("delivery", "default"),
                ("codes_at_enrollment", "default"),
            ],
        )
        .await;
    assert_eq!(back.status, 303);
    let settings = s
        .app
        .service
        .recovery_settings(&Actor::operator(), "alice")
        .await
        .unwrap();
    assert!(!settings.self_recovery.overridden && settings.self_recovery.value);
    assert!(!settings.delivery.overridden);
    assert_eq!(settings.delivery.value, AdminDelivery::Show);
    // A value that is no choice changes nothing.
    let bad = b
        .post(
            path,
            &[
                ("csrf", csrf.as_str()),
                ("self_recovery", "maybe"),
                ("revoke_old_devices", "default"),
                ("delivery", "default"),
                ("codes_at_enrollment", "default"),
            ],
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn recovery_controls_refuse_non_admins_and_forms_without_csrf() {
    let s = spawn(|_| {}).await;
    let (mut admin, _) = admin_and_alice(&s).await;
    add_user(&s, "mallory", Role::User, false).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("mallory", PASSWORD, "").await.status, 303);
    let csrf = b.csrf().await;
    for op in [
        "recovery-policy",
        "recovery-codes",
        "self-service-unlock",
        "reset",
    ] {
        let path = format!("/admin/users/alice/{op}");
        let page = b
            .post(
                &path,
                &[
                    ("csrf", &csrf),
                    ("reauth_password", PASSWORD),
                    ("new_password", "a new long password"),
                    ("confirm", "yes"),
                ],
            )
            .await;
        assert_eq!(page.status, 403, "{op}: a user is no admin");
        let page = admin
            .post(&path, &[("csrf", "forged"), ("reauth_password", PASSWORD)])
            .await;
        assert_eq!(page.status, 403, "{op}: CSRF");
        assert!(
            !page.body.contains("reauth_password"),
            "{op}: refused first"
        );
    }
    let log = actions(&s, "alice").await;
    assert!(
        !log.iter()
            .any(|(a, _)| a.starts_with("recovery.") || a.starts_with("account.")),
        "{log:?}"
    );
}

#[tokio::test]
async fn new_codes_are_shown_once_to_the_admin_and_the_old_ones_stop_working() {
    let s = spawn(|_| {}).await;
    let (mut b, csrf) = admin_and_alice(&s).await;
    let old = s
        .app
        .service
        .admin_issue_recovery_codes(&Actor::operator(), "alice")
        .await
        .unwrap()
        .codes;
    let page = post_with_reauth(
        &mut b,
        "/admin/users/alice/recovery-codes",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("by phone after checking who is calling"));
    let codes = enroll_support::recovery_codes(&page.body);
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| !old.contains(c)));
    let again = b.get(ADMIN_PAGE).await;
    assert!(!again.body.contains(&codes[0]), "shown once only");
    assert!(again.body.contains("10 of 10 recovery codes unused"));
    assert!(again.body.contains("recovery.issue"), "in the history");

    // The old set is void, the new one works.
    let mut user = Browser::new(&s);
    recover(&mut user, "alice", &old[0]).await;
    recover(&mut user, "alice", &codes[0]).await;
    let log = actions(&s, "alice").await;
    assert_eq!(log[0], ("recovery.start".into(), "success".into()));
    assert_eq!(log[1], ("recovery.start".into(), "failure".into()));
}

#[tokio::test]
async fn with_email_delivery_the_new_codes_are_mailed_not_shown() {
    let s = spawn(|_| {}).await;
    let (mut b, csrf) = admin_and_alice(&s).await;
    s.app
        .service
        .set_recovery_delivery(&Actor::operator(), "alice", Some(AdminDelivery::Email))
        .await
        .unwrap();
    let page = b.get(ADMIN_PAGE).await;
    assert!(page.body.contains("New codes are e-mailed to the user"));
    let done = post_with_reauth(
        &mut b,
        "/admin/users/alice/recovery-codes",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (subject, text, _) = newest_outbox_mail(&s);
    assert_eq!(subject, "New recovery codes");
    let page = b.get(&done.location).await;
    assert!(page.body.contains("were e-mailed to the user"));
    let first = text
        .split_whitespace()
        .find(|w| w.len() == 11 && w.as_bytes()[5] == b'-')
        .unwrap();
    assert!(!page.body.contains(first), "never on the admin's page");
}

#[tokio::test]
async fn the_admin_clears_a_self_service_lock_after_reauthentication() {
    let s = spawn(|_| {}).await;
    let (mut b, csrf) = admin_and_alice(&s).await;
    let id = s.app.service.user_named("alice").await.unwrap().id;
    s.app
        .service
        .store()
        .set_self_service_locked(id, true)
        .await
        .unwrap();
    let page = b.get(ADMIN_PAGE).await;
    assert!(page.body.contains("Self-service locked"));
    let done = post_with_reauth(
        &mut b,
        "/admin/users/alice/self-service-unlock",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(done.status, 303);
    let settings = s
        .app
        .service
        .recovery_settings(&Actor::operator(), "alice")
        .await
        .unwrap();
    assert!(!settings.self_service_locked);
    let page = b.get(&done.location).await;
    assert!(page.body.contains("Self-service is unlocked again."));
    assert!(!page.body.contains("Unlock self-service"));
    assert!(page.body.contains("security.unlock"), "in the history");

    // The devices on the same page: disabling one works (still elevated).
    let token = s.app.service.store().tokens_of(id).await.unwrap()[0].id;
    let done = b
        .post(
            &format!("/admin/tokens/{}/disable", token.0),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(done.status, 303);
    let info = s
        .app
        .service
        .get_token(&Actor::operator(), token)
        .await
        .unwrap();
    assert_eq!(info.state.as_str(), "disabled");
}

/// The hint line of the login page, if any.
fn hint_on(page: &web_support::Page) -> Option<String> {
    let start = page.body.find("id=\"password-hint\"")?;
    Some(page.body[start..].split("</p>").next().unwrap().to_owned())
}

#[tokio::test]
async fn an_admin_reset_deletes_the_devices_and_the_link_brings_the_hint() {
    let s = spawn(|_| {}).await;
    let (mut b, csrf) = admin_and_alice(&s).await;
    // The form carries the admin's password: a wrong one changes nothing.
    let wrong = b
        .post(
            "/admin/users/alice/reset",
            &[
                ("csrf", csrf.as_str()),
                ("new_password", "a fresh long password"),
                ("confirm", "yes"),
                ("reauth_password", "not my password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 403);
    assert!(wrong.body.contains("The password is not correct."));
    let id = s.app.service.user_named("alice").await.unwrap().id;
    assert_eq!(s.app.service.store().tokens_of(id).await.unwrap().len(), 1);
    let fields = [
        ("csrf", csrf.as_str()),
        ("new_password", "a fresh long password"),
        ("hint", "the <b>blue</b> notebook & the cat"),
    ];
    // Without the confirmation tick nothing happens.
    let mut unticked = fields.to_vec();
    unticked.push(("reauth_password", PASSWORD));
    assert_eq!(
        b.post("/admin/users/alice/reset", &unticked).await.status,
        400
    );
    let mut ticked = fields.to_vec();
    ticked.push(("confirm", "yes"));
    let page = b.post("/admin/users/alice/reset", &ticked).await;
    assert_eq!(page.status, 200, "still elevated: {}", page.body);
    assert!(page.body.contains("Account reset"));
    let link = hidden_link(&page.body);
    let tokens = s.app.service.store().tokens_of(id).await.unwrap();
    assert!(tokens.is_empty(), "every device deleted");
    assert!(
        actions(&s, "alice")
            .await
            .contains(&("account.reset".into(), "success".into()))
    );

    // The browser that opens the link later sees the hint at the login; another does not.
    let mut user = Browser::new(&s);
    let landing = user.get(&link).await;
    assert_eq!(landing.status, 200, "{}", landing.body);
    assert!(user.cookies.contains_key("tessera_hint"));
    let cookie_header = landing
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("tessera_hint="))
        .unwrap();
    assert!(cookie_header.contains("HttpOnly") && cookie_header.contains("SameSite=Lax"));
    let login = user.get("/login").await;
    let hint = hint_on(&login).expect("hint shown");
    assert!(
        hint.contains("the &#60;b&#62;blue&#60;/b&#62; notebook &#38; the cat"),
        "escaped: {hint}"
    );
    assert!(hint_on(&Browser::new(&s).get("/login").await).is_none());
}

/// The enrollment link's path on the admin's reset page.
fn hidden_link(body: &str) -> String {
    let start = body.find("id=\"enroll-link\">").unwrap() + "id=\"enroll-link\">".len();
    let url = body[start..].split('<').next().unwrap();
    url[url.find("/enroll/").unwrap()..].to_owned()
}

#[tokio::test]
async fn the_hint_is_shown_for_the_cookie_never_for_a_typed_or_forged_name() {
    let s = spawn(|_| {}).await;
    add_user(&s, "alice", Role::User, false).await;
    add_user(&s, "bob", Role::User, false).await;
    let mut b = Browser::new(&s);
    request_reset(&mut b, "alice@example.org").await;
    let text = outbox_text(&s, "Reset your account").await;
    let link = recovery_support::path_in(&text, "/reset/");
    let page = b.get(&link).await;
    let done = b
        .post(
            &link,
            &[
                ("form_token", &hidden(&page.body, "form_token")),
                ("password", "a fresh long password"),
                ("hint", "Grandma's birthday"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let cookie = b.cookies.get("tessera_hint").cloned().expect("hint cookie");
    assert!(!cookie.contains("Grandma"), "the cookie holds no hint");
    let hint = hint_on(&b.get("/login").await).expect("hint with the cookie");
    assert!(hint.contains("Grandma&#39;s birthday"), "{hint}");
    // A failed login in that browser still shows it; a typed username elsewhere never does.
    let failed = b.login("alice", "wrong password", "").await;
    assert!(hint_on(&failed).is_some());
    let mut other = Browser::new(&s);
    assert!(hint_on(&other.get("/login").await).is_none());
    let failed = other.login("alice", "wrong password", "").await;
    assert_eq!(failed.status, 401);
    assert!(hint_on(&failed).is_none());

    // Forged cookies show nothing: another user's id with alice's MAC, a made-up MAC, junk.
    let bob = s.app.service.user_named("bob").await.unwrap().id;
    let mac = cookie.split_once('.').unwrap().1;
    for forged in [
        format!("{}.{mac}", bob.0),
        format!(
            "{}.k1:{}",
            cookie.split_once('.').unwrap().0,
            "0".repeat(64)
        ),
        "1".to_owned(),
        "x.y".to_owned(),
    ] {
        let mut f = Browser::new(&s);
        f.cookies.insert("tessera_hint".into(), forged.clone());
        assert!(hint_on(&f.get("/login").await).is_none(), "{forged}");
    }
    // A later hint is not shown to a browser that got its cookie for an earlier one.
    s.app
        .service
        .admin_reset_account(
            &Actor::operator(),
            "alice",
            "another long password",
            "the new one",
        )
        .await
        .unwrap();
    assert!(hint_on(&b.get("/login").await).is_none());
    // Without a hint (e.g. after the next reset without one) nothing is shown either.
    s.app
        .service
        .admin_reset_account(&Actor::operator(), "alice", "another long password", "")
        .await
        .unwrap();
    assert!(hint_on(&b.get("/login").await).is_none());
}

#[tokio::test]
async fn the_cli_sets_and_clears_a_users_delivery() {
    let s = spawn(|_| {}).await;
    add_user(&s, "alice", Role::User, false).await;
    let delivery = |args: &'static [&'static str]| {
        let dir = s.data_dir();
        let base = [
            "recovery",
            "policy",
            "alice",
            "--self-service",
            "policy",
            "--revoke-old-devices",
            "policy",
        ];
        tokio::task::spawn_blocking(move || {
            let all: Vec<&str> = base.iter().chain(args).copied().collect();
            common::run_cli(&dir, &all, None)
        })
    };
    let out = delivery(&["--delivery", "email"]).await.unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let settings = s
        .app
        .service
        .recovery_settings(&Actor::operator(), "alice")
        .await
        .unwrap();
    assert_eq!(settings.delivery.value, AdminDelivery::Email);
    assert!(settings.delivery.overridden);
    // Without --delivery it stays; with `policy` it follows the configuration again.
    assert!(delivery(&[]).await.unwrap().status.success());
    let settings = s
        .app
        .service
        .recovery_settings(&Actor::operator(), "alice")
        .await
        .unwrap();
    assert!(settings.delivery.overridden);
    assert!(
        delivery(&["--delivery", "policy"])
            .await
            .unwrap()
            .status
            .success()
    );
    let settings = s
        .app
        .service
        .recovery_settings(&Actor::operator(), "alice")
        .await
        .unwrap();
    assert!(!settings.delivery.overridden);
    assert_eq!(settings.delivery.value, AdminDelivery::Show);
    let log = actions(&s, "alice").await;
    assert_eq!(
        log.iter()
            .filter(|(a, _)| a == "user.recovery_delivery")
            .count(),
        2,
        "{log:?}"
    );
}
