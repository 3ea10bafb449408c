//! Google Authenticator exports: `otpauth-migration://offline?data=…`, a base64 protobuf
//! (`MigrationPayload`) of up to about ten accounts per QR code. A large export spans several QR
//! codes of one batch; [`Collector`] gathers the parts in any order and gives the entries once a
//! batch is complete (or a [`SkipReason::BatchIncomplete`] for each entry of a batch that is not).
//!
//! Traps handled: a literal `+` (or the space form-decoding makes of it) in the data, `batch_id`
//! 0 or negative, algorithm and digits as enums where 0 means the default, 80-bit secrets
//! (imported with a warning), MD5 and unknown types skipped per entry, not per batch.
//!
//! [`export_uris`] writes exports (for tests, and for authenticators that move accounts).

use std::collections::BTreeMap;

use data_encoding::{BASE64, BASE64_NOPAD};
use prost::Message;
use tessera_otp::{HashAlgorithm, Secret};
use zeroize::{Zeroize, Zeroizing};

use crate::{Item, Kind, Record, Skip, SkipReason};

#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
struct Payload {
    #[prost(message, repeated, tag = "1")]
    otp_parameters: Vec<OtpParameters>,
    #[prost(int32, tag = "2")]
    version: i32,
    #[prost(int32, tag = "3")]
    batch_size: i32,
    #[prost(int32, tag = "4")]
    batch_index: i32,
    /// Random and shared by the parts of one export; can be 0 or negative (so int32, not uint).
    #[prost(int32, tag = "5")]
    batch_id: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
struct OtpParameters {
    #[prost(bytes = "vec", tag = "1")]
    secret: Vec<u8>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    issuer: String,
    /// 0 unspecified (SHA-1), 1 SHA-1, 2 SHA-256, 3 SHA-512, 4 MD5.
    #[prost(int32, tag = "4")]
    algorithm: i32,
    /// 0 unspecified (6), 1 six, 2 eight: an enum, not a count.
    #[prost(int32, tag = "5")]
    digits: i32,
    /// 0 unspecified, 1 HOTP, 2 TOTP.
    #[prost(int32, tag = "6")]
    kind: i32,
    #[prost(uint64, tag = "7")]
    counter: u64,
}

impl Drop for OtpParameters {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payload")
            .field("entries", &self.otp_parameters.len())
            .field("batch", &(self.batch_index, self.batch_size, self.batch_id))
            .finish()
    }
}

impl std::fmt::Debug for OtpParameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtpParameters")
            .field("name", &self.name)
            .field("secret", &"redacted")
            .finish_non_exhaustive()
    }
}

/// Whether the text is an `otpauth-migration://` link.
pub fn is_migration(text: &str) -> bool {
    text.trim()
        .get(..20)
        .is_some_and(|p| p.eq_ignore_ascii_case("otpauth-migration://"))
}

/// Decodes the `data` parameter of a link: percent-decoding without form semantics (a space is a
/// `+` that something form-decoded), then base64 with or without padding, standard or URL-safe.
fn decode(uri: &str) -> Result<Payload, String> {
    let uri = uri.trim();
    if !is_migration(uri) {
        return Err("not an otpauth-migration:// link".into());
    }
    let query = uri
        .split_once('?')
        .map(|(_, q)| q)
        .ok_or("no data parameter")?;
    let data = query
        .split('&')
        .find_map(|p| p.strip_prefix("data="))
        .ok_or("no data parameter")?;
    let mut text = Zeroizing::new(String::with_capacity(data.len()));
    let bytes = data.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'%' {
            let hex = data.get(i + 1..i + 3).ok_or("bad percent-encoding")?;
            let v = u8::from_str_radix(hex, 16).map_err(|_| "bad percent-encoding")?;
            text.push(char::from(v));
            i += 3;
        } else {
            text.push(match c {
                b' ' => '+',
                b'-' => '+',
                b'_' => '/',
                _ => char::from(c),
            });
            i += 1;
        }
    }
    let trimmed = text.trim_end_matches('=');
    let raw = Zeroizing::new(
        BASE64_NOPAD
            .decode(trimmed.as_bytes())
            .or_else(|_| BASE64.decode(text.as_bytes()))
            .map_err(|_| "data is not base64")?,
    );
    Payload::decode(&raw[..]).map_err(|_| "data is not an export payload".into())
}

#[derive(Debug)]
struct Part {
    locator: String,
    payload: Payload,
}

#[derive(Debug, Default)]
struct Batch {
    size: usize,
    parts: BTreeMap<usize, Part>,
}

/// Gathers the parts of exports (see the module notes). Batches come out in the order their
/// first part arrived.
#[derive(Debug, Default)]
pub struct Collector {
    batches: Vec<(i32, Batch)>,
}

/// How far one export has come: parts received of the parts it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchProgress {
    pub received: usize,
    pub total: usize,
}

impl Collector {
    /// Adds one link; `locator` names where it came from (`line 3`, `export.png`). A link that
    /// does not decode is a skip; a part seen before is ignored.
    pub fn add(&mut self, uri: &str, locator: &str) -> Result<(), Skip> {
        let payload = decode(uri)
            .map_err(|problem| Skip::new(locator, SkipReason::EntryInvalid { problem }))?;
        // Exports of one QR code often leave batch_size 0; a part index beyond the size is a
        // part of a larger batch than said.
        let size = usize::try_from(payload.batch_size)
            .unwrap_or(0)
            .clamp(1, 1000);
        let index = usize::try_from(payload.batch_index).unwrap_or(0);
        if index >= size {
            return Err(Skip::new(
                locator,
                SkipReason::EntryInvalid {
                    problem: "part number beyond the batch size".into(),
                },
            ));
        }
        let id = payload.batch_id;
        let pos = match self.batches.iter().position(|(b, _)| *b == id) {
            Some(pos) => pos,
            None => {
                self.batches.push((
                    id,
                    Batch {
                        size,
                        parts: BTreeMap::new(),
                    },
                ));
                self.batches.len() - 1
            }
        };
        let batch = &mut self.batches[pos].1;
        batch.size = batch.size.max(size);
        batch.parts.entry(index).or_insert(Part {
            locator: locator.to_owned(),
            payload,
        });
        Ok(())
    }

    /// Every batch seen so far and how complete it is ("2 of 3 received").
    pub fn progress(&self) -> Vec<BatchProgress> {
        self.batches
            .iter()
            .map(|(_, b)| BatchProgress {
                received: b.parts.len(),
                total: b.size,
            })
            .collect()
    }

    /// The entries of complete batches, and a skip for each entry of an incomplete one.
    pub fn finish(self) -> Vec<Item> {
        let mut out = Vec::new();
        for (_, batch) in self.batches {
            let complete = batch.parts.len() >= batch.size;
            let (received, total) = (batch.parts.len(), batch.size);
            for (index, part) in batch.parts {
                for (n, entry) in part.payload.otp_parameters.iter().enumerate() {
                    let locator = format!(
                        "{}, QR {}/{} entry {}",
                        part.locator,
                        index + 1,
                        total,
                        n + 1
                    );
                    out.push(if complete {
                        entry_item(entry, locator)
                    } else {
                        Item::Skip(Skip::new(
                            locator,
                            SkipReason::BatchIncomplete { received, total },
                        ))
                    });
                }
            }
        }
        out
    }
}

fn entry_item(e: &OtpParameters, locator: String) -> Item {
    let skip = |reason| Item::Skip(Skip::new(locator.clone(), reason));
    let algorithm = match e.algorithm {
        0 | 1 => HashAlgorithm::Sha1,
        2 => HashAlgorithm::Sha256,
        3 => HashAlgorithm::Sha512,
        4 => return skip(SkipReason::HashMd5),
        n => {
            return skip(SkipReason::HashUnsupported {
                name: n.to_string(),
            });
        }
    };
    let digits = match e.digits {
        0 | 1 => 6,
        2 => 8,
        n => {
            return skip(SkipReason::DigitsUnsupported {
                digits: format!("enum {n}"),
            });
        }
    };
    let kind = match e.kind {
        1 => Kind::Hotp { counter: e.counter },
        // The export has no period field: Google Authenticator only does 30 s.
        2 => Kind::Totp {
            period: 30,
            drift: 0,
        },
        n => {
            return skip(SkipReason::EntryInvalid {
                problem: format!("unknown type {n}"),
            });
        }
    };
    let Ok(secret) = Secret::from_bytes(e.secret.clone()) else {
        return skip(SkipReason::NoSecret);
    };
    let (prefix, account) = match e.name.split_once(':') {
        Some((p, a)) => (Some(p.trim()), a.trim()),
        None => (None, e.name.trim()),
    };
    let issuer = Some(e.issuer.trim())
        .filter(|i| !i.is_empty())
        .or(prefix.filter(|p| !p.is_empty()));
    let mut record = Record::new(kind, secret, locator);
    record.algorithm = algorithm;
    record.digits = digits;
    record.issuer = issuer.map(detail_keep);
    record.account = Some(account.to_owned()).filter(|a| !a.is_empty());
    Item::Record(Box::new(record))
}

/// Names are kept whole (they are what the user sees in the app); only control characters go.
fn detail_keep(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// Writes records as export links of at most `per_code` entries each, one batch with `batch_id`.
/// Records whose kind or parameters an export cannot carry (a period other than 30 s, 7 digits)
/// are left out; the count written is returned beside the links.
pub fn export_uris(
    records: &[Record],
    per_code: usize,
    batch_id: i32,
) -> (Vec<Zeroizing<String>>, usize) {
    let fits =
        |r: &&Record| r.digits != 7 && !matches!(r.kind, Kind::Totp { period, .. } if period != 30);
    let usable: Vec<&Record> = records.iter().filter(fits).collect();
    let per_code = per_code.max(1);
    let chunks: Vec<&[&Record]> = usable.chunks(per_code).collect();
    let size = i32::try_from(chunks.len()).unwrap_or(i32::MAX);
    let mut links = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        let payload = Payload {
            otp_parameters: chunk
                .iter()
                .map(|r| OtpParameters {
                    secret: r.secret.as_bytes().to_vec(),
                    name: match (&r.issuer, &r.account) {
                        (Some(i), Some(a)) => format!("{i}:{a}"),
                        (_, Some(a)) => a.clone(),
                        (Some(i), None) => i.clone(),
                        (None, None) => String::new(),
                    },
                    issuer: r.issuer.clone().unwrap_or_default(),
                    algorithm: match r.algorithm {
                        HashAlgorithm::Sha1 => 1,
                        HashAlgorithm::Sha256 => 2,
                        HashAlgorithm::Sha512 => 3,
                    },
                    digits: if r.digits == 8 { 2 } else { 1 },
                    kind: match r.kind {
                        Kind::Hotp { .. } => 1,
                        Kind::Totp { .. } => 2,
                    },
                    counter: match r.kind {
                        Kind::Hotp { counter } => counter,
                        Kind::Totp { .. } => 0,
                    },
                })
                .collect(),
            version: 1,
            batch_size: size,
            batch_index: i32::try_from(index).unwrap_or(i32::MAX),
            batch_id,
        };
        let bytes = Zeroizing::new(payload.encode_to_vec());
        let b64 = Zeroizing::new(BASE64.encode(&bytes));
        let mut link = Zeroizing::new(String::from("otpauth-migration://offline?data="));
        for c in b64.chars() {
            match c {
                '+' => link.push_str("%2B"),
                '/' => link.push_str("%2F"),
                '=' => link.push_str("%3D"),
                c => link.push(c),
            }
        }
        links.push(link);
    }
    (links, usable.len())
}
