//! Self-enrollment by e-mail (SPEC F1) end to end: the invitation mailed to a real SMTP server,
//! the link read from the mail, the pages fetched over HTTP, the QR code decoded by independent
//! decoders (rqrr in-process, zbarimg from Debian), the first code computed by an independent
//! TOTP implementation (totp-rs), and only hashes in the database.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod enroll_support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::TestServer;
use enroll_support::*;
use reqwest::Method;
use serde_json::json;
use tessera_server::model::Language;

/// aiosmtpd on a free loopback port writing a Maildir; killed when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = dir.path().join("Maildir");
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox", maildir.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is needed: run .ci/install-tools");
        // Held from here on, so the process is killed (and reaped) on every path.
        let sink = SmtpSink { child, port, dir };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return sink;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("aiosmtpd did not listen within 10 s");
    }

    fn delivered(&self) -> Vec<Vec<u8>> {
        let new = self.dir.path().join("Maildir").join("new");
        std::fs::read_dir(new)
            .map(|entries| {
                entries
                    .map(|e| std::fs::read(e.unwrap().path()).unwrap())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn invitation_over_smtp_enrolls_a_token_with_an_independent_code() {
    let sink = SmtpSink::start();
    let port = sink.port;
    let s = TestServer::spawn_with(common::Db::Sqlite, move |c| {
        c.mail.from = "Tessera <tessera@example.com>".into();
        c.mail.smtp_host = "127.0.0.1".into();
        c.mail.smtp_port = port;
        c.mail.smtp_security = tessera_server::config::SmtpSecurity::None;
        c.enroll.organisation = "Beispiel GmbH".into();
    })
    .await;
    add_user(&s, "alice", "alice@example.org", Language::De).await;
    let admin = s.admin_session("root").await;

    // The admin sends the invitation through the API; it arrives at the SMTP server.
    let (st, body) = s
        .call(
            &admin,
            Method::POST,
            "/api/v1/users/alice/invitations",
            Some(json!({})),
        )
        .await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["emailed_to"], "alice@example.org");
    assert!(
        body.get("link").is_none(),
        "a mailed link is not in the answer"
    );
    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 1);
    let (subject, text, html) = parse_mail(&delivered[0]);
    assert_eq!(subject, "Einmalpasswort für Beispiel GmbH einrichten");
    assert!(text.contains("Hallo alice Example,"), "{text}");
    assert!(text.contains("Authenticator-App"), "{text}");
    assert!(
        text.contains("17.11.2023, 22:13 UTC"),
        "expiry after 72 h: {text}"
    );
    let link = link_path(&text);
    assert_eq!(link_path(&html), link, "the HTML part has the same link");
    let link_token = link.trim_start_matches("/enroll/").to_owned();
    assert!(link_token.len() >= 43, "at least 256 bits: {link_token}");

    // The landing page names the user, in German from Accept-Language.
    let landing = get(&s, &link, &[("accept-language", "de-DE,de;q=0.9")]).await;
    assert_eq!(landing.status, 200);
    assert!(landing.body.contains("<html lang=\"de\">"));
    assert!(landing.body.contains("Hallo alice Example,"));
    assert!(landing.body.contains("Google Authenticator"));

    let qr_page = start(&s, &link).await;
    assert_eq!(qr_page.status, 200, "{}", qr_page.body);
    assert!(qr_page.body.contains("<svg"));
    let (done, uri) = complete(&s, &link, &qr_page).await;
    assert!(
        uri.starts_with("otpauth://totp/Beispiel%20GmbH:alice?"),
        "{uri}"
    );

    let png = client()
        .get(s.url(&format!("{link}/qr.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), 410, "no QR once the token is active");

    assert_eq!(done.status, 200, "{}", done.body);
    let codes = recovery_codes(&done.body);
    assert_eq!(codes.len(), 10, "{}", done.body);
    assert!(
        codes
            .iter()
            .all(|c| c.len() == 11 && c.as_bytes()[5] == b'-')
    );
    assert!(done.body.contains("download=\"recovery-codes.txt\""));

    // The token is active, with the name the user gave it.
    let (st, tokens) = s
        .call(&admin, Method::GET, "/api/v1/users/alice/tokens", None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(tokens[0]["state"], "active", "{tokens}");
    assert_eq!(tokens[0]["name"], "Diensthandy");

    // Continuing needs the checkbox; then how to sign in.
    let finish = post(
        &s,
        &format!("{link}/done"),
        &[("form_token", &form_token(&done.body)), ("saved", "yes")],
    )
    .await;
    assert_eq!(finish.status, 200, "{}", finish.body);
    assert!(finish.body.contains("alice"));
    assert!(recovery_codes(&finish.body).is_empty());

    // The link is used: every page says so with 410, never the QR or the codes again.
    for sub in ["", "/qr", "/app", "/verify"] {
        let again = get(&s, &format!("{link}{sub}"), &[]).await;
        assert_eq!(again.status, 410, "{sub}");
        assert!(!again.body.contains("<svg"), "{sub}");
        assert!(!again.body.contains(&codes[0]), "{sub}");
    }

    // The database holds only hashes of the link and the codes.
    let db = database_bytes(&s);
    assert!(
        contains(&db, &sha256_hex(&link_token)),
        "the hash is stored"
    );
    assert!(!contains(&db, &link_token), "the link token is not stored");
    for code in &codes {
        assert!(!contains(&db, code), "recovery code {code} stored in clear");
        assert!(!contains(&db, &code.replace('-', "")));
    }
}

fn sha256_hex(s: &str) -> String {
    tessera_server::crypto::token_hash(s)
}

#[tokio::test]
async fn qr_code_decodes_with_rqrr_and_zbarimg_from_png_and_svg() {
    let s = TestServer::spawn().await;
    add_user(&s, "bob", "bob@example.org", Language::En).await;
    let link = invite(&s, "bob").await;
    let qr_page = start(&s, &link).await;
    let png = client()
        .get(s.url(&format!("{link}/qr.png")))
        .send()
        .await
        .unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    assert_eq!(png.headers()["cache-control"], "no-store");
    let png = png.bytes().await.unwrap();
    let uri = rqrr_decode(&png);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("qr.png");
    std::fs::write(&file, &png).unwrap();
    assert_eq!(zbarimg_decode(&file), uri);
    assert_eq!(decode_page_svg(&qr_page.body, tmp.path()), uri);
    // The page shows issuer, account and the key in groups of four for typing.
    let secret = tessera_otp::KeyUri::parse(&uri).unwrap().secret;
    assert!(qr_page.body.contains(&secret.to_base32_grouped()));
    assert!(qr_page.body.contains(">Tessera<") && qr_page.body.contains(">bob<"));
    // The direct path offers the same URI as a link.
    let app = get(&s, &format!("{link}/app"), &[]).await;
    assert!(
        app.body
            .contains(&format!("href=\"{}\"", uri.replace('&', "&#38;")))
            || app
                .body
                .contains(&format!("href=\"{}\"", uri.replace('&', "&amp;"))),
        "{}",
        app.body
    );
}
