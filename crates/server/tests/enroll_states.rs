//! Enrollment links' end states and the pages' rules: expired, replaced, unknown and used-up
//! links; wrong codes and throttling; security headers, languages and the phone-first path; the
//! API's link and mail failures; the automatic invitation; the flow without recovery codes;
//! housekeeping of expired links.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod enroll_support;

use common::TestServer;
use enroll_support::*;
use reqwest::Method;
use serde_json::json;
use tessera_server::model::{Language, TokenState};
use tessera_server::service::{Actor, UserChanges};

#[tokio::test]
async fn expired_superseded_and_unknown_links_are_refused() {
    for db in common::databases() {
        expired_superseded_and_unknown_links_are_refused_on(db).await;
    }
}

async fn expired_superseded_and_unknown_links_are_refused_on(db: common::Db) {
    let s = TestServer::spawn_with(db, |_| {}).await;
    add_user(&s, "carol", "carol@example.org", Language::En).await;
    let first = invite(&s, "carol").await;
    let second = invite(&s, "carol").await;
    assert_ne!(first, second);
    let page = get(&s, &first, &[]).await;
    assert_eq!(page.status, 410);
    assert!(
        page.body.contains("This link was replaced"),
        "{}",
        page.body
    );
    assert_eq!(get(&s, &second, &[]).await.status, 200);

    s.clock.advance(72 * 3600 - 1);
    assert_eq!(get(&s, &second, &[]).await.status, 200, "valid for 72 h");
    s.clock.advance(1);
    let page = get(&s, &second, &[]).await;
    assert_eq!(page.status, 410);
    assert!(page.body.contains("This link has expired"), "{}", page.body);
    assert!(!page.body.contains("<svg"));

    let page = get(&s, "/enroll/AAAAnotatokenAAAA", &[]).await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("Link not found"));

    // Housekeeping keeps an expired link for 30 days, so that its page still says why it no
    // longer works, and removes it after that (both links: the replaced one expired too).
    let grace = tessera_server::service::housekeeping::LINK_GRACE_SECS;
    s.clock.advance(grace);
    assert_eq!(s.app.service.purge_expired().await.unwrap(), 0);
    assert!(
        get(&s, &second, &[])
            .await
            .body
            .contains("This link has expired")
    );
    s.clock.advance(1);
    assert_eq!(s.app.service.purge_expired().await.unwrap(), 2);
    assert_eq!(get(&s, &second, &[]).await.status, 404);
    assert_eq!(get(&s, &first, &[]).await.status, 404);
}

#[tokio::test]
async fn wrong_codes_explain_the_causes_and_end_the_link() {
    let s = TestServer::spawn().await;
    add_user(&s, "dave", "dave@example.org", Language::En).await;
    let link = invite(&s, "dave").await;
    start(&s, &link).await;
    let mut last = Page {
        status: 0,
        headers: Default::default(),
        body: String::new(),
    };
    for attempt in 1..=5 {
        let verify = get(&s, &format!("{link}/verify"), &[]).await;
        last = post(
            &s,
            &format!("{link}/verify"),
            &[
                ("form_token", &form_token(&verify.body)),
                ("name", "Phone"),
                ("code", "000000"),
            ],
        )
        .await;
        if attempt < 5 {
            assert_eq!(last.status, 422, "attempt {attempt}: {}", last.body);
            assert!(last.body.contains("clock"), "{}", last.body);
            assert!(
                last.body.contains(&format!(": {}", 5 - attempt)),
                "{}",
                last.body
            );
            // Right after a wrong code the token waits for the next time step.
            let tooearly = post(
                &s,
                &format!("{link}/verify"),
                &[
                    ("form_token", &form_token(&last.body)),
                    ("name", "Phone"),
                    ("code", "000000"),
                ],
            )
            .await;
            assert_eq!(tooearly.status, 429, "{}", tooearly.body);
            assert!(tooearly.body.contains("wait"), "{}", tooearly.body);
            // The wait doubles with each failure (otp.throttle_max_secs caps it at 900 s).
            s.clock.advance(900);
        }
    }
    assert_eq!(last.status, 410, "{}", last.body);
    assert!(last.body.contains("no longer works"));
    assert_eq!(get(&s, &link, &[]).await.status, 410);
    let user = s.app.service.user_named("dave").await.unwrap();
    assert!(
        s.app
            .service
            .store()
            .tokens_of(user.id)
            .await
            .unwrap()
            .is_empty(),
        "the pending token is deleted with the link"
    );
}

#[tokio::test]
async fn pages_have_security_headers_languages_and_a_phone_first_path() {
    let s = TestServer::spawn().await;
    add_user(&s, "erin", "erin@example.org", Language::En).await;
    let link = invite(&s, "erin").await;
    let page = get(
        &s,
        &link,
        &[("accept-language", "de"), ("user-agent", DESKTOP)],
    )
    .await;
    assert_eq!(page.status, 200);
    let h = &page.headers;
    assert_eq!(
        h["content-security-policy"].to_str().unwrap(),
        "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; \
         form-action 'self'; base-uri 'none'"
    );
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-store");
    assert!(page.body.contains("<html lang=\"de\">"));
    assert!(!page.body.contains("<script"), "no JavaScript");
    // Desktop: the QR path comes first.
    let qr = page.body.find("value=\"qr\"").unwrap();
    let app = page.body.find("value=\"app\"").unwrap();
    assert!(qr < app);
    // The switch link leads to English.
    let english = get(&s, &format!("{link}?lang=en"), &[("accept-language", "de")]).await;
    assert!(english.body.contains("<html lang=\"en\">"));
    assert!(english.body.contains("?lang=de"));
    // A phone gets the direct path first and its store.
    let phone = get(&s, &link, &[("user-agent", ANDROID)]).await;
    let qr = phone.body.find("value=\"qr\"").unwrap();
    let app = phone.body.find("value=\"app\"").unwrap();
    assert!(app < qr);
    assert!(phone.body.contains("Google Play"));
    let iphone = get(&s, &format!("{link}?device=iphone"), &[]).await;
    assert!(iphone.body.contains("App Store"));
    // The stylesheet is served from the binary.
    let css = get(&s, "/static/enroll.css", &[]).await;
    assert_eq!(css.status, 200);
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.body.contains(":focus-visible"));
    // A forged form token is refused.
    let forged = post(
        &s,
        &format!("{link}/start"),
        &[("form_token", "00.k1:00"), ("path", "qr")],
    )
    .await;
    assert_eq!(forged.status, 400);
}

#[tokio::test]
async fn api_returns_the_link_on_request_and_reports_mail_failures() {
    // A port nothing listens on: the SMTP connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = TestServer::spawn_with(common::Db::Sqlite, move |c| {
        c.mail.smtp_host = "127.0.0.1".into();
        c.mail.smtp_port = closed;
        c.mail.smtp_security = tessera_server::config::SmtpSecurity::None;
        c.mail.smtp_timeout_secs = 2;
        c.server.public_url = "https://otp.example.org/".into();
    })
    .await;
    add_user(&s, "frank", "frank@example.org", Language::En).await;
    add_user(&s, "gina", "", Language::En).await;
    let admin = s.admin_session("root").await;
    let (st, body) = s
        .call(
            &admin,
            Method::POST,
            "/api/v1/users/frank/invitations",
            Some(json!({"send": false})),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    let link = body["link"].as_str().unwrap();
    assert!(
        link.starts_with("https://otp.example.org/enroll/"),
        "{link}"
    );
    let path = link.trim_start_matches("https://otp.example.org");
    assert_eq!(get(&s, path, &[]).await.status, 200);

    let (st, body) = s
        .call(
            &admin,
            Method::POST,
            "/api/v1/users/frank/invitations",
            None,
        )
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (502, Some("mail_failed")),
        "{body}"
    );
    // The new link never arrived and the old one is replaced.
    assert_eq!(get(&s, path, &[]).await.status, 410);
    let (st, body) = s
        .call(&admin, Method::POST, "/api/v1/users/gina/invitations", None)
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (400, Some("invalid_input"))
    );
    let (st, _) = s
        .call(
            &admin,
            Method::POST,
            "/api/v1/users/nobody/invitations",
            None,
        )
        .await;
    assert_eq!(st, 404);
    let (_, audit) = s
        .call(
            &admin,
            Method::GET,
            "/api/v1/audit?action=enroll.invite",
            None,
        )
        .await;
    let results: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, vec!["failure", "failure", "success"], "{audit}");
    assert!(
        !audit
            .to_string()
            .contains(path.trim_start_matches("/enroll/"))
    );
}

#[tokio::test]
async fn switching_otp_required_on_sends_an_invitation() {
    let s = TestServer::spawn().await;
    add_user(&s, "hank", "hank@example.org", Language::De).await;
    s.app
        .service
        .update_user(
            &Actor::operator(),
            "hank",
            UserChanges {
                otp_required: Some(true),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    let (subject, text, _) = newest_outbox_mail(&s);
    assert!(subject.starts_with("Einmalpasswort"), "{subject}");
    let link = link_path(&text);
    assert_eq!(get(&s, &link, &[]).await.status, 200);
}

#[tokio::test]
async fn recovery_can_be_off_for_a_user() {
    for db in common::databases() {
        recovery_can_be_off_for_a_user_on(db).await;
    }
}

async fn recovery_can_be_off_for_a_user_on(db: common::Db) {
    let s = TestServer::spawn_with(db, |c| {
        c.enroll.recovery_codes_for_new_users = false;
    })
    .await;
    add_user(&s, "ivy", "ivy@example.org", Language::En).await;
    let link = invite(&s, "ivy").await;
    let qr = start(&s, &link).await;
    let (done, _) = complete(&s, &link, &qr).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(recovery_codes(&done.body).is_empty());
    assert!(done.body.contains("How you sign in from now on"));
    let user = s.app.service.user_named("ivy").await.unwrap();
    let tokens = s.app.service.store().tokens_of(user.id).await.unwrap();
    assert_eq!(tokens[0].state, TokenState::Active);
}
