//! `tessera serve` as a user runs it: the real binary, a fresh directory, no configuration.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{run_cli, stderr, tessera_bin};

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tessera serve` on a free port in `cwd` and waits for its "listening" log line.
fn start(cwd: &std::path::Path, extra: &[&str]) -> (Running, String) {
    start_env(cwd, extra, &[])
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// [`start`] with environment variables (configuration).
fn start_env(cwd: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> (Running, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(tessera_bin())
        .current_dir(cwd)
        .args(["serve", "--listen", &listen])
        .args(extra)
        .env_remove("TESSERA_DATA_DIR")
        .env_remove("TESSERA_CONFIG")
        .env("TESSERA_LOG", "info")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening") {
            break;
        }
    }
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Running(child), format!("http://{listen}"))
}

fn get(url: &str) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

#[test]
fn first_start_creates_data_dir_database_and_private_key_file() {
    let cwd = tempfile::tempdir().unwrap();
    let (_server, base) = start(cwd.path(), &[]);
    assert_eq!(get(&format!("{base}/healthz")).0, 200);
    assert_eq!(get(&format!("{base}/readyz")), (200, "ready\n".into()));
    let data = cwd.path().join("tessera-data");
    assert!(data.join("tessera.db").is_file());
    let key = data.join("tessera.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn healthcheck_asks_the_running_server() {
    let cwd = tempfile::tempdir().unwrap();
    let (server, base) = start(cwd.path(), &[]);
    let addr = base.trim_start_matches("http://").to_owned();
    let check = |addr: &str| {
        Command::new(tessera_bin())
            .current_dir(cwd.path())
            .args(["healthcheck", "--addr", addr])
            .env_remove("TESSERA_CONFIG")
            .output()
            .unwrap()
    };
    let out = check(&addr);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ready\n");
    // A node that stopped answers nothing: exit 1 with the reason.
    drop(server);
    let out = check(&addr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no answer"), "{}", stderr(&out));
}

#[test]
fn metrics_are_served_on_their_own_listener_only() {
    let cwd = tempfile::tempdir().unwrap();
    let metrics = format!("127.0.0.1:{}", free_port());
    let (_server, base) = start_env(cwd.path(), &[], &[("TESSERA_METRICS__LISTEN", &metrics)]);
    let (status, text) = get(&format!("http://{metrics}/metrics"));
    assert_eq!(status, 200);
    assert!(text.contains("tessera_build_info{version="), "{text}");
    assert!(
        text.contains("# TYPE tessera_validations_total counter"),
        "{text}"
    );
    assert!(
        text.contains("tessera_db_pool_connections{state=\"idle\"}"),
        "{text}"
    );
    // Not on the users' listener.
    assert_eq!(get(&format!("{base}/metrics")).0, 404);
}

#[test]
fn second_start_reuses_the_key_file() {
    let cwd = tempfile::tempdir().unwrap();
    let key = cwd.path().join("tessera-data/tessera.key");
    {
        let (_s, base) = start(cwd.path(), &[]);
        assert_eq!(get(&format!("{base}/healthz")).0, 200);
    }
    let before = std::fs::read(&key).unwrap();
    {
        let (_s, base) = start(cwd.path(), &[]);
        assert_eq!(get(&format!("{base}/healthz")).0, 200);
    }
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

#[test]
fn unknown_config_key_stops_start_up_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tessera.toml");
    std::fs::write(&cfg, "[server]\nlisten_address = \"127.0.0.1:1\"\n").unwrap();
    let out = run_cli(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap(), "serve"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("listen_address"), "{}", stderr(&out));
    assert!(!dir.path().join("data").exists(), "nothing is created");
}

#[test]
fn malformed_database_url_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(tessera_bin())
        .args([
            "--data-dir",
            dir.path().join("d").to_str().unwrap(),
            "serve",
        ])
        .env("TESSERA_DATABASE__URL", "postgres://[broken")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("database.url"), "{}", stderr(&out));
}

#[test]
fn unreadable_key_file_stops_start_up_and_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("tessera.key"), "garbage\n").unwrap();
    let out = run_cli(&data, &["migrate"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("tessera.key"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(data.join("tessera.key")).unwrap(),
        "garbage\n"
    );
}

#[test]
fn migrate_applies_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_cli(&dir.path().join("data"), &["migrate"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(common::stdout(&out).contains("up to date"));
}

#[test]
fn help_lists_the_subcommands() {
    let out = Command::new(tessera_bin()).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("serve") && text.contains("migrate"), "{text}");
}

#[tokio::test]
async fn harness_serves_health_on_a_random_port() {
    let s = common::TestServer::spawn().await;
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s.client.get(s.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

/// SIGTERM: `/readyz` answers 503 ("draining") while the node still serves requests on new
/// connections for `server.drain_secs`, so that a load balancer takes it out first; then the
/// server stops by itself and exits cleanly.
#[test]
fn sigterm_drains_readiness_first_then_stops() {
    let cwd = tempfile::tempdir().unwrap();
    let (mut server, base) = start_env(cwd.path(), &[], &[("TESSERA_SERVER__DRAIN_SECS", "3")]);
    assert_eq!(get(&format!("{base}/readyz")), (200, "ready\n".into()));
    let pid = server.0.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let mut readyz = (0, String::new());
    for _ in 0..100 {
        readyz = get(&format!("{base}/readyz"));
        if readyz.0 == 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(readyz, (503, "draining: shutting down\n".into()));
    // Still serving while draining.
    assert_eq!(get(&format!("{base}/healthz")), (200, "ok\n".into()));
    let status = server.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
