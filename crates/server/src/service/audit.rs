//! The audit log: recording events and verifying the hash chain.
//!
//! Every entry carries the hash of the previous one (see [`audit_chain_hash`]); changing,
//! inserting or deleting a row breaks the chain at that row, and deleting the newest rows is seen
//! against the head the store keeps. Entries never contain a secret: callers pass names, serials
//! and reasons, never codes, seeds or passwords.

use serde::Serialize;

use crate::model::{AUDIT_GENESIS, AuditEntry, AuditEvent, AuditFilter, audit_chain_hash};

use super::{Actor, Result, Service};

/// Whether an audited operation succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditVerification {
    pub ok: bool,
    /// Entries checked.
    pub entries: i64,
    /// The first entry that does not fit the chain, and why.
    pub first_bad_seq: Option<i64>,
    pub problem: Option<String>,
}

/// Largest page of the audit log returned at once.
pub const MAX_AUDIT_PAGE: i64 = 1000;

impl Service {
    /// Appends one event. A failure to audit fails the operation's caller: an action that cannot
    /// be recorded must not pass silently.
    pub(crate) async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: String,
        username: &str,
        outcome: Outcome,
        reason: impl Into<String>,
    ) -> Result<AuditEntry> {
        let event = AuditEvent {
            at: self.clock.now(),
            actor: actor.audit_name(),
            action: action.to_owned(),
            target,
            username: username.to_lowercase(),
            source: actor.source.clone(),
            result: outcome.as_str().to_owned(),
            reason: reason.into(),
        };
        Ok(self.store.append_audit(&event).await?)
    }

    /// Lists audit entries, newest first. Admins only.
    pub async fn list_audit(
        &self,
        _actor: &Actor,
        mut filter: AuditFilter,
    ) -> Result<Vec<AuditEntry>> {
        filter.limit = filter.limit.clamp(1, MAX_AUDIT_PAGE);
        if let Some(u) = &filter.username {
            filter.username = Some(u.to_lowercase());
        }
        Ok(self.store.list_audit(&filter).await?)
    }

    /// Recomputes the hash chain from the first entry to the head.
    pub async fn verify_audit(&self, _actor: &Actor) -> Result<AuditVerification> {
        let mut prev_hash = AUDIT_GENESIS.to_owned();
        let mut prev_seq = 0i64;
        let mut count = 0i64;
        let bad = |seq: i64, count: i64, problem: String| AuditVerification {
            ok: false,
            entries: count,
            first_bad_seq: Some(seq),
            problem: Some(problem),
        };
        loop {
            let page = self.store.audit_after(prev_seq, MAX_AUDIT_PAGE).await?;
            if page.is_empty() {
                break;
            }
            for e in page {
                count += 1;
                if e.seq != prev_seq + 1 {
                    return Ok(bad(
                        prev_seq + 1,
                        count,
                        format!(
                            "entry {} is missing (next entry is {})",
                            prev_seq + 1,
                            e.seq
                        ),
                    ));
                }
                if e.prev_hash != prev_hash {
                    return Ok(bad(
                        e.seq,
                        count,
                        format!("entry {} does not link to entry {}", e.seq, prev_seq),
                    ));
                }
                let expected = audit_chain_hash(&prev_hash, e.seq, &e.event);
                if e.hash != expected {
                    return Ok(bad(
                        e.seq,
                        count,
                        format!("entry {} was changed after it was written", e.seq),
                    ));
                }
                prev_seq = e.seq;
                prev_hash = e.hash;
            }
        }
        let (head_seq, head_hash) = self.store.audit_head().await?;
        if head_seq != prev_seq || head_hash != prev_hash {
            return Ok(bad(
                prev_seq + 1,
                count,
                format!(
                    "the log ends at entry {prev_seq} but entry {head_seq} was written: \
                     newest entries were deleted"
                ),
            ));
        }
        Ok(AuditVerification {
            ok: true,
            entries: count,
            first_bad_seq: None,
            problem: None,
        })
    }
}
