//! `tessera-load run`: workers against `POST /api/v1/validate`, one keep-alive connection each,
//! closed loop or open loop (`--rate`), and the `duplicate` replay check.
//!
//! Closed loop: each worker sends a request, waits for the answer, sends the next, until the
//! deadline. Open loop: each worker has its share of a fixed schedule ([`Pacer`]) and sends each
//! request at its intended time, or as soon as its connection is free if that time has passed;
//! the latency runs from the intended time, so a stall of the server is counted in every request
//! it held up, sent or not yet sent. Either loop always ends by itself. Bodies are JSON prefixes serialised once per token; a request costs
//! one HMAC for its code, one small allocation for the body and a borrowing JSON parse of the
//! answer. Requests sent during the warm-up are not counted, but the codes they used are.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::{StatusCode, Uri};
use serde::Deserialize;
use tessera_load::pace::{Pacer, is_late, open_loop_latency};
use tessera_load::report::{
    DuplicateReport, ErrorKind, Latency, Measured, Outcome, RunReport, Tally, round, timeline,
};
use tessera_load::schedule::{
    HotpSlot, HotpValid, HotpWrong, TotpNext, TotpSlot, TotpValid, stripes,
};
use tessera_load::seeds::{Generator, SeedFile, TokenKind};
use tessera_load::target::parse_loopback_url;

use crate::clock;
use crate::files::{load_seeds, save_seeds};
use crate::http::{self, HttpConn, host_header, post_json, resolve_loopback};

/// The validate route.
const VALIDATE: &str = "/api/v1/validate";

/// The measured cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Case {
    /// Every request a fresh valid HOTP code (each counter once, in order per token).
    HotpValid,
    /// A well-formed wrong code, cycling over the HOTP tokens.
    HotpWrong,
    /// Valid TOTP codes, as many as the window allows (current step, then the next one).
    TotpValid,
    /// User name, password and a fresh valid HOTP code to the `password_and_otp` application.
    PasswordHotpValid,
    /// The same valid HOTP code on many connections at once, per token; then once more.
    Duplicate,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::HotpValid => "hotp_valid",
            Case::HotpWrong => "hotp_wrong",
            Case::TotpValid => "totp_valid",
            Case::PasswordHotpValid => "password_hotp_valid",
            Case::Duplicate => "duplicate",
        }
    }
}

/// What `run` was asked for.
#[derive(Debug)]
pub struct RunOptions {
    /// The seed file.
    pub seeds: PathBuf,
    /// The case.
    pub case: Case,
    /// Workers (connections).
    pub concurrency: usize,
    /// Open loop at this many requests per second in all; closed loop without.
    pub rate: Option<f64>,
    /// Where to write the latencies by send time (JSON lines).
    pub timeline: Option<PathBuf>,
    /// The timeline's slice, milliseconds.
    pub timeline_ms: u32,
    /// Measured seconds after the warm-up.
    pub duration: f64,
    /// Warm-up seconds.
    pub warmup: f64,
    /// Print one JSON object instead of text.
    pub json: bool,
    /// Write used counters and steps back to the seed file.
    pub update_seeds: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Runtime threads (reported only; the runtime is built by `main`).
    pub threads: usize,
    /// Use only this many tokens (`duplicate`: default 50, the last ones).
    pub tokens: Option<usize>,
    /// `duplicate`: simultaneous requests per token.
    pub parallel: usize,
    /// Also measure this process's CPU time (the server).
    pub server_pid: Option<u32>,
}

/// What every worker shares: where to send and the per-token body prefixes.
struct Shared {
    path: Uri,
    authorization: HeaderValue,
    timeout: Duration,
    /// Indexed like the seed file's tokens; empty for tokens the run does not use.
    bodies: Vec<BodyTemplate>,
}

/// `{"username":"u","otp":"` (or with `"password"`) serialised once; the code and `"}` are
/// appended per request.
#[derive(Default, Clone)]
struct BodyTemplate {
    head: Vec<u8>,
}

impl BodyTemplate {
    fn new(username: &str, password: Option<&str>) -> anyhow::Result<BodyTemplate> {
        let mut head = Vec::with_capacity(64);
        head.extend_from_slice(b"{\"username\":");
        serde_json::to_writer(&mut head, username)?;
        if let Some(password) = password {
            head.extend_from_slice(b",\"password\":");
            serde_json::to_writer(&mut head, password)?;
        }
        head.extend_from_slice(b",\"otp\":\"");
        Ok(BodyTemplate { head })
    }

    /// The body with `code` (digits only: nothing to escape).
    fn with_code(&self, code: &str) -> Bytes {
        let mut body = Vec::with_capacity(self.head.len() + code.len() + 2);
        body.extend_from_slice(&self.head);
        body.extend_from_slice(code.as_bytes());
        body.extend_from_slice(b"\"}");
        Bytes::from(body)
    }
}

/// When warm-up and measurement start and end.
#[derive(Clone)]
struct Times {
    start: Instant,
    measure_from: Instant,
    deadline: Instant,
    /// Set on Ctrl-C or SIGINT (`tessera-load guard` stopping a disturbed run): the workers stop
    /// as at the deadline, so the counters used are still written to the seed file.
    stop: Arc<AtomicBool>,
}

impl Times {
    fn over(&self, now: Instant) -> bool {
        now >= self.deadline || self.stop.load(Ordering::Relaxed)
    }
}

/// A request sent later than this after its intended time counts as late (open loop). The
/// tool's timer wakes on whole milliseconds, so an on-time request may leave up to about 1 ms
/// after its time; that wait is in the latency too, which errs on the side of reporting more.
const LATE_AFTER: Duration = Duration::from_millis(2);

enum Schedule {
    HotpValid(HotpValid),
    HotpWrong(HotpWrong),
    TotpValid(TotpValid),
}

struct WorkerResult {
    tally: Tally,
    latencies: Vec<u32>,
    /// Open loop: the same requests' time from the actual send (the server's part).
    from_send: Vec<u32>,
    /// With `--timeline`: (send time after the warm-up, latency), microseconds.
    points: Vec<(u32, u32)>,
    late: u64,
    schedule: Schedule,
    finished: Instant,
    waited: Duration,
}

/// Runs `run` and prints the report.
pub async fn run(options: RunOptions) -> anyhow::Result<()> {
    let mut seeds = load_seeds(&options.seeds)?;
    let target = parse_loopback_url(&seeds.url)?;
    let addr = resolve_loopback(&target).await?;
    let host = host_header(&target)?;
    let app = match options.case {
        Case::PasswordHotpValid => seeds
            .apps
            .password_and_otp
            .as_ref()
            .context("no password_and_otp application: prepare with --with-password")?,
        _ => &seeds.apps.otp_only,
    };
    let authorization = http::bearer(&app.api_key)?;
    let mut shared = Shared {
        path: http::route(&target, VALIDATE)?,
        authorization,
        timeout: options.timeout,
        bodies: vec![BodyTemplate::default(); seeds.tokens.len()],
    };

    let kind = match options.case {
        Case::TotpValid => TokenKind::Totp,
        _ => TokenKind::Hotp,
    };
    let mut indexes = seeds.indexes_of(kind);
    if indexes.is_empty() {
        bail!("the seed file has no {} tokens", kind.as_str());
    }
    if options.case == Case::Duplicate {
        // Like the anchor's replay test: the last tokens, leaving the first ones untouched.
        let n = options.tokens.unwrap_or(50).min(indexes.len());
        indexes.drain(..indexes.len() - n);
    } else if let Some(n) = options.tokens {
        indexes.truncate(n.max(1));
    }
    for &i in &indexes {
        let token = &seeds.tokens[i];
        let password =
            match options.case {
                Case::PasswordHotpValid => Some(token.password.as_deref().with_context(|| {
                    format!("{} has no password in the seed file", token.username)
                })?),
                _ => None,
            };
        shared.bodies[i] = BodyTemplate::new(&token.username, password)?;
    }
    let shared = Arc::new(shared);

    let mut report = if options.case == Case::Duplicate {
        duplicate(&mut seeds, &indexes, &options, addr, &host, &shared).await?
    } else {
        closed_loop(&mut seeds, &indexes, &options, addr, &host, &shared).await?
    };
    report.url.clone_from(&seeds.url);
    report.threads = options.threads;
    if options.update_seeds && options.case != Case::HotpWrong {
        save_seeds(&options.seeds, &seeds)?;
    }
    if options.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// The throughput cases: `concurrency` closed-loop workers over disjoint token stripes.
async fn closed_loop(
    seeds: &mut SeedFile,
    indexes: &[usize],
    options: &RunOptions,
    addr: std::net::SocketAddr,
    host: &HeaderValue,
    shared: &Arc<Shared>,
) -> anyhow::Result<RunReport> {
    // Never two requests in flight for one token: at most one worker per token.
    let workers = options.concurrency.clamp(1, indexes.len());
    if workers < options.concurrency {
        eprintln!(
            "run: only {} tokens: {workers} workers instead of {}",
            indexes.len(),
            options.concurrency
        );
    }
    let mut schedules = Vec::with_capacity(workers);
    for (w, stripe) in stripes(indexes.len(), workers).into_iter().enumerate() {
        let mut hotp = Vec::new();
        let mut totp = Vec::new();
        for position in stripe {
            let i = indexes[position];
            let token = &seeds.tokens[i];
            match token.generator()? {
                (secret, Generator::Hotp(generator)) => hotp.push(HotpSlot::new(
                    i,
                    secret,
                    generator,
                    token.next_counter.unwrap_or(0),
                )),
                (secret, Generator::Totp(generator)) => {
                    totp.push(TotpSlot::new(i, secret, generator, token.last_step));
                }
            }
        }
        schedules.push(match options.case {
            Case::HotpWrong => {
                // Different codes on every run and worker; reproducibility is not needed here.
                let seed = clock::unix_ms() ^ ((w as u64) << 48);
                Schedule::HotpWrong(HotpWrong::new(&hotp, seed))
            }
            Case::TotpValid => Schedule::TotpValid(TotpValid::new(totp)),
            _ => Schedule::HotpValid(HotpValid::new(hotp)),
        });
    }

    // Connections are opened before the clock starts: connection set-up is not measured.
    let mut conns = Vec::with_capacity(workers);
    for _ in 0..workers {
        let mut conn = HttpConn::new(addr, host.clone());
        conn.connect()
            .await
            .map_err(|_| anyhow::anyhow!("cannot connect to {addr}"))?;
        conns.push(conn);
    }
    let start = clock::now();
    let measure_from = start + Duration::from_secs_f64(options.warmup.max(0.0));
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.store(true, Ordering::Relaxed);
        }
    });
    let times = Times {
        start,
        measure_from,
        deadline: measure_from + Duration::from_secs_f64(options.duration.max(0.0)),
        stop,
    };
    let keep_points = options.timeline.is_some();
    let handles: Vec<_> = conns
        .into_iter()
        .zip(schedules)
        .enumerate()
        .map(|(w, (conn, schedule))| {
            let pacer = options.rate.map(|rate| Pacer::new(rate, workers, w));
            tokio::spawn(worker(
                conn,
                schedule,
                shared.clone(),
                times.clone(),
                pacer,
                keep_points,
            ))
        })
        .collect();
    clock::sleep_until(measure_from).await;
    let cpu = CpuMeter::start(options.server_pid);

    let mut tally = Tally::default();
    let mut latencies = Vec::new();
    let mut from_send = Vec::new();
    let mut points = Vec::new();
    let mut late = 0;
    let mut finished = measure_from;
    let mut waited = Duration::ZERO;
    for handle in handles {
        let result = handle.await.context("a load worker panicked")?;
        tally.merge(&result.tally);
        latencies.extend_from_slice(&result.latencies);
        from_send.extend_from_slice(&result.from_send);
        points.extend_from_slice(&result.points);
        late += result.late;
        finished = finished.max(result.finished);
        waited += result.waited;
        match result.schedule {
            Schedule::HotpValid(s) => {
                for slot in s.into_slots() {
                    seeds.tokens[slot.token].next_counter = Some(slot.next_counter);
                }
            }
            Schedule::TotpValid(s) => {
                for slot in s.into_slots() {
                    seeds.tokens[slot.token].last_step = slot.last_step;
                }
            }
            // Wrong codes leave the server's counters where they were.
            Schedule::HotpWrong(_) => {}
        }
    }
    let elapsed = finished
        .saturating_duration_since(measure_from)
        .as_secs_f64();
    let measured = Measured {
        tally,
        latency: Latency::from_samples(latencies),
        elapsed_s: elapsed,
    };
    let mut report = RunReport::new(options.case.name(), &seeds.url, workers, &measured);
    report.tokens = indexes.len();
    report.warmup_s = options.warmup;
    report.duration_s = options.duration;
    if let Some(rate) = options.rate {
        report.open_loop(rate, late, Latency::from_samples(from_send));
    }
    if let Some(path) = &options.timeline {
        write_timeline(path, &points, options.timeline_ms)?;
    }
    if options.case == Case::TotpValid {
        report.waited_s = Some(round(waited.as_secs_f64() / workers as f64, 3));
    }
    (report.tool_cpu_pct_of_1core, report.server_cpu_pct_of_1core) = cpu.stop(elapsed);
    Ok(report)
}

/// The timeline as JSON lines.
fn write_timeline(
    path: &std::path::Path,
    points: &[(u32, u32)],
    slice_ms: u32,
) -> anyhow::Result<()> {
    let mut out = String::new();
    for bucket in timeline(points, slice_ms.saturating_mul(1000)) {
        out.push_str(&serde_json::to_string(&bucket)?);
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// One worker. Closed loop (`pacer` none): a request, its answer, the next request, until the
/// deadline. Open loop: each request at its intended time from `pacer`, or at once when that
/// has passed, until the intended times reach the deadline.
async fn worker(
    mut conn: HttpConn,
    mut schedule: Schedule,
    shared: Arc<Shared>,
    times: Times,
    mut pacer: Option<Pacer>,
    keep_points: bool,
) -> WorkerResult {
    let mut tally = Tally::default();
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut from_send = Vec::new();
    let mut points = Vec::new();
    let mut late = 0;
    let mut waited = Duration::ZERO;
    loop {
        let intended = match pacer.as_mut() {
            Some(pacer) => {
                let at = times.start + pacer.next_intended();
                if times.over(at) {
                    break;
                }
                // Behind schedule the request leaves now, its wait counted. (Not through the
                // timer: a timer wakes on a millisecond tick even for a time already passed.)
                if at > clock::now() {
                    clock::sleep_until(at).await;
                }
                Some(at)
            }
            None => {
                if times.over(clock::now()) {
                    break;
                }
                None
            }
        };
        let pick = match &mut schedule {
            Schedule::HotpValid(s) => s.next_pick(),
            Schedule::HotpWrong(s) => s.next_pick(),
            Schedule::TotpValid(s) => match s.next_pick(clock::unix_secs()) {
                TotpNext::Send(pick) => Some(pick),
                TotpNext::WaitUntil(unix_secs) => {
                    // Every token of this worker used what the window allows: wait for the next
                    // time step (or the end of the run).
                    let before = clock::now();
                    // In slices, so that a stop is seen within 100 ms.
                    let slice = (before + Duration::from_millis(100)).min(times.deadline);
                    clock::sleep_until_unix_ms(unix_secs.saturating_mul(1000), slice).await;
                    let counted_from = before.max(times.measure_from);
                    waited += clock::now().saturating_duration_since(counted_from);
                    continue;
                }
            },
        };
        let Some(pick) = pick else { break };
        let request = post_json(
            &shared.path,
            Some(&shared.authorization),
            shared.bodies[pick.token].with_code(&pick.code),
        );
        let sent = clock::now();
        let (outcome, answered) = match conn.send(request, shared.timeout).await {
            Ok((status, body)) => (classify(status, &body), true),
            Err(kind) => (Outcome::Error(kind), false),
        };
        let done = clock::now();
        if let Schedule::HotpValid(s) = &mut schedule {
            s.settle(&pick, outcome.may_have_consumed());
        }
        // Open loop: counted from the intended time, and by it into the measured window.
        let from = intended.unwrap_or(sent);
        if from >= times.measure_from {
            tally.record(outcome);
            let us = |d: Duration| u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
            if let Some(at) = intended {
                let since = |t: Instant| t.saturating_duration_since(times.start);
                late += u64::from(is_late(since(at), since(sent), LATE_AFTER));
            }
            if answered {
                let took = match intended {
                    Some(at) => {
                        from_send.push(us(done.saturating_duration_since(sent)));
                        open_loop_latency(
                            at.saturating_duration_since(times.start),
                            done.saturating_duration_since(times.start),
                        )
                    }
                    None => done.saturating_duration_since(sent),
                };
                latencies.push(us(took));
                if keep_points {
                    points.push((
                        us(from.saturating_duration_since(times.measure_from)),
                        us(took),
                    ));
                }
            }
        }
        if outcome == Outcome::Error(ErrorKind::Connect) {
            // The server is gone: retry gently instead of spinning until the deadline.
            clock::sleep_until((clock::now() + Duration::from_millis(50)).min(times.deadline))
                .await;
        }
    }
    WorkerResult {
        tally,
        latencies,
        from_send,
        points,
        late,
        schedule,
        finished: clock::now(),
        waited,
    }
}

/// The decision in a validate answer.
fn classify(status: StatusCode, body: &[u8]) -> Outcome {
    #[derive(Deserialize)]
    struct Decision<'a> {
        #[serde(borrow)]
        result: Cow<'a, str>,
    }
    if status != StatusCode::OK {
        return Outcome::Error(ErrorKind::Status(status.as_u16()));
    }
    match serde_json::from_slice::<Decision<'_>>(body) {
        Ok(d) => match d.result.as_ref() {
            "accept" => Outcome::Accept,
            "reject" => Outcome::Reject,
            "challenge" => Outcome::Challenge,
            _ => Outcome::Error(ErrorKind::BadBody),
        },
        Err(_) => Outcome::Error(ErrorKind::BadBody),
    }
}

/// The replay check: per token, `parallel` connections send the same fresh code at once
/// (released together by a barrier), then one connection sends it again.
async fn duplicate(
    seeds: &mut SeedFile,
    indexes: &[usize],
    options: &RunOptions,
    addr: std::net::SocketAddr,
    host: &HeaderValue,
    shared: &Arc<Shared>,
) -> anyhow::Result<RunReport> {
    let parallel = options.parallel.max(2);
    let mut conns = Vec::with_capacity(parallel);
    for _ in 0..parallel {
        let mut conn = HttpConn::new(addr, host.clone());
        conn.connect()
            .await
            .map_err(|_| anyhow::anyhow!("cannot connect to {addr}"))?;
        conns.push(Some(conn));
    }
    let start = clock::now();
    let deadline = start + Duration::from_secs_f64(options.duration.max(0.0));
    let cpu = CpuMeter::start(options.server_pid);
    let mut tally = Tally::default();
    let mut latencies = Vec::new();
    let mut accepted_per_token = Vec::with_capacity(indexes.len());
    let mut replay_accepted = 0;
    for &i in indexes {
        // Bounded: stop trying new tokens once the duration is over.
        if clock::now() >= deadline {
            eprintln!(
                "run: duration over after {} of {} tokens",
                accepted_per_token.len(),
                indexes.len()
            );
            break;
        }
        let token = &seeds.tokens[i];
        let (secret, Generator::Hotp(generator)) = token.generator()? else {
            bail!("token {} is not HOTP", token.serial);
        };
        let slot = HotpSlot::new(i, secret, generator, token.next_counter.unwrap_or(0));
        let counter = slot.next_counter;
        let body = shared.bodies[i].with_code(&slot.code(counter));

        let barrier = Arc::new(tokio::sync::Barrier::new(parallel));
        let mut handles = Vec::with_capacity(parallel);
        for (k, slot) in conns.iter_mut().enumerate() {
            let mut conn = slot.take().context("connection missing")?;
            let request = post_json(&shared.path, Some(&shared.authorization), body.clone());
            let (barrier, timeout) = (barrier.clone(), shared.timeout);
            handles.push(tokio::spawn(async move {
                barrier.wait().await;
                let sent = clock::now();
                let result = conn.send(request, timeout).await;
                (
                    k,
                    conn,
                    result,
                    clock::now().saturating_duration_since(sent),
                )
            }));
        }
        let mut accepted = 0;
        let mut consumed = false;
        for handle in handles {
            let (k, conn, result, took) = handle.await.context("a duplicate sender panicked")?;
            conns[k] = Some(conn);
            let outcome = match result {
                Ok((status, body)) => {
                    latencies.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                    classify(status, &body)
                }
                Err(kind) => Outcome::Error(kind),
            };
            accepted += u64::from(outcome == Outcome::Accept);
            consumed |= outcome.may_have_consumed();
            tally.record(outcome);
        }
        accepted_per_token.push(accepted);

        // The same code once more, after the burst: a replay every server must refuse.
        let conn = conns[0].as_mut().context("connection missing")?;
        let request = post_json(&shared.path, Some(&shared.authorization), body);
        let sent = clock::now();
        let outcome = match conn.send(request, shared.timeout).await {
            Ok((status, body)) => {
                latencies.push(
                    u32::try_from(clock::now().saturating_duration_since(sent).as_micros())
                        .unwrap_or(u32::MAX),
                );
                classify(status, &body)
            }
            Err(kind) => Outcome::Error(kind),
        };
        replay_accepted += u64::from(outcome == Outcome::Accept);
        consumed |= outcome.may_have_consumed();
        tally.record(outcome);
        if consumed {
            seeds.tokens[i].next_counter = Some(counter + 1);
        }
    }
    let elapsed = clock::now().saturating_duration_since(start).as_secs_f64();
    let measured = Measured {
        tally,
        latency: Latency::from_samples(latencies),
        elapsed_s: elapsed,
    };
    let mut report = RunReport::new(Case::Duplicate.name(), &seeds.url, parallel, &measured);
    report.tokens = accepted_per_token.len();
    report.duration_s = options.duration;
    report.duplicate = Some(DuplicateReport::new(
        parallel,
        accepted_per_token,
        replay_accepted,
    ));
    (report.tool_cpu_pct_of_1core, report.server_cpu_pct_of_1core) = cpu.stop(elapsed);
    Ok(report)
}

/// CPU time of this tool and optionally of the server over the measured time.
struct CpuMeter {
    server_pid: Option<u32>,
    tool: Option<f64>,
    server: Option<f64>,
}

impl CpuMeter {
    fn start(server_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            server_pid,
            tool: clock::cpu_seconds(None),
            server: server_pid.and_then(|pid| clock::cpu_seconds(Some(pid))),
        }
    }

    /// (tool, server) in % of one core over `elapsed` seconds.
    fn stop(self, elapsed: f64) -> (Option<f64>, Option<f64>) {
        let pct = |before: Option<f64>, after: Option<f64>| match (before, after) {
            (Some(b), Some(a)) if elapsed > 0.0 => Some(round(100.0 * (a - b) / elapsed, 1)),
            _ => None,
        };
        let tool = pct(self.tool, clock::cpu_seconds(None));
        let server = pct(
            self.server,
            self.server_pid
                .and_then(|pid| clock::cpu_seconds(Some(pid))),
        );
        (tool, server)
    }
}
