//! The SMS outbox: every message becomes one `.sms` text file in `<data_dir>/outbox/`
//! (`To: <number>`, a blank line, the text), written atomically like the mail outbox.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Sms, SmsError, SmsSender, mask_phone};
use crate::clock::Clock;
use crate::mail::outbox::{create_private_dir, write_outbox_file};

/// Writes each message as a `.sms` file into a directory.
#[derive(Debug)]
pub struct OutboxSmsSender {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
}

impl OutboxSmsSender {
    /// A sender writing into `dir` (created with mode 0700 if missing).
    pub fn new(dir: PathBuf, clock: Arc<dyn Clock>) -> Result<Self, SmsError> {
        create_private_dir(&dir)?;
        Ok(Self { dir, clock })
    }

    /// The directory the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait::async_trait]
impl SmsSender for OutboxSmsSender {
    async fn send(&self, sms: &Sms) -> Result<(), SmsError> {
        // One line for the number: a newline in it would forge a second header line.
        let to: String = sms.to.chars().filter(|c| !c.is_control()).collect();
        let contents = format!("To: {to}\n\n{}\n", sms.text);
        let path =
            write_outbox_file(self.dir.clone(), self.clock.now(), "sms", contents.into()).await?;
        tracing::info!(to = %mask_phone(&sms.to), file = %path.display(), "SMS written to the outbox");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    #[tokio::test]
    async fn sms_outbox_writes_number_and_text_per_message() {
        let data = tempfile::tempdir().unwrap();
        let sender = OutboxSmsSender::new(
            data.path().join("outbox"),
            Arc::new(FixedClock::new(1_700_000_000)),
        )
        .unwrap();
        let sms = Sms {
            to: "+4915112345678".into(),
            text: "Your code is 123456".into(),
        };
        sender.send(&sms).await.unwrap();
        sender.send(&sms).await.unwrap();
        let mut files: Vec<_> = std::fs::read_dir(sender.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2);
        for f in &files {
            let name = f.file_name().unwrap().to_str().unwrap();
            assert!(
                name.starts_with("20231114T221320Z-") && name.ends_with(".sms"),
                "{name}"
            );
            assert_eq!(
                std::fs::read_to_string(f).unwrap(),
                "To: +4915112345678\n\nYour code is 123456\n"
            );
        }
    }
}
