//! `tessera send-test-email ADDRESS`: checks the mail settings by sending one short mail.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::output::{Ctx, clean};

/// Why a mail in the outbox was not sent, for the end of a sentence that names the outbox.
pub const NOT_SENT: &str = "not sent: no mail server is configured (mail.smtp_host)";

/// The outbox directory when no mail server is configured: there a mail is written, not sent.
pub fn outbox(ctx: &Ctx) -> Option<PathBuf> {
    crate::mail::outbox_dir(ctx.service.config())
}

#[derive(Debug, clap::Args)]
pub struct SendTestEmailArgs {
    /// Recipient, e.g. it@example.org.
    #[arg(value_name = "ADDRESS")]
    address: String,
}

pub async fn run(ctx: &Ctx, args: SendTestEmailArgs) -> anyhow::Result<ExitCode> {
    ctx.service
        .send_test_email(&ctx.actor, args.address.trim())
        .await?;
    let mail = &ctx.service.config().mail;
    let via = match outbox(ctx) {
        Some(dir) => format!("written to the outbox {}, {NOT_SENT}", dir.display()),
        None => format!("handed to {}:{}", mail.smtp_host, mail.smtp_port),
    };
    // `sent`: handed over, to the mail server or (see `outbox`) to the outbox directory.
    let value = serde_json::json!({
        "address": args.address.trim(),
        "sent": true,
        "outbox": outbox(ctx),
    });
    ctx.emit(&value, |out, _| {
        writeln!(out, "Test e-mail to {} {via}.", clean(args.address.trim()))
    })?;
    Ok(ExitCode::SUCCESS)
}
