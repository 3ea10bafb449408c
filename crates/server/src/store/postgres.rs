//! PostgreSQL, for several Tessera nodes sharing one database.
//!
//! Dialect notes: the audit head is locked with `SELECT ... FOR UPDATE` so appenders on all nodes
//! queue on one row; `ILIKE` gives case-insensitive search.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
    /// The same pool: PostgreSQL handles concurrent writers itself.
    writer: sqlx::PgPool,
    /// Unused: with parallel writers the audit head is always read under its row lock.
    head_cache: std::sync::Arc<std::sync::Mutex<Option<(i64, String)>>>,
}

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<PgStore, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(PgStore {
            writer: pool.clone(),
            pool,
            head_cache: Default::default(),
        })
    }
}

super::sql::impl_store!(
    store = PgStore,
    db = sqlx::Postgres,
    migrator = sqlx::migrate!("migrations/postgres"),
    begin_write = "BEGIN",
    lock_audit_head = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
    ilike = "ILIKE",
    // Several batches commit in parallel, so one batch's wait for the disk (fsync of the WAL)
    // does not hold up the next.
    writer_tasks = 4,
    // Batches run in parallel: rows are locked one by one in id order, so they cannot deadlock.
    bulk_advance = false,
);
