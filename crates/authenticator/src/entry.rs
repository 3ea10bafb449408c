//! The tokens inside a vault. Close to Aegis's content v3 so exports are a mapping; each entry
//! has a random id and an `updated` time so two devices' copies merge entry by entry, and a
//! deleted entry stays as a tombstone (no secret) so a merge cannot bring it back.
//!
//! `Debug` never prints a secret: [`Secret`] prints `Secret(redacted)`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tessera_otp::{HashAlgorithm, Secret};
use zeroize::Zeroizing;

/// What kind of code an entry makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EntryKind {
    /// RFC 6238, `period` seconds a step.
    Totp { period: u64 },
    /// RFC 4226; `counter` is the next counter a code is made from.
    Hotp { counter: u64 },
    /// Steam Guard: HMAC-SHA1 over 30-second steps, 5 characters of Steam's alphabet.
    Steam,
}

/// Where an entry came from (shown in `list`, used by exports and the backup).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Origin {
    /// `uri`, `qr`, `ga`, `list`, `aegis`, `2fas`, `andotp`, `freeotp+`, `enroll`.
    pub kind: String,
    /// The Tessera server an enrolled token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

/// One token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// 32 hex characters, random; stable across devices (the merge key).
    pub id: String,
    #[serde(flatten)]
    pub kind: EntryKind,
    /// The provider, e.g. `Tessera` or `GitHub`.
    #[serde(default)]
    pub issuer: String,
    /// The account at the provider.
    #[serde(default)]
    pub account: String,
    /// The user's own name for it ("Diensthandy"); empty: issuer and account are shown.
    #[serde(default)]
    pub name: String,
    /// The shared secret, stored as base32. `None` only in a tombstone.
    #[serde(
        default,
        serialize_with = "ser_secret",
        deserialize_with = "de_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret: Option<Secret>,
    #[serde(with = "algo")]
    pub algorithm: HashAlgorithm,
    pub digits: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    #[serde(default)]
    pub origin: Origin,
    /// Recovery codes the server issued with this token (enrollment links).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery_codes: Vec<String>,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last change (rename, counter, delete): the newer copy wins a merge.
    pub updated: u64,
    /// A tombstone: deleted at `updated`, the secret is gone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl Entry {
    /// A new entry with a random id.
    pub fn new(
        kind: EntryKind,
        secret: Secret,
        algorithm: HashAlgorithm,
        digits: u32,
        now: u64,
    ) -> Result<Entry, crate::crypto::RandomError> {
        Ok(Entry {
            id: data_encoding::HEXLOWER.encode(&crate::crypto::random_vec(16)?),
            kind,
            issuer: String::new(),
            account: String::new(),
            name: String::new(),
            secret: Some(secret),
            algorithm,
            digits,
            note: String::new(),
            origin: Origin::default(),
            recovery_codes: Vec::new(),
            created: now,
            updated: now,
            deleted: false,
        })
    }

    /// What the user sees: the name if set, else `Issuer (account)`, `Issuer` or `account`.
    pub fn label(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        match (self.issuer.is_empty(), self.account.is_empty()) {
            (false, false) => format!("{} ({})", self.issuer, self.account),
            (false, true) => self.issuer.clone(),
            (true, false) => self.account.clone(),
            (true, true) => format!("token {}", &self.id[..8.min(self.id.len())]),
        }
    }

    /// Turns the entry into a tombstone: the secret and the names are dropped.
    pub fn bury(&mut self, now: u64) {
        self.secret = None;
        self.issuer.clear();
        self.account.clear();
        self.name.clear();
        self.note.clear();
        self.recovery_codes.clear();
        self.deleted = true;
        self.updated = now.max(self.updated + 1);
    }

    /// Whether a search text matches the name, issuer, account or id prefix (case-insensitive).
    pub fn matches(&self, filter: &str) -> bool {
        let f = filter.to_lowercase();
        [&self.name, &self.issuer, &self.account]
            .iter()
            .any(|s| s.to_lowercase().contains(&f))
            || self.label().to_lowercase().contains(&f)
            || (f.len() >= 4 && self.id.starts_with(&f))
    }
}

fn ser_secret<S: Serializer>(secret: &Option<Secret>, s: S) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => {
            let b32 = Zeroizing::new(secret.to_base32());
            s.serialize_str(&b32)
        }
        None => s.serialize_none(),
    }
}

fn de_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    let text: Option<Zeroizing<String>> = Option::<String>::deserialize(d)?.map(Zeroizing::new);
    match text {
        None => Ok(None),
        Some(t) => Secret::from_base32(&t)
            .map(Some)
            .map_err(|_| serde::de::Error::custom("an entry's secret is not base32")),
    }
}

mod algo {
    use super::*;

    pub fn serialize<S: Serializer>(a: &HashAlgorithm, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HashAlgorithm, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map_err(|_| serde::de::Error::custom("unknown hash algorithm"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SEED_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn entry_debug_prints_no_seed() {
        let secret = Secret::from_base32(SEED_B32).unwrap();
        let hex = secret.to_hex();
        let e = Entry::new(
            EntryKind::Totp { period: 30 },
            secret,
            HashAlgorithm::Sha1,
            6,
            1,
        )
        .unwrap();
        let dbg = format!("{e:?}");
        assert!(
            !dbg.contains(SEED_B32) && !dbg.to_lowercase().contains(&hex),
            "{dbg}"
        );
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn tombstone_keeps_id_and_drops_secret() {
        let secret = Secret::from_base32(SEED_B32).unwrap();
        let mut e = Entry::new(
            EntryKind::Totp { period: 30 },
            secret,
            HashAlgorithm::Sha1,
            6,
            5,
        )
        .unwrap();
        e.issuer = "Acme".into();
        e.bury(5);
        assert!(e.deleted && e.secret.is_none() && e.issuer.is_empty());
        assert!(e.updated > 5);
        let json = serde_json::to_string(&e).unwrap();
        assert!(!json.contains(SEED_B32), "{json}");
        let back: Entry = serde_json::from_str(&json).unwrap();
        assert!(back.deleted && back.id == e.id);
    }
}
