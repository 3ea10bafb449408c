//! The authenticator's one source of randomness and its AEAD helpers: XChaCha20-Poly1305 with a
//! random 24-byte nonce (no nonce-reuse limit worth counting, unlike Aegis's 96-bit GCM nonces)
//! and HKDF-SHA256 for keys derived from keys.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// Length of every symmetric key here (XChaCha20-Poly1305, HKDF output).
pub const KEY_LEN: usize = 32;
/// XChaCha20-Poly1305 nonce length.
pub const NONCE_LEN: usize = 24;

/// A 256-bit key, wiped on drop; `Debug` names no byte.
#[derive(Clone)]
pub struct Key(pub(crate) Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(redacted)")
    }
}

impl Key {
    /// A fresh random key.
    pub fn generate() -> Result<Key, RandomError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(k.as_mut())?;
        Ok(Key(k))
    }

    /// A key from 32 bytes (e.g. read from a kit or derived elsewhere).
    pub fn from_bytes(bytes: &[u8]) -> Option<Key> {
        let arr: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Key(Zeroizing::new(arr)))
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// HKDF-SHA256(ikm = self, salt, info) to a new key.
    pub fn derive(&self, salt: &[u8], info: &[u8]) -> Key {
        hkdf(self.0.as_ref(), salt, info)
    }
}

/// HKDF-SHA256 of arbitrary input key material.
pub fn hkdf(ikm: &[u8], salt: &[u8], info: &[u8]) -> Key {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    // 32 bytes is far below HKDF-SHA256's limit of 255 * 32: this cannot fail.
    let _ = hk.expand(info, out.as_mut());
    Key(out)
}

/// The operating system's random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

/// Fills `buf` from the operating system's CSPRNG.
#[allow(clippy::disallowed_methods)] // this is the client's single home of randomness
pub fn fill_random(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|_| RandomError)
}

/// `n` random bytes.
pub fn random_vec(n: usize) -> Result<Vec<u8>, RandomError> {
    let mut v = vec![0u8; n];
    fill_random(&mut v)?;
    Ok(v)
}

/// Encrypts `msg` under `key` with `aad`; returns (nonce, ciphertext with tag).
pub fn seal(key: &Key, aad: &[u8], msg: &[u8]) -> Result<([u8; NONCE_LEN], Vec<u8>), RandomError> {
    let mut nonce = XNonce::default();
    fill_random(&mut nonce)?;
    let ct = cipher(key)
        .encrypt(&nonce, Payload { msg, aad })
        // Encryption fails only for messages beyond 256 GiB, which nothing here writes.
        .map_err(|_| RandomError)?;
    let mut n = [0u8; NONCE_LEN];
    n.copy_from_slice(&nonce);
    Ok((n, ct))
}

/// Encrypts with a nonce the caller drew from [`fill_random`] (when the nonce must be written
/// into the associated data before encrypting).
pub fn seal_with_nonce(key: &Key, aad: &[u8], nonce: &[u8; NONCE_LEN], msg: &[u8]) -> Vec<u8> {
    let nonce = XNonce::from(*nonce);
    cipher(key)
        .encrypt(&nonce, Payload { msg, aad })
        .expect("XChaCha20-Poly1305 encrypts any message below 256 GiB")
}

/// Decrypts; `None` when the key, nonce, aad or ciphertext do not belong together.
pub fn open(key: &Key, aad: &[u8], nonce: &[u8], ct: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let nonce = XNonce::try_from(nonce).ok()?;
    cipher(key)
        .decrypt(&nonce, Payload { msg: ct, aad })
        .ok()
        .map(Zeroizing::new)
}

fn cipher(key: &Key) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new_from_slice(key.0.as_ref()).expect("a Key is always 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_text_opens_only_with_its_aad() {
        let key = Key::generate().unwrap();
        let (n, ct) = seal(&key, b"a", b"hello").unwrap();
        assert_eq!(open(&key, b"a", &n, &ct).unwrap().as_slice(), b"hello");
        assert!(open(&key, b"b", &n, &ct).is_none());
        assert!(open(&Key::generate().unwrap(), b"a", &n, &ct).is_none());
    }

    #[test]
    fn key_debug_is_redacted() {
        let key = Key::from_bytes(&[0xAB; 32]).unwrap();
        let s = format!("{key:?}");
        assert!(
            !s.contains("171") && !s.to_lowercase().contains("ab"),
            "{s}"
        );
    }
}
