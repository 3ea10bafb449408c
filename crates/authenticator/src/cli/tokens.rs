//! Commands on the vault's tokens: init, add, codes, code, list, rename, rm, pin-change.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::{Secrets, Session};
use crate::clock::now_unix;
use crate::codes::{self, grouped};
use crate::entry::{Entry, EntryKind};
use crate::import::{self, Format, Found, Report};
use crate::kdf::PIN_COST;
use crate::vault::file::VaultFile;
use crate::vault::{SlotKind, Vault, VaultError};

/// What `init` tells a user who chose a PIN: the truth about a short secret.
const PIN_HONESTY: &str = "\
A PIN keeps out someone at this machine: each wrong PIN makes the next try wait longer.
It does not keep out someone who copies the vault file: a 6-digit PIN has a million
values, and even at a quarter second of Argon2id each, a copy can be tried in days on one
core and in hours on many. If the file may leave this machine (backups of your home
directory, a shared disk), use a passphrase instead: tessera-auth init --passphrase";

fn check_new_secret(kind: SlotKind, s: &str) -> Result<()> {
    match kind {
        SlotKind::Pin => {
            if s.chars().count() < 6 || !s.chars().all(|c| c.is_ascii_digit()) {
                bail!("a PIN is 6 or more digits (or use --passphrase)");
            }
        }
        _ => {
            if s.chars().count() < 10 {
                bail!("a passphrase has 10 or more characters");
            }
        }
    }
    Ok(())
}

pub fn init(path: &Path, secrets: &mut Secrets, passphrase: bool) -> Result<()> {
    let file = VaultFile::lock(path, || eprintln!("waiting for another tessera-auth…"))?;
    if file.exists() {
        return Err(VaultError::Exists(path.display().to_string()).into());
    }
    let kind = if passphrase {
        SlotKind::Passphrase
    } else {
        SlotKind::Pin
    };
    if kind == SlotKind::Pin {
        eprintln!("{PIN_HONESTY}\n");
    }
    let what = if passphrase { "passphrase" } else { "PIN" };
    let secret = secrets.new_pin(None, what)?;
    check_new_secret(kind, &secret)?;
    let mut vault = Vault::create(kind, secret.as_bytes(), PIN_COST, now_unix())?;
    file.save(&mut vault).context("saving the new vault")?;
    println!("created {}", path.display());
    Ok(())
}

pub fn pin_change(
    path: &Path,
    secrets: &mut Secrets,
    new_file: Option<PathBuf>,
    passphrase: bool,
) -> Result<()> {
    let mut s = Session::open(path, secrets)?;
    let kind = if passphrase {
        SlotKind::Passphrase
    } else {
        SlotKind::Pin
    };
    let what = if passphrase { "passphrase" } else { "PIN" };
    let secret = secrets.new_pin(new_file.as_deref(), what)?;
    check_new_secret(kind, &secret)?;
    s.vault
        .replace_secret_slots(kind, secret.as_bytes(), PIN_COST)?;
    s.save()?;
    println!("{what} changed");
    Ok(())
}

/// Reads the sources and collects what they hold. Images and text arguments share one
/// collector, so the parts of a Google Authenticator export may come in any order, as several
/// images or several `otpauth-migration://` arguments.
fn read_sources(
    sources: &[String],
    format: Option<Format>,
    secrets: &mut Secrets,
    report: &mut Report,
) -> Result<Found> {
    let mut found = Found::default();
    let mut shared = tessera_import::qr::QrImages::default();
    let mut images = false;
    let mut texts = false;
    for (n, source) in sources.iter().enumerate() {
        let text_like = source
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("otpauth:"))
            || tessera_import::migration::is_migration(source);
        if text_like && !Path::new(source).exists() {
            texts = true;
            shared.add_text(source, &format!("argument {}", n + 1));
            continue;
        }
        let bytes = std::fs::read(source).with_context(|| format!("reading {source}"))?;
        let fmt = format.unwrap_or_else(|| import::detect(&bytes));
        match fmt {
            Format::Image => {
                images = true;
                if let Err(r) = shared.add(source, &bytes) {
                    report.refused(source, &r);
                }
            }
            Format::Uri | Format::Migration | Format::UriList => {
                let is_ga = tessera_import::migration::is_migration(&String::from_utf8_lossy(
                    &bytes[..bytes.len().min(64)],
                ));
                let mut items = Vec::new();
                for item in tessera_import::uri::UriListReader::new(bytes.as_slice()) {
                    match item {
                        Ok(i) => items.push(i),
                        Err(r) => {
                            report.refused(source, &r);
                            break;
                        }
                    }
                }
                found.extend(Found::from_items(items, if is_ga { "ga" } else { "list" }));
            }
            Format::Aegis | Format::TwoFas | Format::AndOtp | Format::FreeOtpPlus => {
                match crate::apps::read(fmt, &bytes, source, &mut *secrets) {
                    Ok(f) => found.extend(f),
                    Err(crate::apps::AppError::Refused(r)) => report.refused(source, &r),
                    Err(crate::apps::AppError::Other(e)) => return Err(e),
                }
            }
        }
    }
    if images || texts {
        // Exports' entries are marked `ga`, plain codes `qr` (an image) or `uri` (an argument).
        let items = shared.finish();
        for item in items {
            let origin = match &item {
                tessera_import::Item::Record(r)
                    if r.locator.contains(" entry ") || r.locator.starts_with("QR ") =>
                {
                    "ga"
                }
                tessera_import::Item::Record(r) if r.locator.starts_with("argument") => "uri",
                _ => "qr",
            };
            found.extend(Found::from_items([item], origin));
        }
    }
    Ok(found)
}

pub fn add(
    path: &Path,
    secrets: &mut Secrets,
    sources: &[String],
    name: Option<&str>,
    format: Option<&str>,
    json: bool,
) -> Result<()> {
    let format = match format {
        Some(f) => Some(Format::parse(f).with_context(|| format!("unknown format {f:?}"))?),
        None => None,
    };
    let mut s = Session::open(path, secrets)?;
    let mut report = Report::default();
    let found = read_sources(sources, format, secrets, &mut report)?;
    let merged = import::merge_into(&mut s.vault.content, found, name, now_unix())?;
    report.added.extend(merged.added);
    report.duplicate.extend(merged.duplicate);
    report.skipped.extend(merged.skipped);
    if !report.added.is_empty() {
        s.save()?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    if report.added.is_empty() && report.duplicate.is_empty() {
        bail!("nothing was added");
    }
    Ok(())
}

/// The one live entry NAME names: an exact label, name or id first, else a unique match.
pub(crate) fn find_index(vault: &Vault, name: &str) -> Result<usize> {
    let live: Vec<(usize, &Entry)> = vault
        .content
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.deleted)
        .collect();
    let lower = name.to_lowercase();
    let exact: Vec<_> = live
        .iter()
        .filter(|(_, e)| {
            e.label().to_lowercase() == lower || e.name.to_lowercase() == lower || e.id == lower
        })
        .collect();
    if exact.len() == 1 {
        return Ok(exact[0].0);
    }
    let partial: Vec<_> = live.iter().filter(|(_, e)| e.matches(name)).collect();
    match partial.len() {
        1 => Ok(partial[0].0),
        0 => bail!("no token matches {name:?} (see `tessera-auth list`)"),
        _ => {
            let names: Vec<String> = partial
                .iter()
                .map(|(_, e)| format!("  {}  {}", e.id.get(..8).unwrap_or(&e.id), e.label()))
                .collect();
            bail!(
                "{name:?} matches several tokens; be more precise or give an id:\n{}",
                names.join("\n")
            )
        }
    }
}

fn bar(left: u64, period: u64) -> String {
    let filled = ((left * 10).div_ceil(period.max(1))).min(10) as usize;
    format!("{}{}", "█".repeat(filled), "░".repeat(10 - filled))
}

pub fn codes(path: &Path, secrets: &mut Secrets, filter: Option<&str>, json: bool) -> Result<()> {
    let s = Session::open(path, secrets)?;
    let now = now_unix();
    let mut shown = Vec::new();
    for e in s.vault.content.live() {
        if filter.is_some_and(|f| !e.matches(f)) {
            continue;
        }
        shown.push((codes::show(e, now), e));
    }
    if json {
        let list: Vec<_> = shown.iter().filter_map(|(r, _)| r.as_ref().ok()).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if shown.is_empty() {
        println!(
            "no tokens{}",
            if filter.is_some() {
                " match"
            } else {
                " yet (tessera-auth add …)"
            }
        );
        return Ok(());
    }
    let width = shown
        .iter()
        .map(|(_, e)| e.label().chars().count())
        .max()
        .unwrap_or(0);
    for (r, e) in &shown {
        let label = e.label();
        let pad = " ".repeat(width - label.chars().count());
        match r {
            Err(err) => println!("{label}{pad}  ({err})"),
            Ok(c) => match (&c.code, c.seconds_left) {
                (Some(code), Some(left)) => {
                    let period = match e.kind {
                        EntryKind::Totp { period } => period,
                        _ => 30,
                    };
                    let next = c
                        .next_code
                        .as_ref()
                        .map(|n| format!("  next {}", grouped(n)))
                        .unwrap_or_default();
                    println!(
                        "{label}{pad}  {}  {} {left:>2}s{next}",
                        grouped(code),
                        bar(left, period)
                    );
                }
                _ => println!(
                    "{label}{pad}  (HOTP: tessera-auth code {:?})",
                    e.id.get(..8).unwrap_or(&e.id)
                ),
            },
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct OneCode {
    id: String,
    label: String,
    code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds_left: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counter: Option<u64>,
}

pub fn code(path: &Path, secrets: &mut Secrets, name: &str, json: bool) -> Result<()> {
    let mut s = Session::open(path, secrets)?;
    let idx = find_index(&s.vault, name)?;
    let entry = &s.vault.content.entries[idx];
    let out = if let EntryKind::Hotp { .. } = entry.kind {
        let (code, counter) = codes::hotp(entry)?;
        // Save the next counter before showing the code: a code shown is a counter used, and a
        // crash must not show the same code twice.
        let e = &mut s.vault.content.entries[idx];
        e.kind = EntryKind::Hotp {
            counter: counter + 1,
        };
        e.updated = now_unix().max(e.updated + 1);
        s.save()?;
        OneCode {
            id: s.vault.content.entries[idx].id.clone(),
            label: s.vault.content.entries[idx].label(),
            code,
            seconds_left: None,
            counter: Some(counter),
        }
    } else {
        let c = codes::show(entry, now_unix())?;
        OneCode {
            id: c.id,
            label: c.label,
            code: c.code.unwrap_or_default(),
            seconds_left: c.seconds_left,
            counter: None,
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", out.code);
    }
    Ok(())
}

#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    label: String,
    issuer: &'a str,
    account: &'a str,
    name: &'a str,
    #[serde(flatten)]
    kind: &'a EntryKind,
    algorithm: &'static str,
    digits: u32,
    origin: &'a str,
    created: u64,
}

pub fn list(path: &Path, secrets: &mut Secrets, json: bool) -> Result<()> {
    let s = Session::open(path, secrets)?;
    let rows: Vec<Listed> = s
        .vault
        .content
        .live()
        .map(|e| Listed {
            id: &e.id,
            label: e.label(),
            issuer: &e.issuer,
            account: &e.account,
            name: &e.name,
            kind: &e.kind,
            algorithm: e.algorithm.as_str(),
            digits: e.digits,
            origin: &e.origin.kind,
            created: e.created,
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    for r in &rows {
        let kind = match r.kind {
            EntryKind::Totp { period } => format!("TOTP {}s", period),
            EntryKind::Hotp { counter } => format!("HOTP #{counter}"),
            EntryKind::Steam => "Steam".into(),
        };
        println!(
            "{}  {}  {kind} {} {} digits  ({})",
            r.id.get(..8).unwrap_or(r.id),
            r.label,
            r.algorithm,
            r.digits,
            r.origin
        );
    }
    println!("{} token(s)", rows.len());
    Ok(())
}

pub fn rename(path: &Path, secrets: &mut Secrets, name: &str, new_name: &str) -> Result<()> {
    let mut s = Session::open(path, secrets)?;
    let idx = find_index(&s.vault, name)?;
    let e = &mut s.vault.content.entries[idx];
    e.name = new_name.trim().to_owned();
    e.updated = now_unix().max(e.updated + 1);
    let label = e.label();
    s.save()?;
    println!("renamed to {label}");
    Ok(())
}

pub fn remove(path: &Path, secrets: &mut Secrets, name: &str) -> Result<()> {
    let mut s = Session::open(path, secrets)?;
    let idx = find_index(&s.vault, name)?;
    let label = s.vault.content.entries[idx].label();
    s.vault.content.entries[idx].bury(now_unix());
    s.save()?;
    println!("removed {label}");
    Ok(())
}

pub fn recovery_codes(path: &Path, secrets: &mut Secrets, name: &str) -> Result<()> {
    let s = Session::open(path, secrets)?;
    let e = &s.vault.content.entries[find_index(&s.vault, name)?];
    if e.recovery_codes.is_empty() {
        bail!("no recovery codes are kept for {}", e.label());
    }
    for c in &e.recovery_codes {
        println!("{c}");
    }
    Ok(())
}
