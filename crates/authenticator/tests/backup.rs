//! The zero-knowledge backup end to end, with the real server and the built binary: set up
//! (kit shown once, confirmed by its last group), upload, a database dump holds none of the
//! vault's seeds in any encoding, a second device restores with password + kit and shows the
//! same codes, two devices' edits merge, and an account reset wipes the blobs and stops the old
//! device from uploading its copy again.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use support::Env;
use support::server::{PASSWORD, Server};

/// Waits for the next TOTP step: each login spends the code of its step.
fn next_step() {
    let now = tessera_authenticator::clock::now_unix();
    std::thread::sleep(std::time::Duration::from_secs(30 - now % 30 + 1));
}

/// `backup setup` as a person does it: the password, then the kit's last group read off the
/// screen and typed back. Returns the kit's account key line.
fn setup(env: &Env, server: &str) -> String {
    let (kit, shown) = with_kit(
        env,
        &["backup", "setup", "--server", server, "--user", "alice"],
    );
    assert!(shown.contains("backup generation 1 uploaded"), "{shown}");
    kit
}

/// Runs a command that shows a kit and asks for the password first and the last group after.
fn with_kit(env: &Env, args: &[&str]) -> (String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera-auth"))
        .arg("--password-stdin")
        .args(args)
        .env("TESSERA_AUTH_VAULT", env.vault())
        .env("TESSERA_AUTH_PIN_FILE", env.pin_file())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{PASSWORD}").unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut kit = String::new();
    let mut shown = String::new();
    loop {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        shown.push_str(&line);
        if let Some(k) = line.trim().strip_prefix("account key:") {
            kit = k.trim().to_owned();
            let last = kit.rsplit('-').next().unwrap();
            writeln!(stdin, "{last}").unwrap();
        }
    }
    drop(stdin);
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{args:?} failed: {err}\n{shown}");
    assert!(kit.starts_with("TK1-"), "{shown}");
    (kit, shown)
}

fn database_bytes(server: &Server) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(server.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tessera.db")
        {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

const SEEDS: [&str; 2] = [
    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
    "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43U",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_merge_and_reset() {
    let server = Server::spawn().await;
    server.user("alice").await;
    let link = server.invite("alice").await;
    let a = Env::new();
    a.ok(&["init"]);
    a.ok(&["add", &link, "--name", "Laptop"]);
    a.ok(&[
        "add",
        &format!(
            "otpauth://totp/GitHub:alice?secret={}&issuer=GitHub",
            SEEDS[0]
        ),
    ]);
    a.ok(&[
        "add",
        &format!("otpauth://hotp/Bank:alice?secret={}&counter=7", SEEDS[1]),
    ]);

    next_step();
    let kit = setup(&a, &server.base);
    let status = a.json(&["backup", "status", "--json"]);
    assert_eq!(status["last_generation"], 1);

    // Zero seeds in a dump: the database files hold none of the vault's seeds, in base32, hex
    // or raw bytes, and not the account key either.
    let dump = database_bytes(&server);
    for b32 in SEEDS {
        let raw = data_encoding::BASE32_NOPAD.decode(b32.as_bytes()).unwrap();
        assert!(
            !contains(&dump, b32.as_bytes()),
            "base32 seed in the database"
        );
        assert!(!contains(
            &dump,
            data_encoding::HEXLOWER.encode(&raw).as_bytes()
        ));
        assert!(!contains(
            &dump,
            data_encoding::HEXUPPER.encode(&raw).as_bytes()
        ));
        assert!(!contains(
            &dump,
            data_encoding::BASE64.encode(&raw).as_bytes()
        ));
        assert!(!contains(&dump, &raw), "raw seed bytes in the database");
    }
    assert!(!contains(&dump, kit.as_bytes()));

    // A change, uploaded with the stored session (no password, no code asked).
    a.ok(&["rename", "GitHub", "GitHub work"]);
    assert!(a.ok(&["backup", "now"]).contains("generation 2"));

    // A new device: log in with password and a code from the old one, enter the kit.
    let b = Env::new();
    b.ok(&["init"]);
    next_step();
    let code = a.ok(&["code", "Laptop"]).trim().to_owned();
    let out = b.run_stdin(
        &[
            "--password-stdin",
            "backup",
            "restore",
            "--server",
            &server.base,
            "--user",
            "alice",
            "--code",
            &code,
        ],
        &format!("{PASSWORD}\n{}\n", kit.to_lowercase()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let codes = |env: &Env| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = env
            .json(&["codes", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["label"].as_str().unwrap().to_owned(),
                    c["code"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(codes(&a), codes(&b));
    assert!(codes(&b).iter().any(|(l, _)| l == "GitHub work"));
    // The HOTP counter came along.
    assert_eq!(a.ok(&["code", "Bank"]), b.ok(&["code", "Bank"]));

    // A rehearsal on the new device: password and kit typed anew.
    let v = b.run_stdin(
        &["--password-stdin", "backup", "verify"],
        &format!("{PASSWORD}\n{kit}\n"),
    );
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    // A typo in the kit is caught by its check symbol, before any key derivation.
    let mut typo: Vec<char> = kit.chars().collect();
    let i = typo.len() - 3;
    typo[i] = if typo[i] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    let t = b.run_stdin(
        &["--password-stdin", "backup", "verify"],
        &format!("{PASSWORD}\n{typo}\n"),
    );
    assert!(!t.status.success());
    assert!(
        String::from_utf8_lossy(&t.stderr).contains("check symbol"),
        "{}",
        String::from_utf8_lossy(&t.stderr)
    );

    // Both devices edit: B adds a token and uploads; A removes one and uploads: merged.
    b.ok(&[
        "add",
        "otpauth://totp/Mail:alice?secret=JBSWY3DPEHPK3PXP&issuer=Mail",
    ]);
    assert!(b.ok(&["backup", "now"]).contains("generation 3"));
    a.ok(&["rm", "GitHub work"]);
    assert!(a.ok(&["backup", "now"]).contains("generation 4"));
    let labels: Vec<String> = a
        .json(&["list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["label"].as_str().unwrap().to_owned())
        .collect();
    assert!(labels.contains(&"Mail (alice)".to_owned()), "{labels:?}");
    assert!(
        !labels.iter().any(|l| l.starts_with("GitHub")),
        "{labels:?}"
    );
    b.ok(&["backup", "now"]);
    assert!(
        !b.json(&["list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["label"].as_str().unwrap().starts_with("GitHub"))
    );

    // Kit rotation: the vault goes up under a new kit, the server keeps only that generation,
    // and the old kit opens nothing the server holds.
    let store = server.app.service.store().clone();
    let alice = store.user_by_name("alice").await.unwrap().unwrap();
    assert_eq!(
        store.vault_backup_generations(alice.id).await.unwrap(),
        vec![4, 5]
    );
    let (new_kit, shown) = with_kit(&a, &["kit", "rotate"]);
    assert!(shown.contains("older generations deleted"), "{shown}");
    assert_ne!(new_kit, kit);
    assert_eq!(
        store.vault_backup_generations(alice.id).await.unwrap(),
        vec![6]
    );
    let old = b.run_stdin(
        &["--password-stdin", "backup", "verify"],
        &format!("{PASSWORD}\n{kit}\n"),
    );
    assert!(!old.status.success());
    assert!(
        String::from_utf8_lossy(&old.stderr).contains("does not open"),
        "{}",
        String::from_utf8_lossy(&old.stderr)
    );
    let new = b.run_stdin(
        &["--password-stdin", "backup", "verify"],
        &format!("{PASSWORD}\n{new_kit}\n"),
    );
    assert!(
        new.status.success(),
        "{}",
        String::from_utf8_lossy(&new.stderr)
    );

    // The last resort: an account reset deletes the blobs.
    assert!(store.latest_vault_backup(alice.id).await.unwrap().is_some());
    let path = server
        .app
        .service
        .admin_reset_account(
            &tessera_server::service::Actor::operator(),
            "alice",
            "new password 123",
            "",
        )
        .await
        .unwrap();
    assert!(store.latest_vault_backup(alice.id).await.unwrap().is_none());
    // The old device re-enrolls and syncs: it learns of the reset and does not upload.
    a.ok(&[
        "add",
        &format!("{}{}", server.base, path),
        "--name",
        "Laptop again",
    ]);
    next_step();
    let out = a.run_stdin(&["--password-stdin", "backup", "now"], "new password 123\n");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("reset"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(store.latest_vault_backup(alice.id).await.unwrap().is_none());
    assert!(a.json(&["backup", "status", "--json"])["stopped_by_reset"].is_i64());
    assert!(!a.run(&["backup", "now"]).status.success());
    assert!(store.latest_vault_backup(alice.id).await.unwrap().is_none());
}
