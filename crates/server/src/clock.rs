//! The one place that reads the system time. Everything else asks a [`Clock`], so tests move time
//! with [`FixedClock::advance`] instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time in seconds since the Unix epoch.
    fn now(&self) -> UnixTime;

    /// The current time in milliseconds, for what people read off a page (the live clock beside
    /// a programmable token's seed); decisions use [`Clock::now`].
    fn now_millis(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // this is the single home of the system time
    fn now(&self) -> UnixTime {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            // A clock before 1970 is a broken host; 0 makes every TOTP check fail safely.
            Err(_) => 0,
        }
    }

    #[allow(clippy::disallowed_methods)] // this is the single home of the system time
    fn now_millis(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(_) => 0,
        }
    }
}

/// Measures how long something took, for logs only (how long a commit or a checkpoint held the
/// database): never an input to a decision, so it needs no test clock.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    #[allow(clippy::disallowed_methods)] // a duration for a log line, not a time that decides
    pub fn start() -> Stopwatch {
        Stopwatch(std::time::Instant::now())
    }

    /// Milliseconds since [`Stopwatch::start`], to a microsecond.
    pub fn ms(&self) -> f64 {
        (self.0.elapsed().as_micros() as f64) / 1000.0
    }
}

/// A clock that only moves when told to, for tests.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<AtomicI64>);

impl FixedClock {
    pub fn new(at: UnixTime) -> Self {
        Self(Arc::new(AtomicI64::new(at)))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }

    pub fn set(&self, at: UnixTime) {
        self.0.store(at, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

/// Formats a Unix time as RFC 3339 in UTC, for display and JSON.
pub fn rfc3339(t: UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// Parses RFC 3339 (or a bare date `YYYY-MM-DD`, midnight UTC) into a Unix time.
pub fn parse_time(s: &str) -> Option<UnixTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(d) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(d.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let c = FixedClock::new(1_000);
        assert_eq!(c.now(), 1_000);
        c.advance(30);
        assert_eq!(c.now(), 1_030);
    }

    #[test]
    fn rfc3339_round_trip() {
        assert_eq!(rfc3339(1_111_111_109), "2005-03-18T01:58:29Z");
        assert_eq!(parse_time("2005-03-18T01:58:29Z"), Some(1_111_111_109));
        assert_eq!(parse_time("2005-03-18"), Some(1_111_104_000));
        assert_eq!(parse_time("yesterday"), None);
    }
}
