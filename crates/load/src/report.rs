//! Counting answers and summarising a run: the tally per worker, latency percentiles, and the
//! report printed as text or JSON.
//!
//! Latencies are kept as microseconds in a `Vec<u32>` per worker and sorted once at the end: exact
//! percentiles at 4 bytes per request (a 60 s run at 20,000 requests/s holds 4.8 MB).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// The value at percentile `p` (0..=100) of `sorted` by the nearest-rank method: the smallest
/// sample with at least `p` % of the samples at or below it. `None` for no samples.
pub fn percentile(sorted: &[u32], p: f64) -> Option<u32> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = ((p.clamp(0.0, 100.0) / 100.0) * n as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// Latency summary in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Latency {
    /// Median.
    pub p50_us: u32,
    /// 90th percentile.
    pub p90_us: u32,
    /// 99th percentile.
    pub p99_us: u32,
    /// 99.9th percentile.
    pub p999_us: u32,
    /// Slowest answer.
    pub max_us: u32,
    /// Arithmetic mean.
    pub mean_us: f64,
}

impl Latency {
    /// Summarises samples in any order; zeros for no samples.
    pub fn from_samples(mut samples: Vec<u32>) -> Latency {
        samples.sort_unstable();
        let at = |p| percentile(&samples, p).unwrap_or(0);
        let sum: u64 = samples.iter().map(|&us| u64::from(us)).sum();
        Latency {
            p50_us: at(50.0),
            p90_us: at(90.0),
            p99_us: at(99.0),
            p999_us: at(99.9),
            max_us: samples.last().copied().unwrap_or(0),
            mean_us: if samples.is_empty() {
                0.0
            } else {
                sum as f64 / samples.len() as f64
            },
        }
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 200 with `"result": "accept"`.
    Accept,
    /// 200 with `"result": "reject"`.
    Reject,
    /// 200 with `"result": "challenge"`.
    Challenge,
    /// No decision: see the kind.
    Error(ErrorKind),
}

impl Outcome {
    /// Whether the server may have used the code: accepted, or the answer never arrived.
    pub fn may_have_consumed(self) -> bool {
        match self {
            Outcome::Accept => true,
            Outcome::Reject | Outcome::Challenge => false,
            Outcome::Error(kind) => kind.may_have_consumed(),
        }
    }
}

/// Why a request brought no decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The TCP connection could not be opened.
    Connect,
    /// The connection failed while sending or before the answer's head arrived.
    Send,
    /// The answer's body could not be read.
    Body,
    /// No answer within the request timeout.
    Timeout,
    /// An HTTP status other than 200.
    Status(u16),
    /// 200, but not a JSON object with a known `result`.
    BadBody,
}

impl ErrorKind {
    /// The key in the report's `errors` map: `connect`, `send`, `body`, `timeout`, `bad_body` or
    /// `http_<status>`.
    pub fn key(self) -> String {
        match self {
            ErrorKind::Connect => "connect".to_owned(),
            ErrorKind::Send => "send".to_owned(),
            ErrorKind::Body => "body".to_owned(),
            ErrorKind::Timeout => "timeout".to_owned(),
            ErrorKind::Status(code) => format!("http_{code}"),
            ErrorKind::BadBody => "bad_body".to_owned(),
        }
    }

    fn may_have_consumed(self) -> bool {
        // The request may have reached the server and been decided even though the answer was
        // lost; an answer with a status or a body was decided and said so.
        matches!(
            self,
            ErrorKind::Send | ErrorKind::Body | ErrorKind::Timeout | ErrorKind::BadBody
        )
    }
}

/// Counts of answers, per worker and merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests sent (every outcome).
    pub requests: u64,
    /// `accept` decisions.
    pub accepted: u64,
    /// `reject` decisions.
    pub rejected: u64,
    /// `challenge` decisions.
    pub challenges: u64,
    /// Requests without a decision, by [`ErrorKind::key`].
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    /// Counts one request.
    pub fn record(&mut self, outcome: Outcome) {
        self.requests += 1;
        match outcome {
            Outcome::Accept => self.accepted += 1,
            Outcome::Reject => self.rejected += 1,
            Outcome::Challenge => self.challenges += 1,
            Outcome::Error(kind) => *self.errors.entry(kind.key()).or_default() += 1,
        }
    }

    /// Adds another worker's counts.
    pub fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.accepted += other.accepted;
        self.rejected += other.rejected;
        self.challenges += other.challenges;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
    }

    /// Requests without a decision (non-200 answers, connection errors, timeouts).
    pub fn http_errors(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The outcome of the `duplicate` case: the same valid code on many connections at once.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DuplicateReport {
    /// Tokens tried.
    pub tokens: usize,
    /// Simultaneous requests per token, each on its own connection.
    pub parallel: usize,
    /// Accepts per token, in the order tried. A correct server answers exactly one each.
    pub accepted_per_token: Vec<u64>,
    /// How many tokens had exactly one accept.
    pub tokens_exactly_one: usize,
    /// Accepts of the same code sent once more afterwards, on one connection (should be 0).
    pub replay_accepted: u64,
}

impl DuplicateReport {
    /// Builds the summary from the accepts per token.
    pub fn new(parallel: usize, accepted_per_token: Vec<u64>, replay_accepted: u64) -> Self {
        DuplicateReport {
            tokens: accepted_per_token.len(),
            parallel,
            tokens_exactly_one: accepted_per_token.iter().filter(|&&n| n == 1).count(),
            accepted_per_token,
            replay_accepted,
        }
    }

    /// How many tokens got each number of accepts, e.g. `{1: 10}`.
    pub fn histogram(&self) -> BTreeMap<u64, usize> {
        let mut out = BTreeMap::new();
        for &n in &self.accepted_per_token {
            *out.entry(n).or_default() += 1;
        }
        out
    }
}

/// One run's result, as printed with `--json` (one object) or as text.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunReport {
    /// The case run.
    pub case: String,
    /// The server's base URL.
    pub url: String,
    /// `closed` (each connection sends when the previous answer arrived) or `open` (requests
    /// leave on a fixed schedule, `target_rps`; latency counted from the intended send time).
    pub mode: &'static str,
    /// Open loop: the requested rate, requests per second over all connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rps: Option<f64>,
    /// Workers (connections); for `duplicate`, the simultaneous requests per token.
    pub concurrency: usize,
    /// Operating system threads of the tool's runtime.
    pub threads: usize,
    /// Tokens the run drew codes from.
    pub tokens: usize,
    /// Warm-up before measuring, seconds (requests not counted; codes used all the same).
    pub warmup_s: f64,
    /// Requested measuring time, seconds.
    pub duration_s: f64,
    /// Measured time: from the end of the warm-up until the last answer, seconds.
    pub elapsed_s: f64,
    /// Requests sent after the warm-up.
    pub requests: u64,
    /// `requests / elapsed_s`.
    pub rps: f64,
    /// `accept` decisions.
    pub accepted: u64,
    /// `accepted / elapsed_s`.
    pub accepted_rps: f64,
    /// `reject` decisions.
    pub rejected: u64,
    /// `challenge` decisions.
    pub challenges: u64,
    /// Requests without a decision.
    pub http_errors: u64,
    /// Those by kind: `connect`, `send`, `body`, `timeout`, `bad_body`, `http_<status>`.
    pub errors: BTreeMap<String, u64>,
    /// Latency of answered requests, milliseconds: closed loop from handing the request to the
    /// connection, open loop from its intended send time, to the end of the answer's body.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Open loop: requests sent more than 1 ms after their intended time (their connection was
    /// still waiting for an earlier answer, or the tool fell behind). Their wait is in the
    /// latencies; many of them with a low `rps` against `target_rps` mean the rate was more than
    /// the server (or the tool) could do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_sends: Option<u64>,
    /// Open loop: the same requests' p50 counted from their actual send, as a closed loop
    /// counts (the difference to `p50_ms` is the time spent waiting to be sent), ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_send_p50_ms: Option<f64>,
    /// Open loop: p99 counted from the actual send, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_send_p99_ms: Option<f64>,
    /// `totp_valid`: average time a worker waited for the next time step, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_s: Option<f64>,
    /// CPU time of this tool during the measured time, % of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_cpu_pct_of_1core: Option<f64>,
    /// CPU time of the process given with `--server-pid`, % of one core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_pct_of_1core: Option<f64>,
    /// `duplicate` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<DuplicateReport>,
}

/// What a run measured, before it becomes a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Counts.
    pub tally: Tally,
    /// Latencies.
    pub latency: Latency,
    /// Measured seconds.
    pub elapsed_s: f64,
}

impl RunReport {
    /// A report with the counts, rates and latencies filled in; optional parts empty.
    pub fn new(case: &str, url: &str, concurrency: usize, measured: &Measured) -> RunReport {
        let per_second = |n: u64| {
            if measured.elapsed_s > 0.0 {
                round(n as f64 / measured.elapsed_s, 1)
            } else {
                0.0
            }
        };
        let ms = |us: u32| f64::from(us) / 1000.0;
        let tally = &measured.tally;
        RunReport {
            case: case.to_owned(),
            url: url.to_owned(),
            mode: "closed",
            target_rps: None,
            concurrency,
            threads: 1,
            tokens: 0,
            warmup_s: 0.0,
            duration_s: 0.0,
            elapsed_s: round(measured.elapsed_s, 3),
            requests: tally.requests,
            rps: per_second(tally.requests),
            accepted: tally.accepted,
            accepted_rps: per_second(tally.accepted),
            rejected: tally.rejected,
            challenges: tally.challenges,
            http_errors: tally.http_errors(),
            errors: tally.errors.clone(),
            p50_ms: ms(measured.latency.p50_us),
            p90_ms: ms(measured.latency.p90_us),
            p99_ms: ms(measured.latency.p99_us),
            p999_ms: ms(measured.latency.p999_us),
            max_ms: ms(measured.latency.max_us),
            mean_ms: round(measured.latency.mean_us / 1000.0, 3),
            late_sends: None,
            from_send_p50_ms: None,
            from_send_p99_ms: None,
            waited_s: None,
            tool_cpu_pct_of_1core: None,
            server_cpu_pct_of_1core: None,
            duplicate: None,
        }
    }

    /// Marks the report as an open-loop run at `rate` with `late` late sends, and adds the
    /// latencies counted from the actual sends.
    pub fn open_loop(&mut self, rate: f64, late: u64, from_send: Latency) {
        self.mode = "open";
        self.target_rps = Some(rate);
        self.late_sends = Some(late);
        self.from_send_p50_ms = Some(f64::from(from_send.p50_us) / 1000.0);
        self.from_send_p99_ms = Some(f64::from(from_send.p99_us) / 1000.0);
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        // A struct of numbers, strings and maps with string keys always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The report for people, one fact per line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "case {}  url {}  concurrency {}  threads {}  tokens {}",
            self.case, self.url, self.concurrency, self.threads, self.tokens
        );
        match self.target_rps {
            Some(rate) => {
                let _ = writeln!(
                    out,
                    "open loop at {rate:.1} requests/s: latency from the intended send time"
                );
            }
            None => {
                let _ = writeln!(out, "closed loop: latency from the send");
            }
        }
        let _ = writeln!(
            out,
            "duration {:.3} s measured (asked {} s, warm-up {} s)",
            self.elapsed_s, self.duration_s, self.warmup_s
        );
        let _ = writeln!(
            out,
            "requests {}  {:.1} requests/s  ({:.1} accepted/s)",
            self.requests, self.rps, self.accepted_rps
        );
        let _ = writeln!(
            out,
            "accepted {}  rejected {}  challenges {}  http errors {}",
            self.accepted, self.rejected, self.challenges, self.http_errors
        );
        for (kind, n) in &self.errors {
            let _ = writeln!(out, "  error {kind}: {n}");
        }
        let _ = writeln!(
            out,
            "latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}",
            self.p50_ms, self.p90_ms, self.p99_ms, self.p999_ms, self.max_ms, self.mean_ms
        );
        if let (Some(p50), Some(p99)) = (self.from_send_p50_ms, self.from_send_p99_ms) {
            let _ = writeln!(
                out,
                "counted from the actual send: p50 {p50:.3}  p99 {p99:.3}"
            );
        }
        if let Some(late) = self.late_sends {
            let _ = writeln!(out, "sent more than 2 ms after their time: {late}");
        }
        if let Some(waited) = self.waited_s {
            let _ = writeln!(
                out,
                "waited for the next time step {waited:.3} s per worker"
            );
        }
        if let Some(cpu) = self.tool_cpu_pct_of_1core {
            let _ = writeln!(out, "tool CPU {cpu:.1} % of one core");
        }
        if let Some(cpu) = self.server_cpu_pct_of_1core {
            let _ = writeln!(out, "server CPU {cpu:.1} % of one core");
        }
        if let Some(dup) = &self.duplicate {
            let _ = writeln!(
                out,
                "duplicate: {} tokens x {} simultaneous requests with one code",
                dup.tokens, dup.parallel
            );
            for (accepts, tokens) in dup.histogram() {
                let _ = writeln!(out, "  {tokens} token(s) accepted {accepts} time(s)");
            }
            let _ = writeln!(
                out,
                "  exactly one accept: {}/{}  sequential replay accepted: {}",
                dup.tokens_exactly_one, dup.tokens, dup.replay_accepted
            );
        }
        out
    }
}

/// One slice of a run's time line: the requests whose (intended) send time fell into it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Bucket {
    /// Start of the slice, seconds after the end of the warm-up.
    pub t_s: f64,
    /// Answered requests sent in the slice.
    pub requests: u64,
    /// Their median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

/// Latencies by the time their requests were sent: `samples` are (send time, latency) in
/// microseconds, the send time counted from the end of the warm-up; `bucket_us` is the slice's
/// length. Every slice from the first to the last sample is listed, empty ones with zeros (a
/// slice without answers during a run is a stall worth seeing).
pub fn timeline(samples: &[(u32, u32)], bucket_us: u32) -> Vec<Bucket> {
    let bucket_us = bucket_us.max(1);
    let Some(last) = samples.iter().map(|&(at, _)| at / bucket_us).max() else {
        return Vec::new();
    };
    let mut slices: Vec<Vec<u32>> = vec![Vec::new(); last as usize + 1];
    for &(at, latency) in samples {
        slices[(at / bucket_us) as usize].push(latency);
    }
    slices
        .into_iter()
        .enumerate()
        .map(|(i, mut latencies)| {
            latencies.sort_unstable();
            let ms = |p| f64::from(percentile(&latencies, p).unwrap_or(0)) / 1000.0;
            Bucket {
                t_s: round(i as f64 * f64::from(bucket_us) / 1e6, 3),
                requests: latencies.len() as u64,
                p50_ms: ms(50.0),
                p99_ms: ms(99.0),
                max_ms: ms(100.0),
            }
        })
        .collect()
}

/// `value` rounded to `decimals` places.
pub fn round(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_one_to_a_hundred() {
        let samples: Vec<u32> = (1..=100).rev().collect();
        let l = Latency::from_samples(samples);
        assert_eq!((l.p50_us, l.p90_us, l.p99_us, l.max_us), (50, 90, 99, 100));
        assert!((l.mean_us - 50.5).abs() < 1e-9);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let sorted = [10, 20, 30, 40, 1000];
        assert_eq!(percentile(&sorted, 50.0), Some(30));
        assert_eq!(percentile(&sorted, 90.0), Some(1000));
        assert_eq!(percentile(&sorted, 80.0), Some(40));
        assert_eq!(percentile(&sorted, 0.0), Some(10));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(Latency::from_samples(vec![]), Latency::default());
    }

    #[test]
    fn tally_counts_and_merges() {
        let mut a = Tally::default();
        a.record(Outcome::Accept);
        a.record(Outcome::Reject);
        a.record(Outcome::Error(ErrorKind::Status(503)));
        let mut b = Tally::default();
        b.record(Outcome::Challenge);
        b.record(Outcome::Error(ErrorKind::Status(503)));
        b.record(Outcome::Error(ErrorKind::Connect));
        a.merge(&b);
        assert_eq!(
            (a.requests, a.accepted, a.rejected, a.challenges),
            (6, 1, 1, 1)
        );
        assert_eq!(a.http_errors(), 3);
        assert_eq!(a.errors["http_503"], 2);
        assert_eq!(a.errors["connect"], 1);
    }

    #[test]
    fn lost_answers_may_have_used_the_code() {
        assert!(Outcome::Accept.may_have_consumed());
        assert!(Outcome::Error(ErrorKind::Timeout).may_have_consumed());
        assert!(!Outcome::Reject.may_have_consumed());
        assert!(!Outcome::Error(ErrorKind::Status(401)).may_have_consumed());
        assert!(!Outcome::Error(ErrorKind::Connect).may_have_consumed());
    }

    #[test]
    fn report_rates_and_milliseconds() {
        let mut tally = Tally::default();
        for _ in 0..300 {
            tally.record(Outcome::Accept);
        }
        let measured = Measured {
            tally,
            latency: Latency::from_samples(vec![1234, 250, 99_001]),
            elapsed_s: 2.0,
        };
        let r = RunReport::new("hotp_valid", "http://127.0.0.1:1", 4, &measured);
        assert_eq!((r.rps, r.accepted_rps), (150.0, 150.0));
        assert_eq!((r.p50_ms, r.max_ms), (1.234, 99.001));
        let json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(json["p50_ms"], 1.234);
        assert_eq!(json["http_errors"], 0);
        assert!(json.get("duplicate").is_none());
        assert!(r.to_text().contains("p50 1.234"));
        assert_eq!(json["mode"], "closed");
        assert!(json.get("target_rps").is_none());

        let mut open = r.clone();
        open.open_loop(500.0, 7, Latency::from_samples(vec![100, 200]));
        let json: serde_json::Value = serde_json::from_str(&open.to_json()).unwrap();
        assert_eq!(json["mode"], "open");
        assert_eq!(json["target_rps"], 500.0);
        assert_eq!(json["late_sends"], 7);
        assert_eq!(json["from_send_p99_ms"], 0.2);
        assert!(open.to_text().contains("open loop at 500.0"));
    }

    #[test]
    fn timeline_slices_by_send_time_and_shows_empty_slices() {
        let samples = [
            (10, 100),
            (99_999, 300),
            (50_000, 200),
            (250_000, 40_000),
            (250_001, 39_000),
        ];
        let t = timeline(&samples, 100_000);
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].t_s, t[0].requests), (0.0, 3));
        assert_eq!((t[0].p50_ms, t[0].p99_ms, t[0].max_ms), (0.2, 0.3, 0.3));
        assert_eq!((t[1].t_s, t[1].requests, t[1].max_ms), (0.1, 0, 0.0));
        assert_eq!((t[2].t_s, t[2].requests, t[2].max_ms), (0.2, 2, 40.0));
        assert!(timeline(&[], 1000).is_empty());
    }

    #[test]
    fn duplicate_summary() {
        let d = DuplicateReport::new(50, vec![1, 1, 2, 0, 1], 0);
        assert_eq!(d.tokens_exactly_one, 3);
        assert_eq!(d.histogram(), BTreeMap::from([(0, 1), (1, 3), (2, 1)]));
    }
}
