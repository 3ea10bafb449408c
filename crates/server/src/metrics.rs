//! Prometheus metrics (`[metrics] listen`, `GET /metrics` on a listener of its own; off unless
//! set; docs/operations.md, "Metrics").
//!
//! Counters and histograms are plain atomics updated on the hot path (no lock, no allocation);
//! the text exposition format is written when scraped. Names follow the Prometheus conventions:
//! `tessera_` prefix, base units (seconds), `_total` for counters, a bounded set of label values.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a validation ended with, as a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Accept,
    Challenge,
    /// A reject, with why (bounded: see [`Reason`]).
    Reject(Reason),
    /// The request was refused before a decision (bad input) or failed on the server.
    Error,
}

/// Why a validation was rejected, in a few words (the audit log has the whole reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    WrongCode,
    Replay,
    WrongPassword,
    UnknownUser,
    Throttled,
    RateLimited,
    Locked,
    NoToken,
    Other,
}

impl Reason {
    const ALL: [Reason; 9] = [
        Reason::WrongCode,
        Reason::Replay,
        Reason::WrongPassword,
        Reason::UnknownUser,
        Reason::Throttled,
        Reason::RateLimited,
        Reason::Locked,
        Reason::NoToken,
        Reason::Other,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Reason::WrongCode => "wrong_code",
            Reason::Replay => "replay",
            Reason::WrongPassword => "wrong_password",
            Reason::UnknownUser => "unknown_user",
            Reason::Throttled => "throttled",
            Reason::RateLimited => "rate_limited",
            Reason::Locked => "locked",
            Reason::NoToken => "no_token",
            Reason::Other => "other",
        }
    }

    /// The reason of an audit text (`HOTP…: code already used (replay)`, `wrong password`, …).
    pub fn of(text: &str) -> Reason {
        let t = text.to_ascii_lowercase();
        let has = |s: &str| t.contains(s);
        if has("password") {
            Reason::WrongPassword
        } else if has("replay") || has("already used") {
            Reason::Replay
        } else if has("unknown user") {
            Reason::UnknownUser
        } else if has("rate limit") || has("too many") {
            Reason::RateLimited
        } else if has("throttled") {
            Reason::Throttled
        } else if has("locked") || has("disabled") {
            Reason::Locked
        } else if has("no active token") || has("no token") || has("no device") {
            Reason::NoToken
        } else if has("wrong code") || has("code malformed") || has("code missing") {
            Reason::WrongCode
        } else {
            Reason::Other
        }
    }
}

/// A histogram with fixed bucket bounds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One more than `bounds`: the last is +Inf.
    counts: Vec<AtomicU64>,
    /// The sum in millionths of the unit.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let i = self
            .bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or("+Inf".to_owned(), |b| format!("{b}"));
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

const LATENCY: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Every metric this node keeps.
#[derive(Debug)]
pub struct Metrics {
    accepts: AtomicU64,
    challenges: AtomicU64,
    errors: AtomicU64,
    rejects: [AtomicU64; Reason::ALL.len()],
    validation_seconds: Histogram,
    batch_writes: Histogram,
    batch_seconds: Histogram,
    batch_failures: AtomicU64,
    started: i64,
}

impl Metrics {
    pub fn new(started: i64) -> Metrics {
        Metrics {
            accepts: AtomicU64::new(0),
            challenges: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            rejects: std::array::from_fn(|_| AtomicU64::new(0)),
            validation_seconds: Histogram::new(LATENCY),
            batch_writes: Histogram::new(BATCH),
            batch_seconds: Histogram::new(LATENCY),
            batch_failures: AtomicU64::new(0),
            started,
        }
    }

    /// One validation (any front end) and how long it took.
    pub fn validation(&self, outcome: Outcome, seconds: f64) {
        let counter = match outcome {
            Outcome::Accept => &self.accepts,
            Outcome::Challenge => &self.challenges,
            Outcome::Error => &self.errors,
            Outcome::Reject(r) => {
                let i = Reason::ALL.iter().position(|&x| x == r).unwrap_or(0);
                &self.rejects[i]
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.validation_seconds.observe(seconds);
    }

    /// One group commit: how many writes it held, how long it took, whether it failed.
    pub fn batch(&self, writes: usize, seconds: f64, ok: bool) {
        self.batch_writes.observe(writes as f64);
        self.batch_seconds.observe(seconds);
        if !ok {
            self.batch_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The text exposition format; `extra` is appended (gauges read at scrape time).
    pub fn render(&self, db_pool: (u32, usize), database: &str, active_key: u32) -> String {
        let mut out = String::with_capacity(4096);
        let w = &mut out;
        let _ = writeln!(
            w,
            "# HELP tessera_build_info The running version (always 1)."
        );
        let _ = writeln!(w, "# TYPE tessera_build_info gauge");
        let _ = writeln!(
            w,
            "tessera_build_info{{version=\"{}\",database=\"{database}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(
            w,
            "# HELP tessera_start_time_seconds When the server started (Unix time)."
        );
        let _ = writeln!(w, "# TYPE tessera_start_time_seconds gauge");
        let _ = writeln!(w, "tessera_start_time_seconds {}", self.started);
        let _ = writeln!(
            w,
            "# HELP tessera_validations_total Validations by result (HTTP API, RADIUS, CLI); rejects by reason."
        );
        let _ = writeln!(w, "# TYPE tessera_validations_total counter");
        let line = |w: &mut String, result: &str, reason: &str, v: &AtomicU64| {
            let _ = writeln!(
                w,
                "tessera_validations_total{{result=\"{result}\",reason=\"{reason}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        };
        line(w, "accept", "", &self.accepts);
        line(w, "challenge", "", &self.challenges);
        for (r, v) in Reason::ALL.iter().zip(&self.rejects) {
            line(w, "reject", r.as_str(), v);
        }
        line(w, "error", "", &self.errors);
        self.validation_seconds.render(
            w,
            "tessera_validation_duration_seconds",
            "Time to decide a validation, from request to answer.",
        );
        self.batch_writes.render(
            w,
            "tessera_write_batch_writes",
            "Writes (counter advances and audit entries) per group commit.",
        );
        self.batch_seconds.render(
            w,
            "tessera_write_batch_duration_seconds",
            "Time to commit one group of writes.",
        );
        let _ = writeln!(
            w,
            "# HELP tessera_write_batch_failures_total Group commits that failed."
        );
        let _ = writeln!(w, "# TYPE tessera_write_batch_failures_total counter");
        let _ = writeln!(
            w,
            "tessera_write_batch_failures_total {}",
            self.batch_failures.load(Ordering::Relaxed)
        );
        let (size, idle) = db_pool;
        let _ = writeln!(
            w,
            "# HELP tessera_db_pool_connections Database connections of this node by state."
        );
        let _ = writeln!(w, "# TYPE tessera_db_pool_connections gauge");
        let _ = writeln!(w, "tessera_db_pool_connections{{state=\"idle\"}} {idle}");
        let _ = writeln!(
            w,
            "tessera_db_pool_connections{{state=\"in_use\"}} {}",
            (size as usize).saturating_sub(idle)
        );
        let _ = writeln!(
            w,
            "# HELP tessera_active_key_id The server key this node seals new secrets with."
        );
        let _ = writeln!(w, "# TYPE tessera_active_key_id gauge");
        let _ = writeln!(w, "tessera_active_key_id {active_key}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_of_audit_texts() {
        assert_eq!(
            Reason::of("HOTPX: code already used (replay)"),
            Reason::Replay
        );
        assert_eq!(Reason::of("HOTPX: wrong code"), Reason::WrongCode);
        assert_eq!(Reason::of("unknown user"), Reason::UnknownUser);
        assert_eq!(
            Reason::of("HOTPX: wrong code; wrong password"),
            Reason::WrongPassword
        );
        assert_eq!(Reason::of("source address rate limit"), Reason::RateLimited);
        assert_eq!(Reason::of("something new"), Reason::Other);
    }

    /// Prometheus conventions: every sample's metric has HELP and TYPE, names are
    /// `tessera_[a-z_]+`, counters end in `_total`, durations are in seconds, and histogram
    /// buckets grow to +Inf with `_count` equal to the +Inf bucket.
    #[test]
    fn exposition_follows_the_naming_conventions() {
        let m = Metrics::new(1_700_000_000);
        m.validation(Outcome::Accept, 0.0012);
        m.validation(Outcome::Reject(Reason::Replay), 0.003);
        m.batch(3, 0.0004, true);
        let text = m.render((4, 3), "sqlite", 1);
        let mut typed = std::collections::HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                typed.insert(name.to_owned(), kind.to_owned());
                assert!(
                    name.starts_with("tessera_")
                        && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{name}"
                );
                match kind {
                    "counter" => assert!(name.ends_with("_total"), "{name}"),
                    "histogram" | "gauge" => assert!(!name.ends_with("_total"), "{name}"),
                    _ => panic!("{kind}"),
                }
                if name.contains("duration") || name.contains("time") {
                    assert!(name.ends_with("_seconds"), "{name}");
                }
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| {
                        name.strip_suffix(s)
                            .filter(|b| typed.get(*b).is_some_and(|k| k == "histogram"))
                    })
                    .unwrap_or(name);
                assert!(typed.contains_key(base), "{name} has no TYPE");
            }
        }
        assert!(text.contains("tessera_validations_total{result=\"accept\",reason=\"\"} 1"));
        assert!(text.contains("tessera_validations_total{result=\"reject\",reason=\"replay\"} 1"));
        assert!(text.contains("tessera_validation_duration_seconds_bucket{le=\"0.002\"} 1"));
        assert!(text.contains("tessera_validation_duration_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("tessera_validation_duration_seconds_count 2"));
        assert!(text.contains("tessera_write_batch_writes_bucket{le=\"4\"} 1"));
        assert!(text.contains("tessera_db_pool_connections{state=\"in_use\"} 1"));
    }
}
