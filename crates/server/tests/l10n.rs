//! Language and naming (issue 18): the service's messages go by key, so a German page shows a
//! refused input in German while the JSON API keeps its English text; audit and event lists on
//! German pages are German.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
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
