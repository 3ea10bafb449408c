//! Secrets at rest and the server's one source of randomness.
//!
//! Seeds and other secrets are sealed with XChaCha20-Poly1305 under a server key. A sealed blob is
//! `version (1) || key id (4, big endian) || nonce (24) || ciphertext+tag`, so keys can rotate: new
//! blobs use the newest key, old blobs name the key that opens them. The associated data binds a
//! blob to the row it belongs to; a blob copied into another row does not open.
//!
//! Passwords are hashed with Argon2id, at most N at a time (each hash takes ~19 MiB).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use data_encoding::{BASE64URL_NOPAD, HEXLOWER};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

const BLOB_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("key file {path}: {message}")]
    KeyFile { path: String, message: String },
    /// The blob is damaged, was moved to another row, or its key is missing.
    #[error("a sealed secret could not be opened (damaged, moved, or key {key_id} missing)")]
    Open { key_id: u32 },
    #[error("password hashing failed")]
    Hash,
}

/// Fills `buf` from the operating system's CSPRNG.
#[allow(clippy::disallowed_methods)] // this is the single home of randomness in the server
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|_| CryptoError::Random)
}

/// `n` random bytes.
pub fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut v = Zeroizing::new(vec![0u8; n]);
    fill_random(&mut v)?;
    Ok(v)
}

/// A random URL-safe token with 256 bits of entropy (API keys, session tokens, links).
pub fn random_token() -> Result<String, CryptoError> {
    Ok(BASE64URL_NOPAD.encode(&random_bytes(32)?))
}

/// A random upper-case alphanumeric string without look-alike characters (serials, codes read aloud).
pub fn random_readable(len: usize) -> Result<String, CryptoError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789"; // 32 symbols: no 0/O, 1/I
    let bytes = random_bytes(len)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect())
}

/// SHA-256 of a high-entropy token, hex. Tokens of 256 random bits need no salt or slow hash.
pub fn token_hash(token: &str) -> String {
    HEXLOWER.encode(&Sha256::digest(token.as_bytes()))
}

/// Compares two byte strings in constant time.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The server's encryption keys, loaded from the key file.
#[derive(Clone)]
pub struct KeyRing {
    keys: BTreeMap<u32, Zeroizing<[u8; 32]>>,
    /// The key new secrets are sealed with: the newest in the file, or the one the database
    /// names as active (`tessera key activate`). Shared by the ring's clones, so that a node
    /// switches everywhere at once.
    current: Arc<AtomicU32>,
    /// The active key the database names when this key file lacks it (0: none).
    missing: Arc<AtomicU32>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("current", &self.current_key_id())
            .finish()
    }
}

impl KeyRing {
    /// A ring with one fresh random key (id 1).
    pub fn generate() -> Result<KeyRing, CryptoError> {
        let mut key = Zeroizing::new([0u8; 32]);
        fill_random(key.as_mut())?;
        Ok(KeyRing {
            keys: BTreeMap::from([(1, key)]),
            current: Arc::new(AtomicU32::new(1)),
            missing: Arc::default(),
        })
    }

    /// Loads the key file, creating it (mode 0600) with one new key if it does not exist.
    /// Returns the ring and whether the file was created.
    pub fn load_or_create(path: &Path) -> Result<(KeyRing, bool), CryptoError> {
        let err = |message: String| CryptoError::KeyFile {
            path: path.display().to_string(),
            message,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::parse(&text).map_err(err)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ring = Self::generate()?;
                ring.write_new(path).map_err(|e| err(e.to_string()))?;
                Ok((ring, true))
            }
            Err(e) => Err(err(format!("cannot read: {e}"))),
        }
    }

    /// Adds a new key and makes it current (key rotation). Old keys still open old blobs.
    pub fn rotate(&mut self) -> Result<u32, CryptoError> {
        let id = self.keys.keys().next_back().map_or(1, |k| k + 1);
        let mut key = Zeroizing::new([0u8; 32]);
        fill_random(key.as_mut())?;
        self.keys.insert(id, key);
        self.current.store(id, Ordering::Relaxed);
        Ok(id)
    }

    /// Writes the ring to `path`, replacing it atomically (write to a temporary file, then rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("key.new");
        let _ = std::fs::remove_file(&tmp);
        self.write_new(&tmp)?;
        std::fs::rename(&tmp, path)
    }

    /// The file format: comment lines, then one `tessera-key v1 <id> <base64url key>` line per
    /// key; the highest id is current.
    fn parse(text: &str) -> Result<KeyRing, String> {
        let mut keys = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [tag, "v1", id, key] = parts[..] else {
                return Err(format!("line {} is not a key line", n + 1));
            };
            if tag != "tessera-key" {
                return Err(format!("line {} is not a key line", n + 1));
            }
            let id: u32 = id
                .parse()
                .map_err(|_| format!("line {}: bad key id", n + 1))?;
            let bytes = Zeroizing::new(
                BASE64URL_NOPAD
                    .decode(key.as_bytes())
                    .map_err(|_| format!("line {}: key is not base64url", n + 1))?,
            );
            let mut arr = Zeroizing::new([0u8; 32]);
            if bytes.len() != 32 {
                return Err(format!("line {}: key must be 32 bytes", n + 1));
            }
            arr.copy_from_slice(&bytes);
            keys.insert(id, arr);
        }
        let current = *keys.keys().next_back().ok_or("no key in file")?;
        Ok(KeyRing {
            keys,
            current: Arc::new(AtomicU32::new(current)),
            missing: Arc::default(),
        })
    }

    fn write_new(&self, path: &Path) -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(path)?;
        let mut text = Zeroizing::new(String::from(
            "# Tessera encryption keys. Keep this file secret and back it up with the database:\n\
             # without it no stored token seed can be read.\n",
        ));
        for (id, key) in &self.keys {
            text.push_str(&format!(
                "tessera-key v1 {id} {}\n",
                BASE64URL_NOPAD.encode(key.as_ref())
            ));
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()
    }

    /// The ids of the keys in the ring, oldest first.
    pub fn key_ids(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    pub fn current_key_id(&self) -> u32 {
        self.current.load(Ordering::Relaxed)
    }

    /// Whether the ring holds key `id`.
    pub fn has_key(&self, id: u32) -> bool {
        self.keys.contains_key(&id)
    }

    /// Follows the active key the database names (`None`: the newest key in the file). A key
    /// this file lacks is remembered as missing ([`KeyRing::missing_active`]) and the current
    /// key stays: the node then reports itself unready instead of sealing with a key the
    /// other nodes may have retired.
    pub fn follow_active(&self, active: Option<u32>) {
        let want = active.unwrap_or_else(|| self.keys.keys().next_back().copied().unwrap_or(0));
        if self.keys.contains_key(&want) {
            self.current.store(want, Ordering::Relaxed);
            self.missing.store(0, Ordering::Relaxed);
        } else {
            self.missing.store(want, Ordering::Relaxed);
        }
    }

    /// The active key named by the database that this key file lacks, if any.
    pub fn missing_active(&self) -> Option<u32> {
        Some(self.missing.load(Ordering::Relaxed)).filter(|&id| id != 0)
    }

    /// A ring without key `id` (to write back after retiring it), and that key's file line.
    pub fn without(&self, id: u32) -> Option<(KeyRing, Zeroizing<String>)> {
        let key = self.keys.get(&id)?;
        let line = Zeroizing::new(format!(
            "tessera-key v1 {id} {}\n",
            BASE64URL_NOPAD.encode(key.as_ref())
        ));
        let mut keys = self.keys.clone();
        keys.remove(&id);
        let newest = *keys.keys().next_back()?;
        let current = if self.current_key_id() == id {
            newest
        } else {
            self.current_key_id()
        };
        Some((
            KeyRing {
                keys,
                current: Arc::new(AtomicU32::new(current)),
                missing: Arc::default(),
            },
            line,
        ))
    }

    /// Seals `plaintext`, bound to `aad` (the row it will be stored in).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let current = self.current_key_id();
        if let Some(key_id) = self.missing_active() {
            return Err(CryptoError::Open { key_id });
        }
        let key = self
            .keys
            .get(&current)
            .ok_or(CryptoError::Open { key_id: current })?;
        let cipher = Self::cipher(key, current)?;
        let mut nonce = XNonce::default();
        fill_random(&mut nonce)?;
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Open { key_id: current })?;
        let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
        out.push(BLOB_VERSION);
        out.extend_from_slice(&current.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a blob made by [`seal`](Self::seal) with the same `aad`.
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let key_id = Self::blob_key_id(blob).ok_or(CryptoError::Open { key_id: 0 })?;
        let key = self.keys.get(&key_id).ok_or(CryptoError::Open { key_id })?;
        let cipher = Self::cipher(key, key_id)?;
        let (header, ct) = blob.split_at(HEADER_LEN);
        let nonce = XNonce::try_from(&header[5..]).map_err(|_| CryptoError::Open { key_id })?;
        cipher
            .decrypt(&nonce, Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open { key_id })
    }

    fn cipher(key: &[u8; 32], key_id: u32) -> Result<XChaCha20Poly1305, CryptoError> {
        XChaCha20Poly1305::new_from_slice(key).map_err(|_| CryptoError::Open { key_id })
    }

    /// The key id a blob was sealed with, if it is a blob at all.
    pub fn blob_key_id(blob: &[u8]) -> Option<u32> {
        if blob.len() < HEADER_LEN + 16 || blob[0] != BLOB_VERSION {
            return None;
        }
        let id: [u8; 4] = blob[1..5].try_into().ok()?;
        Some(u32::from_be_bytes(id))
    }
}

/// Keyed hashes for short secrets people type (recovery codes).
///
/// A recovery code has about 50 bits of entropy: plain SHA-256 of it could be brute-forced from a
/// database dump. HMAC-SHA256 under a key derived from the server key makes a dump alone useless
/// (the key file lives apart from the database), and checking a code stays a cheap lookup rather
/// than one Argon2id hash (~19 MiB, ~16 ms) per stored code. The result names the key id, so codes
/// hashed before a key rotation still verify.
impl KeyRing {
    fn derived_key(&self, key_id: u32, purpose: &str) -> Option<Zeroizing<Vec<u8>>> {
        use hmac::{Hmac, Mac as _};
        let key = self.keys.get(&key_id)?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_ref()).ok()?;
        mac.update(b"tessera/derive/v1/");
        mac.update(purpose.as_bytes());
        Some(Zeroizing::new(mac.finalize().into_bytes().to_vec()))
    }

    fn keyed_hash_with(&self, key_id: u32, purpose: &str, data: &[u8]) -> Option<String> {
        use hmac::{Hmac, Mac as _};
        let key = self.derived_key(key_id, purpose)?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).ok()?;
        mac.update(data);
        Some(format!(
            "k{key_id}:{}",
            HEXLOWER.encode(&mac.finalize().into_bytes())
        ))
    }

    /// `k<key id>:<hex HMAC-SHA256>` of `data` under the current key's subkey for `purpose`.
    pub fn keyed_hash(&self, purpose: &str, data: &[u8]) -> Result<String, CryptoError> {
        let current = self.current_key_id();
        self.keyed_hash_with(current, purpose, data)
            .ok_or(CryptoError::Open { key_id: current })
    }

    /// The keyed hashes of `data` under every key in the ring, newest first: one of them is the
    /// stored value if `data` is right, whichever key was current when it was stored.
    pub fn keyed_hash_candidates(&self, purpose: &str, data: &[u8]) -> Vec<String> {
        self.keys
            .keys()
            .rev()
            .filter_map(|id| self.keyed_hash_with(*id, purpose, data))
            .collect()
    }
}

/// The label the audit chain's key is derived under (see [`KeyRing::audit_key`]).
const AUDIT_CHAIN_LABEL: &str = "tessera audit chain v1";

/// The key the audit log's hash chain is made with (docs/security.md, "Audit log integrity"):
/// an entry's hash is HMAC-SHA256 under it, so that only a holder of the key file can compute
/// one, and the head the store keeps is sealed with it. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct AuditKey {
    /// HMAC-SHA256 keyed and ready: each hash starts from a copy.
    mac: hmac::Hmac<Sha256>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(redacted)")
    }
}

impl KeyRing {
    /// The audit chain's key, derived from the oldest key in the ring (the lowest id) under a
    /// fixed label. Rotation only ever adds newer keys, so the chain's key stays the same; a log
    /// written under another key file does not verify.
    pub fn audit_key(&self) -> Result<AuditKey, CryptoError> {
        let oldest = *self
            .keys
            .keys()
            .next()
            .ok_or(CryptoError::Open { key_id: 0 })?;
        let derived = self
            .derived_key(oldest, AUDIT_CHAIN_LABEL)
            .ok_or(CryptoError::Open { key_id: oldest })?;
        AuditKey::from_bytes(&derived)
    }
}

impl AuditKey {
    /// A key from raw bytes. The server derives its key from the key file
    /// ([`KeyRing::audit_key`]); tests use this to have the same key in several places.
    pub fn from_bytes(key: &[u8]) -> Result<AuditKey, CryptoError> {
        let mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
            .map_err(|_| CryptoError::Open { key_id: 0 })?;
        Ok(AuditKey { mac })
    }

    /// The hash of audit entry `seq`, chained to `prev_hash`: HMAC-SHA256 over the fields
    /// [`audit_hash_input`](crate::model::audit_hash_input) lays out, tagged `tessera-audit-v2`.
    pub fn entry_hash(&self, prev_hash: &str, seq: i64, e: &crate::model::AuditEvent) -> String {
        use hmac::Mac as _;
        let mut mac = self.mac.clone();
        crate::model::audit_hash_input("tessera-audit-v2", prev_hash, seq, e, |b| mac.update(b));
        HEXLOWER.encode(&mac.finalize().into_bytes())
    }

    /// Whether `stored` is entry `seq`'s hash, compared in constant time.
    pub fn entry_matches(
        &self,
        prev_hash: &str,
        seq: i64,
        e: &crate::model::AuditEvent,
        stored: &str,
    ) -> bool {
        ct_eq(
            self.entry_hash(prev_hash, seq, e).as_bytes(),
            stored.as_bytes(),
        )
    }

    /// The seal of the audit head `(seq, hash)`: `v2:` and the hex HMAC-SHA256 over both. The
    /// version is part of what is sealed, so it cannot be set back by hand either.
    pub fn head_seal(&self, seq: i64, hash: &str) -> String {
        use hmac::Mac as _;
        let mut mac = self.mac.clone();
        let seq = seq.to_string();
        for field in ["tessera-audit-head-v2", &seq, hash] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        format!("v2:{}", HEXLOWER.encode(&mac.finalize().into_bytes()))
    }

    /// Whether `stored` is the seal of the head `(seq, hash)`, compared in constant time.
    pub fn seal_matches(&self, seq: i64, hash: &str, stored: &str) -> bool {
        ct_eq(self.head_seal(seq, hash).as_bytes(), stored.as_bytes())
    }

    /// What the first entry of audit chain `chain` links to: the all-zero genesis for chain 1
    /// (the only chain before there were several, and SQLite's only one), else a value keyed to
    /// the chain's number, so that an entry moved into another chain does not link there.
    pub fn chain_start(&self, chain: i64) -> String {
        if chain == 1 {
            return crate::model::AUDIT_GENESIS.to_owned();
        }
        use hmac::Mac as _;
        let mut mac = self.mac.clone();
        let chain = chain.to_string();
        for field in ["tessera-audit-chain-v1", &chain] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        HEXLOWER.encode(&mac.finalize().into_bytes())
    }

    /// The seal of chain `chain`'s head: [`head_seal`](Self::head_seal) for chain 1, else over
    /// the chain's number too, so that one chain's head cannot stand in for another's.
    pub fn chain_seal(&self, chain: i64, seq: i64, hash: &str) -> String {
        if chain == 1 {
            return self.head_seal(seq, hash);
        }
        use hmac::Mac as _;
        let mut mac = self.mac.clone();
        let (chain, seq) = (chain.to_string(), seq.to_string());
        for field in ["tessera-audit-chain-head-v1", &chain, &seq, hash] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field.as_bytes());
        }
        format!("v2:{}", HEXLOWER.encode(&mac.finalize().into_bytes()))
    }

    /// Whether `stored` is the seal of chain `chain`'s head `(seq, hash)` (constant time).
    pub fn chain_seal_matches(&self, chain: i64, seq: i64, hash: &str, stored: &str) -> bool {
        ct_eq(
            self.chain_seal(chain, seq, hash).as_bytes(),
            stored.as_bytes(),
        )
    }
}

/// Argon2id password hashing with a cap on concurrent hashes.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Password checks made, real or throw-away (the same work either way).
    verifications: Arc<std::sync::atomic::AtomicU64>,
}

impl PasswordHasher {
    pub fn new(max_concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            verifications: Arc::default(),
        }
    }

    /// Hashes a password into a PHC string (`$argon2id$...`).
    pub async fn hash(&self, password: &str) -> Result<String, CryptoError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CryptoError::Hash)?;
        let password = Zeroizing::new(password.to_owned());
        let mut salt = [0u8; 16];
        fill_random(&mut salt)?;
        tokio::task::spawn_blocking(move || {
            use argon2::PasswordHasher as _;
            argon2::Argon2::default()
                .hash_password_with_salt(password.as_bytes(), &salt)
                .map(|h: argon2::PasswordHash| h.to_string())
                .map_err(|_| CryptoError::Hash)
        })
        .await
        .map_err(|_| CryptoError::Hash)?
    }

    /// Checks a password against a PHC string. A malformed hash never matches.
    /// How many password checks were made so far.
    pub fn verifications(&self) -> u64 {
        self.verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn verify(&self, password: &str, phc: &str) -> bool {
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let password = Zeroizing::new(password.to_owned());
        let phc = phc.to_owned();
        tokio::task::spawn_blocking(move || {
            use argon2::{PasswordHash, PasswordVerifier};
            PasswordHash::new(&phc).is_ok_and(|h| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_blob_opens_only_with_its_row() {
        let ring = KeyRing::generate().unwrap();
        let blob = ring.seal(b"token:A", b"seed bytes").unwrap();
        assert_eq!(&ring.open(b"token:A", &blob).unwrap()[..], b"seed bytes");
        assert!(ring.open(b"token:B", &blob).is_err());
    }

    #[test]
    fn tampered_blob_does_not_open() {
        let ring = KeyRing::generate().unwrap();
        let mut blob = ring.seal(b"r", b"seed").unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        assert!(ring.open(b"r", &blob).is_err());
        assert!(ring.open(b"r", &blob[..10]).is_err());
    }

    #[test]
    fn rotated_ring_opens_old_blobs_and_seals_with_new_key() {
        let mut ring = KeyRing::generate().unwrap();
        let old = ring.seal(b"r", b"seed").unwrap();
        assert_eq!(ring.rotate().unwrap(), 2);
        let new = ring.seal(b"r", b"seed").unwrap();
        assert_eq!(KeyRing::blob_key_id(&old), Some(1));
        assert_eq!(KeyRing::blob_key_id(&new), Some(2));
        assert_eq!(&ring.open(b"r", &old).unwrap()[..], b"seed");
    }

    #[test]
    fn key_file_is_created_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.key");
        let (ring, created) = KeyRing::load_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let blob = ring.seal(b"r", b"x").unwrap();
        let (again, created) = KeyRing::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(&again.open(b"r", &blob).unwrap()[..], b"x");
    }

    #[test]
    fn damaged_key_file_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.key");
        std::fs::write(&path, "tessera-key v1 1 notbase64!!\n").unwrap();
        let err = KeyRing::load_or_create(&path).unwrap_err().to_string();
        assert!(
            err.contains("tessera.key") && err.contains("line 1"),
            "{err}"
        );
        // Nothing was overwritten.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "tessera-key v1 1 notbase64!!\n"
        );
    }

    #[test]
    fn debug_shows_no_key_material() {
        let ring = KeyRing::generate().unwrap();
        assert_eq!(format!("{ring:?}"), "KeyRing { key_ids: [1], current: 1 }");
    }

    #[test]
    fn keyed_hash_depends_on_key_and_purpose_and_survives_rotation() {
        let mut ring = KeyRing::generate().unwrap();
        let h = ring.keyed_hash("recovery-code", b"ABCDE-FGHJK").unwrap();
        assert!(h.starts_with("k1:") && h.len() == 3 + 64, "{h}");
        assert_eq!(h, ring.keyed_hash("recovery-code", b"ABCDE-FGHJK").unwrap());
        assert_ne!(h, ring.keyed_hash("other", b"ABCDE-FGHJK").unwrap());
        assert_ne!(h, token_hash("ABCDE-FGHJK"));
        let other = KeyRing::generate().unwrap();
        assert_ne!(
            h,
            other.keyed_hash("recovery-code", b"ABCDE-FGHJK").unwrap()
        );
        ring.rotate().unwrap();
        let candidates = ring.keyed_hash_candidates("recovery-code", b"ABCDE-FGHJK");
        assert_eq!(candidates.len(), 2);
        assert!(candidates[0].starts_with("k2:"));
        assert_eq!(candidates[1], h);
    }

    fn audit_event() -> crate::model::AuditEvent {
        crate::model::AuditEvent {
            at: 1_700_000_000,
            actor: "cli:operator".into(),
            action: "user.add".into(),
            target: "user:alice".into(),
            username: "alice".into(),
            source: "cli".into(),
            result: "success".into(),
            reason: String::new(),
        }
    }

    #[test]
    fn audit_key_comes_from_the_oldest_key_and_survives_rotation() {
        let mut ring = KeyRing::generate().unwrap();
        let e = audit_event();
        let before = ring
            .audit_key()
            .unwrap()
            .entry_hash(crate::model::AUDIT_GENESIS, 1, &e);
        ring.rotate().unwrap();
        ring.rotate().unwrap();
        let key = ring.audit_key().unwrap();
        assert_eq!(key.entry_hash(crate::model::AUDIT_GENESIS, 1, &e), before);
        assert!(key.entry_matches(crate::model::AUDIT_GENESIS, 1, &e, &before));
        // The label and the derivation: HMAC-SHA256(key 1, "tessera/derive/v1/" || label).
        let expected = ring.derived_key(1, "tessera audit chain v1").unwrap();
        let direct = AuditKey::from_bytes(&expected).unwrap();
        assert_eq!(
            direct.entry_hash(crate::model::AUDIT_GENESIS, 1, &e),
            before
        );
        // Another key file, another chain; and never the unkeyed hash.
        let other = KeyRing::generate().unwrap().audit_key().unwrap();
        assert!(!other.entry_matches(crate::model::AUDIT_GENESIS, 1, &e, &before));
        assert_ne!(
            before,
            crate::model::unkeyed_audit_hash(crate::model::AUDIT_GENESIS, 1, &e)
        );
    }

    #[test]
    fn audit_hash_covers_every_field_and_the_link() {
        let key = KeyRing::generate().unwrap().audit_key().unwrap();
        let e = audit_event();
        let h = key.entry_hash("p", 1, &e);
        assert_eq!(h.len(), 64);
        assert_ne!(h, key.entry_hash("q", 1, &e));
        assert_ne!(h, key.entry_hash("p", 2, &e));
        let mut changed = e.clone();
        changed.reason = "x".into();
        assert_ne!(h, key.entry_hash("p", 1, &changed));
        assert!(!key.entry_matches("p", 1, &e, &h[..63]));
    }

    #[test]
    fn audit_head_seal_binds_number_hash_and_version() {
        let key = KeyRing::generate().unwrap().audit_key().unwrap();
        let seal = key.head_seal(4, "abc");
        assert!(seal.starts_with("v2:") && seal.len() == 3 + 64, "{seal}");
        assert!(key.seal_matches(4, "abc", &seal));
        assert!(!key.seal_matches(3, "abc", &seal));
        assert!(!key.seal_matches(4, "abd", &seal));
        assert!(!key.seal_matches(4, "abc", ""));
        assert!(!key.seal_matches(4, "abc", &seal.replacen("v2:", "v1:", 1)));
    }

    #[test]
    fn audit_key_debug_shows_nothing() {
        let key = KeyRing::generate().unwrap().audit_key().unwrap();
        assert_eq!(format!("{key:?}"), "AuditKey(redacted)");
    }

    #[tokio::test]
    async fn password_hash_round_trip() {
        let h = PasswordHasher::new(1);
        let phc = h.hash("correct horse").await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("correct horse", &phc).await);
        assert!(!h.verify("wrong horse", &phc).await);
        assert!(!h.verify("x", "not a hash").await);
    }
}
