//! aiosmtpd as a real SMTP server for tests: Debian's `python3-aiosmtpd` (installed by
//! `.ci/install-tools`) on a free loopback port, storing what it receives in a Maildir the test
//! reads back, or refusing every recipient.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tessera_server::config::{MailConfig, SmtpSecurity};

/// A handler for aiosmtpd that refuses every recipient, as a server does for an unknown mailbox.
const REJECTING_HANDLER: &str = r#"
class RejectRecipients:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 <%s>: mailbox unavailable" % address
"#;

/// aiosmtpd on a free loopback port; killed when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Stores every message in a Maildir.
    pub fn maildir() -> Self {
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
    pub fn self_signed_tls(implicit: bool) -> Self {
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
    pub fn rejecting() -> Self {
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default()
    }

    /// The messages in the Maildir's `new/`. aiosmtpd stores a message before it answers DATA,
    /// so whatever was sent successfully is already there.
    pub fn delivered(&self) -> Vec<Vec<u8>> {
        let new = self.dir.path().join("Maildir").join("new");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&new)
            .map(|entries| entries.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        // In the order they arrived: Maildir names carry no reliable order within a second.
        files.sort_by_key(|f| {
            let modified = std::fs::metadata(f).and_then(|m| m.modified()).ok();
            (modified, f.clone())
        });
        files.iter().map(|f| std::fs::read(f).unwrap()).collect()
    }

    pub fn mail_config(&self) -> MailConfig {
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

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
