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
mod run;

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
        /// Closed-loop workers, one keep-alive connection each (capped at the number of tokens).
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
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

fn parse_kind(s: &str) -> Result<TokenKind, String> {
    match s {
        "hotp" => Ok(TokenKind::Hotp),
        "totp" => Ok(TokenKind::Totp),
        _ => Err("hotp or totp".to_owned()),
    }
}

fn main() -> ExitCode {
    match start(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line with the chain of causes; no backtrace for an operator's mistake.
            eprintln!("tessera-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start(cli: Cli) -> anyhow::Result<()> {
    let threads = match &cli.command {
        Command::Run { threads, .. } => (*threads).max(1),
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
    runtime.block_on(dispatch(cli.command, threads))
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
        Command::Run {
            seeds,
            case,
            concurrency,
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
            run::run(RunOptions {
                seeds,
                case,
                concurrency,
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
