//! First use by a German organisation (issue: language and naming): `server.default_language`
//! gives new users from the web, the API and the CLI their language; the web form has a language
//! field and the logged-in header a language switch; one organisation name (`enroll.organisation`)
//! names the entry in the authenticator app, the SMS and the mails, with `otp.issuer` only as an
//! override.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod challenge_support;
mod common;
mod web_support;

use challenge_support::{Gateway, sms_user, trigger};
use common::validate::Fixture;
use common::{Db, TestServer, databases};
use reqwest::Method;
use serde_json::json;
use tessera_otp::KeyUri;
use tessera_server::model::{AppMode, Language, Role};
use web_support::{Browser, PASSWORD, add_user, hidden};

const ORG: &str = "Stadtwerke Musterstadt";

fn german(c: &mut tessera_server::Config) {
    c.server.default_language = Language::De;
    c.enroll.organisation = ORG.into();
}

#[tokio::test]
async fn new_users_get_the_default_language_from_web_api_and_cli() {
    for db in databases() {
        let s = TestServer::spawn_with(db, german).await;
        let svc = &s.app.service;
        // API, without a language.
        let admin = s.admin_session("root").await;
        let (status, v) = s
            .call(
                &admin,
                Method::POST,
                "/api/v1/users",
                Some(json!({"username": "api-user"})),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        assert_eq!(v["language"], "de", "{db:?}");
        // Web: the form preselects the default; an explicit choice wins.
        let mut b = Browser::new(&s);
        assert_eq!(
            b.login("root", common::ADMIN_PASSWORD, "").await.status,
            303
        );
        let page = b.get("/admin").await;
        assert!(
            page.body.contains(r#"<option value="de" selected>"#),
            "{}",
            page.body
        );
        let csrf = hidden(&page.body, "csrf");
        for (name, language) in [("web-de", "de"), ("web-en", "en")] {
            let page = b
                .post(
                    "/admin/users",
                    &[
                        ("csrf", &csrf),
                        ("username", name),
                        ("display_name", ""),
                        ("email", ""),
                        ("phone", ""),
                        ("language", language),
                    ],
                )
                .await;
            assert_eq!(page.status, 303, "{db:?}: {}", page.body);
            assert_eq!(
                svc.user_named(name).await.unwrap().language.as_str(),
                language,
                "{db:?}"
            );
        }
        // A form without the field (an older page, a script): the default.
        let page = b
            .post("/admin/users", &[("csrf", &csrf), ("username", "web-none")])
            .await;
        assert_eq!(page.status, 303, "{db:?}: {}", page.body);
        assert_eq!(
            svc.user_named("web-none").await.unwrap().language,
            Language::De
        );
        if db == Db::Sqlite {
            // CLI, through the environment variable the issue names.
            let out = std::process::Command::new(common::tessera_bin())
                .arg("--data-dir")
                .arg(s.data_dir())
                .args(["user", "add", "cli-user"])
                .env_remove("TESSERA_CONFIG")
                .env("TESSERA_SERVER__DEFAULT_LANGUAGE", "de")
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", common::stderr(&out));
            assert_eq!(
                svc.user_named("cli-user").await.unwrap().language,
                Language::De
            );
        }
    }
}

#[tokio::test]
async fn the_logged_in_header_switches_the_language_and_stays_on_the_page() {
    let s = TestServer::spawn_with(Db::Sqlite, german).await;
    add_user(&s, "root", Role::Admin, false).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
    let page = b.get("/admin/audit").await;
    assert_eq!(page.status, 200);
    let csrf = hidden(&page.body, "csrf");
    assert!(
        page.body.contains(r#"action="/portal/language""#),
        "{}",
        page.body
    );
    let done = b
        .post(
            "/portal/language",
            &[("csrf", &csrf), ("language", "de"), ("back", "audit")],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location, "/admin/audit", "back where it was used");
    let page = b.get("/admin/audit").await;
    assert!(page.body.contains(r#"<html lang="de">"#), "German now");
    // `back` names a section, never an address.
    let done = b
        .post(
            "/portal/language",
            &[
                ("csrf", &csrf),
                ("language", "en"),
                ("back", "//evil.example"),
            ],
        )
        .await;
    assert_eq!(done.location, "/portal?done=language");
}

#[tokio::test]
async fn the_organisation_names_the_app_entry_and_the_sms() {
    // The Key URI of a new token: the organisation, unless `otp.issuer` overrides it.
    for (issuer, expected) in [("", ORG), ("ACME VPN", "ACME VPN")] {
        let f = Fixture::with(Db::Sqlite, AppMode::PasswordAndOtp, |c| {
            german(c);
            c.otp.issuer = issuer.into();
        })
        .await;
        f.user("ann", true).await;
        let uri = f.token("ann", "totp").await;
        let k = KeyUri::parse(&uri).unwrap();
        assert_eq!(k.issuer.as_deref(), Some(expected), "{uri}");
    }
    // The SMS names the organisation, not the product.
    let gateway = Gateway::start().await;
    let url = gateway.url();
    let f = Fixture::with(Db::Sqlite, AppMode::PasswordAndOtp, move |c| {
        german(c);
        c.sms.gateway_url = url;
    })
    .await;
    sms_user(&f, "jana").await;
    trigger(&f, "jana", "sms").await;
    let text = gateway.received()[0]["text"].as_str().unwrap().to_owned();
    assert!(text.contains(ORG), "{text}");
    assert!(!text.contains("Tessera"), "{text}");
}

#[test]
fn an_organisation_name_is_required() {
    let env = |v: &str| [("TESSERA_ENROLL__ORGANISATION".to_owned(), v.to_owned())];
    let e = tessera_server::Config::load(None, env("  ")).unwrap_err();
    assert!(e.to_string().contains("enroll.organisation"), "{e}");
    let c = tessera_server::Config::load(None, env("A: B")).unwrap();
    assert_eq!(c.issuer(), "A  B", "a colon would end the issuer in apps");
}

#[tokio::test]
async fn a_login_with_the_code_just_used_to_activate_says_wait_for_the_next() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |_| {}).await;
        add_user(&s, "lena", Role::User, true).await;
        let (_, uri) = web_support::add_totp(&s, "lena", "Phone").await;
        let used = common::oracle_totp(&uri, web_support::now(&s));
        let mut b = Browser::new(&s);
        let page = b.login("lena", PASSWORD, &used).await;
        assert_eq!(page.status, 401, "{db:?}");
        assert!(
            page.body
                .contains("Wait until your app shows the next code"),
            "{db:?}"
        );
        // Without the right password nothing is told.
        let page = b.login("lena", "not the password", &used).await;
        assert_eq!(page.status, 401);
        assert!(!page.body.contains("next code"), "{db:?}");
        // The code of the next step signs in.
        let next = web_support::next_code(&s, &uri);
        let page = b.login("lena", PASSWORD, &next).await;
        assert_eq!(page.status, 303, "{db:?}: the next code works");
    }
}

/// Seed 001, the switch from SMS to the app: the admin requires OTP and clears the phone number.
/// The SMS device is shown as unable to send, the invitation goes out at once, and the login
/// page tells the user (after the right password) to use the link instead of just failing.
#[tokio::test]
async fn the_switch_from_sms_to_the_app_invites_and_the_login_points_to_the_link() {
    use challenge_support::{PHONE, answer, outbox_mails, sms_code};
    use tessera_server::service::{Actor, UserChanges};
    let gateway = Gateway::start().await;
    let url = gateway.url();
    let f = Fixture::with(Db::Sqlite, AppMode::PasswordAndOtp, move |c| {
        german(c);
        c.sms.gateway_url = url;
    })
    .await;
    f.user_with("sabine", |u| u.phone = PHONE.into()).await;
    f.challenge_token("sabine", tessera_server::model::TokenKind::Sms)
        .await;
    let svc = &f.s.app.service;
    let op = Actor::operator();
    // An SMS login moves the device's "last used".
    let tid = trigger(&f, "sabine", "sms").await;
    assert_eq!(
        answer(&f, "sabine", &tid, &sms_code(&gateway, 0)).await,
        "accept"
    );
    let devices = svc.list_tokens(&op, Some("sabine"), 10, 0).await.unwrap();
    assert!(devices[0].last_used_at.is_some(), "{devices:?}");
    assert_eq!(devices[0].unusable, None);
    let mails = outbox_mails(&f).len();

    let (user, invitation) = svc
        .update_user_invited(
            &op,
            "sabine",
            UserChanges {
                phone: Some(String::new()),
                otp_required: Some(true),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    let sent = invitation.expect("an invitation was due").unwrap();
    assert_eq!(sent.emailed_to.as_deref(), Some("sabine@example.com"));
    assert_eq!(
        outbox_mails(&f).len(),
        mails + 1,
        "the invitation was mailed"
    );
    assert!(!user.sms_enabled);
    let devices = svc.list_tokens(&op, Some("sabine"), 10, 0).await.unwrap();
    assert_eq!(
        devices[0].unusable,
        Some(tessera_server::model::Unusable::NoPhone)
    );

    // The admin's page shows the device as what it is now.
    f.user_with("chef", |u| u.role = Some(Role::Admin)).await;
    let mut admin = Browser::new(&f.s);
    assert_eq!(
        admin
            .login("chef", common::validate::PASSWORD, "")
            .await
            .status,
        303
    );
    let page = admin.get("/admin/users/sabine").await;
    assert!(
        page.body
            .contains("ohne Telefonnummer: kann keinen Code senden"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(">aktiv<"), "{}", page.body);

    // The user: a wrong password is the usual failure; the right one says where the link is.
    let mut b = Browser::new(&f.s);
    let page = b.login("sabine", "not the password", "").await;
    assert_eq!(page.status, 401);
    assert!(!page.body.contains("Einrichtungslink"), "{}", page.body);
    let page = b.login("sabine", common::validate::PASSWORD, "").await;
    assert_eq!(page.status, 401);
    assert!(
        page.body
            .contains("Ihre IT hat Ihnen einen Einrichtungslink per E-Mail geschickt"),
        "{}",
        page.body
    );
    assert_eq!(b.get("/portal").await.status, 303, "no session");
    assert_eq!(gateway.received().len(), 1, "no SMS without a number");

    // Once the link is used up (here: replaced by nothing), the page says to ask for one.
    f.s.app
        .service
        .store()
        .supersede_invitations(user.id)
        .await
        .unwrap();
    let page = b.login("sabine", common::validate::PASSWORD, "").await;
    assert!(
        page.body
            .contains("Bitten Sie Ihre IT um einen Einrichtungslink"),
        "{}",
        page.body
    );
}

/// Creating a user with OTP required offers the invitation (ticked by default on the web form)
/// and the notice says whether it went out; a user without an e-mail address gets a notice that
/// says why nothing went out.
#[tokio::test]
async fn creating_a_user_with_otp_required_sends_the_invitation() {
    for db in databases() {
        let s = TestServer::spawn_with(db, german).await;
        add_user(&s, "root", Role::Admin, false).await;
        let mut b = Browser::new(&s);
        assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
        let csrf = b.csrf().await;
        let page = b
            .post(
                "/admin/users",
                &[
                    ("csrf", &csrf),
                    ("username", "neu"),
                    ("email", "neu@example.org"),
                    ("otp_required", "on"),
                    ("invite", "on"),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{db:?}: {}", page.body);
        assert_eq!(page.location, "/admin/users/neu?done=created_invited");
        let page = b.get(&page.location).await;
        assert!(
            page.body
                .contains("Der Einrichtungslink ging per E-Mail an ihn hinaus."),
            "{db:?}: {}",
            page.body
        );
        let user = s.app.service.user_named("neu").await.unwrap();
        assert!(
            s.app
                .service
                .live_invitation(&user)
                .await
                .unwrap()
                .is_some(),
            "{db:?}"
        );
        let page = b
            .post(
                "/admin/users",
                &[
                    ("csrf", &csrf),
                    ("username", "ohne-mail"),
                    ("otp_required", "on"),
                    ("invite", "on"),
                ],
            )
            .await;
        assert_eq!(
            page.location,
            "/admin/users/ohne-mail?done=created_no_email"
        );
        let page = b.get(&page.location).await;
        assert!(
            page.body
                .contains("Ohne E-Mail-Adresse ging kein Einrichtungslink hinaus"),
            "{db:?}: {}",
            page.body
        );
    }
}

/// Seed 003, the password forms: a repeat field, the browser's minimum from the configuration,
/// and every refusal shown on the portal again in the page's language, nothing changed.
#[tokio::test]
async fn the_password_form_repeats_checks_the_configured_minimum_and_answers_in_german() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |c| {
            german(c);
            c.auth.min_password_length = 12;
        })
        .await;
        add_user(&s, "pia", Role::User, false).await;
        let mut b = Browser::new(&s);
        assert_eq!(b.login("pia", PASSWORD, "").await.status, 303);
        let portal = b.get("/portal").await;
        assert!(
            portal.body.contains(r#"minlength="12""#)
                && portal.body.contains("Neues Passwort wiederholen")
                && portal.body.contains("Mindestens 12 Zeichen."),
            "{db:?}: {}",
            portal.body
        );
        let csrf = hidden(&portal.body, "csrf");
        let change = |current: &'static str, new: &'static str, new2: &'static str| {
            vec![
                ("csrf", csrf.clone()),
                ("current", current.to_owned()),
                ("new", new.to_owned()),
                ("new2", new2.to_owned()),
            ]
        };
        for (fields, status, text) in [
            (
                change(
                    PASSWORD,
                    "ein ganz neues Passwort",
                    "ein ganz neues Passwrt",
                ),
                400,
                "Die beiden neuen Passwörter stimmen nicht überein.",
            ),
            (
                change(PASSWORD, "zu kurz 11", "zu kurz 11"),
                400,
                "mindestens 12 und höchstens 1024 Zeichen",
            ),
            (
                change(
                    "falsch falsch",
                    "ein ganz neues Passwort",
                    "ein ganz neues Passwort",
                ),
                403,
                "Das aktuelle Passwort",
            ),
        ] {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let page = b.post("/portal/password", &fields).await;
            assert_eq!(page.status, status, "{db:?}: {}", page.body);
            assert!(page.body.contains(text), "{db:?}: {text}: {}", page.body);
            // The portal itself, not a dead-end error page.
            assert!(page.body.contains(r#"action="/portal/password""#), "{db:?}");
        }
        let fields = change(
            PASSWORD,
            "ein ganz neues Passwort",
            "ein ganz neues Passwort",
        );
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let done = b.post("/portal/password", &fields).await;
        assert_eq!(
            done.location, "/portal?done=password",
            "{db:?}: {}",
            done.body
        );
    }
}
