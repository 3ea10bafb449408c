//! The audit chain's plain data: what an entry's hash covers, the head the store keeps, and
//! checkpoints (the newest entry's number and hash, kept by an admin away from the server).
//!
//! Hashing under the key lives in [`crate::crypto::AuditKey`]; here only the byte layout both
//! hashes share, and the unkeyed hash of older releases, which is read once, when an existing log
//! is keyed (see `store/keying.rs` and docs/security.md, "Audit log integrity").

use serde::{Deserialize, Serialize};

use super::AuditEvent;

/// Feeds `feed` the bytes an entry's hash covers: a tag naming the chain's version, the previous
/// entry's hash, the entry's number and every field of its event, each prefixed with its length
/// so that no two different entries give the same bytes.
pub(crate) fn audit_hash_input(
    tag: &str,
    prev_hash: &str,
    seq: i64,
    e: &AuditEvent,
    mut feed: impl FnMut(&[u8]),
) {
    let at = e.at.to_string();
    let seq = seq.to_string();
    for field in [
        tag,
        prev_hash,
        &seq,
        &at,
        &e.actor,
        &e.action,
        &e.target,
        &e.username,
        &e.source,
        &e.result,
        &e.reason,
    ] {
        feed(&(field.len() as u64).to_be_bytes());
        feed(field.as_bytes());
    }
}

/// The action of the entry recording that a log written before the chain was keyed was keyed
/// (actor `system`; result `failure` when its unkeyed chain did not hold).
pub const AUDIT_KEYED_ACTION: &str = "audit.key";

/// The hash older releases chained entries with: plain SHA-256, which anyone can recompute.
/// Only used to check a log written before the chain was keyed, once, while keying it.
pub fn unkeyed_audit_hash(prev_hash: &str, seq: i64, e: &AuditEvent) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    audit_hash_input("tessera-audit-v1", prev_hash, seq, e, |b| h.update(b));
    data_encoding::HEXLOWER.encode(&h.finalize())
}

/// An audit chain's head as stored: its newest entry's number, position in the chain and hash,
/// and the seal over position and hash made with the audit key (`v2:` and hex; empty before the
/// chain was keyed; see `AuditKey::chain_seal`).
///
/// The log is made of chains: chain 1 holds everything a single writer appends (SQLite's only
/// chain, and all entries written before there were several); on PostgreSQL each writer of each
/// node appends to a chain of its own, so that writers never wait for each other. An entry's
/// hash covers the previous entry *of its chain* and its position there; the first entry of a
/// chain links to `AuditKey::chain_start`. Entry numbers (`seq`) are unique across chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    pub chain: i64,
    /// The newest entry's number (0: the chain is empty).
    pub seq: i64,
    /// How many entries the chain holds: the newest one's position.
    pub position: i64,
    pub hash: String,
    pub seal: String,
}

/// The action of a cross-chain checkpoint: an entry naming other chains' heads (their newest
/// entry's number and hash), so that a chain whose newest entries were deleted, together with
/// its head, is still caught by `tessera audit verify`.
pub const AUDIT_CHECKPOINT_ACTION: &str = "audit.checkpoint";

/// One head a cross-chain checkpoint names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainClaim {
    pub chain: i64,
    pub seq: i64,
    pub hash: String,
}

/// The reason text of a checkpoint entry: `chain:seq:hash` for each head, space separated.
pub fn checkpoint_reason(claims: &[ChainClaim]) -> String {
    claims
        .iter()
        .map(|c| format!("{}:{}:{}", c.chain, c.seq, c.hash))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Reads [`checkpoint_reason`] back; `None` if the text is not one.
pub fn parse_checkpoint_reason(reason: &str) -> Option<Vec<ChainClaim>> {
    reason
        .split_whitespace()
        .map(|part| {
            let mut it = part.splitn(3, ':');
            let chain = it.next()?.parse().ok()?;
            let seq = it.next()?.parse().ok()?;
            let hash = it.next()?;
            (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| ChainClaim {
                chain,
                seq,
                hash: hash.to_owned(),
            })
        })
        .collect()
}

/// One entry's number and keyed hash, as an admin keeps it elsewhere: later, the log must still
/// hold that entry with that hash (`tessera audit verify --checkpoint FILE`). Not a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditCheckpoint {
    pub seq: i64,
    pub hash: String,
}

/// The first word of a checkpoint line.
const CHECKPOINT_TAG: &str = "tessera-audit-checkpoint";

/// The longest checkpoint file read (a file of daily checkpoints stays far below this).
pub const MAX_CHECKPOINT_FILE: u64 = 1 << 20;

impl std::fmt::Display for AuditCheckpoint {
    /// The text form: `tessera-audit-checkpoint v1 SEQ HASH`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{CHECKPOINT_TAG} v1 {} {}", self.seq, self.hash)
    }
}

impl AuditCheckpoint {
    /// Checks the number and the hash's form; returns the checkpoint with the hash in lower case.
    fn checked(seq: i64, hash: &str) -> Result<AuditCheckpoint, String> {
        if seq < 0 {
            return Err(format!("entry number {seq} is negative"));
        }
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("the hash is not 64 hexadecimal digits".to_owned());
        }
        Ok(AuditCheckpoint {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }

    /// Reads checkpoints from a file's text: lines `tessera-audit-checkpoint v1 SEQ HASH` (blank
    /// lines and `#` comments are skipped, so checkpoints can be appended to one file), or the
    /// JSON object `{"seq": .., "hash": ".."}` that `tessera --json audit head` prints. At least
    /// one; sorted by entry number.
    pub fn parse_all(text: &str) -> Result<Vec<AuditCheckpoint>, String> {
        let text = text.trim_start_matches('\u{feff}');
        let trimmed = text.trim();
        let mut all = if trimmed.starts_with('{') {
            let cp: AuditCheckpoint = serde_json::from_str(trimmed)
                .map_err(|e| format!("not a checkpoint in JSON ({e})"))?;
            vec![Self::checked(cp.seq, &cp.hash)?]
        } else {
            let mut all = Vec::new();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let bad = |why: &str| format!("line {}: {why}", n + 1);
                let parts: Vec<&str> = line.split_whitespace().collect();
                let [tag, version, seq, hash] = parts[..] else {
                    return Err(bad(&format!(
                        "expected `{CHECKPOINT_TAG} v1 SEQ HASH`, as `tessera audit head` prints"
                    )));
                };
                if tag != CHECKPOINT_TAG {
                    return Err(bad(&format!(
                        "expected `{CHECKPOINT_TAG} v1 SEQ HASH`, as `tessera audit head` prints"
                    )));
                }
                if version != "v1" {
                    return Err(bad("unknown checkpoint version (this release reads v1)"));
                }
                let seq: i64 = seq
                    .parse()
                    .map_err(|_| bad("the entry number is not a number"))?;
                all.push(Self::checked(seq, hash).map_err(|e| bad(&e))?);
            }
            all
        };
        if all.is_empty() {
            return Err("no checkpoint in it".to_owned());
        }
        all.sort_by_key(|cp| cp.seq);
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_checkpoint_reads_back_from_its_text_and_its_json() {
        let cp = AuditCheckpoint {
            seq: 42,
            hash: HASH.into(),
        };
        let text = format!("# taken at entry 42\n\n{cp}\n");
        let json = serde_json::to_string_pretty(&cp).unwrap();
        let upper = format!("{CHECKPOINT_TAG} v1 42 {}", HASH.to_uppercase());
        for form in [text, json, upper] {
            assert_eq!(
                AuditCheckpoint::parse_all(&form).unwrap(),
                std::slice::from_ref(&cp),
                "{form}"
            );
        }
    }

    #[test]
    fn checkpoints_appended_to_one_file_are_all_read_in_order() {
        let text = format!("{CHECKPOINT_TAG} v1 9 {HASH}\n{CHECKPOINT_TAG} v1 3 {HASH}\n");
        let seqs: Vec<i64> = AuditCheckpoint::parse_all(&text)
            .unwrap()
            .iter()
            .map(|cp| cp.seq)
            .collect();
        assert_eq!(seqs, [3, 9]);
    }

    #[test]
    fn malformed_checkpoints_are_refused_with_a_reason() {
        let short = &HASH[..63];
        for (text, reason) in [
            (String::new(), "no checkpoint"),
            ("# only a comment\n".to_owned(), "no checkpoint"),
            ("hello".to_owned(), "line 1: expected"),
            (format!("\n{CHECKPOINT_TAG} v2 1 {HASH}"), "line 2: unknown"),
            (format!("{CHECKPOINT_TAG} v1 x {HASH}"), "not a number"),
            (format!("{CHECKPOINT_TAG} v1 -1 {HASH}"), "negative"),
            (format!("{CHECKPOINT_TAG} v1 1 {short}"), "64 hexadecimal"),
            (format!("{CHECKPOINT_TAG} v1 1 {short}g"), "64 hexadecimal"),
            (format!("{CHECKPOINT_TAG} v1 1 {HASH} extra"), "expected"),
            (
                format!("{CHECKPOINT_TAG} v1 99999999999999999999 {HASH}"),
                "number",
            ),
            ("{\"seq\": 1}".to_owned(), "JSON"),
            (
                "{\"seq\": 1, \"hash\": \"ab\"}".to_owned(),
                "64 hexadecimal",
            ),
            ("{".to_owned(), "JSON"),
        ] {
            let err = AuditCheckpoint::parse_all(&text).unwrap_err();
            assert!(err.contains(reason), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_checkpoint_reason_reads_back() {
        let claims = vec![
            ChainClaim {
                chain: 2,
                seq: 17,
                hash: HASH.into(),
            },
            ChainClaim {
                chain: 5,
                seq: 3,
                hash: HASH.into(),
            },
        ];
        let text = checkpoint_reason(&claims);
        assert_eq!(parse_checkpoint_reason(&text).unwrap(), claims);
        assert_eq!(parse_checkpoint_reason("").unwrap(), []);
        for bad in ["2:17", "x:1:ab", &format!("2:17:{}", &HASH[..60])] {
            assert_eq!(parse_checkpoint_reason(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_unkeyed_hash_is_the_one_older_releases_wrote() {
        // Entry 1 as the release before the chain was keyed wrote it (the value computed apart,
        // with Python's hashlib, from the layout above).
        let e = AuditEvent {
            at: 1_700_000_000,
            actor: "cli:operator".into(),
            action: "user.add".into(),
            target: "user:alice".into(),
            username: "alice".into(),
            source: "cli".into(),
            result: "success".into(),
            reason: String::new(),
        };
        let genesis = super::super::AUDIT_GENESIS;
        assert_eq!(
            unkeyed_audit_hash(genesis, 1, &e),
            "30f249ebc82a5cb1a58e3f760e564105013f063ef0ed07e410d93cc6ad23a111"
        );
    }
}
