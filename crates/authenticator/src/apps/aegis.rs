//! Aegis Authenticator vaults (`docs/vault.md` of the Aegis project): plain, or encrypted with a
//! random master key that password slots wrap (scrypt, then AES-256-GCM; the content is
//! AES-256-GCM under the master key). Read and written.
//!
//! ```text
//! {"version":1,"header":{"slots":[{"type":1,"uuid","key","key_params":{"nonce","tag"},"n","r","p","salt"}],
//!                        "params":{"nonce","tag"}},
//!  "db": <base64 ciphertext> | {"version":2|3,"entries":[{"type","uuid","name","issuer","note","info":{…}}]}}
//! ```
//!
//! scrypt parameters from a file are bounded before they run (at most 1 GiB of memory).

use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_import::Refusal;
use zeroize::Zeroizing;

use super::{AppError, PasswordSource, Raw, gcm_open, gcm_seal, json, locate, malformed, push};
use crate::entry::{Entry, EntryKind};
use crate::import::Found;

/// scrypt cost of our encrypted exports: Aegis's own (N = 2^15, r = 8, p = 1).
const EXPORT_N: u64 = 1 << 15;
/// The most memory a file's scrypt parameters may ask for (128 · r · N bytes).
const MAX_SCRYPT_BYTES: u64 = 1 << 30;

#[derive(Deserialize)]
struct File {
    version: u32,
    header: Header,
    db: Value,
}

#[derive(Deserialize)]
struct Header {
    slots: Option<Vec<Slot>>,
    params: Option<KeyParams>,
}

#[derive(Deserialize)]
struct Slot {
    #[serde(rename = "type")]
    kind: u32,
    key: String,
    key_params: KeyParams,
    n: Option<u64>,
    r: Option<u32>,
    p: Option<u32>,
    salt: Option<String>,
}

#[derive(Deserialize)]
struct KeyParams {
    nonce: String,
    tag: String,
}

#[derive(Deserialize)]
struct Db {
    version: u32,
    entries: Vec<DbEntry>,
}

#[derive(Deserialize)]
struct DbEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    note: Option<String>,
    info: Info,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Info {
    secret: Option<String>,
    algo: Option<String>,
    digits: Option<i64>,
    period: Option<i64>,
    counter: Option<i64>,
}

fn hex(s: &str, what: &str) -> Result<Vec<u8>, AppError> {
    HEXLOWER_PERMISSIVE
        .decode(s.as_bytes())
        .map_err(|_| malformed(&format!("{what} is not hex")))
}

fn scrypt_key(password: &[u8], slot: &Slot) -> Result<Option<Zeroizing<[u8; 32]>>, AppError> {
    let (Some(n), Some(r), Some(p), Some(salt)) = (slot.n, slot.r, slot.p, &slot.salt) else {
        return Err(malformed("password slot without scrypt parameters"));
    };
    let kdf_invalid = |problem: &str| {
        AppError::Refused(Refusal::KdfInvalid {
            problem: problem.to_owned(),
        })
    };
    if !n.is_power_of_two() || n < 2 {
        return Err(kdf_invalid("scrypt N is not a power of two"));
    }
    if r == 0 || p == 0 || r > 32 || p > 16 || 128 * u64::from(r) * n > MAX_SCRYPT_BYTES {
        return Err(kdf_invalid(
            "scrypt parameters above the limit (1 GiB, r ≤ 32, p ≤ 16)",
        ));
    }
    let log_n = n.trailing_zeros() as u8;
    let params = scrypt::Params::new(log_n, r, p).map_err(|_| kdf_invalid("scrypt parameters"))?;
    let salt = hex(salt, "salt")?;
    let mut out = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, &salt, &params, out.as_mut()).map_err(|_| kdf_invalid("scrypt"))?;
    Ok(Some(out))
}

fn with_tag(ct: &[u8], tag: &str) -> Result<Vec<u8>, AppError> {
    let mut v = ct.to_vec();
    v.extend_from_slice(&hex(tag, "tag")?);
    Ok(v)
}

/// Reads an Aegis vault (asks for the password if it is encrypted).
pub fn read(bytes: &[u8], locator: &str, pw: &mut dyn PasswordSource) -> Result<Found, AppError> {
    let file: File = json(bytes, "Aegis vault")?;
    if file.version != 1 {
        return Err(Refusal::Version {
            version: file.version.to_string(),
        }
        .into());
    }
    let db: Db = match (&file.header.slots, &file.header.params, &file.db) {
        (None, None, Value::Object(_)) => serde_json::from_value(file.db)
            .map_err(|_| malformed("the plain vault's db is not an Aegis database"))?,
        (Some(slots), Some(params), Value::String(ct)) => {
            let password = pw.password(locator)?;
            let mut master = None;
            for slot in slots.iter().filter(|s| s.kind == 1) {
                let Some(kek) = scrypt_key(password.as_bytes(), slot)? else {
                    continue;
                };
                let wrapped = with_tag(&hex(&slot.key, "slot key")?, &slot.key_params.tag)?;
                if let Some(k) = gcm_open(
                    kek.as_ref(),
                    &hex(&slot.key_params.nonce, "nonce")?,
                    &wrapped,
                ) {
                    master = Some(k);
                    break;
                }
            }
            if slots.iter().all(|s| s.kind != 1) {
                return Err(Refusal::AlgorithmUnsupported {
                    algorithm: "Aegis vault without a password slot".into(),
                }
                .into());
            }
            let master = master.ok_or(AppError::Refused(Refusal::WrongKeyOrMac))?;
            let ct = BASE64
                .decode(ct.as_bytes())
                .map_err(|_| malformed("db is not base64"))?;
            let plain = gcm_open(
                &master,
                &hex(&params.nonce, "nonce")?,
                &with_tag(&ct, &params.tag)?,
            )
            .ok_or(AppError::Refused(Refusal::WrongKeyOrMac))?;
            json(&plain, "Aegis database")?
        }
        _ => return Err(malformed("header and db do not fit together")),
    };
    if !(1..=3).contains(&db.version) {
        return Err(Refusal::Version {
            version: db.version.to_string(),
        }
        .into());
    }
    let mut found = Found::default();
    for (i, e) in db.entries.into_iter().take(super::MAX_ENTRIES).enumerate() {
        let loc = locate(i + 1, &e.issuer, &e.name);
        let raw = Raw {
            kind: e.kind,
            secret: None,
            secret_b32: e.info.secret.map(Zeroizing::new),
            algorithm: e.info.algo.unwrap_or_default(),
            digits: e.info.digits,
            period: e.info.period,
            counter: e.info.counter,
            issuer: e.issuer,
            account: e.name,
            note: e.note.unwrap_or_default(),
        };
        push(&mut found, raw, loc, "aegis");
    }
    Ok(found)
}

fn uuid(id: &str) -> String {
    if id.len() == 32 {
        format!(
            "{}-{}-{}-{}-{}",
            &id[..8],
            &id[8..12],
            &id[12..16],
            &id[16..20],
            &id[20..]
        )
    } else {
        id.to_owned()
    }
}

/// The Aegis database (content v3) of the live entries.
fn db(entries: &[&Entry]) -> Zeroizing<String> {
    let list: Vec<Value> = entries
        .iter()
        .filter_map(|e| {
            let secret = e.secret.as_ref()?;
            let mut info = json!({
                "secret": secret.to_base32(),
                "algo": e.algorithm.as_str(),
                "digits": e.digits,
            });
            let kind = match e.kind {
                EntryKind::Totp { period } => {
                    info["period"] = json!(period);
                    "totp"
                }
                EntryKind::Hotp { counter } => {
                    info["counter"] = json!(counter);
                    "hotp"
                }
                EntryKind::Steam => {
                    info["period"] = json!(30);
                    "steam"
                }
            };
            let account = if e.account.is_empty() {
                &e.name
            } else {
                &e.account
            };
            Some(json!({
                "type": kind,
                "uuid": uuid(&e.id),
                "name": account,
                "issuer": e.issuer,
                "note": e.note,
                "favorite": false,
                "icon": null,
                "info": info,
                "groups": [],
            }))
        })
        .collect();
    Zeroizing::new(json!({"version": 3, "entries": list, "groups": []}).to_string())
}

#[derive(Serialize)]
struct OutParams {
    nonce: String,
    tag: String,
}

/// Writes an Aegis vault of `entries`: plain, or encrypted under `password` (scrypt N = 2^15,
/// r = 8, p = 1 and a fresh master key, as Aegis itself writes).
pub fn write(
    entries: &[&Entry],
    password: Option<&str>,
) -> Result<Zeroizing<String>, crate::crypto::RandomError> {
    let content = db(entries);
    let Some(password) = password else {
        let db: Value = serde_json::from_str(&content).unwrap_or(Value::Null);
        return Ok(Zeroizing::new(
            serde_json::to_string_pretty(&json!({
                "version": 1,
                "header": {"slots": null, "params": null},
                "db": db,
            }))
            .unwrap_or_default(),
        ));
    };
    let rnd = crate::crypto::random_vec;
    let master = Zeroizing::new(rnd(32)?);
    let salt = rnd(32)?;
    let params = scrypt::Params::new(EXPORT_N.trailing_zeros() as u8, 8, 1)
        .expect("Aegis's scrypt parameters are valid");
    let mut kek = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password.as_bytes(), &salt, &params, kek.as_mut()).expect("32 bytes of output");
    let mut key_nonce = [0u8; 12];
    crate::crypto::fill_random(&mut key_nonce)?;
    let wrapped = gcm_seal(kek.as_ref(), &key_nonce, &master);
    let (wk, wtag) = wrapped.split_at(wrapped.len() - 16);
    let mut db_nonce = [0u8; 12];
    crate::crypto::fill_random(&mut db_nonce)?;
    let ct = gcm_seal(&master, &db_nonce, content.as_bytes());
    let (c, tag) = ct.split_at(ct.len() - 16);
    let slot_uuid = uuid(&data_encoding::HEXLOWER.encode(&rnd(16)?));
    let hexs = |b: &[u8]| data_encoding::HEXLOWER.encode(b);
    let file = json!({
        "version": 1,
        "header": {
            "slots": [{
                "type": 1,
                "uuid": slot_uuid,
                "key": hexs(wk),
                "key_params": OutParams { nonce: hexs(&key_nonce), tag: hexs(wtag) },
                "n": EXPORT_N, "r": 8, "p": 1,
                "salt": hexs(&salt),
                "repaired": true,
                "is_backup": false,
            }],
            "params": OutParams { nonce: hexs(&db_nonce), tag: hexs(tag) },
        },
        "db": BASE64.encode(c),
    });
    Ok(Zeroizing::new(
        serde_json::to_string_pretty(&file).unwrap_or_default(),
    ))
}
