//! Group commit ([`AuditStore::apply_writes`](super::AuditStore::apply_writes)), the part both
//! databases share: the order in which token rows are advanced, and how the batch's audit
//! entries extend the hash chain (keyed, see [`AuditKey`]) once it is known which advances
//! succeeded. How the statements
//! reach the database differs (sqlite.rs: one transaction on the calling thread; postgres.rs:
//! row locks, parallel batches).

use crate::crypto::AuditKey;
use crate::model::AuditEntry;

use super::{Advance, StoreError, StoreResult, WriteOp, WriteResult};

/// An audit chain's newest entry: its position in the chain and its hash.
pub(super) type Head = (i64, String);

/// One conditional update: of two requests with the same code, only the first changes the row
/// (RFC 6238 §5.2, RFC 4226 §7.2). Binds: token id, next counter, drift, new state, now, matched
/// counter, required state, failure count seen before the comparison.
pub(super) const ADVANCE_ONE: &str = "UPDATE tokens SET next_counter = $2, drift = $3, \
    state = $4, fail_count = 0, throttled_until = 0, last_used_at = $5, last_request = $9, first_use_window = 0 \
    WHERE id = $1 AND next_counter <= $6 AND state = $7 AND throttled_until <= $5 \
    AND fail_count = $8";

pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit_log (seq, at, actor, action, target, \
    username, source, result, reason, prev_hash, hash) ";

/// The batch's advances in rounds, each naming every token once (in token id order): one
/// set-based statement per round, where a statement must not update one row twice (PostgreSQL
/// joins an updated row to only one of several matching rows, and which one is not defined). A
/// token's second advance in a batch goes in the second round and sees the first one's effect.
pub(super) fn advance_rounds(ops: &[WriteOp]) -> Vec<Vec<usize>> {
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    let mut last: Option<(i64, usize)> = None;
    for i in advances_by_token(ops) {
        let WriteOp::Advance { token, .. } = &ops[i] else {
            continue;
        };
        let round = match last {
            Some((t, r)) if t == token.0 => r + 1,
            _ => 0,
        };
        last = Some((token.0, round));
        if rounds.len() <= round {
            rounds.push(Vec::new());
        }
        rounds[round].push(i);
    }
    rounds
}

/// The batch's advances in the order they are applied: by token id, so every transaction locks
/// token rows in the same order and batches committing in parallel (PostgreSQL) can never
/// deadlock; a token's later advances after its first, so they see its effect.
pub(super) fn advances_by_token(ops: &[WriteOp]) -> Vec<usize> {
    let mut order: Vec<(i64, usize)> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op {
            WriteOp::Advance { token, .. } => Some((token.0, i)),
            WriteOp::Audit(_) => None,
        })
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, i)| i).collect()
}

/// The counter stored after accepting `adv.matched`.
pub(super) fn next_counter(adv: &Advance) -> StoreResult<i64> {
    adv.matched
        .checked_add(1)
        .ok_or_else(|| StoreError::Corrupt("counter out of range".into()))
}

/// Whether the batch appends to the audit chain, given which advances succeeded.
pub(super) fn appends(ops: &[WriteOp], advanced: &[bool]) -> bool {
    ops.iter().zip(advanced).any(|(op, &done)| match op {
        WriteOp::Advance { audit, .. } => done && audit.is_some(),
        WriteOp::Audit(_) => true,
    })
}

/// The batch's results in order, and the audit entries to insert on chain `chain_id`, chained
/// from `head` under `key` (needed only if [`appends`]); returns the new head. An entry's `seq`
/// is its position in the chain here, which is its number on a database with one chain; where
/// there are several, the store replaces it with the number the database gives.
pub(super) fn chain(
    key: &AuditKey,
    chain_id: i64,
    ops: &[WriteOp],
    advanced: &[bool],
    head: Option<Head>,
) -> StoreResult<(Vec<WriteResult>, Vec<AuditEntry>, Option<Head>)> {
    let mut results = Vec::with_capacity(ops.len());
    let mut entries = Vec::new();
    let mut head = head;
    for (op, &done) in ops.iter().zip(advanced) {
        let event = match op {
            WriteOp::Advance {
                audit: Some(event), ..
            } if done => event,
            WriteOp::Advance { .. } => {
                results.push(WriteResult::Advanced(done, None));
                continue;
            }
            WriteOp::Audit(event) => event,
        };
        let (seq, prev_hash) = head
            .as_mut()
            .ok_or_else(|| StoreError::Corrupt("audit head not read".into()))?;
        *seq += 1;
        let hash = key.entry_hash(prev_hash, *seq, event);
        let entry = AuditEntry {
            seq: *seq,
            chain: chain_id,
            event: event.clone(),
            prev_hash: std::mem::replace(prev_hash, hash.clone()),
            hash,
        };
        results.push(match op {
            WriteOp::Advance { .. } => WriteResult::Advanced(true, Some(entry.clone())),
            WriteOp::Audit(_) => WriteResult::Audited(entry.clone()),
        });
        entries.push(entry);
    }
    Ok((results, entries, head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AUDIT_GENESIS, AuditEvent, TokenId, TokenState};

    fn key() -> AuditKey {
        AuditKey::from_bytes(&[7; 32]).unwrap()
    }

    fn event(n: i64) -> AuditEvent {
        AuditEvent {
            at: n,
            actor: "a".into(),
            action: "validate".into(),
            target: String::new(),
            username: "u".into(),
            source: String::new(),
            result: "success".into(),
            reason: String::new(),
        }
    }

    fn advance(token: i64, audit: bool) -> WriteOp {
        WriteOp::Advance {
            token: TokenId(token),
            advance: Advance {
                matched: 1,
                drift: 0,
                from: TokenState::Active,
                to: TokenState::Active,
                now: 0,
                fails: 0,
                request: None,
            },
            audit: audit.then(|| event(token)),
        }
    }

    #[test]
    fn advances_are_ordered_by_token_and_repeats_follow() {
        let ops = [
            advance(9, true),
            WriteOp::Audit(event(0)),
            advance(3, false),
            advance(9, true),
        ];
        assert_eq!(advances_by_token(&ops), [2, 0, 3]);
        let ops = [
            advance(9, true),
            advance(3, false),
            advance(9, true),
            advance(9, false),
            advance(4, false),
        ];
        assert_eq!(advance_rounds(&ops), [vec![1, 4, 0], vec![2], vec![3]]);
    }

    #[test]
    fn only_successful_advances_and_plain_events_are_chained() {
        let ops = [advance(1, true), advance(2, true), WriteOp::Audit(event(7))];
        let advanced = [false, true, false];
        assert!(appends(&ops, &advanced));
        assert!(!appends(&ops[..1], &advanced[..1]));
        let start = (4, AUDIT_GENESIS.to_owned());
        let (results, entries, head) = chain(&key(), 1, &ops, &advanced, Some(start)).unwrap();
        assert_eq!(results[0], WriteResult::Advanced(false, None));
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].seq, 5);
        assert_eq!(entries[0].prev_hash, AUDIT_GENESIS);
        assert_eq!(entries[1].prev_hash, entries[0].hash);
        assert!(key().entry_matches(&entries[0].hash, 6, &event(7), &entries[1].hash));
        assert_eq!(head, Some((6, entries[1].hash.clone())));
        assert_eq!(results[2], WriteResult::Audited(entries[1].clone()));
        // Appending without a head is refused, not invented.
        assert!(chain(&key(), 1, &ops, &advanced, None).is_err());
    }
}
