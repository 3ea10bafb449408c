//! A killed server forgets no accepted code. Every "accept" that left `tessera serve` was
//! committed first (the token's counter and the audit entry), so after `kill -9` in the middle of
//! a stream of validations and a restart, each of those codes is refused as a replay and each
//! has its audit entry. Real binary, real SQLite file, codes from `oathtool`.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tessera_otp::KeyUri;

use common::{run_cli, stderr, stdout, tessera_bin};

const USERS: usize = 8;
/// Codes prepared per user; more than a user can use before the kill.
const CODES: usize = 3000;

fn cli(data: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = run_cli(data, &all, None);
    assert!(out.status.success(), "tessera {args:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// HOTP codes for counters `from..from + n` according to `oathtool`.
fn oathtool_codes(uri: &KeyUri, from: usize, n: usize) -> Vec<String> {
    let out = Command::new("oathtool")
        .args(["--hotp", "-b", &uri.secret.to_base32()])
        .args(["-c", &from.to_string(), "-w", &(n - 1).to_string()])
        .output()
        .expect("oathtool is installed (.ci/install-tools)");
    assert!(out.status.success());
    let codes: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(codes.len(), n);
    codes
}

/// `tessera serve` on a free port, started in the background; returns it once it listens.
fn serve(data: &Path) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(tessera_bin())
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            &listen,
        ])
        .env_remove("TESSERA_CONFIG")
        .env("TESSERA_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("listening") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{listen}/api/v1/validate"))
}

async fn validate(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    user: &str,
    otp: &str,
) -> reqwest::Result<String> {
    let answer: Value = client
        .post(url)
        .bearer_auth(key)
        .json(&json!({"username": user, "otp": otp}))
        .send()
        .await?
        .json()
        .await?;
    Ok(answer["result"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_forgets_no_accepted_code() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    cli(&data, &["migrate"]);
    let key = cli(&data, &["app", "add", "vpn", "--mode", "otp_only"])["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut codes: HashMap<String, Vec<String>> = HashMap::new();
    for i in 0..USERS {
        let user = format!("user{i}");
        cli(&data, &["user", "add", &user, "--email", "u@example.com"]);
        let token = cli(&data, &["token", "add", &user, "--kind", "hotp"]);
        let uri = KeyUri::parse(token["otpauth_uri"].as_str().unwrap()).unwrap();
        let first = oathtool_codes(&uri, 0, 1).remove(0);
        cli(
            &data,
            &["token", "verify", &token["id"].to_string(), &first],
        );
        codes.insert(user, oathtool_codes(&uri, 1, CODES));
    }

    // Every user sends its codes in order, all users at once, until the server dies.
    let (mut server, url) = serve(&data);
    let accepted: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let client = reqwest::Client::new();
    let mut senders = Vec::new();
    for (user, list) in codes.clone() {
        let (client, url, key, accepted) =
            (client.clone(), url.clone(), key.clone(), accepted.clone());
        senders.push(tokio::spawn(async move {
            for code in list {
                match validate(&client, &url, &key, &user, &code).await {
                    Ok(r) if r == "accept" => accepted.lock().unwrap().push((user.clone(), code)),
                    Ok(r) => panic!("{user}: a fresh code got {r:?}"),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Kill (SIGKILL: no shutdown, no flush) once a good number of codes were accepted.
    for _ in 0..600 {
        if accepted.lock().unwrap().len() >= 400 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() >= 400,
        "only {} accepted before the kill",
        accepted.len()
    );

    // After a restart every one of them is a replay, and each left its audit entry.
    let (mut server, url) = serve(&data);
    for (user, code) in &accepted {
        let again = validate(&client, &url, &key, user, code).await.unwrap();
        assert_eq!(
            again, "reject",
            "{user}: an accepted code was accepted again"
        );
    }
    server.kill().unwrap();
    server.wait().unwrap();
    for i in 0..USERS {
        let user = format!("user{i}");
        let answered = accepted.iter().filter(|(u, _)| *u == user).count();
        let entries = cli(
            &data,
            &[
                "audit", "list", "--user", &user, "--action", "validate", "--limit", "1000",
            ],
        );
        let committed = entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["result"] == "success")
            .count();
        // Requests in flight at the kill may have been committed without their answer leaving.
        assert!(
            committed >= answered,
            "{user}: {answered} accepts answered, {committed} in the audit log"
        );
    }
    assert_eq!(cli(&data, &["audit", "verify"])["ok"], true);
}
