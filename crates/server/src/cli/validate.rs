//! `tessera validate USER`: test a login from the shell, through the same validation as the API
//! (throttling, replay refusal and audit included). The audit names the application `cli`.

use std::fmt::Write as _;
use std::process::ExitCode;

use crate::model::{AppId, AppMode, AppState, Application, Password};
use crate::service::{ValidateRequest, Verdict};

use super::output::{Ctx, read_password};

/// Arguments of `tessera validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The username to check.
    #[arg(value_name = "USER")]
    user: String,
    /// The code the user's authenticator shows.
    #[arg(long, value_name = "CODE")]
    otp: Option<String>,
    /// Also check the password, read from the first line of stdin (without it, only the code
    /// is checked, like an `otp_only` application).
    #[arg(long)]
    password_stdin: bool,
    /// Answer a challenge: the transaction id printed by an earlier run (use with --otp).
    #[arg(long, value_name = "ID")]
    transaction_id: Option<String>,
}

pub async fn run(ctx: &Ctx, args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let password = if args.password_stdin {
        Some(Password::new(read_password(&args.user)?.as_str()))
    } else {
        None
    };
    let app = Application {
        id: AppId(0),
        name: "cli".into(),
        key_prefix: String::new(),
        key_hash: String::new(),
        mode: if password.is_some() {
            AppMode::PasswordAndOtp
        } else {
            AppMode::OtpOnly
        },
        // The operator checks a login as an application would with the password, or the code
        // alone; a user without any token passes only where a password was checked.
        passthrough: password.is_some(),
        state: AppState::Active,
        created_at: 0,
        revoked_at: None,
    };
    let req = ValidateRequest {
        username: args.user,
        password,
        otp: args.otp.map(Password::new),
        pass: None,
        transaction_id: args.transaction_id.map(Password::new),
    };
    let response = ctx.service.validate(&app, "cli", req).await?;
    ctx.emit(&response, |out, r| {
        match r.result {
            Verdict::Accept => writeln!(out, "accept")?,
            Verdict::Reject => writeln!(
                out,
                "reject (the reason is in the audit log: tessera audit list --action validate --limit 1)"
            )?,
            Verdict::Challenge => writeln!(
                out,
                "challenge: {}\nanswer with: tessera validate USER --transaction-id {} --otp CODE",
                r.message,
                r.transaction_id.as_deref().unwrap_or("")
            )?,
        }
        Ok(())
    })?;
    Ok(match response.result {
        Verdict::Reject => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}
