//! `tessera recovery ...`: admin help for a user who lost a device (SPEC F4): issue a new set of
//! recovery codes (delivered as `recovery.admin_delivery` allows), see the recovery history,
//! clear a self-service lock, and reset an account (F6).

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{ArgGroup, Subcommand};
use serde::Serialize;

use super::output::{Ctx, Table, clean, read_password, time, yes_no};
use super::values;
use crate::config::AdminDelivery;
use crate::service::{MAX_AUDIT_PAGE, RecoveryChanges, RecoverySettings};

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
        #[arg(long, value_name = "N", default_value_t = 50,
              value_parser = clap::value_parser!(i64).range(1..=MAX_AUDIT_PAGE))]
        limit: i64,
    },
    /// Change a user's recovery settings; what is not given stays as it is.
    ///
    /// Each setting is yes or no for this user, or `policy` to follow the configuration
    /// (`[recovery]`). Prints the settings in force afterwards.
    #[command(group(ArgGroup::new("change").required(true).multiple(true)))]
    Policy {
        /// Username.
        #[arg(value_name = "USER")]
        user: String,
        /// May the user recover themself on /recover? (recovery.self_service)
        #[arg(long, value_name = values::SETTING_VALUES, value_parser = values::setting,
              group = "change")]
        self_service: Option<values::Setting>,
        /// Revoke the user's old devices after a recovery? (recovery.revoke_old_devices)
        #[arg(long, value_name = values::SETTING_VALUES, value_parser = values::setting,
              group = "change")]
        revoke_old_devices: Option<values::Setting>,
        /// How re-issued recovery codes reach this user (recovery.admin_delivery).
        #[arg(long, value_name = "DELIVERY", group = "change")]
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

/// One setting as `recovery policy` prints it: the value in force and whether it is the user's
/// own (`false`: it follows the configuration).
#[derive(Debug, Serialize)]
struct Shown<T> {
    value: T,
    own: bool,
}

impl<T: Copy> From<crate::service::Setting<T>> for Shown<T> {
    fn from(s: crate::service::Setting<T>) -> Shown<T> {
        Shown {
            value: s.value,
            own: s.overridden,
        }
    }
}

/// A user's recovery settings in force, as `recovery policy` prints them.
#[derive(Debug, Serialize)]
struct Settings {
    username: String,
    self_service: Shown<bool>,
    revoke_old_devices: Shown<bool>,
    delivery: Shown<&'static str>,
    codes_at_enrollment: Shown<bool>,
    self_service_locked: bool,
}

impl Settings {
    fn new(username: String, s: &RecoverySettings) -> Settings {
        let delivery = match s.delivery.value {
            AdminDelivery::Show => "show",
            AdminDelivery::Email => "email",
        };
        Settings {
            username,
            self_service: s.self_recovery.into(),
            revoke_old_devices: s.revoke_old_devices.into(),
            delivery: Shown {
                value: delivery,
                own: s.delivery.overridden,
            },
            codes_at_enrollment: s.codes_at_enrollment.into(),
            self_service_locked: s.self_service_locked,
        }
    }
}

fn write_settings(out: &mut String, s: &Settings) -> std::fmt::Result {
    let source = |own: bool, key: &str| {
        if own {
            "set for this user".to_owned()
        } else {
            format!("policy: {key}")
        }
    };
    writeln!(out, "Recovery settings of {}:", clean(&s.username))?;
    let rows = [
        (
            "self-service",
            yes_no(s.self_service.value),
            source(s.self_service.own, "recovery.self_service"),
        ),
        (
            "revoke old devices",
            yes_no(s.revoke_old_devices.value),
            source(s.revoke_old_devices.own, "recovery.revoke_old_devices"),
        ),
        (
            "delivery",
            s.delivery.value,
            source(s.delivery.own, "recovery.admin_delivery"),
        ),
        (
            "codes at enrollment",
            yes_no(s.codes_at_enrollment.value),
            source(
                s.codes_at_enrollment.own,
                "enroll.recovery_codes_for_new_users",
            ),
        ),
    ];
    for (label, value, from) in rows {
        writeln!(out, "  {label:<20} {value:<5} ({from})")?;
    }
    if s.self_service_locked {
        writeln!(
            out,
            "  Self-service is locked (\"this wasn't me\"): `tessera recovery unlock {}` clears it.",
            clean(&s.username)
        )?;
    }
    Ok(())
}

#[derive(Debug, Serialize)]
struct Issued {
    username: String,
    codes: Vec<String>,
    emailed_to: Option<String>,
    /// The outbox directory the mail was written to, when no mail server is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    outbox: Option<std::path::PathBuf>,
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
                outbox: issued
                    .emailed_to
                    .as_ref()
                    .and_then(|_| super::mail::outbox(ctx)),
                emailed_to: issued.emailed_to,
            };
            ctx.emit(&out, |o, r| match (&r.emailed_to, &r.outbox) {
                (Some(to), None) => {
                    writeln!(o, "New recovery codes for {} mailed to {to}.", r.username)
                }
                (Some(to), Some(dir)) => writeln!(
                    o,
                    "New recovery codes for {} written to the outbox {} as a mail to {to}, {}.",
                    r.username,
                    dir.display(),
                    super::mail::NOT_SENT
                ),
                (None, _) => {
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
            let changes = RecoveryChanges {
                self_recovery: self_service.map(values::Setting::own),
                revoke_old_devices: revoke_old_devices.map(values::Setting::own),
                delivery: delivery.map(Delivery::value),
                codes_at_enrollment: None,
            };
            let settings = service
                .change_recovery_settings(actor, &user, changes)
                .await?;
            let shown = Settings::new(user, &settings);
            ctx.emit(&shown, write_settings)?;
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
