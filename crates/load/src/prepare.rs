//! `tessera-load prepare` and `tessera-load unlock`: set up what the load runs need through the
//! admin API, a few requests in flight at a time.
//!
//! `prepare` registers the applications, creates N users with one HOTP token each and N with one
//! TOTP token each, activates every token with its first code (the real clock for TOTP: the
//! server runs on it), and writes the seed file. `unlock` clears the failure counters and
//! throttling of every token in a seed file after runs that sent wrong or replayed codes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tessera_load::seeds::{AppKey, Apps, FORMAT_VERSION, SeedFile, TokenKind, TokenSeed};
use tessera_load::target::parse_loopback_url;
use tessera_otp::{KeyUri, UriKind};

use crate::admin::{Admin, password_from_env};
use crate::clock;
use crate::files::{load_seeds, save_seeds};
use crate::http::{HttpConn, host_header, resolve_loopback};

/// What `prepare` was asked for.
#[derive(Debug)]
pub struct PrepareOptions {
    /// Server base URL.
    pub url: String,
    /// Admin user name.
    pub admin_user: String,
    /// Name of the environment variable holding the admin password.
    pub admin_password_env: String,
    /// Users per kind.
    pub users: usize,
    /// User name prefix.
    pub prefix: String,
    /// Where the seed file goes.
    pub out: PathBuf,
    /// Also a `password_and_otp` application and user passwords.
    pub with_password: bool,
    /// Admin requests in flight.
    pub in_flight: usize,
}

/// A connected admin session plus what each worker needs to open its own connection.
struct Session {
    addr: std::net::SocketAddr,
    host: HeaderValue,
    admin: Admin,
}

impl Session {
    async fn open(
        url: &str,
        user: &str,
        password_env: &str,
    ) -> anyhow::Result<(Session, HttpConn)> {
        let target = parse_loopback_url(url)?;
        let addr = resolve_loopback(&target).await?;
        let host = host_header(&target)?;
        let password = password_from_env(password_env)?;
        let mut conn = HttpConn::new(addr, host.clone());
        let admin = Admin::login(&mut conn, &target, user, password).await?;
        Ok((Session { addr, host, admin }, conn))
    }

    fn conn(&self) -> HttpConn {
        HttpConn::new(self.addr, self.host.clone())
    }
}

/// Runs `prepare`.
pub async fn prepare(options: PrepareOptions) -> anyhow::Result<()> {
    if options.prefix.is_empty()
        || !options
            .prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        bail!("--prefix must be letters, digits, '_', '-' or '.'");
    }
    if options.users == 0 {
        bail!("--users must be at least 1");
    }
    let (session, mut conn) = Session::open(
        &options.url,
        &options.admin_user,
        &options.admin_password_env,
    )
    .await?;
    // Creating an application key is a sensitive change: elevate first.
    session.admin.reauth(&mut conn).await?;
    let stamp = clock::unix_secs();
    let otp_only = create_app(&session, &mut conn, &options.prefix, "otp_only", stamp).await?;
    let password_and_otp = if options.with_password {
        Some(
            create_app(
                &session,
                &mut conn,
                &options.prefix,
                "password_and_otp",
                stamp,
            )
            .await?,
        )
    } else {
        None
    };
    drop(conn);

    let jobs: Vec<(TokenKind, usize)> = [TokenKind::Hotp, TokenKind::Totp]
        .into_iter()
        .flat_map(|kind| (0..options.users).map(move |i| (kind, i)))
        .collect();
    let options = Arc::new(options);
    let session = Arc::new(session);
    let results: Arc<Mutex<Vec<Option<TokenSeed>>>> = Arc::new(Mutex::new(vec![None; jobs.len()]));
    let jobs = Arc::new(jobs);
    let progress = Progress::start("prepare: tokens activated", jobs.len());
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..options.in_flight.clamp(1, 64) {
        let (options, session, results, jobs, next, progress) = (
            options.clone(),
            session.clone(),
            results.clone(),
            jobs.clone(),
            next.clone(),
            progress.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut conn = session.conn();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(kind, index)) = jobs.get(i) else {
                    return Ok(());
                };
                if progress.failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                match enroll(&session, &mut conn, &options, kind, index).await {
                    Ok(seed) => {
                        if let Ok(mut results) = results.lock() {
                            results[i] = Some(seed);
                        }
                        progress.done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        progress.failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
        }));
    }
    let mut first_error = None;
    for worker in workers {
        let outcome = worker.await.context("a prepare worker panicked")?;
        if let Err(e) = outcome {
            first_error.get_or_insert(e);
        }
    }
    progress.finish();
    if let Some(e) = first_error {
        return Err(e.context("prepare stopped; no seed file written"));
    }
    let tokens: Vec<TokenSeed> = results
        .lock()
        .map_err(|_| anyhow::anyhow!("results lock poisoned"))?
        .iter()
        .flatten()
        .cloned()
        .collect();
    let seeds = SeedFile {
        version: FORMAT_VERSION,
        url: options.url.trim_end_matches('/').to_owned(),
        prefix: options.prefix.clone(),
        created_at: stamp,
        apps: Apps {
            otp_only,
            password_and_otp,
        },
        tokens,
    };
    save_seeds(&options.out, &seeds)?;
    eprintln!(
        "prepare: wrote {} ({} HOTP + {} TOTP tokens)",
        options.out.display(),
        options.users,
        options.users
    );
    Ok(())
}

async fn create_app(
    session: &Session,
    conn: &mut HttpConn,
    prefix: &str,
    mode: &str,
    stamp: u64,
) -> anyhow::Result<AppKey> {
    // The key is shown only when the application is created, so every prepare registers new
    // ones; the time stamp keeps names unique when a prefix is prepared again.
    let name = format!("tessera-load {prefix} {mode} {stamp}");
    let body = json!({"name": name, "mode": mode});
    let answer = session
        .admin
        .send(conn, Method::POST, "/api/v1/apps", Some(&body))
        .await?;
    if answer.status != StatusCode::CREATED {
        bail!("creating application {name:?}: {}", answer.describe());
    }
    Ok(AppKey {
        id: serde_json::from_value(answer.body["id"].clone()).context("application id")?,
        name,
        api_key: answer.body["api_key"]
            .as_str()
            .context("application answer without api_key")?
            .to_owned(),
    })
}

/// Creates (or reuses) one user, adds one token, activates it with its first code.
async fn enroll(
    session: &Session,
    conn: &mut HttpConn,
    options: &PrepareOptions,
    kind: TokenKind,
    index: usize,
) -> anyhow::Result<TokenSeed> {
    let letter = match kind {
        TokenKind::Hotp => 'h',
        TokenKind::Totp => 't',
    };
    let username = format!("{}{letter}{index:04}", options.prefix);
    let password = options
        .with_password
        .then(|| format!("bench-password-{index}"));
    let mut body = json!({"username": username});
    if let Some(password) = &password {
        body["password"] = json!(password);
    }
    let admin = &session.admin;
    let answer = admin
        .send(conn, Method::POST, "/api/v1/users", Some(&body))
        .await?;
    match answer.status {
        StatusCode::CREATED | StatusCode::OK => {}
        // A user left by an earlier prepare with this prefix: give it one more token. Its
        // password, if any, stays what that run set.
        StatusCode::CONFLICT => {}
        _ => bail!("creating user {username}: {}", answer.describe()),
    }

    let body = json!({"kind": kind.as_str(), "name": "tessera-load"});
    let route = format!("/api/v1/users/{username}/tokens");
    let answer = admin.send(conn, Method::POST, &route, Some(&body)).await?;
    if answer.status != StatusCode::CREATED {
        bail!("adding a token to {username}: {}", answer.describe());
    }
    let id = serde_json::from_value(answer.body["id"].clone()).context("token id")?;
    let serial = answer.body["serial"].as_str().unwrap_or("").to_owned();
    let uri = answer.body["otpauth_uri"]
        .as_str()
        .context("token answer without otpauth_uri")?;
    let key = KeyUri::parse(uri).context("the server's otpauth_uri")?;

    let (code, period, next_counter, last_step) = match key.kind {
        UriKind::Hotp { counter } => {
            let hotp = key.hotp()?;
            (
                hotp.generate(&key.secret, counter),
                None,
                Some(counter + 1),
                None,
            )
        }
        UriKind::Totp { period } => {
            let totp = key.totp()?;
            let step = totp.step(clock::unix_secs());
            (
                totp.generate_step(&key.secret, step),
                Some(period),
                None,
                Some(step),
            )
        }
    };
    let route = format!("/api/v1/tokens/{id}/verify");
    let answer = admin
        .send(conn, Method::POST, &route, Some(&json!({ "code": code })))
        .await?;
    if answer.status != StatusCode::OK {
        bail!("activating token {id} of {username}: {}", answer.describe());
    }
    Ok(TokenSeed {
        id,
        serial,
        username,
        password,
        kind,
        secret: key.secret.to_base32(),
        algorithm: key.algorithm.as_str().to_owned(),
        digits: key.digits,
        period,
        next_counter,
        last_step,
    })
}

/// What `unlock` was asked for.
#[derive(Debug)]
pub struct UnlockOptions {
    /// The seed file.
    pub seeds: PathBuf,
    /// Admin user name.
    pub admin_user: String,
    /// Name of the environment variable holding the admin password.
    pub admin_password_env: String,
    /// Only tokens of this kind.
    pub kind: Option<TokenKind>,
    /// Admin requests in flight.
    pub in_flight: usize,
}

/// Runs `unlock`: `POST /api/v1/tokens/{id}/unlock` for every token of the seed file.
pub async fn unlock(options: UnlockOptions) -> anyhow::Result<()> {
    let seeds = load_seeds(&options.seeds)?;
    let (session, conn) =
        Session::open(&seeds.url, &options.admin_user, &options.admin_password_env).await?;
    drop(conn);
    let ids: Vec<String> = seeds
        .tokens
        .iter()
        .filter(|t| options.kind.is_none_or(|k| k == t.kind))
        .map(|t| t.id.to_string())
        .collect();
    let total = ids.len();
    let ids = Arc::new(ids);
    let session = Arc::new(session);
    let progress = Progress::start("unlock: tokens unlocked", total);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..options.in_flight.clamp(1, 64) {
        let (ids, session, next, progress) =
            (ids.clone(), session.clone(), next.clone(), progress.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = session.conn();
            while let Some(id) = ids.get(next.fetch_add(1, Ordering::Relaxed)) {
                if progress.failed.load(Ordering::Relaxed) {
                    break;
                }
                let route = format!("/api/v1/tokens/{id}/unlock");
                let answer = session
                    .admin
                    .send(&mut conn, Method::POST, &route, None::<&Value>)
                    .await;
                match answer {
                    Ok(a) if a.status == StatusCode::OK => {
                        progress.done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(a) => {
                        progress.failed.store(true, Ordering::Relaxed);
                        bail!("unlocking token {id}: {}", a.describe());
                    }
                    Err(e) => {
                        progress.failed.store(true, Ordering::Relaxed);
                        return Err(e);
                    }
                }
            }
            Ok(())
        }));
    }
    let mut first_error = None;
    for worker in workers {
        if let Err(e) = worker.await.context("an unlock worker panicked")? {
            first_error.get_or_insert(e);
        }
    }
    progress.finish();
    if let Some(e) = first_error {
        return Err(e);
    }
    eprintln!("unlock: {total} tokens unlocked");
    Ok(())
}

/// Counters shown on stderr once a second while work is under way.
struct Progress {
    label: &'static str,
    total: usize,
    done: AtomicUsize,
    failed: AtomicBool,
    ticker: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Progress {
    fn start(label: &'static str, total: usize) -> Arc<Progress> {
        let progress = Arc::new(Progress {
            label,
            total,
            done: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            ticker: Mutex::new(None),
        });
        let shown = progress.clone();
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_secs(1));
            interval.tick().await;
            loop {
                interval.tick().await;
                eprintln!(
                    "{}: {}/{}",
                    shown.label,
                    shown.done.load(Ordering::Relaxed),
                    shown.total
                );
            }
        });
        if let Ok(mut slot) = progress.ticker.lock() {
            *slot = Some(ticker);
        }
        progress
    }

    /// Stops the ticker (the task holds a reference, so this is not left to `Drop`).
    fn finish(&self) {
        if let Ok(mut slot) = self.ticker.lock()
            && let Some(ticker) = slot.take()
        {
            ticker.abort();
        }
    }
}
