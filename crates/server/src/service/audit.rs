//! The audit log: recording events and verifying the hash chain.
//!
//! Every entry carries the hash of the previous one, made with the audit key
//! ([`AuditKey`](crate::crypto::AuditKey), derived from the key file): changing, inserting or
//! deleting a row breaks the chain at that row, and without the key file nobody can compute a
//! chain that fits again. The head the store keeps is sealed with the same key, so deleting the
//! newest rows and setting the head back by hand shows too; a head row copied earlier and put
//! back is seen only against a checkpoint kept elsewhere ([`AuditCheckpoint`]). Entries never
//! contain a secret: callers pass names, serials and reasons, never codes, seeds or passwords.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::model::TokenId;
use crate::store::{Advance, Store, StoreError, WriteOp, WriteResult, Writers};

use crate::model::{
    AUDIT_CHECKPOINT_ACTION, AUDIT_GENESIS, AUDIT_KEYED_ACTION, AuditCheckpoint, AuditEntry,
    AuditEvent, AuditFilter, ChainClaim, checkpoint_reason, parse_checkpoint_reason,
    unkeyed_audit_hash,
};

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
    /// When the log verifies: its newest entry as a checkpoint, to keep away from the server
    /// and check against later (`tessera audit verify --checkpoint FILE`).
    pub head: Option<AuditCheckpoint>,
    /// Findings that do not fail the check: an `audit.key` entry recording that the entries
    /// written before the chain was keyed did not fit their unkeyed chain (they were keyed as
    /// found, so the keyed chain holds; what happened to them before cannot be told any more).
    pub warnings: Vec<String>,
}

type Pending = (WriteOp, oneshot::Sender<Result<WriteResult, String>>);

/// Commits token advances and audit entries through one writer task, which takes whatever
/// arrived meanwhile and commits it in one transaction (group commit). Every caller still waits
/// until its own write is committed, so an answered request is always recorded; concurrent
/// requests share one commit instead of queueing for the database's write lock one by one.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Pending>,
}

/// Writes committed together at most.
const MAX_BATCH: usize = 256;

/// How often the audit log's newest entries are added to the user index (see
/// [`AuditStore::index_audit`](crate::store::AuditStore::index_audit)); a user's entries newer
/// than that are found by scanning the log's tail.
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Entries added to the user index in one transaction at most (a bigger backlog is taken in
/// several, one after the other, so that validations are not held up for long).
const INDEX_BATCH: i64 = 25_000;

/// Heads named in one cross-chain checkpoint at most (more wait for the next).
const CHECKPOINT_HEADS: usize = 64;

/// Cross-chain checkpoints (see [`AUDIT_CHECKPOINT_ACTION`]): once a second, where the log has
/// several chains (PostgreSQL), an entry naming the heads of the other chains that moved since
/// the last one. Another chain's newest entries and head deleted together then still show:
/// `tessera audit verify` finds an entry named here missing or changed.
#[derive(Default)]
struct CrossCheckpoints {
    /// Each chain's position when it was last named (or when this process last wrote to it).
    named: std::collections::HashMap<i64, i64>,
}

impl CrossCheckpoints {
    async fn write(&mut self, store: &dyn Store, at: crate::clock::UnixTime) -> Result<()> {
        let heads = store.audit_heads().await?;
        if heads.len() < 2 {
            return Ok(());
        }
        // A chain that moved by one entry only may have moved by another node's checkpoint:
        // naming it would make that node name this one back, once a second, on an idle log.
        let mut moved: Vec<_> = heads
            .into_iter()
            .filter(|h| {
                h.position > 0
                    && self
                        .named
                        .get(&h.chain)
                        .is_none_or(|&p| h.position >= p + 2)
            })
            .collect();
        if moved.is_empty() {
            return Ok(());
        }
        moved.sort_by_key(|h| std::cmp::Reverse(h.seq));
        moved.truncate(CHECKPOINT_HEADS);
        let claims: Vec<ChainClaim> = moved
            .iter()
            .map(|h| ChainClaim {
                chain: h.chain,
                seq: h.seq,
                hash: h.hash.clone(),
            })
            .collect();
        let entry = store
            .append_audit(&AuditEvent {
                at,
                actor: "system".into(),
                action: AUDIT_CHECKPOINT_ACTION.into(),
                target: "audit:log".into(),
                username: String::new(),
                source: String::new(),
                result: Outcome::Success.as_str().into(),
                reason: checkpoint_reason(&claims),
            })
            .await?;
        for h in &moved {
            self.named.insert(h.chain, h.position);
        }
        // Its own entry is not a move worth naming.
        let own = moved
            .iter()
            .find(|h| h.chain == entry.chain)
            .map_or(0, |h| h.position);
        self.named.insert(entry.chain, own.max(1));
        Ok(())
    }
}

/// Starts the task that keeps the audit log's user index up to date and writes cross-chain
/// checkpoints, on the current Tokio runtime. It ends when the store is dropped.
pub(crate) fn start_indexer(store: &Arc<dyn Store>, clock: Arc<dyn crate::clock::Clock>) {
    let store = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut checkpoints = CrossCheckpoints::default();
        let mut tick = tokio::time::interval(INDEX_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(store) = store.upgrade() else {
                return;
            };
            if let Err(e) = checkpoints.write(store.as_ref(), clock.now()).await {
                tracing::warn!(error = %e, "cannot write a checkpoint across the audit chains");
            }
            loop {
                let took = crate::clock::Stopwatch::start();
                let result = store.index_audit(INDEX_BATCH).await;
                if let Ok(added @ 1..) = result {
                    tracing::debug!(
                        added,
                        ms = took.ms(),
                        "audit entries added to the user index"
                    );
                }
                match result {
                    Ok(added) if added as i64 >= INDEX_BATCH => tokio::task::yield_now().await,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot update the audit log's user index");
                        break;
                    }
                }
            }
        }
    });
}

impl Writer {
    /// Starts the writers the store asks for (see [`Writers`]): a thread of its own, or tasks on
    /// the current Tokio runtime.
    pub(crate) fn start(store: Arc<dyn Store>, metrics: Arc<crate::metrics::Metrics>) -> Writer {
        let (queue, rx) = mpsc::channel::<Pending>(4 * MAX_BATCH);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let tasks = match store.writers() {
            Writers::Thread => match Self::start_thread(store.clone(), rx.clone(), metrics.clone())
            {
                Ok(()) => return Writer { queue },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the commit thread; committing on the runtime");
                    1
                }
            },
            Writers::Tasks(n) => n.max(1),
        };
        for _ in 0..tasks {
            tokio::spawn(Self::run(store.clone(), rx.clone(), metrics.clone()));
        }
        Writer { queue }
    }

    /// The writer on a thread of its own, so that a commit never holds one of the runtime's
    /// workers: while the thread commits one batch, both workers (on a 2-core machine) go on
    /// answering requests and queueing the next. With the commit on a worker, the other requests
    /// of the batch had only one worker left; at 8 connections on SQLite, six alternating pairs of
    /// 15 s runs gave 21,400 validations per second on the thread against 18,900 on a worker.
    /// The price is a single connection's latency, as each request wakes the thread and is woken
    /// back: at 1 connection 3,290 per second against 5,075 on a worker (p50 0.27 ms against
    /// 0.16 ms). The thread ends when the last sender is dropped (with the service).
    fn start_thread(
        store: Arc<dyn Store>,
        rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> std::io::Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        std::thread::Builder::new()
            .name("tessera-commit".into())
            .spawn(move || runtime.block_on(Self::run(store, rx, metrics)))?;
        Ok(())
    }

    /// One writer: takes what is queued (one writer at a time), commits it, answers.
    async fn run(
        store: Arc<dyn Store>,
        rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>,
        metrics: Arc<crate::metrics::Metrics>,
    ) {
        let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
        loop {
            if !Self::gather(&rx, &mut batch).await {
                return;
            }
            let (ops, replies): (Vec<WriteOp>, Vec<_>) = batch.drain(..).unzip();
            let took = crate::clock::Stopwatch::start();
            let applied = store.apply_writes(&ops).await;
            metrics.batch(ops.len(), took.ms() / 1000.0, applied.is_ok());
            match applied {
                Ok(results) => {
                    for (reply, result) in replies.into_iter().zip(results) {
                        let _ = reply.send(Ok(result));
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    for reply in replies {
                        let _ = reply.send(Err(message.clone()));
                    }
                }
            }
        }
    }

    /// Waits for the next write, then lets the runtime run once (its I/O driver included) before
    /// taking whatever else is queued. For writer tasks on the request runtime, requests that
    /// arrived together then reach the queue first and share this commit instead of each waiting
    /// for a commit of its own (on SQLite at 8 connections, when it still committed on a worker,
    /// commits grew from 1.6 writes to 3.7). On the commit thread's own runtime nothing else runs
    /// and the yield returns at once; there a batch is what arrived during the previous commit.
    /// Returns false when every sender is gone.
    async fn gather(
        rx: &tokio::sync::Mutex<mpsc::Receiver<Pending>>,
        batch: &mut Vec<Pending>,
    ) -> bool {
        let mut rx = rx.lock().await;
        if rx.recv_many(batch, MAX_BATCH).await == 0 {
            return false;
        }
        tokio::task::yield_now().await;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        true
    }

    async fn submit(&self, op: WriteOp) -> Result<WriteResult> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Batch("the writer task stopped".into());
        self.queue.send((op, reply)).await.map_err(|_| stopped())?;
        Ok(answer
            .await
            .map_err(|_| stopped())?
            .map_err(StoreError::Batch)?)
    }

    /// Appends one event and waits until it is committed.
    pub(crate) async fn audit(&self, event: AuditEvent) -> Result<AuditEntry> {
        match self.submit(WriteOp::Audit(event)).await? {
            WriteResult::Audited(entry) => Ok(entry),
            WriteResult::Advanced(..) => Err(StoreError::Batch("mismatched result".into()).into()),
        }
    }

    /// Accepts a counter or step for a token (compare-and-set) and waits until it is committed;
    /// on success `audit` is committed in the same transaction. Returns whether it succeeded and
    /// whether the event was written.
    pub(crate) async fn advance(
        &self,
        token: TokenId,
        advance: Advance,
        audit: Option<AuditEvent>,
    ) -> Result<(bool, bool)> {
        match self
            .submit(WriteOp::Advance {
                token,
                advance,
                audit,
            })
            .await?
        {
            WriteResult::Advanced(done, entry) => Ok((done, entry.is_some())),
            WriteResult::Audited(_) => Err(StoreError::Batch("mismatched result".into()).into()),
        }
    }
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
        // Every audited change concerning a user (admin, CLI, self-service) refreshes the
        // validation cache's view of that user on this node.
        if !username.is_empty() {
            self.user_cache.forget(username);
        }
        self.audit_as(
            &actor.audit_name(),
            &actor.source,
            action,
            target,
            username,
            outcome,
            reason,
        )
        .await
    }

    /// Appends one event for an actor named directly (`app:vpn`, `anonymous`).
    #[allow(clippy::too_many_arguments)] // one per audit column; a struct would only rename them
    pub(crate) async fn audit_as(
        &self,
        actor: &str,
        source: &str,
        action: &str,
        target: String,
        username: &str,
        outcome: Outcome,
        reason: impl Into<String>,
    ) -> Result<AuditEntry> {
        // Pages name each action in the reader's language: a new one must be listed there.
        debug_assert!(
            crate::events::ACTIONS.contains(&action),
            "audit action {action:?} is not in events::ACTIONS"
        );
        let event = AuditEvent {
            at: self.clock.now(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target,
            username: username.to_lowercase(),
            source: source.to_owned(),
            result: outcome.as_str().to_owned(),
            reason: reason.into(),
        };
        self.writer.audit(event).await
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

    /// Recomputes every hash chain of the log with the audit key, up to its head as read when
    /// the check starts (entries appended meanwhile are left for the next check), checks each
    /// head's seal, checks that every cross-chain checkpoint entry names entries the log still
    /// holds with the same hash, and that the log still holds every checkpoint given (sorted by
    /// entry number) with the same hash. Names the first problem.
    pub async fn verify_audit(
        &self,
        _actor: &Actor,
        checkpoints: &[AuditCheckpoint],
    ) -> Result<AuditVerification> {
        let key = &self.audit_key;
        let bad = |seq: i64, count: i64, problem: String| AuditVerification {
            ok: false,
            entries: count,
            first_bad_seq: Some(seq),
            problem: Some(problem),
            head: None,
            warnings: Vec::new(),
        };
        let mut pending = checkpoints.iter().peekable();
        // A checkpoint of the empty log (entry 0) holds the chain's start.
        while let Some(cp) = pending.next_if(|cp| cp.seq == 0) {
            if !crate::crypto::ct_eq(cp.hash.as_bytes(), AUDIT_GENESIS.as_bytes()) {
                return Ok(bad(0, 0, checkpoint_mismatch(0)));
            }
        }
        // The heads first: every entry up to them was committed before, so the walk below sees
        // it, whatever order the chains' commits came in.
        let heads = self.store.audit_heads().await?;
        let newest = heads
            .iter()
            .filter(|h| h.position > 0)
            .max_by_key(|h| h.seq)
            .map(|h| AuditCheckpoint {
                seq: h.seq,
                hash: h.hash.clone(),
            });
        let mut walks: std::collections::HashMap<i64, ChainWalk> = heads
            .into_iter()
            .map(|h| {
                let walk = ChainWalk {
                    position: 0,
                    hash: key.chain_start(h.chain),
                    last_seq: 0,
                    head: h,
                };
                (walk.head.chain, walk)
            })
            .collect();
        let numbered_by_position = self.store.kind() == crate::store::DatabaseKind::Sqlite;
        let mut claims = Claims::default();
        let mut headless = std::collections::BTreeSet::new();
        let mut warnings = Vec::new();
        let mut count = 0i64;
        let mut after = 0i64;
        loop {
            let page = self.store.audit_after(after, MAX_AUDIT_PAGE).await?;
            let Some(last) = page.last() else {
                break;
            };
            after = last.seq;
            for e in page {
                // Checkpoints of entry numbers the log skips fail here.
                while let Some(cp) = pending.next_if(|cp| cp.seq <= e.seq) {
                    if cp.seq != e.seq
                        || !crate::crypto::ct_eq(cp.hash.as_bytes(), e.hash.as_bytes())
                    {
                        return Ok(bad(cp.seq, count, checkpoint_mismatch(cp.seq)));
                    }
                }
                if let Some(problem) = claims.seen(&e) {
                    return Ok(bad(e.seq, count, problem));
                }
                let Some(w) = walks.get_mut(&e.chain) else {
                    headless.insert(e.chain);
                    continue;
                };
                if w.position >= w.head.position {
                    // Appended after the check started.
                    continue;
                }
                count += 1;
                let position = w.position + 1;
                // On SQLite, entries are numbered by their position (one chain, one writer).
                if numbered_by_position && e.seq != position {
                    return Ok(bad(
                        position,
                        count,
                        format!("entry {position} is missing (next entry is {})", e.seq),
                    ));
                }
                if e.prev_hash != w.hash {
                    // Only to explain, as below: rechained by hand with the unkeyed formula.
                    let problem = if e.hash == unkeyed_audit_hash(&e.prev_hash, e.seq, &e.event) {
                        format!(
                            "entry {} was changed after it was written (its hash was made \
                             without the key, with the unkeyed formula of releases before the \
                             chain was keyed)",
                            e.seq
                        )
                    } else {
                        format!("entry {} does not link to entry {}", e.seq, w.last_seq)
                    };
                    return Ok(bad(e.seq, count, problem));
                }
                if !key.entry_matches(&w.hash, position, &e.event, &e.hash) {
                    // Only to explain: a hash that fits the formula older releases used was
                    // recomputed by someone without the key.
                    let why = if e.hash == unkeyed_audit_hash(&w.hash, position, &e.event) {
                        " (its hash was made without the key, with the unkeyed formula of \
                         releases before the chain was keyed)"
                    } else {
                        ""
                    };
                    return Ok(bad(
                        e.seq,
                        count,
                        format!("entry {} was changed after it was written{why}", e.seq),
                    ));
                }
                // Keyed, so written by this server: trustworthy.
                if e.event.actor == "system" {
                    if e.event.action == AUDIT_KEYED_ACTION
                        && e.event.result == Outcome::Failure.as_str()
                    {
                        warnings.push(format!("entry {}: {}", e.seq, e.event.reason));
                    }
                    if e.event.action == AUDIT_CHECKPOINT_ACTION {
                        let Some(named) = parse_checkpoint_reason(&e.event.reason) else {
                            return Ok(bad(
                                e.seq,
                                count,
                                format!("entry {}: a checkpoint that cannot be read", e.seq),
                            ));
                        };
                        if let Some(problem) = claims.add(e.seq, named) {
                            return Ok(bad(e.seq, count, problem));
                        }
                    }
                }
                w.position = position;
                w.hash = e.hash;
                w.last_seq = e.seq;
                claims.remember(e.seq, e.chain, &w.hash);
            }
        }
        if let Some(cp) = pending.next() {
            return Ok(bad(
                after + 1,
                count,
                format!(
                    "entry {} is missing: the log ends at entry {after}, but a checkpoint \
                     saw entry {}; the newest entries were deleted",
                    cp.seq, cp.seq
                ),
            ));
        }
        let mut chains: Vec<&ChainWalk> = walks.values().collect();
        chains.sort_by_key(|w| w.head.chain);
        for w in chains {
            let h = &w.head;
            if !key.chain_seal_matches(h.chain, h.position, &h.hash, &h.seal) {
                return Ok(bad(
                    w.last_seq + 1,
                    count,
                    format!(
                        "the audit head (entry {}{}) is not sealed with this server's key: it was \
                         set from outside Tessera, so entries after {} may have been deleted (or \
                         the key file is not the one the log was written with)",
                        h.seq,
                        chain_name(h.chain),
                        w.last_seq
                    ),
                ));
            }
            if h.position != w.position || h.hash != w.hash {
                return Ok(bad(
                    w.last_seq + 1,
                    count,
                    format!(
                        "the log ends at entry {}{} but entry {} was written: \
                         newest entries were deleted",
                        w.last_seq,
                        chain_name(h.chain),
                        h.seq
                    ),
                ));
            }
        }
        // Entries of a chain without a head: claimed after the heads were read, or its head was
        // deleted.
        if !headless.is_empty() {
            let now: std::collections::BTreeSet<i64> = self
                .store
                .audit_heads()
                .await?
                .into_iter()
                .map(|h| h.chain)
                .collect();
            if let Some(chain) = headless.iter().find(|c| !now.contains(c)) {
                return Ok(bad(
                    0,
                    count,
                    format!("chain {chain} has entries but no head: its head was deleted"),
                ));
            }
        }
        if let Some(problem) = claims.finish(self.store.as_ref()).await? {
            return Ok(bad(problem.0, count, problem.1));
        }
        Ok(AuditVerification {
            ok: true,
            entries: count,
            first_bad_seq: None,
            problem: None,
            head: newest.or_else(|| {
                Some(AuditCheckpoint {
                    seq: 0,
                    hash: AUDIT_GENESIS.to_owned(),
                })
            }),
            warnings,
        })
    }
}

/// " of chain N", except for chain 1 (the only one most logs have).
fn chain_name(chain: i64) -> String {
    if chain == 1 {
        String::new()
    } else {
        format!(" of chain {chain}")
    }
}

/// One chain as [`Service::verify_audit`] walks it.
struct ChainWalk {
    /// Entries checked, and the newest one's hash and number.
    position: i64,
    hash: String,
    last_seq: i64,
    /// Its head as read when the check started.
    head: crate::model::AuditHead,
}

/// Entries most recently checked that a cross-chain checkpoint may name without a lookup
/// (checkpoints name heads seconds old).
const RECENT_ENTRIES: usize = 200_000;

/// What cross-chain checkpoints named, checked against the log as the walk passes it.
#[derive(Default)]
struct Claims {
    /// Named entries not reached yet: entry number to chain, hash and the naming entry.
    ahead: std::collections::BTreeMap<i64, (ChainClaim, i64)>,
    /// Named entries passed beyond [`RECENT_ENTRIES`]: looked up at the end.
    behind: Vec<(ChainClaim, i64)>,
    recent: std::collections::HashMap<i64, (i64, String)>,
    order: std::collections::VecDeque<i64>,
    /// The newest entry number walked.
    walked: i64,
}

impl Claims {
    fn mismatch(claim: &ChainClaim, by: i64) -> String {
        format!(
            "entry {} of chain {} is not the one the checkpoint in entry {by} saw: it was \
             changed or deleted (with its chain's newest entries)",
            claim.seq, claim.chain
        )
    }

    /// Checks an entry walked (checked or not) against what was named.
    fn seen(&mut self, e: &AuditEntry) -> Option<String> {
        self.walked = e.seq;
        // Named entries the walk skipped past are gone.
        while let Some((&seq, _)) = self.ahead.first_key_value() {
            if seq > e.seq {
                break;
            }
            let (claim, by) = self.ahead.remove(&seq)?;
            if seq < e.seq
                || claim.chain != e.chain
                || !crate::crypto::ct_eq(claim.hash.as_bytes(), e.hash.as_bytes())
            {
                return Some(Self::mismatch(&claim, by));
            }
        }
        None
    }

    /// Remembers a checked entry for claims that name it later.
    fn remember(&mut self, seq: i64, chain: i64, hash: &str) {
        self.recent.insert(seq, (chain, hash.to_owned()));
        self.order.push_back(seq);
        if self.order.len() > RECENT_ENTRIES
            && let Some(old) = self.order.pop_front()
        {
            self.recent.remove(&old);
        }
    }

    /// The claims of the checkpoint in entry `by`.
    fn add(&mut self, by: i64, named: Vec<ChainClaim>) -> Option<String> {
        for claim in named {
            if claim.seq > self.walked {
                self.ahead.insert(claim.seq, (claim, by));
            } else if let Some((chain, hash)) = self.recent.get(&claim.seq) {
                if *chain != claim.chain
                    || !crate::crypto::ct_eq(hash.as_bytes(), claim.hash.as_bytes())
                {
                    return Some(Self::mismatch(&claim, by));
                }
            } else {
                self.behind.push((claim, by));
            }
        }
        None
    }

    /// Looks up what was named but not met on the walk: entry number and problem, if any.
    async fn finish(self, store: &dyn Store) -> Result<Option<(i64, String)>> {
        let rest = self.ahead.into_values().chain(self.behind);
        for (claim, by) in rest {
            let found = store.audit_after(claim.seq - 1, 1).await?;
            let holds = found.first().is_some_and(|e| {
                e.seq == claim.seq
                    && e.chain == claim.chain
                    && crate::crypto::ct_eq(e.hash.as_bytes(), claim.hash.as_bytes())
            });
            if !holds {
                return Ok(Some((claim.seq, Self::mismatch(&claim, by))));
            }
        }
        Ok(None)
    }
}

/// The problem when the log holds a checkpoint's entry with another hash.
fn checkpoint_mismatch(seq: i64) -> String {
    format!(
        "entry {seq} does not match the checkpoint: the log was rewritten from entry {seq} or \
         before, or its newest entries were deleted and new ones written since"
    )
}
