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

#[cfg(test)]
mod tests {
    use super::*;

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
