//! SQLite, the embedded default: one file in the data directory, WAL journal.
//!
//! Dialect notes: write transactions start with `BEGIN IMMEDIATE`, because a deferred transaction
//! that reads first and writes later fails with SQLITE_BUSY when another writer got there in
//! between; SQLite has no `FOR UPDATE` (the immediate transaction already holds the write lock);
//! SQLite's `LIKE` ignores ASCII case by itself; whether a table exists is asked of
//! `sqlite_master` (there is no `information_schema`).
//!
//! Writes are queued on one lock (a Tokio mutex) held by the store. SQLite lets one writer at a
//! time in; with several connections writing, the losers wait in SQLite's busy handler, which
//! sleeps in steps of milliseconds. Queueing on one lock instead keeps the waiting in Tokio, where
//! it costs nothing, and lets reads run in parallel on the pool (WAL readers never block).
//!
//! Behind the lock are two connections to the same file, used one at a time. The shared SQL
//! (`impl_store!`) runs on an sqlx connection, which executes each statement on a thread of its
//! own. Group commit, the validation hot path, runs on a rusqlite connection instead, directly on
//! the calling thread: a batch is a handful of statements, and handing each of them to another
//! thread and back cost more than running them (on this project's 2-core machine, about half of
//! a batch's time was spent waking threads). Both link the same SQLite library.

use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use rusqlite::{TransactionBehavior, params};

use super::batch::{self, Head};
use crate::crypto::AuditKey;
// StoreResult, WriteOp and WriteResult come with impl_store! below.

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    writer: std::sync::Arc<tokio::sync::Mutex<Writer>>,
    /// Commits wait for fsync (see [`SqliteStore::connect`]).
    synchronous_full: bool,
    /// The audit chain's newest entry as this process last wrote it (see [`apply_writes`]).
    head_cache: std::sync::Arc<std::sync::Mutex<Option<Head>>>,
    /// What the audit chain is hashed and its head sealed with.
    audit_key: AuditKey,
    /// The directory of a private scratch database, removed with the last clone (tests).
    scratch: Option<std::sync::Arc<Scratch>>,
}

/// The write connections, behind one lock (see the module notes).
#[derive(Debug)]
struct Writer {
    /// For the shared SQL.
    conn: SqliteConnection,
    /// For group commit ([`apply_writes`]).
    batch: rusqlite::Connection,
}

/// A directory removed when dropped.
#[derive(Debug)]
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The database holds sealed seeds, password hashes and the audit log: its files are readable by
/// the server's user only (0600, like the key file). A new database file is created so; an
/// existing one (and its `-wal`/`-shm` files, which SQLite creates with the database file's mode)
/// is tightened at start, with a log line, when group or others could read it.
fn private_files(db: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if db.as_os_str().is_empty() || db.as_os_str() == ":memory:" {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(db)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = std::path::PathBuf::from(name);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if meta.is_file() && mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o700))?;
            tracing::info!(path = %path.display(), old_mode = format!("{mode:o}"),
                "database file made private (0600)");
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `url` (`sqlite://PATH`).
    /// `synchronous_full` makes every commit wait for fsync; otherwise a commit survives a killed
    /// process but a power loss may lose the last ones (WAL with `synchronous=NORMAL`).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        synchronous_full: bool,
        audit_key: AuditKey,
    ) -> Result<SqliteStore, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if synchronous_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .foreign_keys(true)
            // Deleted content (a removed token's sealed seed, ended sessions) is overwritten with
            // zeros instead of lingering in free pages beside the key file; its cost on the load
            // benchmark is in docs/security.md.
            .pragma("secure_delete", "on")
            .busy_timeout(Duration::from_secs(10));
        // Checkpoints (copying the WAL into the database file) would otherwise run inside the
        // commit that crosses 1000 pages, and that request waits for them. A background task
        // checkpoints every 100 ms instead ([`checkpoint_task`]); the writer only steps in if
        // the WAL grows far (10,000 pages, ~40 MB), so the WAL stays bounded even if the task
        // falls behind. (Every second was too seldom: at 20,000 validations per second the WAL
        // passed 10,000 pages between two checkpoints and the writer checkpointed inside
        // commits again.)
        //
        // Pooled connections are not pinged before use (`test_before_acquire`): a local file does
        // not go away like a network peer, and each ping would cost a round trip to the
        // connection's thread on every request.
        private_files(options.get_filename()).map_err(sqlx::Error::Io)?;
        let conn = options
            .clone()
            .pragma("wal_autocheckpoint", "10000")
            .connect()
            .await?;
        let batch = batch_connection(options.get_filename(), synchronous_full)
            .map_err(|e| sqlx::Error::Configuration(Box::new(e)))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let writer = std::sync::Arc::new(tokio::sync::Mutex::new(Writer { conn, batch }));
        tokio::spawn(checkpoint_task(pool.clone(), writer.clone()));
        Ok(SqliteStore {
            pool,
            writer,
            synchronous_full,
            head_cache: Default::default(),
            audit_key,
            scratch: None,
        })
    }

    /// A private database in a new temporary directory, removed with the store (tests). Not in
    /// memory: each connection would get a database of its own.
    pub async fn scratch(audit_key: AuditKey) -> Result<SqliteStore, sqlx::Error> {
        let name = crate::crypto::random_bytes(8)
            .map_err(|e| sqlx::Error::Io(std::io::Error::other(e.to_string())))?;
        let dir = std::env::temp_dir().join(format!(
            "tessera-store-{}",
            data_encoding::HEXLOWER.encode(&name)
        ));
        std::fs::create_dir_all(&dir)?;
        let scratch = std::sync::Arc::new(Scratch(dir));
        let url = format!("sqlite://{}", scratch.0.join("t.db").display());
        let mut store = SqliteStore::connect(&url, 4, false, audit_key).await?;
        store.scratch = Some(scratch);
        Ok(store)
    }

    /// The connection the shared SQL writes on.
    async fn write_conn(
        &self,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, SqliteConnection>, sqlx::Error> {
        Ok(tokio::sync::MutexGuard::map(
            self.writer.lock().await,
            |w| &mut w.conn,
        ))
    }
}

/// A WAL this long (in frames of one page) is started over at the next background checkpoint:
/// about a tenth of a second of writes at 20,000 validations per second.
const RESTART_WAL_FRAMES: i64 = 2_000;
/// Checkpoint passes beside the writer before the one holding it, at most...
const CATCH_UP_PASSES: usize = 4;
/// ...stopping after one that took less than this (ms).
const QUICK_PASS_MS: f64 = 2.0;

/// The background checkpoints (see [`SqliteStore::connect`]), every 100 ms until the pool is
/// closed.
///
/// First a PASSIVE checkpoint on a pooled connection: it copies the WAL into the database file
/// beside the writer, without holding it up. But the WAL starts over at its beginning only
/// after a checkpoint that left nothing to copy, with no write in between; with a commit every
/// fraction of a millisecond that never happens beside the writer, so the WAL would grow to the
/// writer's own limit (10,000 frames), and from there the writer checkpointed inside commits:
/// under load, stalls of 10-25 ms each, many in a row (docs/benchmarks.md, "Tail latency").
/// So once the WAL is [`RESTART_WAL_FRAMES`] long, the first step is repeated until a pass is
/// quick (each copies what was appended during the one before), and then a last pass takes the
/// write lock for a moment and copies, on the writer's connection, what is left; the next
/// commit then starts the WAL over. The writer waits for that short copy only.
async fn checkpoint_task(
    pool: sqlx::SqlitePool,
    writer: std::sync::Arc<tokio::sync::Mutex<Writer>>,
) {
    const CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        // Passes beside the writer until one is quick: each copies only what the one before
        // left, so the pass holding the writer below has little left to copy.
        let mut wal_frames = 0;
        for _ in 0..CATCH_UP_PASSES {
            let took = crate::clock::Stopwatch::start();
            match sqlx::query_as::<_, (i64, i64, i64)>(CHECKPOINT)
                .fetch_one(&pool)
                .await
            {
                Ok((_, frames, copied)) => {
                    wal_frames = frames;
                    if took.ms() >= 1.0 {
                        tracing::debug!(ms = took.ms(), wal_frames, copied, "checkpoint");
                    }
                    if took.ms() < QUICK_PASS_MS || frames < RESTART_WAL_FRAMES {
                        break;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "background checkpoint failed");
                    wal_frames = 0;
                    break;
                }
            }
        }
        if wal_frames < RESTART_WAL_FRAMES {
            continue;
        }
        let took = crate::clock::Stopwatch::start();
        let mut w = writer.lock().await;
        let waited_ms = took.ms();
        match sqlx::query_as::<_, (i64, i64, i64)>(CHECKPOINT)
            .fetch_one(&mut w.conn)
            .await
        {
            Ok((_, wal_frames, copied)) => tracing::debug!(
                ms = took.ms(),
                waited_ms,
                wal_frames,
                copied,
                "checkpoint holding the writer, before the WAL starts over"
            ),
            Err(e) => tracing::debug!(error = %e, "checkpoint holding the writer failed"),
        }
    }
}

/// Opens the group-commit connection with the settings of the sqlx ones.
fn batch_connection(
    path: &std::path::Path,
    synchronous_full: bool,
) -> rusqlite::Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(
        None,
        "synchronous",
        if synchronous_full { "full" } else { "normal" },
    )?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "secure_delete", true)?;
    conn.pragma_update(None, "wal_autocheckpoint", 10000)?;
    Ok(conn)
}

/// Group commit on SQLite: the batch in one transaction on the rusqlite connection, on this
/// thread. The service calls it on its commit thread ([`Writers::Thread`](crate::store::Writers));
/// called on a worker of a multi-thread runtime with `synchronous_full`, where each commit waits
/// for the disk, it tells the runtime that the worker blocks. Only one batch runs at a time, so
/// the audit head this process wrote last is remembered; another process (the CLI) may have
/// appended since, so the head moves only if it is still where the batch started, else the batch
/// is rolled back and redone on the head as read inside the transaction.
pub(super) async fn apply_writes(
    store: &SqliteStore,
    ops: &[WriteOp],
) -> StoreResult<Vec<WriteResult>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let took = crate::clock::Stopwatch::start();
    let mut writer = store.writer.lock().await;
    let waited_ms = took.ms();
    let remembered = store.head_cache.lock().ok().and_then(|c| c.clone());
    let blocking = store.synchronous_full
        && tokio::runtime::Handle::current().runtime_flavor()
            == tokio::runtime::RuntimeFlavor::MultiThread;
    let key = &store.audit_key;
    let mut run = || write_batch(&mut writer.batch, key, ops, remembered.clone());
    let outcome = if blocking {
        tokio::task::block_in_place(run)
    } else {
        run()
    };
    let head = match &outcome {
        Ok((_, Some(head))) => Some(head.clone()),
        Ok((_, None)) => remembered,
        Err(_) => None,
    };
    if let Ok(mut c) = store.head_cache.lock() {
        *c = head;
    }
    let ms = took.ms();
    if ms >= SLOW_BATCH_MS {
        tracing::debug!(ms, waited_ms, writes = ops.len(), "slow group commit");
    }
    outcome.map(|(results, _)| results)
}

/// A group commit that took longer than this (waiting for the write lock included) is logged at
/// debug level: a validation waits for its commit, so this is where a slow answer comes from.
const SLOW_BATCH_MS: f64 = 5.0;

/// [`batch::ADVANCE_ONE`] with SQLite's numbered placeholders (`?N`), as rusqlite binds by
/// position.
fn advance_one() -> &'static str {
    static S: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    S.get_or_init(|| batch::ADVANCE_ONE.replace('$', "?"))
}

/// [`batch::INSERT_AUDIT`] for one entry, with rusqlite's placeholders.
fn insert_audit() -> &'static str {
    static S: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        format!(
            "{}VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            batch::INSERT_AUDIT
        )
    })
}

/// The batch's transaction; returns the results and, if it appended, the new head.
fn write_batch(
    conn: &mut rusqlite::Connection,
    key: &AuditKey,
    ops: &[WriteOp],
    remembered: Option<Head>,
) -> StoreResult<(Vec<WriteResult>, Option<Head>)> {
    let order = batch::advances_by_token(ops);
    let mut remembered = remembered;
    loop {
        let trusted = remembered.take();
        let retry = trusted.is_some();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut advanced = vec![false; ops.len()];
        {
            let mut stmt = tx.prepare_cached(advance_one())?;
            for &i in &order {
                if let WriteOp::Advance { token, advance, .. } = &ops[i] {
                    advanced[i] = stmt.execute(params![
                        token.0,
                        batch::next_counter(advance)?,
                        advance.drift,
                        advance.to.as_str(),
                        advance.now,
                        advance.matched,
                        advance.from.as_str(),
                        advance.fails,
                        super::RequestPrint::column(advance.request.as_ref()),
                    ])? == 1;
                }
            }
        }
        if !batch::appends(ops, &advanced) {
            let (results, _, _) = batch::chain(key, 1, ops, &advanced, None)?;
            tx.commit()?;
            return Ok((results, None));
        }
        let start = match trusted {
            Some(head) => head,
            None => tx
                .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?,
        };
        let (results, entries, head) = batch::chain(key, 1, ops, &advanced, Some(start.clone()))?;
        let head = head.ok_or_else(|| StoreError::Corrupt("audit head".into()))?;
        let moved =
            tx.prepare_cached(
                "UPDATE audit_head SET seq = ?1, entry = ?1, hash = ?2, seal = ?3 \
                 WHERE id = 1 AND seq = ?4 AND hash = ?5",
            )?
            .execute(params![
                head.0,
                head.1,
                key.head_seal(head.0, &head.1),
                start.0,
                start.1
            ])? == 1;
        if !moved {
            // Rolled back when `tx` is dropped.
            if retry {
                continue;
            }
            return Err(StoreError::Corrupt(
                "audit head changed under its lock".into(),
            ));
        }
        {
            let mut insert = tx.prepare_cached(insert_audit())?;
            for a in &entries {
                insert.execute(params![
                    a.seq,
                    a.event.at,
                    a.event.actor,
                    a.event.action,
                    a.event.target,
                    a.event.username,
                    a.event.source,
                    a.event.result,
                    a.event.reason,
                    a.prev_hash,
                    a.hash,
                ])?;
            }
        }
        tx.commit()?;
        return Ok((results, Some(head)));
    }
}

super::sql::impl_store!(
    store = SqliteStore,
    db = sqlx::Sqlite,
    migrator = sqlx::migrate!("migrations/sqlite"),
    begin_write = "BEGIN IMMEDIATE",
    ilike = "LIKE",
    table_exists = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
    after_keying = "SELECT 1",
    // One write transaction at a time is all SQLite allows, and group commit runs it on the
    // calling thread (see `apply_writes`).
    writers = crate::store::Writers::Thread,
    writer_chains = one_chain,
    kind = crate::store::DatabaseKind::Sqlite,
    snapshot = snapshot,
    apply_writes = apply_writes,
);

/// SQLite has one writer, so one chain (chain 1) always.
fn one_chain(_: &SqliteStore) {}

/// `VACUUM INTO` a new file: a consistent, compacted copy of the database under one read
/// transaction on the pool, while the writer goes on (WAL readers never block it). The file is
/// made private first, as the database is (it holds sealed seeds and password hashes).
async fn snapshot(store: &SqliteStore, path: &std::path::Path) -> StoreResult<()> {
    private_files(path).map_err(|e| {
        StoreError::Database(sqlx::Error::Io(std::io::Error::new(
            e.kind(),
            format!("cannot create {}: {e}", path.display()),
        )))
    })?;
    // VACUUM INTO wants a file that does not exist or is empty: the one just made is empty.
    let target = path.to_str().ok_or(StoreError::Unsupported(
        "the backup's temporary path is not UTF-8",
    ))?;
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(&store.pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    use crate::model::*;
    use crate::store::{Advance, AuditStore, Store, TokenStore, UserStore, WriteOp, WriteResult};

    fn event(n: i64) -> AuditEvent {
        AuditEvent {
            at: n,
            actor: "test".into(),
            action: "validate".into(),
            target: format!("token:{n}"),
            username: "ann".into(),
            source: "127.0.0.1".into(),
            result: "success".into(),
            reason: "code accepted".into(),
        }
    }

    /// A database made before the audit log was keyed by row id (migration 9) keeps its entries,
    /// their numbers and the hash chain through the upgrade, and appends after it; then, keyed
    /// (migration 11), the same entries on one keyed chain.
    #[tokio::test]
    async fn the_audit_log_survives_the_row_id_migration() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        // Migrations 1-8 only, from a copy of their files, as an older release applied them.
        let old = dir.path().join("old-migrations");
        std::fs::create_dir(&old).unwrap();
        let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        for file in std::fs::read_dir(&all).unwrap() {
            let file = file.unwrap();
            let name = file.file_name().into_string().unwrap();
            if name.as_str() < "0009" {
                std::fs::copy(file.path(), old.join(&name)).unwrap();
            }
        }
        let key = crate::testing::audit_key();
        let s = super::SqliteStore::connect(&url, 2, false, key.clone())
            .await
            .unwrap();
        let migrator = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();
        migrator.run(&s.pool).await.unwrap();
        assert_eq!(s.applied_migrations().await.unwrap().len(), 8);
        // Three entries on the unkeyed chain, as that release wrote them.
        let mut prev = AUDIT_GENESIS.to_owned();
        for n in 1..=3 {
            let e = event(n);
            let hash = unkeyed_audit_hash(&prev, n, &e);
            sqlx::query(
                "INSERT INTO audit_log (seq, at, actor, action, target, username, source, \
                 result, reason, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                 $10, $11)",
            )
            .bind(n)
            .bind(e.at)
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.target)
            .bind(&e.username)
            .bind(&e.source)
            .bind(&e.result)
            .bind(&e.reason)
            .bind(&prev)
            .bind(&hash)
            .execute(&s.pool)
            .await
            .unwrap();
            prev = hash;
        }
        sqlx::query("UPDATE audit_head SET seq = 3, hash = $1")
            .bind(&prev)
            .execute(&s.pool)
            .await
            .unwrap();
        let rows = "SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq";
        let before: Vec<(i64, String, String)> =
            sqlx::query_as(rows).fetch_all(&s.pool).await.unwrap();

        s.migrate().await.unwrap();
        let (sql,): (String,) =
            sqlx::query_as("SELECT sql FROM sqlite_master WHERE name = 'audit_log'")
                .fetch_one(&s.pool)
                .await
                .unwrap();
        assert!(sql.contains("seq INTEGER PRIMARY KEY"), "{sql}");
        let after: Vec<(i64, String, String)> =
            sqlx::query_as(rows).fetch_all(&s.pool).await.unwrap();
        assert_eq!(after, before);
        let before = s.audit_after(0, 10).await.unwrap();

        let keying = s.key_audit_chain(50).await.unwrap().unwrap();
        assert_eq!((keying.entries, keying.problem), (3, None));
        s.append_audit(&event(5)).await.unwrap();
        let entries = s.audit_after(0, 10).await.unwrap();
        let mut prev = AUDIT_GENESIS.to_owned();
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.seq, i as i64 + 1);
            assert_eq!(e.prev_hash, prev);
            assert!(key.entry_matches(&prev, e.seq, &e.event, &e.hash));
            prev = e.hash.clone();
        }
        for (a, b) in before.iter().zip(&entries) {
            assert_eq!((a.seq, &a.event), (b.seq, &b.event));
        }
        assert_eq!(entries[3].event.action, "audit.key");
        assert_eq!(entries.len(), 5);
        let head = s.audit_head().await.unwrap();
        assert_eq!((head.seq, &head.hash), (5, &prev));
        assert!(key.seal_matches(5, &prev, &head.seal));
        // Once only.
        assert_eq!(s.key_audit_chain(60).await.unwrap(), None);
    }

    /// The remembered head is stale in a way the sequence numbers do not show (the head row was
    /// changed beside this process): the batch, advances included, is rolled back and redone on
    /// the head as it is, and nothing is applied twice.
    #[tokio::test]
    async fn a_batch_on_a_stale_head_is_rolled_back_and_redone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let s = super::SqliteStore::connect(&url, 2, false, crate::testing::audit_key())
            .await
            .unwrap();
        s.migrate().await.unwrap();
        let user = s
            .insert_user(
                &NewUser {
                    username: "ann".into(),
                    display_name: "Ann".into(),
                    email: "ann@example.com".into(),
                    phone: String::new(),
                    sms_enabled: false,
                    language: Language::En,
                    otp_required: false,
                    role: Role::User,
                    password_hash: None,
                },
                1,
            )
            .await
            .unwrap();
        let token = s
            .insert_token(
                &NewToken {
                    user_id: user.id,
                    serial: Serial("T1".into()),
                    kind: TokenKind::Hotp,
                    name: "key".into(),
                    algorithm: tessera_otp::HashAlgorithm::Sha1,
                    digits: 6,
                    period: 30,
                    sealed_secret: vec![1],
                    state: TokenState::Active,
                    next_counter: 0,
                },
                1,
            )
            .await
            .unwrap();
        s.append_audit(&event(1)).await.unwrap();
        let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE audit_head SET hash = 'changed elsewhere'")
            .execute(&mut other)
            .await
            .unwrap();
        let advance = |matched| WriteOp::Advance {
            token: token.id,
            advance: Advance {
                matched,
                drift: 0,
                from: TokenState::Active,
                to: TokenState::Active,
                now: 5,
                fails: 0,
                request: None,
            },
            audit: Some(event(2)),
        };
        let results = s
            .apply_writes(&[advance(3), advance(3), WriteOp::Audit(event(3))])
            .await
            .unwrap();
        let WriteResult::Advanced(true, Some(first)) = &results[0] else {
            panic!("first advance: {:?}", results[0]);
        };
        assert_eq!(results[1], WriteResult::Advanced(false, None), "a replay");
        assert_eq!(first.seq, 2);
        assert_eq!(first.prev_hash, "changed elsewhere");
        assert_eq!(s.token(token.id).await.unwrap().unwrap().next_counter, 4);
        let entries = s.audit_after(0, 10).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(entries[2].prev_hash, entries[1].hash);
        let head = s.audit_head().await.unwrap();
        assert_eq!((head.seq, &head.hash), (3, &entries[2].hash));
        // The next batch trusts the head it wrote.
        s.append_audit(&event(4)).await.unwrap();
        assert_eq!(s.audit_head().await.unwrap().seq, 4);
    }
}
