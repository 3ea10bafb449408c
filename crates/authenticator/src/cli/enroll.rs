//! `tessera-auth add https://host/enroll/TOKEN`: the server's enrollment flow as JSON
//! (`POST /api/v1/enrollment/{link}/start`, then `/verify`), the same rules and audit as the
//! enrollment pages. The new token is saved into the vault *before* its first code is sent, so
//! a crash between activation and saving cannot leave an active token whose seed is nowhere;
//! if activation fails, the entry is taken out again.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use tessera_otp::{KeyUri, Totp, UriKind};

use super::{Secrets, Session};
use crate::clock::now_unix;
use crate::entry::{Entry, EntryKind, Origin};

/// Above this skew the client warns (SafeID's lesson: a wrong clock is the common cause of
/// "the code does not work").
pub const SKEW_WARN: i64 = 15;

/// `https://host[/prefix]/enroll/TOKEN[?…]` → (`https://host[/prefix]`, `TOKEN`).
pub fn parse_link(link: &str) -> Option<(String, String)> {
    let rest = link
        .strip_prefix("https://")
        .map(|r| ("https://", r))
        .or_else(|| link.strip_prefix("http://").map(|r| ("http://", r)))?;
    let (scheme, rest) = rest;
    let rest = rest.split(['?', '#']).next()?;
    let at = rest.rfind("/enroll/")?;
    let (base, token) = (&rest[..at], &rest[at + "/enroll/".len()..]);
    let token = token.trim_end_matches('/');
    if base.is_empty() || token.is_empty() || token.contains('/') {
        return None;
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return None;
    }
    Some((format!("{scheme}{base}"), token.to_owned()))
}

pub fn is_link(s: &str) -> bool {
    parse_link(s).is_some()
}

#[derive(Deserialize)]
struct Started {
    username: String,
    issuer: String,
    otpauth_uri: String,
}

#[derive(Deserialize)]
struct Activated {
    token_name: String,
    recovery_codes: Vec<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

pub(crate) fn http() -> Result<reqwest::blocking::Client> {
    reqwest::blocking::Client::builder()
        .user_agent(concat!("tessera-auth/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("setting up HTTPS")
}

/// The server's clock minus ours, in seconds, from a response's `Date` header.
pub(crate) fn skew(resp: &reqwest::blocking::Response) -> Option<i64> {
    let date = resp.headers().get(reqwest::header::DATE)?.to_str().ok()?;
    let t = httpdate::parse_http_date(date).ok()?;
    let server = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    Some(i64::try_from(server).ok()? - i64::try_from(now_unix()).ok()?)
}

/// Warns when the clock is off by more than [`SKEW_WARN`] seconds.
pub(crate) fn warn_skew(resp: &reqwest::blocking::Response) {
    if let Some(s) = skew(resp)
        && s.abs() > SKEW_WARN
    {
        eprintln!(
            "warning: this computer's clock is {} s {} the server's: codes may be refused; set the clock right (e.g. timedatectl set-ntp true)",
            s.abs(),
            if s > 0 { "behind" } else { "ahead of" }
        );
    }
}

/// The body of an error answer as `code: message`.
fn api_error(resp: reqwest::blocking::Response) -> anyhow::Error {
    let status = resp.status();
    match resp.json::<ErrorBody>() {
        Ok(b) => anyhow!(
            "{} ({}): {}",
            b.error.code,
            status.as_u16(),
            b.error.message
        ),
        Err(_) => anyhow!("the server answered {status}"),
    }
}

pub fn add_link(
    path: &Path,
    secrets: &mut Secrets,
    link: &str,
    name: Option<&str>,
    json: bool,
) -> Result<()> {
    let (base, token) =
        parse_link(link).context("not an enrollment link (https://host/enroll/TOKEN)")?;
    let mut s = Session::open(path, secrets)?;
    let client = http()?;
    let resp = client
        .post(format!("{base}/api/v1/enrollment/{token}/start"))
        .send()
        .with_context(|| format!("connecting to {base}"))?;
    warn_skew(&resp);
    if let Some(sk) = skew(&resp)
        && sk.abs() > 90
    {
        bail!(
            "this computer's clock is {} s off the server's: set it right first (the first code would fail and count against the link)",
            sk.abs()
        );
    }
    if !resp.status().is_success() {
        return Err(api_error(resp)).context("starting the enrollment");
    }
    let started: Started = resp.json().context("reading the server's answer")?;
    let uri = KeyUri::parse(&started.otpauth_uri)
        .map_err(|e| anyhow!("the server sent an unusable key: {e}"))?;
    let UriKind::Totp { period } = uri.kind else {
        bail!("the server sent an HOTP key; enrollment links make TOTP tokens");
    };
    let name = name.unwrap_or("tessera-auth").to_owned();
    let mut entry = Entry::new(
        EntryKind::Totp { period },
        uri.secret.clone(),
        uri.algorithm,
        uri.digits,
        now_unix(),
    )?;
    entry.issuer = started.issuer.clone();
    entry.account = started.username.clone();
    entry.name = name.clone();
    entry.origin = Origin {
        kind: "enroll".into(),
        server: Some(base.clone()),
    };
    let id = entry.id.clone();
    s.vault.content.entries.push(entry);
    s.save()
        .context("saving the new token before activating it")?;

    let totp = Totp::new(uri.algorithm, uri.digits, period)?;
    let mut outcome = None;
    for attempt in 0..2 {
        let now = now_unix();
        // A code in the last two seconds of its step may arrive after the step: wait for the
        // next one instead of spending one of the link's tries.
        if now % period >= period.saturating_sub(2) {
            std::thread::sleep(std::time::Duration::from_secs(period - now % period));
        }
        let code = totp.generate(&uri.secret, now_unix());
        let resp = client
            .post(format!("{base}/api/v1/enrollment/{token}/verify"))
            .json(&serde_json::json!({"name": name, "code": code}))
            .send()
            .with_context(|| format!("connecting to {base}"))?;
        if resp.status().is_success() {
            outcome = Some(Ok(resp
                .json::<Activated>()
                .context("reading the server's answer")?));
            break;
        }
        let status = resp.status().as_u16();
        let err = api_error(resp);
        // A throttled try (a code of this step already sent): once more at the next step.
        if status == 429 && attempt == 0 {
            std::thread::sleep(std::time::Duration::from_secs(period - now_unix() % period));
            continue;
        }
        outcome = Some(Err(err));
        break;
    }
    let idx = s
        .vault
        .content
        .entries
        .iter()
        .position(|e| e.id == id)
        .context("the new entry vanished")?;
    match outcome {
        Some(Ok(done)) => {
            let e = &mut s.vault.content.entries[idx];
            e.name = done.token_name.clone();
            e.recovery_codes = done.recovery_codes.clone();
            e.updated = now_unix().max(e.updated + 1);
            s.save()?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "id": id, "token_name": done.token_name, "server": base,
                        "username": started.username, "recovery_codes": done.recovery_codes,
                    }))?
                );
            } else {
                println!(
                    "activated \"{}\" for {} at {base}",
                    done.token_name, started.username
                );
                if !done.recovery_codes.is_empty() {
                    println!(
                        "\nRecovery codes: write them down now and keep them away from this computer."
                    );
                    println!("Each one works once, if you lose this device:\n");
                    for c in &done.recovery_codes {
                        println!("    {c}");
                    }
                    println!(
                        "\n(They are also kept in the vault: tessera-auth recovery-codes NAME)"
                    );
                }
            }
            Ok(())
        }
        other => {
            // Never activated: the seed is worthless, take it out again.
            s.vault.content.entries.remove(idx);
            s.save()?;
            let err = match other {
                Some(Err(e)) => e,
                _ => anyhow!("no answer from the server"),
            };
            Err(err).context("activating the token")
        }
    }
}
