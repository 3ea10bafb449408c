//! Outbound SMS: the [`SmsSender`] role. [`HttpSmsGateway`] calls an operator's HTTP gateway
//! from a request template, [`OutboxSmsSender`] writes `.sms` files (the default) and
//! [`MemorySms`] keeps messages for tests.
//!
//! Message texts carry codes: they are never logged or printed by `Debug`, and phone numbers show
//! only their last three digits ([`mask_phone`]).

mod http;
mod memory;
mod outbox;

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;

pub use http::HttpSmsGateway;
pub use memory::MemorySms;
pub use outbox::OutboxSmsSender;

/// One text message.
#[derive(Clone)]
pub struct Sms {
    /// The recipient's number, as the gateway expects it (usually E.164, `+4915112345678`).
    pub to: String,
    pub text: String,
}

impl std::fmt::Debug for Sms {
    // The text carries a code, and the full number is personal data: print the masked number.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sms")
            .field("to", &mask_phone(&self.to))
            .finish_non_exhaustive()
    }
}

/// Why an SMS was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The gateway could not be reached or answered with a status other than 2xx: the status and
    /// up to 200 characters of its answer (with the number and text taken out).
    #[error("SMS gateway: {0}")]
    Gateway(String),
    /// The `[sms]` configuration cannot work (method, header, URL); names the setting, never a
    /// header's value.
    #[error("invalid SMS configuration: {0}")]
    InvalidConfig(String),
    /// Writing to the outbox failed.
    #[error("SMS outbox: {0}")]
    Io(#[from] std::io::Error),
}

/// Something that delivers text messages.
#[async_trait::async_trait]
pub trait SmsSender: Send + Sync + std::fmt::Debug {
    /// Sends one message. `Ok` means the gateway accepted it (or it was written to the outbox),
    /// not that it reached the phone.
    async fn send(&self, sms: &Sms) -> Result<(), SmsError>;
}

/// The sender the configuration asks for: an [`OutboxSmsSender`] at `<data_dir>/outbox` when
/// `sms.gateway_url` is empty, an [`HttpSmsGateway`] otherwise.
pub fn sms_from_config(config: &Config) -> Result<Arc<dyn SmsSender>, SmsError> {
    if config.sms.gateway_url.trim().is_empty() {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let outbox =
            OutboxSmsSender::new(config.data_dir.join(crate::mail::outbox::OUTBOX_DIR), clock)?;
        Ok(Arc::new(outbox))
    } else {
        Ok(Arc::new(HttpSmsGateway::new(&config.sms)?))
    }
}

/// A phone number for logs: `***678`, the last three digits only (`***` when it has no more).
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    if digits.len() <= 3 {
        return "***".to_owned();
    }
    let tail: String = digits[digits.len() - 3..].iter().collect();
    format!("***{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_phone_keeps_last_three_digits() {
        assert_eq!(mask_phone("+49 151 1234-5678"), "***678");
        assert_eq!(mask_phone("+4915112345678"), "***678");
        assert_eq!(mask_phone("123"), "***");
        assert_eq!(mask_phone(""), "***");
    }

    #[test]
    fn sms_debug_shows_masked_number_and_no_text() {
        let sms = Sms {
            to: "+4915112345678".into(),
            text: "Your code is 123456".into(),
        };
        let printed = format!("{sms:?}");
        assert!(printed.contains("***678"), "{printed}");
        assert!(!printed.contains("4915112345"), "{printed}");
        assert!(!printed.contains("123456"), "{printed}");
    }

    #[test]
    fn empty_gateway_url_means_outbox() {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: data.path().to_owned(),
            ..Config::default()
        };
        let sender = sms_from_config(&config).unwrap();
        assert!(
            format!("{sender:?}").starts_with("OutboxSmsSender"),
            "{sender:?}"
        );
        assert!(data.path().join("outbox").is_dir());

        config.sms.gateway_url = "https://sms.example.com/send".into();
        let sender = sms_from_config(&config).unwrap();
        assert!(
            format!("{sender:?}").starts_with("HttpSmsGateway"),
            "{sender:?}"
        );
    }
}
