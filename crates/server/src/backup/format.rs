//! The backup file: a header that says what the backup holds, then the database copy.
//!
//! ```text
//! magic "TSRBACK1" (8) || manifest length (4, big endian) || manifest (JSON) || payload
//! ```
//!
//! The payload is the database copy (an SQLite file, or a `pg_dump` archive), plain or
//! encrypted. Encrypted, it is a sequence of chunks, each [`CHUNK`] bytes of plaintext (the last
//! one shorter, possibly empty) sealed with XChaCha20-Poly1305 under a key derived from a
//! passphrase with Argon2id. Chunk `i` uses the nonce `prefix (16) || i (8, big endian)` and the
//! associated data `SHA-256(header) || last`, where `last` is 1 for the final chunk and 0
//! otherwise: the header cannot be changed, chunks cannot be moved, dropped or replayed from
//! another backup, and a file cut after a chunk boundary is seen as cut. Plain or encrypted, the
//! manifest names the payload's length and SHA-256, which are checked after reading it.
//!
//! Reading parses outside bytes (a file the operator hands over): every length is bounded and
//! the Argon2id parameters in a header are checked against a floor and a ceiling before any key
//! is derived, so a crafted file cannot make the reader allocate or compute without bound.

use std::io::{Read, Write};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use data_encoding::{BASE64, HEXLOWER};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// The first bytes of every backup file.
pub const MAGIC: &[u8; 8] = b"TSRBACK1";
/// The largest manifest accepted (a real one is under 2 KiB).
pub const MAX_MANIFEST: usize = 64 * 1024;
/// Plaintext bytes per encrypted chunk.
pub const CHUNK: usize = 1 << 20;
const TAG: usize = 16;
const NONCE_PREFIX: usize = 16;

/// Argon2id cost for new backups (64 MiB, 3 passes): a few hundred milliseconds, once per file.
const KDF_M_KIB: u32 = 64 * 1024;
const KDF_T: u32 = 3;
const KDF_P: u32 = 1;
/// Bounds a header's Argon2id parameters must lie within to be tried.
const KDF_M_RANGE: std::ops::RangeInclusive<u32> = 19 * 1024..=1024 * 1024;
const KDF_T_RANGE: std::ops::RangeInclusive<u32> = 1..=16;
const KDF_P_RANGE: std::ops::RangeInclusive<u32> = 1..=8;

/// What a backup holds, written in front of it in clear text (it names no secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The file format's version (1).
    pub format: u32,
    /// When the copy was taken (Unix seconds).
    pub created_at: i64,
    /// The Tessera version that wrote it.
    pub tessera_version: String,
    /// What the payload is.
    pub payload: PayloadKind,
    /// The payload's length in bytes (plaintext).
    pub payload_len: u64,
    /// SHA-256 of the payload (plaintext), lowercase hex.
    pub payload_sha256: String,
    /// Migrations applied to the copied database.
    pub migrations: usize,
    /// Ids of the server keys in the key file at the time; the key file is not in the backup.
    pub key_ids: Vec<u32>,
    /// Tokens when the copy started.
    pub tokens: i64,
    /// The audit log's newest entry when the copy started: the copy holds it, with this hash,
    /// and maybe later ones.
    pub audit_seq: i64,
    pub audit_hash: String,
    /// How the payload is encrypted; `None`: it is not.
    pub encryption: Option<Encryption>,
}

/// The database copy's kind.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PayloadKind {
    /// An SQLite database file (`VACUUM INTO`).
    SqliteFile,
    /// A `pg_dump --format=custom` archive.
    PgDumpCustom,
}

impl PayloadKind {
    pub fn database(self) -> &'static str {
        match self {
            PayloadKind::SqliteFile => "sqlite",
            PayloadKind::PgDumpCustom => "postgres",
        }
    }
}

/// The payload's encryption parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// `xchacha20poly1305-chunked`.
    pub cipher: String,
    /// `argon2id`.
    pub kdf: String,
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
    /// Base64.
    pub salt: String,
    /// Base64, 16 bytes.
    pub nonce_prefix: String,
    /// Plaintext bytes per chunk.
    pub chunk: usize,
}

const CIPHER: &str = "xchacha20poly1305-chunked";
const KDF: &str = "argon2id";

/// Why a backup file cannot be read. Each kind has a stable code ([`BackupError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a Tessera backup file (it does not start with the backup header)")]
    NotABackup,
    #[error("the backup's header is damaged or from an unknown version: {0}")]
    BadManifest(String),
    #[error("the backup is encrypted: give its passphrase (--passphrase-stdin)")]
    PassphraseRequired,
    #[error("the backup is not encrypted, but a passphrase was given")]
    NotEncrypted,
    #[error("wrong passphrase, or the backup file was changed")]
    WrongPassphraseOrDamaged,
    #[error("the backup file ends too early (cut off while copying?)")]
    Truncated,
    #[error("the backup's content does not match its header (damaged or changed)")]
    Damaged,
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    #[error("reading or writing the backup failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the system's random number generator failed")]
    Random,
}

impl BackupError {
    /// A stable code for scripts (`--json`).
    pub fn code(&self) -> &'static str {
        match self {
            BackupError::NotABackup => "not_a_backup",
            BackupError::BadManifest(_) => "bad_manifest",
            BackupError::PassphraseRequired => "passphrase_required",
            BackupError::NotEncrypted => "not_encrypted",
            BackupError::WrongPassphraseOrDamaged => "wrong_passphrase_or_damaged",
            BackupError::Truncated => "truncated",
            BackupError::Damaged => "damaged",
            BackupError::EmptyPassphrase => "empty_passphrase",
            BackupError::Io(_) => "io",
            BackupError::Random => "random",
        }
    }
}

fn derive_key(passphrase: &[u8], e: &Encryption) -> Result<Zeroizing<[u8; 32]>, BackupError> {
    let salt = BASE64
        .decode(e.salt.as_bytes())
        .map_err(|_| BackupError::BadManifest("salt is not base64".into()))?;
    let params = argon2::Params::new(e.m_kib, e.t, e.p, Some(32))
        .map_err(|err| BackupError::BadManifest(format!("Argon2id parameters: {err}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, &salt, key.as_mut())
        .map_err(|err| BackupError::BadManifest(format!("Argon2id: {err}")))?;
    Ok(key)
}

fn nonce(prefix: &[u8; NONCE_PREFIX], index: u64) -> XNonce {
    let mut n = XNonce::default();
    n[..NONCE_PREFIX].copy_from_slice(prefix);
    n[NONCE_PREFIX..].copy_from_slice(&index.to_be_bytes());
    n
}

fn aad(header_hash: &[u8; 32], last: bool) -> [u8; 33] {
    let mut a = [0u8; 33];
    a[..32].copy_from_slice(header_hash);
    a[32] = u8::from(last);
    a
}

fn header_bytes(manifest: &Manifest) -> Result<Vec<u8>, BackupError> {
    let json = serde_json::to_vec(manifest)
        .map_err(|e| BackupError::BadManifest(format!("cannot write the manifest: {e}")))?;
    let len = u32::try_from(json.len())
        .ok()
        .filter(|&l| l as usize <= MAX_MANIFEST)
        .ok_or_else(|| BackupError::BadManifest("manifest too large".into()))?;
    let mut out = Vec::with_capacity(12 + json.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    Ok(out)
}

/// Fills `buf` from `r` as far as it goes; returns the bytes read (less than `buf.len()` only at
/// the end of the input).
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The length and SHA-256 of a payload, computed by reading it once.
pub fn digest(r: &mut impl Read) -> std::io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = read_full(r, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, HEXLOWER.encode(&hasher.finalize())))
}

/// Writes a backup: the header for `manifest` (its `encryption` filled in here when a
/// passphrase is given), then `payload`, which must be exactly `manifest.payload_len` bytes
/// with `manifest.payload_sha256`. Returns the manifest as written.
pub fn write(
    out: &mut impl Write,
    mut manifest: Manifest,
    payload: &mut impl Read,
    passphrase: Option<&[u8]>,
) -> Result<Manifest, BackupError> {
    let Some(passphrase) = passphrase else {
        manifest.encryption = None;
        out.write_all(&header_bytes(&manifest)?)?;
        let copied = std::io::copy(payload, out)?;
        if copied != manifest.payload_len {
            return Err(BackupError::Damaged);
        }
        return Ok(manifest);
    };
    if passphrase.is_empty() {
        return Err(BackupError::EmptyPassphrase);
    }
    let mut salt = [0u8; 16];
    let mut prefix = [0u8; NONCE_PREFIX];
    crate::crypto::fill_random(&mut salt).map_err(|_| BackupError::Random)?;
    crate::crypto::fill_random(&mut prefix).map_err(|_| BackupError::Random)?;
    let enc = Encryption {
        cipher: CIPHER.into(),
        kdf: KDF.into(),
        m_kib: KDF_M_KIB,
        t: KDF_T,
        p: KDF_P,
        salt: BASE64.encode(&salt),
        nonce_prefix: BASE64.encode(&prefix),
        chunk: CHUNK,
    };
    let key = derive_key(passphrase, &enc)?;
    manifest.encryption = Some(enc);
    let header = header_bytes(&manifest)?;
    out.write_all(&header)?;
    let header_hash: [u8; 32] = Sha256::digest(&header).into();
    let cipher =
        XChaCha20Poly1305::new_from_slice(key.as_ref()).map_err(|_| BackupError::Random)?;
    let mut remaining = manifest.payload_len;
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    let mut index = 0u64;
    loop {
        let want = usize::try_from(remaining.min(CHUNK as u64)).unwrap_or(CHUNK);
        let n = read_full(payload, &mut buf[..want])?;
        if n != want {
            return Err(BackupError::Damaged);
        }
        remaining -= n as u64;
        let last = remaining == 0;
        let ct = cipher
            .encrypt(
                &nonce(&prefix, index),
                Payload {
                    msg: &buf[..n],
                    aad: &aad(&header_hash, last),
                },
            )
            .map_err(|_| BackupError::Damaged)?;
        out.write_all(&ct)?;
        index += 1;
        if last {
            break;
        }
    }
    Ok(manifest)
}

/// Reads a backup's header and checks it is one this version can restore.
pub fn read_manifest(r: &mut impl Read) -> Result<(Manifest, [u8; 32]), BackupError> {
    let mut head = [0u8; 12];
    let n = read_full(r, &mut head)?;
    if n < 8 || &head[..8] != MAGIC {
        return Err(BackupError::NotABackup);
    }
    if n < 12 {
        return Err(BackupError::Truncated);
    }
    let len = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
    if len > MAX_MANIFEST {
        return Err(BackupError::BadManifest("manifest too large".into()));
    }
    let mut json = vec![0u8; len];
    if read_full(r, &mut json)? != len {
        return Err(BackupError::Truncated);
    }
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| BackupError::BadManifest(format!("manifest: {e}")))?;
    if manifest.format != 1 {
        return Err(BackupError::BadManifest(format!(
            "format {} (this version reads format 1)",
            manifest.format
        )));
    }
    if manifest.payload_sha256.len() != 64
        || HEXLOWER.decode(manifest.payload_sha256.as_bytes()).is_err()
    {
        return Err(BackupError::BadManifest(
            "payload_sha256 is not a SHA-256".into(),
        ));
    }
    if let Some(e) = &manifest.encryption {
        let prefix_ok = BASE64
            .decode(e.nonce_prefix.as_bytes())
            .is_ok_and(|p| p.len() == NONCE_PREFIX);
        let salt_ok = BASE64
            .decode(e.salt.as_bytes())
            .is_ok_and(|s| (8..=64).contains(&s.len()));
        if e.cipher != CIPHER
            || e.kdf != KDF
            || e.chunk != CHUNK
            || !prefix_ok
            || !salt_ok
            || !KDF_M_RANGE.contains(&e.m_kib)
            || !KDF_T_RANGE.contains(&e.t)
            || !KDF_P_RANGE.contains(&e.p)
        {
            return Err(BackupError::BadManifest(
                "unknown encryption or parameters out of range".into(),
            ));
        }
    }
    let mut header = Vec::with_capacity(12 + len);
    header.extend_from_slice(&head);
    header.extend_from_slice(&json);
    Ok((manifest, Sha256::digest(&header).into()))
}

/// Copies the payload of a backup whose header [`read_manifest`] returned from `r` to `out`,
/// decrypting it when encrypted, and checks its length and hash. On any error what was written
/// to `out` must be thrown away.
pub fn read_payload(
    r: &mut impl Read,
    out: &mut impl Write,
    manifest: &Manifest,
    header_hash: &[u8; 32],
    passphrase: Option<&[u8]>,
) -> Result<u64, BackupError> {
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    match (&manifest.encryption, passphrase) {
        (None, Some(_)) => return Err(BackupError::NotEncrypted),
        (Some(_), None) => return Err(BackupError::PassphraseRequired),
        (None, None) => {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = read_full(r, &mut buf)?;
                if n == 0 {
                    break;
                }
                total += n as u64;
                if total > manifest.payload_len {
                    return Err(BackupError::Damaged);
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
            }
            if total < manifest.payload_len {
                return Err(BackupError::Truncated);
            }
        }
        (Some(enc), Some(passphrase)) => {
            let key = derive_key(passphrase, enc)?;
            let cipher = XChaCha20Poly1305::new_from_slice(key.as_ref())
                .map_err(|_| BackupError::WrongPassphraseOrDamaged)?;
            let mut prefix = [0u8; NONCE_PREFIX];
            let decoded = BASE64
                .decode(enc.nonce_prefix.as_bytes())
                .map_err(|_| BackupError::BadManifest("nonce prefix".into()))?;
            prefix.copy_from_slice(&decoded);
            let mut remaining = manifest.payload_len;
            let mut buf = vec![0u8; CHUNK + TAG];
            let mut index = 0u64;
            loop {
                let plain = usize::try_from(remaining.min(CHUNK as u64)).unwrap_or(CHUNK);
                let n = read_full(r, &mut buf[..plain + TAG])?;
                if n != plain + TAG {
                    return Err(BackupError::Truncated);
                }
                remaining -= plain as u64;
                let last = remaining == 0;
                let pt = Zeroizing::new(
                    cipher
                        .decrypt(
                            &nonce(&prefix, index),
                            Payload {
                                msg: &buf[..n],
                                aad: &aad(header_hash, last),
                            },
                        )
                        .map_err(|_| BackupError::WrongPassphraseOrDamaged)?,
                );
                hasher.update(&pt[..]);
                out.write_all(&pt)?;
                total += pt.len() as u64;
                index += 1;
                if last {
                    break;
                }
            }
            // Nothing may follow the last chunk.
            if read_full(r, &mut [0u8; 1])? != 0 {
                return Err(BackupError::Damaged);
            }
        }
    }
    if HEXLOWER.encode(&hasher.finalize()) != manifest.payload_sha256 {
        return Err(BackupError::Damaged);
    }
    Ok(total)
}

#[cfg(test)]
mod tests;
