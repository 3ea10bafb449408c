//! What the recovery tests share: the steps of `/recover` and `/reset` in a cookie-keeping
//! browser, an enrolled user, a new device through an enrollment link, the audit trail, the
//! outbox and values out of mails.
#![allow(dead_code)] // each test binary uses a different part
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::path::PathBuf;

use tessera_server::model::{AuditFilter, Language};
use tessera_server::service::Actor;

use crate::common::{TestServer, oracle_totp};
use crate::enroll_support::{
    self, form_token, get, invite, parse_mail, post, recovery_codes, start,
};
use crate::web_support::{self, Browser, hidden, now};

/// The 8-digit code in a recovery mail.
pub fn emailed_code(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.len() == 8 && w.bytes().all(|b| b.is_ascii_digit()))
        .expect("a code in the mail")
        .to_owned()
}

/// Sends the first form; returns the page.
pub async fn recover(b: &mut Browser<'_>, username: &str, code: &str) -> web_support::Page {
    let form = b.get("/recover").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let value = hidden(&form.body, "recover_form");
    b.post(
        "/recover",
        &[
            ("recover_form", &value),
            ("username", username),
            ("recovery_code", code),
        ],
    )
    .await
}

/// Sends the second form with `code`.
pub async fn verify(
    b: &mut Browser<'_>,
    page: &web_support::Page,
    code: &str,
) -> web_support::Page {
    let value = hidden(&page.body, "recover_form");
    let ticket = hidden(&page.body, "ticket");
    let tries = hidden(&page.body, "tries");
    b.post(
        "/recover/code",
        &[
            ("recover_form", &value),
            ("ticket", &ticket),
            ("tries", &tries),
            ("code", code),
        ],
    )
    .await
}

/// Walks an enrollment link to an active token with a code of the server's current time;
/// returns the new recovery codes shown at the end.
pub async fn enroll_new_device(s: &TestServer, link: &str) -> Vec<String> {
    enroll_device_by(s, link, oracle_totp).await.0
}

/// Like [`enroll_new_device`], with the first code computed by Debian's `oathtool`; returns the
/// recovery codes and the device's Key URI.
pub async fn enroll_with_oathtool(s: &TestServer, link: &str) -> (Vec<String>, String) {
    enroll_device_by(s, link, oathtool_totp).await
}

/// The TOTP code of `uri` at `time` according to `oathtool` (an independent implementation).
pub fn oathtool_totp(uri: &str, time: u64) -> String {
    let parsed = tessera_otp::KeyUri::parse(uri).unwrap();
    let out = std::process::Command::new("oathtool")
        .args(["--totp", "-b", &parsed.secret.to_base32()])
        .arg(format!("--now=@{time}"))
        .output()
        .expect("oathtool is needed: run .ci/install-tools");
    assert!(out.status.success(), "oathtool failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn enroll_device_by(
    s: &TestServer,
    link: &str,
    code_of: fn(&str, u64) -> String,
) -> (Vec<String>, String) {
    let qr = start(s, link).await;
    assert_eq!(qr.status, 200, "{}", qr.body);
    let png = enroll_support::client()
        .get(s.url(&format!("{link}/qr.png")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let uri = enroll_support::rqrr_decode(&png);
    let page = get(s, &format!("{link}/verify"), &[]).await;
    let done = post(
        s,
        &format!("{link}/verify"),
        &[
            ("form_token", &form_token(&page.body)),
            ("name", "Neues Handy"),
            ("code", &code_of(&uri, now(s))),
        ],
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(!uri.is_empty());
    (recovery_codes(&done.body), uri)
}

/// The (action, result) pairs of the user's audit trail, newest first.
pub async fn actions(s: &TestServer, user: &str) -> Vec<(String, String)> {
    s.app
        .service
        .list_audit(
            &Actor::operator(),
            AuditFilter {
                username: Some(user.into()),
                limit: 100,
                ..AuditFilter::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event.action, e.event.result))
        .collect()
}

/// The `/not-me/<token>` path in a notification.
pub fn not_me_path(text: &str) -> String {
    let start = text.find("/not-me/").expect("a \"this wasn't me\" link");
    text[start..].split_whitespace().next().unwrap().to_owned()
}

/// Sends the reset request form for `email`.
pub async fn request_reset(b: &mut Browser<'_>, email: &str) -> web_support::Page {
    let form = b.get("/reset").await;
    assert_eq!(form.status, 200, "{}", form.body);
    let value = hidden(&form.body, "reset_form");
    b.post("/reset", &[("reset_form", &value), ("email", email)])
        .await
}

/// The path starting with `prefix` (e.g. `/reset/`) in a mail's text.
pub fn path_in(text: &str, prefix: &str) -> String {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in {text:?}"));
    text[start..].split_whitespace().next().unwrap().to_owned()
}

/// The text of the first outbox mail with this subject, waiting for it (some mails are sent in
/// the background).
pub async fn outbox_text(s: &TestServer, subject: &str) -> String {
    for _ in 0..100 {
        let files = std::fs::read_dir(s.data_dir().join("outbox"))
            .map(|d| d.map(|e| e.unwrap().path()).collect::<Vec<_>>())
            .unwrap_or_default();
        for f in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        {
            let (subj, text, _) = enroll_support::parse_mail(&std::fs::read(f).unwrap());
            if subj == subject {
                return text;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no mail {subject:?} in the outbox");
}

/// The `.eml` files in the outbox, oldest first, parsed: (subject, text).
pub fn outbox(s: &TestServer) -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir(s.data_dir().join("outbox")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap());
    files
        .iter()
        .map(|p| {
            let (subject, text, _) = parse_mail(&std::fs::read(p).unwrap());
            (subject, text)
        })
        .collect()
}

/// Waits (the recovery mail is sent in the background) until the outbox holds `n` mails.
pub async fn wait_for_mails(s: &TestServer, n: usize) -> Vec<(String, String)> {
    for _ in 0..100 {
        let mails = outbox(s);
        if mails.len() >= n {
            return mails;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("expected {n} mails, found {}", outbox(s).len());
}

/// The code of the first recovery-code mail after the first `before` mails (waiting for it).
pub async fn code_after(s: &TestServer, before: usize) -> String {
    for _ in 0..100 {
        if let Some((_, text)) = outbox(s).into_iter().skip(before).find(|(subject, _)| {
            subject == "Your recovery code" || subject == "Ihr Wiederherstellungscode"
        }) {
            return emailed_code(&text);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no recovery code mail after {before}");
}

/// A user enrolled through an invitation: returns the recovery codes shown at the end.
pub async fn enrolled_user(s: &TestServer, name: &str, language: Language) -> Vec<String> {
    enroll_support::add_user(s, name, &format!("{name}@example.org"), language).await;
    let link = invite(s, name).await;
    let qr = start(s, &link).await;
    let (done, _) = enroll_support::complete(s, &link, &qr).await;
    let codes = recovery_codes(&done.body);
    assert_eq!(codes.len(), 10, "{}", done.body);
    codes
}
