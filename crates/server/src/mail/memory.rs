//! A mailer that keeps every mail in memory, for tests: they read the codes out of [`sent`] or
//! [`take`]. [`MemoryMailer::failing`] refuses every mail, to test how a failed send is reported.
//!
//! [`sent`]: MemoryMailer::sent
//! [`take`]: MemoryMailer::take

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Email, MailError, Mailer, parse_mailbox};

/// Keeps sent mails in memory.
#[derive(Debug, Default)]
pub struct MemoryMailer {
    sent: Mutex<Vec<Email>>,
    fail: bool,
}

impl MemoryMailer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A mailer whose every send fails with [`MailError::Send`] and keeps nothing.
    pub fn failing() -> Self {
        Self {
            sent: Mutex::default(),
            fail: true,
        }
    }

    /// The mails sent so far, oldest first.
    pub fn sent(&self) -> Vec<Email> {
        self.lock().clone()
    }

    /// The mails sent so far, oldest first, leaving none behind.
    pub fn take(&self) -> Vec<Email> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Email>> {
        // A test that panicked while holding the lock leaves a valid Vec behind.
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        // Refuse what a real mailer would refuse, so tests see the same errors.
        parse_mailbox(&email.to)?;
        if self.fail {
            return Err(MailError::Send(
                "refused by MemoryMailer::failing (test)".into(),
            ));
        }
        self.lock().push(email.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(to: &str) -> Email {
        Email {
            to: to.into(),
            subject: "s".into(),
            text: "t".into(),
            html: None,
        }
    }

    #[tokio::test]
    async fn memory_mailer_keeps_mails_until_taken() {
        let m = MemoryMailer::new();
        m.send(&email("a@example.org")).await.unwrap();
        m.send(&email("b@example.org")).await.unwrap();
        assert_eq!(m.sent().len(), 2);
        let taken = m.take();
        assert_eq!(taken[0].to, "a@example.org");
        assert_eq!(taken[1].to, "b@example.org");
        assert!(m.sent().is_empty());
    }

    #[tokio::test]
    async fn failing_memory_mailer_reports_send_error() {
        let m = MemoryMailer::failing();
        let err = m.send(&email("a@example.org")).await.unwrap_err();
        assert!(matches!(err, MailError::Send(_)), "{err}");
        assert!(m.sent().is_empty());
    }

    #[tokio::test]
    async fn memory_mailer_refuses_invalid_recipient() {
        let m = MemoryMailer::new();
        let err = m.send(&email("nope")).await.unwrap_err();
        assert!(matches!(err, MailError::InvalidAddress(_)), "{err}");
    }
}
