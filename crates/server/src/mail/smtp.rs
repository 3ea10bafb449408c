//! Delivery through an SMTP server (lettre, rustls). One connection per mail: challenge mails are
//! few and a pool would hold connections the server may close at any time.
//!
//! Errors carry the server's answer or the connection error, and the host, never the password.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Tokio1Executor};

use super::{Email, MailError, Mailer, build_message, parse_mailbox};
use crate::clock::Clock;
use crate::config::{MailConfig, SmtpSecurity};

/// Sends mail through the configured SMTP server.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    clock: Arc<dyn Clock>,
    /// `host:port`, for errors and logs.
    server: String,
    security: SmtpSecurity,
}

impl std::fmt::Debug for SmtpMailer {
    // Spelled out so the transport's credentials can never end up in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("security", &self.security)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `config.smtp_host`. Nothing is sent or connected until the first mail.
    pub fn new(config: &MailConfig, clock: Arc<dyn Clock>) -> Result<Self, MailError> {
        let from = parse_mailbox(&config.from)?;
        let host = config.smtp_host.trim();
        let server = format!("{host}:{}", config.smtp_port);
        let builder = match config.smtp_security {
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            // Plain text, by explicit choice: a relay on the same host or a test sink.
            SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
        }
        .map_err(|e| MailError::Send(format!("cannot set up TLS for {server}: {e}")))?;
        let mut builder = builder
            .port(config.smtp_port)
            .timeout(Some(Duration::from_secs(config.smtp_timeout_secs)));
        if !config.smtp_username.is_empty() {
            builder = builder.credentials(Credentials::new(
                config.smtp_username.clone(),
                config.smtp_password.clone(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            clock,
            server,
            security: config.smtp_security,
        })
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let message = build_message(&self.from, email, self.clock.now())?;
        // lettre's errors hold the server's reply or the I/O error; credentials are never part
        // of them. The caller logs the failure.
        self.transport
            .send(message)
            .await
            .map_err(|e| MailError::Send(format!("SMTP server {}: {e}", self.server)))?;
        tracing::info!(to = %email.to, subject = %email.subject, server = %self.server, "mail sent");
        Ok(())
    }
}
