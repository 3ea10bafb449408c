//! Counting login attempts: who is blamed for a failure, and how comparisons are claimed so that
//! concurrent attempts never get more than the limit (docs/security.md, "Throttling").
//!
//! Three kinds of failure, three budgets:
//! - the password was right (or an `otp_only` application vouched for it) but the code wrong:
//!   the tried tokens count it (delays, then a lock; `otp.*`);
//! - the code was right (or no code is needed) but the password wrong: the account counts it
//!   (`validate.account_lockout_failures`, then delays);
//! - neither was shown: someone who does not know the password. This never touches the
//!   account or its tokens (a stranger must not lock the owner out); it counts against the source
//!   address, and against the account as seen from that address (`auth.*_failures_per_hour`).
//!
//! Every path does the same work whether the user exists or not: one password check (a real one
//! or a throw-away one) wherever a password was given.

use crate::model::{Token, TokenKind, User};

use super::throttle::penalty;
use super::{Result, Service};

/// Which budgets a front end's failures count against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Front {
    /// The person logging in is the peer (web login, admin API login, recovery): failures of
    /// strangers count against their address.
    Person,
    /// An application calls on behalf of its users (validate API, RADIUS): the peer address is
    /// the application's, shared by all its users, so it must not be refused for one stranger.
    Application,
}

impl Service {
    /// The key of an account as seen from one address, for the failure budget.
    fn account_source_key(username: &str, source: &str) -> String {
        format!("{}\u{1f}{source}", username.trim().to_lowercase())
    }

    /// Whether failures of strangers from `source` (overall, or for this account) used up their
    /// budget: then the attempt is refused without comparing anything.
    pub(crate) fn stranger_budget_spent(&self, front: Front, username: &str, source: &str) -> bool {
        if front != Front::Person {
            return false;
        }
        let now = self.clock.now();
        self.source_failures.spent(source, now)
            || self
                .account_source_failures
                .spent(&Self::account_source_key(username, source), now)
    }

    /// Counts a failure by someone who did not show the password (or named no existing user).
    pub(crate) fn record_stranger_failure(&self, front: Front, username: &str, source: &str) {
        if front != Front::Person {
            return;
        }
        let now = self.clock.now();
        self.source_failures.record(source, now);
        self.account_source_failures
            .record(&Self::account_source_key(username, source), now);
    }

    /// The account's password check, claimed before the comparison: the attempt is counted as a
    /// failure first (one atomic update that only succeeds on the count it saw), the comparison
    /// runs only if that claim succeeded, and a right password then clears the count. Concurrent
    /// attempts on one account therefore never compare more than one password per count, across
    /// all nodes. A waiting account, a lost claim or a wrong password: `false`.
    pub(crate) async fn check_validate_password(
        &self,
        user: &User,
        password: &str,
    ) -> Result<bool> {
        let now = self.clock.now();
        // Fresh: the validation cache may be a second old.
        let Some(fresh) = self.store.user(user.id).await? else {
            self.burn_validate_password().await;
            return Ok(false);
        };
        let next = fresh.fail_count.saturating_add(1);
        let lockout =
            i64::try_from(self.config.validate.account_lockout_failures.max(1)).unwrap_or(i64::MAX);
        let until = if next >= lockout {
            penalty(&self.config.otp, 30, next - lockout + 1, now).until
        } else {
            0
        };
        if fresh.throttled_until > now
            || !self
                .store
                .claim_account_attempt(user.id, fresh.fail_count, until, now)
                .await?
        {
            self.burn_validate_password().await;
            return Ok(false);
        }
        self.user_cache.forget(&user.username);
        let ok = self.password_matches(&fresh, password).await;
        if ok {
            self.store.reset_account_failures(user.id).await?;
        }
        Ok(ok)
    }

    /// Compares the password without counting anything: only to tell who a failure is to be
    /// blamed on. Its result never reaches the client (the answer and the work are the same
    /// either way), so it is no password oracle.
    pub(crate) async fn password_matches(&self, user: &User, password: &str) -> bool {
        match &user.password_hash {
            Some(hash) => self.validate_hasher.verify(password, hash).await,
            None => {
                self.burn_validate_password().await;
                false
            }
        }
    }

    /// The work of one password check, where no real one is made (unknown user, refused early),
    /// so that the answer takes as long as a real check.
    pub(crate) async fn burn_validate_password(&self) {
        let dummy = self.dummy_password_hash().await;
        let _ = self.validate_hasher.verify("tessera-dummy", &dummy).await;
    }

    /// Counts a wrong code against each token it was compared with (not the ones that waited,
    /// and never when another token accepted it), claimed on the failure count seen before.
    pub(crate) async fn count_code_failure(&self, tokens: &[&Token]) -> Result<()> {
        for token in tokens {
            self.count_failure(token).await?;
        }
        Ok(())
    }

    /// Counts a failed code for one token and applies the delay or lock that follows. Only
    /// counted if no concurrent failure was counted first on the same count (that one stands for
    /// both: one comparison per count).
    pub(crate) async fn count_failure(&self, token: &Token) -> Result<()> {
        let next = token.fail_count.saturating_add(1);
        let step = if token.kind == TokenKind::Totp {
            token.period
        } else {
            30
        };
        let p = penalty(&self.config.otp, step, next, self.clock.now());
        self.store
            .count_token_failure(token.id, token.fail_count, p.until, p.lock)
            .await?;
        Ok(())
    }
}
