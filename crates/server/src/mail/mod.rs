//! Outbound e-mail: the [`Mailer`] role and its implementations. [`SmtpMailer`] hands messages to
//! an SMTP server, [`OutboxMailer`] writes them as `.eml` files (the default, so a new
//! installation works without a mail server) and [`MemoryMailer`] keeps them for tests.
//!
//! Bodies carry challenge codes and enrollment links: they are never logged and never printed by
//! `Debug`. Logs name the recipient and the subject at most. This module knows nothing about
//! users, tokens or templates; callers pass finished text.

mod memory;
pub(crate) mod outbox;
mod smtp;

use std::sync::Arc;

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};

use crate::clock::{Clock, SystemClock, UnixTime};
use crate::config::Config;

pub use memory::MemoryMailer;
pub use outbox::OutboxMailer;
pub use smtp::SmtpMailer;

/// One e-mail: plain text always, HTML optionally (sent as multipart/alternative).
#[derive(Clone)]
pub struct Email {
    /// Recipient, `user@example.org` or `Name <user@example.org>`.
    pub to: String,
    pub subject: String,
    /// The plain-text body; always sent.
    pub text: String,
    /// An HTML body; when present the mail is multipart/alternative with both.
    pub html: Option<String>,
}

impl std::fmt::Debug for Email {
    // The bodies carry codes and links: print who and what about, never the content.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The recipient (or the configured sender) is not a valid address; names the address.
    #[error("invalid e-mail address {0:?}")]
    InvalidAddress(String),
    /// The SMTP server refused the mail or could not be reached: its answer or the connection
    /// error. Never contains credentials.
    #[error("sending mail failed: {0}")]
    Send(String),
    /// Writing to the outbox failed.
    #[error("mail outbox: {0}")]
    Io(#[from] std::io::Error),
}

/// Something that delivers e-mail.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Sends one mail. `Ok` means the mail was handed over (to the SMTP server, or to the outbox
    /// directory), not that it reached the mailbox.
    async fn send(&self, email: &Email) -> Result<(), MailError>;
}

/// Where mails go instead of a mail server: `<data_dir>/outbox` when `mail.smtp_host` is empty,
/// `None` when mails are sent by SMTP.
pub fn outbox_dir(config: &Config) -> Option<std::path::PathBuf> {
    config
        .mail
        .smtp_host
        .trim()
        .is_empty()
        .then(|| config.data_dir.join(outbox::OUTBOX_DIR))
}

/// The mailer the configuration asks for: an [`OutboxMailer`] at [`outbox_dir`] when
/// `mail.smtp_host` is empty, an [`SmtpMailer`] otherwise. Dates come from the system clock.
pub fn mailer_from_config(config: &Config) -> Result<Arc<dyn Mailer>, MailError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match outbox_dir(config) {
        Some(dir) => Ok(Arc::new(OutboxMailer::new(dir, &config.mail.from, clock)?)),
        None => Ok(Arc::new(SmtpMailer::new(&config.mail, clock)?)),
    }
}

/// Parses an address, naming it in the error.
fn parse_mailbox(address: &str) -> Result<Mailbox, MailError> {
    address
        .trim()
        .parse()
        .map_err(|_| MailError::InvalidAddress(address.to_owned()))
}

/// Builds the RFC 5322 message for `email`: From, To, Subject, Date (from the clock) and a
/// Message-ID at the sender's domain; a text part, or text and HTML as multipart/alternative.
fn build_message(from: &Mailbox, email: &Email, now: UnixTime) -> Result<Message, MailError> {
    let to = parse_mailbox(&email.to)?;
    let secs = u64::try_from(now).unwrap_or(0);
    let date = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    // Our own random id rather than lettre's (fastrand) and at the sender's domain rather than
    // this host's name, which need not be public.
    let random = crate::crypto::random_bytes(16)
        .map_err(|e| MailError::Io(std::io::Error::other(e.to_string())))?;
    let message_id = format!(
        "<{}@{}>",
        data_encoding::HEXLOWER.encode(&random),
        from.email.domain()
    );
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.as_str())
        .date(date)
        .message_id(Some(message_id));
    let built = match &email.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            html.clone(),
        )),
        None => builder.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(email.text.clone()),
        ),
    };
    // From and To are set and parsed above, so a build error is an address problem lettre found.
    built.map_err(|e| MailError::InvalidAddress(format!("{}: {e}", email.to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(html: Option<&str>) -> Email {
        Email {
            to: "alice@example.org".into(),
            subject: "Your code".into(),
            text: "Your code is 123456".into(),
            html: html.map(str::to_owned),
        }
    }

    #[test]
    fn email_debug_shows_recipient_and_subject_but_no_body() {
        let printed = format!("{:?}", email(Some("<p>code 654321</p>")));
        assert!(printed.contains("alice@example.org"), "{printed}");
        assert!(printed.contains("Your code"), "{printed}");
        assert!(!printed.contains("123456"), "{printed}");
        assert!(!printed.contains("654321"), "{printed}");
    }

    #[test]
    fn message_has_headers_from_clock_and_sender_domain() {
        let from: Mailbox = "Tessera <tessera@example.com>".parse().unwrap();
        let msg = build_message(&from, &email(None), 1_700_000_000).unwrap();
        let raw = String::from_utf8(msg.formatted()).unwrap();
        assert!(
            raw.contains("Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"),
            "{raw}"
        );
        assert!(raw.contains("@example.com>\r\n"), "{raw}");
        assert!(
            raw.contains("Content-Type: text/plain; charset=utf-8"),
            "{raw}"
        );
    }

    #[test]
    fn invalid_recipient_is_named() {
        let from: Mailbox = "tessera@example.com".parse().unwrap();
        let mut e = email(None);
        e.to = "not an address".into();
        match build_message(&from, &e, 0) {
            Err(MailError::InvalidAddress(a)) => assert_eq!(a, "not an address"),
            other => panic!("expected InvalidAddress, got {other:?}"),
        }
    }

    #[test]
    fn empty_smtp_host_means_outbox() {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: data.path().to_owned(),
            ..Config::default()
        };
        let mailer = mailer_from_config(&config).unwrap();
        assert!(
            format!("{mailer:?}").starts_with("OutboxMailer"),
            "{mailer:?}"
        );
        assert!(data.path().join("outbox").is_dir());

        config.mail.smtp_host = "smtp.example.com".into();
        config.mail.smtp_password = "hunter2-secret".into();
        config.mail.smtp_username = "tessera".into();
        let mailer = mailer_from_config(&config).unwrap();
        let printed = format!("{mailer:?}");
        assert!(printed.starts_with("SmtpMailer"), "{printed}");
        assert!(printed.contains("smtp.example.com:587"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn invalid_sender_address_is_named() {
        let mut config = Config::default();
        config.mail.smtp_host = "smtp.example.com".into();
        config.mail.from = "Tessera".into();
        match mailer_from_config(&config) {
            Err(MailError::InvalidAddress(a)) => assert_eq!(a, "Tessera"),
            other => panic!("expected InvalidAddress, got {other:?}"),
        }
    }

    #[test]
    fn header_injection_in_subject_adds_no_header() {
        let from: Mailbox = "tessera@example.com".parse().unwrap();
        let mut e = email(None);
        e.subject = "Hello\r\nBcc: mallory@example.net".into();
        let raw = String::from_utf8(build_message(&from, &e, 0).unwrap().formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
    }
}
