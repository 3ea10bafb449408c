//! `tessera app ...`: register the applications (VPN gateways, remote desktops, web apps) that
//! call the validate API, list them, and revoke their keys. A new key is printed once: Tessera
//! keeps only its hash.

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Subcommand;

use crate::model::{AppId, AppMode};
use crate::service::CreateApp;

use super::output::{Ctx, Listing, Table, clean, time, yes_no};
use super::values;

/// An application id as typed on the command line.
fn app_id(s: &str) -> Result<AppId, String> {
    s.trim().parse::<i64>().map(AppId).map_err(|_| {
        format!("expected an application id (a number; see `tessera app list`), got {s:?}")
    })
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Register an application and show its API key, once.
    Add {
        /// A unique name, 1-64 characters, e.g. "vpn-gateway".
        #[arg(value_name = "NAME")]
        name: String,
        /// What the application sends: password_and_otp (password and code) or otp_only (the
        /// code alone, when the application checks the password itself)
        /// [default: password_and_otp].
        #[arg(long, value_name = "MODE")]
        mode: Option<AppMode>,
        /// Let users who never had a token (and need none) in without a code: yes or no
        /// [default: yes for password_and_otp, no for otp_only].
        #[arg(long, value_name = values::BOOL_VALUES, value_parser = values::boolean)]
        passthrough: Option<bool>,
    },
    /// List applications (never their keys; the prefix helps recognise one).
    List,
    /// Revoke an application's key: its requests are refused from now on.
    Revoke {
        /// Application id (see `tessera app list`).
        #[arg(value_name = "ID", value_parser = app_id)]
        id: AppId,
    },
}

pub async fn run(ctx: &Ctx, cmd: AppCommand) -> anyhow::Result<ExitCode> {
    let service = &ctx.service;
    let actor = &ctx.actor;
    match cmd {
        AppCommand::Add {
            name,
            mode,
            passthrough,
        } => {
            let created = service
                .create_app(
                    actor,
                    CreateApp {
                        name,
                        mode,
                        passthrough,
                    },
                )
                .await?;
            ctx.emit(&created, |out, c| {
                writeln!(
                    out,
                    "Added application {} (id {}, mode {}, passthrough {}).",
                    clean(&c.app.name),
                    c.app.id,
                    c.app.mode,
                    yes_no(c.app.passthrough)
                )?;
                writeln!(out)?;
                writeln!(out, "API key: {}", c.api_key)?;
                writeln!(out)?;
                writeln!(
                    out,
                    "The key is shown only now: put it into the application's configuration. \
                     Tessera keeps only a hash of it."
                )
            })?;
        }
        AppCommand::List => {
            let apps = service.list_apps(actor).await?;
            ctx.emit(&Listing::all(&apps), |out, listing| {
                let apps = listing.items;
                if apps.is_empty() {
                    return writeln!(out, "No applications.");
                }
                let mut table =
                    Table::new(&["ID", "NAME", "MODE", "STATE", "KEY", "CREATED", "REVOKED"]);
                for a in apps {
                    table.row([
                        a.id.to_string(),
                        a.name.clone(),
                        a.mode.to_string(),
                        a.state.to_string(),
                        format!("{}...", a.key_prefix),
                        time(a.created_at),
                        a.revoked_at.map_or_else(|| "-".to_owned(), time),
                    ]);
                }
                table.render(out)
            })?;
        }
        AppCommand::Revoke { id } => {
            let app = service.revoke_app(actor, id).await?;
            ctx.emit(&app, |out, a| {
                writeln!(
                    out,
                    "Application {} ({}) is {}: its key is refused.",
                    a.id,
                    clean(&a.name),
                    a.state
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
