//! The outbox: every mail becomes one RFC 5322 `.eml` file in `<data_dir>/outbox/`, so Tessera
//! works before a mail server is configured and an operator can read or forward what was sent.
//!
//! Files are written under a `.tmp` name and renamed, so a reader never sees half a message. The
//! directory is private (0700) and each file 0600: the messages carry codes and links. The SMS
//! outbox uses the same writer.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lettre::message::Mailbox;

use super::{Email, MailError, Mailer, build_message, parse_mailbox};
use crate::clock::{Clock, UnixTime};

/// The outbox directory's name inside the data directory.
pub(crate) const OUTBOX_DIR: &str = "outbox";

/// Writes each mail as a `.eml` file into a directory.
#[derive(Debug)]
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
    clock: Arc<dyn Clock>,
}

impl OutboxMailer {
    /// A mailer writing into `dir` (created with mode 0700 if missing), sending as `from`.
    pub fn new(dir: PathBuf, from: &str, clock: Arc<dyn Clock>) -> Result<Self, MailError> {
        let from = parse_mailbox(from)?;
        create_private_dir(&dir)?;
        Ok(Self { dir, from, clock })
    }

    /// The directory the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait::async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let now = self.clock.now();
        let message = build_message(&self.from, email, now)?;
        let path = write_outbox_file(self.dir.clone(), now, "eml", message.formatted()).await?;
        tracing::info!(
            to = %email.to,
            subject = %email.subject,
            file = %path.display(),
            "mail written to the outbox"
        );
        Ok(())
    }
}

/// Writes `contents` atomically to `<dir>/<UTC time>-<random hex>.<extension>` (mode 0600) and
/// returns the path. The directory is created (0700) if it went missing since start-up.
pub(crate) async fn write_outbox_file(
    dir: PathBuf,
    now: UnixTime,
    extension: &'static str,
    contents: Vec<u8>,
) -> std::io::Result<PathBuf> {
    let random =
        crate::crypto::random_bytes(8).map_err(|e| std::io::Error::other(e.to_string()))?;
    let name = format!(
        "{}-{}.{extension}",
        file_timestamp(now),
        data_encoding::HEXLOWER.encode(&random)
    );
    // File system calls block: keep them off the async workers.
    tokio::task::spawn_blocking(move || {
        create_private_dir(&dir)?;
        let path = dir.join(&name);
        let tmp = dir.join(format!("{name}.tmp"));
        let written =
            write_new_private(&tmp, &contents).and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map(|()| path)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Creates `path` (never overwriting), writes and syncs it, readable by the owner only.
fn write_new_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Creates `path` and its parents, readable by the owner only; an existing directory is fine.
pub(crate) fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}

/// `20231114T221320Z`: sorts by time and is safe in file names on every system.
fn file_timestamp(now: UnixTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from_unix_timestamp(now)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| now.to_string())
}

#[cfg(test)]
mod tests {
    use mail_parser::{MessageParser, MimeHeaders as _};

    use super::*;
    use crate::clock::FixedClock;

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    fn mailer(data_dir: &Path) -> OutboxMailer {
        OutboxMailer::new(
            data_dir.join(OUTBOX_DIR),
            "Tessera <tessera@example.com>",
            Arc::new(FixedClock::new(1_700_000_000)),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn outbox_writes_a_parseable_multipart_message() {
        let data = tempfile::tempdir().unwrap();
        let mailer = mailer(data.path());
        let email = Email {
            to: "Alice Example <alice@example.org>".into(),
            subject: "Your sign-in code".into(),
            text: "Your code is 123456.".into(),
            html: Some("<p>Your code is <b>123456</b>.</p>".into()),
        };
        mailer.send(&email).await.unwrap();

        let written = files(mailer.dir());
        assert_eq!(written.len(), 1);
        let name = written[0].file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("20231114T221320Z-"), "{name}");
        assert!(name.ends_with(".eml"), "{name}");

        let raw = std::fs::read(&written[0]).unwrap();
        let msg = MessageParser::default().parse(&raw).unwrap();
        let to = msg.to().unwrap().first().unwrap();
        assert_eq!(to.address(), Some("alice@example.org"));
        assert_eq!(to.name(), Some("Alice Example"));
        let from = msg.from().unwrap().first().unwrap();
        assert_eq!(from.address(), Some("tessera@example.com"));
        assert_eq!(msg.subject(), Some("Your sign-in code"));
        assert_eq!(msg.date().unwrap().to_timestamp(), 1_700_000_000);
        assert!(msg.message_id().unwrap().ends_with("@example.com"));
        let content_type = msg.content_type().unwrap();
        assert_eq!(content_type.ctype(), "multipart");
        assert_eq!(content_type.subtype(), Some("alternative"));
        assert_eq!(msg.body_text(0).unwrap().trim_end(), "Your code is 123456.");
        assert_eq!(
            msg.body_html(0).unwrap().trim_end(),
            "<p>Your code is <b>123456</b>.</p>"
        );
    }

    #[tokio::test]
    async fn outbox_writes_one_private_file_per_mail_and_leaves_no_tmp() {
        let data = tempfile::tempdir().unwrap();
        let mailer = mailer(data.path());
        let email = Email {
            to: "bob@example.org".into(),
            subject: "Hello".into(),
            text: "plain only".into(),
            html: None,
        };
        mailer.send(&email).await.unwrap();
        mailer.send(&email).await.unwrap();

        let written = files(mailer.dir());
        assert_eq!(written.len(), 2, "{written:?}");
        assert_ne!(written[0], written[1]);
        for path in &written {
            assert_eq!(path.extension().unwrap(), "eml", "{path:?}");
            let raw = std::fs::read(path).unwrap();
            let msg = MessageParser::default().parse(&raw).unwrap();
            assert_eq!(msg.body_text(0).unwrap().trim_end(), "plain only");
            let content_type = msg.content_type().unwrap();
            assert_eq!(
                (content_type.ctype(), content_type.subtype()),
                ("text", Some("plain"))
            );
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(mailer.dir()), 0o700);
            assert_eq!(mode(&written[0]), 0o600);
        }
    }

    #[tokio::test]
    async fn outbox_recreates_a_removed_directory() {
        let data = tempfile::tempdir().unwrap();
        let mailer = mailer(data.path());
        std::fs::remove_dir(mailer.dir()).unwrap();
        let email = Email {
            to: "bob@example.org".into(),
            subject: "Hello".into(),
            text: "again".into(),
            html: None,
        };
        mailer.send(&email).await.unwrap();
        assert_eq!(files(mailer.dir()).len(), 1);
    }

    #[tokio::test]
    async fn outbox_refuses_an_invalid_recipient_and_writes_nothing() {
        let data = tempfile::tempdir().unwrap();
        let mailer = mailer(data.path());
        let email = Email {
            to: "bob at example".into(),
            subject: "Hello".into(),
            text: "x".into(),
            html: None,
        };
        let err = mailer.send(&email).await.unwrap_err();
        assert!(
            matches!(err, MailError::InvalidAddress(ref a) if a == "bob at example"),
            "{err}"
        );
        assert!(files(mailer.dir()).is_empty());
    }

    #[test]
    fn invalid_sender_is_refused_at_construction() {
        let data = tempfile::tempdir().unwrap();
        let err = OutboxMailer::new(
            data.path().join(OUTBOX_DIR),
            "nobody",
            Arc::new(FixedClock::new(0)),
        )
        .unwrap_err();
        assert!(
            matches!(err, MailError::InvalidAddress(ref a) if a == "nobody"),
            "{err}"
        );
    }
}
