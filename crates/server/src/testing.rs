//! Helpers shared by the unit, contract and end-to-end tests: fresh stores on SQLite and, when
//! `TESSERA_TEST_POSTGRES_URL` is set, on PostgreSQL (each caller gets its own new database).
//! A set URL that does not connect is a failure, never a silent skip.

use std::sync::Arc;

use sqlx::Connection as _;

use crate::crypto::AuditKey;
use crate::store::{PgStore, SqliteStore, Store};

/// The audit key every store made here hashes with, so that tests can check the chain.
pub fn audit_key() -> AuditKey {
    AuditKey::from_bytes(b"tessera tests: not a real key...").expect("a 32-byte key")
}

/// Migrates a store made here and keys its (empty) audit chain, as `build` does.
async fn prepare(name: &str, store: &dyn Store) {
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("{name}: migrate: {e}"));
    store
        .key_audit_chain(0)
        .await
        .unwrap_or_else(|e| panic!("{name}: key the audit chain: {e}"));
}

/// The PostgreSQL server URL for tests, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("TESSERA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// Creates a new, empty PostgreSQL database on the test server and returns its URL.
///
/// # Panics
/// When the test server is configured but cannot be reached: the run must fail, not skip.
pub async fn fresh_postgres_database(base_url: &str) -> String {
    let mut conn = sqlx::PgConnection::connect(base_url)
        .await
        .unwrap_or_else(|e| panic!("TESSERA_TEST_POSTGRES_URL is set but does not connect: {e}"));
    let mut suffix = [0u8; 8];
    crate::crypto::fill_random(&mut suffix).expect("random");
    let name = format!("tessera_t_{}", data_encoding::HEXLOWER.encode(&suffix));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = url::Url::parse(base_url).expect("TESSERA_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Every store the tests should run against, migrated and empty: `("sqlite", ..)` always,
/// `("postgres", ..)` when configured.
pub async fn stores() -> Vec<(&'static str, Arc<dyn Store>)> {
    let sqlite = SqliteStore::scratch(audit_key())
        .await
        .expect("sqlite scratch");
    let mut out: Vec<(&'static str, Arc<dyn Store>)> = vec![("sqlite", Arc::new(sqlite))];
    if let Some(base) = postgres_url() {
        let url = fresh_postgres_database(&base).await;
        out.push((
            "postgres",
            Arc::new(
                PgStore::connect(&url, 16, audit_key())
                    .await
                    .expect("pg connect"),
            ),
        ));
    }
    if let Some(base) = postgres_url() {
        // As the server runs it: each writer on an audit chain of its own.
        let url = fresh_postgres_database(&base).await;
        let store = PgStore::connect(&url, 16, audit_key())
            .await
            .expect("pg connect");
        store.use_writer_chains();
        out.push(("postgres-chains", Arc::new(store)));
    }
    for (name, store) in &out {
        prepare(name, store.as_ref()).await;
    }
    out
}

/// Two PostgreSQL stores on one new database, each with writer chains: two nodes. `None`
/// without `TESSERA_TEST_POSTGRES_URL`.
pub async fn postgres_nodes() -> Option<(Arc<dyn Store>, Arc<dyn Store>)> {
    let base = postgres_url()?;
    let url = fresh_postgres_database(&base).await;
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let store = PgStore::connect(&url, 16, audit_key())
            .await
            .expect("pg connect");
        store.use_writer_chains();
        nodes.push(Arc::new(store) as Arc<dyn Store>);
    }
    prepare("postgres", nodes[0].as_ref()).await;
    let b = nodes.pop()?;
    Some((nodes.pop()?, b))
}

/// A SQLite store on the file `t.db` in `dir` (several stores on one file: the server and a CLI).
pub async fn sqlite_file_store(dir: &std::path::Path) -> Arc<dyn Store> {
    let url = format!("sqlite://{}", dir.join("t.db").display());
    let s = SqliteStore::connect(&url, 8, false, audit_key())
        .await
        .expect("sqlite file");
    prepare("sqlite file", &s).await;
    Arc::new(s)
}
