//! Housekeeping: rows that can never be used again are removed now and then, so that the
//! database does not keep dead sessions (with their CSRF secrets), spent challenges and expired
//! mailed links forever. Nothing here decides anything: an expired session, challenge or link is
//! refused where it is used, whether or not it was removed yet.

use std::sync::Arc;
use std::time::Duration;

use super::challenge::SENDING_LIMIT_WINDOW;
use super::{Result, Service};

/// How often `tessera serve` removes what has expired.
const EVERY: Duration = Duration::from_secs(600);

/// How long a mailed link (enrollment, reset, recovery, "this wasn't me") is kept after it
/// expired: opened within that time, its page still says that it has expired, or was used,
/// instead of calling it unknown.
pub const LINK_GRACE_SECS: i64 = 30 * 86_400;

impl Service {
    /// Removes sessions (API and web) that are past their end or idle too long, challenges
    /// that expired and no longer count against the sending limit, and mailed links that expired
    /// more than [`LINK_GRACE_SECS`] ago. Returns the rows removed.
    pub async fn purge_expired(&self) -> Result<u64> {
        let now = self.clock.now();
        // Challenges are kept while they count against the sending limit.
        Ok(self
            .store
            .purge_expired(
                now,
                self.session_idle_since(now),
                now.saturating_sub(SENDING_LIMIT_WINDOW),
                now.saturating_sub(LINK_GRACE_SECS),
            )
            .await?)
    }
}

/// Starts the task that calls [`Service::purge_expired`] every ten minutes, on the current
/// Tokio runtime (`tessera serve` only; several nodes doing it at once is harmless).
pub fn start(service: &Arc<Service>) {
    let service = Arc::downgrade(service);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(service) = service.upgrade() else {
                return;
            };
            match service.purge_expired().await {
                Ok(0) => {}
                Ok(removed) => {
                    tracing::debug!(removed, "expired sessions, challenges and links removed")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot remove expired sessions, challenges and links")
                }
            }
        }
    });
}
