//! The built `tessera-load` binary against a small in-process stand-in for Tessera's API: login,
//! re-authentication, applications, users, tokens, activation, unlock and validate, kept in
//! memory. The stub really checks codes with the engine and accepts each HOTP counter and TOTP
//! step once (look-ahead 10, window ±1), like the real server, so an accept here means the tool
//! sent a fresh valid code and a reject means it sent a used or wrong one. Throttling is left out:
//! it is the server's policy, not something the tool decides.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tessera_otp::{HashAlgorithm, Hotp, KeyUri, Secret, Totp, UriKind, Window};

const ADMIN_PASSWORD: &str = "stub-admin-password";
const SESSION: &str = "stub-session";

#[derive(Default)]
struct Stub {
    /// Sensitive changes allowed before the next re-authentication. One per re-authentication,
    /// so a second application key forces the tool through `403 reauth_required`.
    elevation: u32,
    apps: HashMap<String, String>,
    users: HashMap<String, Option<String>>,
    tokens: Vec<StubToken>,
    unlocked: usize,
}

struct StubToken {
    username: String,
    secret: Secret,
    totp: bool,
    active: bool,
    next_counter: u64,
    last_step: Option<u64>,
}

type Shared = Arc<Mutex<Stub>>;
type Answer = (StatusCode, Json<Value>);

fn error(status: StatusCode, code: &str) -> Answer {
    (
        status,
        Json(json!({"error": {"code": code, "message": code}})),
    )
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn admin(headers: &HeaderMap) -> Result<(), Answer> {
    match bearer(headers) {
        Some(SESSION) => Ok(()),
        _ => Err(error(StatusCode::UNAUTHORIZED, "unauthenticated")),
    }
}

#[allow(clippy::disallowed_methods)] // the stub runs on the real clock, like the server it mimics
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Checks `code` against one token and consumes what matched: HOTP counters from the next
/// unused one with look-ahead 10, TOTP steps ±1 around now and only after the last used step.
fn check(token: &mut StubToken, code: &str) -> bool {
    if token.totp {
        let totp = Totp::default();
        let matched = totp.verify(&token.secret, code, unix_now(), Window::default());
        match matched {
            Some(step) if token.last_step.is_none_or(|last| step > last) => {
                token.last_step = Some(step);
                true
            }
            _ => false,
        }
    } else {
        match Hotp::default().verify(&token.secret, code, token.next_counter, 10) {
            Some(counter) => {
                token.next_counter = counter + 1;
                true
            }
            None => false,
        }
    }
}

async fn login(Json(body): Json<Value>) -> Answer {
    if body["username"] == "admin" && body["password"] == ADMIN_PASSWORD {
        let answer =
            json!({"token": SESSION, "expires_at": unix_now() + 3600, "username": "admin"});
        (StatusCode::OK, Json(answer))
    } else {
        error(StatusCode::UNAUTHORIZED, "invalid_credentials")
    }
}

async fn reauth(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Answer {
    if let Err(e) = admin(&headers) {
        return e;
    }
    if body["password"] != ADMIN_PASSWORD {
        return error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    s.lock().unwrap().elevation = 1;
    (
        StatusCode::OK,
        Json(json!({"reauth_until": unix_now() + 300})),
    )
}

async fn post_apps(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Answer {
    if let Err(e) = admin(&headers) {
        return e;
    }
    let mut s = s.lock().unwrap();
    if s.elevation == 0 {
        return error(StatusCode::FORBIDDEN, "reauth_required");
    }
    s.elevation -= 1;
    let mode = body["mode"].as_str().unwrap_or("otp_only").to_owned();
    let id = s.apps.len() + 1;
    let key = format!("stub-app-key-{id}");
    s.apps.insert(key.clone(), mode.clone());
    let answer = json!({"id": id, "name": body["name"], "mode": mode, "api_key": key});
    (StatusCode::CREATED, Json(answer))
}

async fn post_users(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    if let Err(e) = admin(&headers) {
        return e;
    }
    let username = body["username"].as_str().unwrap().to_owned();
    let password = body["password"].as_str().map(str::to_owned);
    let mut s = s.lock().unwrap();
    if s.users.contains_key(&username) {
        return error(StatusCode::CONFLICT, "conflict");
    }
    s.users.insert(username.clone(), password);
    (StatusCode::CREATED, Json(json!({"username": username})))
}

async fn post_tokens(
    State(s): State<Shared>,
    headers: HeaderMap,
    UrlPath(username): UrlPath<String>,
    Json(body): Json<Value>,
) -> Answer {
    if let Err(e) = admin(&headers) {
        return e;
    }
    let mut s = s.lock().unwrap();
    if !s.users.contains_key(&username) {
        return error(StatusCode::NOT_FOUND, "not_found");
    }
    let totp = match body["kind"].as_str() {
        Some("totp") => true,
        Some("hotp") => false,
        _ => return error(StatusCode::BAD_REQUEST, "bad_request"),
    };
    let secret = Secret::generate().unwrap();
    let uri = KeyUri {
        kind: if totp {
            UriKind::Totp { period: 30 }
        } else {
            UriKind::Hotp { counter: 0 }
        },
        issuer: Some("Stub".to_owned()),
        account: username.clone(),
        secret: secret.clone(),
        algorithm: HashAlgorithm::Sha1,
        digits: 6,
    }
    .to_uri();
    s.tokens.push(StubToken {
        username,
        secret,
        totp,
        active: false,
        next_counter: 0,
        last_step: None,
    });
    let id = s.tokens.len();
    let answer =
        json!({"id": id, "serial": format!("STUB{id:05}"), "state": "pending", "otpauth_uri": uri});
    (StatusCode::CREATED, Json(answer))
}

async fn verify(
    State(s): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<usize>,
    Json(body): Json<Value>,
) -> Answer {
    if let Err(e) = admin(&headers) {
        return e;
    }
    let mut s = s.lock().unwrap();
    let Some(token) = id.checked_sub(1).and_then(|i| s.tokens.get_mut(i)) else {
        return error(StatusCode::NOT_FOUND, "not_found");
    };
    if token.active || !check(token, body["code"].as_str().unwrap_or("")) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_code");
    }
    token.active = true;
    (StatusCode::OK, Json(json!({"id": id, "state": "active"})))
}

async fn unlock(
    State(s): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<usize>,
) -> Answer {
    if let Err(e) = admin(&headers) {
        return e;
    }
    let mut s = s.lock().unwrap();
    if id == 0 || id > s.tokens.len() {
        return error(StatusCode::NOT_FOUND, "not_found");
    }
    s.unlocked += 1;
    (StatusCode::OK, Json(json!({"id": id})))
}

async fn validate(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Answer {
    let mut s = s.lock().unwrap();
    let Some(mode) = bearer(&headers).and_then(|key| s.apps.get(key)).cloned() else {
        return error(StatusCode::UNAUTHORIZED, "unauthenticated");
    };
    let Some(username) = body["username"].as_str() else {
        return error(StatusCode::BAD_REQUEST, "bad_request");
    };
    let Some(otp) = body["otp"].as_str() else {
        return error(StatusCode::BAD_REQUEST, "bad_request");
    };
    let reject = (
        StatusCode::OK,
        Json(json!({"result": "reject", "message": "no"})),
    );
    if mode == "password_and_otp" {
        let stored = s.users.get(username).cloned().flatten();
        if stored.is_none() || stored.as_deref() != body["password"].as_str() {
            return reject;
        }
    }
    let accepted = s
        .tokens
        .iter_mut()
        .filter(|t| t.active && t.username == username)
        .any(|t| check(t, otp));
    if accepted {
        (
            StatusCode::OK,
            Json(json!({"result": "accept", "message": "ok"})),
        )
    } else {
        reject
    }
}

async fn spawn_stub() -> (String, Shared) {
    let state: Shared = Arc::default();
    let app = Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/reauth", post(reauth))
        .route("/api/v1/apps", post(post_apps))
        .route("/api/v1/users", post(post_users))
        .route("/api/v1/users/{username}/tokens", post(post_tokens))
        .route("/api/v1/tokens/{id}/verify", post(verify))
        .route("/api/v1/tokens/{id}/unlock", post(unlock))
        .route("/api/v1/validate", post(validate))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), state)
}

/// Runs the built binary; returns (success, stdout, stderr).
async fn tool(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera-load"))
        .args(args)
        .env("STUB_ADMIN_PW", ADMIN_PASSWORD)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `run --json` with these arguments; the report.
async fn run(seeds: &Path, args: &[&str]) -> Value {
    let seeds = seeds.to_str().unwrap();
    let mut all = vec!["run", "--seeds", seeds, "--json"];
    all.extend_from_slice(args);
    let (ok, stdout, stderr) = tool(&all).await;
    assert!(ok, "run {args:?} failed: {stderr}");
    // Shown when a test fails (or with --nocapture): the whole report of each run.
    eprintln!("run {args:?}: {stdout}");
    serde_json::from_str(stdout.trim()).unwrap()
}

fn assert_all_accepted(report: &Value) {
    assert_eq!(report["http_errors"], 0, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    assert!(report["requests"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["accepted"], report["requests"], "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepare_then_every_case_against_the_stub() {
    let (url, state) = spawn_stub().await;
    let dir = tempfile::tempdir().unwrap();
    let seeds = dir.path().join("seeds.json");
    let seeds_arg = seeds.to_str().unwrap();

    let (ok, _, stderr) = tool(&[
        "prepare",
        "--url",
        &url,
        "--admin-user",
        "admin",
        "--admin-password-env",
        "STUB_ADMIN_PW",
        "--users",
        "5",
        "--prefix",
        "lt",
        "--out",
        seeds_arg,
        "--with-password",
    ])
    .await;
    assert!(ok, "prepare failed: {stderr}");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&seeds).unwrap()).unwrap();
    let tokens = file["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 10);
    assert_eq!(tokens[0]["username"], "lth0000");
    assert_eq!(tokens[0]["next_counter"], 1);
    assert_eq!(tokens[9]["username"], "ltt0004");
    assert!(tokens[9]["last_step"].as_u64().is_some());
    assert!(file["apps"]["password_and_otp"]["api_key"].is_string());
    {
        let s = state.lock().unwrap();
        assert!(s.tokens.iter().all(|t| t.active));
        assert_eq!(s.users["lth0003"].as_deref(), Some("bench-password-3"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&seeds).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "seed file readable by others");
    }

    let report = run(
        &seeds,
        &[
            "--case",
            "hotp_valid",
            "--duration",
            "2",
            "--concurrency",
            "4",
        ],
    )
    .await;
    assert_all_accepted(&report);
    assert_eq!(report["concurrency"], 4);
    // The seed file follows the server: the next run continues where this one stopped.
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&seeds).unwrap()).unwrap();
    {
        let s = state.lock().unwrap();
        for seed in file["tokens"].as_array().unwrap() {
            let token = s.tokens.iter().find(|t| t.username == seed["username"]);
            let token = token.unwrap();
            if !token.totp {
                assert_eq!(seed["next_counter"], token.next_counter, "{seed}");
            }
        }
    }

    let report = run(&seeds, &["--case", "duplicate", "--parallel", "20"]).await;
    let dup = &report["duplicate"];
    assert_eq!(dup["tokens"], 5, "{report}");
    assert_eq!(
        dup["accepted_per_token"],
        json!([1, 1, 1, 1, 1]),
        "{report}"
    );
    assert_eq!(dup["tokens_exactly_one"], 5);
    assert_eq!(dup["replay_accepted"], 0);
    assert_eq!(report["http_errors"], 0, "{report}");
    assert_eq!(report["requests"], 5 * 21);

    let report = run(
        &seeds,
        &[
            "--case",
            "hotp_wrong",
            "--duration",
            "1",
            "--concurrency",
            "4",
        ],
    )
    .await;
    assert_eq!(report["accepted"], 0, "{report}");
    assert_eq!(report["http_errors"], 0, "{report}");
    assert!(report["rejected"].as_u64().unwrap() > 0);
    assert_eq!(report["rejected"], report["requests"]);

    // After the duplicate and wrong-code runs the counters still line up.
    let report = run(&seeds, &["--case", "hotp_valid", "--duration", "1"]).await;
    assert_all_accepted(&report);
    let report = run(
        &seeds,
        &["--case", "password_hotp_valid", "--duration", "1"],
    )
    .await;
    assert_all_accepted(&report);

    // Five tokens activated in this step: each has at least the next step left.
    let report = run(
        &seeds,
        &["--case", "totp_valid", "--duration", "1", "--warmup", "0"],
    )
    .await;
    assert_eq!(report["rejected"], 0, "{report}");
    assert_eq!(report["http_errors"], 0, "{report}");
    assert!(report["accepted"].as_u64().unwrap() >= 5, "{report}");
    assert!(report["waited_s"].as_f64().is_some());

    let (ok, _, stderr) = tool(&[
        "unlock",
        "--seeds",
        seeds_arg,
        "--admin-user",
        "admin",
        "--admin-password-env",
        "STUB_ADMIN_PW",
    ])
    .await;
    assert!(ok, "unlock failed: {stderr}");
    assert_eq!(state.lock().unwrap().unlocked, 10);
}

#[tokio::test]
async fn refuses_targets_off_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = tool(&[
        "prepare",
        "--url",
        "http://10.0.0.1:8080",
        "--admin-user",
        "admin",
        "--admin-password-env",
        "STUB_ADMIN_PW",
        "--out",
        dir.path().join("x.json").to_str().unwrap(),
    ])
    .await;
    assert!(!ok);
    assert!(stderr.contains("loopback"), "{stderr}");

    let seeds = dir.path().join("remote.json");
    let file = json!({
        "version": 1, "url": "http://example.com:8080", "prefix": "x", "created_at": 0,
        "apps": {"otp_only": {"id": 1, "name": "x", "api_key": "k"}}, "tokens": []
    });
    std::fs::write(&seeds, file.to_string()).unwrap();
    let (ok, _, stderr) = tool(&[
        "run",
        "--seeds",
        seeds.to_str().unwrap(),
        "--case",
        "hotp_valid",
        "--duration",
        "1",
    ])
    .await;
    assert!(!ok);
    assert!(stderr.contains("loopback"), "{stderr}");
}
