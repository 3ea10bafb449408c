//! `tessera audit ...`: read the audit log, verify its hash chain, and take and check
//! checkpoints (the newest entry's number and hash, kept away from the server).

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::clock::{UnixTime, parse_time};
use crate::model::{AuditCheckpoint, AuditFilter, MAX_CHECKPOINT_FILE};
use crate::service::{AuditVerification, MAX_AUDIT_PAGE};

use super::output::{Ctx, Table, clean, invalid, time};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit entries, newest first.
    List {
        /// Only entries about this user (any case).
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Only this action, e.g. user.add, token.activate, auth.login.
        #[arg(long, value_name = "ACTION")]
        action: Option<String>,
        /// Only entries at or after this time: RFC 3339 (2025-05-01T08:00:00Z) or a date
        /// (2025-05-01, midnight UTC).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only entries before this time (same forms as --since).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// How many entries to show at most.
        #[arg(long, value_name = "N", default_value_t = 50,
              value_parser = clap::value_parser!(i64).range(1..=MAX_AUDIT_PAGE))]
        limit: i64,
        /// Only entries older than this sequence number (to page back from the last SEQ shown).
        #[arg(long, value_name = "SEQ", value_parser = clap::value_parser!(i64).range(1..))]
        before: Option<i64>,
    },
    /// Check the hash chain of the whole audit log.
    ///
    /// Exits with 0 when the log is intact; with 1, naming the first bad entry, when an entry
    /// was changed, inserted or deleted. Deleting the newest entries together with putting back
    /// a copy of an earlier head is seen only against a checkpoint (--checkpoint).
    Verify {
        /// Also check that the log still holds the entry of each checkpoint in FILE with the
        /// same hash (a file `tessera audit head` wrote, or several of its lines appended).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Verify the whole log, then print its newest entry as a checkpoint to keep elsewhere
    /// (mailed off the server, or in a file the database's writers cannot change).
    ///
    /// `tessera audit verify --checkpoint FILE` later fails if the log no longer reaches that
    /// entry or holds it with another hash. Append to one file to keep many:
    /// `tessera audit head >> checkpoints`. Exits with 1, printing no checkpoint, when the log
    /// does not verify.
    Head,
}

/// Reads the checkpoints of `--checkpoint FILE`; a file that cannot be read or holds no
/// checkpoint is refused as bad input, naming the file and the line.
fn read_checkpoints(path: &Path) -> anyhow::Result<Vec<AuditCheckpoint>> {
    let name = clean(&path.display().to_string());
    let refuse = |why: String| invalid(format!("--checkpoint {name}: {why}"));
    let file = std::fs::File::open(path).map_err(|e| refuse(format!("cannot open it ({e})")))?;
    let mut bytes = Vec::new();
    file.take(MAX_CHECKPOINT_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(format!("cannot read it ({e})")))?;
    if bytes.len() as u64 > MAX_CHECKPOINT_FILE {
        return Err(refuse(format!(
            "larger than {MAX_CHECKPOINT_FILE} bytes, not a checkpoint file"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| refuse("not UTF-8 text".to_owned()))?;
    AuditCheckpoint::parse_all(&text).map_err(|why| refuse(clean(&why)))
}

/// Reports a log that does not verify: the JSON result on stdout for scripts (with `--json`),
/// the finding on stderr like every failure of a command.
fn report_broken(ctx: &Ctx, v: &AuditVerification) -> anyhow::Result<ExitCode> {
    if ctx.json {
        ctx.emit(v, |_, _| Ok(()))?;
    }
    eprintln!(
        "error: audit log broken at entry {}: {}",
        v.first_bad_seq
            .map_or_else(|| "?".to_owned(), |s| s.to_string()),
        clean(v.problem.as_deref().unwrap_or("unknown problem"))
    );
    Ok(ExitCode::FAILURE)
}

/// Parses `--since` / `--until`, naming the option in the error.
fn time_arg(option: &str, value: Option<String>) -> anyhow::Result<Option<UnixTime>> {
    value
        .map(|v| {
            parse_time(v.trim()).ok_or_else(|| {
                invalid(format!(
                    "{option}: expected RFC 3339 (2025-05-01T08:00:00Z) or a date (2025-05-01), \
                     got {:?}",
                    clean(&v)
                ))
            })
        })
        .transpose()
}

pub async fn run(ctx: &Ctx, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let service = &ctx.service;
    let actor = &ctx.actor;
    match cmd {
        AuditCommand::List {
            user,
            action,
            since,
            until,
            limit,
            before,
        } => {
            let filter = AuditFilter {
                username: user,
                action,
                since: time_arg("--since", since)?,
                until: time_arg("--until", until)?,
                limit,
                before_seq: before,
                ..AuditFilter::default()
            };
            let entries = service.list_audit(actor, filter).await?;
            ctx.emit(&entries, |out, entries| {
                if entries.is_empty() {
                    return writeln!(out, "No audit entries.");
                }
                let mut table = Table::new(&[
                    "SEQ", "TIME", "ACTOR", "SOURCE", "ACTION", "TARGET", "RESULT", "REASON",
                ]);
                for e in entries {
                    table.row([
                        e.seq.to_string(),
                        time(e.event.at),
                        e.event.actor.clone(),
                        e.event.source.clone(),
                        e.event.action.clone(),
                        e.event.target.clone(),
                        e.event.result.clone(),
                        e.event.reason.clone(),
                    ]);
                }
                table.render(out)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { checkpoint } => {
            let checkpoints = match &checkpoint {
                Some(path) => read_checkpoints(path)?,
                None => Vec::new(),
            };
            let v = service.verify_audit(actor, &checkpoints).await?;
            if !v.ok {
                return report_broken(ctx, &v);
            }
            for w in &v.warnings {
                eprintln!("warning: {}", clean(w));
            }
            ctx.emit(&v, |out, v| {
                write!(out, "audit log intact: {} entries", v.entries)?;
                match checkpoints.as_slice() {
                    [] => writeln!(out),
                    [cp] => writeln!(out, ", entry {} matches the checkpoint", cp.seq),
                    [.., last] => writeln!(
                        out,
                        ", {} checkpoints match (the newest at entry {})",
                        checkpoints.len(),
                        last.seq
                    ),
                }
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Head => {
            let v = service.verify_audit(actor, &[]).await?;
            let Some(head) = v.head.as_ref().filter(|_| v.ok) else {
                return report_broken(ctx, &v);
            };
            ctx.emit(head, |out, head| {
                writeln!(
                    out,
                    "# Tessera audit checkpoint, taken at entry {}. Keep it away from the \
                     server;\n# `tessera audit verify --checkpoint FILE` fails if the log no \
                     longer holds this entry.\n{head}",
                    head.seq
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
