//! `tessera recovery ...`: admin help for a user who lost a device (SPEC F4): issue a new set of
//! recovery codes (delivered as `recovery.admin_delivery` allows), see the recovery history,
//! clear a self-service lock, and reset an account (F6).

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;

use super::output::{Ctx, Table, read_password, time};
use crate::config::AdminDelivery;

#[derive(Debug, Subcommand)]
pub enum RecoveryCommand {
    /// Issue a new set of recovery codes for a user; the old set stops working.
    ///
    /// With delivery "show" (the user's setting, else recovery.admin_delivery) the codes are
    /// printed this once, to pass on by phone, post or in person; with "email" they are mailed
    /// to the user and not printed.
    Issue {
        /// Username.
        #[arg(value_name = "USER")]
        user: String,
    },
    /// Show a user's recovery history: recoveries, resets, re-issued codes, blocks.
    History {
        /// Username.
        #[arg(value_name = "USER")]
        user: String,
        /// How many entries to show at most.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: i64,
    },
    /// Set a user's recovery policies; `policy` follows the configuration (`[recovery]`).
    Policy {
        /// Username.
        #[arg(value_name = "USER")]
        user: String,
        /// May the user recover themself on /recover? (recovery.self_service)
        #[arg(long, value_name = "SETTING")]
        self_service: Setting,
        /// Revoke the user's old devices after a recovery? (recovery.revoke_old_devices)
        #[arg(long, value_name = "SETTING")]
        revoke_old_devices: Setting,
        /// How re-issued recovery codes reach this user (recovery.admin_delivery); unchanged
        /// when not given.
        #[arg(long, value_name = "DELIVERY")]
        delivery: Option<Delivery>,
    },
    /// Clear a user's self-service lock (set after "this wasn't me").
    Unlock {
        /// Username.
        #[arg(value_name = "USER")]
        user: String,
    },
    /// Reset an account (the last resort): deletes every token, recovery code, invitation and
    /// session, keeps the account, sets the new password (read from the terminal or stdin) and
    /// prints an enrollment link.
    Reset {
        /// Username.
        #[arg(value_name = "USER")]
        user: String,
        /// A password hint for the user.
        #[arg(long, value_name = "TEXT", default_value = "")]
        hint: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Setting {
    On,
    Off,
    Policy,
}

impl Setting {
    fn value(self) -> Option<bool> {
        match self {
            Setting::On => Some(true),
            Setting::Off => Some(false),
            Setting::Policy => None,
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Delivery {
    /// Shown once to the admin.
    Show,
    /// Mailed to the user.
    Email,
    /// Follow recovery.admin_delivery.
    Policy,
}

impl Delivery {
    fn value(self) -> Option<AdminDelivery> {
        match self {
            Delivery::Show => Some(AdminDelivery::Show),
            Delivery::Email => Some(AdminDelivery::Email),
            Delivery::Policy => None,
        }
    }
}

#[derive(Debug, Serialize)]
struct Issued {
    username: String,
    codes: Vec<String>,
    emailed_to: Option<String>,
}

pub async fn run(ctx: &Ctx, cmd: RecoveryCommand) -> anyhow::Result<ExitCode> {
    let service = &ctx.service;
    let actor = &ctx.actor;
    match cmd {
        RecoveryCommand::Issue { user } => {
            let issued = service.admin_issue_recovery_codes(actor, &user).await?;
            let out = Issued {
                username: user,
                codes: issued.codes,
                emailed_to: issued.emailed_to,
            };
            ctx.emit(&out, |o, r| match &r.emailed_to {
                Some(to) => writeln!(o, "New recovery codes for {} mailed to {to}.", r.username),
                None => {
                    writeln!(
                        o,
                        "New recovery codes for {} (shown this once; the old ones no longer work):",
                        r.username
                    )?;
                    for c in &r.codes {
                        writeln!(o, "  {c}")?;
                    }
                    Ok(())
                }
            })?;
        }
        RecoveryCommand::History { user, limit } => {
            let entries = service.recovery_history(actor, &user, limit).await?;
            ctx.emit(&entries, |out, entries| {
                if entries.is_empty() {
                    return writeln!(out, "No recovery history.");
                }
                let mut table =
                    Table::new(&["TIME", "ACTOR", "SOURCE", "ACTION", "RESULT", "REASON"]);
                for e in entries {
                    table.row([
                        time(e.event.at),
                        e.event.actor.clone(),
                        e.event.source.clone(),
                        e.event.action.clone(),
                        e.event.result.clone(),
                        e.event.reason.clone(),
                    ]);
                }
                table.render(out)
            })?;
        }
        RecoveryCommand::Policy {
            user,
            self_service,
            revoke_old_devices,
            delivery,
        } => {
            service
                .set_self_recovery_policy(
                    actor,
                    &user,
                    self_service.value(),
                    revoke_old_devices.value(),
                )
                .await?;
            if let Some(d) = delivery {
                service
                    .set_recovery_delivery(actor, &user, d.value())
                    .await?;
            }
            ctx.emit(&user, |o, u| writeln!(o, "Recovery policies of {u} set."))?;
        }
        RecoveryCommand::Unlock { user } => {
            service.clear_self_service_lock(actor, &user).await?;
            ctx.emit(&user, |o, u| {
                writeln!(o, "Self-service lock of {u} cleared.")
            })?;
        }
        RecoveryCommand::Reset { user, hint } => {
            let password = read_password(&user)?;
            let path = service
                .admin_reset_account(actor, &user, &password, &hint)
                .await?;
            let link = format!("{}{path}", service.config().public_base_url());
            ctx.emit(&link, |o, l| {
                writeln!(
                    o,
                    "Account {user} reset. Enrollment link (valid 30 minutes):\n  {l}"
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
