//! What the command-line tests share: a fresh installation driven through the real binary,
//! codes from `oathtool` and totp-rs, SQL run on the database from outside, and the audit
//! actions of a listing.
#![allow(dead_code)] // each test binary uses a different part
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tessera_otp::KeyUri;

use crate::common::{Db, run_cli_env, stderr, stdout};
pub const PASSWORD: &str = "correct horse battery staple";

/// A fresh installation, driven through the binary.
pub struct Tessera {
    pub dir: tempfile::TempDir,
    /// The URL of this installation's own PostgreSQL database; `None`: SQLite in the data
    /// directory.
    pub postgres: Option<String>,
}

impl Tessera {
    pub fn new() -> Tessera {
        Self::on(Db::Sqlite)
    }

    /// A fresh installation on `db` (PostgreSQL: a new database on the test server).
    pub fn on(db: Db) -> Tessera {
        let postgres = (db == Db::Postgres).then(|| {
            let base = tessera_server::testing::postgres_url().expect("postgres configured");
            runtime().block_on(tessera_server::testing::fresh_postgres_database(&base))
        });
        let t = Tessera {
            dir: tempfile::tempdir().unwrap(),
            postgres,
        };
        // An empty data directory, as one made for Tessera (a volume, say): the first command
        // creates the installation in it. A directory that does not exist is refused.
        std::fs::create_dir(t.data_dir()).unwrap();
        t
    }

    /// Which database this installation uses.
    pub fn db_kind(&self) -> Db {
        if self.postgres.is_some() {
            Db::Postgres
        } else {
            Db::Sqlite
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn db(&self) -> PathBuf {
        self.data_dir().join("tessera.db")
    }

    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let env: Vec<(&str, &str)> = self
            .postgres
            .iter()
            .map(|url| ("TESSERA_DATABASE__URL", url.as_str()))
            .collect();
        let out = run_cli_env(&self.data_dir(), args, stdin, &env);
        assert!(
            !stderr(&out).contains("panicked"),
            "tessera {args:?} panicked: {}",
            stderr(&out)
        );
        out
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None)
    }

    pub fn ok_with(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "tessera {args:?} failed: {}",
            stderr(&out)
        );
        stdout(&out)
    }

    /// Runs a command with `--json` that must succeed and parses its stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// How many entries a `--json` listing shows: the `items` of a `list` command, or the array
    /// `audit list` prints.
    pub fn count(&self, args: &[&str]) -> usize {
        let listing = self.json(args);
        listing
            .get("items")
            .unwrap_or(&listing)
            .as_array()
            .unwrap()
            .len()
    }

    /// Runs a command that must fail with a service error `code` (exit 1) and returns stderr.
    pub fn fails(&self, args: &[&str], stdin: Option<&str>, code: &str) -> String {
        let out = self.run(args, stdin);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "tessera {args:?} should fail with exit 1: {err}"
        );
        assert!(
            err.contains(&format!("error ({code}): ")),
            "tessera {args:?} should report {code}: {err}"
        );
        assert!(stdout(&out).is_empty(), "a failed command printed a result");
        err
    }

    pub fn add_user(&self, name: &str) {
        let email = format!("{name}@example.com");
        let args = ["user", "add", name, "--email", &email, "--password-stdin"];
        self.ok_with(&args, Some(&format!("{PASSWORD}\n")));
    }

    /// `token add USER --json ARGS`: the token's id and its Key URI.
    pub fn add_token(&self, user: &str, args: &[&str]) -> (String, KeyUri) {
        let mut all = vec!["token", "add", user];
        all.extend_from_slice(args);
        let created = self.json(&all);
        assert_eq!(created["state"], "pending");
        assert!(created["serial"].is_string());
        let uri = KeyUri::parse(created["otpauth_uri"].as_str().unwrap()).unwrap();
        (created["id"].to_string(), uri)
    }
}

/// The current TOTP code according to `oathtool`.
pub fn oathtool_totp(uri: &KeyUri) -> String {
    oathtool(&["--totp", "-b", &uri.secret.to_base32()])
}

/// The HOTP code for `counter` according to `oathtool`.
pub fn oathtool_hotp(uri: &KeyUri, counter: u64) -> String {
    let counter = counter.to_string();
    oathtool(&["--hotp", "-c", &counter, "-b", &uri.secret.to_base32()])
}

pub fn oathtool(args: &[&str]) -> String {
    let out = Command::new("oathtool")
        .args(args)
        .output()
        .expect("oathtool is installed (.ci/install-tools)");
    assert!(out.status.success(), "oathtool failed: {}", stderr(&out));
    stdout(&out).trim().to_owned()
}

/// The current TOTP code according to totp-rs.
pub fn totp_rs_code(uri: &KeyUri) -> String {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(uri.secret.as_bytes().to_vec())
        .build()
        .unwrap()
        .generate_current()
        .to_string()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Tessera {
    /// Runs SQL statements on the installation's database from outside Tessera, whichever
    /// database it is.
    pub fn sql(&self, statements: &[&str]) {
        use sqlx::Connection as _;
        let Some(url) = &self.postgres else {
            return sql(&self.db(), statements);
        };
        runtime().block_on(async {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            for statement in statements {
                // The test's own statements, no outside input.
                let statement = sqlx::AssertSqlSafe(statement.to_string());
                sqlx::query(statement).execute(&mut conn).await.unwrap();
            }
            conn.close().await.unwrap();
        });
    }

    /// Creates the database with the migrations whose file names sort before `before` only, as
    /// an older release left it (SQLite: in a new data directory).
    pub fn old_schema(&self, before: &str) {
        use sqlx::Connection as _;
        let dialect = if self.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        };
        let all = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        let old = self.dir.path().join("old-migrations");
        std::fs::create_dir_all(&old).unwrap();
        for file in std::fs::read_dir(&all).unwrap() {
            let file = file.unwrap();
            let name = file.file_name().into_string().unwrap();
            if name.as_str() < before {
                std::fs::copy(file.path(), old.join(&name)).unwrap();
            }
        }
        runtime().block_on(async {
            let migrator = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();
            if let Some(url) = &self.postgres {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                migrator.run(&mut conn).await.unwrap();
            } else {
                std::fs::create_dir_all(self.data_dir()).unwrap();
                let options = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(self.db())
                    .create_if_missing(true);
                let mut conn = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                migrator.run(&mut conn).await.unwrap();
            }
        });
    }

    /// Every row of the audit log as stored, oldest first.
    pub fn audit_rows(&self) -> Vec<AuditRow> {
        use sqlx::Connection as _;
        const SELECT: &str = "SELECT seq, at, actor, action, target, username, source, result, \
            reason, prev_hash, hash FROM audit_log ORDER BY seq";
        runtime().block_on(async {
            if let Some(url) = &self.postgres {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_as(SELECT).fetch_all(&mut conn).await.unwrap()
            } else {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(self.db());
                let mut conn = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                sqlx::query_as(SELECT).fetch_all(&mut conn).await.unwrap()
            }
        })
    }
}

/// One row of `audit_log`, read with plain SQL.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub username: String,
    pub source: String,
    pub result: String,
    pub reason: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Quotes a text for an SQL statement a test writes itself.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Runs SQL statements on a database file from outside Tessera.
pub fn sql(db: &Path, statements: &[&str]) {
    use sqlx::Connection as _;
    runtime().block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .unwrap();
        for statement in statements {
            // The test's own statements, no outside input.
            let statement = sqlx::AssertSqlSafe(statement.to_string());
            sqlx::query(statement).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
    });
}

pub fn actions(entries: &Value) -> Vec<&str> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}
