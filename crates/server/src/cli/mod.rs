//! The `tessera` command line. Every subcommand opens the same database through the same service
//! layer as the server, and acts as the local operator (`cli:operator` in the audit).
//!
//! The admin commands (`user`, `token`, `app`, `audit`) call service methods only: no SQL, no
//! OTP math and no policy here. Results go to stdout (human text, or JSON with `--json`), errors
//! to stderr. Exit codes (the table in docs/operations.md):
//! - 0: done.
//! - 1: the command ran and failed, or its answer is no: a service error as `error (CODE):
//!   message`, any other failure (a file, the database, a data directory that does not exist) as
//!   `error: message`; `validate` rejecting, `audit verify` finding a broken chain, `enroll send`
//!   with a mail that could not be sent.
//! - 2: a usage error: the command line (clap's message and the usage) or the configuration
//!   cannot be used. Nothing was opened or changed.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::{Config, LogFormat};
use crate::service::Actor;

mod apps;
mod audit;
mod backup;
mod enroll;
mod import;
mod inventory;
mod keys;
mod mail;
mod output;
mod radius;
mod recovery;
mod serve;
mod tokens;
mod users;
mod validate;
mod values;

use output::Ctx;

/// Heading of the options every subcommand accepts, listed after its own.
const GLOBAL: &str = "Global options";

/// Tessera: a self-hosted two-factor authentication server.
///
/// Users log in with username + password + a one-time code from an authenticator app or hardware
/// token; applications ask Tessera over HTTP whether a login is valid.
#[derive(Debug, Parser)]
#[command(name = "tessera", version, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file (optional; every key has a default).
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    /// Directory for the database, key file and mail outbox [default: ./tessera-data].
    #[arg(long, global = true, env = "TESSERA_DATA_DIR", value_name = "DIR", help_heading = GLOBAL)]
    pub data_dir: Option<PathBuf>,

    /// Log format: human or json.
    #[arg(long, global = true, value_name = "FORMAT", help_heading = GLOBAL)]
    pub log_format: Option<LogFormat>,

    /// Print the result as JSON on stdout, for scripts (errors stay on stderr).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

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
    /// Manage users: add, list, show, change, disable, delete, set passwords.
    #[command(subcommand)]
    User(users::UserCommand),
    /// Manage tokens: add (shows the key once), activate, list, disable, revoke, resync.
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Manage applications that call the validate API: add (shows the key once), list, revoke.
    #[command(subcommand)]
    App(apps::AppCommand),
    /// RADIUS: clients (add shows the secret once), a built-in radtest, and doctor.
    #[command(subcommand)]
    Radius(radius::RadiusCommand),
    /// Read the audit log and verify its hash chain.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Test a login from the shell: checks a code (and with --password-stdin the password)
    /// exactly as the validate API does. Exit 0 on accept or challenge, 1 on reject.
    Validate(validate::ValidateArgs),
    /// Send enrollment e-mails (one user, several, or --all-pending), or print a link.
    #[command(subcommand)]
    Enroll(enroll::EnrollCommand),
    /// Send a test e-mail to ADDRESS, to check the mail settings.
    SendTestEmail(mail::SendTestEmailArgs),
    /// Help users who lost a device: re-issue recovery codes, recovery history, unlock, reset.
    #[command(subcommand)]
    Recovery(recovery::RecoveryCommand),
    /// Write a consistent copy of the database to FILE while the server runs (encrypted with
    /// --passphrase-stdin). The key file is not in it: keep a copy of it apart.
    Backup(backup::BackupArgs),
    /// Put back the database from a backup FILE, with the server stopped. The copy is rolled
    /// Import hardware tokens and other systems' seeds into the inventory: PSKC, CSV, otpauth://
    /// lists, Google Authenticator exports, QR images. Exit 0: all imported; 2: some skipped;
    /// 1: refused, nothing imported.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Hardware tokens in stock: list, show, assign to a user, retire, export.
    #[command(subcommand)]
    Inventory(inventory::InventoryCommand),
    /// forward so that no code, session or link used after the backup works again.
    Restore(backup::RestoreArgs),
    /// Ask the local server whether it is ready (GET /readyz on server.listen): exit 0 when it
    /// is, 1 when not or not reachable. For container and systemd health checks.
    Healthcheck {
        /// The server's address [default: server.listen; 0.0.0.0 and :: mean this host].
        #[arg(long, value_name = "ADDR")]
        addr: Option<SocketAddr>,
    },
    /// Rotate the server keys online: add, activate, rewrap, check, retire.
    #[command(subcommand)]
    Key(keys::KeyCommand),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let config = match load_config(&cli) {
        Ok(c) => c,
        Err(e) => {
            // Before anything is opened: a usage error, like clap's (which exit with 2 as well).
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
            report_error(&e);
            ExitCode::FAILURE
        }
    }
}

/// Prints an error to stderr: service errors with their stable code, so scripts can match on it.
fn report_error(e: &anyhow::Error) {
    match e.downcast_ref::<crate::service::Error>() {
        // The local operator may see internal details (they can read the database anyway); the
        // chain names the failing layer, and no layer puts a secret into its message.
        Some(service) if service.code() == crate::service::ErrorCode::Internal => {
            eprintln!("error ({}): {e:#}", service.code().as_str());
        }
        Some(service) => eprintln!("error ({}): {service}", service.code().as_str()),
        None => eprintln!("error: {e:#}"),
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
    let json = cli.json;
    match cli.command {
        Command::Serve { .. } => serve::serve(config).await,
        Command::Migrate => {
            let ctx = open_or_create(config, json).await?;
            let applied = ctx
                .service
                .store()
                .applied_migrations()
                .await
                .context("cannot list migrations")?;
            let result = serde_json::json!({ "migrations_applied": applied.len() });
            ctx.emit(&result, |out, _| {
                writeln!(
                    out,
                    "database is up to date ({} migrations applied)",
                    applied.len()
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User(cmd) => users::run(&open(config, json).await?, cmd).await,
        Command::Token(cmd) => tokens::run(&open(config, json).await?, cmd).await,
        Command::App(cmd) => apps::run(&open(config, json).await?, cmd).await,
        Command::Radius(cmd) => radius::run(&open(config, json).await?, cmd).await,
        Command::Audit(cmd) => audit::run(&open(config, json).await?, cmd).await,
        Command::Validate(args) => validate::run(&open(config, json).await?, args).await,
        Command::Enroll(cmd) => enroll::run(&open(config, json).await?, cmd).await,
        Command::SendTestEmail(args) => mail::run(&open(config, json).await?, args).await,
        Command::Recovery(cmd) => recovery::run(&open(config, json).await?, cmd).await,
        Command::Backup(args) => backup::backup(&open(config, json).await?, args).await,
        Command::Restore(args) => backup::restore(config, json, args).await,
        Command::Key(cmd) => keys::run(&open(config, json).await?, cmd).await,
        Command::Healthcheck { addr } => healthcheck(addr.unwrap_or(config.server.listen)).await,
        Command::Import(cmd) => import::run(&open(config, json).await?, cmd).await,
        Command::Inventory(cmd) => inventory::run(&open(config, json).await?, cmd).await,
    }
}

/// `tessera healthcheck`: opens nothing, asks the running server.
async fn healthcheck(mut addr: SocketAddr) -> anyhow::Result<ExitCode> {
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .context("cannot make an HTTP client")?;
    match client.get(format!("http://{addr}/readyz")).send().await {
        Ok(r) if r.status().is_success() => {
            println!("ready");
            Ok(ExitCode::SUCCESS)
        }
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            eprintln!("not ready ({status}): {}", output::clean(body.trim()));
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("not ready: no answer from http://{addr}/readyz ({e})");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Opens the installation in the data directory for an admin command. Only `serve` and `migrate`
/// create an installation: a mistyped `--data-dir` would otherwise give a new, empty one with a
/// new key, and the command would seem to work on it. An existing directory (even an empty one,
/// e.g. a volume made for Tessera) is used as it is.
async fn open(config: Config, json: bool) -> anyhow::Result<Ctx> {
    let dir = &config.data_dir;
    match dir.try_exists() {
        Ok(true) => {}
        Ok(false) => anyhow::bail!(
            "no Tessera installation at {}: the data directory does not exist. Name the right \
             one with --data-dir DIR (or TESSERA_DATA_DIR), or create an installation there \
             with `tessera serve` or `tessera migrate`",
            dir.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read data directory {}", dir.display()));
        }
    }
    open_or_create(config, json).await
}

/// Opens the installation in the data directory, creating the directory, key file and database
/// where they do not exist yet, and says so.
async fn open_or_create(config: Config, json: bool) -> anyhow::Result<Ctx> {
    let data_dir = config.data_dir.clone();
    let key_file = config.key_file();
    let (app, startup) = crate::build(config, Arc::new(SystemClock)).await?;
    if startup.created_data_dir {
        eprintln!("note: created the data directory {}", data_dir.display());
    }
    if startup.created_key_file {
        eprintln!(
            "note: created the encryption key file {} (mode 0600): back it up with the database",
            key_file.display()
        );
    }
    Ok(Ctx {
        service: app.service,
        actor: Actor::operator(),
        json,
    })
}
