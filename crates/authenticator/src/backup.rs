//! The zero-knowledge backup: what `tessera-auth` uploads to the Tessera server, and the
//! emergency kit that makes it readable again.
//!
//! Keys (research note §6.2, 1Password's two-secret derivation): the account key AK (128 random
//! bits) never leaves the user's devices and the kit; the password is what the user types at
//! login. `P = Argon2id(password, salt = SHA-256("tessera/backup/v1" ‖ server ‖ user ‖ salt_b))`,
//! `AUK = HKDF(P ‖ AK, salt = user@server, info = "tessera/backup/v1/auk")`. The server sees the
//! password at every login, so a password-only key would be readable by the server; with AK it
//! is not, and a stolen database plus the server key reveal no seed.
//!
//! Blob: `TSBK1` / header JSON (the associated data, as stored) / base64 ciphertext. A fresh
//! backup key BK per upload, wrapped by AUK; the content (entries with tombstones, no PIN slot,
//! no local settings) padded to a multiple of 4 KiB so the size does not tell how many tokens
//! there are. The header's `generation` is authenticated: a download older than this device's
//! last upload is refused (rollback), whatever the server's ETag says.

use data_encoding::BASE64;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::{self, Key, RandomError};
use crate::entry::Entry;
use crate::kdf::{BACKUP_COST, KdfError, KdfParams};

const MAGIC: &[u8] = b"TSBK1";
/// Plaintext is padded to a multiple of this.
pub const PAD: usize = 4096;
/// Crockford's base32 alphabet (no I, L, O, U) and its five check-only symbols.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CHECK: &[u8; 37] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";

/// Why a backup or a kit was refused.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the backup on the server is not a tessera-auth backup or was changed: {0}")]
    Damaged(&'static str),
    /// Wrong password or kit (one kind: nothing says which).
    #[error("the password or the emergency kit does not open this backup")]
    Unlock,
    /// Authenticated generation older than the last upload of this device.
    #[error(
        "the server answered with generation {got}, older than this device's last upload ({last}): refused (an old copy must not replace newer data)"
    )]
    Rollback { got: u64, last: u64 },
    #[error("the backup belongs to {0}, not to this account")]
    OtherAccount(String),
    #[error("not an emergency kit: {0}")]
    Kit(&'static str),
    #[error(transparent)]
    Kdf(#[from] KdfError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// The backup's state inside the local vault (never uploaded).
#[derive(Clone, Serialize, Deserialize)]
pub struct BackupState {
    pub server: String,
    pub user: String,
    /// The account key, 16 bytes base64.
    pub ak: String,
    /// The derived account unlock key, base64 (so syncs need no Argon2 run).
    pub auk: String,
    pub salt_b: String,
    pub kdf: KdfParams,
    /// The last generation this device uploaded or merged.
    pub last_generation: u64,
    pub setup_at: u64,
    #[serde(default)]
    pub last_verified: Option<u64>,
    /// Set when the server said the account was reset after `setup_at`: no more uploads.
    #[serde(default)]
    pub stopped_by_reset: Option<i64>,
    /// The API session of the last login (`/api/v1/me/login`), reused while it lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

impl std::fmt::Debug for BackupState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupState")
            .field("server", &self.server)
            .field("user", &self.user)
            .field("last_generation", &self.last_generation)
            .finish_non_exhaustive()
    }
}

impl BackupState {
    pub fn auk(&self) -> Option<Key> {
        Key::from_bytes(&Zeroizing::new(BASE64.decode(self.auk.as_bytes()).ok()?))
    }

    pub fn ak(&self) -> Option<Zeroizing<Vec<u8>>> {
        BASE64.decode(self.ak.as_bytes()).ok().map(Zeroizing::new)
    }
}

/// The account tag of a kit: 6 Crockford characters of SHA-256(server, user) (not secret; it
/// tells which kit belongs to which account).
pub fn account_tag(server: &str, user: &str) -> String {
    let h = Sha256::digest(format!("{server}\0{user}").as_bytes());
    let v = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    (0..6)
        .map(|i| char::from(CROCKFORD[((v >> (27 - 5 * i)) & 31) as usize]))
        .collect()
}

/// The 26 Crockford symbols of a 128-bit key (the top two bits of 130 are zero).
fn symbols(ak: &[u8]) -> Vec<u8> {
    let mut n = 0u128;
    for b in ak.iter().take(16) {
        n = (n << 8) | u128::from(*b);
    }
    (0..26).rev().map(|i| ((n >> (5 * i)) & 31) as u8).collect()
}

fn check_symbol(values: &[u8]) -> u8 {
    let r = values
        .iter()
        .fold(0u32, |r, v| (r * 32 + u32::from(*v)) % 37);
    CHECK[r as usize]
}

/// The kit's text: `TK1-<tag>-XXXXX-XXXXX-XXXXX-XXXXX-XXXXXXC` (26 symbols and a check symbol
/// that catches any one wrong symbol and any two swapped neighbours before Argon2 runs).
pub fn kit_text(tag: &str, ak: &[u8]) -> String {
    let v = symbols(ak);
    let mut chars: Vec<char> = v
        .iter()
        .map(|s| char::from(CROCKFORD[*s as usize]))
        .collect();
    chars.push(char::from(check_symbol(&v)));
    let s: String = chars.into_iter().collect();
    format!(
        "TK1-{tag}-{}-{}-{}-{}-{}",
        &s[0..5],
        &s[5..10],
        &s[10..15],
        &s[15..20],
        &s[20..27]
    )
}

/// The last group of a kit, which `backup setup` asks to be typed back.
pub fn kit_last_group(kit: &str) -> &str {
    kit.rsplit('-').next().unwrap_or("")
}

/// The kit's QR payload (a setup code): server, user and the key.
pub fn kit_qr(server: &str, user: &str, kit: &str) -> String {
    format!("tessera-kit:1?s={server}&u={user}&k={kit}")
}

fn crockford_value(c: char) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        'O' => '0',
        'I' | 'L' => '1',
        c => c,
    };
    CROCKFORD
        .iter()
        .position(|x| char::from(*x) == c)
        .map(|p| p as u8)
}

/// Reads a kit as typed (any case, with or without hyphens and spaces, `O` for `0`, `I`/`L` for
/// `1`) or scanned (`tessera-kit:1?…&k=…`): the tag and the 16-byte account key.
pub fn parse_kit(text: &str) -> Result<(String, Zeroizing<Vec<u8>>), BackupError> {
    let text = text.trim();
    let text = text
        .split_once("&k=")
        .map_or(text, |(_, k)| k.split('&').next().unwrap_or(""));
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_ascii_uppercase();
    let rest = compact
        .strip_prefix("TK1")
        .ok_or(BackupError::Kit("it starts with TK1-"))?;
    if rest.chars().count() != 6 + 27 {
        return Err(BackupError::Kit("wrong length (TK1-TAG and 27 symbols)"));
    }
    let (tag, key) = rest.split_at(6);
    let mut values = Vec::with_capacity(26);
    for c in key[..26].chars() {
        values.push(crockford_value(c).ok_or(BackupError::Kit(
            "a symbol that is not in the kit's alphabet",
        ))?);
    }
    let check = key.as_bytes()[26].to_ascii_uppercase();
    if check != check_symbol(&values) {
        return Err(BackupError::Kit("the check symbol does not match: a typo"));
    }
    if values[0] > 7 {
        return Err(BackupError::Kit("the first symbol is too large"));
    }
    let mut n = 0u128;
    for v in &values {
        n = (n << 5) | u128::from(*v);
    }
    Ok((tag.to_owned(), Zeroizing::new(n.to_be_bytes().to_vec())))
}

fn password_salt(server: &str, user: &str, salt_b: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"tessera/backup/v1\0");
    h.update(server.as_bytes());
    h.update(b"\0");
    h.update(user.as_bytes());
    h.update(b"\0");
    h.update(salt_b);
    h.finalize().to_vec()
}

/// The Argon2id parameters of a new backup (fresh `salt_b`).
pub fn new_kdf(server: &str, user: &str) -> Result<(KdfParams, Vec<u8>), BackupError> {
    let salt_b = crypto::random_vec(16)?;
    let mut kdf = KdfParams::new(BACKUP_COST)?;
    kdf.salt = BASE64.encode(&password_salt(server, user, &salt_b));
    Ok((kdf, salt_b))
}

/// AUK from the password and the account key (the parameters are checked before Argon2 runs).
pub fn derive_auk(
    kdf: &KdfParams,
    server: &str,
    user: &str,
    salt_b: &[u8],
    password: &[u8],
    ak: &[u8],
) -> Result<Key, BackupError> {
    // The salt is recomputed, not taken from the header alone: a header naming another account
    // or another salt_b derives a different key.
    let mut kdf = kdf.clone();
    kdf.salt = BASE64.encode(&password_salt(server, user, salt_b));
    let p = kdf.derive(password)?;
    let mut ikm = Zeroizing::new(p.as_bytes().to_vec());
    ikm.extend_from_slice(ak);
    Ok(crypto::hkdf(
        &ikm,
        format!("{user}@{server}").as_bytes(),
        b"tessera/backup/v1/auk",
    ))
}

/// The clear-text header of a blob.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BlobHeader {
    pub format: String,
    pub v: u32,
    pub server: String,
    pub user: String,
    pub generation: u64,
    pub created: u64,
    pub kdf: KdfParams,
    pub salt_b: String,
    pub bk_nonce: String,
    pub bk: String,
    pub nonce: String,
}

/// What a backup holds.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BackupContent {
    pub entries: Vec<Entry>,
}

fn bk_aad(server: &str, user: &str) -> Vec<u8> {
    format!("tessera/backup/v1/bk\0{user}\0{server}").into_bytes()
}

/// Seals the entries as generation `generation` under `auk`.
pub fn seal(
    state: &BackupState,
    auk: &Key,
    entries: &[Entry],
    generation: u64,
    now: u64,
) -> Result<Vec<u8>, BackupError> {
    let bk = Key::generate()?;
    let (bk_nonce, bk_ct) = crypto::seal(auk, &bk_aad(&state.server, &state.user), bk.as_bytes())?;
    let mut nonce = [0u8; crypto::NONCE_LEN];
    crypto::fill_random(&mut nonce)?;
    let header = BlobHeader {
        format: "tessera-backup".into(),
        v: 1,
        server: state.server.clone(),
        user: state.user.clone(),
        generation,
        created: now,
        kdf: state.kdf.clone(),
        salt_b: state.salt_b.clone(),
        bk_nonce: BASE64.encode(&bk_nonce),
        bk: BASE64.encode(&bk_ct),
        nonce: BASE64.encode(&nonce),
    };
    let header_bytes = serde_json::to_vec(&header).map_err(|_| BackupError::Damaged("header"))?;
    let content = BackupContent {
        entries: entries.to_vec(),
    };
    let mut plain =
        Zeroizing::new(serde_json::to_vec(&content).map_err(|_| BackupError::Damaged("content"))?);
    // Trailing spaces are JSON whitespace: the padding needs no length field.
    let padded = plain.len().div_ceil(PAD).max(1) * PAD;
    plain.resize(padded, b' ');
    let ct = crypto::seal_with_nonce(&bk, &header_bytes, &nonce, &plain);
    let mut out = Vec::with_capacity(header_bytes.len() + ct.len() * 4 / 3 + 16);
    out.extend_from_slice(MAGIC);
    out.push(b'\n');
    out.extend_from_slice(&header_bytes);
    out.push(b'\n');
    out.extend_from_slice(BASE64.encode(&ct).as_bytes());
    out.push(b'\n');
    Ok(out)
}

/// Reads a blob's header (nothing is decrypted).
pub fn header(blob: &[u8]) -> Result<(BlobHeader, &[u8], &[u8]), BackupError> {
    let rest = blob
        .strip_prefix(MAGIC)
        .and_then(|r| r.strip_prefix(b"\n"))
        .ok_or(BackupError::Damaged("not a tessera-auth backup"))?;
    let nl = rest
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(BackupError::Damaged("truncated"))?;
    let (hb, body) = (&rest[..nl], &rest[nl + 1..]);
    let body = body
        .strip_suffix(b"\n")
        .ok_or(BackupError::Damaged("truncated"))?;
    let h: BlobHeader = serde_json::from_slice(hb).map_err(|_| BackupError::Damaged("header"))?;
    if h.format != "tessera-backup" || h.v != 1 {
        return Err(BackupError::Damaged("unknown format version"));
    }
    h.kdf.check()?;
    Ok((h, hb, body))
}

/// Opens a blob of `server`/`user` with `auk`, refusing a generation older than `last`.
pub fn open(
    blob: &[u8],
    server: &str,
    user: &str,
    auk: &Key,
    last: u64,
) -> Result<(BlobHeader, BackupContent), BackupError> {
    let (h, hb, body) = header(blob)?;
    if h.server != server || h.user != user {
        return Err(BackupError::OtherAccount(format!(
            "{}@{}",
            h.user, h.server
        )));
    }
    let b64 = |s: &str| {
        BASE64
            .decode(s.as_bytes())
            .map_err(|_| BackupError::Damaged("base64"))
    };
    let bk = crypto::open(auk, &bk_aad(server, user), &b64(&h.bk_nonce)?, &b64(&h.bk)?)
        .ok_or(BackupError::Unlock)?;
    let bk = Key::from_bytes(&bk).ok_or(BackupError::Damaged("backup key"))?;
    let ct = BASE64
        .decode(body)
        .map_err(|_| BackupError::Damaged("base64"))?;
    let plain = crypto::open(&bk, hb, &b64(&h.nonce)?, &ct).ok_or(BackupError::Damaged(
        "the content does not match its header",
    ))?;
    // The generation is part of the authenticated header: checked only after it opened.
    if h.generation < last {
        return Err(BackupError::Rollback {
            got: h.generation,
            last,
        });
    }
    let content: BackupContent =
        serde_json::from_slice(&plain).map_err(|_| BackupError::Damaged("content"))?;
    Ok((h, content))
}

/// What a merge changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Merged {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
}

/// Merges another device's entries into ours by id: the newer `updated` wins (a tombstone
/// included, so a deletion on one device is not undone by the other's older copy).
pub fn merge(local: &mut Vec<Entry>, remote: Vec<Entry>) -> Merged {
    let mut m = Merged::default();
    for r in remote {
        match local.iter_mut().find(|l| l.id == r.id) {
            Some(l) => {
                if r.updated > l.updated {
                    if r.deleted && !l.deleted {
                        m.removed += 1;
                    } else {
                        m.updated += 1;
                    }
                    *l = r;
                }
            }
            None => {
                if !r.deleted {
                    m.added += 1;
                }
                local.push(r);
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryKind;
    use crate::kdf::TEST_COST;
    use tessera_otp::{HashAlgorithm, Secret};

    const SEED: &str = "JBSWY3DPEHPK3PXP";

    fn entry(issuer: &str, updated: u64) -> Entry {
        let mut e = Entry::new(
            EntryKind::Totp { period: 30 },
            Secret::from_base32(SEED).unwrap(),
            HashAlgorithm::Sha1,
            6,
            1,
        )
        .unwrap();
        e.issuer = issuer.into();
        e.updated = updated;
        e
    }

    fn state() -> (BackupState, Key) {
        let mut kdf = KdfParams::new(TEST_COST).unwrap();
        let salt_b = crypto::random_vec(16).unwrap();
        kdf.salt = BASE64.encode(&password_salt("https://t.example", "alice", &salt_b));
        let ak = crypto::random_vec(16).unwrap();
        let auk = derive_auk(&kdf, "https://t.example", "alice", &salt_b, b"pw", &ak).unwrap();
        (
            BackupState {
                server: "https://t.example".into(),
                user: "alice".into(),
                ak: BASE64.encode(&ak),
                auk: BASE64.encode(auk.as_bytes()),
                salt_b: BASE64.encode(&salt_b),
                kdf,
                last_generation: 0,
                setup_at: 1,
                last_verified: None,
                stopped_by_reset: None,
                session: None,
            },
            auk,
        )
    }

    #[test]
    fn kit_round_trips_and_catches_every_typo() {
        let ak = crypto::random_vec(16).unwrap();
        let tag = account_tag("https://t.example", "alice");
        let kit = kit_text(&tag, &ak);
        let (t, back) = parse_kit(&kit).unwrap();
        assert_eq!((t.as_str(), back.as_slice()), (tag.as_str(), ak.as_slice()));
        assert_eq!(
            parse_kit(&kit.to_lowercase().replace('-', " "))
                .unwrap()
                .1
                .as_slice(),
            ak.as_slice()
        );
        let qr = kit_qr("https://t.example", "alice", &kit);
        assert_eq!(parse_kit(&qr).unwrap().1.as_slice(), ak.as_slice());
        // Every one-symbol substitution and every swap of neighbours in the key part is caught.
        let chars: Vec<char> = kit.chars().collect();
        let start = "TK1-".len() + 6 + 1;
        for i in start..chars.len() {
            if chars[i] == '-' {
                continue;
            }
            for c in CROCKFORD.iter().map(|b| char::from(*b)) {
                if c == chars[i] {
                    continue;
                }
                let mut t = chars.clone();
                t[i] = c;
                let typo: String = t.iter().collect();
                assert!(parse_kit(&typo).is_err(), "substitution at {i} not caught");
            }
            let j = (i + 1..chars.len()).find(|&j| chars[j] != '-');
            if let Some(j) = j
                && chars[i] != chars[j]
            {
                let mut t = chars.clone();
                t.swap(i, j);
                let typo: String = t.iter().collect();
                assert!(parse_kit(&typo).is_err(), "swap at {i} not caught: {typo}");
            }
        }
    }

    #[test]
    fn a_blob_opens_with_the_right_key_only_and_refuses_rollback() {
        let (st, auk) = state();
        let blob = seal(&st, &auk, &[entry("A", 5)], 4, 10).unwrap();
        assert!(blob.len() > PAD);
        let (h, c) = open(&blob, &st.server, &st.user, &auk, 4).unwrap();
        assert_eq!((h.generation, c.entries.len()), (4, 1));
        assert!(matches!(
            open(&blob, &st.server, &st.user, &auk, 5),
            Err(BackupError::Rollback { got: 4, last: 5 })
        ));
        let other = Key::generate().unwrap();
        assert!(matches!(
            open(&blob, &st.server, &st.user, &other, 0),
            Err(BackupError::Unlock)
        ));
        assert!(matches!(
            open(&blob, &st.server, "bob", &auk, 0),
            Err(BackupError::OtherAccount(_))
        ));
        // A changed generation in the header does not open (it is the associated data).
        let text = String::from_utf8(blob.clone())
            .unwrap()
            .replace("\"generation\":4", "\"generation\":9");
        assert!(open(text.as_bytes(), &st.server, &st.user, &auk, 0).is_err());
        // Wrong password with the right kit derives another key.
        let ak = st.ak().unwrap();
        let wrong = derive_auk(
            &st.kdf,
            &st.server,
            &st.user,
            &BASE64.decode(st.salt_b.as_bytes()).unwrap(),
            b"wrong",
            &ak,
        )
        .unwrap();
        assert!(matches!(
            open(&blob, &st.server, &st.user, &wrong, 0),
            Err(BackupError::Unlock)
        ));
    }

    #[test]
    fn padding_hides_the_number_of_tokens() {
        let (st, auk) = state();
        let one = seal(&st, &auk, &[entry("A", 1)], 1, 1).unwrap();
        let three = seal(
            &st,
            &auk,
            &[entry("A", 1), entry("B", 1), entry("C", 1)],
            1,
            1,
        )
        .unwrap();
        assert_eq!(one.len(), three.len());
    }

    #[test]
    fn merge_keeps_both_devices_edits_and_tombstones_win_when_newer() {
        let a1 = entry("Shared", 10);
        let mut local = vec![a1.clone(), entry("OnlyLocal", 10)];
        let mut renamed = a1.clone();
        renamed.name = "renamed elsewhere".into();
        renamed.updated = 20;
        let mut remote_deleted = local[1].clone();
        remote_deleted.bury(30);
        let remote = vec![renamed, entry("OnlyRemote", 15), remote_deleted];
        let m = merge(&mut local, remote);
        assert_eq!(
            m,
            Merged {
                added: 1,
                updated: 1,
                removed: 1
            }
        );
        assert_eq!(local.len(), 3);
        assert_eq!(local[0].name, "renamed elsewhere");
        assert!(local[1].deleted);
        // An older remote copy does not undo a newer local change.
        let mut older = local[0].clone();
        older.name = "old".into();
        older.updated = 5;
        merge(&mut local, vec![older]);
        assert_eq!(local[0].name, "renamed elsewhere");
    }

    #[test]
    fn backup_state_debug_prints_no_key() {
        let (st, _) = state();
        let d = format!("{st:?}");
        assert!(!d.contains(&st.ak) && !d.contains(&st.auk), "{d}");
    }
}
