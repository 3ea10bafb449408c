//! `tessera key ...`: online rotation of the server keys (see `service/keys.rs` and
//! docs/operations.md, "Key rotation").

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use super::output::{Ctx, Table};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// The keys of this node's key file: which one is active, what each seals.
    List,
    /// Add a new key to the key file, not active yet. Copy the key file to every node and
    /// restart them, then `tessera key activate ID`.
    Add,
    /// Make key ID the one every node seals new secrets with (within seconds).
    Activate {
        #[arg(value_name = "ID")]
        id: u32,
    },
    /// Seal every stored secret under the active key again, while the servers serve. Safe to
    /// run again; exits with 1 naming the secrets that cannot be opened.
    Rewrap,
    /// Open every stored secret and count those under another key than the active one; exits
    /// with 1 when one cannot be opened.
    Check {
        /// Name every secret that cannot be opened.
        #[arg(long)]
        verbose: bool,
    },
    /// Remove key ID from the key file once nothing stored needs it. The key is written to
    /// `KEYFILE.retired`: move that file offline and keep it while backups sealed with it exist.
    Retire {
        #[arg(value_name = "ID")]
        id: u32,
    },
}

pub async fn run(ctx: &Ctx, cmd: KeyCommand) -> anyhow::Result<ExitCode> {
    let key_file = ctx.service.config().key_file();
    match cmd {
        KeyCommand::List => {
            let keys = ctx.service.list_keys(&ctx.actor).await?;
            ctx.emit(&keys, |out, keys| {
                let mut t = Table::new(&["ID", "ACTIVE", "SEALED", "RECOVERY CODES", "NOTE"]);
                for k in keys {
                    t.row([
                        k.id.to_string(),
                        if k.active { "yes" } else { "no" }.to_owned(),
                        k.sealed.to_string(),
                        k.recovery_codes.to_string(),
                        if k.audit_chain {
                            "keys the audit chain".to_owned()
                        } else {
                            String::new()
                        },
                    ]);
                }
                t.render(out)
            })?;
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Add => {
            let id = ctx.service.add_key(&ctx.actor, &key_file).await?;
            let result = serde_json::json!({ "added": id, "active": false });
            ctx.emit(&result, |out, _| {
                writeln!(
                    out,
                    "key {id} added to {} (not active yet). Copy this key file to every node and \
                     restart them, then: tessera key activate {id}",
                    key_file.display()
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Activate { id } => {
            ctx.service.activate_key(&ctx.actor, id).await?;
            let result = serde_json::json!({ "active": id });
            ctx.emit(&result, |out, _| {
                writeln!(
                    out,
                    "key {id} is active: every node seals new secrets with it within 5 seconds \
                     (a node whose key file lacks it turns unready). Now: tessera key rewrap"
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
        KeyCommand::Rewrap | KeyCommand::Check { .. } => {
            let rewrap = matches!(cmd, KeyCommand::Rewrap);
            let verbose = matches!(cmd, KeyCommand::Check { verbose: true }) || rewrap;
            let total = ctx.service.store().count_tokens().await.unwrap_or(0);
            let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(0));
            let check = ctx
                .service
                .check_keys(&ctx.actor, rewrap, |n| bar.set_position(n))
                .await?;
            bar.finish_and_clear();
            let failed = !check.unreadable.is_empty();
            ctx.emit(&check, |out, c| {
                if rewrap {
                    writeln!(
                        out,
                        "{} secrets read, {} rewrapped to key {}, {} changed meanwhile (run again)",
                        c.secrets,
                        c.rewrapped,
                        ctx.service.keys_current(),
                        c.changed_meanwhile
                    )?;
                } else {
                    writeln!(
                        out,
                        "{} secrets read, {} under another key than the active key {}",
                        c.secrets,
                        c.not_active,
                        ctx.service.keys_current()
                    )?;
                }
                if failed {
                    writeln!(out, "{} cannot be opened:", c.unreadable.len())?;
                    if verbose {
                        for name in &c.unreadable {
                            writeln!(out, "  {}", super::output::clean(name))?;
                        }
                    }
                }
                Ok(())
            })?;
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        KeyCommand::Retire { id } => {
            let (ring, line) = ctx.service.retire_key(&ctx.actor, id).await?;
            let retired = {
                let mut name = key_file.as_os_str().to_owned();
                name.push(".retired");
                std::path::PathBuf::from(name)
            };
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o600)
                    .open(&retired)
                    .with_context(|| format!("cannot write {}", retired.display()))?;
                f.write_all(line.as_bytes())?;
                f.sync_all()?;
            }
            ring.save(&key_file)
                .with_context(|| format!("cannot write {}", key_file.display()))?;
            let result =
                serde_json::json!({ "retired": id, "kept_in": retired.display().to_string() });
            ctx.emit(&result, |out, _| {
                writeln!(
                    out,
                    "key {id} removed from {}; it is kept in {}: move that file offline and keep \
                     it while backups made before today exist. Copy the new key file to every node.",
                    key_file.display(),
                    retired.display()
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
