//! `tessera-load`: prepares users and tokens on a Tessera server through the admin API, then
//! measures `POST /api/v1/validate` from this separate process over loopback.
//!
//! Parses the command line, builds the runtime, calls the subcommand; nothing else. The pure
//! parts (seed file, schedules, percentiles, loopback check) live in the library.

mod admin;
mod clock;
mod files;
mod http;
mod prepare;
mod radius;
mod run;
mod watch;
mod wrk;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tessera_load::seeds::TokenKind;

use crate::prepare::{PrepareOptions, UnlockOptions};
use crate::run::{Case, RunOptions};

/// Load generator for Tessera's validate API (loopback targets only).
#[derive(Debug, Parser)]
#[command(name = "tessera-load", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create applications, users and activated tokens; write the seed file.
    Prepare {
        /// The server's base URL (loopback only).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Admin user name.
        #[arg(long)]
        admin_user: String,
        /// Name of the environment variable that holds the admin password.
        #[arg(long, value_name = "VAR")]
        admin_password_env: String,
        /// Users per token kind: N with one HOTP token, N with one TOTP token.
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// User names are <prefix>h0000.. and <prefix>t0000..
        #[arg(long, default_value = "bench")]
        prefix: String,
        /// The seed file to write (it holds token secrets: keep it to test servers).
        #[arg(long, value_name = "FILE.json")]
        out: PathBuf,
        /// Also a password_and_otp application; users get the password bench-password-<i>.
        #[arg(long)]
        with_password: bool,
        /// Admin requests in flight.
        #[arg(long, default_value_t = 8)]
        in_flight: usize,
    },
    /// Measure one case against the server of a seed file.
    Run {
        /// The seed file from `prepare`.
        #[arg(long, value_name = "FILE.json")]
        seeds: PathBuf,
        /// What to send.
        #[arg(long, value_enum)]
        case: Case,
        /// Workers, one keep-alive connection each (capped at the number of tokens).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Open loop: send this many requests per second in all, on a fixed schedule, and count
        /// each latency from the request's intended send time (without it: closed loop).
        #[arg(long, value_name = "PER_SECOND")]
        rate: Option<f64>,
        /// Also write the latencies by send time, one JSON line per slice of --timeline-ms.
        #[arg(long, value_name = "FILE.jsonl")]
        timeline: Option<PathBuf>,
        /// The slice of --timeline, milliseconds.
        #[arg(long, default_value_t = 100)]
        timeline_ms: u32,
        /// Measured seconds (after the warm-up); the run stops by itself.
        #[arg(long, default_value_t = 20.0)]
        duration: f64,
        /// Warm-up seconds: requests not counted, codes used all the same.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Write used HOTP counters and TOTP steps back to the seed file (the default).
        #[arg(long, overrides_with = "no_update_seeds")]
        update_seeds: bool,
        /// Leave the seed file as it is.
        #[arg(long)]
        no_update_seeds: bool,
        /// Seconds to wait for one answer.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Runtime threads; 1 keeps the tool on one core next to the server.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Use only the first N tokens of the kind (duplicate: the last N, default 50).
        #[arg(long, value_name = "N")]
        tokens: Option<usize>,
        /// duplicate: simultaneous requests with the same code, each on its own connection.
        #[arg(long, default_value_t = 50)]
        parallel: usize,
        /// Also report the CPU time of this process (the server) over the run.
        #[arg(long, value_name = "PID")]
        server_pid: Option<u32>,
    },
    /// Measure Tessera's RADIUS server with the HOTP tokens of a seed file (UDP, closed loop,
    /// one request in flight per worker socket); prints one JSON object.
    Radius {
        #[arg(long, value_name = "FILE.json")]
        seeds: PathBuf,
        /// The RADIUS server (loopback).
        #[arg(long, default_value = "127.0.0.1:1812")]
        server: std::net::SocketAddr,
        /// Name of the environment variable holding the client's shared secret.
        #[arg(long, value_name = "VAR")]
        secret_env: String,
        #[arg(long, value_enum)]
        case: radius::RadiusCase,
        /// Requests in flight (workers, one socket each).
        #[arg(long, default_value_t = 32)]
        in_flight: usize,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Address to send from: the RADIUS client's address on the server.
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Forged packets per second beside the case (unknown source, wrong
        /// Message-Authenticator).
        #[arg(long, default_value_t = 0.0)]
        hostile_rate: f64,
        /// Seconds to wait for one answer.
        #[arg(long, default_value_t = 3.0)]
        timeout: f64,
        /// Runtime threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Request bodies for wrk (scripts/wrk-validate.lua), and the seed file settled after it.
    Lines {
        #[command(subcommand)]
        action: LinesAction,
    },
    /// Run a benchmark command when the machine is quiet; stop it if other processes disturb
    /// it; write whether the run is clean (one JSON object).
    Guard {
        /// The server's process (its CPU is the run's own); may be given more than once.
        #[arg(long = "server-pid", value_name = "PID")]
        server_pids: Vec<u32>,
        /// Processes of this name count as the run's own too (e.g. postgres); repeatable.
        #[arg(long = "watch-name", value_name = "NAME")]
        names: Vec<String>,
        /// Wait until other processes use less than this (% of one core) for 2 s in a row.
        #[arg(long, default_value_t = 15.0)]
        quiet: f64,
        /// Stop the run when other processes use more than this (% of one core) for 2 s.
        #[arg(long, default_value_t = 40.0)]
        abort_other: f64,
        /// The run is clean if other processes used at most this on average (% of one core)...
        #[arg(long, default_value_t = 15.0)]
        max_other: f64,
        /// ...and the hypervisor took at most this (steal time, % of one core).
        #[arg(long, default_value_t = 5.0)]
        max_steal: f64,
        /// Longest wait for a quiet machine, seconds (then the run starts anyway).
        #[arg(long, default_value_t = 900.0)]
        max_wait: f64,
        /// Write the verdict here instead of to stderr.
        #[arg(long, value_name = "FILE.json")]
        verdict: Option<PathBuf>,
        /// The command to run, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Clear failure counters and throttling of every token in a seed file (after wrong-code
    /// and duplicate runs).
    Unlock {
        /// The seed file from `prepare`.
        #[arg(long, value_name = "FILE.json")]
        seeds: PathBuf,
        /// Admin user name.
        #[arg(long)]
        admin_user: String,
        /// Name of the environment variable that holds the admin password.
        #[arg(long, value_name = "VAR")]
        admin_password_env: String,
        /// Only tokens of this kind.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<TokenKind>,
        /// Admin requests in flight.
        #[arg(long, default_value_t = 8)]
        in_flight: usize,
    },
}

#[derive(Debug, Subcommand)]
enum LinesAction {
    /// Write valid HOTP request bodies, round-robin over the tokens, each counter once; the
    /// seed file is not changed (run `settle` after wrk).
    Write {
        /// The seed file from `prepare`.
        #[arg(long, value_name = "FILE.json")]
        seeds: PathBuf,
        /// The lines file to write (mode 0600: every line holds a valid code).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Lines to write: more than wrk can send in its duration.
        #[arg(long)]
        count: u64,
        /// Use only the first N HOTP tokens.
        #[arg(long, value_name = "N")]
        tokens: Option<usize>,
    },
    /// Move the seed file's HOTP counters past the first SENT lines (wrk-validate.lua prints
    /// `sent`).
    Settle {
        /// The seed file the lines were written from.
        #[arg(long, value_name = "FILE.json")]
        seeds: PathBuf,
        /// How many lines were sent.
        #[arg(long)]
        sent: u64,
        /// The same --tokens as for `write`.
        #[arg(long, value_name = "N")]
        tokens: Option<usize>,
    },
}

fn parse_kind(s: &str) -> Result<TokenKind, String> {
    match s {
        "hotp" => Ok(TokenKind::Hotp),
        "totp" => Ok(TokenKind::Totp),
        _ => Err("hotp or totp".to_owned()),
    }
}

fn main() -> ExitCode {
    match start(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            // One line with the chain of causes; no backtrace for an operator's mistake.
            eprintln!("tessera-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Guard {
        server_pids,
        names,
        quiet,
        abort_other,
        max_other,
        max_steal,
        max_wait,
        verdict,
        command,
    } = cli.command
    {
        // No runtime: the guard only samples /proc and waits for its command.
        return watch::guard(watch::GuardOptions {
            server_pids,
            names,
            limits: tessera_load::guard::Limits {
                quiet,
                abort_other,
                max_other,
                max_steal,
            },
            max_wait,
            verdict,
            command,
        });
    }
    let threads = match &cli.command {
        Command::Run { threads, .. } | Command::Radius { threads, .. } => (*threads).max(1),
        _ => 1,
    };
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    runtime.block_on(dispatch(cli.command, threads))?;
    Ok(ExitCode::SUCCESS)
}

async fn dispatch(command: Command, threads: usize) -> anyhow::Result<()> {
    match command {
        Command::Prepare {
            url,
            admin_user,
            admin_password_env,
            users,
            prefix,
            out,
            with_password,
            in_flight,
        } => {
            prepare::prepare(PrepareOptions {
                url,
                admin_user,
                admin_password_env,
                users,
                prefix,
                out,
                with_password,
                in_flight,
            })
            .await
        }
        Command::Radius {
            seeds,
            server,
            secret_env,
            case,
            in_flight,
            duration,
            bind,
            hostile_rate,
            timeout,
            threads: _,
        } => {
            anyhow::ensure!(
                server.ip().is_loopback(),
                "the RADIUS server must be on loopback, got {server}"
            );
            let secret = anyhow::Context::with_context(std::env::var(&secret_env), || {
                format!("environment variable {secret_env} is not set")
            })?;
            radius::run(radius::RadiusOptions {
                seeds,
                server,
                secret,
                case,
                in_flight,
                duration,
                bind,
                hostile_rate,
                timeout,
            })
            .await
        }
        Command::Run {
            seeds,
            case,
            concurrency,
            rate,
            timeline,
            timeline_ms,
            duration,
            warmup,
            json,
            update_seeds: _,
            no_update_seeds,
            timeout,
            threads: _,
            tokens,
            parallel,
            server_pid,
        } => {
            if !(duration.is_finite() && duration > 0.0) {
                anyhow::bail!("--duration must be a positive number of seconds");
            }
            if !(warmup.is_finite() && warmup >= 0.0) {
                anyhow::bail!("--warmup must be zero or more seconds");
            }
            if !(timeout.is_finite() && timeout > 0.0) {
                anyhow::bail!("--timeout must be a positive number of seconds");
            }
            if let Some(rate) = rate {
                if !(rate.is_finite() && rate > 0.0) {
                    anyhow::bail!("--rate must be a positive number of requests per second");
                }
                if matches!(case, Case::TotpValid | Case::Duplicate) {
                    // TOTP codes run out until the next time step, and the replay check is a
                    // burst by design: neither has a schedule to keep.
                    anyhow::bail!("--rate is for hotp_valid, hotp_wrong and password_hotp_valid");
                }
            }
            run::run(RunOptions {
                seeds,
                case,
                concurrency,
                rate,
                timeline,
                timeline_ms: timeline_ms.max(1),
                duration,
                warmup,
                json,
                update_seeds: !no_update_seeds,
                timeout: Duration::from_secs_f64(timeout),
                threads,
                tokens,
                parallel,
                server_pid,
            })
            .await
        }
        Command::Lines { action } => match action {
            LinesAction::Write {
                seeds,
                out,
                count,
                tokens,
            } => wrk::write(seeds, out, count, tokens),
            LinesAction::Settle {
                seeds,
                sent,
                tokens,
            } => wrk::settle(seeds, sent, tokens),
        },
        Command::Guard { .. } => anyhow::bail!("guard runs without a runtime"),
        Command::Unlock {
            seeds,
            admin_user,
            admin_password_env,
            kind,
            in_flight,
        } => {
            prepare::unlock(UnlockOptions {
                seeds,
                admin_user,
                admin_password_env,
                kind,
                in_flight,
            })
            .await
        }
    }
}
