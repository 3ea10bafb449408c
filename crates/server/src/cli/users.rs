//! `tessera user ...`: add, list, show, change, disable, enable and delete users, set passwords.
//! Each subcommand is one service call (two for `show`); validation and audit happen there.

use std::fmt::{self, Write as _};
use std::process::ExitCode;

use clap::{ArgGroup, Subcommand};
use serde::Serialize;

use crate::model::{Language, Password, Role, User, UserFilter, UserState};
use crate::service::{CreateUser, MAX_PAGE, TokenInfo, UserChanges};

use super::output::{Ctx, Listing, Table, clean, or_dash, read_password, time, yes_no};
use super::values;

/// A user just added, with what became of the automatic invitation (absent when none was due).
#[derive(Serialize)]
struct Added<'a> {
    #[serde(flatten)]
    user: &'a User,
    #[serde(skip_serializing_if = "Option::is_none")]
    invitation: Option<serde_json::Value>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user.
    ///
    /// Without --password-stdin the user has no password and cannot log in until
    /// `tessera user passwd` sets one.
    Add {
        /// Username: 1-64 letters, digits or . _ - @, starting with a letter or digit. Unique
        /// regardless of case.
        #[arg(value_name = "NAME")]
        name: String,
        /// E-mail address, for enrollment and recovery mails.
        #[arg(long, value_name = "EMAIL")]
        email: Option<String>,
        /// Phone number for SMS codes, digits with an optional leading + (e.g. "+49 30 1234567").
        #[arg(long, value_name = "PHONE")]
        phone: Option<String>,
        /// Full name shown on pages and in e-mails.
        #[arg(long, value_name = "TEXT")]
        display_name: Option<String>,
        /// Language of pages and e-mails: en or de [default: server.default_language].
        #[arg(long, value_name = "LANG")]
        language: Option<Language>,
        /// Make the user an administrator.
        #[arg(long)]
        admin: bool,
        /// Mail the user an enrollment link right away (needs --email).
        #[arg(long)]
        invite: bool,
        /// Require a one-time password at login (a user without a token is led to enroll one):
        /// yes or no; the option alone means yes [default: no].
        #[arg(long, value_name = values::BOOL_VALUES, num_args = 0..=1,
              default_missing_value = "yes", value_parser = values::boolean)]
        otp_required: Option<bool>,
        /// Read the password from the first line of stdin (never give it as an argument).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users, ordered by name.
    List {
        /// Only users whose name, display name or e-mail contains this text.
        #[arg(long, value_name = "TEXT", default_value = "")]
        search: String,
        /// Only users an admin may have to help: locked (throttled, a device locked, or
        /// self-service locked), no_device (must use a second factor, no device that can give a
        /// code), pending (an enrollment link that still works); or all.
        #[arg(
            long,
            value_name = "all|locked|no_device|pending",
            default_value = "all"
        )]
        filter: UserFilter,
        /// How many users to show at most.
        #[arg(long, value_name = "N", default_value_t = 100,
              value_parser = clap::value_parser!(i64).range(1..=MAX_PAGE))]
        limit: i64,
        /// How many users to skip (for paging).
        #[arg(long, value_name = "N", default_value_t = 0,
              value_parser = clap::value_parser!(i64).range(0..))]
        offset: i64,
    },
    /// Show a user and the user's tokens.
    Show {
        /// Username (any case).
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Change a user; what is not given stays as it is.
    #[command(group(ArgGroup::new("change").required(true).multiple(true)))]
    Set {
        /// Username (any case).
        #[arg(value_name = "NAME")]
        name: String,
        /// New e-mail address; "" removes it.
        #[arg(long, value_name = "EMAIL", group = "change")]
        email: Option<String>,
        /// New phone number; "" removes it and stops SMS codes to this user.
        #[arg(long, value_name = "PHONE", group = "change")]
        phone: Option<String>,
        /// New full name.
        #[arg(long, value_name = "TEXT", group = "change")]
        display_name: Option<String>,
        /// Language of pages and e-mails: en or de.
        #[arg(long, value_name = "LANG", group = "change")]
        language: Option<Language>,
        /// Whether a one-time password is required at login: yes or no.
        #[arg(long, value_name = values::BOOL_VALUES, group = "change",
              action = clap::ArgAction::Set, value_parser = values::boolean)]
        otp_required: Option<bool>,
        /// Role: user or admin.
        #[arg(long, value_name = "ROLE", group = "change")]
        role: Option<Role>,
    },
    /// Disable a user: logins are refused and open sessions end.
    ///
    /// The user's tokens are kept; `tessera user enable` undoes this.
    Disable {
        /// Username (any case).
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Enable a disabled user again.
    Enable {
        /// Username (any case).
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Delete a user with all tokens and sessions.
    ///
    /// The audit log keeps the user's history.
    Delete {
        /// Username (any case).
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Set a user's password, read from the first line of stdin.
    ///
    /// Ends the user's open sessions. Example: printf '%s\n' "$PASSWORD" | tessera user passwd
    /// alice
    Passwd {
        /// Username (any case).
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// `user show --json`: the user with the user's tokens.
#[derive(Serialize)]
struct UserWithTokens<'a> {
    #[serde(flatten)]
    user: &'a User,
    tokens: &'a [TokenInfo],
}

pub async fn run(ctx: &Ctx, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    let service = &ctx.service;
    let actor = &ctx.actor;
    match cmd {
        UserCommand::Add {
            name,
            email,
            phone,
            display_name,
            language,
            admin,
            invite,
            otp_required,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(read_password(&name)?)
            } else {
                None
            };
            let req = CreateUser {
                username: name,
                display_name: display_name.unwrap_or_default(),
                email: email.unwrap_or_default(),
                phone: phone.unwrap_or_default(),
                language,
                otp_required: otp_required.unwrap_or(false),
                role: Some(if admin { Role::Admin } else { Role::User }),
                password: password.as_ref().map(|p| Password::new(p.to_string())),
                invite,
            };
            let (user, invitation) = service.create_user_invited(actor, req).await?;
            let added = Added {
                invitation: invitation.as_ref().map(|sent| match sent {
                    Ok(sent) => serde_json::json!({
                        "sent": true,
                        "emailed_to": sent.emailed_to,
                        "expires_at": sent.expires_at,
                        "outbox": super::mail::outbox(ctx),
                    }),
                    Err(e) => serde_json::json!({
                        "sent": false,
                        "error": {"code": e.code().as_str(), "message": e.public_message()},
                    }),
                }),
                user: &user,
            };
            ctx.emit(&added, |out, added| {
                let user = added.user;
                writeln!(out, "Added user {}.", clean(&user.username))?;
                write_user(out, user)?;
                if user.password_hash.is_none() {
                    writeln!(
                        out,
                        "No password yet: set one with `tessera user passwd {}`.",
                        clean(&user.username)
                    )?;
                }
                match &invitation {
                    None => {}
                    Some(Ok(sent)) => {
                        let to = clean(sent.emailed_to.as_deref().unwrap_or(""));
                        let until = time(sent.expires_at);
                        match super::mail::outbox(ctx) {
                            None => writeln!(out, "Invitation sent to {to}, valid until {until}.")?,
                            Some(dir) => writeln!(
                                out,
                                "Invitation to {to} (valid until {until}) written to the outbox {}, {}.",
                                dir.display(),
                                super::mail::NOT_SENT
                            )?,
                        }
                    }
                    Some(Err(e)) => writeln!(
                        out,
                        "No invitation was sent: {}. Send one later with `tessera enroll send {}`.",
                        clean(&e.public_message()),
                        clean(&user.username)
                    )?,
                }
                Ok(())
            })?;
        }
        UserCommand::List {
            search,
            filter,
            limit,
            offset,
        } => {
            let page = service
                .list_users(actor, &search, filter, limit, offset)
                .await?;
            let listing = Listing::page(&page.users, page.total);
            ctx.emit(&listing, |out, _| {
                let mut table = Table::new(&["USERNAME", "NAME", "E-MAIL", "ROLE", "STATE", "OTP"]);
                for u in &page.users {
                    table.row([
                        u.username.clone(),
                        or_dash(&u.display_name),
                        or_dash(&u.email),
                        u.role.to_string(),
                        u.state.to_string(),
                        if u.otp_required { "required" } else { "-" }.to_owned(),
                    ]);
                }
                table.render(out)?;
                let shown = i64::try_from(page.users.len()).unwrap_or(i64::MAX);
                if shown == 0 {
                    writeln!(out, "({} users in total)", page.total)
                } else {
                    writeln!(
                        out,
                        "({}-{} of {} users)",
                        page.offset + 1,
                        page.offset + shown,
                        page.total
                    )
                }
            })?;
        }
        UserCommand::Show { name } => {
            let user = service.user_named(&name).await?;
            let tokens = service
                .list_tokens(actor, Some(&user.username), MAX_PAGE, 0)
                .await?;
            let shown = UserWithTokens {
                user: &user,
                tokens: &tokens,
            };
            ctx.emit(&shown, |out, shown| {
                writeln!(out, "{}", clean(&shown.user.username))?;
                write_user(out, shown.user)?;
                writeln!(out)?;
                if shown.tokens.is_empty() {
                    return writeln!(out, "No tokens.");
                }
                writeln!(out, "Tokens:")?;
                super::tokens::write_token_table(out, shown.tokens)
            })?;
        }
        UserCommand::Set {
            name,
            email,
            phone,
            display_name,
            language,
            otp_required,
            role,
        } => {
            let changes = UserChanges {
                display_name,
                email,
                phone,
                language,
                otp_required,
                role,
                state: None,
            };
            let user = service.update_user(actor, &name, changes).await?;
            ctx.emit(&user, |out, user| {
                writeln!(out, "Saved user {}.", clean(&user.username))?;
                write_user(out, user)
            })?;
        }
        UserCommand::Disable { name } => set_state(ctx, &name, UserState::Disabled).await?,
        UserCommand::Enable { name } => set_state(ctx, &name, UserState::Active).await?,
        UserCommand::Delete { name } => {
            let user = service.user_named(&name).await?;
            service.delete_user(actor, &user.username).await?;
            let result = serde_json::json!({ "username": user.username, "deleted": true });
            ctx.emit(&result, |out, _| {
                writeln!(
                    out,
                    "Deleted user {} and the user's tokens.",
                    clean(&user.username)
                )
            })?;
        }
        UserCommand::Passwd { name } => {
            // Look the user up first, so a mistyped name fails before anyone types a password.
            let user = service.user_named(&name).await?;
            let password = read_password(&user.username)?;
            service
                .set_password(actor, &user.username, &password)
                .await?;
            let result = serde_json::json!({ "username": user.username, "password_set": true });
            ctx.emit(&result, |out, _| {
                writeln!(
                    out,
                    "Password of {} set; the user's sessions were ended.",
                    clean(&user.username)
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_state(ctx: &Ctx, name: &str, state: UserState) -> anyhow::Result<()> {
    let changes = UserChanges {
        state: Some(state),
        ..UserChanges::default()
    };
    let user = ctx.service.update_user(&ctx.actor, name, changes).await?;
    ctx.emit(&user, |out, user| {
        writeln!(out, "User {} is {}.", clean(&user.username), user.state)
    })
}

/// The user's fields, one per line.
fn write_user(out: &mut String, u: &User) -> fmt::Result {
    let sms = if u.phone.is_empty() {
        "disabled (no phone number)"
    } else if u.sms_enabled {
        "enabled"
    } else {
        "disabled"
    };
    let rows = [
        ("display name", or_dash(&u.display_name)),
        ("e-mail", or_dash(&u.email)),
        ("phone", or_dash(&u.phone)),
        ("SMS", sms.to_owned()),
        ("language", u.language.to_string()),
        ("role", u.role.to_string()),
        ("state", u.state.to_string()),
        ("otp required", yes_no(u.otp_required).to_owned()),
        ("password", yes_no(u.password_hash.is_some()).to_owned()),
        ("created", time(u.created_at)),
        ("updated", time(u.updated_at)),
    ];
    for (label, value) in rows {
        writeln!(out, "  {label:<13} {value}")?;
    }
    Ok(())
}
