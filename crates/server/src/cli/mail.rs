//! `tessera send-test-email ADDRESS`: checks the mail settings by sending one short mail.

use std::fmt::Write as _;
use std::process::ExitCode;

use super::output::{Ctx, clean};

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
    let via = if mail.smtp_host.trim().is_empty() {
        format!(
            "written to the outbox {} (no mail.smtp_host configured)",
            ctx.service.config().data_dir.join("outbox").display()
        )
    } else {
        format!("handed to {}:{}", mail.smtp_host, mail.smtp_port)
    };
    let value = serde_json::json!({ "address": args.address.trim(), "sent": true });
    ctx.emit(&value, |out, _| {
        writeln!(out, "Test e-mail to {} {via}.", clean(args.address.trim()))
    })?;
    Ok(ExitCode::SUCCESS)
}
