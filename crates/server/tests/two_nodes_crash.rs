//! Two `tessera serve` processes on one PostgreSQL under load, as deployed (issue 23): node A
//! killed with SIGKILL mid-load, and the database itself restarted mid-load. Every code is
//! sent to both nodes at once, so a double accept would show as two accepts of one code; after
//! the disruption every code accepted before is sent again and must be refused; the audit log
//! still verifies. The restart uses a private PostgreSQL cluster started by the test (initdb and
//! pg_ctl on a port of its own), never the machine's shared one. PostgreSQL only: skipped
//! without `TESSERA_TEST_POSTGRES_URL` (and the restart without the PostgreSQL server binaries).
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tessera_otp::KeyUri;
use tessera_server::clock::SystemClock;
use tessera_server::model::{AppMode, Role};
use tessera_server::service::{Actor, AddToken, CreateApp, CreateUser};

/// Tokens under load; each is used by one task, so its codes go out in order.
const TOKENS: usize = 16;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `tessera serve` process.
struct Node {
    child: Child,
    base: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Users, tokens and an application made in `url`'s database with the key file `key`; returns
/// the API key and each token's Key URI.
async fn prepare(url: &str, dir: &Path) -> (String, Vec<(String, String)>) {
    let config = config(url, &dir.join("prep"), &dir.join("tessera.key"));
    let (app, _) = tessera_server::build(config, Arc::new(SystemClock))
        .await
        .unwrap();
    let svc = &app.service;
    let key = svc
        .create_app(
            &Actor::operator(),
            CreateApp {
                name: "vpn".into(),
                mode: Some(AppMode::OtpOnly),
                passthrough: None,
            },
        )
        .await
        .unwrap()
        .api_key;
    let mut tokens = Vec::new();
    for n in 0..TOKENS {
        let name = format!("u{n}");
        svc.create_user(
            &Actor::operator(),
            CreateUser {
                username: name.clone(),
                role: Some(Role::User),
                ..CreateUser::default()
            },
        )
        .await
        .unwrap();
        let created = svc
            .add_token(
                &Actor::operator(),
                &name,
                AddToken {
                    kind: Some("hotp".parse().unwrap()),
                    ..AddToken::default()
                },
            )
            .await
            .unwrap();
        let uri = created.otpauth_uri.unwrap();
        svc.verify_first_code(&Actor::operator(), created.token.id, &code(&uri, 0))
            .await
            .unwrap();
        tokens.push((name, uri));
    }
    (key, tokens)
}

fn config(url: &str, data_dir: &Path, key: &Path) -> tessera_server::Config {
    let mut config = tessera_server::Config {
        data_dir: data_dir.to_owned(),
        ..tessera_server::Config::default()
    };
    config.database.url = url.to_owned();
    config.keys.key_file = key.to_owned();
    config
}

fn code(uri: &str, counter: u64) -> String {
    let k = KeyUri::parse(uri).unwrap();
    k.hotp().unwrap().generate(&k.secret, counter)
}

async fn node(url: &str, dir: &Path, name: &str) -> Node {
    let port = free_port();
    let data = dir.join(name);
    let child = Command::new(common::tessera_bin())
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env_remove("TESSERA_CONFIG")
        .env("TESSERA_DATABASE__URL", url)
        .env("TESSERA_KEYS__KEY_FILE", dir.join("tessera.key"))
        .env("TESSERA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
        .spawn()
        .unwrap();
    let node = Node {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if ready(&client, &node.base).await == Some(200) {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{name} did not become ready: {}",
        std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default()
    );
}

async fn ready(client: &reqwest::Client, base: &str) -> Option<u16> {
    let r = client
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    Some(r.status().as_u16())
}

/// What the load saw: codes accepted (token, counter), codes accepted twice.
#[derive(Default, Debug)]
struct Seen {
    accepted: Vec<(usize, u64)>,
    double: Vec<(usize, u64)>,
    errors: u64,
}

/// Sends the token's codes in order, each to every live node at once, until `stop`.
async fn load(
    client: reqwest::Client,
    key: String,
    bases: Arc<std::sync::Mutex<Vec<String>>>,
    token: usize,
    name: String,
    uri: String,
    stop: Arc<AtomicBool>,
) -> Seen {
    let mut seen = Seen::default();
    let mut counter = 1;
    while !stop.load(Ordering::Relaxed) {
        let body = json!({"username": name, "otp": code(&uri, counter)});
        let targets: Vec<String> = bases.lock().unwrap().clone();
        // To every node at once, each send a task of its own.
        let sends: Vec<_> = targets
            .iter()
            .map(|base| {
                let request = client
                    .post(format!("{base}/api/v1/validate"))
                    .bearer_auth(&key)
                    .timeout(Duration::from_secs(5))
                    .json(&body);
                tokio::spawn(async move {
                    let r = request.send().await.ok()?;
                    if r.status() != 200 {
                        return None;
                    }
                    let v: Value = r.json().await.ok()?;
                    Some(v["result"] == "accept")
                })
            })
            .collect();
        let mut accepts = 0;
        for send in sends {
            match send.await.unwrap() {
                Some(true) => accepts += 1,
                Some(false) => {}
                None => seen.errors += 1,
            }
        }
        if accepts > 1 {
            seen.double.push((token, counter));
        }
        if accepts > 0 {
            seen.accepted.push((token, counter));
        }
        // An unanswered code may still have been accepted: the next one is sent either way,
        // so a later code moves the counter past it.
        counter += 1;
    }
    seen
}

/// Starts the load on every token; returns the flag that stops it and the tasks.
fn start_load(
    key: &str,
    tokens: &[(String, String)],
    bases: &Arc<std::sync::Mutex<Vec<String>>>,
) -> (Arc<AtomicBool>, Vec<tokio::task::JoinHandle<Seen>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let client = reqwest::Client::new();
    let tasks = tokens
        .iter()
        .enumerate()
        .map(|(i, (name, uri))| {
            tokio::spawn(load(
                client.clone(),
                key.to_owned(),
                bases.clone(),
                i,
                name.clone(),
                uri.clone(),
                stop.clone(),
            ))
        })
        .collect();
    (stop, tasks)
}

/// Stops the load; every code accepted is sent again to `base` and must be refused.
async fn finish(
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Seen>>,
    key: &str,
    tokens: &[(String, String)],
    base: &str,
) -> usize {
    stop.store(true, Ordering::Relaxed);
    let client = reqwest::Client::new();
    let mut accepted = 0;
    for t in tasks {
        let seen = t.await.unwrap();
        assert!(seen.double.is_empty(), "accepted twice: {:?}", seen.double);
        accepted += seen.accepted.len();
        for (token, counter) in seen.accepted {
            let (name, uri) = &tokens[token];
            let r = client
                .post(format!("{base}/api/v1/validate"))
                .bearer_auth(key)
                .json(&json!({"username": name, "otp": code(uri, counter)}))
                .send()
                .await
                .unwrap();
            let v: Value = r.json().await.unwrap();
            assert_eq!(
                v["result"], "reject",
                "{name} counter {counter} accepted again"
            );
        }
    }
    accepted
}

fn verify_audit(url: &str, dir: &Path) {
    let out = Command::new(common::tessera_bin())
        .arg("--data-dir")
        .arg(dir.join("prep"))
        .args(["audit", "verify"])
        .env_remove("TESSERA_CONFIG")
        .env("TESSERA_DATABASE__URL", url)
        .env("TESSERA_KEYS__KEY_FILE", dir.join("tessera.key"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Node A is killed (SIGKILL) under load: B goes on, no code accepted before is accepted
/// again, and A's chain verifies up to its last commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_a_killed_mid_load_leaves_nothing_replayable() {
    let Some(base) = tessera_server::testing::postgres_url() else {
        return;
    };
    let url = tessera_server::testing::fresh_postgres_database(&base).await;
    let dir = tempfile::tempdir().unwrap();
    let (key, tokens) = prepare(&url, dir.path()).await;
    let mut a = node(&url, dir.path(), "a").await;
    let b = node(&url, dir.path(), "b").await;
    let bases = Arc::new(std::sync::Mutex::new(vec![a.base.clone(), b.base.clone()]));
    let (stop, tasks) = start_load(&key, &tokens, &bases);
    tokio::time::sleep(Duration::from_secs(2)).await;
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    bases.lock().unwrap().retain(|x| x != &a.base);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let accepted = finish(stop, tasks, &key, &tokens, &b.base).await;
    assert!(accepted > 0);
    verify_audit(&url, dir.path());
}

/// A private PostgreSQL cluster (initdb, pg_ctl) in `dir` on its own port, run as the
/// `postgres` user when the test runs as root (initdb refuses root).
struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    log: PathBuf,
    /// Extra server settings (`-c name=value ...`).
    settings: String,
}

impl Cluster {
    fn start(dir: &Path) -> Option<Cluster> {
        Self::start_with(dir, "pg", "")
    }

    fn start_with(dir: &Path, name: &str, settings: &str) -> Option<Cluster> {
        let c = Self::new(dir, name, settings)?;
        c.pg(&[
            "initdb",
            "-D",
            c.data.to_str()?,
            "-A",
            "trust",
            "-U",
            "postgres",
        ]);
        c.ctl(&["start", "-w"]);
        Some(c)
    }

    fn new(dir: &Path, name: &str, settings: &str) -> Option<Cluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())?;
        let root = dir.join(name);
        std::fs::create_dir_all(&root).unwrap();
        if is_root() {
            chown_postgres(dir);
            chown_postgres(&root);
        }
        Some(Cluster {
            bin,
            data: root.join("data"),
            port: free_port(),
            log: root.join("log"),
            settings: settings.to_owned(),
        })
    }

    /// A streaming standby of `primary` (pg_basebackup -R), started.
    fn standby_of(primary: &Cluster, dir: &Path, name: &str) -> Cluster {
        let c = Self::new(dir, name, "").unwrap();
        let port = primary.port.to_string();
        c.pg(&[
            "pg_basebackup",
            "-D",
            c.data.to_str().unwrap(),
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "-R",
            "-X",
            "stream",
        ]);
        c.ctl(&["start", "-w"]);
        c
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn ctl(&self, args: &[&str]) {
        let opts = format!(
            "-p {} -k /tmp -c listen_addresses=127.0.0.1 {}",
            self.port, self.settings
        );
        let mut all = vec!["pg_ctl", "-D", self.data.to_str().unwrap()];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", &opts, "-l", self.log.to_str().unwrap()]);
        self.pg(&all);
    }

    fn pg(&self, args: &[&str]) {
        let program = self.bin.join(args[0]);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = cmd.args(&args[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.ctl(&["stop", "-m", "immediate"]));
    }
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn chown_postgres(path: &Path) {
    let status = Command::new("chown")
        .args(["postgres:postgres"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// PostgreSQL restarted under load: both nodes report not ready while it is down and ready
/// again after; no code is accepted twice or again; the log verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_load_is_survived_without_double_accepts() {
    if tessera_server::testing::postgres_url().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(cluster) = Cluster::start(dir.path()) else {
        eprintln!("no PostgreSQL server binaries under /usr/lib/postgresql: skipped");
        return;
    };
    let url = cluster.url();
    let (key, tokens) = prepare(&url, dir.path()).await;
    let a = node(&url, dir.path(), "a").await;
    let b = node(&url, dir.path(), "b").await;
    let bases = Arc::new(std::sync::Mutex::new(vec![a.base.clone(), b.base.clone()]));
    let (stop, tasks) = start_load(&key, &tokens, &bases);
    tokio::time::sleep(Duration::from_secs(2)).await;
    cluster.ctl(&["stop", "-m", "fast", "-w"]);
    let client = reqwest::Client::new();
    for n in [&a, &b] {
        let mut status = None;
        for _ in 0..100 {
            status = ready(&client, &n.base).await;
            if status == Some(503) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(status, Some(503), "not ready while the database is down");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.ctl(&["start", "-w"]);
    for n in [&a, &b] {
        let mut status = None;
        for _ in 0..200 {
            status = ready(&client, &n.base).await;
            if status == Some(200) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, Some(200), "ready again once the database is back");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let accepted = finish(stop, tasks, &key, &tokens, &a.base).await;
    assert!(accepted > 0);
    verify_audit(&url, dir.path());
}

/// Failover: a primary with a synchronous standby (two private clusters), two nodes on a
/// multi-host URL. The primary is killed under load (immediate stop: no shutdown checkpoint, as
/// a crash) and the standby promoted: the nodes move to it by themselves, and no code accepted
/// before the failover is accepted again after it (each was on the standby's disk before its
/// commit returned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_to_a_synchronous_standby_replays_no_code() {
    if tessera_server::testing::postgres_url().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(primary) = Cluster::start_with(
        dir.path(),
        "primary",
        "-c synchronous_standby_names='*' -c synchronous_commit=on",
    ) else {
        eprintln!("no PostgreSQL server binaries under /usr/lib/postgresql: skipped");
        return;
    };
    let standby = Cluster::standby_of(&primary, dir.path(), "standby");
    // The standby is synchronous before anything is written.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&primary.url())
        .await
        .unwrap();
    let mut state = None;
    for _ in 0..100 {
        state =
            sqlx::query_scalar::<_, String>("SELECT sync_state FROM pg_stat_replication LIMIT 1")
                .fetch_optional(&mut conn)
                .await
                .unwrap();
        if state.as_deref() == Some("sync") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state.as_deref(), Some("sync"));
    drop(conn);
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/postgres",
        primary.port, standby.port
    );
    let (key, tokens) = prepare(&url, dir.path()).await;
    let a = node(&url, dir.path(), "a").await;
    let b = node(&url, dir.path(), "b").await;
    let bases = Arc::new(std::sync::Mutex::new(vec![a.base.clone(), b.base.clone()]));
    let (stop, tasks) = start_load(&key, &tokens, &bases);
    tokio::time::sleep(Duration::from_secs(2)).await;
    primary.ctl(&["stop", "-m", "immediate", "-w"]);
    standby.ctl(&["promote", "-w"]);
    let client = reqwest::Client::new();
    for n in [&a, &b] {
        let mut status = None;
        for _ in 0..300 {
            status = ready(&client, &n.base).await;
            if status == Some(200) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, Some(200), "ready on the promoted standby");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let accepted = finish(stop, tasks, &key, &tokens, &a.base).await;
    assert!(accepted > 0);
    verify_audit(&url, dir.path());
}
