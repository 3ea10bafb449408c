//! `tessera inventory list|show|assign|retire|export|imports`: hardware tokens in stock.
//!
//! `export` writes encrypted PSKC only, and only when `[inventory] allow_seed_export` is on.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use tessera_import::pskc::ExportProtection;

use crate::model::{InventoryFilter, InventoryState, InventoryToken};
use crate::service::{Actor, MAX_PAGE};

use super::output::{Ctx, Listing, Table, clean, or_dash, time, time_or_never};

#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// List tokens in the inventory, by serial.
    List {
        /// Only serials, makers or models containing this text.
        #[arg(long, value_name = "TEXT", default_value = "")]
        search: String,
        /// Only tokens in this state: in_stock, assigned or retired.
        #[arg(long, value_name = "STATE")]
        state: Option<InventoryState>,
        #[arg(long, value_name = "N", default_value_t = 100,
              value_parser = clap::value_parser!(i64).range(1..=MAX_PAGE))]
        limit: i64,
        #[arg(long, value_name = "N", default_value_t = 0)]
        offset: i64,
    },
    /// Show one token of the inventory.
    Show {
        #[arg(value_name = "SERIAL")]
        serial: String,
    },
    /// Assign a token in stock to a user: it becomes the user's active token.
    Assign {
        #[arg(value_name = "SERIAL")]
        serial: String,
        #[arg(value_name = "USER")]
        user: String,
        /// The name the user sees [default: "Hardware token SERIAL"].
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
    },
    /// Take a token out of stock (lost, broken, expired).
    Retire {
        #[arg(value_name = "SERIAL")]
        serial: String,
    },
    /// Write every token in stock to an encrypted PSKC file (needs `[inventory]
    /// allow_seed_export = true`).
    Export {
        /// The new file to write (mode 0600).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Encrypt with the key in this file (hex: 32, 48 or 64 digits; or raw bytes).
        #[arg(long, value_name = "FILE", conflicts_with = "password_stdin")]
        key_file: Option<PathBuf>,
        /// Encrypt with the password on the first line of standard input.
        #[arg(long, required_unless_present = "key_file")]
        password_stdin: bool,
    },
    /// The imports so far, newest first.
    Imports {
        #[arg(long, value_name = "N", default_value_t = 20,
              value_parser = clap::value_parser!(i64).range(1..=MAX_PAGE))]
        limit: i64,
    },
}

fn details(out: &mut String, t: &InventoryToken) -> std::fmt::Result {
    writeln!(out, "serial:       {}", clean(&t.serial.0))?;
    writeln!(out, "state:        {}", t.state)?;
    writeln!(
        out,
        "kind:         {} {} {} digits",
        t.kind, t.algorithm, t.digits
    )?;
    if t.kind == crate::model::TokenKind::Totp {
        writeln!(out, "period:       {} s, drift {} steps", t.period, t.drift)?;
    } else {
        writeln!(out, "counter:      {}", t.counter)?;
    }
    writeln!(out, "manufacturer: {}", or_dash(&t.manufacturer))?;
    writeln!(out, "model:        {}", or_dash(&t.model))?;
    writeln!(out, "valid until:  {}", time_or_never(t.not_after))?;
    writeln!(
        out,
        "import:       {}",
        t.import_id.map_or("-".into(), |i| i.to_string())
    )?;
    writeln!(out, "added:        {}", time(t.created_at))?;
    if let Some(id) = t.token_id {
        writeln!(
            out,
            "token:        {} (assigned {})",
            id.0,
            time_or_never(t.assigned_at)
        )?;
    }
    Ok(())
}

pub async fn run(ctx: &Ctx, cmd: InventoryCommand) -> anyhow::Result<ExitCode> {
    let actor = Actor::operator();
    match cmd {
        InventoryCommand::List {
            search,
            state,
            limit,
            offset,
        } => {
            let (items, total) = ctx
                .service
                .list_inventory(
                    &InventoryFilter {
                        search,
                        state,
                        ..InventoryFilter::default()
                    },
                    limit,
                    offset,
                )
                .await?;
            ctx.emit(&Listing::page(&items, total), |out, l| {
                let mut t = Table::new(&["SERIAL", "STATE", "KIND", "MANUFACTURER", "MODEL"]);
                for i in l.items {
                    t.row([
                        clean(&i.serial.0),
                        i.state.to_string(),
                        format!("{} {} {}", i.kind, i.algorithm, i.digits),
                        or_dash(&i.manufacturer),
                        or_dash(&i.model),
                    ]);
                }
                t.render(out)?;
                writeln!(out, "{} of {} shown", l.items.len(), l.total)
            })?;
        }
        InventoryCommand::Show { serial } => {
            let t = ctx.service.inventory_token(&serial).await?;
            ctx.emit(&t, details)?;
        }
        InventoryCommand::Assign { serial, user, name } => {
            let token = ctx
                .service
                .assign_inventory_token(&actor, &serial, &user, name.as_deref())
                .await?;
            ctx.emit(&token, |out, t| {
                writeln!(
                    out,
                    "assigned {} to {} as token {} ({}), active",
                    clean(&t.serial.0),
                    clean(&t.username),
                    t.id.0,
                    clean(&t.name)
                )
            })?;
        }
        InventoryCommand::Retire { serial } => {
            ctx.service.retire_inventory_token(&actor, &serial).await?;
            ctx.emit(&serde_json::json!({ "retired": serial }), |out, _| {
                writeln!(out, "{} taken out of stock", clean(&serial))
            })?;
        }
        InventoryCommand::Export {
            file,
            key_file,
            password_stdin: _,
        } => {
            let protection = match key_file {
                Some(path) => ExportProtection::Key(super::import::read_key_file(&path)?),
                None => ExportProtection::Password {
                    password: super::import::read_password_stdin()?,
                    iterations: ctx.service.config().inventory.export_iterations,
                },
            };
            if !ctx.service.config().inventory.allow_seed_export {
                return Err(crate::service::Error::Forbidden(crate::msg::Msg::new(
                    crate::msg::Key::ExportDisabled,
                ))
                .into());
            }
            use std::os::unix::fs::OpenOptionsExt as _;
            let out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            let written = ctx
                .service
                .export_inventory(&actor, std::io::BufWriter::new(out), protection)
                .await;
            let written = match written {
                Ok(n) => n,
                Err(e) => {
                    // Leave no partial seed file behind.
                    let _ = std::fs::remove_file(&file);
                    return Err(e.into());
                }
            };
            ctx.emit(&serde_json::json!({ "exported": written }), |out, _| {
                writeln!(
                    out,
                    "{written} tokens written to {} (encrypted PSKC)",
                    file.display()
                )
            })?;
        }
        InventoryCommand::Imports { limit } => {
            let imports = ctx.service.imports(limit).await?;
            ctx.emit(&Listing::all(&imports), |out, l| {
                let mut t = Table::new(&[
                    "ID", "WHEN", "BY", "FORMAT", "IMPORTED", "SKIPPED", "SHA256",
                ]);
                for i in l.items {
                    t.row([
                        i.id.to_string(),
                        time(i.created_at),
                        clean(&i.actor),
                        clean(&i.format),
                        i.imported.to_string(),
                        i.skipped.to_string(),
                        i.file_sha256.chars().take(16).collect(),
                    ]);
                }
                t.render(out)
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
