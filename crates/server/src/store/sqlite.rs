//! SQLite, the embedded default: one file in the data directory, WAL journal.
//!
//! Dialect notes: write transactions start with `BEGIN IMMEDIATE`, because a deferred transaction
//! that reads first and writes later fails with SQLITE_BUSY when another writer got there in
//! between; SQLite has no `FOR UPDATE` (the immediate transaction already holds the write lock);
//! SQLite's `LIKE` ignores ASCII case by itself.
//!
//! Writes go through one connection, held by the store behind a Tokio mutex. SQLite lets one
//! writer at a time in; with several connections writing, the losers wait in SQLite's busy
//! handler, which sleeps in steps of milliseconds. Queueing on one connection instead keeps the
//! waiting in Tokio, where it costs nothing, and lets reads run in parallel on the pool (WAL
//! readers never block). The connection is not in a pool because a pool tests every connection it
//! gets back with a ping, one more call to the connection's thread for every write.

use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use super::batch::{self, Head};
// StoreResult, WriteOp and WriteResult come with impl_store! below.

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    writer: std::sync::Arc<tokio::sync::Mutex<SqliteConnection>>,
    /// The audit chain's newest entry as this process last wrote it (see [`apply_writes`]).
    head_cache: std::sync::Arc<std::sync::Mutex<Option<Head>>>,
    /// The directory of a private scratch database, removed with the last clone (tests).
    scratch: Option<std::sync::Arc<Scratch>>,
}

/// A directory removed when dropped.
#[derive(Debug)]
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
        //
        // Pooled connections are not pinged before use (`test_before_acquire`): a local file does
        // not go away like a network peer, and each ping would cost a round trip to the
        // connection's thread on every request. The writer keeps more prepared statements, since
        // a batch's statement text depends on its size.
        let writer = options
            .clone()
            .statement_cache_capacity(1024)
            .pragma("wal_autocheckpoint", "10000")
            .connect()
            .await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
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
            writer: std::sync::Arc::new(tokio::sync::Mutex::new(writer)),
            head_cache: Default::default(),
            scratch: None,
        })
    }

    /// A private database in a new temporary directory, removed with the store (tests). Not in
    /// memory: each connection would get a database of its own.
    pub async fn scratch() -> Result<SqliteStore, sqlx::Error> {
        let name = crate::crypto::random_bytes(8)
            .map_err(|e| sqlx::Error::Io(std::io::Error::other(e.to_string())))?;
        let dir = std::env::temp_dir().join(format!(
            "tessera-store-{}",
            data_encoding::HEXLOWER.encode(&name)
        ));
        std::fs::create_dir_all(&dir)?;
        let scratch = std::sync::Arc::new(Scratch(dir));
        let url = format!("sqlite://{}", scratch.0.join("t.db").display());
        let mut store = SqliteStore::connect(&url, 4, false).await?;
        store.scratch = Some(scratch);
        Ok(store)
    }

    /// The connection all writes go through.
    async fn write_conn(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, SqliteConnection>, sqlx::Error> {
        Ok(self.writer.lock().await)
    }
}

/// Group commit on SQLite. sqlx runs every statement on the connection's own thread, and each
/// call there and back costs two thread switches, so a batch is sent in as few calls as possible,
/// several statements per call:
///
/// 1. `BEGIN IMMEDIATE`; the first advance of every token, all in one `UPDATE ... RETURNING`;
///    the audit head, if it is not remembered from the last batch;
/// 2. (only when a token has several advances in the batch: those one by one);
/// 3. the audit head moved, the batch's entries inserted, `COMMIT`.
///
/// Only one batch runs at a time (one writer connection), so the head this process wrote last is
/// remembered. Another process (the CLI) may have appended since: the head is moved only on the
/// condition that it is still where this batch started, and the entries' `hash` column is bound
/// as `CASE WHEN changes() = 1 THEN ... END`, so that when the head did not move the insert
/// fails on `NOT NULL` and `COMMIT` never runs. The batch is then rolled back and retried once
/// with the head read inside the transaction.
pub(super) async fn apply_writes(
    store: &SqliteStore,
    ops: &[WriteOp],
) -> StoreResult<Vec<WriteResult>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = store.writer.lock().await;
    let mut attempt = store.head_cache.lock().ok().and_then(|c| c.clone());
    loop {
        let trusted = attempt.is_some();
        match write_batch(&mut conn, ops, attempt.take()).await {
            Ok((results, head)) => {
                if head.is_some()
                    && let Ok(mut c) = store.head_cache.lock()
                {
                    *c = head;
                }
                return Ok(results);
            }
            Err(e) => {
                // The transaction may still be open: end it (an error here only means it was not).
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                if let Ok(mut c) = store.head_cache.lock() {
                    *c = None;
                }
                if !trusted {
                    return Err(e);
                }
            }
        }
    }
}

/// One attempt of [`apply_writes`]; on error the caller rolls back.
async fn write_batch(
    conn: &mut SqliteConnection,
    ops: &[WriteOp],
    mut head: Option<Head>,
) -> StoreResult<(Vec<WriteResult>, Option<Head>)> {
    let (firsts, repeats) = batch::advances(ops);
    let mut advanced = vec![false; ops.len()];
    let mut begun = false;
    if !firsts.is_empty() || head.is_none() {
        // Rows come back as (id) for advanced tokens, (seq, hash) for the head.
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new("BEGIN IMMEDIATE; ");
        if !firsts.is_empty() {
            let mut rows = Vec::with_capacity(firsts.len());
            for &i in &firsts {
                if let WriteOp::Advance { token, advance, .. } = &ops[i] {
                    rows.push((token.0, batch::next_counter(advance)?, advance));
                }
            }
            q.push("WITH v(tid, nxt, drift, to_state, at, matched, from_state) AS (");
            q.push_values(&rows, |mut b, (id, next, adv)| {
                b.push_bind(*id)
                    .push_bind(*next)
                    .push_bind(adv.drift)
                    .push_bind(adv.to.as_str())
                    .push_bind(adv.now)
                    .push_bind(adv.matched)
                    .push_bind(adv.from.as_str());
            });
            q.push(") ")
                .push(batch::ADVANCE_MANY)
                .push(" RETURNING tokens.id AS id, NULL AS seq, NULL AS hash; ");
        }
        if head.is_none() {
            q.push("SELECT NULL AS id, seq, hash FROM audit_head WHERE id = 1");
        }
        let rows = q.build().fetch_all(&mut *conn).await?;
        begun = true;
        let mut changed = std::collections::HashSet::new();
        for row in &rows {
            match row.try_get::<Option<i64>, _>("id")? {
                Some(id) => {
                    changed.insert(id);
                }
                None => head = Some((row.try_get("seq")?, row.try_get("hash")?)),
            }
        }
        for &i in &firsts {
            if let WriteOp::Advance { token, .. } = &ops[i] {
                advanced[i] = changed.contains(&token.0);
            }
        }
    }
    for i in repeats {
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
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1;
    }
    let start = head.clone();
    let (results, entries, head) = batch::chain(ops, &advanced, head)?;
    let mut q =
        sqlx::QueryBuilder::<sqlx::Sqlite>::new(if begun { "" } else { "BEGIN IMMEDIATE; " });
    if let (Some((seq, hash)), Some((old_seq, old_hash)), false) =
        (&head, &start, entries.is_empty())
    {
        q.push("UPDATE audit_head SET seq = ")
            .push_bind(*seq)
            .push(", hash = ")
            .push_bind(hash)
            .push(" WHERE id = 1 AND seq = ")
            .push_bind(*old_seq)
            .push(" AND hash = ")
            .push_bind(old_hash)
            .push("; ")
            .push(batch::INSERT_AUDIT);
        q.push_values(&entries, |mut b, a| {
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
                .push_unseparated(", CASE WHEN changes() = 1 THEN ")
                .push_bind_unseparated(&a.hash)
                .push_unseparated(" END");
        });
        q.push("; ");
    } else if !begun {
        // Nothing was written.
        return Ok((results, None));
    }
    q.push("COMMIT");
    q.build().execute(&mut *conn).await?;
    Ok((results, (!entries.is_empty()).then_some(head).flatten()))
}

super::sql::impl_store!(
    store = SqliteStore,
    db = sqlx::Sqlite,
    migrator = sqlx::migrate!("migrations/sqlite"),
    begin_write = "BEGIN IMMEDIATE",
    ilike = "LIKE",
    // One write transaction at a time is all SQLite allows.
    writer_tasks = 1,
    apply_writes = apply_writes,
);

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    use crate::model::*;
    use crate::store::{Advance, Store, WriteOp, WriteResult};

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

    /// The remembered head is stale in a way the sequence numbers do not show (the head row was
    /// changed beside this process): the batch, advances included, is rolled back and redone on
    /// the head as it is, and nothing is applied twice.
    #[tokio::test]
    async fn a_batch_on_a_stale_head_is_rolled_back_and_redone() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let s = super::SqliteStore::connect(&url, 2, false).await.unwrap();
        s.migrate().await.unwrap();
        let user = s
            .insert_user(
                &NewUser {
                    username: "ann".into(),
                    display_name: "Ann".into(),
                    email: "ann@example.com".into(),
                    phone: String::new(),
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
        assert_eq!(s.audit_head().await.unwrap(), (3, entries[2].hash.clone()));
        // The next batch trusts the head it wrote.
        s.append_audit(&event(4)).await.unwrap();
        assert_eq!(s.audit_head().await.unwrap().0, 4);
    }
}
