//! What the challenge tests share: the default limits, mails out of aiosmtpd or the outbox, the
//! SMS gateway stub, fixtures for e-mail and SMS users, and answering a challenge.
#![allow(dead_code)] // each test binary uses a different part
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use mail_parser::MessageParser;
use serde_json::{Value, json};
use tessera_server::Config;
use tessera_server::model::{AppMode, Language, TokenKind};

use crate::common::Db;
use crate::common::smtp::SmtpSink;
use crate::common::validate::{Fixture, PASSWORD};

/// Seconds a challenge stays valid, and wrong answers that void it (the defaults).
pub const TTL: i64 = 300;
pub const MAX_ATTEMPTS: usize = 3;
pub const PHONE: &str = "+4915112345678";

/// One received e-mail, decoded.
#[derive(Debug)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

pub fn parse_mail(raw: &[u8]) -> Mail {
    let msg = MessageParser::default().parse(raw).unwrap();
    Mail {
        to: msg
            .to()
            .unwrap()
            .first()
            .unwrap()
            .address()
            .unwrap()
            .to_owned(),
        subject: msg.subject().unwrap().to_owned(),
        text: msg.body_text(0).unwrap().into_owned(),
    }
}

/// The mails aiosmtpd stored, oldest first. aiosmtpd stores a message before it answers DATA, so
/// a challenge the server reported as sent is already there.
pub fn mails(sink: &SmtpSink) -> Vec<Mail> {
    sink.delivered().iter().map(|m| parse_mail(m)).collect()
}

/// The `.eml` files in the server's outbox.
pub fn outbox_mails(f: &Fixture) -> Vec<Mail> {
    let mut files: Vec<_> = std::fs::read_dir(f.s.data_dir().join("outbox"))
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    files
        .iter()
        .map(|p| parse_mail(&std::fs::read(p).unwrap()))
        .collect()
}

/// The code in a message: its one run of six or more digits.
pub fn code_in(text: &str) -> String {
    let runs: Vec<&str> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() >= 6)
        .collect();
    assert_eq!(runs.len(), 1, "one code in {text:?}");
    runs[0].to_owned()
}

/// A code of the same length that is certainly not `code`.
pub fn other_code(code: &str, n: u32) -> String {
    let digits = u32::try_from(code.len()).unwrap();
    let next = (code.parse::<u64>().unwrap() + u64::from(n)) % 10u64.pow(digits);
    format!("{next:0width$}", width = code.len())
}

/// Sends `body`, expects a challenge of `kind`; returns the transaction id.
pub async fn trigger_with(f: &Fixture, body: Value, kind: &str) -> String {
    let (status, v) = f.validate(body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"], "challenge", "{v}");
    assert_eq!(v["challenge_kind"], kind, "{v}");
    let tid = v["transaction_id"].as_str().unwrap().to_owned();
    assert!(
        tid.len() >= 40,
        "a transaction id of 256 random bits: {tid}"
    );
    tid
}

/// The password alone: the user's challenge token sends a code.
pub async fn trigger(f: &Fixture, user: &str, kind: &str) -> String {
    trigger_with(f, json!({"username": user, "password": PASSWORD}), kind).await
}

/// Answers a challenge; returns `accept` or `reject`.
pub async fn answer(f: &Fixture, user: &str, tid: &str, code: &str) -> String {
    f.result(json!({"username": user, "transaction_id": tid, "otp": code}))
        .await
}

/// A fixture whose server sends mail through `sink`.
pub async fn smtp_fixture(db: Db, sink: &SmtpSink, tweak: impl FnOnce(&mut Config)) -> Fixture {
    let mail = sink.mail_config();
    assert_eq!(mail.smtp_host, "127.0.0.1");
    Fixture::with(db, AppMode::PasswordAndOtp, move |c| {
        c.mail = mail;
        tweak(c);
    })
    .await
}

/// A user with an e-mail address, [`PASSWORD`] and an e-mail token.
pub async fn email_user(f: &Fixture, name: &str, language: Language) {
    f.user_with(name, |u| {
        u.otp_required = true;
        u.language = Some(language);
    })
    .await;
    f.challenge_token(name, TokenKind::Email).await;
}

/// An SMS gateway on 127.0.0.1: `POST /send` records the JSON body and answers with `status`
/// (200 unless a test changes it), echoing the request on an error as some gateways do.
pub struct Gateway {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Value>>>,
    pub status: Arc<AtomicU16>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Gateway {
    pub async fn start() -> Gateway {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (record, answer) = (seen.clone(), status.clone());
        let app = axum::Router::new().route(
            "/send",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (record, answer) = (record.clone(), answer.clone());
                async move {
                    let echo = String::from_utf8_lossy(&body).into_owned();
                    let parsed =
                        serde_json::from_slice(&body).unwrap_or(Value::String(echo.clone()));
                    record.lock().unwrap().push(parsed);
                    let status =
                        axum::http::StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap();
                    let text = if status.is_success() {
                        "queued".to_owned()
                    } else {
                        format!("cannot deliver {echo}")
                    };
                    (status, text)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Gateway {
            addr,
            seen,
            status,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/send", self.addr)
    }

    pub fn received(&self) -> Vec<Value> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fixture whose server sends SMS through `gateway` with the default JSON template.
pub async fn sms_fixture(gateway: &Gateway) -> Fixture {
    let url = gateway.url();
    Fixture::with(Db::Sqlite, AppMode::PasswordAndOtp, move |c| {
        c.sms.gateway_url = url;
    })
    .await
}

/// A user with a phone number, [`PASSWORD`] and an SMS token.
pub async fn sms_user(f: &Fixture, name: &str) {
    f.user_with(name, |u| {
        u.otp_required = true;
        u.phone = PHONE.into();
    })
    .await;
    f.challenge_token(name, TokenKind::Sms).await;
}

/// The code in the SMS the gateway received after `before` earlier ones: the only new one.
pub fn sms_code(gateway: &Gateway, before: usize) -> String {
    let seen = gateway.received();
    assert_eq!(seen.len(), before + 1, "{seen:?}");
    let sms = &seen[before];
    assert_eq!(sms["to"], PHONE, "{sms}");
    assert_eq!(sms.as_object().unwrap().len(), 2, "{sms}");
    code_in(sms["text"].as_str().unwrap())
}

/// Runs one statement on the server's SQLite file from outside and returns the first column.
pub async fn sqlite_scalar(db: &Path, sql: &'static str) -> i64 {
    use sqlx::Connection as _;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
    let mut conn = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    n
}
