//! Shared helpers of the binary tests: a temporary vault with its PIN in a file, the binary
//! run as a user runs it, and the shared fixture folder.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly
#![allow(dead_code)] // each test file uses a part

pub mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[derive(Debug)]
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Env {
        Env::new()
    }
}

impl Env {
    pub fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(env.pin_file(), "246810\n").unwrap();
        env
    }

    pub fn vault(&self) -> PathBuf {
        self.dir.path().join("v").join("vault.tsv1")
    }

    pub fn pin_file(&self) -> PathBuf {
        self.dir.path().join("pin")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, "")
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera-auth"))
            .args(args)
            .env("TESSERA_AUTH_VAULT", self.vault())
            .env("TESSERA_AUTH_PIN_FILE", self.pin_file())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).unwrap()
    }
}

/// A file of the shared fixtures (`../shared/fixtures/imports/` beside the repository), or
/// `None` with a message when the folder is absent.
pub fn fixture(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/imports")
        .join(rel);
    if !p.exists() {
        eprintln!("skipped: fixture {} is absent", p.display());
        return None;
    }
    Some(p)
}

/// oathtool's output, or `None` when it is not installed.
pub fn oathtool(args: &[&str]) -> Option<String> {
    let out = Command::new("oathtool").args(args).output().ok()?;
    assert!(out.status.success());
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}
