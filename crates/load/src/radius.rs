//! `tessera-load radius`: measures Tessera's RADIUS server with the HOTP tokens of a seed file,
//! over loopback UDP, closed loop: each worker has its own socket and one request in flight.
//!
//! Cases: `code` (each request a fresh valid code; client mode `code`), `wrong` (a wrong code),
//! `password-code` (password and code in User-Password; client mode `password+code`),
//! `challenge` (password, Access-Challenge, code with the State; client mode `challenge`), and
//! `retransmit` (`code` with 10% of the requests sent twice, byte for byte: both answers must
//! be the same Accept). `--hostile-rate` adds forged packets (unknown source, wrong
//! Message-Authenticator) at that many per second while the case runs.
//!
//! Request Authenticators only need to differ between requests here (the server's cache and
//! fingerprints key on them): they are counters, not random; a real NAS uses random ones.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tessera_load::report::Latency;
use tessera_load::seeds::{Generator, SeedFile, TokenKind};
use tessera_otp::Secret;
use tessera_radius::{Packet, Request, attr, code};
use tokio::net::UdpSocket;

use crate::clock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RadiusCase {
    Code,
    Wrong,
    PasswordCode,
    Challenge,
    Retransmit,
}

#[derive(Debug)]
pub struct RadiusOptions {
    pub seeds: std::path::PathBuf,
    pub server: SocketAddr,
    pub secret: String,
    pub case: RadiusCase,
    pub in_flight: usize,
    pub duration: f64,
    /// Local address to send from (the client's address on the server).
    pub bind: std::net::IpAddr,
    pub hostile_rate: f64,
    pub timeout: f64,
}

#[derive(Debug, Default, Serialize)]
struct Counts {
    requests: u64,
    accepted: u64,
    rejected: u64,
    challenged: u64,
    lost: u64,
    /// `retransmit`: a duplicate whose answer was not the same Accept.
    false_rejects: u64,
}

#[derive(Debug, Serialize)]
struct RadiusReport {
    case: RadiusCase,
    in_flight: usize,
    seconds: f64,
    /// Logins per second (a challenge login is two requests).
    logins_per_second: f64,
    counts: Counts,
    latency: LatencyOut,
    hostile_sent: u64,
}

/// Microseconds from send to the (last) answer of a login.
#[derive(Debug, Serialize)]
struct LatencyOut {
    p50_us: u32,
    p90_us: u32,
    p99_us: u32,
    p999_us: u32,
    max_us: u32,
    mean_us: f64,
}

impl From<Latency> for LatencyOut {
    fn from(l: Latency) -> Self {
        LatencyOut {
            p50_us: l.p50_us,
            p90_us: l.p90_us,
            p99_us: l.p99_us,
            p999_us: l.p999_us,
            max_us: l.max_us,
            mean_us: l.mean_us,
        }
    }
}

struct Token {
    username: String,
    password: String,
    secret: Secret,
    generator: Generator,
    counter: u64,
}

struct Worker {
    sock: UdpSocket,
    server: SocketAddr,
    secret: Vec<u8>,
    id: u8,
    seq: u64,
    worker: u64,
}

impl Worker {
    fn request(&mut self, user: &str, password: &str, state: Option<&[u8]>) -> (Vec<u8>, [u8; 16]) {
        self.id = self.id.wrapping_add(1);
        self.seq += 1;
        let mut auth = [0u8; 16];
        auth[..8].copy_from_slice(&self.worker.to_be_bytes());
        auth[8..].copy_from_slice(&self.seq.to_be_bytes());
        auth[0] ^= (clock::unix_ms() & 0xff) as u8;
        let mut r = Request::new(code::ACCESS_REQUEST, self.id, auth);
        r.push(attr::USER_NAME, user.as_bytes());
        r.push_password(password.as_bytes(), &self.secret);
        if let Some(s) = state {
            r.push(attr::STATE, s);
        }
        (r.encode(&self.secret, true).unwrap_or_default(), auth)
    }

    /// Sends and waits for the verified answer: (code, State).
    async fn ask(
        &self,
        bytes: &[u8],
        auth: &[u8; 16],
        timeout: Duration,
    ) -> Option<(u8, Vec<u8>, Vec<u8>)> {
        self.sock.send_to(bytes, self.server).await.ok()?;
        self.recv(auth, timeout).await
    }

    async fn recv(&self, auth: &[u8; 16], timeout: Duration) -> Option<(u8, Vec<u8>, Vec<u8>)> {
        let mut buf = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (n, _) = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf))
                .await
                .ok()?
                .ok()?;
            let Ok(p) = Packet::parse(&buf[..n]) else {
                continue;
            };
            if p.verify_reply(&self.secret, auth, true).is_err() {
                continue;
            }
            let state = p.attr(attr::STATE).map(<[u8]>::to_vec).unwrap_or_default();
            return Some((p.code, state, buf[..n].to_vec()));
        }
    }
}

fn code_of(t: &mut Token) -> String {
    let c = match &t.generator {
        Generator::Hotp(h) => h.generate(&t.secret, t.counter),
        Generator::Totp(_) => String::new(),
    };
    t.counter += 1;
    c
}

pub async fn run(opts: RadiusOptions) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&opts.seeds).context("cannot read the seed file")?;
    let seeds = SeedFile::from_json(&text)?;
    let mut tokens = Vec::new();
    for i in seeds.indexes_of(TokenKind::Hotp) {
        let t = &seeds.tokens[i];
        let (secret, generator) = t.generator()?;
        tokens.push(Token {
            username: t.username.clone(),
            password: t.password.clone().unwrap_or_default(),
            secret,
            generator,
            counter: t.next_counter.unwrap_or(0),
        });
    }
    anyhow::ensure!(!tokens.is_empty(), "the seed file has no HOTP tokens");
    let workers = opts.in_flight.clamp(1, tokens.len());
    // Each worker owns every workers-th token, so no code is sent twice.
    let mut shares: Vec<Vec<Token>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, t) in tokens.into_iter().enumerate() {
        shares[i % workers].push(t);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let hostile_sent = Arc::new(AtomicU64::new(0));
    let mut hostile = Vec::new();
    if opts.hostile_rate > 0.0 {
        hostile.push(tokio::spawn(flood(
            opts.server,
            opts.hostile_rate,
            stop.clone(),
            hostile_sent.clone(),
        )));
    }
    let timeout = Duration::from_secs_f64(opts.timeout);
    let started = clock::now();
    let end = started + Duration::from_secs_f64(opts.duration);
    let mut tasks = Vec::new();
    for (w, mut share) in shares.into_iter().enumerate() {
        let sock = UdpSocket::bind(SocketAddr::new(opts.bind, 0)).await?;
        let mut worker = Worker {
            sock,
            server: opts.server,
            secret: opts.secret.as_bytes().to_vec(),
            id: 0,
            seq: 0,
            worker: w as u64,
        };
        let case = opts.case;
        tasks.push(tokio::spawn(async move {
            let mut counts = Counts::default();
            let mut samples = Vec::new();
            let mut next = 0usize;
            let mut n = 0u64;
            while clock::now() < end {
                let len = share.len();
                let t = &mut share[next % len];
                next += 1;
                n += 1;
                let begin = clock::now();
                let pass = match case {
                    RadiusCase::Code | RadiusCase::Retransmit => code_of(t),
                    RadiusCase::Wrong => "000000".into(),
                    RadiusCase::PasswordCode => {
                        let c = code_of(t);
                        format!("{}{c}", t.password)
                    }
                    RadiusCase::Challenge => t.password.clone(),
                };
                let (bytes, auth) = worker.request(&t.username, &pass, None);
                counts.requests += 1;
                let mut answer = worker.ask(&bytes, &auth, timeout).await;
                if case == RadiusCase::Retransmit && n.is_multiple_of(10) {
                    // The same datagram again: it must get the same Accept.
                    counts.requests += 1;
                    let again = worker.ask(&bytes, &auth, timeout).await;
                    if again.as_ref().map(|a| &a.2) != answer.as_ref().map(|a| &a.2)
                        || again.as_ref().map(|a| a.0) != Some(code::ACCESS_ACCEPT)
                    {
                        counts.false_rejects += 1;
                    }
                }
                if case == RadiusCase::Challenge
                    && let Some((code::ACCESS_CHALLENGE, state, _)) = &answer
                {
                    counts.challenged += 1;
                    let c = code_of(t);
                    let (bytes, auth) = worker.request(&t.username, &c, Some(state));
                    counts.requests += 1;
                    answer = worker.ask(&bytes, &auth, timeout).await;
                }
                match answer.map(|a| a.0) {
                    Some(code::ACCESS_ACCEPT) => counts.accepted += 1,
                    Some(code::ACCESS_REJECT) => counts.rejected += 1,
                    Some(_) => counts.challenged += 1,
                    None => counts.lost += 1,
                }
                let us = clock::now().duration_since(begin).as_micros();
                samples.push(u32::try_from(us).unwrap_or(u32::MAX));
            }
            let used: Vec<(String, u64)> = share
                .iter()
                .map(|t| (t.username.clone(), t.counter))
                .collect();
            (counts, samples, used)
        }));
    }
    let mut total = Counts::default();
    let mut samples = Vec::new();
    let mut seeds = seeds;
    for t in tasks {
        let (c, s, used) = t.await?;
        // The counters sent are spent: the next run starts after them.
        for (user, counter) in used {
            if let Some(seed) = seeds
                .tokens
                .iter_mut()
                .find(|x| x.username == user && x.kind == TokenKind::Hotp)
            {
                seed.next_counter = Some(counter);
            }
        }
        total.requests += c.requests;
        total.accepted += c.accepted;
        total.rejected += c.rejected;
        total.challenged += c.challenged;
        total.lost += c.lost;
        total.false_rejects += c.false_rejects;
        samples.extend(s);
    }
    stop.store(true, Ordering::Relaxed);
    for h in hostile {
        let _ = h.await;
    }
    std::fs::write(&opts.seeds, seeds.to_json()).context("cannot update the seed file")?;
    let seconds = clock::now().duration_since(started).as_secs_f64();
    let report = RadiusReport {
        case: opts.case,
        in_flight: workers,
        seconds,
        logins_per_second: samples.len() as f64 / seconds,
        counts: total,
        latency: Latency::from_samples(samples).into(),
        hostile_sent: hostile_sent.load(Ordering::Relaxed),
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Forged traffic at `rate` per second: half from an address no client has (127.0.0.99), half
/// from the benchmark's own address with a wrong Message-Authenticator.
async fn flood(server: SocketAddr, rate: f64, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let Ok(stranger) = UdpSocket::bind("127.0.0.99:0").await else {
        return;
    };
    let Ok(forger) = UdpSocket::bind("127.0.0.1:0").await else {
        return;
    };
    let mut r = Request::new(code::ACCESS_REQUEST, 1, [7; 16]);
    r.push(attr::USER_NAME, b"nobody");
    r.push_password(b"123456", b"not the secret");
    let bytes = r.encode(b"not the secret", true).unwrap_or_default();
    // Bursts every millisecond keep the rate without one timer per packet.
    let per_tick = (rate / 1000.0).max(1.0);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut owed = 0.0;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        owed += per_tick;
        while owed >= 1.0 {
            owed -= 1.0;
            let n = sent.fetch_add(1, Ordering::Relaxed);
            let sock = if n.is_multiple_of(2) {
                &stranger
            } else {
                &forger
            };
            let _ = sock.try_send_to(&bytes, server);
        }
    }
}
