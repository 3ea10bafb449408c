//! The vault: a random vault key (VK) encrypts the content (entries and settings) with
//! XChaCha20-Poly1305; *slots* wrap VK under keys derived from what the user has: a PIN or
//! passphrase (Argon2id with stored, bounded parameters) or the backup's account unlock key
//! (password + account key, see the backup). Any one slot opens the vault.
//!
//! File layout (three lines):
//!
//! ```text
//! TSAV1
//! {"format":1,"vault_id":…,"generation":N,"slots":[…],"content_nonce":…}
//! <base64 ciphertext>
//! ```
//!
//! The associated data of the content is the header line **exactly as stored** (never
//! re-serialized before checking), so a changed generation, slot list or parameter makes the
//! content refuse to open (Aegis leaves its header unauthenticated). Each slot's wrap is bound
//! to the vault id, its own id and kind, so a slot moved from another vault opens nothing.
//!
//! [`file`] owns how the bytes reach the disk (atomic save, previous generation, lock).

pub mod file;

use data_encoding::BASE64;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{self, Key, RandomError};
use crate::entry::Entry;
use crate::kdf::{Cost, KdfError, KdfParams};

/// First line of every vault file.
const MAGIC: &[u8] = b"TSAV1";
/// Largest vault file read (a 10,000-entry vault is about 3 MB).
pub const MAX_FILE: usize = 64 * 1024 * 1024;

/// Why a vault did not open or save. Wrong PIN, wrong passphrase and a damaged slot are one
/// kind ([`VaultError::Unlock`]): nothing tells an attacker which.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// No vault at the path yet (`tessera-auth init`).
    #[error("no vault at {0} (create one with `tessera-auth init`)")]
    NotFound(String),
    /// `init` on an existing vault.
    #[error("a vault already exists at {0}")]
    Exists(String),
    /// No slot opened with what was given.
    #[error("wrong PIN or passphrase")]
    Unlock,
    /// The file is not a vault or was changed (a flipped byte, a truncated write).
    #[error("the vault file is damaged or was changed: {0}")]
    Damaged(&'static str),
    /// Stored key derivation parameters out of bounds (refused before running).
    #[error(transparent)]
    Kdf(#[from] KdfError),
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl VaultError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> VaultError {
        let what = what.into();
        move |source| VaultError::Io { what, source }
    }
}

/// How a slot's key-encryption key is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotKind {
    /// Digits only, typed on every unlock.
    Pin,
    /// A passphrase, typed on every unlock.
    Passphrase,
    /// The backup's account unlock key (password + account key): opens the vault when the
    /// PIN is forgotten.
    Auk,
}

impl SlotKind {
    fn as_str(self) -> &'static str {
        match self {
            SlotKind::Pin => "pin",
            SlotKind::Passphrase => "passphrase",
            SlotKind::Auk => "auk",
        }
    }
}

/// One way in: VK wrapped under a key-encryption key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slot {
    /// 16 hex characters, random.
    pub id: String,
    pub kind: SlotKind,
    /// Argon2id parameters of PIN and passphrase slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kdf: Option<KdfParams>,
    /// Base64 nonce and wrapped VK (ciphertext + tag).
    pub nonce: String,
    pub wrapped: String,
}

/// The clear-text first part of a vault file. Names no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: u32,
    /// 32 hex characters, random, fixed for the vault's life.
    pub vault_id: String,
    pub created: u64,
    /// +1 on every save.
    pub generation: u64,
    pub slots: Vec<Slot>,
    pub content_nonce: String,
}

/// What the vault holds.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Content {
    pub version: u32,
    /// Tokens, tombstones included (filter with [`Content::live`]).
    pub entries: Vec<Entry>,
    /// Backup settings and keys (present once `backup setup` ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<crate::backup::BackupState>,
}

impl Content {
    /// Entries that are not tombstones.
    pub fn live(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| !e.deleted)
    }
}

/// What opens a slot.
#[derive(Clone, Copy)]
pub enum Credential<'a> {
    /// A PIN or passphrase (opens `pin` and `passphrase` slots).
    Secret(&'a [u8]),
    /// The account unlock key (opens `auk` slots).
    Auk(&'a Key),
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Secret(_) => "Credential::Secret(redacted)",
            Credential::Auk(_) => "Credential::Auk(redacted)",
        })
    }
}

/// An open vault: the header, the vault key and the content. `Debug` prints the header and
/// the number of entries only.
pub struct Vault {
    pub header: Header,
    key: Key,
    pub content: Content,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("vault_id", &self.header.vault_id)
            .field("generation", &self.header.generation)
            .field("slots", &self.header.slots.len())
            .field("entries", &self.content.entries.len())
            .finish_non_exhaustive()
    }
}

fn slot_aad(vault_id: &str, slot_id: &str, kind: SlotKind) -> Vec<u8> {
    let mut aad = b"tessera/authenticator/v1/slot\0".to_vec();
    for part in [vault_id, slot_id, kind.as_str()] {
        aad.extend_from_slice(part.as_bytes());
        aad.push(0);
    }
    aad
}

fn slot_info(kind: SlotKind) -> Vec<u8> {
    format!("tessera/authenticator/v1/slot/{}", kind.as_str()).into_bytes()
}

/// The slot's key-encryption key: HKDF(Argon2id(secret) or AUK, salt = vault id, info = kind).
fn kek(
    vault_id: &str,
    kind: SlotKind,
    kdf: Option<&KdfParams>,
    cred: Credential<'_>,
) -> Result<Option<Key>, VaultError> {
    let ikm = match (kind, cred) {
        (SlotKind::Pin | SlotKind::Passphrase, Credential::Secret(s)) => {
            let kdf = kdf.ok_or(VaultError::Damaged("a PIN slot without parameters"))?;
            kdf.derive(s)?
        }
        (SlotKind::Auk, Credential::Auk(k)) => k.clone(),
        _ => return Ok(None),
    };
    Ok(Some(ikm.derive(vault_id.as_bytes(), &slot_info(kind))))
}

fn random_hex(n: usize) -> Result<String, RandomError> {
    Ok(data_encoding::HEXLOWER.encode(&crypto::random_vec(n)?))
}

/// A parsed file: the header bytes as stored, the header, the ciphertext.
struct Parsed<'a> {
    header_bytes: &'a [u8],
    header: Header,
    ct: Vec<u8>,
}

fn parse(bytes: &[u8]) -> Result<Parsed<'_>, VaultError> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .and_then(|r| r.strip_prefix(b"\n"))
        .ok_or(VaultError::Damaged("not a tessera-auth vault"))?;
    let nl = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(VaultError::Damaged("truncated"))?;
    let (header_bytes, rest) = (&rest[..nl], &rest[nl + 1..]);
    let body = rest
        .strip_suffix(b"\n")
        .ok_or(VaultError::Damaged("truncated"))?;
    let header: Header =
        serde_json::from_slice(header_bytes).map_err(|_| VaultError::Damaged("header"))?;
    if header.format != 1 {
        return Err(VaultError::Damaged("unknown format version"));
    }
    let ct = BASE64
        .decode(body)
        .map_err(|_| VaultError::Damaged("ciphertext is not base64"))?;
    Ok(Parsed {
        header_bytes,
        header,
        ct,
    })
}

fn open_content(key: &Key, p: &Parsed<'_>) -> Result<Content, VaultError> {
    let nonce = BASE64
        .decode(p.header.content_nonce.as_bytes())
        .map_err(|_| VaultError::Damaged("nonce"))?;
    let plain = crypto::open(key, p.header_bytes, &nonce, &p.ct)
        .ok_or(VaultError::Damaged("the content does not match its header"))?;
    serde_json::from_slice(&plain).map_err(|_| VaultError::Damaged("content"))
}

impl Vault {
    /// A new vault with one PIN or passphrase slot at `cost`.
    pub fn create(
        kind: SlotKind,
        secret: &[u8],
        cost: Cost,
        now: u64,
    ) -> Result<Vault, VaultError> {
        let mut vault = Vault {
            header: Header {
                format: 1,
                vault_id: random_hex(16)?,
                created: now,
                generation: 0,
                slots: Vec::new(),
                content_nonce: String::new(),
            },
            key: Key::generate()?,
            content: Content {
                version: 1,
                ..Content::default()
            },
        };
        vault.add_secret_slot(kind, secret, cost)?;
        Ok(vault)
    }

    fn wrap_slot(
        &self,
        kind: SlotKind,
        kdf: Option<KdfParams>,
        cred: Credential<'_>,
    ) -> Result<Slot, VaultError> {
        let id = random_hex(8)?;
        let kek = kek(&self.header.vault_id, kind, kdf.as_ref(), cred)?
            .ok_or(VaultError::Damaged("credential does not fit the slot kind"))?;
        let (nonce, wrapped) = crypto::seal(
            &kek,
            &slot_aad(&self.header.vault_id, &id, kind),
            self.key.as_bytes(),
        )?;
        Ok(Slot {
            id,
            kind,
            kdf,
            nonce: BASE64.encode(&nonce),
            wrapped: BASE64.encode(&wrapped),
        })
    }

    /// Adds a PIN or passphrase slot (fresh salt).
    pub fn add_secret_slot(
        &mut self,
        kind: SlotKind,
        secret: &[u8],
        cost: Cost,
    ) -> Result<(), VaultError> {
        let kdf = KdfParams::new(cost)?;
        kdf.check()?;
        let slot = self.wrap_slot(kind, Some(kdf), Credential::Secret(secret))?;
        self.header.slots.push(slot);
        Ok(())
    }

    /// Replaces every PIN and passphrase slot by one new slot (`pin change`).
    pub fn replace_secret_slots(
        &mut self,
        kind: SlotKind,
        secret: &[u8],
        cost: Cost,
    ) -> Result<(), VaultError> {
        let kdf = KdfParams::new(cost)?;
        kdf.check()?;
        let slot = self.wrap_slot(kind, Some(kdf), Credential::Secret(secret))?;
        self.header
            .slots
            .retain(|s| !matches!(s.kind, SlotKind::Pin | SlotKind::Passphrase));
        self.header.slots.push(slot);
        Ok(())
    }

    /// Sets the account-unlock-key slot (replacing an earlier one).
    pub fn set_auk_slot(&mut self, auk: &Key) -> Result<(), VaultError> {
        let slot = self.wrap_slot(SlotKind::Auk, None, Credential::Auk(auk))?;
        self.header.slots.retain(|s| s.kind != SlotKind::Auk);
        self.header.slots.push(slot);
        Ok(())
    }

    /// Opens a vault file's bytes with a credential.
    pub fn open(bytes: &[u8], cred: Credential<'_>) -> Result<Vault, VaultError> {
        let p = parse(bytes)?;
        // Check every slot's parameters first: a hostile header is refused before any
        // Argon2id runs, whichever slot comes first.
        for slot in &p.header.slots {
            if let Some(kdf) = &slot.kdf {
                kdf.check()?;
            }
        }
        let mut key = None;
        for slot in &p.header.slots {
            let Some(kek) = kek(&p.header.vault_id, slot.kind, slot.kdf.as_ref(), cred)? else {
                continue;
            };
            let (Ok(nonce), Ok(wrapped)) = (
                BASE64.decode(slot.nonce.as_bytes()),
                BASE64.decode(slot.wrapped.as_bytes()),
            ) else {
                continue;
            };
            let aad = slot_aad(&p.header.vault_id, &slot.id, slot.kind);
            if let Some(vk) = crypto::open(&kek, &aad, &nonce, &wrapped)
                && let Some(k) = Key::from_bytes(&vk)
            {
                key = Some(k);
                break;
            }
        }
        let key = key.ok_or(VaultError::Unlock)?;
        let content = open_content(&key, &p)?;
        Ok(Vault {
            header: p.header,
            key,
            content,
        })
    }

    /// Opens another generation of the same vault with the key already known (the previous
    /// generation after a damaged save; the read-back check).
    pub fn reopen(&self, bytes: &[u8]) -> Result<Vault, VaultError> {
        let p = parse(bytes)?;
        if p.header.vault_id != self.header.vault_id {
            return Err(VaultError::Damaged("another vault"));
        }
        let content = open_content(&self.key, &p)?;
        Ok(Vault {
            header: p.header,
            key: self.key.clone(),
            content,
        })
    }

    /// The file bytes for the next generation (a fresh content nonce; the header is written
    /// once and those exact bytes are the associated data).
    pub fn encode_next(&self) -> Result<(Header, Zeroizing<Vec<u8>>), VaultError> {
        let plain = Zeroizing::new(
            serde_json::to_vec(&self.content).map_err(|_| VaultError::Damaged("content"))?,
        );
        let mut header = self.header.clone();
        header.generation += 1;
        // The nonce is chosen before the header is written, as the header holds it.
        let mut nonce = [0u8; crypto::NONCE_LEN];
        crypto::fill_random(&mut nonce)?;
        header.content_nonce = BASE64.encode(&nonce);
        let header_bytes =
            serde_json::to_vec(&header).map_err(|_| VaultError::Damaged("header"))?;
        let ct = crypto::seal_with_nonce(&self.key, &header_bytes, &nonce, &plain);
        let mut out = Zeroizing::new(Vec::with_capacity(
            header_bytes.len() + ct.len() * 4 / 3 + 16,
        ));
        out.extend_from_slice(MAGIC);
        out.push(b'\n');
        out.extend_from_slice(&header_bytes);
        out.push(b'\n');
        out.extend_from_slice(BASE64.encode(&ct).as_bytes());
        out.push(b'\n');
        Ok((header, out))
    }

    pub fn vault_id(&self) -> &str {
        &self.header.vault_id
    }
}

#[cfg(test)]
mod tests;
