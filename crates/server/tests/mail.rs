//! The SMTP mailer against a real SMTP server: Debian's aiosmtpd, writing what it receives into a
//! Maildir the test reads back (installed by `.ci/install-tools`).

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::smtp::{SmtpSink, free_port};
use mail_parser::MessageParser;
use tessera_server::clock::FixedClock;
use tessera_server::config::{Config, MailConfig, SmtpSecurity};
use tessera_server::mail::{Email, MailError, Mailer as _, SmtpMailer, mailer_from_config};

fn code_email() -> Email {
    Email {
        to: "Alice <alice@example.org>".into(),
        subject: "Your Tessera sign-in code".into(),
        text: "Your code is 493817. It is valid for 5 minutes.".into(),
        html: Some("<p>Your code is <strong>493817</strong>.</p>".into()),
    }
}

fn header<'a>(msg: &'a mail_parser::Message<'a>, name: &'static str) -> Option<&'a str> {
    msg.header(name).and_then(|h| h.as_text())
}

#[tokio::test]
async fn smtp_mailer_delivers_to_a_real_smtp_server() {
    let sink = SmtpSink::maildir();
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: data.path().to_owned(),
        mail: sink.mail_config(),
        ..Config::default()
    };
    let mailer = mailer_from_config(&config).unwrap();
    mailer.send(&code_email()).await.unwrap();

    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 1, "{}", sink.log());
    let msg = MessageParser::default().parse(&delivered[0]).unwrap();
    let to = msg.to().unwrap().first().unwrap();
    assert_eq!(to.address(), Some("alice@example.org"));
    assert_eq!(
        msg.from().unwrap().first().unwrap().address(),
        Some("tessera@example.com")
    );
    assert_eq!(msg.subject(), Some("Your Tessera sign-in code"));
    assert_eq!(
        msg.body_text(0).unwrap().trim_end(),
        "Your code is 493817. It is valid for 5 minutes."
    );
    assert_eq!(
        msg.body_html(0).unwrap().trim_end(),
        "<p>Your code is <strong>493817</strong>.</p>"
    );
    assert!(msg.date().is_some());
    assert!(msg.message_id().unwrap().ends_with("@example.com"));
    // aiosmtpd records the SMTP envelope: the mail went to the right mailbox, not only the header.
    assert_eq!(header(&msg, "X-RcptTo"), Some("alice@example.org"));
    assert_eq!(header(&msg, "X-MailFrom"), Some("tessera@example.com"));
    // The outbox is not used when an SMTP host is configured.
    assert!(!data.path().join("outbox").exists());
}

#[tokio::test]
async fn smtp_mailer_sends_plain_text_alone_and_dates_from_the_clock() {
    let sink = SmtpSink::maildir();
    let mailer = SmtpMailer::new(
        &sink.mail_config(),
        Arc::new(FixedClock::new(1_700_000_000)),
    )
    .unwrap();
    let email = Email {
        to: "bob@example.org".into(),
        subject: "Welcome".into(),
        text: "Plain words only.".into(),
        html: None,
    };
    mailer.send(&email).await.unwrap();
    mailer.send(&email).await.unwrap();

    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 2);
    let msg = MessageParser::default().parse(&delivered[0]).unwrap();
    assert_eq!(msg.date().unwrap().to_timestamp(), 1_700_000_000);
    assert_eq!(msg.body_text(0).unwrap().trim_end(), "Plain words only.");
    assert_eq!(msg.text_body_count(), 1);
    assert_eq!(msg.html_body_count(), 1); // mail-parser counts the text part as its HTML view
    assert_eq!(msg.attachment_count(), 0);
}

#[tokio::test]
async fn smtp_rejected_recipient_is_a_send_error_with_the_server_reply() {
    let sink = SmtpSink::rejecting();
    let mailer = SmtpMailer::new(&sink.mail_config(), Arc::new(FixedClock::new(0))).unwrap();
    let err = mailer.send(&code_email()).await.unwrap_err();
    let MailError::Send(message) = &err else {
        panic!("expected Send, got {err:?}");
    };
    assert!(message.contains("550"), "{message}");
    assert!(message.contains("mailbox unavailable"), "{message}");
    assert!(!message.contains("493817"), "{message}");
}

#[tokio::test]
async fn smtp_server_not_listening_is_a_send_error_quickly() {
    let mut config = MailConfig {
        smtp_host: "127.0.0.1".into(),
        smtp_port: free_port(),
        smtp_security: SmtpSecurity::None,
        smtp_timeout_secs: 2,
        ..MailConfig::default()
    };
    config.smtp_username = "tessera".into();
    config.smtp_password = "hunter2-secret".into();
    let mailer = SmtpMailer::new(&config, Arc::new(FixedClock::new(0))).unwrap();
    // The bound only keeps a regression from hanging the suite; a refused connection fails at once.
    let result = tokio::time::timeout(Duration::from_secs(10), mailer.send(&code_email()))
        .await
        .expect("send must give up within its timeout");
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, MailError::Send(_)), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{}", config.smtp_port)),
        "{message}"
    );
    assert!(message.to_lowercase().contains("connect"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[tokio::test]
async fn smtp_credentials_without_server_support_fail_without_revealing_the_password() {
    // aiosmtpd offers no AUTH on a plain connection: the mailer must stop, not send anonymously.
    let sink = SmtpSink::maildir();
    let mut config = sink.mail_config();
    config.smtp_username = "tessera".into();
    config.smtp_password = "hunter2-secret".into();
    let mailer = SmtpMailer::new(&config, Arc::new(FixedClock::new(0))).unwrap();
    let err = mailer.send(&code_email()).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, MailError::Send(_)), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(sink.delivered().is_empty());
}

#[tokio::test]
async fn smtp_tls_refuses_a_certificate_the_system_does_not_trust() {
    // A mailer that accepted any certificate would hand codes to whoever sits on the path.
    for (security, implicit) in [(SmtpSecurity::Starttls, false), (SmtpSecurity::Tls, true)] {
        let sink = SmtpSink::self_signed_tls(implicit);
        let mut config = sink.mail_config();
        config.smtp_host = "localhost".into();
        config.smtp_security = security;
        let mailer = SmtpMailer::new(&config, Arc::new(FixedClock::new(0))).unwrap();
        let err = mailer.send(&code_email()).await.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, MailError::Send(_)), "{security:?}: {message}");
        assert!(
            message.to_lowercase().contains("certificate"),
            "{security:?}: {message}"
        );
        assert!(sink.delivered().is_empty(), "{security:?}");
    }
}
