//! How a vault reaches the disk. Users lose vaults to partial writes and silent update failures
//! far more often than to broken crypto (andOTP#91, raivo#363), so a save is:
//!
//! serialize → encrypt → write `vault.tmp` (0600) → fsync → **read back and decrypt** →
//! keep the current file as `vault.prev` (a hard link, replaced atomically) → rename the temp
//! file over the vault → fsync the directory.
//!
//! A failure at any step leaves the old file in place; [`SaveStep`] names the steps so tests can
//! fail each one. A lock file serializes two `tessera-auth` processes (open, change, save).
//! Failed unlocks are counted in a side file to make the next try wait longer.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Credential, Vault, VaultError};

/// The steps of a save, in order (to inject a failure after one of them in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveStep {
    /// Half the bytes are written, then the process "dies".
    Write,
    Sync,
    ReadBack,
    KeepPrevious,
    Rename,
    SyncDir,
}

impl SaveStep {
    pub const ALL: [SaveStep; 6] = [
        SaveStep::Write,
        SaveStep::Sync,
        SaveStep::ReadBack,
        SaveStep::KeepPrevious,
        SaveStep::Rename,
        SaveStep::SyncDir,
    ];
}

/// A vault path with the lock held (released on drop).
#[derive(Debug)]
pub struct VaultFile {
    path: PathBuf,
    _lock: File,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn options_0600() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o
}

fn injected(step: SaveStep, fail: Option<SaveStep>) -> Result<(), VaultError> {
    if fail == Some(step) {
        return Err(VaultError::Io {
            what: format!("saving the vault (injected failure after {step:?})"),
            source: std::io::Error::other("injected"),
        });
    }
    Ok(())
}

/// Reads a whole file, at most [`super::MAX_FILE`] bytes.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, std::io::Error> {
    let f = File::open(path)?;
    let mut buf = Vec::new();
    f.take(super::MAX_FILE as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > super::MAX_FILE {
        return Err(std::io::Error::other("larger than a vault can be"));
    }
    Ok(buf)
}

/// The outcome of an open: the vault, and whether the previous generation had to be used.
#[derive(Debug)]
pub struct Opened {
    pub vault: Vault,
    /// The current file was damaged; the previous generation opened (say so to the user).
    pub from_previous: bool,
}

impl VaultFile {
    /// Takes the lock for the vault at `path` (waiting for another process to finish), creating
    /// its directory (0700) if needed. `waiting` is called once if the lock is held elsewhere.
    pub fn lock(path: &Path, waiting: impl FnOnce()) -> Result<VaultFile, VaultError> {
        if let Some(dir) = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty() && !d.exists())
        {
            {
                let mut b = fs::DirBuilder::new();
                b.recursive(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::DirBuilderExt;
                    b.mode(0o700);
                }
                b.create(dir)
                    .map_err(VaultError::io(format!("creating {}", dir.display())))?;
            }
        }
        let lock_path = with_suffix(path, ".lock");
        let lock = options_0600()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(VaultError::io(format!("opening {}", lock_path.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                waiting();
                lock.lock()
                    .map_err(VaultError::io(format!("locking {}", lock_path.display())))?;
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(VaultError::io(format!("locking {}", lock_path.display()))(
                    e,
                ));
            }
        }
        Ok(VaultFile {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn previous_path(&self) -> PathBuf {
        with_suffix(&self.path, ".prev")
    }

    fn tmp_path(&self) -> PathBuf {
        with_suffix(&self.path, ".tmp")
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// Opens the vault; if the current file is damaged (not a wrong PIN), the previous
    /// generation is tried with the same credential.
    pub fn open(&self, cred: Credential<'_>) -> Result<Opened, VaultError> {
        if !self.path.exists() {
            return Err(VaultError::NotFound(self.path.display().to_string()));
        }
        let bytes = read_bounded(&self.path)
            .map_err(VaultError::io(format!("reading {}", self.path.display())))?;
        match Vault::open(&bytes, cred) {
            Ok(vault) => Ok(Opened {
                vault,
                from_previous: false,
            }),
            Err(VaultError::Damaged(why)) => {
                let prev = self.previous_path();
                let Ok(prev_bytes) = read_bounded(&prev) else {
                    return Err(VaultError::Damaged(why));
                };
                let vault = Vault::open(&prev_bytes, cred).map_err(|_| VaultError::Damaged(why))?;
                Ok(Opened {
                    vault,
                    from_previous: true,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Writes the vault's next generation (see the module notes). On success the vault's
    /// header is the one now on disk.
    pub fn save(&self, vault: &mut Vault) -> Result<(), VaultError> {
        self.save_failing(vault, None)
    }

    /// [`save`](Self::save) with a failure injected after `fail` (tests).
    pub fn save_failing(
        &self,
        vault: &mut Vault,
        fail: Option<SaveStep>,
    ) -> Result<(), VaultError> {
        let (header, bytes) = vault.encode_next()?;
        let tmp = self.tmp_path();
        let what = || format!("writing {}", tmp.display());
        let _ = fs::remove_file(&tmp);
        let mut f = options_0600()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(VaultError::io(what()))?;
        if fail == Some(SaveStep::Write) {
            f.write_all(&bytes[..bytes.len() / 2])
                .map_err(VaultError::io(what()))?;
            return injected(SaveStep::Write, fail);
        }
        f.write_all(&bytes).map_err(VaultError::io(what()))?;
        f.sync_all().map_err(VaultError::io(what()))?;
        drop(f);
        injected(SaveStep::Sync, fail)?;

        // Read back what the disk holds and decrypt it: a save that cannot be opened again
        // must never replace one that can.
        let back = read_bounded(&tmp).map_err(VaultError::io(what()))?;
        let reread = vault.reopen(&back)?;
        if reread.header != header || reread.content.entries.len() != vault.content.entries.len() {
            return Err(VaultError::Damaged(
                "the written file reads back differently",
            ));
        }
        injected(SaveStep::ReadBack, fail)?;

        if self.path.exists() {
            let prev = self.previous_path();
            let prev_tmp = with_suffix(&self.path, ".prev.tmp");
            let _ = fs::remove_file(&prev_tmp);
            fs::hard_link(&self.path, &prev_tmp)
                .map_err(VaultError::io(format!("keeping {}", prev.display())))?;
            fs::rename(&prev_tmp, &prev)
                .map_err(VaultError::io(format!("keeping {}", prev.display())))?;
        }
        injected(SaveStep::KeepPrevious, fail)?;

        fs::rename(&tmp, &self.path)
            .map_err(VaultError::io(format!("replacing {}", self.path.display())))?;
        vault.header = header;
        injected(SaveStep::Rename, fail)?;

        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(VaultError::io(format!("syncing {}", dir.display())))?;
        }
        injected(SaveStep::SyncDir, fail)?;
        Ok(())
    }

    fn attempts_path(&self) -> PathBuf {
        with_suffix(&self.path, ".attempts")
    }

    /// Failed unlocks so far and the time before which the next try must wait.
    pub fn attempts(&self) -> Attempts {
        read_bounded(&self.attempts_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Records a failed unlock at `now`; returns the new state.
    pub fn record_failure(&self, now: u64) -> Attempts {
        let mut a = self.attempts();
        a.failures = a.failures.saturating_add(1);
        a.not_before = now + Attempts::delay(a.failures);
        if let Ok(json) = serde_json::to_vec(&a) {
            let _ = options_0600()
                .write(true)
                .create(true)
                .truncate(true)
                .open(self.attempts_path())
                .and_then(|mut f| f.write_all(&json));
        }
        a
    }

    /// Forgets failed unlocks after a successful one.
    pub fn clear_failures(&self) {
        let _ = fs::remove_file(self.attempts_path());
    }
}

/// Failed unlocks (a clear-text side file: it slows down a person guessing at this machine,
/// not a copy of the vault, and the CLI says so at `init`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attempts {
    pub failures: u32,
    /// Unix seconds before which no unlock is tried.
    pub not_before: u64,
}

impl Attempts {
    /// Seconds to wait after the `n`th failure in a row: 1, 2, 4, … up to 5 minutes.
    pub fn delay(n: u32) -> u64 {
        if n == 0 {
            return 0;
        }
        (1u64 << (n - 1).min(9)).min(300)
    }
}
