//! `backup setup|now|status|verify|restore`: the zero-knowledge backup on the Tessera server
//! (see [`crate::backup`] for the keys and the format). The server API is `/api/v1/me/login`
//! and `/api/v1/me/backup` (ETag `"g<N>"`, If-Match, 412 on a stale generation).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use data_encoding::BASE64;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::enroll::{http, warn_skew};
use super::{Secrets, Session};
use crate::backup::{self, BackupError, BackupState};
use crate::clock::now_unix;
use crate::entry::EntryKind;
use crate::vault::Vault;

#[derive(Deserialize)]
struct Meta {
    generation: u64,
    reset_at: Option<i64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// The server as the backup commands talk to it.
struct Api {
    base: String,
    client: reqwest::blocking::Client,
    session: String,
}

enum Put {
    Stored(u64),
    Conflict,
}

fn api_error(resp: reqwest::blocking::Response) -> anyhow::Error {
    let status = resp.status();
    match resp.json::<ErrorBody>() {
        Ok(b) => anyhow!(
            "{} ({}): {}",
            b.error.code,
            status.as_u16(),
            b.error.message
        ),
        Err(_) => anyhow!("the server answered {status}"),
    }
}

impl Api {
    fn login(base: &str, user: &str, password: &str, code: &str) -> Result<Api> {
        let client = http()?;
        let resp = client
            .post(format!("{base}/api/v1/me/login"))
            .json(&serde_json::json!({"username": user, "password": password, "otp": code}))
            .send()
            .with_context(|| format!("connecting to {base}"))?;
        warn_skew(&resp);
        if !resp.status().is_success() {
            return Err(api_error(resp)).context("logging in");
        }
        #[derive(Deserialize)]
        struct S {
            session: String,
        }
        let s: S = resp.json().context("reading the login answer")?;
        Ok(Api {
            base: base.to_owned(),
            client,
            session: s.session,
        })
    }

    fn with_session(base: &str, session: &str) -> Result<Api> {
        Ok(Api {
            base: base.to_owned(),
            client: http()?,
            session: session.to_owned(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1/me/{path}", self.base)
    }

    /// `None` when the session is no longer valid.
    fn meta(&self) -> Result<Option<Meta>> {
        let resp = self
            .client
            .get(self.url("backup/meta"))
            .bearer_auth(&self.session)
            .send()?;
        if resp.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(api_error(resp));
        }
        Ok(Some(resp.json()?))
    }

    fn get(&self) -> Result<Option<Vec<u8>>> {
        let resp = self
            .client
            .get(self.url("backup"))
            .bearer_auth(&self.session)
            .send()?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(api_error(resp));
        }
        Ok(Some(resp.bytes()?.to_vec()))
    }

    fn put(&self, expected: u64, blob: Vec<u8>) -> Result<Put> {
        let mut req = self
            .client
            .put(self.url("backup"))
            .bearer_auth(&self.session)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(blob);
        req = if expected == 0 {
            req.header(reqwest::header::IF_NONE_MATCH, "*")
        } else {
            req.header(reqwest::header::IF_MATCH, format!("\"g{expected}\""))
        };
        let resp = req.send()?;
        if resp.status() == reqwest::StatusCode::PRECONDITION_FAILED {
            return Ok(Put::Conflict);
        }
        if !resp.status().is_success() {
            return Err(api_error(resp)).context("uploading the backup");
        }
        #[derive(Deserialize)]
        struct G {
            generation: u64,
        }
        Ok(Put::Stored(resp.json::<G>()?.generation))
    }
}

/// A code for the login: `--code`, else the newest token in this vault that was enrolled for
/// this account on this server (so the daily `backup now` needs no phone).
fn login_code(
    vault: &Vault,
    server: &str,
    user: &str,
    given: Option<&str>,
    secrets: &mut Secrets,
) -> Result<Zeroizing<String>> {
    if let Some(c) = given {
        return Ok(Zeroizing::new(c.trim().to_owned()));
    }
    let entry = vault
        .content
        .live()
        .filter(|e| {
            e.origin.server.as_deref() == Some(server)
                && e.account == user
                && matches!(e.kind, EntryKind::Totp { .. })
        })
        .max_by_key(|e| e.created);
    match entry {
        Some(e) => {
            let shown = crate::codes::show(e, now_unix())?;
            Ok(Zeroizing::new(shown.code.unwrap_or_default()))
        }
        None => secrets.password("one-time code from your other device: "),
    }
}

/// A session: the stored one if it still works, else a login (password asked).
fn connect(s: &mut Session, secrets: &mut Secrets, code: Option<&str>) -> Result<(Api, Meta)> {
    let st = s
        .vault
        .content
        .backup
        .clone()
        .context("no backup is set up (tessera-auth backup setup)")?;
    if let Some(session) = &st.session {
        let api = Api::with_session(&st.server, session)?;
        if let Some(meta) = api.meta()? {
            return Ok((api, meta));
        }
    }
    let password = secrets.password(&format!("password of {} at {}: ", st.user, st.server))?;
    let code = login_code(&s.vault, &st.server, &st.user, code, secrets)?;
    let api = Api::login(&st.server, &st.user, &password, &code)?;
    let meta = api.meta()?.context("the new session was refused")?;
    if let Some(b) = &mut s.vault.content.backup {
        b.session = Some(api.session.clone());
    }
    Ok((api, meta))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

#[allow(clippy::too_many_arguments)] // one per command-line option
pub fn setup(
    path: &Path,
    secrets: &mut Secrets,
    server: &str,
    user: &str,
    code: Option<&str>,
    kit_file: Option<PathBuf>,
    replace: bool,
) -> Result<()> {
    let server = server.trim_end_matches('/').to_owned();
    let mut s = Session::open(path, secrets)?;
    if s.vault
        .content
        .backup
        .as_ref()
        .is_some_and(|b| b.stopped_by_reset.is_none())
        && !replace
    {
        bail!("a backup is set up already (use --replace to start over with a new kit)");
    }
    let password = secrets.password(&format!("password of {user} at {server}: "))?;
    let code = login_code(&s.vault, &server, user, code, secrets)?;
    let api = Api::login(&server, user, &password, &code)?;
    let meta = api.meta()?.context("the new session was refused")?;
    if meta.generation > 0 && !replace {
        bail!(
            "the server holds a backup already (generation {}): restore it with `tessera-auth backup restore`, or start over with --replace",
            meta.generation
        );
    }

    let ak = Zeroizing::new(crate::crypto::random_vec(16)?);
    let (kdf, salt_b) = backup::new_kdf(&server, user)?;
    eprintln!("deriving the backup key (Argon2id, {} MiB)…", kdf.m / 1024);
    let auk = backup::derive_auk(&kdf, &server, user, &salt_b, password.as_bytes(), &ak)?;
    show_and_confirm_kit(secrets, &server, user, &ak, kit_file.as_deref())?;

    let now = now_unix();
    let st = BackupState {
        server: server.clone(),
        user: user.to_owned(),
        ak: BASE64.encode(&ak),
        auk: BASE64.encode(auk.as_bytes()),
        salt_b: BASE64.encode(&salt_b),
        kdf,
        last_generation: meta.generation,
        setup_at: now,
        last_verified: None,
        stopped_by_reset: None,
        session: Some(api.session.clone()),
    };
    let generation = upload(&api, &st, &auk, &s.vault, meta.generation)?;
    let mut st = st;
    st.last_generation = generation;
    s.vault.content.backup = Some(st);
    s.vault.set_auk_slot(&auk)?;
    s.save()?;
    println!("backup generation {generation} uploaded");
    Ok(())
}

/// Shows the emergency kit once (text and QR), writes it to a new 0600 file if asked, and has
/// its last group typed back.
fn show_and_confirm_kit(
    secrets: &mut Secrets,
    server: &str,
    user: &str,
    ak: &[u8],
    kit_file: Option<&Path>,
) -> Result<()> {
    let kit = Zeroizing::new(backup::kit_text(&backup::account_tag(server, user), ak));
    let qr_payload = Zeroizing::new(backup::kit_qr(server, user, &kit));
    println!("Your emergency kit. It is shown this once and never sent anywhere:");
    println!();
    println!("    server:       {server}");
    println!("    account:      {user}");
    println!("    account key:  {}", kit.as_str());
    println!("    password:     (the one you log in with; not on the kit)");
    println!();
    if let Ok(q) = crate::qr::terminal(&qr_payload) {
        println!("{q}");
    }
    println!(
        "Write the account key down or print it, and keep it away from this computer. With your"
    );
    println!(
        "password it restores your tokens on a new device; without it, nobody can: not even the"
    );
    println!("server's administrators.");
    if let Some(f) = kit_file {
        write_private(
            f,
            &format!(
                "Tessera emergency kit\nserver: {server}\naccount: {user}\naccount key: {}\nsetup code: {}\n",
                kit.as_str(),
                qr_payload.as_str()
            ),
        )?;
        eprintln!("kit written to {} (0600)", f.display());
    }
    let typed = secrets.password("type the last group of the account key to confirm: ")?;
    if !typed
        .trim()
        .eq_ignore_ascii_case(backup::kit_last_group(&kit))
    {
        bail!("that is not the last group: nothing was changed; run the command again");
    }
    Ok(())
}

/// `kit rotate`: a new account key (and kit). The vault is uploaded under the new key, then the
/// server deletes every older generation: an older generation would still open with the old kit.
pub fn rotate(
    path: &Path,
    secrets: &mut Secrets,
    code: Option<&str>,
    kit_file: Option<PathBuf>,
) -> Result<()> {
    let mut s = Session::open(path, secrets)?;
    let st = s
        .vault
        .content
        .backup
        .clone()
        .context("no backup is set up (tessera-auth backup setup)")?;
    if let Some(at) = st.stopped_by_reset {
        bail!(
            "the account was reset (Unix time {at}); start fresh with `tessera-auth backup setup --replace`"
        );
    }
    let old_auk = st.auk().context("the vault's backup key is damaged")?;
    let (api, meta) = connect(&mut s, secrets, code)?;
    reset_check(&mut s, &meta)?;
    if meta.generation < st.last_generation {
        bail!(BackupError::Rollback {
            got: meta.generation,
            last: st.last_generation
        });
    }
    if meta.generation > st.last_generation {
        let blob = api
            .get()?
            .context("the server lists a backup it does not serve")?;
        let (_, content) = backup::open(&blob, &st.server, &st.user, &old_auk, st.last_generation)?;
        backup::merge(&mut s.vault.content.entries, content.entries);
    }
    // The password is needed again: the key is derived from the password and the new key.
    let password = secrets.password(&format!("password of {} at {}: ", st.user, st.server))?;
    let ak = Zeroizing::new(crate::crypto::random_vec(16)?);
    let (kdf, salt_b) = backup::new_kdf(&st.server, &st.user)?;
    eprintln!("deriving the backup key (Argon2id, {} MiB)…", kdf.m / 1024);
    let auk = backup::derive_auk(
        &kdf,
        &st.server,
        &st.user,
        &salt_b,
        password.as_bytes(),
        &ak,
    )?;
    show_and_confirm_kit(secrets, &st.server, &st.user, &ak, kit_file.as_deref())?;
    let mut new = BackupState {
        ak: BASE64.encode(&ak),
        auk: BASE64.encode(auk.as_bytes()),
        salt_b: BASE64.encode(&salt_b),
        kdf,
        ..s.vault.content.backup.clone().context("backup state")?
    };
    let generation = upload(&api, &new, &auk, &s.vault, meta.generation)?;
    new.last_generation = generation;
    s.vault.content.backup = Some(new);
    s.vault.set_auk_slot(&auk)?;
    s.save()?;
    let resp = api
        .client
        .delete(format!("{}?older_than={generation}", api.url("backup")))
        .bearer_auth(&api.session)
        .send()?;
    if !resp.status().is_success() {
        return Err(api_error(resp))
            .context("deleting the generations under the old kit (run kit rotate again)");
    }
    println!(
        "new kit in force: generation {generation} uploaded, older generations deleted; the old kit opens nothing"
    );
    Ok(())
}

fn upload(
    api: &Api,
    st: &BackupState,
    auk: &crate::crypto::Key,
    vault: &Vault,
    expected: u64,
) -> Result<u64> {
    let blob = backup::seal(st, auk, &vault.content.entries, expected + 1, now_unix())?;
    match api.put(expected, blob)? {
        Put::Stored(g) => Ok(g),
        Put::Conflict => {
            bail!("another device uploaded meanwhile: run `tessera-auth backup now` again")
        }
    }
}

/// Stops at a reset the server reports: the account was wiped after this backup was set up.
fn reset_check(s: &mut Session, meta: &Meta) -> Result<()> {
    let Some(st) = &mut s.vault.content.backup else {
        return Ok(());
    };
    if let Some(at) = meta.reset_at
        && at >= i64::try_from(st.setup_at).unwrap_or(i64::MAX)
    {
        st.stopped_by_reset = Some(at);
        st.session = None;
        s.save()?;
        bail!(
            "the account was reset on the server (Unix time {at}): its backups were wiped, and this device will not upload its old copy again. Start fresh with `tessera-auth backup setup --replace` (a new emergency kit)"
        );
    }
    Ok(())
}

pub fn now(path: &Path, secrets: &mut Secrets, code: Option<&str>) -> Result<()> {
    let mut s = Session::open(path, secrets)?;
    let st = s
        .vault
        .content
        .backup
        .clone()
        .context("no backup is set up (tessera-auth backup setup)")?;
    if let Some(at) = st.stopped_by_reset {
        bail!(
            "the account was reset (Unix time {at}); uploads are stopped. Start fresh with `tessera-auth backup setup --replace`"
        );
    }
    let auk = st.auk().context("the vault's backup key is damaged")?;
    let (api, mut meta) = connect(&mut s, secrets, code)?;
    reset_check(&mut s, &meta)?;
    for _ in 0..3 {
        let last = s
            .vault
            .content
            .backup
            .as_ref()
            .map_or(0, |b| b.last_generation);
        if meta.generation < last {
            bail!(BackupError::Rollback {
                got: meta.generation,
                last
            });
        }
        if meta.generation > last {
            // Another device uploaded: merge its entries first (by id, newer wins, tombstones).
            let blob = api
                .get()?
                .context("the server lists a backup it does not serve")?;
            let (h, content) = backup::open(&blob, &st.server, &st.user, &auk, last)?;
            let m = backup::merge(&mut s.vault.content.entries, content.entries);
            eprintln!(
                "merged generation {}: {} added, {} changed, {} removed",
                h.generation, m.added, m.updated, m.removed
            );
        }
        let bst = s.vault.content.backup.clone().context("backup state")?;
        let blob = backup::seal(
            &bst,
            &auk,
            &s.vault.content.entries,
            meta.generation + 1,
            now_unix(),
        )?;
        match api.put(meta.generation, blob)? {
            Put::Stored(g) => {
                if let Some(b) = &mut s.vault.content.backup {
                    b.last_generation = g;
                }
                s.save()?;
                println!("backup generation {g} uploaded");
                return Ok(());
            }
            Put::Conflict => {
                meta = api.meta()?.context("the session ended")?;
                reset_check(&mut s, &meta)?;
            }
        }
    }
    bail!("other devices keep uploading; try again in a moment")
}

pub fn status(path: &Path, secrets: &mut Secrets, json: bool) -> Result<()> {
    let s = Session::open(path, secrets)?;
    let Some(st) = &s.vault.content.backup else {
        if json {
            println!("{}", serde_json::json!({"set_up": false}));
        } else {
            println!("no backup is set up (tessera-auth backup setup --server URL --user NAME)");
        }
        return Ok(());
    };
    let v = serde_json::json!({
        "set_up": true, "server": st.server, "user": st.user,
        "last_generation": st.last_generation, "setup_at": st.setup_at,
        "last_verified": st.last_verified, "stopped_by_reset": st.stopped_by_reset,
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "backup of {} at {}: generation {}",
            st.user, st.server, st.last_generation
        );
        match st.last_verified {
            Some(t) => println!("last verified: Unix time {t}"),
            None => {
                println!("never verified: rehearse a restore with `tessera-auth backup verify`")
            }
        }
        if let Some(at) = st.stopped_by_reset {
            println!(
                "STOPPED: the account was reset at Unix time {at}; start fresh with backup setup --replace"
            );
        }
    }
    Ok(())
}

/// Reads the kit (typed or pasted) and checks it belongs to this account before Argon2 runs.
fn read_kit(secrets: &mut Secrets, server: &str, user: &str) -> Result<Zeroizing<Vec<u8>>> {
    let text = secrets.password("account key from the emergency kit (TK1-…): ")?;
    let (tag, ak) = backup::parse_kit(&text)?;
    if tag != backup::account_tag(server, user) {
        bail!("this kit belongs to another account or server");
    }
    Ok(ak)
}

/// Downloads and opens the newest backup with a freshly typed password and kit.
fn open_with_kit(
    api: &Api,
    secrets: &mut Secrets,
    server: &str,
    user: &str,
    password: &str,
    last: u64,
) -> Result<(
    backup::BlobHeader,
    backup::BackupContent,
    crate::crypto::Key,
    Zeroizing<Vec<u8>>,
)> {
    let blob = api
        .get()?
        .context("the server holds no backup for this account")?;
    let (h, _, _) = backup::header(&blob)?;
    let ak = read_kit(secrets, server, user)?;
    let salt_b = BASE64
        .decode(h.salt_b.as_bytes())
        .map_err(|_| anyhow!("the backup's salt is damaged"))?;
    eprintln!(
        "deriving the backup key (Argon2id, {} MiB)…",
        h.kdf.m / 1024
    );
    let auk = backup::derive_auk(&h.kdf, server, user, &salt_b, password.as_bytes(), &ak)?;
    let (h, content) = backup::open(&blob, server, user, &auk, last)?;
    Ok((h, content, auk, ak))
}

pub fn verify(path: &Path, secrets: &mut Secrets, code: Option<&str>) -> Result<()> {
    let mut s = Session::open(path, secrets)?;
    let st = s
        .vault
        .content
        .backup
        .clone()
        .context("no backup is set up")?;
    let (api, meta) = connect(&mut s, secrets, code)?;
    reset_check(&mut s, &meta)?;
    let password = secrets.password(&format!(
        "password of {} (the rehearsal derives the key anew): ",
        st.user
    ))?;
    let (h, content, _, _) = open_with_kit(
        &api,
        secrets,
        &st.server,
        &st.user,
        &password,
        st.last_generation,
    )?;
    let mut theirs: Vec<(String, Option<String>)> = content
        .entries
        .iter()
        .filter(|e| !e.deleted)
        .map(|e| (e.id.clone(), e.secret.as_ref().map(|x| x.to_hex())))
        .collect();
    let mut ours: Vec<(String, Option<String>)> = s
        .vault
        .content
        .live()
        .map(|e| (e.id.clone(), e.secret.as_ref().map(|x| x.to_hex())))
        .collect();
    theirs.sort();
    ours.sort();
    let same = theirs == ours;
    if let Some(b) = &mut s.vault.content.backup {
        b.last_verified = Some(now_unix());
    }
    s.save()?;
    println!(
        "verified: generation {} opens with your password and kit; {} token(s){}",
        h.generation,
        theirs.len(),
        if same {
            ", the same as this vault"
        } else {
            "; this vault differs (run backup now)"
        }
    );
    Ok(())
}

pub fn restore(
    path: &Path,
    secrets: &mut Secrets,
    server: &str,
    user: &str,
    code: Option<&str>,
) -> Result<()> {
    let server = server.trim_end_matches('/').to_owned();
    let mut s = Session::open(path, secrets)?;
    let password = secrets.password(&format!("password of {user} at {server}: "))?;
    let code = login_code(&s.vault, &server, user, code, secrets)?;
    let api = Api::login(&server, user, &password, &code)?;
    let meta = api.meta()?.context("the new session was refused")?;
    let (h, content, auk, ak) = open_with_kit(&api, secrets, &server, user, &password, 0)?;
    let m = backup::merge(&mut s.vault.content.entries, content.entries);
    s.vault.content.backup = Some(BackupState {
        server: server.clone(),
        user: user.to_owned(),
        ak: BASE64.encode(&ak),
        auk: BASE64.encode(auk.as_bytes()),
        salt_b: h.salt_b.clone(),
        kdf: h.kdf.clone(),
        last_generation: meta.generation.max(h.generation),
        setup_at: now_unix(),
        last_verified: Some(now_unix()),
        stopped_by_reset: None,
        session: Some(api.session.clone()),
    });
    s.vault.set_auk_slot(&auk)?;
    s.save()?;
    println!(
        "restored generation {}: {} token(s) added, {} changed",
        h.generation, m.added, m.updated
    );
    Ok(())
}
