//! The SMTP mailer against a real SMTP server: Debian's aiosmtpd, writing what it receives into a
//! Maildir the test reads back (installed by `.ci/install-tools`).

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mail_parser::MessageParser;
use tessera_server::clock::FixedClock;
use tessera_server::config::{Config, MailConfig, SmtpSecurity};
use tessera_server::mail::{Email, MailError, Mailer as _, SmtpMailer, mailer_from_config};

/// A handler for aiosmtpd that refuses every recipient, as a server does for an unknown mailbox.
const REJECTING_HANDLER: &str = r#"
class RejectRecipients:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 <%s>: mailbox unavailable" % address
"#;

/// aiosmtpd on a free loopback port; killed when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Stores every message in a Maildir.
    fn maildir() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("Maildir");
        Self::start(
            dir,
            &["-c", "aiosmtpd.handlers.Mailbox", maildir.to_str().unwrap()],
        )
    }

    /// Stores every message, offering STARTTLS (or, with `implicit`, only TLS from the first
    /// byte) with a self-signed certificate no trust store knows. Made once with
    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 36500
    /// -subj "/O=Tessera tests/CN=untrusted self-signed SMTP test certificate"
    /// -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE
    /// -addext keyUsage=critical,digitalSignature -addext extendedKeyUsage=serverAuth`.
    fn self_signed_tls(implicit: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("Maildir");
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let cert = format!("{fixtures}/smtp-self-signed.crt");
        let key = format!("{fixtures}/smtp-self-signed.key");
        let (cert_flag, key_flag) = if implicit {
            ("--smtpscert", "--smtpskey")
        } else {
            ("--tlscert", "--tlskey")
        };
        Self::start(
            dir,
            &[
                cert_flag,
                &cert,
                key_flag,
                &key,
                "-c",
                "aiosmtpd.handlers.Mailbox",
                maildir.to_str().unwrap(),
            ],
        )
    }

    /// Refuses every recipient with 550.
    fn rejecting() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tessera_reject.py"), REJECTING_HANDLER).unwrap();
        Self::start(dir, &["-c", "tessera_reject.RejectRecipients"])
    }

    fn start(dir: tempfile::TempDir, handler: &[&str]) -> Self {
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("aiosmtpd.log")).unwrap();
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(handler)
            .env("PYTHONPATH", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3-aiosmtpd is needed: run .ci/install-tools");
        let mut sink = Self { child, port, dir };
        sink.wait_until_listening();
        sink
    }

    /// Polls the port until aiosmtpd accepts, for at most ~10 s.
    fn wait_until_listening(&mut self) {
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("aiosmtpd exited with {status}: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("aiosmtpd did not listen within 10 s: {}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default()
    }

    /// The messages in the Maildir's `new/`. aiosmtpd stores a message before it answers DATA,
    /// so whatever was sent successfully is already there.
    fn delivered(&self) -> Vec<Vec<u8>> {
        let new = self.dir.path().join("Maildir").join("new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&new)
            .map(|entries| entries.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        files.sort();
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    fn mail_config(&self) -> MailConfig {
        MailConfig {
            from: "Tessera <tessera@example.com>".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: self.port,
            smtp_security: SmtpSecurity::None,
            smtp_timeout_secs: 5,
            ..MailConfig::default()
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
