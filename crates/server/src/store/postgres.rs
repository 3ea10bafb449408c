//! PostgreSQL, for several Tessera nodes sharing one database.
//!
//! Dialect notes: the audit head is locked with `SELECT ... FOR UPDATE` so appenders on all nodes
//! queue on one row; `ILIKE` gives case-insensitive search; whether a table exists is asked of
//! `pg_tables` in the connection's schema.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::batch;
use crate::crypto::AuditKey;
// StoreResult, WriteOp and WriteResult come with impl_store! below.

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
    /// The same pool: PostgreSQL handles concurrent writers itself.
    writer: sqlx::PgPool,
    /// What the audit chain is hashed and its head sealed with.
    audit_key: AuditKey,
}

impl PgStore {
    pub async fn connect(
        url: &str,
        max_connections: u32,
        audit_key: AuditKey,
    ) -> Result<PgStore, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(PgStore {
            writer: pool.clone(),
            pool,
            audit_key,
        })
    }

    /// A connection to write on.
    async fn write_conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, sqlx::Error> {
        self.writer.acquire().await
    }
}

/// Group commit on PostgreSQL. Several batches run in parallel (see `writers`), on this node
/// and on others: token rows are updated one by one in id order, so two batches cannot deadlock,
/// and the audit head is locked last (`FOR UPDATE`), so every entry has exactly one predecessor.
pub(super) async fn apply_writes(
    store: &PgStore,
    ops: &[WriteOp],
) -> StoreResult<Vec<WriteResult>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = store.writer.begin().await?;
    let mut advanced = vec![false; ops.len()];
    for i in batch::advances_by_token(ops) {
        let WriteOp::Advance { token, advance, .. } = &ops[i] else {
            continue;
        };
        advanced[i] = sqlx::query(batch::ADVANCE_ONE)
            .bind(token.0)
            .bind(batch::next_counter(advance)?)
            .bind(advance.drift)
            .bind(advance.to.as_str())
            .bind(advance.now)
            .bind(advance.matched)
            .bind(advance.from.as_str())
            .bind(advance.fails)
            .bind(crate::store::RequestPrint::column(advance.request.as_ref()))
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
    }
    let head = if batch::appends(ops, &advanced) {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
        Some((row.try_get("seq")?, row.try_get("hash")?))
    } else {
        None
    };
    let (results, entries, head) = batch::chain(&store.audit_key, ops, &advanced, head)?;
    if let (Some((seq, hash)), false) = (&head, entries.is_empty()) {
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, seal = $3 WHERE id = 1")
            .bind(*seq)
            .bind(hash)
            .bind(store.audit_key.head_seal(*seq, hash))
            .execute(&mut *tx)
            .await?;
        let mut insert = sqlx::QueryBuilder::<sqlx::Postgres>::new(batch::INSERT_AUDIT);
        insert.push_values(&entries, |mut b, a| {
            b.push_bind(a.seq)
                .push_bind(a.event.at)
                .push_bind(&a.event.actor)
                .push_bind(&a.event.action)
                .push_bind(&a.event.target)
                .push_bind(&a.event.username)
                .push_bind(&a.event.source)
                .push_bind(&a.event.result)
                .push_bind(&a.event.reason)
                .push_bind(&a.prev_hash)
                .push_bind(&a.hash);
        });
        insert.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(results)
}

super::sql::impl_store!(
    store = PgStore,
    db = sqlx::Postgres,
    migrator = sqlx::migrate!("migrations/postgres"),
    begin_write = "BEGIN",
    ilike = "ILIKE",
    table_exists = "SELECT COUNT(*) FROM pg_tables \
        WHERE schemaname = current_schema() AND tablename = $1",
    // Several batches commit in parallel, so one batch's wait for the disk (fsync of the WAL)
    // does not hold up the next.
    writers = crate::store::Writers::Tasks(4),
    kind = crate::store::DatabaseKind::Postgres,
    snapshot = snapshot,
    apply_writes = apply_writes,
);

/// PostgreSQL is copied by `pg_dump`, outside the server (see `service/backup.rs`).
async fn snapshot(_: &PgStore, _: &std::path::Path) -> StoreResult<()> {
    Err(StoreError::Unsupported(
        "a PostgreSQL database is copied with pg_dump, not by the store",
    ))
}
