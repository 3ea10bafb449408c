//! Language and naming (issue 18): the service's messages go by key, so a German page shows a
//! refused input in German while the JSON API keeps its English text; audit and event lists on
//! German pages are German; the enrollment pages promise nothing that is not true.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod enroll_support;
mod web_support;

use common::{TestServer, databases};
use reqwest::Method;
use serde_json::json;
use tessera_server::model::{Language, Role};
use web_support::{Browser, PASSWORD, add_user, hidden};

fn german(c: &mut tessera_server::Config) {
    c.server.default_language = Language::De;
}

#[tokio::test]
async fn a_german_page_shows_a_refused_password_in_german_and_the_api_in_english() {
    for db in databases() {
        let s = TestServer::spawn_with(db, german).await;
        add_user(&s, "anna", Role::Admin, false).await;
        let mut b = Browser::new(&s);
        assert_eq!(b.login("anna", PASSWORD, "").await.status, 303);
        let page = b.get("/admin").await;
        assert!(page.body.contains(r#"<html lang="de">"#), "{db:?}");
        let csrf = hidden(&page.body, "csrf");
        let page = b
            .post(
                "/admin/users",
                &[
                    ("csrf", &csrf),
                    ("username", "bernd"),
                    ("password", "kurz"),
                    ("language", "de"),
                ],
            )
            .await;
        assert_eq!(page.status, 400, "{db:?}: {}", page.body);
        assert!(
            page.body.contains("Passwort: zwischen 10 und 1024 Zeichen"),
            "{db:?}: {}",
            page.body
        );
        assert!(!page.body.contains("between 10 and 1024"), "{}", page.body);
        // The same refusal over the API: the stable code and the English text.
        let admin = s.admin_session("api-admin").await;
        let (status, v) = s
            .call(
                &admin,
                Method::POST,
                "/api/v1/users",
                Some(json!({"username": "bernd", "password": "kurz"})),
            )
            .await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["code"], "invalid_input");
        assert_eq!(
            v["error"]["message"],
            "password: between 10 and 1024 characters"
        );
        // A conflict, in German on the page.
        let page = b
            .post(
                "/admin/users",
                &[("csrf", &csrf), ("username", "api-admin")],
            )
            .await;
        assert_eq!(page.status, 409, "{db:?}: {}", page.body);
        assert!(
            page.body.contains("Den Benutzer api-admin gibt es bereits"),
            "{}",
            page.body
        );
    }
}

#[tokio::test]
async fn event_lists_on_german_pages_are_german() {
    for db in databases() {
        let s = TestServer::spawn_with(db, german).await;
        add_user(&s, "anna", Role::Admin, false).await;
        add_user(&s, "carla", Role::User, false).await;
        let (_, uri) = web_support::add_totp(&s, "carla", "Diensthandy").await;
        // Carla: one sign-in with a wrong code, then one that works.
        let mut c = Browser::new(&s);
        assert_eq!(c.login("carla", PASSWORD, "000000").await.status, 401);
        let code = web_support::next_code(&s, &uri);
        assert_eq!(c.login("carla", PASSWORD, &code).await.status, 303);
        // The portal's list.
        let mut a = Browser::new(&s);
        assert_eq!(a.login("anna", PASSWORD, "").await.status, 303);
        let portal = a.get("/portal").await;
        assert!(portal.body.contains("Anmeldung im Web"), "{}", portal.body);
        assert!(portal.body.contains("erfolgreich"), "{}", portal.body);
        assert!(!portal.body.contains(">success<"), "{}", portal.body);
        // Carla's trail on the admin page and the audit log: German names and reasons.
        for path in ["/admin/users/carla", "/admin/audit"] {
            let page = a.get(path).await;
            assert_eq!(page.status, 200, "{path}");
            for german in [
                "Gerät hinzugefügt",
                "Gerät aktiviert",
                "Anmeldung im Web",
                "fehlgeschlagen",
                "erster Passcode richtig, Gerät aktiv",
                "falscher Passcode",
            ] {
                assert!(
                    page.body.contains(german),
                    "{db:?} {path}: {german}\n{}",
                    page.body
                );
            }
            for english in [
                ">success<",
                ">failure<",
                "first code correct",
                ": wrong code",
            ] {
                assert!(!page.body.contains(english), "{db:?} {path}: {english}");
            }
        }
    }
}

/// Walks an enrollment of `user` to its last page.
async fn finished_page(s: &TestServer, user: &str) -> String {
    let link = enroll_support::invite(s, user).await;
    let qr = enroll_support::start(s, &link).await;
    let (done, _) = enroll_support::complete(s, &link, &qr).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let finished = enroll_support::post(
        s,
        &format!("{link}/done"),
        &[
            ("form_token", &enroll_support::form_token(&done.body)),
            ("saved", "yes"),
        ],
    )
    .await;
    assert_eq!(finished.status, 200, "{}", finished.body);
    // The page with the recovery codes comes first: it too is checked.
    format!("{}\n{}", done.body, finished.body)
}

#[tokio::test]
async fn a_recovery_code_is_never_said_to_sign_anyone_in() {
    for (language, forbidden, promised) in [
        (
            Language::De,
            "mit einem Wiederherstellungscode an",
            "mit einem Wiederherstellungscode wieder her",
        ),
        (
            Language::En,
            "sign in with a recovery code",
            "Recover your account with a recovery code",
        ),
    ] {
        let s = TestServer::spawn().await;
        enroll_support::add_user(&s, "dora", "dora@example.org", language).await;
        let pages = finished_page(&s, "dora").await;
        assert!(pages.contains(promised), "{language}: {pages}");
        assert!(!pages.contains(forbidden), "{language}: {pages}");
        assert!(!pages.contains("lets you sign in"), "{language}");
    }
}

#[tokio::test]
async fn the_last_page_mentions_the_password_only_to_users_who_have_one() {
    for db in databases() {
        for (language, as_before, none_yet) in [
            (
                Language::De,
                "Ihr Passwort, wie bisher",
                "Für Ihr Konto ist bei Tessera noch keines gesetzt",
            ),
            (
                Language::En,
                "Your password, as before",
                "none is set for your account in Tessera yet",
            ),
        ] {
            let s = TestServer::spawn_with(db, |_| {}).await;
            // Without a password (the admin created the account with an invitation only).
            enroll_support::add_user(&s, "emil", "emil@example.org", language).await;
            let page = finished_page(&s, "emil").await;
            assert!(page.contains(none_yet), "{db:?} {language}: {page}");
            assert!(!page.contains(as_before), "{db:?} {language}");
            // With one.
            s.app
                .service
                .create_user(
                    &tessera_server::service::Actor::operator(),
                    tessera_server::service::CreateUser {
                        username: "frida".into(),
                        email: "frida@example.org".into(),
                        language: Some(language),
                        password: Some(tessera_server::model::Password::new(PASSWORD)),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let page = finished_page(&s, "frida").await;
            assert!(page.contains(as_before), "{db:?} {language}: {page}");
            assert!(!page.contains(none_yet), "{db:?} {language}");
        }
    }
}

#[tokio::test]
async fn pages_and_mails_show_times_in_the_configured_zone() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |c| {
            c.server.default_language = Language::De;
            c.server.time_zone = "Europe/Berlin".into();
        })
        .await;
        add_user(&s, "anna", Role::Admin, false).await;
        // The clock stands at 2023-11-14 22:13:20 UTC: 23:13 in Berlin (winter time, CET).
        let (_, uri) = web_support::add_totp(&s, "anna", "Diensthandy").await;
        let mut b = Browser::new(&s);
        let code = web_support::next_code(&s, &uri);
        assert_eq!(b.login("anna", PASSWORD, &code).await.status, 303);
        for path in ["/portal", "/admin/audit", "/admin/users/anna"] {
            let page = b.get(path).await;
            assert!(
                page.body.contains("14.11.2023, 23:13 CET"),
                "{db:?} {path}: {}",
                page.body
            );
            assert!(!page.body.contains("22:13 UTC"), "{db:?} {path}");
        }
        // The invitation mail: valid for 72 hours, until 17.11.2023, 23:13 CET.
        enroll_support::add_user(&s, "bernd", "bernd@example.org", Language::De).await;
        let link = enroll_support::invite(&s, "bernd").await;
        let (_, text, html) = enroll_support::newest_outbox_mail(&s);
        assert!(text.contains("17.11.2023, 23:13 CET"), "{db:?}: {text}");
        assert!(html.contains("17.11.2023, 23:13 CET"), "{db:?}");
        // And the enrollment page that link opens.
        let landing = enroll_support::get(&s, &link, &[]).await;
        assert!(
            landing.body.contains("17.11.2023, 23:13 CET"),
            "{db:?}: {}",
            landing.body
        );
    }
}
