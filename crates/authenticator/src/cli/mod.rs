//! The `tessera-auth` commands. Every command that lists takes `--json`; secrets (PIN,
//! passphrase, file passwords) come from a prompt without echo, a PIN file or standard input,
//! never from the command line or the environment's values (only a path to a file).

mod backup;
mod enroll;
mod export;
mod screen;
mod secrets;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};

use crate::clock::now_unix;
use crate::vault::file::VaultFile;
use crate::vault::{Credential, Vault, VaultError};

pub use secrets::Secrets;

/// Tessera's authenticator: one-time codes from an encrypted vault on this machine.
#[derive(Debug, Parser)]
#[command(name = "tessera-auth", version, about, long_about = None)]
pub struct Cli {
    /// The vault file (default: the platform's data directory, e.g.
    /// ~/.local/share/tessera/authenticator/vault.tsv1).
    #[arg(long, global = true, env = "TESSERA_AUTH_VAULT", value_name = "PATH")]
    pub vault: Option<PathBuf>,
    /// Read the PIN or passphrase from the first line of this file instead of asking (for
    /// scripts; keep the file private).
    #[arg(
        long,
        global = true,
        env = "TESSERA_AUTH_PIN_FILE",
        value_name = "FILE"
    )]
    pub pin_file: Option<PathBuf>,
    /// Read passwords (of encrypted import files, of the backup) from standard input, one a
    /// line, instead of asking.
    #[arg(long, global = true)]
    pub password_stdin: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new vault, protected by a PIN (6 or more digits) or a passphrase.
    Init {
        /// Protect the vault with a passphrase (10 or more characters) instead of a PIN.
        #[arg(long)]
        passphrase: bool,
    },
    /// Add tokens: a Tessera enrollment link (https://host/enroll/TOKEN), an otpauth:// or
    /// otpauth-migration:// text, QR images (PNG/JPEG), a text list of URIs, or an export of
    /// Aegis, 2FAS, andOTP or FreeOTP+.
    Add {
        /// What to add (texts or file paths; several images may hold one export's parts).
        #[arg(required = true, value_name = "SOURCE")]
        sources: Vec<String>,
        /// Name the token (when exactly one is added).
        #[arg(long)]
        name: Option<String>,
        /// The file format, when it should not be guessed: uri, ga, image, uris, aegis, 2fas,
        /// andotp, freeotp+.
        #[arg(long)]
        format: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show the current codes (all, or those matching FILTER), with the seconds left.
    Codes {
        filter: Option<String>,
        #[arg(long)]
        json: bool,
        /// A full-screen table that follows the time: / search, Enter copy, q quit.
        #[arg(long, conflicts_with = "json")]
        watch: bool,
    },
    /// Show a token as a QR code to scan with another device (asks for the PIN; alternate
    /// screen, hidden on a key or after 60 s).
    ShowQr {
        name: String,
        /// Write the QR code to standard output instead (for printing; it shows the seed).
        #[arg(long)]
        print: bool,
    },
    /// Compare this computer's clock with the Tessera server's (warns above 15 s).
    Clock {
        #[arg(long)]
        server: Option<String>,
    },
    /// Show one token's code; for HOTP tokens this uses up a counter value.
    Code {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List the tokens (no codes, no secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Give a token your own name.
    Rename { name: String, new_name: String },
    /// Remove a token (kept as a tombstone without its secret, so a backup merge does not bring
    /// it back).
    Rm { name: String },
    /// Write the tokens in another app's format: aegis, aegis-encrypted (password from
    /// --password-stdin or a prompt), uris (one otpauth:// URI a line) or ga-qr (Google
    /// Authenticator export QR codes as PNG files in a new directory, 10 tokens a code).
    Export {
        #[arg(long)]
        format: String,
        /// A new file (created 0600), or `-` for standard output.
        #[arg(long, short)]
        output: String,
    },
    /// The end-to-end encrypted backup on the Tessera server (password + emergency kit).
    #[command(subcommand)]
    Backup(BackupCommand),
    /// The emergency kit.
    #[command(subcommand)]
    Kit(KitCommand),
    /// Show the recovery codes the server issued with an enrolled token.
    RecoveryCodes { name: String },
    /// Change the PIN or passphrase.
    PinChange {
        /// Read the new PIN from this file instead of asking.
        #[arg(long, value_name = "FILE")]
        new_pin_file: Option<PathBuf>,
        /// Switch to a passphrase.
        #[arg(long)]
        passphrase: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KitCommand {
    /// A new account key and kit: the vault is uploaded under it and the server deletes the
    /// older generations (the old kit then opens nothing the server holds).
    Rotate {
        #[arg(long)]
        code: Option<String>,
        /// Also write the new kit to this new file (0600).
        #[arg(long, value_name = "FILE")]
        kit_file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Set up the backup: log in, make the account key, show the emergency kit once (confirm
    /// it by typing its last group), upload the first generation.
    Setup {
        /// The Tessera server, e.g. https://tessera.example.org
        #[arg(long)]
        server: String,
        /// Your username there.
        #[arg(long)]
        user: String,
        /// A one-time code for the login (default: from this vault's token for that account).
        #[arg(long)]
        code: Option<String>,
        /// Also write the kit to this new file (0600); never e-mail it.
        #[arg(long, value_name = "FILE")]
        kit_file: Option<PathBuf>,
        /// Start over: a new kit, replacing the server's backup.
        #[arg(long)]
        replace: bool,
    },
    /// Upload the vault now (merging what another device uploaded first).
    Now {
        #[arg(long)]
        code: Option<String>,
    },
    /// Show the backup's state on this device.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Rehearse a restore: download, open with your password and the kit typed anew, compare.
    Verify {
        #[arg(long)]
        code: Option<String>,
    },
    /// Restore on a new device (after `init`): log in, download, enter the kit.
    Restore {
        #[arg(long)]
        server: String,
        #[arg(long)]
        user: String,
        /// A one-time code from another device.
        #[arg(long)]
        code: Option<String>,
    },
}

/// Runs the command line; the exit code is 0 on success, 1 on an error (said on stderr).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-auth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let path = vault_path(cli.vault.as_deref())?;
    let mut secrets = Secrets::new(cli.pin_file.clone(), cli.password_stdin);
    match cli.command {
        Command::Init { passphrase } => tokens::init(&path, &mut secrets, passphrase),
        Command::Add {
            sources,
            name,
            format,
            json,
        } => {
            if let [link] = &sources[..]
                && enroll::is_link(link)
            {
                enroll::add_link(&path, &mut secrets, link, name.as_deref(), json)
            } else {
                tokens::add(
                    &path,
                    &mut secrets,
                    &sources,
                    name.as_deref(),
                    format.as_deref(),
                    json,
                )
            }
        }
        Command::Codes {
            filter,
            json,
            watch,
        } => {
            if watch {
                screen::watch(&path, &mut secrets, filter.as_deref())
            } else {
                tokens::codes(&path, &mut secrets, filter.as_deref(), json)
            }
        }
        Command::ShowQr { name, print } => screen::show_qr(&path, &mut secrets, &name, print),
        Command::Clock { server } => screen::clock(&path, &mut secrets, server.as_deref()),
        Command::Code { name, json } => tokens::code(&path, &mut secrets, &name, json),
        Command::List { json } => tokens::list(&path, &mut secrets, json),
        Command::Rename { name, new_name } => tokens::rename(&path, &mut secrets, &name, &new_name),
        Command::Rm { name } => tokens::remove(&path, &mut secrets, &name),
        Command::Backup(b) => match b {
            BackupCommand::Setup {
                server,
                user,
                code,
                kit_file,
                replace,
            } => backup::setup(
                &path,
                &mut secrets,
                &server,
                &user,
                code.as_deref(),
                kit_file,
                replace,
            ),
            BackupCommand::Now { code } => backup::now(&path, &mut secrets, code.as_deref()),
            BackupCommand::Status { json } => backup::status(&path, &mut secrets, json),
            BackupCommand::Verify { code } => backup::verify(&path, &mut secrets, code.as_deref()),
            BackupCommand::Restore { server, user, code } => {
                backup::restore(&path, &mut secrets, &server, &user, code.as_deref())
            }
        },
        Command::Kit(KitCommand::Rotate { code, kit_file }) => {
            backup::rotate(&path, &mut secrets, code.as_deref(), kit_file)
        }
        Command::RecoveryCodes { name } => tokens::recovery_codes(&path, &mut secrets, &name),
        Command::Export { format, output } => export::export(&path, &mut secrets, &format, &output),
        Command::PinChange {
            new_pin_file,
            passphrase,
        } => tokens::pin_change(&path, &mut secrets, new_pin_file, passphrase),
    }
}

/// `--vault`, or `<data dir>/tessera/authenticator/vault.tsv1`.
fn vault_path(given: Option<&std::path::Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_owned());
    }
    let dirs = directories::ProjectDirs::from("", "", "tessera")
        .ok_or_else(|| anyhow!("no home directory: give the vault with --vault PATH"))?;
    Ok(dirs.data_dir().join("authenticator").join("vault.tsv1"))
}

/// An unlocked vault with its file lock held until dropped.
pub(crate) struct Session {
    pub file: VaultFile,
    pub vault: Vault,
}

impl Session {
    /// Locks the vault file, waits out the delay of earlier wrong PINs, asks for the PIN and
    /// opens the vault. A wrong PIN makes the next try wait longer (1 s, 2 s, 4 s, … 5 min).
    pub fn open(path: &std::path::Path, secrets: &mut Secrets) -> Result<Session> {
        let file = VaultFile::lock(path, || {
            eprintln!("waiting for another tessera-auth using this vault…");
        })?;
        if !file.exists() {
            return Err(VaultError::NotFound(path.display().to_string()).into());
        }
        let attempts = file.attempts();
        let now = now_unix();
        if attempts.not_before > now {
            let wait = attempts.not_before - now;
            eprintln!(
                "{} wrong PIN(s) in a row: waiting {wait} s before the next try",
                attempts.failures
            );
            std::thread::sleep(std::time::Duration::from_secs(wait));
        }
        let pin = secrets.pin("PIN or passphrase: ")?;
        match file.open(Credential::Secret(pin.as_bytes())) {
            Ok(opened) => {
                file.clear_failures();
                if opened.from_previous {
                    eprintln!(
                        "warning: {} is damaged; opened the previous generation ({}). The next change saves over it.",
                        path.display(),
                        file.previous_path().display()
                    );
                }
                Ok(Session {
                    file,
                    vault: opened.vault,
                })
            }
            Err(VaultError::Unlock) => {
                let a = file.record_failure(now_unix());
                bail!(
                    "wrong PIN or passphrase (the next try waits {} s)",
                    crate::vault::file::Attempts::delay(a.failures)
                )
            }
            Err(e) => Err(e).context("opening the vault"),
        }
    }

    pub fn save(&mut self) -> Result<()> {
        self.file.save(&mut self.vault).context("saving the vault")
    }
}
