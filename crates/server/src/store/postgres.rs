//! PostgreSQL, for several Tessera nodes sharing one database.
//!
//! Dialect notes: `ILIKE` gives case-insensitive search; whether a table exists is asked of
//! `pg_tables` in the connection's schema.
//!
//! Group commit ([`apply_writes`]) is shaped for many small transactions from several writers
//! and nodes at once (docs/benchmarks.md, "PostgreSQL"): a batch is four round trips whatever
//! its size (BEGIN, one set-based UPDATE of all its token advances, one statement inserting its
//! audit entries and moving its chain's head, COMMIT), each statement text fixed so that it is
//! prepared once per connection; and each writer appends to an audit chain of its own, so that
//! no row is shared by all writers and their commits (each waiting for the disk) overlap.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::batch::{self, Head};
use crate::crypto::AuditKey;
// StoreResult, WriteOp and WriteResult come with impl_store! below.

/// Batches committed at a time by one node, each on an audit chain of its own. Measured on
/// this project's 2-core machine (docs/benchmarks.md, "PostgreSQL"): more writers cut the
/// requests in flight into smaller batches, and a batch costs about the same whatever its size.
const WRITERS: usize = 2;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
    /// The same pool: PostgreSQL handles concurrent writers itself.
    writer: sqlx::PgPool,
    /// What the audit chain is hashed and its head sealed with.
    audit_key: AuditKey,
    /// The audit chain of each writer (claimed at its first append; `None` before, or after a
    /// failed commit left its head unknown).
    chains: std::sync::Arc<Vec<tokio::sync::Mutex<Option<Chain>>>>,
    /// Whether writers append to chains of their own (see [`Store::use_writer_chains`]), or
    /// to chain 1, one at a time.
    ///
    /// [`Store::use_writer_chains`]: crate::store::Store::use_writer_chains
    own_chains: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// An audit chain this process appends to, and its head as this process last wrote it: no one
/// else appends to it, so the head needs no reading and no lock.
#[derive(Debug, Clone)]
struct Chain {
    id: i64,
    head: Head,
}

impl PgStore {
    /// Opens a pool on `url`. Several hosts (`postgres://u:p@db1:5432,db2:5432/db`, as libpq
    /// takes them) make a cluster with failover: the pool connects to the one that takes writes
    /// (not in recovery), refuses connections to a standby, and a task moves the pool to the new
    /// primary when the one it uses stops answering or turns read-only (see [`follow_primary`]).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        audit_key: AuditKey,
    ) -> Result<PgStore, sqlx::Error> {
        let hosts = split_hosts(url)?;
        let several = hosts.len() > 1;
        let options = if several {
            writable_host(&hosts)
                .await
                .unwrap_or_else(|| hosts[0].clone())
        } else {
            hosts[0].clone()
        };
        let mut pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10));
        if several {
            pool = pool.after_connect(|conn, _| {
                Box::pin(async move {
                    let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                        .fetch_one(conn)
                        .await?;
                    if standby {
                        return Err(sqlx::Error::Protocol("the server is a standby".into()));
                    }
                    Ok(())
                })
            });
        }
        let pool = pool.connect_with(options).await?;
        if several {
            tokio::spawn(follow_primary(pool.clone(), hosts));
        }
        Ok(PgStore {
            writer: pool.clone(),
            pool,
            audit_key,
            chains: std::sync::Arc::new((0..WRITERS).map(|_| Default::default()).collect()),
            own_chains: Default::default(),
        })
    }

    /// A connection to write on.
    async fn write_conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, sqlx::Error> {
        self.writer.acquire().await
    }

    /// Claims a new audit chain: its head row (empty, linking to the chain's start, sealed) and
    /// its user index mark, in one statement. Chains are never reused, so no two writers ever
    /// append to one.
    async fn claim_chain(&self, now: i64) -> StoreResult<Chain> {
        let id: i64 = sqlx::query_scalar("SELECT nextval('audit_chain_id')")
            .fetch_one(&self.pool)
            .await?;
        let start = self.audit_key.chain_start(id);
        sqlx::query(
            "WITH h AS (INSERT INTO audit_head (id, seq, hash, seal, entry, node, started_at) \
             VALUES ($1, 0, $2, $3, 0, $4, $5) RETURNING id) \
             INSERT INTO audit_index_chains (chain, upto) SELECT id, 0 FROM h",
        )
        .bind(id)
        .bind(&start)
        .bind(self.audit_key.chain_seal(id, 0, &start))
        .bind(node_name())
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(Chain {
            id,
            head: (0, start),
        })
    }
}

/// The connect options of each host of `url`: one for a plain URL, several for
/// `scheme://userinfo@host1:port1,host2:port2/rest`.
fn split_hosts(url: &str) -> Result<Vec<PgConnectOptions>, sqlx::Error> {
    crate::config::one_url_per_host(url)
        .iter()
        .map(|u| PgConnectOptions::from_str(u))
        .collect()
}

/// The first host that answers and takes writes, asked in turn (2 s each at most).
async fn writable_host(hosts: &[PgConnectOptions]) -> Option<PgConnectOptions> {
    use sqlx::Connection as _;
    for options in hosts {
        let ask = async {
            let mut conn = sqlx::PgConnection::connect_with(options).await?;
            let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                .fetch_one(&mut conn)
                .await?;
            let _ = conn.close().await;
            Ok::<_, sqlx::Error>(!standby)
        };
        if let Ok(Ok(true)) = tokio::time::timeout(std::time::Duration::from_secs(2), ask).await {
            return Some(options.clone());
        }
    }
    None
}

/// Once a second: if the pool's server does not answer within a second or is a standby now,
/// the pool's new connections go to whichever host takes writes (the promoted standby after a
/// failover); connections to the old one fail and are dropped. Ends with the pool.
async fn follow_primary(pool: sqlx::PgPool, hosts: Vec<PgConnectOptions>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        let check = sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()").fetch_one(&pool);
        if let Ok(Ok(false)) = tokio::time::timeout(std::time::Duration::from_secs(1), check).await
        {
            continue;
        }
        if let Some(options) = writable_host(&hosts).await {
            tracing::warn!(
                host = options.get_host(),
                port = options.get_port(),
                "database: moving to the server that takes writes"
            );
            pool.set_connect_options(options);
        }
    }
}

/// Who claims a chain (kept with it, for the operator): host name and process id.
fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

/// Every advance of one round (see [`batch::advance_rounds`]) in one statement. The token rows
/// are locked first, in id order (the subquery), so that batches of several writers and nodes
/// never deadlock; each advance is the same compare-and-set as on SQLite
/// ([`batch::ADVANCE_ONE`]); the ids returned are the tokens that moved.
const ADVANCE_SET: &str = "UPDATE tokens t SET next_counter = u.next, drift = u.drift, \
    state = u.to_state, fail_count = 0, throttled_until = 0, last_used_at = u.now, \
    last_request = u.request, first_use_window = 0 \
    FROM (SELECT id FROM tokens WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE) l, \
    unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], \
    $7::text[], $8::bigint[], $9::text[]) \
    AS u(id, next, drift, to_state, now, matched, from_state, fails, request) \
    WHERE t.id = l.id AND t.id = u.id AND t.next_counter <= u.matched \
    AND t.state = u.from_state AND t.throttled_until <= u.now AND t.fail_count = u.fails \
    RETURNING t.id";

/// The batch's audit entries, in order, and its chain's head moved past them, in one statement;
/// the numbers come from the log's sequence in the entries' order. The head moves only if it is
/// still where the batch started (`moved` is 0 otherwise, and the batch is rolled back).
const APPEND_SET: &str = "WITH ins AS (INSERT INTO audit_log (chain, at, actor, action, target, \
    username, source, result, reason, prev_hash, hash) \
    SELECT $1, u.at, u.actor, u.action, u.target, u.username, u.source, u.result, u.reason, \
    u.prev_hash, u.hash FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], \
    $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[]) WITH ORDINALITY \
    AS u(at, actor, action, target, username, source, result, reason, prev_hash, hash, ord) \
    ORDER BY u.ord RETURNING seq), \
    h AS (UPDATE audit_head SET seq = $12, hash = $13, seal = $14, \
    entry = (SELECT MAX(seq) FROM ins) WHERE id = $1 AND seq = $15 RETURNING id) \
    SELECT seq, (SELECT COUNT(*) FROM h) AS moved FROM ins ORDER BY seq";

/// Group commit on PostgreSQL. Up to [`WRITERS`] batches of this node run at once, beside those
/// of other nodes, each on its own audit chain.
pub(super) async fn apply_writes(
    store: &PgStore,
    ops: &[WriteOp],
) -> StoreResult<Vec<WriteResult>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    if !store.own_chains.load(std::sync::atomic::Ordering::Relaxed) {
        return match write_batch(store, None, ops).await? {
            Some((results, _)) => Ok(results),
            None => Err(StoreError::Corrupt(
                "audit head changed under its lock".into(),
            )),
        };
    }
    // A free writer's chain; all busy (more batches than writers): wait for the first.
    let mut slot = match store.chains.iter().find_map(|c| c.try_lock().ok()) {
        Some(slot) => slot,
        None => store.chains[0].lock().await,
    };
    let now = ops
        .iter()
        .map(|op| match op {
            WriteOp::Advance { advance, .. } => advance.now,
            WriteOp::Audit(e) => e.at,
        })
        .next()
        .unwrap_or(0);
    // Twice at most: a head found moved (which only a bug or a hand-made change can do) gives
    // up the chain, and the batch is redone on a new one.
    for attempt in 0..2 {
        let chain = match slot.take() {
            Some(chain) => chain,
            None => store.claim_chain(now).await?,
        };
        // On an error the chain stays given up: whether the commit happened is not known.
        if let Some((results, head)) = write_batch(store, Some(&chain), ops).await? {
            *slot = Some(Chain { id: chain.id, head });
            return Ok(results);
        }
        tracing::warn!(
            chain = chain.id,
            attempt,
            "audit chain head moved under its writer; continuing on a new chain"
        );
    }
    Err(StoreError::Corrupt(
        "audit chain head moved under its writer".into(),
    ))
}

/// Turns writer chains on (the server).
fn writer_chains(store: &PgStore) {
    store
        .own_chains
        .store(true, std::sync::atomic::Ordering::Relaxed);
}

/// One batch's transaction on `chain` (`None`: chain 1, its head read and locked here): the
/// results and the chain's new head, or `None` when the head was not where this writer left it
/// (rolled back).
async fn write_batch(
    store: &PgStore,
    chain: Option<&Chain>,
    ops: &[WriteOp],
) -> StoreResult<Option<(Vec<WriteResult>, Head)>> {
    let mut tx = store.writer.begin().await?;
    let mut advanced = vec![false; ops.len()];
    for round in batch::advance_rounds(ops) {
        let mut ids = Vec::with_capacity(round.len());
        let (mut next, mut drift, mut to, mut now, mut matched, mut from, mut fails, mut request) = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        for &i in &round {
            let WriteOp::Advance { token, advance, .. } = &ops[i] else {
                continue;
            };
            ids.push(token.0);
            next.push(batch::next_counter(advance)?);
            drift.push(advance.drift);
            to.push(advance.to.as_str());
            now.push(advance.now);
            matched.push(advance.matched);
            from.push(advance.from.as_str());
            fails.push(advance.fails);
            request.push(crate::store::RequestPrint::column(advance.request.as_ref()));
        }
        let moved: Vec<i64> = sqlx::query_scalar(ADVANCE_SET)
            .bind(&ids)
            .bind(&next)
            .bind(&drift)
            .bind(&to)
            .bind(&now)
            .bind(&matched)
            .bind(&from)
            .bind(&fails)
            .bind(&request)
            .fetch_all(&mut *tx)
            .await?;
        // A round names each token once.
        for (&i, id) in round.iter().zip(&ids) {
            advanced[i] = moved.contains(id);
        }
    }
    let (chain_id, start) = match chain {
        Some(chain) => (chain.id, chain.head.clone()),
        None if batch::appends(ops, &advanced) => {
            let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
            (1, (row.try_get("seq")?, row.try_get("hash")?))
        }
        None => (1, (0, String::new())),
    };
    let (mut results, entries, head) = batch::chain(
        &store.audit_key,
        chain_id,
        ops,
        &advanced,
        Some(start.clone()),
    )?;
    let head = head.unwrap_or(start.clone());
    if !entries.is_empty() {
        let col = |f: fn(&crate::model::AuditEntry) -> &str| -> Vec<&str> {
            entries.iter().map(f).collect()
        };
        let at: Vec<i64> = entries.iter().map(|e| e.event.at).collect();
        let rows: Vec<(i64, i64)> = sqlx::query_as(APPEND_SET)
            .bind(chain_id)
            .bind(&at)
            .bind(col(|e| &e.event.actor))
            .bind(col(|e| &e.event.action))
            .bind(col(|e| &e.event.target))
            .bind(col(|e| &e.event.username))
            .bind(col(|e| &e.event.source))
            .bind(col(|e| &e.event.result))
            .bind(col(|e| &e.event.reason))
            .bind(col(|e| &e.prev_hash))
            .bind(col(|e| &e.hash))
            .bind(head.0)
            .bind(&head.1)
            .bind(store.audit_key.chain_seal(chain_id, head.0, &head.1))
            .bind(start.0)
            .fetch_all(&mut *tx)
            .await?;
        if rows.len() != entries.len() || rows.iter().any(|r| r.1 != 1) {
            tx.rollback().await?;
            return Ok(None);
        }
        // The entries carry their position in the chain; callers get their numbers.
        for r in &mut results {
            if let WriteResult::Advanced(_, Some(e)) | WriteResult::Audited(e) = r {
                let i = usize::try_from(e.seq - start.0 - 1)
                    .map_err(|_| StoreError::Corrupt("audit position".into()))?;
                e.seq = rows
                    .get(i)
                    .ok_or_else(|| StoreError::Corrupt("audit position".into()))?
                    .0;
            }
        }
    }
    tx.commit().await?;
    Ok(Some((results, head)))
}

super::sql::impl_store!(
    store = PgStore,
    db = sqlx::Postgres,
    migrator = sqlx::migrate!("migrations/postgres"),
    begin_write = "BEGIN",
    ilike = "ILIKE",
    table_exists = "SELECT COUNT(*) FROM pg_tables \
        WHERE schemaname = current_schema() AND tablename = $1",
    after_keying = "SELECT setval('audit_log_seq', (SELECT MAX(seq) FROM audit_log))",
    writers = crate::store::Writers::Tasks(WRITERS),
    writer_chains = writer_chains,
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

#[cfg(test)]
mod tests {
    #[test]
    fn several_hosts_make_one_url_each() {
        let hosts =
            super::split_hosts("postgres://u:p%40w@db1:5432,db2:6543/tessera?sslmode=disable")
                .unwrap();
        let got: Vec<(String, u16, Option<String>)> = hosts
            .iter()
            .map(|o| {
                (
                    o.get_host().to_owned(),
                    o.get_port(),
                    o.get_database().map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("db1".into(), 5432, Some("tessera".into())),
                ("db2".into(), 6543, Some("tessera".into()))
            ]
        );
        assert_eq!(hosts[1].get_username(), "u");
        assert_eq!(super::split_hosts("postgres://db/x").unwrap().len(), 1);
    }
}
