//! `tessera token ...`: add a token (its key is shown this once), activate it with a first code,
//! list, show, rename, disable, enable, revoke, delete, unlock and resynchronise tokens.
//!
//! The seed leaves the service only inside `TokenCreated`, and this module prints it only in the
//! output of `token add`, where showing it once is the purpose.

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::clock::UnixTime;
use crate::model::{TokenId, TokenKind};
use crate::service::{AddToken, MAX_PAGE, TokenAction, TokenCreated, TokenInfo};

use super::output::{Ctx, Listing, Table, clean, time, time_or_never};

/// A token id as typed on the command line.
fn token_id(s: &str) -> Result<TokenId, String> {
    s.trim()
        .parse::<i64>()
        .map(TokenId)
        .map_err(|_| format!("expected a token id (a number; see `tessera token list`), got {s:?}"))
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Add a token for a user and show its key, once.
    ///
    /// The key is shown as a Key URI, as text in groups of four and as a QR code for an
    /// authenticator app. The token stays pending until `tessera token verify` gets a first
    /// correct code.
    Add {
        /// Username of the token's owner.
        #[arg(value_name = "USER")]
        user: String,
        /// totp (time-based, what authenticator apps use), hotp (counter-based), or email / sms
        /// (a code sent per login to the user's address or phone) [default: totp].
        #[arg(long, value_name = "KIND")]
        kind: Option<TokenKind>,
        /// A name that tells the user's devices apart, e.g. "Work phone".
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// Hash algorithm: SHA1, SHA256 or SHA512 [default: SHA1, which every app supports].
        #[arg(long, value_name = "ALG")]
        algorithm: Option<String>,
        /// Digits per code, 6 to 8 [default: 6].
        #[arg(long, value_name = "N")]
        digits: Option<u32>,
        /// Seconds per TOTP code [default: 30].
        #[arg(long, value_name = "SECONDS")]
        period: Option<u64>,
        /// Also write the QR code as a PNG image to this new file (mode 0600). It contains the
        /// key: delete it once the token is scanned.
        #[arg(long, value_name = "FILE")]
        qr_png: Option<PathBuf>,
    },
    /// Activate a pending token with the first code its authenticator shows.
    ///
    /// The code is used up by this: it cannot log in afterwards.
    Verify {
        /// Token id (see `tessera token list`).
        #[arg(value_name = "ID", value_parser = token_id)]
        id: TokenId,
        /// The code the authenticator shows now.
        #[arg(value_name = "CODE")]
        code: String,
    },
    /// List the tokens of one user, or of all users.
    List {
        /// Only this user's tokens.
        #[arg(value_name = "USER")]
        user: Option<String>,
        /// How many tokens to show at most (when listing all users).
        #[arg(long, value_name = "N", default_value_t = 100,
              value_parser = clap::value_parser!(i64).range(1..=MAX_PAGE))]
        limit: i64,
        /// How many tokens to skip (for paging, when listing all users).
        #[arg(long, value_name = "N", default_value_t = 0,
              value_parser = clap::value_parser!(i64).range(0..))]
        offset: i64,
    },
    /// Show one token's details (never its key).
    Show {
        /// Token id (see `tessera token list`).
        #[arg(value_name = "ID", value_parser = token_id)]
        id: TokenId,
    },
    /// Rename a token.
    Rename {
        /// Token id (see `tessera token list`).
        #[arg(value_name = "ID", value_parser = token_id)]
        id: TokenId,
        /// The new name, 1-64 characters.
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Disable a token: its codes are refused until it is enabled again.
    Disable {
        /// Token id (see `tessera token list`).
        #[arg(value_name = "ID", value_parser = token_id)]
        id: TokenId,
    },
    /// Enable a disabled token (a token never activated goes back to pending).
    Enable {
        /// Token id (see `tessera token list`).
        #[arg(value_name = "ID", value_parser = token_id)]
        id: TokenId,
    },
    /// Revoke a token for good, e.g. of a lost or stolen phone.
    ///
    /// The token stays listed as revoked; `tessera token delete` removes it.
    Revoke {
        /// Token id (see `tessera token list`).
        #[arg(value_name = "ID", value_parser = token_id)]
        id: TokenId,
    },
    /// Delete a token and its stored key.
    Delete {
        /// Token id (see `tessera token list`).
        #[arg(value_name = "ID", value_parser = token_id)]
        id: TokenId,
    },
    /// Clear a token's failed attempts and its waiting time, and unlock a locked token.
    Unlock {
        /// Token id (see `tessera token list`).
        #[arg(value_name = "ID", value_parser = token_id)]
        id: TokenId,
    },
    /// Resynchronise a token from two consecutive codes.
    ///
    /// For a hardware clock that drifted (TOTP) or a button pressed many times (HOTP counter far
    /// ahead). Afterwards the code following CODE2 is accepted.
    Resync {
        /// Token id (see `tessera token list`).
        #[arg(value_name = "ID", value_parser = token_id)]
        id: TokenId,
        /// A code from the token.
        #[arg(value_name = "CODE1")]
        code1: String,
        /// The code right after CODE1.
        #[arg(value_name = "CODE2")]
        code2: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    let service = &ctx.service;
    let actor = &ctx.actor;
    let now = service.clock.now();
    match cmd {
        TokenCommand::Add {
            user,
            kind,
            name,
            algorithm,
            digits,
            period,
            qr_png,
        } => {
            // Create the file first: a path that cannot be written fails before a token exists.
            let png_file = qr_png.as_deref().map(create_private_file).transpose()?;
            let req = AddToken {
                kind,
                name,
                algorithm,
                digits,
                period,
            };
            let created = match service.add_token(actor, &user, req).await {
                Ok(c) => c,
                Err(e) => {
                    if let Some(path) = &qr_png {
                        let _ = std::fs::remove_file(path);
                    }
                    return Err(e.into());
                }
            };
            if let (Some(file), Some(path)) = (png_file, &qr_png) {
                write_png(file, path, &created)?;
            }
            let qr = match &created.otpauth_uri {
                Some(uri) if !ctx.json => crate::qr::terminal(uri)?,
                _ => String::new(),
            };
            ctx.emit(&created, |out, c| {
                write_created(out, c, &qr, qr_png.as_deref())
            })?;
        }
        TokenCommand::Verify { id, code } => {
            let token = service.verify_first_code(actor, id, &code).await?;
            ctx.emit(&token, |out, t| {
                writeln!(
                    out,
                    "Token {} ({}) of {} is {}.",
                    t.id,
                    t.serial,
                    clean(&t.username),
                    t.state
                )
            })?;
        }
        TokenCommand::List {
            user,
            limit,
            offset,
        } => {
            let tokens = service
                .list_tokens(actor, user.as_deref(), limit, offset)
                .await?;
            // One user's tokens are listed whole; all tokens are paged.
            let listing = match user {
                Some(_) => Listing::all(&tokens),
                None => Listing::page(&tokens, service.count_tokens(actor).await?),
            };
            ctx.emit(&listing, |out, listing| {
                if listing.items.is_empty() {
                    return if listing.total == 0 {
                        writeln!(out, "No tokens.")
                    } else {
                        writeln!(out, "No tokens here ({} in total).", listing.total)
                    };
                }
                write_token_table(out, listing.items)?;
                let shown = i64::try_from(listing.items.len()).unwrap_or(i64::MAX);
                if shown < listing.total {
                    writeln!(
                        out,
                        "({}-{} of {} tokens)",
                        offset + 1,
                        offset + shown,
                        listing.total
                    )?;
                }
                Ok(())
            })?;
        }
        TokenCommand::Show { id } => {
            let token = service.get_token(actor, id).await?;
            ctx.emit(&token, |out, t| write_token(out, t, now))?;
        }
        TokenCommand::Rename { id, name } => {
            let token = service.rename_token(actor, id, &name).await?;
            ctx.emit(&token, |out, t| {
                writeln!(out, "Token {} is now called {:?}.", t.id, clean(&t.name))
            })?;
        }
        TokenCommand::Disable { id } => change_state(ctx, id, TokenAction::Disable).await?,
        TokenCommand::Enable { id } => change_state(ctx, id, TokenAction::Enable).await?,
        TokenCommand::Revoke { id } => change_state(ctx, id, TokenAction::Revoke).await?,
        TokenCommand::Delete { id } => {
            let token = service.get_token(actor, id).await?;
            service.delete_token(actor, id).await?;
            let result = serde_json::json!({ "id": id, "serial": token.serial, "deleted": true });
            ctx.emit(&result, |out, _| {
                writeln!(
                    out,
                    "Deleted token {} ({}) of {}.",
                    token.id,
                    token.serial,
                    clean(&token.username)
                )
            })?;
        }
        TokenCommand::Unlock { id } => {
            let token = service.unlock_token(actor, id).await?;
            ctx.emit(&token, |out, t| {
                writeln!(
                    out,
                    "Token {} unlocked: failed attempts cleared, state {}.",
                    t.id, t.state
                )
            })?;
        }
        TokenCommand::Resync { id, code1, code2 } => {
            let token = service.resync_token(actor, id, &code1, &code2).await?;
            ctx.emit(&token, |out, t| {
                if t.kind == TokenKind::Totp {
                    writeln!(
                        out,
                        "Token {} resynchronised: its clock is {} step(s) off.",
                        t.id, t.drift
                    )
                } else {
                    writeln!(
                        out,
                        "Token {} resynchronised: the next code after CODE2 is accepted.",
                        t.id
                    )
                }
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn change_state(ctx: &Ctx, id: TokenId, action: TokenAction) -> anyhow::Result<()> {
    let token = ctx
        .service
        .change_token_state(&ctx.actor, id, action)
        .await?;
    ctx.emit(&token, |out, t| {
        writeln!(out, "Token {} ({}) is {}.", t.id, t.serial, t.state)
    })
}

/// A new file only the owner can read: the QR code holds the key. Refuses to overwrite, so an
/// existing file's wider permissions cannot leak it.
fn create_private_file(path: &Path) -> anyhow::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

fn write_png(mut file: File, path: &Path, created: &TokenCreated) -> anyhow::Result<()> {
    let Some(png) = &created.qr_png_base64 else {
        anyhow::bail!("{} tokens have no QR code", created.token.kind);
    };
    let png = data_encoding::BASE64
        .decode(png.as_bytes())
        .context("the service returned a QR image that is not Base64")?;
    file.write_all(&png)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// What `token add` shows: the key, once, in the three forms people need.
fn write_created(out: &mut String, c: &TokenCreated, qr: &str, png: Option<&Path>) -> fmt::Result {
    let t = &c.token;
    let (Some(uri), Some(key)) = (&c.otpauth_uri, &c.secret_grouped) else {
        return writeln!(
            out,
            "Added token {} ({}) for {}: {}, active; each login sends a fresh code.",
            t.id,
            t.serial,
            clean(&t.username),
            t.kind
        );
    };
    writeln!(
        out,
        "Added token {} ({}) for {}: {}, pending until a first correct code.",
        t.id,
        t.serial,
        clean(&t.username),
        parameters(t)
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "Scan this QR code with the authenticator app, or type in the key:"
    )?;
    writeln!(out)?;
    out.push_str(qr);
    writeln!(out)?;
    writeln!(out)?;
    writeln!(out, "Key URI  {uri}")?;
    writeln!(out, "Key      {key}")?;
    if let Some(path) = png {
        writeln!(
            out,
            "QR image {} (contains the key: delete it after scanning)",
            path.display()
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "The key is shown only now. Activate the token with the code the app shows:"
    )?;
    writeln!(out, "  tessera token verify {} CODE", t.id)
}

/// "totp SHA1, 6 digits, 30 s".
fn parameters(t: &TokenInfo) -> String {
    match t.period {
        Some(period) => format!(
            "{} {}, {} digits, {period} s",
            t.kind, t.algorithm, t.digits
        ),
        None => format!("{} {}, {} digits", t.kind, t.algorithm, t.digits),
    }
}

/// Tokens as a table (also used by `user show`).
pub fn write_token_table(out: &mut String, tokens: &[TokenInfo]) -> fmt::Result {
    let mut table = Table::new(&["ID", "SERIAL", "USER", "KIND", "STATE", "LAST USED", "NAME"]);
    for t in tokens {
        table.row([
            t.id.to_string(),
            t.serial.to_string(),
            t.username.clone(),
            t.kind.to_string(),
            t.state.to_string(),
            time_or_never(t.last_used_at),
            t.name.clone(),
        ]);
    }
    table.render(out)
}

/// One token's details, one per line.
fn write_token(out: &mut String, t: &TokenInfo, now: UnixTime) -> fmt::Result {
    writeln!(out, "Token {} ({})", t.id, t.serial)?;
    let waiting = if t.throttled_until > now {
        format!("until {}", time(t.throttled_until))
    } else {
        "no".to_owned()
    };
    let rows = [
        ("user", clean(&t.username)),
        ("name", clean(&t.name)),
        ("kind", parameters(t)),
        ("state", t.state.to_string()),
        ("created", time(t.created_at)),
        ("last used", time_or_never(t.last_used_at)),
        ("failures", t.fail_count.to_string()),
        ("throttled", waiting),
    ];
    for (label, value) in rows {
        writeln!(out, "  {label:<10} {value}")?;
    }
    if t.kind == TokenKind::Totp {
        writeln!(out, "  {:<10} {} step(s)", "drift", t.drift)?;
    }
    Ok(())
}
