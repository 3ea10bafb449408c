//! Self-enrollment by e-mail (SPEC F1) end to end: the invitation mailed (to a real SMTP server,
//! or to the outbox), the link read from the mail, the pages fetched over HTTP, the QR code
//! decoded by independent decoders (rqrr in-process, zbarimg from Debian), the first code computed
//! by an independent TOTP implementation (totp-rs), and the link's end states.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{TestServer, oracle_totp, run_cli, stderr, stdout};
use mail_parser::MessageParser;
use reqwest::Method;
use serde_json::json;
use tessera_server::model::{Language, TokenState};
use tessera_server::service::{Actor, CreateUser, UserChanges};

const NOW: u64 = 1_700_000_000;
const DESKTOP: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36";
const ANDROID: &str =
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36";

async fn add_user(s: &TestServer, name: &str, email: &str, language: Language) {
    s.app
        .service
        .create_user(
            &Actor::operator(),
            CreateUser {
                username: name.into(),
                display_name: format!("{name} Example"),
                email: email.into(),
                language: Some(language),
                ..CreateUser::default()
            },
        )
        .await
        .unwrap();
}

/// The newest `.eml` in the outbox, parsed: (subject, text body, html body).
fn newest_outbox_mail(s: &TestServer) -> (String, String, String) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(s.data_dir().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    parse_mail(&std::fs::read(files.last().expect("a mail in the outbox")).unwrap())
}

fn parse_mail(raw: &[u8]) -> (String, String, String) {
    let msg = MessageParser::default().parse(raw).unwrap();
    (
        msg.subject().unwrap_or_default().to_owned(),
        msg.body_text(0).unwrap().into_owned(),
        msg.body_html(0).map(|h| h.into_owned()).unwrap_or_default(),
    )
}

/// The `/enroll/<token>` path of the link in a mail body.
fn link_path(body: &str) -> String {
    let start = body.find("/enroll/").expect("a link in the mail");
    body[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .unwrap()
        .to_owned()
}

async fn invite(s: &TestServer, user: &str) -> String {
    s.app
        .service
        .invite_user(&Actor::operator(), user, true)
        .await
        .unwrap();
    link_path(&newest_outbox_mail(s).1)
}

/// A client that does not follow redirects, so tests see them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

async fn get(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> Page {
    let mut req = client().get(s.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    Page {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

async fn post(s: &TestServer, path: &str, fields: &[(&str, &str)]) -> Page {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let r = client()
        .post(s.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    Page {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.text().await.unwrap(),
    }
}

/// The value of the hidden form token on a page.
fn form_token(body: &str) -> String {
    let at = body
        .find("name=\"form_token\" value=\"")
        .expect("a form token")
        + 25;
    body[at..].split('"').next().unwrap().to_owned()
}

/// Landing page, then "start" on the QR path: returns the QR page.
async fn start(s: &TestServer, link: &str) -> Page {
    let landing = get(s, link, &[("user-agent", DESKTOP)]).await;
    assert_eq!(landing.status, 200, "{}", landing.body);
    let started = post(
        s,
        &format!("{link}/start"),
        &[
            ("form_token", &form_token(&landing.body)),
            ("device", "android"),
            ("path", "qr"),
        ],
    )
    .await;
    assert_eq!(started.status, 303);
    let location = started.headers["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("{link}/qr")), "{location}");
    get(s, &location, &[]).await
}

/// Decodes a PNG with rqrr (in-process).
fn rqrr_decode(png: &[u8]) -> String {
    let img = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

/// Decodes an image file with Debian's zbarimg.
fn zbarimg_decode(file: &Path) -> String {
    let out = Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(file)
        .output()
        .expect("zbarimg is needed: run .ci/install-tools");
    assert!(out.status.success(), "zbarimg: {}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// The QR code of the page's inline SVG, rendered by rsvg-convert and decoded by zbarimg.
fn decode_page_svg(page: &str, dir: &Path) -> String {
    let start = page.find("<svg").expect("an inline SVG");
    let end = page[start..].find("</svg>").unwrap() + start + 6;
    let svg = dir.join("qr.svg");
    std::fs::write(&svg, &page[start..end]).unwrap();
    let png = dir.join("qr-from-svg.png");
    let out = Command::new("rsvg-convert")
        .args(["-w", "600", "-b", "white", "-o"])
        .arg(&png)
        .arg(&svg)
        .output()
        .expect("rsvg-convert is needed: run .ci/install-tools");
    assert!(out.status.success(), "rsvg-convert: {}", stderr(&out));
    zbarimg_decode(&png)
}

/// Every byte of the SQLite database and its WAL.
fn database_bytes(s: &TestServer) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(s.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tessera.db")
        {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The recovery codes on the done page.
fn recovery_codes(body: &str) -> Vec<String> {
    body.split("<li><code>")
        .skip(1)
        .map(|part| part.split("</code>").next().unwrap().to_owned())
        .collect()
}

/// Walks a started enrollment to the end: decodes the QR, types the oracle's code, returns the
/// done page and the decoded URI.
async fn complete(s: &TestServer, link: &str, qr_page: &Page) -> (Page, String) {
    let png = client()
        .get(s.url(&format!("{link}/qr.png")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let uri = rqrr_decode(&png);
    assert!(qr_page.body.contains("otpauth") || !uri.is_empty());
    let verify = get(s, &format!("{link}/verify"), &[]).await;
    assert_eq!(verify.status, 200);
    let code = oracle_totp(&uri, NOW);
    let done = post(
        s,
        &format!("{link}/verify"),
        &[
            ("form_token", &form_token(&verify.body)),
            ("name", "Diensthandy"),
            ("code", &code),
        ],
    )
    .await;
    (done, uri)
}

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
    assert!(uri.starts_with("otpauth://totp/Tessera:alice?"), "{uri}");

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

#[test]
fn cli_prints_a_link_sends_in_bulk_and_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let run = |args: &[&str]| run_cli(data, args, None);
    for (name, email) in [
        ("jo", "jo@example.org"),
        ("kai", "kai@example.org"),
        ("lu", ""),
    ] {
        let mut args = vec!["user", "add", name, "--otp-required"];
        if !email.is_empty() {
            args.extend(["--email", email]);
        }
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run(&["enroll", "link", "jo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("/enroll/"), "{}", stdout(&out));

    // Everyone pending gets a mail; lu has no address: reported, exit 1.
    let out = run(&["--json", "enroll", "send", "--all-pending"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let results: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let sent: Vec<(&str, bool)> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["username"].as_str().unwrap(),
                r["sent"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(sent, vec![("jo", true), ("kai", true), ("lu", false)]);
    assert!(
        stderr(&out).contains("error (invalid_input): lu:"),
        "{}",
        stderr(&out)
    );
    let mails = std::fs::read_dir(data.join("outbox")).unwrap().count();
    assert_eq!(mails, 2);

    let out = run(&["enroll", "send", "kai"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 of 1 invitations sent."),
        "{}",
        stdout(&out)
    );

    let out = run(&["enroll", "recovery", "kai", "off"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Recovery codes for kai: off."),
        "{}",
        stdout(&out)
    );

    let out = run(&["send-test-email", "it@example.org"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("outbox"), "{}", stdout(&out));
    let out = run(&["send-test-email", "not an address"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid_input"), "{}", stderr(&out));
}
