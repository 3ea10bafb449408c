//! The inventory of hardware tokens: imports from seed files (through `tessera_import`'s
//! readers), assignment to users by serial, retirement, encrypted export.
//!
//! Policy here: what a refused file means (nothing of it stays: the store's one transaction is
//! rolled back), which serial a token without one gets, that a re-import never lowers a counter
//! nor replaces a seed, what goes into the report (codes, locators and serials, never secrets),
//! and what is audited.

use std::collections::HashSet;

use serde::Serialize;
use sha2::Digest as _;
use tessera_import::{Item, Kind, Lang, Record, Refusal, Source};
use tessera_otp::Secret;

use crate::crypto::KeyRing;
use crate::model::{
    ImportRecord, InventoryFilter, InventoryState, InventoryToken, NewInventoryToken, NewToken,
    Serial, TokenKind, TokenState,
};
use crate::msg::{Key, Msg};
use crate::store::{FeedItem, FeedSummary, ImportEnd, InventoryFeed, NewImport};

use super::audit::Outcome;
use super::codes::seed_aad;
use super::tokens::{TokenInfo, validate_token_name};
use super::{Actor, Error, Result, Service};

/// Entries of each list the report keeps; the counts are always complete.
pub const REPORT_LIST_MAX: usize = 1000;

/// Associated data of an inventory seed: bound to its serial, apart from users' tokens.
fn inventory_aad(serial: &str) -> Vec<u8> {
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
            self.skip(
                r.locator,
                "duplicate_serial",
                tessera_import::SkipReason::DuplicateSerial.message(Lang::En),
            );
            return Ok(None);
        }
        for w in &r.warnings {
            push_capped(
                &mut self.report.warnings,
                ReportEntry {
                    locator: r.locator.clone(),
                    code: w.code().into(),
                    message: w.message(Lang::En),
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

    fn skip(&mut self, locator: String, code: &str, message: String) {
        self.report.skipped += 1;
        push_capped(
            &mut self.report.skips,
            ReportEntry {
                locator,
                code: code.into(),
                message,
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
                    self.skip(s.locator, s.reason.code(), s.reason.message(Lang::En));
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

    /// An inventory token by serial, or `not_found`.
    pub async fn inventory_token(&self, serial: &str) -> Result<InventoryToken> {
        self.store
            .inventory_token(serial.trim())
            .await?
            .ok_or(Error::NotFound("inventory token"))
    }

    pub async fn list_inventory(
        &self,
        filter: &InventoryFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<InventoryToken>, i64)> {
        Ok(self
            .store
            .list_inventory(filter, limit.clamp(1, super::MAX_PAGE), offset.max(0))
            .await?)
    }

    pub async fn imports(&self, limit: i64) -> Result<Vec<ImportRecord>> {
        Ok(self.store.imports(limit.clamp(1, super::MAX_PAGE)).await?)
    }

    /// Assigns an in-stock token to a user: a copy becomes the user's token, active (the seed
    /// came from the maker), with the counter and drift the inventory knows.
    pub async fn assign_inventory_token(
        &self,
        actor: &Actor,
        serial: &str,
        username: &str,
        name: Option<&str>,
    ) -> Result<TokenInfo> {
        let inv = self.inventory_token(serial).await?;
        if inv.state != InventoryState::InStock {
            return Err(Error::Conflict(Msg::new(Key::NotInStock)));
        }
        let user = self.user_named(username).await?;
        let secret = self
            .keys
            .open(&inventory_aad(&inv.serial.0), &inv.sealed_secret)?;
        let name = match name {
            Some(n) => validate_token_name(n)?,
            None => validate_token_name(&format!("Hardware token {}", inv.serial.0))?,
        };
        let new = NewToken {
            user_id: user.id,
            sealed_secret: self.keys.seal(&seed_aad(&inv.serial), &secret)?,
            serial: inv.serial.clone(),
            kind: inv.kind,
            name,
            algorithm: inv.algorithm,
            digits: inv.digits,
            period: inv.period,
            state: TokenState::Active,
            next_counter: inv.counter,
        };
        let now = self.clock.now();
        let token = match self
            .store
            .assign_inventory(
                &inv.serial.0,
                &new,
                inv.drift,
                first_use_window(&inv, now),
                now,
            )
            .await
        {
            Ok(Some(t)) => t,
            Ok(None) => return Err(Error::Conflict(Msg::new(Key::NotInStock))),
            Err(crate::store::StoreError::Conflict) => {
                return Err(Error::Conflict(Msg::new(Key::SerialExists)));
            }
            Err(e) => return Err(e.into()),
        };
        self.audit(
            actor,
            "inventory.assign",
            format!("token:{}", token.serial),
            &user.username,
            Outcome::Success,
            format!("{} {} from stock, active", inv.kind, inv.serial.0),
        )
        .await?;
        Ok(TokenInfo::new(&token, &user))
    }

    /// Takes an in-stock token out of stock (lost, broken, expired).
    pub async fn retire_inventory_token(&self, actor: &Actor, serial: &str) -> Result<()> {
        let inv = self.inventory_token(serial).await?;
        if !self
            .store
            .retire_inventory(&inv.serial.0, self.clock.now())
            .await?
        {
            return Err(Error::Conflict(Msg::new(Key::NotInStock)));
        }
        self.audit(
            actor,
            "inventory.retire",
            format!("inventory:{}", inv.serial.0),
            "",
            Outcome::Success,
            "taken out of stock",
        )
        .await?;
        Ok(())
    }

    /// Writes every in-stock token to `out` as encrypted PSKC (see
    /// [`InventoryConfig`](crate::config::InventoryConfig): off unless allowed). Returns the
    /// number written.
    pub async fn export_inventory<W: std::io::Write + Send>(
        &self,
        actor: &Actor,
        out: W,
        protection: tessera_import::pskc::ExportProtection,
    ) -> Result<u64> {
        if !self.config.inventory.allow_seed_export {
            return Err(Error::Forbidden(Msg::new(Key::ExportDisabled)));
        }
        let random: tessera_import::pskc::Random = Box::new(|buf: &mut [u8]| {
            crate::crypto::fill_random(buf).map_err(std::io::Error::other)
        });
        let io = |e: std::io::Error| Error::Invalid(Msg::text(format!("export failed: {e}")));
        let mut writer =
            tessera_import::pskc::PskcWriter::new(out, protection, random).map_err(io)?;
        let (mut after, mut count) = (0i64, 0u64);
        loop {
            let page = self.store.inventory_after(after, 500).await?;
            if page.is_empty() {
                break;
            }
            for inv in &page {
                after = inv.id;
                let secret = self
                    .keys
                    .open(&inventory_aad(&inv.serial.0), &inv.sealed_secret)?;
                let secret = Secret::from_bytes(secret.to_vec())
                    .map_err(|e| Error::Invalid(Msg::text(e.to_string())))?;
                let record = export_record(inv, secret);
                writer.write(&record).map_err(io)?;
                count += 1;
            }
        }
        writer.finish().map_err(io)?;
        self.audit(
            actor,
            "inventory.export",
            "inventory".into(),
            "",
            Outcome::Success,
            format!("{count} seeds exported, encrypted PSKC"),
        )
        .await?;
        Ok(count)
    }
}

/// Seconds in a (Julian) year, for drift that grows with the years a token lay in a box.
const YEAR_SECS: i64 = 31_557_600;

/// How far a factory token's first code is looked for: TOTP ±max(15 min, 3 min per year since
/// it was made (its `StartDate`) or came into stock), in steps; HOTP 1,000 counters ahead. The
/// Feitian c200 spec allows ±3 steps of 30 s a year; 7-8 steps after a few years were seen.
fn first_use_window(inv: &InventoryToken, now: crate::clock::UnixTime) -> i64 {
    match inv.kind {
        TokenKind::Hotp => 1000,
        _ => {
            let since = inv.not_before.unwrap_or(inv.created_at);
            let age = now.saturating_sub(since).max(0);
            // 3 minutes per year, counted in whole seconds.
            let secs = (age.saturating_mul(180) / YEAR_SECS).max(15 * 60);
            let period = i64::try_from(inv.period.max(1)).unwrap_or(30);
            ((secs + period - 1) / period).min(1000)
        }
    }
}

/// A stored token as the PSKC writer takes it.
fn export_record(inv: &InventoryToken, secret: Secret) -> Record {
    let kind = match inv.kind {
        TokenKind::Hotp => Kind::Hotp {
            counter: u64::try_from(inv.counter).unwrap_or(0),
        },
        _ => Kind::Totp {
            period: inv.period,
            drift: inv.drift,
        },
    };
    let mut r = tessera_import::uri::record_from_uri(
        tessera_otp::KeyUri {
            kind: tessera_otp::UriKind::Totp { period: 30 },
            issuer: None,
            account: inv.serial.0.clone(),
            secret,
            algorithm: inv.algorithm,
            digits: inv.digits,
        },
        String::new(),
    );
    r.kind = kind;
    r.serial = Some(inv.serial.0.clone());
    r.manufacturer = Some(inv.manufacturer.clone()).filter(|m| !m.is_empty());
    r.model = Some(inv.model.clone()).filter(|m| !m.is_empty());
    r
}
