//! A sender that keeps every message in memory, for tests: they read the codes out of
//! [`MemorySms::sent`] or [`MemorySms::take`]. [`MemorySms::failing`] refuses every message.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Sms, SmsError, SmsSender};

/// Keeps sent messages in memory.
#[derive(Debug, Default)]
pub struct MemorySms {
    sent: Mutex<Vec<Sms>>,
    fail: bool,
}

impl MemorySms {
    pub fn new() -> Self {
        Self::default()
    }

    /// A sender whose every send fails with [`SmsError::Gateway`] and keeps nothing.
    pub fn failing() -> Self {
        Self {
            sent: Mutex::default(),
            fail: true,
        }
    }

    /// The messages sent so far, oldest first.
    pub fn sent(&self) -> Vec<Sms> {
        self.lock().clone()
    }

    /// The messages sent so far, oldest first, leaving none behind.
    pub fn take(&self) -> Vec<Sms> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Sms>> {
        // A test that panicked while holding the lock leaves a valid Vec behind.
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl SmsSender for MemorySms {
    async fn send(&self, sms: &Sms) -> Result<(), SmsError> {
        if self.fail {
            return Err(SmsError::Gateway(
                "refused by MemorySms::failing (test)".into(),
            ));
        }
        self.lock().push(sms.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(to: &str) -> Sms {
        Sms {
            to: to.into(),
            text: "t".into(),
        }
    }

    #[tokio::test]
    async fn memory_sms_keeps_messages_until_taken() {
        let m = MemorySms::new();
        m.send(&sms("+111111")).await.unwrap();
        m.send(&sms("+222222")).await.unwrap();
        assert_eq!(m.sent().len(), 2);
        let taken = m.take();
        assert_eq!(taken[0].to, "+111111");
        assert_eq!(taken[1].to, "+222222");
        assert!(m.sent().is_empty());
    }

    #[tokio::test]
    async fn failing_memory_sms_reports_gateway_error() {
        let m = MemorySms::failing();
        let err = m.send(&sms("+111111")).await.unwrap_err();
        assert!(matches!(err, SmsError::Gateway(_)), "{err}");
        assert!(m.sent().is_empty());
    }
}
