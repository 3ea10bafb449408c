//! End-to-end harness: the real app on `127.0.0.1:0` with a temporary data directory, its own
//! clock, and (when `TESSERA_TEST_POSTGRES_URL` is set and asked for) its own PostgreSQL database.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod radius;
pub mod smtp;
pub mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use tessera_server::clock::FixedClock;
use tessera_server::{App, Config};

/// A running server. Dropping it stops the server task and removes the data directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub app: App,
    pub clock: FixedClock,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// The databases to run an end-to-end test against: SQLite always, PostgreSQL when configured.
pub fn databases() -> Vec<Db> {
    let mut v = vec![Db::Sqlite];
    if tessera_server::testing::postgres_url().is_some() {
        v.push(Db::Postgres);
    }
    v
}

impl TestServer {
    /// A server on SQLite in a fresh temporary data directory.
    pub async fn spawn() -> TestServer {
        Self::spawn_with(Db::Sqlite, |_| {}).await
    }

    /// A server on the given database, with the config adjusted by `tweak`.
    pub async fn spawn_with(db: Db, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        // Most tests act as an admin who has no token; the policy that admins enroll one
        // (`auth.admin_second_factor`, on by default) is tested on its own in tests/security_login.rs.
        config.auth.admin_second_factor = false;
        // Times on pages and in mails in a known zone, whatever the machine's.
        config.server.time_zone = "UTC".into();
        if db == Db::Postgres {
            let base = tessera_server::testing::postgres_url().expect("postgres configured");
            config.database.url = tessera_server::testing::fresh_postgres_database(&base).await;
        }
        tweak(&mut config);
        // 2023-11-14T22:13:20Z: a fixed, known time; tests move it with `clock.advance`.
        Self::start(config, FixedClock::new(1_700_000_000), dir).await
    }

    /// Another node of this server: the same database, key file and clock, its own data
    /// directory and listener (two `tessera serve` sharing one PostgreSQL).
    pub async fn node(&self) -> TestServer {
        let first = self.app.service.config().clone();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config {
            data_dir: dir.path().join("data"),
            keys: tessera_server::config::KeysConfig {
                key_file: first.key_file(),
            },
            ..first
        };
        Self::start(config, self.clock.clone(), dir).await
    }

    async fn start(config: Config, clock: FixedClock, dir: tempfile::TempDir) -> TestServer {
        let (app, _) = tessera_server::build(config, Arc::new(clock.clone()))
            .await
            .expect("build app");
        app.use_writer_chains();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = app.router();
        // The listener of `tessera serve`, with its timeouts and connection cap.
        let limits = tessera_server::http::serve::Limits::from_config(&app.service.config().server);
        let task = tokio::spawn(tessera_server::http::serve::serve(
            listener,
            router,
            limits,
            std::future::pending(),
            std::time::Duration::ZERO,
        ));
        TestServer {
            addr,
            base: format!("http://{addr}"),
            app,
            clock,
            dir,
            client: reqwest::Client::new(),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The built `tessera` binary.
pub fn tessera_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tessera")
}

/// Runs `tessera ARGS` with `data_dir`, feeding `stdin`, and returns its output.
pub fn run_cli(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    run_cli_env(data_dir, args, stdin, &[])
}

/// [`run_cli`] with extra environment variables (e.g. `TESSERA_DATABASE__URL`).
pub fn run_cli_env(
    data_dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(tessera_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("TESSERA_CONFIG")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tessera");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    } else {
        drop(child.stdin.take());
    }
    child.wait_with_output().expect("wait tessera")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// An independent TOTP implementation (totp-rs) computing the code for `time` from a Key URI.
pub fn oracle_totp(uri: &str, time: u64) -> String {
    let parsed = tessera_otp::KeyUri::parse(uri).expect("valid Key URI");
    let tessera_otp::UriKind::Totp { period } = parsed.kind else {
        panic!("not a TOTP URI");
    };
    let algorithm = match parsed.algorithm {
        tessera_otp::HashAlgorithm::Sha1 => totp_rs::Algorithm::SHA1,
        tessera_otp::HashAlgorithm::Sha256 => totp_rs::Algorithm::SHA256,
        tessera_otp::HashAlgorithm::Sha512 => totp_rs::Algorithm::SHA512,
    };
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(u8::try_from(parsed.digits).expect("digits"))
        .with_step_duration(period)
        .with_skew(0)
        .with_secret(parsed.secret.as_bytes().to_vec())
        .build()
        .expect("totp-rs accepts the parameters")
        .generate(time)
        .to_string()
}

pub const ADMIN_PASSWORD: &str = "correct horse battery";

impl TestServer {
    /// Creates an admin (as the local operator) and logs in through the API; returns the
    /// session token.
    pub async fn admin_session(&self, name: &str) -> String {
        use tessera_server::service::{Actor, CreateUser};
        self.app
            .service
            .create_user(
                &Actor::operator(),
                CreateUser {
                    username: name.to_owned(),
                    role: Some(tessera_server::model::Role::Admin),
                    password: Some(tessera_server::model::Password::new(ADMIN_PASSWORD)),
                    ..CreateUser::default()
                },
            )
            .await
            .expect("create admin");
        let r = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": name, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 200, "admin login");
        let body: serde_json::Value = r.json().await.expect("json");
        body["token"].as_str().expect("token").to_owned()
    }

    /// Sends a JSON request with the session token; returns status and body.
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        (status, json)
    }
}
