//! `tessera backup FILE` and `tessera restore FILE` (see `backup/mod.rs` and
//! docs/operations.md, "Backup and restore").

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::backup::{BackupDone, RestoreDone, RestoreOptions};
use crate::clock::SystemClock;
use crate::config::Config;

use super::output::{Ctx, clean, read_passphrase, time};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new backup file (an existing file is never overwritten).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Encrypt the backup with a passphrase read from the first line of stdin. Without it the
    /// backup is not encrypted: seeds stay sealed under the key file, but names, addresses,
    /// password hashes and the audit log can be read by whoever has the file.
    #[arg(long)]
    pub passphrase_stdin: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file `tessera backup` wrote.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The backup's passphrase, from the first line of stdin.
    #[arg(long)]
    pub passphrase_stdin: bool,
    /// Replace the existing database (SQLite: it is kept as `tessera.db.before-restore-TIME`).
    /// Stop the server (every node) first.
    #[arg(long)]
    pub force: bool,
    /// How far every HOTP counter moves forward (default: the configured look-ahead,
    /// `otp.hotp_look_ahead`). Codes used after the backup up to this many per token are
    /// refused; a user whose token falls behind presses its button until it catches up.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub hotp_advance: Option<u64>,
}

pub async fn backup(ctx: &Ctx, args: BackupArgs) -> anyhow::Result<ExitCode> {
    let passphrase = if args.passphrase_stdin {
        Some(read_passphrase()?)
    } else {
        None
    };
    let done = ctx
        .service
        .backup(&ctx.actor, &args.file, passphrase)
        .await?;
    ctx.emit(&done, |out, d: &BackupDone| {
        writeln!(
            out,
            "backup written to {} ({} bytes, {}): {} tokens, audit log up to entry {}",
            clean(&d.file),
            d.bytes,
            if d.encrypted {
                "encrypted"
            } else {
                "not encrypted"
            },
            d.manifest.tokens,
            d.manifest.audit_seq
        )?;
        writeln!(
            out,
            "the key file is not in the backup: keep a copy of it apart (without it no seed \
             can be opened; with it and an unencrypted backup, every seed can)"
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn restore(config: Config, json: bool, args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let passphrase = if args.passphrase_stdin {
        Some(read_passphrase()?)
    } else {
        None
    };
    let options = RestoreOptions {
        passphrase,
        force: args.force,
        hotp_advance: args.hotp_advance,
    };
    let done = crate::backup::restore(config, Arc::new(SystemClock), &args.file, options).await?;
    let mut text = String::new();
    if json {
        text = serde_json::to_string_pretty(&done)?;
        text.push('\n');
    } else {
        human(&mut text, &done)?;
    }
    super::output::write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn human(out: &mut String, d: &RestoreDone) -> std::fmt::Result {
    let r = &d.rolled_forward;
    writeln!(
        out,
        "restored the backup of {} ({} tokens; audit log verified, {} entries)",
        time(d.manifest.created_at),
        d.manifest.tokens,
        d.audit_entries
    )?;
    if let Some(prev) = &d.previous {
        writeln!(out, "the database it replaced is kept as {}", clean(prev))?;
    }
    writeln!(
        out,
        "rolled forward so that nothing used after the backup works again: {} TOTP tokens \
         refuse every code shown up to now, {} HOTP counters moved forward by {}, {} sessions \
         ended, {} open links and sent codes expired",
        r.totp_tokens, r.hotp_tokens, d.hotp_advance, r.sessions, r.links
    )?;
    writeln!(
        out,
        "also lost since the backup: users, tokens and applications added, removed or revoked \
         after it (check `tessera app list` for API keys revoked since), and recovery codes \
         used since; see docs/operations.md"
    )
}
