//! E-mail codes over RADIUS: the Access-Challenge goes out at once and the code is sent in the
//! background, so that a slow or hanging mail server never uses up the NAS's few seconds.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod challenge_support;
mod common;

use std::time::Duration;

use challenge_support::{code_in, outbox_mails};
use common::Db;
use common::radius::RadiusFixture;
use common::validate::PASSWORD;
use tessera_radius::{attr, code};
use tessera_server::model::{RadiusMode, TokenKind};

#[tokio::test]
async fn email_codes_answer_the_challenge_and_the_state_carries_the_transaction() {
    let r = RadiusFixture::new(Db::Sqlite, RadiusMode::Challenge).await;
    r.f.user("bob", true).await;
    r.f.challenge_token("bob", TokenKind::Email).await;
    let nas = r.nas().await;
    let challenge = nas.ask("bob", PASSWORD, &[]).await.unwrap();
    assert_eq!(challenge.code, code::ACCESS_CHALLENGE);
    let message = challenge.all(attr::REPLY_MESSAGE).remove(0);
    assert_eq!(message, b"Enter the code we sent you by e-mail");
    // Sent in the background: wait for it (bounded).
    let mut mails = Vec::new();
    for _ in 0..50 {
        mails = outbox_mails(&r.f);
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let code = code_in(&mails[0].text);
    let state = challenge.state().unwrap();
    let a = nas
        .ask("bob", &code, &[(attr::STATE, &state)])
        .await
        .unwrap();
    assert_eq!(a.code, code::ACCESS_ACCEPT);
}

#[tokio::test]
async fn a_hanging_mail_server_does_not_delay_the_challenge() {
    // Accepts connections (the kernel's backlog) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let r = RadiusFixture::with(
        Db::Sqlite,
        |c| {
            c.mail.smtp_host = "127.0.0.1".into();
            c.mail.smtp_port = port;
            c.mail.smtp_security = tessera_server::config::SmtpSecurity::None;
            c.mail.smtp_timeout_secs = 30;
        },
        |c| c.mode = RadiusMode::Challenge,
    )
    .await;
    r.f.user("bob", true).await;
    r.f.challenge_token("bob", TokenKind::Email).await;
    let nas = r.nas().await;
    // The NAS waits 4 s here; the mail server would hold a sender for 30 s.
    let challenge = nas
        .ask("bob", PASSWORD, &[])
        .await
        .expect("challenge at once");
    assert_eq!(challenge.code, code::ACCESS_CHALLENGE);
    drop(silent);
}
