//! Imports of seed files into the inventory of hardware tokens, through `tessera_import`'s
//! readers (assignment, claiming and export are in `hardware.rs`).
//!
//! Policy here: what a refused file means (nothing of it stays: the store's one transaction is
//! rolled back), which serial a token without one gets, that a re-import never lowers a counter
//! nor replaces a seed, what goes into the report (codes, locators and serials, never secrets),
//! and what is audited.

use std::collections::HashSet;

use serde::Serialize;
use sha2::Digest as _;
use tessera_import::{Item, Kind, Lang, Record, Refusal, Source};

use crate::crypto::KeyRing;
use crate::model::{NewInventoryToken, Serial, TokenKind};
use crate::store::{FeedItem, FeedSummary, ImportEnd, InventoryFeed, NewImport};

use super::audit::Outcome;
use super::{Actor, Result, Service};

/// Entries of each list the report keeps; the counts are always complete.
pub const REPORT_LIST_MAX: usize = 1000;

/// Associated data of an inventory seed: bound to its serial, apart from users' tokens.
pub(super) fn inventory_aad(serial: &str) -> Vec<u8> {
    [b"tessera/inventory-seed/v1/".as_slice(), serial.as_bytes()].concat()
}

/// What the admin asked of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportPolicy {
    /// A name for the file's format in the record and the audit log (`pskc`, `csv`, ...).
    pub format: String,
    /// A serial in stock already gets the file's maker, model, dates and a higher counter.
    pub update_existing: bool,
    /// Read, check and count everything, keep nothing.
    pub dry_run: bool,
    /// Assign rows that name a user (Entra's `upn`, PSKC `UserId`, a URI's account) on import.
    pub assign: bool,
}

/// One skipped entry or warning in a report.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReportEntry {
    pub locator: String,
    pub code: String,
    pub message: String,
    /// The message in German, for German pages (not in the JSON report).
    #[serde(skip)]
    pub message_de: String,
}

/// A token as a dry run shows it: parameters, never the seed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReportToken {
    pub serial: String,
    pub kind: TokenKind,
    pub algorithm: &'static str,
    pub digits: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    pub manufacturer: String,
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A token assigned on import, or why it could not be.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReportAssignment {
    pub serial: String,
    pub user: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an import did, for the CLI, the web page and the import record.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// The import's record; `None` for a dry run or a refused file (nothing was kept).
    pub import_id: Option<i64>,
    pub dry_run: bool,
    pub format: String,
    pub file_sha256: String,
    pub imported: i64,
    pub updated: i64,
    pub existing: i64,
    pub skipped: i64,
    /// Set when the whole file was refused: then nothing was imported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<ReportEntry>,
    pub skips: Vec<ReportEntry>,
    pub warnings: Vec<ReportEntry>,
    /// Serials that were in stock already (at most [`REPORT_LIST_MAX`]).
    pub existing_serials: Vec<String>,
    /// The tokens read (at most [`REPORT_LIST_MAX`]), as a dry run shows them.
    pub tokens: Vec<ReportToken>,
    pub assignments: Vec<ReportAssignment>,
}

impl ImportReport {
    /// 0: everything imported; 2: some entries skipped or in stock already; 1: refused.
    pub fn exit_code(&self) -> u8 {
        if self.refused.is_some() {
            1
        } else if self.skipped > 0
            || self.existing > 0
            || self.assignments.iter().any(|a| a.error.is_some())
        {
            2
        } else {
            0
        }
    }
}

fn push_capped<T>(list: &mut Vec<T>, item: T) {
    if list.len() < REPORT_LIST_MAX {
        list.push(item);
    }
}

/// The serial of a token whose source has none (URI lists, Google Authenticator exports):
/// derived from its issuer and account, so importing the same list again finds it again.
fn derived_serial(r: &Record) -> String {
    let label = format!(
        "{}:{}",
        r.issuer.as_deref().unwrap_or(""),
        r.account.as_deref().unwrap_or("")
    );
    let digest = sha2::Sha256::digest(label.as_bytes());
    format!("IMP{}", data_encoding::HEXUPPER.encode(&digest[..6]))
}

/// Feeds a reader's records to the store (see [`InventoryFeed`]), sealing each seed and
/// writing down everything the report says.
struct Feed<'a> {
    source: Source<'a>,
    keys: &'a KeyRing,
    report: ImportReport,
    seen: HashSet<String>,
    assign: bool,
    to_assign: Vec<(String, String)>,
    refusal: Option<Refusal>,
    progress: &'a (dyn Fn(u64) + Send + Sync),
    read: u64,
    hash: std::sync::Arc<std::sync::Mutex<sha2::Sha256>>,
}

impl Feed<'_> {
    fn row(&mut self, r: Record) -> std::result::Result<Option<NewInventoryToken>, Refusal> {
        let serial = r.serial.clone().unwrap_or_else(|| derived_serial(&r));
        if !self.seen.insert(serial.clone()) {
            let reason = tessera_import::SkipReason::DuplicateSerial;
            self.skip(r.locator, &reason);
            return Ok(None);
        }
        for w in &r.warnings {
            push_capped(
                &mut self.report.warnings,
                ReportEntry {
                    locator: r.locator.clone(),
                    code: w.code().into(),
                    message: w.message(Lang::En),
                    message_de: w.message(Lang::De),
                },
            );
        }
        let (kind, period, counter, drift) = match r.kind {
            Kind::Totp { period, drift } => (TokenKind::Totp, period, 0, drift),
            Kind::Hotp { counter } => (
                TokenKind::Hotp,
                0,
                i64::try_from(counter).unwrap_or(i64::MAX),
                0,
            ),
        };
        let user = if self.assign {
            r.user.clone().or_else(|| r.account.clone())
        } else {
            None
        };
        push_capped(
            &mut self.report.tokens,
            ReportToken {
                serial: serial.clone(),
                kind,
                algorithm: r.algorithm.as_str(),
                digits: r.digits,
                period: (kind == TokenKind::Totp).then_some(period),
                manufacturer: r.manufacturer.clone().unwrap_or_default(),
                model: r.model.clone().unwrap_or_default(),
                user: user.clone(),
            },
        );
        if let Some(user) = user {
            self.to_assign.push((serial.clone(), user));
        }
        let sealed = self
            .keys
            .seal(&inventory_aad(&serial), r.secret.as_bytes())
            .map_err(|_| Refusal::Read {
                problem: "the seed could not be sealed".into(),
            })?;
        Ok(Some(NewInventoryToken {
            serial: Serial(serial),
            kind,
            algorithm: r.algorithm,
            digits: r.digits,
            period,
            sealed_secret: sealed,
            counter,
            drift,
            manufacturer: r.manufacturer.unwrap_or_default(),
            model: r.model.unwrap_or_default(),
            not_before: r.not_before,
            not_after: r.not_after,
        }))
    }

    fn skip(&mut self, locator: String, reason: &tessera_import::SkipReason) {
        self.report.skipped += 1;
        push_capped(
            &mut self.report.skips,
            ReportEntry {
                locator,
                code: reason.code().into(),
                message: reason.message(Lang::En),
                message_de: reason.message(Lang::De),
            },
        );
    }
}

impl InventoryFeed for Feed<'_> {
    fn next_row(&mut self) -> FeedItem {
        loop {
            match self.source.next() {
                None => return FeedItem::End,
                Some(Err(refusal)) => {
                    self.refusal = Some(refusal);
                    return FeedItem::Abort;
                }
                Some(Ok(Item::Skip(s))) => {
                    self.skip(s.locator, &s.reason);
                }
                Some(Ok(Item::Record(r))) => {
                    self.read += 1;
                    if self.read.is_multiple_of(1000) {
                        (self.progress)(self.read);
                    }
                    match self.row(*r) {
                        Ok(Some(row)) => return FeedItem::Row(row),
                        Ok(None) => {}
                        Err(refusal) => {
                            self.refusal = Some(refusal);
                            return FeedItem::Abort;
                        }
                    }
                }
            }
        }
    }

    fn existing(&mut self, serial: &Serial, updated: bool) {
        if !updated {
            push_capped(&mut self.report.existing_serials, serial.0.clone());
            self.to_assign.retain(|(s, _)| s != &serial.0);
        }
    }

    fn summary(&mut self) -> FeedSummary {
        self.report.file_sha256 = hash_hex(&self.hash);
        FeedSummary {
            skipped: self.report.skipped,
            report: serde_json::to_string(&self.report).unwrap_or_default(),
            file_sha256: self.report.file_sha256.clone(),
        }
    }
}

fn hash_hex(hash: &std::sync::Mutex<sha2::Sha256>) -> String {
    let h = hash
        .lock()
        .map(|h| h.clone().finalize())
        .unwrap_or_default();
    data_encoding::HEXLOWER.encode(&h)
}

/// Wraps the input so its SHA-256 is known once it has been read (the import record names the
/// file by it).
#[derive(Debug)]
pub struct HashingRead<R> {
    inner: R,
    hash: std::sync::Arc<std::sync::Mutex<sha2::Sha256>>,
    bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// What a [`HashingRead`] shares with its owner: the running hash and the bytes read.
#[derive(Debug, Clone, Default)]
pub struct ReadTally {
    pub hash: std::sync::Arc<std::sync::Mutex<sha2::Sha256>>,
    pub bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ReadTally {
    pub fn wrap<R: std::io::Read>(&self, inner: R) -> HashingRead<R> {
        HashingRead {
            inner,
            hash: self.hash.clone(),
            bytes: self.bytes.clone(),
        }
    }

    /// Adds bytes read elsewhere (an image read whole).
    pub fn add(&self, data: &[u8]) {
        if let Ok(mut h) = self.hash.lock() {
            h.update(data);
        }
        self.bytes
            .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

impl<R: std::io::Read> std::io::Read for HashingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut h) = self.hash.lock() {
            h.update(&buf[..n]);
        }
        self.bytes
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl Service {
    /// Imports the tokens `source` yields into the inventory (see the module notes). `tally`
    /// is the [`ReadTally`] the source's input was wrapped with; `progress` is told the number
    /// of records read every thousand.
    pub async fn import_tokens(
        &self,
        actor: &Actor,
        source: Source<'_>,
        tally: &ReadTally,
        policy: &ImportPolicy,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<ImportReport> {
        let mut feed = Feed {
            source,
            keys: &self.keys,
            report: ImportReport {
                dry_run: policy.dry_run,
                format: policy.format.clone(),
                ..Default::default()
            },
            seen: HashSet::new(),
            assign: policy.assign,
            to_assign: Vec::new(),
            refusal: None,
            progress,
            read: 0,
            hash: tally.hash.clone(),
        };
        let import = NewImport {
            actor: actor.audit_name(),
            format: policy.format.clone(),
            file_sha256: String::new(),
            now: self.clock.now(),
        };
        let end = self
            .store
            .import_inventory(&import, &mut feed, policy.update_existing, policy.dry_run)
            .await?;
        let mut report = std::mem::take(&mut feed.report);
        report.file_sha256 = hash_hex(&tally.hash);
        let to_assign = std::mem::take(&mut feed.to_assign);
        let refusal = feed.refusal.take();
        drop(feed);
        match end {
            ImportEnd::Aborted => {
                let refusal = refusal.unwrap_or(Refusal::Truncated);
                report.refused = Some(ReportEntry {
                    locator: String::new(),
                    code: refusal.code().into(),
                    message: refusal.message(Lang::En),
                    message_de: refusal.message(Lang::De),
                });
                // Nothing of a refused file was kept: the report says so by its counts.
                report.tokens.clear();
                report.imported = 0;
                if !policy.dry_run {
                    self.audit(
                        actor,
                        "import.tokens",
                        format!("import:{}", policy.format),
                        "",
                        Outcome::Failure,
                        format!(
                            "file refused ({}), nothing imported; sha256 {}",
                            refusal.code(),
                            report.file_sha256
                        ),
                    )
                    .await?;
                }
                return Ok(report);
            }
            ImportEnd::Done {
                import_id,
                inserted,
                updated,
                existing,
            } => {
                report.imported = inserted;
                report.updated = updated;
                report.existing = existing;
                if !policy.dry_run {
                    report.import_id = Some(import_id);
                }
            }
        }
        if policy.dry_run {
            return Ok(report);
        }
        self.audit(
            actor,
            "import.tokens",
            format!("import:{}", report.import_id.unwrap_or_default()),
            "",
            Outcome::Success,
            format!(
                "{}: {} imported, {} updated, {} in stock already, {} skipped; sha256 {}",
                report.format,
                report.imported,
                report.updated,
                report.existing,
                report.skipped,
                report.file_sha256
            ),
        )
        .await?;
        for (serial, user) in to_assign {
            let error = match self
                .assign_inventory_token(actor, &serial, &user, None)
                .await
            {
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            };
            push_capped(
                &mut report.assignments,
                ReportAssignment {
                    serial,
                    user,
                    error,
                },
            );
        }
        Ok(report)
    }
}
