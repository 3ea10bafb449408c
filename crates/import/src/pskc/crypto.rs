//! PSKC encryption (RFC 6030 §6): the ciphers of `xenc:EncryptionMethod`, the HMACs of
//! `MACMethod`, and PBKDF2 (§6.2, PKCS #5 v2.0).
//!
//! Every failure that depends on the key (bad padding, a key-wrap integrity failure, a MAC that
//! does not match) is the one [`Refusal::WrongKeyOrMac`], so a file cannot serve as an oracle.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::Refusal;
use crate::reason::detail;

/// Ciphers of `EncryptedValue` and `MACKey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cipher {
    AesCbc(usize),
    TripleDesCbc,
    AesKw(usize),
}

impl Cipher {
    /// Reads an algorithm URI: the fragment after `#` (or the whole text), any case, with the
    /// `pbe-` spelling of drafts.
    pub(crate) fn from_uri(uri: &str) -> Result<Cipher, Refusal> {
        let name = uri
            .rsplit('#')
            .next()
            .unwrap_or(uri)
            .trim()
            .to_ascii_lowercase();
        let name = name.strip_prefix("pbe-").unwrap_or(&name);
        Ok(match name {
            "aes128-cbc" => Cipher::AesCbc(16),
            "aes192-cbc" => Cipher::AesCbc(24),
            "aes256-cbc" => Cipher::AesCbc(32),
            "tripledes-cbc" | "3des-cbc" | "des3-cbc" => Cipher::TripleDesCbc,
            "kw-aes128" => Cipher::AesKw(16),
            "kw-aes192" => Cipher::AesKw(24),
            "kw-aes256" => Cipher::AesKw(32),
            _ => {
                return Err(Refusal::AlgorithmUnsupported {
                    algorithm: detail(uri),
                });
            }
        })
    }

    /// The key length the cipher needs, in bytes.
    pub(crate) fn key_len(self) -> usize {
        match self {
            Cipher::AesCbc(n) | Cipher::AesKw(n) => n,
            Cipher::TripleDesCbc => 24,
        }
    }

    /// Key wrap carries its own integrity check; CBC values need a `ValueMAC`.
    pub(crate) fn needs_mac(self) -> bool {
        !matches!(self, Cipher::AesKw(_))
    }

    pub(crate) fn uri(self) -> &'static str {
        match self {
            Cipher::AesCbc(16) => "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            Cipher::AesCbc(24) => "http://www.w3.org/2001/04/xmlenc#aes192-cbc",
            Cipher::AesCbc(_) => "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
            Cipher::TripleDesCbc => "http://www.w3.org/2001/04/xmlenc#tripledes-cbc",
            Cipher::AesKw(16) => "http://www.w3.org/2001/04/xmlenc#kw-aes128",
            Cipher::AesKw(24) => "http://www.w3.org/2001/04/xmlenc#kw-aes192",
            Cipher::AesKw(_) => "http://www.w3.org/2001/04/xmlenc#kw-aes256",
        }
    }

    /// Decrypts a `CipherValue` (for CBC: the IV followed by the ciphertext, PKCS #7 padded).
    pub(crate) fn decrypt(self, key: &[u8], data: &[u8]) -> Result<Zeroizing<Vec<u8>>, Refusal> {
        if key.len() != self.key_len() {
            return Err(Refusal::WrongKeyOrMac);
        }
        let wrong = |_| Refusal::WrongKeyOrMac;
        match self {
            Cipher::AesCbc(n) => {
                if data.len() < 32 {
                    return Err(Refusal::WrongKeyOrMac);
                }
                let (iv, ct) = data.split_at(16);
                let out = match n {
                    16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
                        .map_err(|_| Refusal::WrongKeyOrMac)?
                        .decrypt_padded_vec::<Pkcs7>(ct),
                    24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
                        .map_err(|_| Refusal::WrongKeyOrMac)?
                        .decrypt_padded_vec::<Pkcs7>(ct),
                    _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
                        .map_err(|_| Refusal::WrongKeyOrMac)?
                        .decrypt_padded_vec::<Pkcs7>(ct),
                };
                out.map(Zeroizing::new).map_err(wrong)
            }
            Cipher::TripleDesCbc => {
                if data.len() < 16 {
                    return Err(Refusal::WrongKeyOrMac);
                }
                let (iv, ct) = data.split_at(8);
                cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
                    .map_err(|_| Refusal::WrongKeyOrMac)?
                    .decrypt_padded_vec::<Pkcs7>(ct)
                    .map(Zeroizing::new)
                    .map_err(wrong)
            }
            Cipher::AesKw(n) => {
                if data.len() < 24 || !data.len().is_multiple_of(8) {
                    return Err(Refusal::WrongKeyOrMac);
                }
                let mut out = Zeroizing::new(vec![0u8; data.len()]);
                let len = match n {
                    16 => aes_kw::KwAes128::new_from_slice(key)
                        .map_err(|_| Refusal::WrongKeyOrMac)?
                        .unwrap_key(data, &mut out)
                        .map(<[u8]>::len),
                    24 => aes_kw::KwAes192::new_from_slice(key)
                        .map_err(|_| Refusal::WrongKeyOrMac)?
                        .unwrap_key(data, &mut out)
                        .map(<[u8]>::len),
                    _ => aes_kw::KwAes256::new_from_slice(key)
                        .map_err(|_| Refusal::WrongKeyOrMac)?
                        .unwrap_key(data, &mut out)
                        .map(<[u8]>::len),
                }
                .map_err(|_| Refusal::WrongKeyOrMac)?;
                out.truncate(len);
                Ok(out)
            }
        }
    }

    /// Encrypts for the writer: AES-CBC with the given IV (16 bytes), IV prepended.
    pub(crate) fn encrypt_cbc(self, key: &[u8], iv: &[u8], plain: &[u8]) -> Vec<u8> {
        let ct = match self {
            Cipher::AesCbc(16) => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
                .map(|c| c.encrypt_padded_vec::<Pkcs7>(plain)),
            Cipher::AesCbc(24) => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
                .map(|c| c.encrypt_padded_vec::<Pkcs7>(plain)),
            _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
                .map(|c| c.encrypt_padded_vec::<Pkcs7>(plain)),
        };
        let mut out = iv.to_vec();
        // The writer passes keys and IVs of the cipher's own lengths.
        out.extend_from_slice(&ct.unwrap_or_default());
        out
    }
}

/// The HMAC of `MACMethod` (RFC 6030 §6.1.1) and of PBKDF2's `PRF`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MacHash {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl MacHash {
    /// `…xmldsig#hmac-sha1`, `…xmldsig-more#hmac-sha256`, and so on.
    pub(crate) fn from_uri(uri: &str) -> Result<MacHash, Refusal> {
        let name = uri
            .rsplit('#')
            .next()
            .unwrap_or(uri)
            .trim()
            .to_ascii_lowercase();
        Ok(match name.as_str() {
            "hmac-sha1" | "sha1" => MacHash::Sha1,
            "hmac-sha224" | "sha224" => MacHash::Sha224,
            "hmac-sha256" | "sha256" => MacHash::Sha256,
            "hmac-sha384" | "sha384" => MacHash::Sha384,
            "hmac-sha512" | "sha512" => MacHash::Sha512,
            _ => {
                return Err(Refusal::AlgorithmUnsupported {
                    algorithm: detail(uri),
                });
            }
        })
    }

    pub(crate) fn uri(self) -> &'static str {
        match self {
            MacHash::Sha1 => "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
            MacHash::Sha224 => "http://www.w3.org/2001/04/xmldsig-more#hmac-sha224",
            MacHash::Sha256 => "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
            MacHash::Sha384 => "http://www.w3.org/2001/04/xmldsig-more#hmac-sha384",
            MacHash::Sha512 => "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512",
        }
    }

    pub(crate) fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            // HMAC takes keys of any length.
            match <M as KeyInit>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        match self {
            MacHash::Sha1 => run::<Hmac<sha1::Sha1>>(key, data),
            MacHash::Sha224 => run::<Hmac<sha2::Sha224>>(key, data),
            MacHash::Sha256 => run::<Hmac<sha2::Sha256>>(key, data),
            MacHash::Sha384 => run::<Hmac<sha2::Sha384>>(key, data),
            MacHash::Sha512 => run::<Hmac<sha2::Sha512>>(key, data),
        }
    }

    /// Checks `ValueMAC` in constant time.
    pub(crate) fn verify(self, key: &[u8], data: &[u8], expected: &[u8]) -> Result<(), Refusal> {
        let got = self.mac(key, data);
        if !got.is_empty() && bool::from(got.ct_eq(expected)) {
            Ok(())
        } else {
            Err(Refusal::WrongKeyOrMac)
        }
    }

    pub(crate) fn pbkdf2(self, password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        match self {
            MacHash::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, rounds, out),
            MacHash::Sha224 => pbkdf2::pbkdf2_hmac::<sha2::Sha224>(password, salt, rounds, out),
            MacHash::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, rounds, out),
            MacHash::Sha384 => pbkdf2::pbkdf2_hmac::<sha2::Sha384>(password, salt, rounds, out),
            MacHash::Sha512 => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, rounds, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::HEXLOWER;

    #[test]
    fn rfc3394_kw_aes128_vector() {
        // RFC 3394 §4.1: 128 bits of key data wrapped with a 128-bit KEK.
        let kek = HEXLOWER
            .decode(b"000102030405060708090a0b0c0d0e0f")
            .unwrap();
        let wrapped = HEXLOWER
            .decode(b"1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5")
            .unwrap();
        let key = Cipher::AesKw(16).decrypt(&kek, &wrapped).unwrap();
        assert_eq!(HEXLOWER.encode(&key), "00112233445566778899aabbccddeeff");
        let mut bad = wrapped.clone();
        bad[3] ^= 1;
        assert_eq!(
            Cipher::AesKw(16).decrypt(&kek, &bad),
            Err(Refusal::WrongKeyOrMac)
        );
    }

    #[test]
    fn rfc6030_figure7_pbkdf2() {
        let salt = data_encoding::BASE64.decode(b"Ej7/PEpyEpw=").unwrap();
        let mut out = [0u8; 16];
        MacHash::Sha1.pbkdf2(b"qwerty", &salt, 1000, &mut out);
        assert_eq!(HEXLOWER.encode(&out), "651e63cd57008476af1ff6422cd02e41");
    }

    #[test]
    fn cbc_round_trip_and_wrong_key() {
        let key = [7u8; 32];
        let ct = Cipher::AesCbc(32).encrypt_cbc(&key, &[1u8; 16], b"12345678901234567890");
        let plain = Cipher::AesCbc(32).decrypt(&key, &ct).unwrap();
        assert_eq!(&plain[..], b"12345678901234567890");
        let other = [8u8; 32];
        // A wrong key fails on the padding almost always; whatever happens, never the plaintext.
        assert_ne!(
            Cipher::AesCbc(32)
                .decrypt(&other, &ct)
                .ok()
                .as_deref()
                .map(|v| &v[..]),
            Some(&b"12345678901234567890"[..])
        );
    }
}
