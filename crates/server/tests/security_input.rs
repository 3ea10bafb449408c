//! Security regressions of input handling (docs/security.md): a NUL character (U+0000) in a
//! username, password, path segment, query or form field is refused as invalid input on every
//! path and both databases (it gave 500 on PostgreSQL, with an ERROR in the log and no audit row),
//! and the server stays whole afterwards.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod web_support;

use common::validate::{Fixture, PASSWORD};
use common::{Db, databases};
use reqwest::Method;
use serde_json::{Value, json};
use tessera_server::model::AppMode;
use web_support::{Browser, hidden};

/// `(status, error code)` of a JSON call without a session.
async fn anonymous(f: &Fixture, method: Method, path: &str, body: Value) -> (u16, String) {
    let r =
        f.s.client
            .request(method, f.s.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (status, v["error"]["code"].as_str().unwrap_or("").to_owned())
}

fn assert_refused(db: Db, what: &str, (status, code): (u16, String)) {
    assert_eq!(
        (status, code.as_str()),
        (400, "invalid_input"),
        "{db:?}: {what}"
    );
}

#[tokio::test]
async fn nul_in_api_input_is_invalid_input_on_every_path() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::PasswordAndOtp).await;
        f.user("ann", true).await;
        let ann_uri = f.token("ann", "hotp").await;
        let admin = f.s.admin_session("root").await;

        let login = |body: Value| anonymous(&f, Method::POST, "/api/v1/auth/login", body);
        assert_refused(
            db,
            "login username",
            login(json!({"username": "ro\u{0}ot", "password": "x"})).await,
        );
        assert_refused(
            db,
            "login password",
            login(json!({"username": "root", "password": "pass\u{0}"})).await,
        );

        for body in [
            json!({"username": "a\u{0}nn", "password": PASSWORD, "otp": "123456"}),
            json!({"username": "ann", "password": "\u{0}", "otp": "123456"}),
            json!({"username": "ann", "password": PASSWORD, "otp": "12345\u{0}"}),
        ] {
            let (status, v) = f.validate(body.clone()).await;
            assert_eq!(
                (status, v["error"]["code"].as_str()),
                (400, Some("invalid_input")),
                "{db:?}: validate {body}"
            );
        }

        let calls: [(Method, &str, Option<Value>); 6] = [
            (
                Method::POST,
                "/api/v1/users",
                Some(json!({"username": "eve\u{0}", "password": "long enough password"})),
            ),
            (
                Method::POST,
                "/api/v1/users",
                Some(json!({"username": "eve", "display_name": "E\u{0}ve"})),
            ),
            (Method::GET, "/api/v1/users/ann%00", None),
            (Method::DELETE, "/api/v1/users/a%00nn", None),
            (Method::GET, "/api/v1/audit?username=ann%00", None),
            (Method::GET, "/api/v1/tokens?limit=%00", None),
        ];
        for (method, path, body) in calls {
            let (status, v) = f.s.call(&admin, method.clone(), path, body).await;
            assert_eq!(
                (status, v["error"]["code"].as_str()),
                (400, Some("invalid_input")),
                "{db:?}: {method} {path}"
            );
        }

        // Nothing was created or lost, and the server still answers correctly.
        let (status, _) =
            f.s.call(&admin, Method::GET, "/api/v1/users/eve", None)
                .await;
        assert_eq!(status, 404, "{db:?}: no user from a refused request");
        let (status, _) =
            f.s.call(&admin, Method::GET, "/api/v1/users/ann", None)
                .await;
        assert_eq!(status, 200, "{db:?}: ann is still there");
        let k = tessera_otp::KeyUri::parse(&ann_uri).unwrap();
        let code = k.hotp().unwrap().generate(&k.secret, 1);
        let result = f
            .result(json!({"username": "ann", "password": PASSWORD, "otp": code}))
            .await;
        assert_eq!(
            result, "accept",
            "{db:?}: validation works after the refusals"
        );
    }
}

#[tokio::test]
async fn a_backslash_before_u0000_is_text_not_nul() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::PasswordAndOtp).await;
        let admin = f.s.admin_session("root").await;
        let body = json!({"username": "eve", "display_name": "back\\u0000slash"});
        let (status, v) =
            f.s.call(&admin, Method::POST, "/api/v1/users", Some(body))
                .await;
        assert_eq!(status, 201, "{db:?}: {v}");
        assert_eq!(v["display_name"], "back\\u0000slash", "{db:?}");
    }
}

#[tokio::test]
async fn nul_in_web_forms_and_links_is_refused_with_a_page() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::PasswordAndOtp).await;
        f.user("ann", true).await;
        let mut b = Browser::new(&f.s);
        let page = b.get("/login").await;
        let value = hidden(&page.body, "login_form");
        for (user, password) in [("an\u{0}n", PASSWORD), ("ann", "pa\u{0}ss")] {
            let page = b
                .post(
                    "/login",
                    &[
                        ("login_form", &value),
                        ("username", user),
                        ("password", password),
                        ("code", "123456"),
                    ],
                )
                .await;
            assert_eq!(page.status, 400, "{db:?}: web login");
            assert!(page.body.contains("U+0000"), "{db:?}: {}", page.body);
        }
        let page = b.post("/reset", &[("username", "ann\u{0}")]).await;
        assert_eq!(page.status, 400, "{db:?}: reset request");
        let page = b.post("/recover", &[("username", "\u{0}")]).await;
        assert_eq!(page.status, 400, "{db:?}: recovery start");
        for path in [
            "/enroll/abc%00def",
            "/reset/%00",
            "/not-me/x%00",
            "/login?hint=%00",
        ] {
            let page = b.get(path).await;
            assert_eq!(page.status, 400, "{db:?}: {path}");
        }
        // German browsers get the German text.
        let r =
            f.s.client
                .get(f.s.url("/enroll/a%00"))
                .header("accept-language", "de")
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("NUL-Zeichen"), "{db:?}");
    }
}

async fn readyz(s: &common::TestServer) -> u16 {
    s.client
        .get(s.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A database that answers reads but takes no writes is not ready. On PostgreSQL this is the
/// real case of a read-only database (a standby, or `default_transaction_read_only`); on SQLite a
/// trigger refuses the write, standing in for a full disk or a read-only file system.
#[tokio::test]
async fn readyz_reports_a_database_that_cannot_write() {
    for db in databases() {
        let s = common::TestServer::spawn_with(db, |_| {}).await;
        assert_eq!(readyz(&s).await, 200, "{db:?}");
        match db {
            Db::Sqlite => {
                let conn = rusqlite::Connection::open(s.data_dir().join("tessera.db")).unwrap();
                conn.execute_batch(
                    "CREATE TRIGGER no_writes BEFORE UPDATE ON readiness \
                     BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;",
                )
                .unwrap();
            }
            Db::Postgres => {
                let url = s.app.service.config().database.url.clone();
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::query(
                    "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET \
                     default_transaction_read_only = on', current_database()); END $$",
                )
                .execute(&pool)
                .await
                .unwrap();
                // The server's connections reconnect and come back read-only.
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                .execute(&pool)
                .await
                .unwrap();
            }
        }
        // Reads still work (after the pool has replaced its closed connections) ...
        let mut read = false;
        for _ in 0..20 {
            if s.app.service.store().user_by_name("nobody").await.is_ok() {
                read = true;
                break;
            }
        }
        assert!(read, "{db:?}: reads work");
        // ... but the server is not ready.
        assert_eq!(readyz(&s).await, 503, "{db:?}");
        assert_eq!(readyz(&s).await, 503, "{db:?}: stays unready");
    }
}

/// The database file holds sealed seeds and password hashes: 0600 like the key file, also when
/// an older version created it readable by others.
#[tokio::test]
async fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let s = common::TestServer::spawn().await;
    let db = s.data_dir().join("tessera.db");
    assert_eq!(mode(&db), 0o600, "new database file");
    let wal = s.data_dir().join("tessera.db-wal");
    if wal.exists() {
        assert_eq!(mode(&wal), 0o600, "its WAL");
    }
    assert_eq!(mode(&s.data_dir().join("tessera.key")), 0o600, "key file");
    // A database left readable by others is tightened the next time it is opened.
    let data = s.data_dir();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = common::run_cli(&data, &["user", "list"], None);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(mode(&db), 0o600, "tightened");
}

/// A deleted token's sealed seed does not stay in the SQLite file's free space (`secure_delete`):
/// once the deletion is checkpointed, the bytes are gone from `tessera.db`.
#[tokio::test]
async fn a_deleted_tokens_sealed_seed_leaves_the_database_file() {
    let f = Fixture::new(Db::Sqlite, AppMode::PasswordAndOtp).await;
    f.user("ann", true).await;
    f.token("ann", "hotp").await;
    let svc = &f.s.app.service;
    let id = svc
        .list_tokens(
            &tessera_server::service::Actor::operator(),
            Some("ann"),
            0,
            0,
        )
        .await
        .unwrap()[0]
        .id;
    let sealed = svc.store().token(id).await.unwrap().unwrap().sealed_secret;
    let file = f.s.data_dir().join("tessera.db");
    let in_file = || {
        let bytes = std::fs::read(&file).unwrap();
        bytes.windows(sealed.len()).any(|w| w == sealed.as_slice())
    };
    // The checkpoint task copies the WAL into the file every 100 ms.
    let mut seen = false;
    for _ in 0..50 {
        if in_file() {
            seen = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(seen, "the sealed seed reached the database file");
    svc.delete_token(&tessera_server::service::Actor::operator(), id)
        .await
        .unwrap();
    let mut gone = false;
    for _ in 0..50 {
        if !in_file() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        gone,
        "the deleted seed's bytes are overwritten, not left in free space"
    );
}
