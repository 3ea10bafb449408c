//! `tessera enroll ...`: send users their enrollment e-mail (one, several, or everyone who still
//! has to enroll, with a progress bar), or print a link to pass on yourself.
//!
//! A link is printed only by `enroll link`, where showing it is the purpose; `enroll send` prints
//! who got a mail. A send that fails is reported on stderr and in the exit code, never dropped.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

use super::output::{Ctx, Table, clean, time};
use super::values;

#[derive(Debug, Subcommand)]
pub enum EnrollCommand {
    /// Mail enrollment links to users (in each user's language).
    ///
    /// Each link works once, expires after enroll.link_ttl_hours, and replaces the user's earlier
    /// links. Exits with 1 when any mail could not be sent.
    Send {
        /// Usernames to invite.
        #[arg(value_name = "USER", required_unless_present = "all_pending")]
        users: Vec<String>,
        /// Invite every active user who must use a one-time password but has no active token.
        #[arg(long, conflicts_with = "users")]
        all_pending: bool,
    },
    /// Create an enrollment link for a user and print it instead of mailing it.
    ///
    /// The link is shown this once and replaces the user's earlier links.
    Link {
        /// Username to invite.
        #[arg(value_name = "USER")]
        user: String,
    },
    /// Choose whether a user gets recovery codes at enrollment.
    Recovery {
        /// Username.
        #[arg(value_name = "USER")]
        user: String,
        /// yes, no, or policy (follow enroll.recovery_codes_for_new_users).
        #[arg(value_name = values::SETTING_VALUES, value_parser = values::setting)]
        setting: values::Setting,
    },
}

/// What happened to one user's invitation.
#[derive(Debug, Serialize)]
struct SendResult {
    username: String,
    /// The mail was handed over: to the mail server, or (see `outbox`) to the outbox.
    sent: bool,
    /// The outbox directory the mail was written to, when no mail server is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    outbox: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emailed_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

pub async fn run(ctx: &Ctx, cmd: EnrollCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        EnrollCommand::Send { users, all_pending } => send(ctx, users, all_pending).await,
        EnrollCommand::Recovery { user, setting } => {
            let enabled = setting.own();
            ctx.service
                .set_recovery_policy(&ctx.actor, &user, enabled)
                .await?;
            let value = serde_json::json!({ "username": user, "recovery": enabled });
            ctx.emit(&value, |out, _| {
                writeln!(
                    out,
                    "Recovery codes for {}: {}.",
                    clean(&user),
                    match enabled {
                        Some(true) => "on",
                        Some(false) => "off",
                        None => "as the policy says (enroll.recovery_codes_for_new_users)",
                    }
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
        EnrollCommand::Link { user } => {
            let sent = ctx.service.invite_user(&ctx.actor, &user, false).await?;
            let value = serde_json::json!({
                "username": sent.username,
                "link": sent.link,
                "expires_at": sent.expires_at,
            });
            ctx.emit(&value, |out, _| {
                writeln!(out, "Enrollment link for {}:", clean(&sent.username))?;
                writeln!(out)?;
                writeln!(out, "  {}", sent.link)?;
                writeln!(out)?;
                writeln!(
                    out,
                    "It works once, until {}, and replaces earlier links. Pass it on privately:",
                    time(sent.expires_at)
                )?;
                writeln!(out, "whoever opens it can enroll a token for this user.")
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn send(ctx: &Ctx, users: Vec<String>, all_pending: bool) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = if all_pending {
        ctx.service
            .users_needing_enrollment(&ctx.actor)
            .await?
            .into_iter()
            .map(|u| u.username)
            .collect()
    } else {
        users
    };
    // Drawn on stderr, and only when stderr is a terminal: stdout stays the result.
    let bar = indicatif::ProgressBar::new(names.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:32.cyan/blue} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let outbox = super::mail::outbox(ctx);
    let mut results = Vec::with_capacity(names.len());
    for name in names {
        bar.set_message(clean(&name));
        let result = match ctx.service.invite_user(&ctx.actor, &name, true).await {
            Ok(sent) => SendResult {
                username: sent.username,
                sent: true,
                outbox: outbox.clone(),
                emailed_to: sent.emailed_to,
                expires_at: Some(sent.expires_at),
                error: None,
            },
            Err(e) => {
                bar.suspend(|| {
                    eprintln!("error ({}): {}: {e}", e.code().as_str(), clean(&name));
                });
                SendResult {
                    username: name,
                    sent: false,
                    outbox: None,
                    emailed_to: None,
                    expires_at: None,
                    error: Some(serde_json::json!({
                        "code": e.code().as_str(),
                        "message": e.public_message(),
                    })),
                }
            }
        };
        results.push(result);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let failed = results.iter().filter(|r| !r.sent).count();
    let total = results.len();
    ctx.emit(&results, |out, results| {
        if results.is_empty() {
            return writeln!(out, "Nobody to invite.");
        }
        let mut table = Table::new(&["USER", "RESULT", "E-MAIL", "VALID UNTIL"]);
        for r in results {
            let result = match (r.sent, &r.outbox) {
                (true, None) => "sent",
                (true, Some(_)) => "in outbox",
                (false, _) => "FAILED",
            };
            table.row([
                r.username.clone(),
                result.to_owned(),
                r.emailed_to.clone().unwrap_or_else(|| "-".into()),
                r.expires_at.map_or_else(|| "-".into(), time),
            ]);
        }
        table.render(out)?;
        writeln!(out)?;
        match &outbox {
            None => writeln!(out, "{} of {total} invitations sent.", total - failed),
            Some(dir) => writeln!(
                out,
                "{} of {total} invitations written to the outbox {}, {}.",
                total - failed,
                dir.display(),
                super::mail::NOT_SENT
            ),
        }
    })?;
    if failed > 0 {
        eprintln!("error: {failed} of {total} invitations were not sent (see above)");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
