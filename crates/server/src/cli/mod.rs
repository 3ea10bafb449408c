//! The `tessera` command line. Every subcommand opens the same database through the same service
//! layer as the server, and acts as the local operator (`cli:operator` in the audit).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::{Config, LogFormat};

mod serve;

/// Tessera: a self-hosted two-factor authentication server.
///
/// Users log in with username + password + a one-time code from an authenticator app or hardware
/// token; applications ask Tessera over HTTP whether a login is valid.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file (optional; every key has a default).
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory for the database, key file and mail outbox [default: ./tessera-data].
    #[arg(long, global = true, env = "TESSERA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Log format: human or json.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (HTTP API and pages) until SIGINT or SIGTERM.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080, or server.listen].
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
    },
    /// Apply database migrations and exit (the server also applies them at start).
    Migrate,
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_tracing(
        config.server.log_format,
        matches!(cli.command, Command::Serve { .. }),
    );
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = Config::load(cli.config.as_deref(), std::env::vars())?;
    if let Some(dir) = &cli.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(format) = cli.log_format {
        config.server.log_format = format;
    }
    if let Command::Serve {
        listen: Some(listen),
    } = cli.command
    {
        config.server.listen = listen;
    }
    Ok(config)
}

/// Logs go to stderr; stdout is for command results. `TESSERA_LOG` sets the filter.
fn init_tracing(format: LogFormat, serving: bool) {
    let default = if serving { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

async fn dispatch(cli: Cli, config: Config) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { .. } => serve::serve(config).await,
        Command::Migrate => {
            let (app, _) = crate::build(config, Arc::new(SystemClock)).await?;
            let applied = app
                .service
                .store()
                .applied_migrations()
                .await
                .context("cannot list migrations")?;
            println!(
                "database is up to date ({} migrations applied)",
                applied.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
