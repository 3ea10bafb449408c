//! `tessera import pskc|csv|safenet|uris|migration|qr FILE…`: seed files and QR images into the
//! inventory of hardware tokens, with a report of what was skipped and why.
//!
//! Exit codes (as the issue tracker and docs/imports.md say): 0 everything imported, 2 some
//! entries skipped or in stock already, 1 the file was refused (nothing imported) or the command
//! failed. Keys and passwords are never taken from the command line (they would show in `ps` and
//! the shell history): `--key-file` or `--password-stdin`.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use tessera_import::Source;
use tessera_import::csv::{CsvOptions, CsvReader, Preset, SecretEncoding};
use tessera_import::safenet::SafenetReader;
use tessera_import::uri::UriListReader;
use zeroize::Zeroizing;

use crate::service::{ImportPolicy, ImportReport, ReadTally};

use super::output::{Ctx, clean, invalid};

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// PSKC files (RFC 6030) from a token vendor: plaintext, pre-shared key or password.
    Pskc {
        #[command(flatten)]
        common: CommonArgs,
        /// A file holding the pre-shared key: hex (32, 48 or 64 digits) or 16, 24 or 32 raw bytes.
        #[arg(long, value_name = "FILE", conflicts_with = "password_stdin")]
        key_file: Option<PathBuf>,
        /// Read the file's password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Accept a plaintext file that carries no MAC (its content cannot be authenticated).
        #[arg(long)]
        allow_unauthenticated: bool,
        /// Write the skipped KeyPackages to this new file, as PSKC with the file's own
        /// encryption and MAC (one input file, not standard input).
        #[arg(long, value_name = "FILE")]
        leftover: Option<PathBuf>,
    },
    /// CSV seed files, driven by the header row or a preset layout.
    Csv {
        #[command(flatten)]
        common: CommonArgs,
        /// auto (by the header row), entra, privacyidea, safeid, pingid or yubico.
        #[arg(long = "format", value_name = "PRESET", default_value = "auto")]
        preset: Preset,
        /// hex, base32 or auto [default: the preset's].
        #[arg(long, value_name = "ENCODING")]
        secret_encoding: Option<SecretEncoding>,
    },
    /// SafeNet/Aladdin token XML (SafeWord, eToken PASS): HOTP seeds in hex.
    Safenet {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Lists of otpauth:// URIs, one a line (`#` comments); otpauth-migration:// lines too.
    Uris {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Google Authenticator exports: QR images (PNG, JPEG) or text with otpauth-migration://
    /// links; the parts of one export in any order.
    Migration {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// QR images (PNG, JPEG) of enrollment codes or of Google Authenticator exports.
    Qr {
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// What every import takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The files to read (`-` for standard input, except images).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
    /// Read and check everything and report, but keep nothing.
    #[arg(long)]
    dry_run: bool,
    /// A serial that is in stock already: keep it as it is (skip) or take the file's maker,
    /// model, dates and a higher counter (update; the seed and a higher counter are never
    /// replaced).
    #[arg(long, value_name = "MODE", default_value = "skip")]
    on_existing: OnExisting,
    /// Also write the report as JSON to this new file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Assign tokens whose row names a user (Entra's upn, PSKC UserId, a URI's account) to that
    /// user on import.
    #[arg(long)]
    assign: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OnExisting {
    Skip,
    Update,
}

/// Reads a pre-shared key file: hex digits, or the raw key.
pub(super) fn read_key_file(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let raw = Zeroizing::new(
        std::fs::read(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?,
    );
    let text = std::str::from_utf8(&raw).unwrap_or("").trim();
    if matches!(text.len(), 32 | 48 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let key = data_encoding::HEXLOWER_PERMISSIVE
            .decode(text.as_bytes())
            .map_err(|_| invalid("the key file is not valid hex"))?;
        return Ok(Zeroizing::new(key));
    }
    if matches!(raw.len(), 16 | 24 | 32) {
        return Ok(raw);
    }
    Err(invalid(
        "the key file must hold 32, 48 or 64 hex digits or 16, 24 or 32 raw bytes",
    ))
}

pub(super) fn read_password_stdin() -> anyhow::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if password.is_empty() {
        return Err(invalid("no password on standard input"));
    }
    Ok(password)
}

/// An input file, or standard input for `-`.
fn open_input(path: &Path) -> anyhow::Result<Box<dyn std::io::Read + Send>> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::stdin()));
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(file))
}

/// Whole files (images, exports), each at most the QR reader's limit.
fn read_small(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_input(path)?
        .take(tessera_import::qr::MAX_FILE as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes)
}

fn total_size(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum()
}

/// QR images and text files with links, read whole (see [`crate::service::images_source`]).
fn images_source(
    files: &[PathBuf],
    tally: &ReadTally,
    images_only: bool,
) -> anyhow::Result<Source<'static>> {
    let mut read = Vec::new();
    for path in files {
        let bytes = read_small(path)?;
        tally.add(&bytes);
        read.push((path.display().to_string(), bytes));
    }
    let named: Vec<(String, &[u8])> = read
        .iter()
        .map(|(n, b)| (n.clone(), b.as_slice()))
        .collect();
    Ok(crate::service::images_source(&named, images_only))
}

pub async fn run(ctx: &Ctx, cmd: ImportCommand) -> anyhow::Result<ExitCode> {
    let tally = ReadTally::default();
    // (the PSKC file read, the leftover file to write)
    let mut leftover_of: Option<(PathBuf, PathBuf)> = None;
    let (format, common, source): (&str, CommonArgs, Source<'static>) = match cmd {
        ImportCommand::Pskc {
            common,
            key_file,
            password_stdin,
            allow_unauthenticated,
            leftover,
        } => {
            if let Some(out) = leftover {
                match common.files.as_slice() {
                    [one] if one != Path::new("-") => leftover_of = Some((one.clone(), out)),
                    _ => {
                        return Err(invalid(
                            "--leftover takes exactly one PSKC file, not standard input",
                        ));
                    }
                }
            }
            if password_stdin && common.files.iter().any(|f| f == Path::new("-")) {
                return Err(invalid(
                    "--password-stdin cannot be used with - as the file",
                ));
            }
            let mut readers = Vec::new();
            for path in &common.files {
                readers.push(tally.wrap(open_input(path)?));
            }
            let key = key_file.as_deref().map(read_key_file).transpose()?;
            let password = if password_stdin {
                Some(read_password_stdin()?)
            } else {
                None
            };
            let source = crate::service::pskc_source(readers, key, password, allow_unauthenticated);
            ("pskc", common, source)
        }
        ImportCommand::Csv {
            common,
            preset,
            secret_encoding,
        } => {
            let mut readers = Vec::new();
            for path in &common.files {
                let options = CsvOptions {
                    preset,
                    encoding: secret_encoding,
                };
                readers.push(CsvReader::new(tally.wrap(open_input(path)?), options));
            }
            let source = readers.into_iter().flat_map(|r| -> Source<'static> {
                match r {
                    Ok(r) => Box::new(r),
                    Err(e) => Box::new(std::iter::once(Err(e))),
                }
            });
            ("csv", common, Box::new(source))
        }
        ImportCommand::Safenet { common } => {
            let mut readers = Vec::new();
            for path in &common.files {
                readers.push(SafenetReader::new(tally.wrap(open_input(path)?)));
            }
            ("safenet", common, Box::new(readers.into_iter().flatten()))
        }
        ImportCommand::Uris { common } => {
            let mut readers = Vec::new();
            for path in &common.files {
                readers.push(UriListReader::new(tally.wrap(open_input(path)?)));
            }
            ("uris", common, Box::new(readers.into_iter().flatten()))
        }
        ImportCommand::Migration { common } => {
            let source = images_source(&common.files, &tally, false)?;
            ("migration", common, source)
        }
        ImportCommand::Qr { common } => {
            let source = images_source(&common.files, &tally, true)?;
            ("qr", common, source)
        }
    };
    let policy = ImportPolicy {
        format: format.to_owned(),
        update_existing: matches!(common.on_existing, OnExisting::Update),
        dry_run: common.dry_run,
        assign: common.assign,
    };
    let bar = indicatif::ProgressBar::new(total_size(&common.files));
    if ctx.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    } else {
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {wide_bar} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
    }
    let bytes = tally.bytes.clone();
    let progress_bar = bar.clone();
    let progress = move |read: u64| {
        progress_bar.set_position(bytes.load(std::sync::atomic::Ordering::Relaxed));
        progress_bar.set_message(format!("{read} tokens read"));
    };
    let report = ctx
        .service
        .import_tokens(
            &crate::service::Actor::operator(),
            source,
            &tally,
            &policy,
            &progress,
        )
        .await?;
    bar.finish_and_clear();
    if let Some(path) = &common.report {
        write_report(path, &report)?;
    }
    if let Some((input, out)) = &leftover_of {
        write_leftover(input, out, &report)?;
    }
    ctx.emit(&report, human)?;
    Ok(ExitCode::from(report.exit_code()))
}

/// A new file, mode 0600 (reports and leftovers name serials; a leftover holds seeds).
fn create_private(path: &Path, what: &str) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the {what} {}", path.display()))
}

/// Writes the skipped KeyPackages of `input` to `out` (see `tessera_import::leftover`).
fn write_leftover(input: &Path, out: &Path, report: &ImportReport) -> anyhow::Result<()> {
    if report.refused.is_some() {
        eprintln!("no leftover file: the whole file was refused, nothing of it was imported");
        return Ok(());
    }
    let skipped =
        tessera_import::leftover::skipped_packages(report.skips.iter().map(|s| s.locator.as_str()));
    let file = create_private(out, "leftover file")?;
    let mut writer = std::io::BufWriter::new(file);
    let n = tessera_import::leftover::write_leftover(open_input(input)?, &skipped, &mut writer)
        .map_err(|e| anyhow::anyhow!("the leftover file could not be made: {e}"))?;
    use std::io::Write as _;
    writer.flush()?;
    eprintln!("{n} skipped KeyPackages written to {}", out.display());
    if usize::try_from(report.skipped).unwrap_or(0) > report.skips.len() {
        eprintln!(
            "note: the report keeps the first {} skips; the leftover file holds only those",
            report.skips.len()
        );
    }
    Ok(())
}

fn write_report(path: &Path, report: &ImportReport) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = create_private(path, "report file")?;
    serde_json::to_writer_pretty(&mut file, report)?;
    writeln!(file)?;
    Ok(())
}

/// Lines of each list the text output shows; `--report` and `--json` have the rest.
const SHOWN: usize = 20;

fn more(out: &mut String, total: i64, shown: usize, what: &str) -> std::fmt::Result {
    let rest = usize::try_from(total).unwrap_or(0).saturating_sub(shown);
    if rest > 0 {
        writeln!(out, "  … {rest} more {what} (see --report or --json)")?;
    }
    Ok(())
}

fn human(out: &mut String, r: &ImportReport) -> std::fmt::Result {
    if let Some(refused) = &r.refused {
        writeln!(
            out,
            "refused ({}): {}",
            refused.code,
            clean(&refused.message)
        )?;
        writeln!(out, "nothing was imported")?;
    } else {
        let verb = if r.dry_run {
            "would import"
        } else {
            "imported"
        };
        writeln!(
            out,
            "{verb} {}, updated {}, in stock already {}, skipped {}{}",
            r.imported,
            r.updated,
            r.existing,
            r.skipped,
            if r.dry_run {
                " (dry run: nothing kept)"
            } else {
                ""
            }
        )?;
    }
    for s in r.skips.iter().take(SHOWN) {
        writeln!(
            out,
            "  skipped {}: {} ({})",
            clean(&s.locator),
            clean(&s.message),
            s.code
        )?;
    }
    more(out, r.skipped, SHOWN.min(r.skips.len()), "skipped")?;
    for w in r.warnings.iter().take(SHOWN) {
        writeln!(
            out,
            "  warning {}: {} ({})",
            clean(&w.locator),
            clean(&w.message),
            w.code
        )?;
    }
    more(
        out,
        r.warnings.len() as i64,
        SHOWN.min(r.warnings.len()),
        "warnings",
    )?;
    for serial in r.existing_serials.iter().take(SHOWN) {
        writeln!(out, "  in stock already: {}", clean(serial))?;
    }
    more(
        out,
        r.existing,
        SHOWN.min(r.existing_serials.len()),
        "in stock already",
    )?;
    for a in &r.assignments {
        match &a.error {
            None => writeln!(out, "  assigned {} to {}", clean(&a.serial), clean(&a.user))?,
            Some(e) => writeln!(
                out,
                "  not assigned {} to {}: {}",
                clean(&a.serial),
                clean(&a.user),
                clean(e)
            )?,
        }
    }
    if let Some(id) = r.import_id {
        writeln!(out, "import {id}, file sha256 {}", r.file_sha256)?;
    }
    Ok(())
}
