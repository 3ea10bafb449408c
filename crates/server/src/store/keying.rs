//! Keying an audit log written before the chain was keyed, the part both databases share: the
//! entries are checked against the unkeyed chain they were written with, rehashed under the key
//! as they are found (nothing is dropped or renumbered), and one entry records how that went.
//! Reading and writing the rows is in `sql/audit.rs`; why this runs once per database, and only
//! when migration 0011 asks for it, is in docs/security.md ("Audit log integrity").

use crate::clock::UnixTime;
use crate::crypto::AuditKey;
use crate::model::{AUDIT_GENESIS, AUDIT_KEYED_ACTION, AuditEntry, AuditEvent, unkeyed_audit_hash};

use super::AuditKeying;
use super::batch::Head;

/// Entries read and rewritten per statement while keying.
pub(super) const PAGE: i64 = 1000;

/// The walk over the old log, oldest entry first.
pub(super) struct Rekey<'k> {
    key: &'k AuditKey,
    /// The head as the old log left it.
    old_head: Head,
    /// The old chain as read so far: last entry's number and stored hash.
    old_prev: Head,
    /// The first place the old chain did not hold.
    problem: Option<String>,
    /// The new chain so far: last entry's number and keyed hash.
    new_prev: Head,
    entries: i64,
}

impl<'k> Rekey<'k> {
    pub(super) fn new(key: &'k AuditKey, old_head: Head) -> Rekey<'k> {
        Rekey {
            key,
            old_head,
            old_prev: (0, AUDIT_GENESIS.to_owned()),
            problem: None,
            new_prev: (0, AUDIT_GENESIS.to_owned()),
            entries: 0,
        }
    }

    /// Checks the next stored entry against the unkeyed chain (as `audit verify` of older
    /// releases did, up to the first problem) and returns its new `prev_hash` and `hash`.
    pub(super) fn push(&mut self, e: &AuditEntry) -> (String, String) {
        self.entries += 1;
        if self.problem.is_none() {
            let (prev_seq, prev_hash) = &self.old_prev;
            self.problem = if e.seq != prev_seq + 1 {
                Some(format!(
                    "entry {} is missing (next entry is {})",
                    prev_seq + 1,
                    e.seq
                ))
            } else if &e.prev_hash != prev_hash {
                Some(format!("entry {} does not link to entry {prev_seq}", e.seq))
            } else if e.hash != unkeyed_audit_hash(prev_hash, e.seq, &e.event) {
                Some(format!("entry {} was changed after it was written", e.seq))
            } else {
                None
            };
            self.old_prev = (e.seq, e.hash.clone());
        }
        let prev = std::mem::take(&mut self.new_prev.1);
        let hash = self.key.entry_hash(&prev, e.seq, &e.event);
        self.new_prev = (e.seq, hash.clone());
        (prev, hash)
    }

    /// After the last entry: the entry recording the keying (none for an empty, untouched log),
    /// the new head, and the outcome.
    pub(super) fn finish(mut self, now: UnixTime) -> (Option<AuditEntry>, Head, AuditKeying) {
        let last = self.new_prev.0;
        if self.problem.is_none() && self.old_head != self.old_prev {
            self.problem = Some(format!(
                "the log ends at entry {} but entry {} was written: newest entries were deleted",
                self.old_prev.0, self.old_head.0
            ));
        }
        let keying = AuditKeying {
            entries: self.entries,
            problem: self.problem,
        };
        if self.entries == 0 && keying.problem.is_none() {
            return (None, self.new_prev, keying);
        }
        // After the highest number the log has used, so that entries deleted from its end stay
        // missing in the keyed chain too.
        let seq = last.max(self.old_head.0) + 1;
        let (result, reason) = match &keying.problem {
            None => (
                "success",
                format!(
                    "the {} entries written before the audit chain was keyed fitted their \
                     unkeyed chain and were rehashed with the key",
                    keying.entries
                ),
            ),
            Some(problem) => (
                "failure",
                format!(
                    "the {} entries written before the audit chain was keyed did not fit their \
                     unkeyed chain ({problem}); they were rehashed with the key as they were found",
                    keying.entries
                ),
            ),
        };
        let event = AuditEvent {
            at: now,
            actor: "system".into(),
            action: AUDIT_KEYED_ACTION.into(),
            target: "audit:log".into(),
            username: String::new(),
            source: String::new(),
            result: result.into(),
            reason,
        };
        let prev_hash = self.new_prev.1;
        let hash = self.key.entry_hash(&prev_hash, seq, &event);
        let entry = AuditEntry {
            seq,
            chain: 1,
            event,
            prev_hash,
            hash: hash.clone(),
        };
        (Some(entry), (seq, hash), keying)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AuditKey {
        AuditKey::from_bytes(&[7; 32]).unwrap()
    }

    fn event(n: i64) -> AuditEvent {
        AuditEvent {
            at: n,
            actor: "cli:operator".into(),
            action: "user.add".into(),
            target: format!("user:u{n}"),
            username: format!("u{n}"),
            source: "cli".into(),
            result: "success".into(),
            reason: String::new(),
        }
    }

    /// A log as older releases wrote it: entries 1..=n on the unkeyed chain, and its head.
    fn old_log(n: i64) -> (Vec<AuditEntry>, Head) {
        let mut prev = AUDIT_GENESIS.to_owned();
        let mut entries = Vec::new();
        for seq in 1..=n {
            let hash = unkeyed_audit_hash(&prev, seq, &event(seq));
            entries.push(AuditEntry {
                seq,
                chain: 1,
                event: event(seq),
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            });
        }
        (entries, (n, prev))
    }

    fn rekey(entries: &[AuditEntry], head: Head) -> (Vec<AuditEntry>, Head, AuditKeying) {
        let key = key();
        let mut r = Rekey::new(&key, head);
        let mut out: Vec<AuditEntry> = entries
            .iter()
            .map(|e| {
                let (prev_hash, hash) = r.push(e);
                AuditEntry {
                    prev_hash,
                    hash,
                    ..e.clone()
                }
            })
            .collect();
        let (entry, head, keying) = r.finish(99);
        out.extend(entry);
        (out, head, keying)
    }

    /// Checks `entries` form one keyed chain ending in `head`.
    fn assert_keyed(entries: &[AuditEntry], head: &Head) {
        let key = key();
        let mut prev = AUDIT_GENESIS.to_owned();
        for e in entries {
            assert_eq!(e.prev_hash, prev, "entry {}", e.seq);
            assert!(key.entry_matches(&prev, e.seq, &e.event, &e.hash));
            prev = e.hash.clone();
        }
        assert_eq!(head.1, prev);
    }

    #[test]
    fn an_intact_old_log_is_rehashed_whole_and_the_keying_recorded() {
        let (old, head) = old_log(3);
        let (new, head, keying) = rekey(&old, head);
        assert_eq!(keying.entries, 3);
        assert_eq!(keying.problem, None);
        assert_eq!(new.len(), 4);
        for (a, b) in old.iter().zip(&new) {
            assert_eq!((a.seq, &a.event), (b.seq, &b.event), "kept as it was");
            assert_ne!(a.hash, b.hash);
        }
        assert_eq!(new[3].seq, 4);
        assert_eq!(new[3].event.action, "audit.key");
        assert_eq!(new[3].event.result, "success");
        assert_eq!(head.0, 4);
        assert_keyed(&new, &head);
    }

    #[test]
    fn an_empty_log_gets_no_entry() {
        let (new, head, keying) = rekey(&[], (0, AUDIT_GENESIS.to_owned()));
        assert!(new.is_empty());
        assert_eq!(head, (0, AUDIT_GENESIS.to_owned()));
        assert_eq!(keying.entries, 0);
    }

    #[test]
    fn a_changed_old_entry_is_kept_and_named_in_the_record() {
        let (mut old, head) = old_log(4);
        old[1].event.reason = "edited".into();
        let (new, head, keying) = rekey(&old, head);
        let problem = keying.problem.unwrap();
        assert_eq!(problem, "entry 2 was changed after it was written");
        assert_eq!(new[1].event.reason, "edited");
        assert_eq!(new[4].event.result, "failure");
        assert!(new[4].event.reason.contains(&problem));
        assert_keyed(&new, &head);
    }

    #[test]
    fn entries_deleted_from_an_old_log_stay_missing() {
        let (old, head) = old_log(5);
        // The last two deleted: the keying entry comes after the number the head had.
        let (new, _, keying) = rekey(&old[..3], head.clone());
        assert!(
            keying
                .problem
                .unwrap()
                .contains("newest entries were deleted")
        );
        assert_eq!(new.last().unwrap().seq, 6);
        // One from the middle.
        let mut gap = old.clone();
        gap.remove(2);
        let (_, _, keying) = rekey(&gap, head);
        assert_eq!(
            keying.problem.unwrap(),
            "entry 3 is missing (next entry is 4)"
        );
    }
}
