//! SQLite, the embedded default: one file in the data directory, WAL journal.
//!
//! Dialect notes: write transactions start with `BEGIN IMMEDIATE`, because a deferred transaction
//! that reads first and writes later fails with SQLITE_BUSY when another writer got there in
//! between; SQLite has no `FOR UPDATE` (the immediate transaction already holds the write lock);
//! SQLite's `LIKE` ignores ASCII case by itself.
//!
//! Writes go through a pool of one connection. SQLite lets one writer at a time in; with several
//! connections writing, the losers wait in SQLite's busy handler, which sleeps in steps of
//! milliseconds. Queueing on one connection instead keeps the waiting in Tokio, where it costs
//! nothing, and lets reads run in parallel on the other pool (WAL readers never block).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    writer: sqlx::SqlitePool,
    /// The audit chain's newest entry as this process last wrote it (see `apply_writes`).
    head_cache: std::sync::Arc<std::sync::Mutex<Option<(i64, String)>>>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH` or `sqlite::memory:`).
    /// `synchronous_full` makes every commit wait for fsync; otherwise a commit survives a killed
    /// process but a power loss may lose the last ones (WAL with `synchronous=NORMAL`).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        synchronous_full: bool,
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
            .busy_timeout(Duration::from_secs(10));
        // Checkpoints (copying the WAL into the database file) would otherwise run inside the
        // commit that crosses 1000 pages, and that request waits for them. A background task
        // checkpoints every second instead; the writer only steps in if the WAL grows far
        // (10,000 pages, ~40 MB), so the WAL stays bounded even if the task falls behind.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "10000"))
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        let checkpoints = pool.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                if checkpoints.is_closed() {
                    return;
                }
                // PASSIVE: copies what it can without waiting for readers or the writer.
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&checkpoints)
                    .await
                {
                    tracing::debug!(error = %e, "background checkpoint failed");
                }
            }
        });
        Ok(SqliteStore {
            pool,
            writer,
            head_cache: Default::default(),
        })
    }

    /// A private in-memory database (tests). One connection, since each would get its own memory.
    pub async fn memory() -> Result<SqliteStore, sqlx::Error> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Ok(SqliteStore {
            writer: pool.clone(),
            pool,
            head_cache: Default::default(),
        })
    }
}

super::sql::impl_store!(
    store = SqliteStore,
    db = sqlx::Sqlite,
    migrator = sqlx::migrate!("migrations/sqlite"),
    begin_write = "BEGIN IMMEDIATE",
    lock_audit_head = "SELECT seq, hash FROM audit_head WHERE id = 1",
    ilike = "LIKE",
    // One write transaction at a time is all SQLite allows.
    writer_tasks = 1,
    // One batch at a time: a single statement may update many token rows.
    bulk_advance = true,
);
