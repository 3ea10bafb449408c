//! How long a token waits after failed codes: the policy, as pure functions of the failure count.
//!
//! After a failure the next attempt waits about one time step, doubling with each further
//! consecutive failure up to `throttle_max_secs`; after `lockout_failures` the token is locked for
//! `lockout_minutes` (or until an admin unlocks it). A guesser gets a handful of tries per hour;
//! the owner, after a typo, waits one step.

use crate::clock::UnixTime;
use crate::config::OtpConfig;

/// What happens after the `fail_count`-th consecutive failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Penalty {
    /// No attempt is checked before this time.
    pub until: UnixTime,
    /// The token is locked.
    pub lock: bool,
}

pub fn penalty(config: &OtpConfig, step_secs: u64, fail_count: i64, now: UnixTime) -> Penalty {
    let fails = u64::try_from(fail_count.max(1)).unwrap_or(1);
    if fails >= config.lockout_failures.max(1) {
        let secs = config.lockout_minutes.saturating_mul(60);
        return Penalty {
            until: now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)),
            lock: true,
        };
    }
    let base = step_secs.clamp(1, 300);
    let exp = u32::try_from(fails - 1).unwrap_or(u32::MAX).min(30);
    let delay = base
        .saturating_mul(1u64 << exp)
        .min(config.throttle_max_secs.max(1));
    Penalty {
        until: now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX)),
        lock: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_lock() {
        let c = OtpConfig::default();
        assert_eq!(
            penalty(&c, 30, 1, 0),
            Penalty {
                until: 30,
                lock: false
            }
        );
        assert_eq!(
            penalty(&c, 30, 2, 0),
            Penalty {
                until: 60,
                lock: false
            }
        );
        assert_eq!(
            penalty(&c, 30, 3, 0),
            Penalty {
                until: 120,
                lock: false
            }
        );
        assert_eq!(
            penalty(&c, 30, 9, 0).until,
            900,
            "capped at throttle_max_secs"
        );
        assert_eq!(
            penalty(&c, 30, 10, 0),
            Penalty {
                until: 3600,
                lock: true
            }
        );
        assert!(penalty(&c, 30, i64::MAX, 0).lock);
        assert!(!penalty(&c, 30, 0, 0).lock);
    }
}
