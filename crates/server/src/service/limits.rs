//! Per-source-address request limits for validation, in memory. They sit on top of the per-token
//! and per-account throttling in the database (which hold across nodes); this one only keeps a
//! single address from flooding one node.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::UnixTime;

/// A fixed one-minute window per source address.
#[derive(Debug)]
pub(crate) struct SourceLimiter {
    per_minute: u64,
    windows: Mutex<HashMap<String, (i64, u64)>>,
}

/// Above this many tracked addresses, windows of past minutes are dropped.
const PRUNE_ABOVE: usize = 100_000;

impl SourceLimiter {
    pub(crate) fn new(per_minute: u64) -> Self {
        SourceLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `source`; false once the minute's budget is spent.
    pub(crate) fn allow(&self, source: &str, now: UnixTime) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let minute = now.div_euclid(60);
        let Ok(mut windows) = self.windows.lock() else {
            return true;
        };
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, (m, _)| *m == minute);
        }
        let entry = windows.entry(source.to_owned()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        entry.1 <= self.per_minute
    }
}

/// Failures by someone who did not prove the first factor, per key (a source address, or an
/// account seen from one address), in fixed windows. Spending the budget refuses that key only:
/// the owner of an account, from any other address, is not affected.
#[derive(Debug)]
pub(crate) struct FailureBudget {
    limit: u64,
    window_secs: i64,
    counts: Mutex<HashMap<String, (i64, u64)>>,
}

impl FailureBudget {
    pub(crate) fn new(limit: u64, window_secs: i64) -> Self {
        FailureBudget {
            limit,
            window_secs: window_secs.max(1),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `key` has spent its budget in the current window (0: no limit).
    pub(crate) fn spent(&self, key: &str, now: UnixTime) -> bool {
        if self.limit == 0 {
            return false;
        }
        let window = now.div_euclid(self.window_secs);
        let Ok(counts) = self.counts.lock() else {
            return false;
        };
        counts
            .get(key)
            .is_some_and(|&(w, n)| w == window && n >= self.limit)
    }

    /// Counts one failure for `key`.
    pub(crate) fn record(&self, key: &str, now: UnixTime) {
        let window = now.div_euclid(self.window_secs);
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        if counts.len() > PRUNE_ABOVE {
            counts.retain(|_, (w, _)| *w == window);
        }
        let entry = counts.entry(key.to_owned()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_budget_per_key_and_window() {
        let b = FailureBudget::new(2, 3600);
        b.record("a", 10);
        assert!(!b.spent("a", 10));
        b.record("a", 20);
        assert!(b.spent("a", 30));
        assert!(!b.spent("b", 30), "other keys are not affected");
        assert!(!b.spent("a", 3600), "a new window");
        assert!(!FailureBudget::new(0, 60).spent("a", 0), "0 means no limit");
    }

    #[test]
    fn budget_per_minute_and_address() {
        let l = SourceLimiter::new(2);
        assert!(l.allow("a", 60));
        assert!(l.allow("a", 61));
        assert!(!l.allow("a", 62));
        assert!(l.allow("b", 62), "other addresses are not affected");
        assert!(l.allow("a", 120), "a new minute");
        assert!(SourceLimiter::new(0).allow("a", 0), "0 means no limit");
    }
}
