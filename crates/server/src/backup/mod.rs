//! Backups and restores (`tessera backup`, `tessera restore`; docs/operations.md, "Backup and
//! restore").
//!
//! A backup is a consistent copy of the database taken while the server runs (SQLite: `VACUUM
//! INTO`; PostgreSQL: `pg_dump`), in the file format of [`format`], encrypted with a passphrase
//! when the operator asks for it. The key file is never in it: seeds stay sealed under the key
//! file, which is backed up apart.
//!
//! A restore is a rollback, and a rollback is dangerous for one-time codes: the copy does not
//! know the codes accepted, the sessions opened and the links used after it was taken, so all
//! of them would work again. A restore therefore rolls the copy forward before anything can
//! use it ([`MaintenanceStore::roll_forward`](crate::store::MaintenanceStore::roll_forward)):
//! every TOTP token refuses every code shown up to the restore, every HOTP counter moves
//! forward, sessions end, open links expire, and the audit log records the restore. While a
//! restore runs, a marker file beside the database stops `tessera serve` from starting on a copy
//! that was not rolled forward yet (a restore cut short by a crash is run again).

pub mod format;

use std::io::{BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::config::Config;
use crate::service::{Actor, Outcome, Service};
use crate::store::{DatabaseKind, RolledForward};
use format::{BackupError, Manifest, PayloadKind};

/// The marker file a restore leaves while it runs, in the data directory.
pub const RESTORE_MARKER: &str = "restore-in-progress";

/// Refuses to start on a database whose restore did not finish (see the module notes).
pub fn check_no_restore_pending(config: &Config) -> anyhow::Result<()> {
    let marker = config.data_dir.join(RESTORE_MARKER);
    if marker.exists() {
        bail!(
            "a restore into this installation did not finish ({} exists): run `tessera restore` \
             with the same backup file again; the database must not be used before it is rolled \
             forward",
            marker.display()
        );
    }
    Ok(())
}

/// What `tessera backup` wrote.
#[derive(Debug, Serialize)]
pub struct BackupDone {
    pub file: String,
    pub bytes: u64,
    pub encrypted: bool,
    pub manifest: Manifest,
}

/// What `tessera restore` did.
#[derive(Debug, Serialize)]
pub struct RestoreDone {
    pub manifest: Manifest,
    /// Audit entries verified in the restored copy.
    pub audit_entries: i64,
    pub rolled_forward: RolledForward,
    /// How far each HOTP counter moved.
    pub hotp_advance: u64,
    /// The database that was replaced, kept under this name (SQLite).
    pub previous: Option<String>,
}

/// The SQLite file of an `sqlite://PATH[?options]` URL.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// A file next to `path` with `suffix` appended to its name.
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates `path` for writing, readable by its owner only; refuses an existing file.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Flushes a directory's entries (a rename into it survives a power loss).
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Removes a temporary file when dropped, unless kept.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn keep(mut self) -> PathBuf {
        self.0.take().unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// The libpq environment for a `postgres://` URL: host, port, user, password, database and the
/// TLS settings, so that no password appears on a command line (where every local user can read
/// it). A URL this cannot split (several hosts, say) is handed over whole as `--dbname` when it
/// holds no password, and refused when it does. Returns the variables and the `--dbname` value
/// (a database name, or that whole URL).
fn pg_env(url: &str) -> anyhow::Result<(Vec<(&'static str, String)>, String)> {
    let Ok(parsed) = url::Url::parse(url) else {
        bail!("the database URL cannot be read for pg_dump/pg_restore");
    };
    let Some(host) = parsed
        .host_str()
        .filter(|h| !h.is_empty() && !h.contains(','))
    else {
        if parsed.password().is_some() {
            bail!(
                "pg_dump/pg_restore need a database URL with one host, or a password in \
                 ~/.pgpass instead of in the URL"
            );
        }
        return Ok((Vec::new(), url.to_owned()));
    };
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let mut env = vec![("PGHOST", host.trim_matches(['[', ']']).to_owned())];
    if let Some(port) = parsed.port() {
        env.push(("PGPORT", port.to_string()));
    }
    if !parsed.username().is_empty() {
        env.push(("PGUSER", decode(parsed.username())));
    }
    if let Some(pw) = parsed.password() {
        env.push(("PGPASSWORD", decode(pw)));
    }
    let db = decode(parsed.path().trim_start_matches('/'));
    for (k, v) in parsed.query_pairs() {
        let var = match k.as_ref() {
            "sslmode" => "PGSSLMODE",
            "sslrootcert" => "PGSSLROOTCERT",
            "sslcert" => "PGSSLCERT",
            "sslkey" => "PGSSLKEY",
            "application_name" => "PGAPPNAME",
            _ => continue,
        };
        env.push((var, v.into_owned()));
    }
    Ok((env, db))
}

/// Runs an external tool (pg_dump, pg_restore) on the database of `url` (see [`pg_env`]).
async fn run_tool(tool: &str, args: &[&str], url: &str) -> anyhow::Result<()> {
    let (env, dbname) = pg_env(url)?;
    let mut cmd = tokio::process::Command::new(tool);
    cmd.args(args)
        .envs(env)
        .arg("--dbname")
        .arg(dbname)
        .stdin(std::process::Stdio::null());
    let out = cmd.output().await.with_context(|| {
        format!("cannot run {tool} (install the PostgreSQL client tools of the server's version)")
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("{tool} failed ({}): {}", out.status, stderr.trim());
    }
    Ok(())
}

impl Service {
    /// Writes a backup of the database to the new file `dest` while the server may keep
    /// serving; encrypted when `passphrase` is given. The copy is written beside `dest` first
    /// and renamed into place once complete: `dest` is either the whole backup or absent.
    pub async fn backup(
        &self,
        actor: &Actor,
        dest: &Path,
        passphrase: Option<Zeroizing<Vec<u8>>>,
    ) -> anyhow::Result<BackupDone> {
        if dest.exists() {
            bail!("{} exists: name a new file", dest.display());
        }
        let copy = TempFile(Some(beside(dest, ".copy")));
        let copy_path = copy.0.clone().unwrap_or_default();
        let _ = std::fs::remove_file(&copy_path);
        // Read just before the copy starts: the copy holds this audit entry (the restore checks
        // it is there with this hash) and maybe later ones; the token count is the one of then.
        let head = self
            .store
            .audit_head()
            .await
            .context("cannot read the audit log")?;
        let tokens = self
            .store
            .count_tokens()
            .await
            .context("cannot count tokens")?;
        let migrations = self
            .store
            .applied_migrations()
            .await
            .context("cannot list migrations")?
            .len();
        let kind = self.store.kind();
        let payload = match kind {
            DatabaseKind::Sqlite => {
                self.store
                    .snapshot_to(&copy_path)
                    .await
                    .context("cannot copy the database")?;
                PayloadKind::SqliteFile
            }
            DatabaseKind::Postgres => {
                create_private(&copy_path)
                    .with_context(|| format!("cannot create {}", copy_path.display()))?;
                let file = copy_path.to_string_lossy().into_owned();
                run_tool(
                    "pg_dump",
                    &[
                        "--format=custom",
                        "--no-owner",
                        "--no-privileges",
                        "--file",
                        &file,
                    ],
                    &self.config.database_url(),
                )
                .await?;
                PayloadKind::PgDumpCustom
            }
        };
        let (payload_len, payload_sha256) = format::digest(&mut BufReader::new(
            std::fs::File::open(&copy_path).context("cannot read the copy")?,
        ))
        .context("cannot read the copy")?;
        let manifest = Manifest {
            format: 1,
            created_at: self.clock.now(),
            tessera_version: env!("CARGO_PKG_VERSION").to_owned(),
            payload,
            payload_len,
            payload_sha256,
            migrations,
            key_ids: self.keys.key_ids(),
            tokens,
            audit_seq: head.seq,
            audit_hash: head.hash.clone(),
            encryption: None,
        };
        let partial = TempFile(Some(beside(dest, ".partial")));
        let partial_path = partial.0.clone().unwrap_or_default();
        let _ = std::fs::remove_file(&partial_path);
        let written = {
            let copy_path = copy_path.clone();
            let partial_path = partial_path.clone();
            tokio::task::spawn_blocking(move || -> Result<(Manifest, u64), BackupError> {
                let file = create_private(&partial_path)?;
                let mut out = BufWriter::new(file);
                let mut input = BufReader::new(std::fs::File::open(&copy_path)?);
                let m = format::write(
                    &mut out,
                    manifest,
                    &mut input,
                    passphrase.as_ref().map(|p| p.as_slice()),
                )?;
                let file = out.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                let bytes = file.metadata()?.len();
                Ok((m, bytes))
            })
            .await
            .context("the backup writer stopped")?
        };
        let (manifest, bytes) = written.map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))?;
        std::fs::rename(partial.keep(), dest)
            .with_context(|| format!("cannot move the backup to {}", dest.display()))?;
        sync_dir(dest);
        drop(copy);
        let encrypted = manifest.encryption.is_some();
        self.audit(
            actor,
            "backup.create",
            format!("database:{}", kind_name(kind)),
            "",
            Outcome::Success,
            format!(
                "{}backup of {} tokens up to audit entry {}",
                if encrypted { "encrypted " } else { "" },
                manifest.tokens,
                manifest.audit_seq,
            ),
        )
        .await
        .context("cannot record the backup in the audit log")?;
        Ok(BackupDone {
            file: dest.display().to_string(),
            bytes,
            encrypted,
            manifest,
        })
    }
}

fn kind_name(kind: DatabaseKind) -> &'static str {
    match kind {
        DatabaseKind::Sqlite => "sqlite",
        DatabaseKind::Postgres => "postgres",
    }
}

/// How a restore is run.
#[derive(Debug, Default)]
pub struct RestoreOptions {
    pub passphrase: Option<Zeroizing<Vec<u8>>>,
    /// Replace an existing database (SQLite: kept under another name).
    pub force: bool,
    /// How far HOTP counters move forward; `None`: the configured look-ahead window.
    pub hotp_advance: Option<u64>,
}

/// Restores the backup `file` into the installation of `config`, rolls it forward (see the
/// module notes) and records the restore in its audit log. The server must be stopped (every
/// node, on PostgreSQL).
pub async fn restore(
    config: Config,
    clock: Arc<dyn Clock>,
    file: &Path,
    options: RestoreOptions,
) -> anyhow::Result<RestoreDone> {
    let refuse = |e: BackupError| anyhow::anyhow!("{}: {e} ({})", file.display(), e.code());
    let mut reader = BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let (manifest, header_hash) = format::read_manifest(&mut reader).map_err(refuse)?;
    match (&manifest.encryption, &options.passphrase) {
        (Some(_), None) => return Err(refuse(BackupError::PassphraseRequired)),
        (None, Some(_)) => return Err(refuse(BackupError::NotEncrypted)),
        _ => {}
    }
    let url = config.database_url();
    let target_kind = if url.starts_with("postgres") {
        DatabaseKind::Postgres
    } else {
        DatabaseKind::Sqlite
    };
    if manifest.payload.database() != kind_name(target_kind) {
        bail!(
            "{} is a backup of a {} database, but this installation uses {}",
            file.display(),
            manifest.payload.database(),
            kind_name(target_kind)
        );
    }
    // The key file must be the one the copy's secrets are sealed with: restore it first.
    let key_file = config.key_file();
    if !key_file.exists() {
        bail!(
            "no key file at {}: put back the key file that was backed up with the database \
             (the backup does not hold it; without it no seed can be opened)",
            key_file.display()
        );
    }
    let (keys, _) = crate::crypto::KeyRing::load_or_create(&key_file)?;
    let have = keys.key_ids();
    if let Some(missing) = manifest.key_ids.iter().find(|id| !have.contains(id)) {
        bail!(
            "the key file {} lacks key {missing}, which the backup's secrets may be sealed \
             with: restore the key file that was backed up with the database",
            key_file.display()
        );
    }
    if !config.data_dir.exists() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    }
    let marker = config.data_dir.join(RESTORE_MARKER);
    let mut previous = None;
    match target_kind {
        DatabaseKind::Sqlite => {
            let db = sqlite_path(&url)
                .with_context(|| format!("cannot restore into the database URL {url}"))?;
            // The payload is checked whole before anything is replaced.
            let staged_guard = stage(
                &mut reader,
                &manifest,
                &header_hash,
                &options,
                &beside(&db, ".restoring"),
            )
            .map_err(|e| e.context(file.display().to_string()))?;
            if db.exists() && !marker.exists() {
                if !options.force {
                    bail!(
                        "a database exists at {}: stop the server, then pass --force to replace \
                         it (it is kept as {}.before-restore-TIME)",
                        db.display(),
                        db.display()
                    );
                }
                let kept = beside(&db, &format!(".before-restore-{}", clock.now()));
                for suffix in ["-wal", "-shm", ""] {
                    let from = beside(&db, suffix);
                    if from.exists() {
                        std::fs::rename(&from, beside(&kept, suffix))
                            .with_context(|| format!("cannot move {} aside", from.display()))?;
                    }
                }
                previous = Some(kept.display().to_string());
            }
            create_marker(&marker)?;
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(beside(&db, suffix));
            }
            std::fs::rename(staged_guard.keep(), &db).with_context(|| {
                format!("cannot move the restored database to {}", db.display())
            })?;
            sync_dir(&db);
        }
        DatabaseKind::Postgres => {
            let staged = config.data_dir.join("restore.pgdump");
            let staged_guard = stage(&mut reader, &manifest, &header_hash, &options, &staged)
                .map_err(|e| e.context(file.display().to_string()))?;
            if !options.force && !marker.exists() && postgres_has_tables(&url).await? {
                bail!(
                    "the database {} holds tables: stop every node, then pass --force to \
                     replace its content",
                    crate::config::redact_url(&url)
                );
            }
            create_marker(&marker)?;
            let staged_name = staged.to_string_lossy().into_owned();
            run_tool(
                "pg_restore",
                &[
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--no-privileges",
                    "--single-transaction",
                    "--exit-on-error",
                    &staged_name,
                ],
                &url,
            )
            .await?;
            drop(staged_guard);
        }
    }
    let done = roll_forward(config, clock, &manifest, options.hotp_advance).await?;
    std::fs::remove_file(&marker).with_context(|| format!("cannot remove {}", marker.display()))?;
    sync_dir(&marker);
    Ok(RestoreDone { previous, ..done })
}

/// Writes the payload of the backup being read to the new private file `path`, checked whole
/// (decrypted, length and hash), and synced; the file is removed again if anything fails.
fn stage(
    reader: &mut impl std::io::Read,
    manifest: &Manifest,
    header_hash: &[u8; 32],
    options: &RestoreOptions,
    path: &Path,
) -> anyhow::Result<TempFile> {
    let _ = std::fs::remove_file(path);
    let guard = TempFile(Some(path.to_owned()));
    let mut out = BufWriter::new(
        create_private(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    format::read_payload(
        reader,
        &mut out,
        manifest,
        header_hash,
        options.passphrase.as_ref().map(|p| p.as_slice()),
    )
    .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(guard)
}

fn create_marker(marker: &Path) -> anyhow::Result<()> {
    let mut f = std::fs::File::create(marker)
        .with_context(|| format!("cannot create {}", marker.display()))?;
    f.write_all(b"a restore is running or was cut short: run tessera restore again\n")?;
    f.sync_all()?;
    sync_dir(marker);
    Ok(())
}

async fn postgres_has_tables(url: &str) -> anyhow::Result<bool> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .with_context(|| format!("cannot connect to {}", crate::config::redact_url(url)))?;
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()")
            .fetch_one(&mut conn)
            .await?;
    Ok(n > 0)
}

/// Opens the restored database (migrating a copy from an older version), verifies its audit
/// log, rolls it forward and records the restore.
async fn roll_forward(
    config: Config,
    clock: Arc<dyn Clock>,
    manifest: &Manifest,
    hotp_advance: Option<u64>,
) -> anyhow::Result<RestoreDone> {
    let hotp_advance = hotp_advance.unwrap_or(config.otp.hotp_look_ahead).max(1);
    let totp_forward = config.otp.totp_window_forward;
    let (app, _) = crate::build_unchecked(config, clock.clone()).await?;
    let service = app.service;
    let actor = Actor::operator();
    // The copy must hold the audit entry the backup named, with the same hash.
    let named = crate::model::AuditCheckpoint {
        seq: manifest.audit_seq,
        hash: manifest.audit_hash.clone(),
    };
    let verified = service
        .verify_audit(&actor, std::slice::from_ref(&named))
        .await
        .context("cannot read the restored audit log")?;
    if !verified.ok {
        bail!(
            "the restored audit log does not verify (entry {}: {}): the backup or the key file \
             does not belong to this installation, or the copy was changed",
            verified.first_bad_seq.unwrap_or(0),
            verified.problem.unwrap_or_default()
        );
    }
    let rolled = service
        .store
        .roll_forward(
            clock.now(),
            i64::try_from(totp_forward).unwrap_or(i64::MAX),
            i64::try_from(hotp_advance).unwrap_or(i64::MAX),
        )
        .await
        .context("cannot roll the restored database forward")?;
    service
        .audit(
            &actor,
            "backup.restore",
            format!("database:{}", manifest.payload.database()),
            "",
            Outcome::Success,
            format!(
                "restored the backup of {} (audit entry {}); moved forward: {} TOTP and {} HOTP \
                 tokens (+{hotp_advance}); ended {} sessions; expired {} open links and codes",
                crate::clock::rfc3339(manifest.created_at),
                manifest.audit_seq,
                rolled.totp_tokens,
                rolled.hotp_tokens,
                rolled.sessions,
                rolled.links
            ),
        )
        .await
        .context("cannot record the restore in the audit log")?;
    Ok(RestoreDone {
        manifest: manifest.clone(),
        audit_entries: verified.entries,
        rolled_forward: rolled,
        hotp_advance,
        previous: None,
    })
}
