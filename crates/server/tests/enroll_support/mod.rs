//! What the enrollment tests share: users, the outbox, the pages over HTTP, QR decoders.
#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::Command;

use mail_parser::MessageParser;
use tessera_server::model::Language;
use tessera_server::service::{Actor, CreateUser};

use crate::common::{TestServer, oracle_totp, stderr, stdout};

pub const NOW: u64 = 1_700_000_000;
pub const DESKTOP: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36";
pub const ANDROID: &str =
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/131.0 Mobile Safari/537.36";

pub async fn add_user(s: &TestServer, name: &str, email: &str, language: Language) {
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
pub fn newest_outbox_mail(s: &TestServer) -> (String, String, String) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(s.data_dir().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    parse_mail(&std::fs::read(files.last().expect("a mail in the outbox")).unwrap())
}

pub fn parse_mail(raw: &[u8]) -> (String, String, String) {
    let msg = MessageParser::default().parse(raw).unwrap();
    (
        msg.subject().unwrap_or_default().to_owned(),
        msg.body_text(0).unwrap().into_owned(),
        msg.body_html(0).map(|h| h.into_owned()).unwrap_or_default(),
    )
}

/// The `/enroll/<token>` path of the link in a mail body.
pub fn link_path(body: &str) -> String {
    let start = body.find("/enroll/").expect("a link in the mail");
    body[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .unwrap()
        .to_owned()
}

pub async fn invite(s: &TestServer, user: &str) -> String {
    s.app
        .service
        .invite_user(&Actor::operator(), user, true)
        .await
        .unwrap();
    link_path(&newest_outbox_mail(s).1)
}

/// A client that does not follow redirects, so tests see them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub struct Page {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

pub async fn get(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> Page {
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

pub async fn post(s: &TestServer, path: &str, fields: &[(&str, &str)]) -> Page {
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
pub fn form_token(body: &str) -> String {
    let at = body
        .find("name=\"form_token\" value=\"")
        .expect("a form token")
        + 25;
    body[at..].split('"').next().unwrap().to_owned()
}

/// Landing page, then "start" on the QR path: returns the QR page.
pub async fn start(s: &TestServer, link: &str) -> Page {
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
pub fn rqrr_decode(png: &[u8]) -> String {
    let img = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

/// Decodes an image file with Debian's zbarimg.
pub fn zbarimg_decode(file: &Path) -> String {
    let out = Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(file)
        .output()
        .expect("zbarimg is needed: run .ci/install-tools");
    assert!(out.status.success(), "zbarimg: {}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// The QR code of the page's inline SVG, rendered by rsvg-convert and decoded by zbarimg.
pub fn decode_page_svg(page: &str, dir: &Path) -> String {
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
pub fn database_bytes(s: &TestServer) -> Vec<u8> {
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

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The recovery codes on the done page.
pub fn recovery_codes(body: &str) -> Vec<String> {
    body.split("<li><code>")
        .skip(1)
        .map(|part| part.split("</code>").next().unwrap().to_owned())
        .collect()
}

/// Walks a started enrollment to the end: decodes the QR, types the oracle's code, returns the
/// done page and the decoded URI.
pub async fn complete(s: &TestServer, link: &str, qr_page: &Page) -> (Page, String) {
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
