//! `tessera audit ...`: read the audit log and verify its hash chain.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Subcommand;

use crate::clock::{UnixTime, parse_time};
use crate::model::AuditFilter;
use crate::service::MAX_AUDIT_PAGE;

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
    /// was changed, inserted or deleted.
    Verify,
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
        AuditCommand::Verify => {
            let v = service.verify_audit(actor).await?;
            if v.ok {
                ctx.emit(&v, |out, v| {
                    writeln!(out, "audit log intact: {} entries", v.entries)
                })?;
                return Ok(ExitCode::SUCCESS);
            }
            // The JSON result goes to stdout for scripts; the finding also goes to stderr, like
            // every failure of a command.
            if ctx.json {
                ctx.emit(&v, |_, _| Ok(()))?;
            }
            eprintln!(
                "error: audit log broken at entry {}: {}",
                v.first_bad_seq
                    .map_or_else(|| "?".to_owned(), |s| s.to_string()),
                clean(v.problem.as_deref().unwrap_or("unknown problem"))
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
