//! Persistence behind the [`Store`] trait, with SQLite ([`SqliteStore`]) and PostgreSQL
//! ([`PgStore`]) implementations that behave the same (the contract tests run against both).
//!
//! Anything that could race across requests or nodes is one atomic statement here, e.g. accepting
//! a counter is `UPDATE ... WHERE next_counter <= $matched` and "did a row change?". The store
//! never decides policy: it does not know windows, delays or who may do what.

use async_trait::async_trait;

use crate::clock::UnixTime;
use crate::crypto::AuditKey;
use crate::model::{
    AppId, AppMode, Application, AuditEntry, AuditEvent, AuditFilter, AuditHead, Challenge,
    ImportRecord, InventoryFilter, InventoryToken, NewInventoryToken, NewToken, NewUser,
    RadiusClient, Serial, Session, Token, TokenId, TokenState, User, UserFilter, UserId,
    WebSession,
};

mod batch;
#[cfg(test)]
mod contract;
mod keying;
mod postgres;
mod sql;
mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write (a name or serial that exists already).
    #[error("already exists")]
    Conflict,
    /// A stored value could not be read back (a column holds something this version does not know).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the SQLite connection that commits validation batches (store/sqlite.rs).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A write batched with others failed; the message is the batch's error.
    #[error("batched write failed: {0}")]
    Batch(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// This database does not do that (the message says what to use instead).
    #[error("{0}")]
    Unsupported(&'static str),
}

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// What [`MaintenanceStore::roll_forward`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RolledForward {
    /// TOTP tokens moved past every code shown up to the restore.
    pub totp_tokens: u64,
    /// HOTP tokens whose counter was moved forward.
    pub hotp_tokens: u64,
    /// API and web sessions ended.
    pub sessions: u64,
    /// Mailed links and sent codes that were still open, now expired.
    pub links: u64,
}

impl StoreError {
    /// Turns unique-constraint violations into [`StoreError::Conflict`], once, here.
    fn from_write(e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
            _ => StoreError::Database(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How a successful code moves a token forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advance {
    /// The matched counter or time step; it and every lower one become unusable.
    pub matched: i64,
    /// The drift to remember (TOTP), in steps.
    pub drift: i64,
    /// The state the token must be in for the update to happen.
    pub from: TokenState,
    /// The state it is in afterwards (`pending` to `active` on activation).
    pub to: TokenState,
    pub now: UnixTime,
    /// The token's failure count as read before the code was compared: the update happens only
    /// if no failure was counted since, so of concurrent attempts on one state only the first
    /// outcome counts (an accept after a concurrent failure is refused).
    pub fails: i64,
    /// The fingerprint of the RADIUS request that sent the code, stored with the counter (see
    /// [`RadiusStore::token_moved_by`]); `None` otherwise.
    pub request: Option<RequestPrint>,
}

/// A SHA-256 fingerprint of a request (client and exact bytes), for retransmits across nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrint(pub [u8; 32]);

impl RequestPrint {
    /// The stored form: lower-case hex, or empty for none.
    pub fn column(print: Option<&RequestPrint>) -> String {
        print.map_or_else(String::new, |p| data_encoding::HEXLOWER.encode(&p.0))
    }
}

/// A write that may be committed together with others (see [`AuditStore::apply_writes`]).
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Accept a counter or step (compare-and-set, see [`AuditStore::advance_token`]); when it
    /// succeeds and `audit` is given, append that event in the same transaction.
    Advance {
        token: TokenId,
        advance: Advance,
        audit: Option<AuditEvent>,
    },
    /// Append an event to the audit chain.
    Audit(AuditEvent),
}

/// How the service runs [`AuditStore::apply_writes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writers {
    /// One batch at a time, on a thread of its own: the store does a batch's work on the calling
    /// thread without waiting for I/O readiness (SQLite), so a commit run on a runtime worker
    /// would keep that worker from answering requests meanwhile.
    Thread,
    /// Up to this many batches at a time, as tasks on the runtime (PostgreSQL: a batch mostly
    /// waits for the database's answers).
    Tasks(usize),
}

/// What [`AuditStore::key_audit_chain`] found in a log written before the chain was keyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditKeying {
    /// Entries rehashed with the key.
    pub entries: i64,
    /// Where their unkeyed chain did not hold, if it did not: they were rehashed as found, and
    /// the entry recording the keying says so.
    pub problem: Option<String>,
}

/// The result of one [`WriteOp`], in the same position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteResult {
    /// Whether the compare-and-set changed the token, and the audit entry written with it.
    Advanced(bool, Option<AuditEntry>),
    Audited(AuditEntry),
}

/// A kind of secret stored sealed under a server key (see [`KeyStore`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SealedKind {
    /// A token's seed (`tokens.sealed_secret`, bound to the token's serial).
    TokenSeed,
    /// A RADIUS client's shared secret (`radius_clients.sealed_secret`, bound to its name).
    RadiusSecret,
    /// A RADIUS client's next secret during a rotation (`sealed_next_secret`).
    RadiusNextSecret,
    /// A hardware token's seed in the inventory (`inventory_tokens.sealed_secret`, bound to
    /// its serial).
    InventorySeed,
}

impl SealedKind {
    /// Every kind a key rotation rewraps.
    pub const ALL: &[SealedKind] = &[
        SealedKind::TokenSeed,
        SealedKind::RadiusSecret,
        SealedKind::RadiusNextSecret,
        SealedKind::InventorySeed,
    ];
}

/// One sealed secret as stored: its row, a label to name it by (never the secret), the blob.
#[derive(Clone)]
pub struct Sealed {
    pub kind: SealedKind,
    pub id: i64,
    pub label: String,
    pub blob: Vec<u8>,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// Which server key is active, and the sealed secrets a key rotation rewraps.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The key every node seals new secrets with; `None`: each node's newest key.
    async fn active_key_id(&self) -> StoreResult<Option<u32>>;
    async fn set_active_key_id(&self, key_id: u32) -> StoreResult<()>;
    /// Up to `limit` sealed secrets of `kind` with a row id above `after`, by row id.
    async fn sealed_page(
        &self,
        kind: SealedKind,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<Sealed>>;
    /// Replaces a sealed secret if it is still `old.blob` (compare-and-set): a secret changed
    /// meanwhile (a token resynchronised, deleted) is left alone. Whether it was replaced.
    async fn replace_sealed(&self, old: &Sealed, blob: &[u8]) -> StoreResult<bool>;
    /// Unused recovery codes hashed under `key_id`.
    async fn recovery_codes_under(&self, key_id: u32) -> StoreResult<i64>;
}

/// One stored generation of a user's `tessera-auth` backup: an opaque blob.
#[derive(Clone)]
pub struct VaultBackup {
    pub generation: i64,
    pub blob: Vec<u8>,
    pub created_at: UnixTime,
}

impl std::fmt::Debug for VaultBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultBackup")
            .field("generation", &self.generation)
            .field("size", &self.blob.len())
            .finish_non_exhaustive()
    }
}

/// `tessera-auth`'s encrypted backups (blobs the server cannot read), two generations a user.
#[async_trait]
pub trait VaultBackupStore: Send + Sync {
    /// The newest generation, if any.
    async fn latest_vault_backup(&self, user: UserId) -> StoreResult<Option<VaultBackup>>;
    /// Stores `blob` as generation `expected + 1` only if the newest stored generation is
    /// `expected` (0: none), in one statement (a compare-and-set: two devices uploading on the
    /// same generation cannot both win, on any number of nodes); then drops generations older
    /// than the previous one. `Some(new generation)`, or `None` when `expected` is stale.
    async fn put_vault_backup(
        &self,
        user: UserId,
        expected: i64,
        blob: &[u8],
        now: UnixTime,
    ) -> StoreResult<Option<i64>>;
    /// Deletes every generation below `before` (every generation: `None`); how many there were.
    async fn delete_vault_backups(&self, user: UserId, before: Option<i64>) -> StoreResult<u64>;
    /// The generations kept, oldest first.
    async fn vault_backup_generations(&self, user: UserId) -> StoreResult<Vec<i64>>;
    /// When an account reset last wiped the user's backups.
    async fn vault_backup_reset_at(&self, user: UserId) -> StoreResult<Option<UnixTime>>;
}

/// What a restore changes in a copy of the database before the server uses it.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Anti-rollback, in one transaction: every TOTP token refuses the steps up to `now` plus
    /// `totp_forward` (and its drift when ahead); every HOTP token's counter moves forward by
    /// `hotp_advance`; all sessions end; open mailed links and sent codes expire. A copy taken
    /// earlier knows nothing of the codes, sessions and links used after it: without this, they
    /// would work again.
    async fn roll_forward(
        &self,
        now: UnixTime,
        totp_forward: i64,
        hotp_advance: i64,
    ) -> StoreResult<RolledForward>;
}

/// Everything the service needs from the database. The resource traits it is made of are
/// implemented once for both databases, in `sql/` (one file per trait).
#[async_trait]
pub trait Store:
    UserStore
    + TokenStore
    + AppStore
    + SessionStore
    + AuditStore
    + EnrollmentStore
    + RecoveryStore
    + MaintenanceStore
    + KeyStore
    + RadiusStore
    + InventoryStore
    + VaultBackupStore
    + Send
    + Sync
    + std::fmt::Debug
{
    /// How batches of [`AuditStore::apply_writes`] are run.
    fn writers(&self) -> Writers;
    /// From now on, each writer appends to an audit chain of its own (PostgreSQL; the server
    /// calls it). Until then, appends go to chain 1, the chain every process can append to,
    /// one at a time: a command of the CLI then does not leave a chain of its own for each run.
    fn use_writer_chains(&self);
    /// Which database this is.
    fn kind(&self) -> DatabaseKind;
    /// The read pool's connections: open, and idle among them.
    fn pool_stats(&self) -> (u32, usize);
    /// Writes a consistent copy of the whole database to the new file `path` while the store
    /// keeps serving (SQLite: `VACUUM INTO`, one read transaction; the writers are not held
    /// up). PostgreSQL is copied with `pg_dump` instead: [`StoreError::Unsupported`].
    async fn snapshot_to(&self, path: &std::path::Path) -> StoreResult<()>;
    /// Checks the database answers and takes a write (one row of `readiness`).
    async fn ping(&self) -> StoreResult<()>;
    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// The names of the applied migrations, oldest first.
    async fn applied_migrations(&self) -> StoreResult<Vec<String>>;
    /// Housekeeping: removes the sessions (API and web) that can no longer be used at `now`
    /// (past their absolute end, or last seen at `idle_since` or earlier), and the e-mail/SMS
    /// challenges that expired and were created before `challenges_before` (newer ones still
    /// count against the sending limit), and the mailed links (enrollment invitations, reset
    /// links, recovery requests, "this wasn't me" links) that expired before `links_before`. A
    /// recovery request stays while the enrollment link it led to is kept, as enrolling on that
    /// link still needs it. Returns the rows removed.
    async fn purge_expired(
        &self,
        now: UnixTime,
        idle_since: UnixTime,
        challenges_before: UnixTime,
        links_before: UnixTime,
    ) -> StoreResult<u64>;
}

/// Users and their accounts: names, e-mail, roles, wrong-password counting and throttling.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn insert_user(&self, new: &NewUser, now: UnixTime) -> StoreResult<User>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// Looks a user up by name, ignoring case.
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    /// Users whose name, display name or e-mail contains `search` (ignoring case) and who match
    /// `filter` at `now`, by name; with the number of all such users.
    async fn list_users(
        &self,
        search: &str,
        filter: UserFilter,
        now: UnixTime,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<User>, i64)>;
    /// Writes every changeable field of `user`. False if the user no longer exists.
    async fn update_user(&self, user: &User) -> StoreResult<bool>;
    /// Deletes the user with tokens and sessions. False if there was no such user.
    async fn delete_user(&self, id: UserId) -> StoreResult<bool>;
    /// Active admins with a password: the last one must not be removed.
    async fn count_active_admins(&self) -> StoreResult<i64>;
    /// A user and all their tokens (the validation hot path: one call).
    async fn user_with_tokens(&self, username: &str) -> StoreResult<Option<(User, Vec<Token>)>>;
    /// Claims one attempt on the account before a comparison: counts it as a failure (the
    /// count becomes `seen + 1`, checks wait until `until`) only if the count is still `seen` and
    /// the account is not waiting at `now`. False: another attempt claimed it first, or the
    /// account waits; the caller compares nothing. A success then calls
    /// [`reset_account_failures`](Self::reset_account_failures).
    async fn claim_account_attempt(
        &self,
        id: UserId,
        seen: i64,
        until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<bool>;
    async fn reset_account_failures(&self, id: UserId) -> StoreResult<()>;
    /// Remembers that the user has had a second factor (first activation; kept afterwards).
    async fn mark_second_factor(&self, id: UserId, now: UnixTime) -> StoreResult<()>;
    /// Active and disabled users whose e-mail address is `email`, ignoring case.
    async fn users_by_email(&self, email: &str) -> StoreResult<Vec<User>>;
}

/// Tokens (counters, failures, throttling, resync hints) and e-mail/SMS challenges.
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn insert_token(&self, new: &NewToken, now: UnixTime) -> StoreResult<Token>;
    async fn token(&self, id: TokenId) -> StoreResult<Option<Token>>;
    async fn tokens_of(&self, user: UserId) -> StoreResult<Vec<Token>>;
    async fn list_tokens(&self, limit: i64, offset: i64) -> StoreResult<Vec<Token>>;
    /// How many tokens there are, of all users (the total beside a page of `list_tokens`).
    async fn count_tokens(&self) -> StoreResult<i64>;
    /// Renames a token and sets its state. False if it no longer exists.
    async fn update_token(&self, id: TokenId, name: &str, state: TokenState) -> StoreResult<bool>;
    async fn delete_token(&self, id: TokenId) -> StoreResult<bool>;
    /// Sets the counter to `next` (resynchronisation), whatever it was. Resets failures.
    async fn resync_token(
        &self,
        id: TokenId,
        next: i64,
        drift: i64,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Counts one failed code: the count becomes `seen + 1` and checks wait until `until` (with
    /// `lock`, an active token moves to `locked`), only if the count is still `seen`. False when
    /// a concurrent failure was counted first (that one stands for both).
    async fn count_token_failure(
        &self,
        id: TokenId,
        seen: i64,
        until: UnixTime,
        lock: bool,
    ) -> StoreResult<bool>;
    /// Refuses checks until `until`; with `lock`, also moves an active token to `locked`.
    async fn throttle_token(&self, id: TokenId, until: UnixTime, lock: bool) -> StoreResult<()>;
    /// Clears failures and throttling, and unlocks a locked token.
    async fn unlock_token(&self, id: TokenId) -> StoreResult<bool>;
    /// A pending token's hash, time step and first-use window (a programmed token: what it
    /// really computes). False when the token is no longer pending.
    async fn set_pending_params(
        &self,
        id: TokenId,
        algorithm: tessera_otp::HashAlgorithm,
        period: u64,
        first_use_window: i64,
    ) -> StoreResult<bool>;
    /// Remembers (or clears) an out-of-window match for automatic resync.
    async fn set_resync_hint(
        &self,
        id: TokenId,
        hint: Option<i64>,
        at: UnixTime,
    ) -> StoreResult<()>;
    async fn insert_challenge(&self, challenge: &Challenge) -> StoreResult<()>;
    async fn challenge(&self, id_hash: &str) -> StoreResult<Option<Challenge>>;
    /// Counts one answer atomically; returns the number of answers so far.
    async fn challenge_attempt(&self, id_hash: &str) -> StoreResult<i64>;
    /// Marks the challenge used: true only for the first caller, and only before it expires.
    async fn consume_challenge(&self, id_hash: &str, now: UnixTime) -> StoreResult<bool>;
    /// Challenges created for the user since `since` (rate limit on sending).
    async fn count_challenges_since(&self, user: UserId, since: UnixTime) -> StoreResult<i64>;
}

/// Registered applications and their API keys (hashes only).
#[async_trait]
pub trait AppStore: Send + Sync {
    async fn insert_app(
        &self,
        name: &str,
        key_prefix: &str,
        key_hash: &str,
        mode: AppMode,
        passthrough: bool,
        now: UnixTime,
    ) -> StoreResult<Application>;
    async fn app(&self, id: AppId) -> StoreResult<Option<Application>>;
    async fn app_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<Application>>;
    async fn list_apps(&self) -> StoreResult<Vec<Application>>;
    async fn revoke_app(&self, id: AppId, now: UnixTime) -> StoreResult<bool>;
}

/// RADIUS clients, answered challenge States and the requests that moved a token's counter.
#[async_trait]
pub trait RadiusStore: Send + Sync {
    async fn insert_radius_client(&self, client: &RadiusClient) -> StoreResult<RadiusClient>;
    async fn radius_clients(&self) -> StoreResult<Vec<RadiusClient>>;
    async fn radius_client(&self, name: &str) -> StoreResult<Option<RadiusClient>>;
    async fn delete_radius_client(&self, name: &str) -> StoreResult<bool>;
    /// Replaces both sealed secrets (rotation) of the client with `id`.
    async fn set_radius_secrets(
        &self,
        id: i64,
        sealed: &[u8],
        sealed_next: Option<&[u8]>,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// Marks a challenge State as answered; `false` if it was answered before (on any node).
    async fn claim_radius_state(&self, nonce: &str, expires_at: UnixTime) -> StoreResult<bool>;
    /// Whether the token's counter was last moved by the request with `fingerprint`, at or after
    /// `since`.
    async fn token_moved_by(
        &self,
        token: TokenId,
        fingerprint: &RequestPrint,
        since: UnixTime,
    ) -> StoreResult<bool>;
}

/// Admin API sessions and web sessions (hashes of their tokens only).
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;
    async fn session(&self, token_hash: &str) -> StoreResult<Option<Session>>;
    async fn touch_session(&self, token_hash: &str, now: UnixTime) -> StoreResult<()>;
    async fn set_session_reauth(&self, token_hash: &str, until: UnixTime) -> StoreResult<()>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;
    async fn delete_sessions_of(&self, user: UserId) -> StoreResult<()>;
    async fn insert_web_session(&self, session: &WebSession) -> StoreResult<()>;
    async fn web_session(&self, id_hash: &str) -> StoreResult<Option<WebSession>>;
    async fn touch_web_session(&self, id_hash: &str, now: UnixTime) -> StoreResult<()>;
    async fn set_web_session_reauth(&self, id_hash: &str, until: UnixTime) -> StoreResult<()>;
    /// Keeps `sealed` (a form waiting for re-authentication) with the session, replacing any
    /// earlier one; `None` clears it.
    async fn set_web_session_pending(
        &self,
        id_hash: &str,
        sealed: Option<&[u8]>,
    ) -> StoreResult<()>;
    /// The waiting form of the session, if any.
    async fn web_session_pending(&self, id_hash: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Clears the waiting form if it is still `sealed`: true for exactly one of two requests
    /// that resume the same form.
    async fn clear_web_session_pending(&self, id_hash: &str, sealed: &[u8]) -> StoreResult<bool>;
    async fn delete_web_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Ends every web session of the user except `keep` (after a password change).
    async fn delete_web_sessions_of(&self, user: UserId, keep: &str) -> StoreResult<()>;
}

/// Group commit (token advances with their audit entries) and the audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Accepts a counter or time step atomically: true only if the token is in `adv.from` and no
    /// equal or later counter was accepted before. Resets failures and throttling.
    async fn advance_token(&self, id: TokenId, adv: Advance) -> StoreResult<bool> {
        match self
            .apply_writes(&[WriteOp::Advance {
                token: id,
                advance: adv,
                audit: None,
            }])
            .await?
            .pop()
        {
            Some(WriteResult::Advanced(done, _)) => Ok(done),
            _ => Err(StoreError::Corrupt("advance returned nothing".into())),
        }
    }
    /// Applies token advances and audit appends in order, in one transaction (group commit).
    async fn apply_writes(&self, ops: &[WriteOp]) -> StoreResult<Vec<WriteResult>>;
    /// Appends one event to the hash chain and returns the stored entry.
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<AuditEntry> {
        match self
            .apply_writes(&[WriteOp::Audit(event.clone())])
            .await?
            .pop()
        {
            Some(WriteResult::Audited(entry)) => Ok(entry),
            _ => Err(StoreError::Corrupt("audit append returned nothing".into())),
        }
    }
    /// Entries matching `filter`, newest first. A user's entries come from the user index (see
    /// [`AuditStore::index_audit`]) and, for entries it does not hold yet, from the log's tail.
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
    /// Adds up to `max` of the oldest entries not yet in the user index to it, in one
    /// transaction, and returns how many it added. Appends do not touch that index (it would cost
    /// every commit one page write per user in it); the service calls this about once a second.
    /// Concurrent callers (other processes, other nodes) do not add an entry twice.
    async fn index_audit(&self, max: i64) -> StoreResult<u64>;
    /// Entries with `seq > after`, oldest first, at most `limit` (for verifying the chain).
    async fn audit_after(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>>;
    /// The head of the chain holding the newest entry (the highest number): that entry's number,
    /// position and hash, as recorded when it was appended, and the seal over them.
    async fn audit_head(&self) -> StoreResult<AuditHead>;
    /// Every chain's head, by chain (see [`AuditHead`]).
    async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>>;
    /// Keys a log written before the chain was keyed, once: when migration 0011 asked for it
    /// (its table `audit_chain_unkeyed` exists) and the head is not sealed yet. In one
    /// transaction, holding the head: checks every entry against the unkeyed chain, rehashes it
    /// with the key as found, appends an `audit.key` entry at `now` saying how that went (not
    /// for an empty log), seals the head and drops the table. `None` when there was nothing to
    /// do (also for every node but the first when several start at once).
    async fn key_audit_chain(&self, now: UnixTime) -> StoreResult<Option<AuditKeying>>;
}

/// Enrollment invitations and recovery codes.
#[async_trait]
pub trait EnrollmentStore: Send + Sync {
    /// Stores a new invitation and supersedes every earlier unused one of the same user, in one
    /// transaction: at most one link per user works at any time.
    async fn insert_invitation(&self, invitation: &crate::model::Invitation) -> StoreResult<()>;
    async fn invitation(&self, id_hash: &str) -> StoreResult<Option<crate::model::Invitation>>;
    /// The user's newest invitation that still works at `now` (not used, replaced or expired).
    async fn live_invitation(
        &self,
        user: UserId,
        now: UnixTime,
    ) -> StoreResult<Option<crate::model::Invitation>>;
    /// Records the pending token of an enrollment: true only if the invitation is still open
    /// (unused, not superseded) and had no token yet, so concurrent starts agree on one token.
    async fn attach_invitation_token(&self, id_hash: &str, token: TokenId) -> StoreResult<bool>;
    /// Counts one wrong first code atomically; returns the new count.
    async fn record_invitation_failure(&self, id_hash: &str) -> StoreResult<i64>;
    /// Marks the invitation used: true only for the first caller, and only while not superseded.
    async fn use_invitation(&self, id_hash: &str, now: UnixTime) -> StoreResult<bool>;
    /// Supersedes every open invitation of the user (e.g. when one could not be delivered).
    async fn supersede_invitations(&self, user: UserId) -> StoreResult<()>;
    /// Active users with `otp_required` and no active token: who still has to enroll.
    async fn users_needing_enrollment(&self) -> StoreResult<Vec<User>>;
    /// The user's recovery-code setting: `None` follows the configured policy.
    async fn recovery_enabled(&self, user: UserId) -> StoreResult<Option<bool>>;
    async fn set_recovery_enabled(&self, user: UserId, enabled: Option<bool>) -> StoreResult<bool>;
    /// Replaces all of the user's recovery codes by these hashes, in one transaction.
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        code_hashes: &[String],
        now: UnixTime,
    ) -> StoreResult<()>;
    async fn recovery_codes_of(&self, user: UserId)
    -> StoreResult<Vec<crate::model::RecoveryCode>>;
    /// Uses one recovery code: true only for the first caller.
    async fn use_recovery_code(
        &self,
        user: UserId,
        code_hash: &str,
        now: UnixTime,
    ) -> StoreResult<bool>;
}

/// Self-service recovery, "this wasn't me" links, account reset and the per-user recovery
/// settings.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// The user's recovery policies and self-service lock.
    async fn recovery_policy(&self, user: UserId) -> StoreResult<crate::model::RecoveryPolicy>;
    /// Sets the per-user recovery policies (`None`: follow the configuration). False if no user.
    async fn set_recovery_policy(
        &self,
        user: UserId,
        self_recovery: Option<bool>,
        revoke_on_recovery: Option<bool>,
    ) -> StoreResult<bool>;
    /// Counts one recovery attempt of the user and returns the attempts since `since`
    /// (including this one), in one transaction.
    async fn record_recovery_attempt(
        &self,
        user: UserId,
        now: UnixTime,
        since: UnixTime,
    ) -> StoreResult<i64>;
    async fn insert_recovery_request(
        &self,
        request: &crate::model::RecoveryRequest,
    ) -> StoreResult<()>;
    async fn recovery_request(
        &self,
        id_hash: &str,
    ) -> StoreResult<Option<crate::model::RecoveryRequest>>;
    /// Counts one answer atomically; returns the number of answers so far.
    async fn recovery_request_attempt(&self, id_hash: &str) -> StoreResult<i64>;
    /// Marks the request used and records the enrollment link it led to: true only for the first
    /// caller, and only before it expires.
    async fn use_recovery_request(
        &self,
        id_hash: &str,
        invitation_hash: &str,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// The used recovery request that led to the enrollment link with this hash.
    async fn recovery_request_by_invitation(
        &self,
        invitation_hash: &str,
    ) -> StoreResult<Option<crate::model::RecoveryRequest>>;
    async fn insert_block_link(&self, link: &crate::model::BlockLink) -> StoreResult<()>;
    async fn block_link(&self, id_hash: &str) -> StoreResult<Option<crate::model::BlockLink>>;
    /// Marks the link used and returns it: `Some` only for the first caller, before it expires.
    async fn use_block_link(
        &self,
        id_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<crate::model::BlockLink>>;
    /// Locks (or unlocks) the user's self-service. False if there is no such user.
    async fn set_self_service_locked(&self, user: UserId, locked: bool) -> StoreResult<bool>;
    async fn insert_reset_request(&self, request: &crate::model::ResetRequest) -> StoreResult<()>;
    async fn reset_request(&self, id_hash: &str)
    -> StoreResult<Option<crate::model::ResetRequest>>;
    /// Resets the account in ONE transaction (SPEC F6): uses the reset link `reset_hash` (when
    /// given; false if it is used, expired or unknown), deletes every token, recovery code,
    /// invitation, challenge, recovery request, "this wasn't me" link, web and API session of the
    /// user, sets the new password hash and hint (clearing failures), and stores `invitation`
    /// to start enrollment. Any failure leaves the account as it was.
    async fn reset_account(
        &self,
        user: UserId,
        reset_hash: Option<&str>,
        password_hash: &str,
        hint: &str,
        invitation: &crate::model::Invitation,
        now: UnixTime,
    ) -> StoreResult<bool>;
    /// How re-issued recovery codes reach the user: `None` follows the configuration, else
    /// `show` or `email`.
    async fn recovery_delivery(&self, user: UserId) -> StoreResult<Option<String>>;
    /// Sets the per-user delivery of re-issued recovery codes (`None`: follow the
    /// configuration). False if there is no such user.
    async fn set_recovery_delivery(
        &self,
        user: UserId,
        delivery: Option<&str>,
    ) -> StoreResult<bool>;
    /// The user's password hint (empty when none was set); `None` if there is no such user.
    async fn password_hint(&self, user: UserId) -> StoreResult<Option<String>>;
}

/// What an import hands the store, row by row (see [`InventoryStore::import_inventory`]).
#[derive(Debug)]
pub enum FeedItem {
    Row(NewInventoryToken),
    /// The file ended: commit.
    End,
    /// The whole file is refused: nothing of it may stay.
    Abort,
}

/// The rows of one import, pulled by the store inside its transaction so that memory stays
/// bounded however large the file.
pub trait InventoryFeed: Send {
    fn next_row(&mut self) -> FeedItem;
    /// A row whose serial was in the inventory already: left as it was, or `updated`.
    fn existing(&mut self, serial: &Serial, updated: bool);
    /// After the last row: what to keep with the import record.
    fn summary(&mut self) -> FeedSummary;
}

/// What an import's record keeps besides the counts the store makes.
#[derive(Debug, Clone, Default)]
pub struct FeedSummary {
    /// Entries of the file that were not imported.
    pub skipped: i64,
    /// The report (JSON): skips with reasons, warnings; never secrets.
    pub report: String,
    /// SHA-256 of the input, hex.
    pub file_sha256: String,
}

/// Who runs an import and on which file.
#[derive(Debug, Clone)]
pub struct NewImport {
    pub actor: String,
    pub format: String,
    pub file_sha256: String,
    pub now: UnixTime,
}

/// How an import ended in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportEnd {
    /// Committed (or, for a dry run, rolled back after counting): rows new and rows updated.
    Done {
        import_id: i64,
        inserted: i64,
        updated: i64,
        existing: i64,
    },
    /// The feed aborted; nothing was kept.
    Aborted,
}

/// The inventory of hardware tokens in stock and the record of imports.
#[async_trait]
pub trait InventoryStore: Send + Sync {
    /// Runs one import in ONE transaction: records the import, inserts the feed's rows in batches
    /// (a serial in the inventory already is left alone, or with `update` gets the row's maker,
    /// model and dates and a higher counter, never a lower counter nor another seed; a token no
    /// longer in stock is never touched), stores the counts and report. An abort of the feed, or
    /// `dry_run`, rolls everything back.
    async fn import_inventory(
        &self,
        import: &NewImport,
        feed: &mut dyn InventoryFeed,
        update: bool,
        dry_run: bool,
    ) -> StoreResult<ImportEnd>;
    async fn inventory_token(&self, serial: &str) -> StoreResult<Option<InventoryToken>>;
    /// Tokens matching `filter`, by serial, with the number of all such tokens.
    async fn list_inventory(
        &self,
        filter: &InventoryFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<InventoryToken>, i64)>;
    /// In-stock tokens with `id > after`, by id (export, in pages).
    async fn inventory_after(&self, after: i64, limit: i64) -> StoreResult<Vec<InventoryToken>>;
    /// In ONE transaction: inserts `token` (with `drift` and its first-use window) and marks the
    /// inventory row assigned to it, only if it is still in stock. `None`: it is not (assigned
    /// or retired meanwhile).
    async fn assign_inventory(
        &self,
        serial: &str,
        token: &NewToken,
        drift: i64,
        first_use_window: i64,
        now: UnixTime,
    ) -> StoreResult<Option<Token>>;
    /// Takes an in-stock token out of stock. False if it is not in stock.
    async fn retire_inventory(&self, serial: &str, now: UnixTime) -> StoreResult<bool>;
    async fn imports(&self, limit: i64) -> StoreResult<Vec<ImportRecord>>;
    async fn import_record(&self, id: i64) -> StoreResult<Option<ImportRecord>>;
    /// The makers in the inventory, for the list's filter.
    async fn inventory_manufacturers(&self) -> StoreResult<Vec<String>>;
    /// Keeps a web upload (sealed) between its dry run and its confirmation: one per session,
    /// replacing an earlier one.
    async fn stage_upload(
        &self,
        session_hash: &str,
        sealed: &[u8],
        expires_at: UnixTime,
    ) -> StoreResult<()>;
    /// The session's staged upload, unless expired.
    async fn staged_upload(
        &self,
        session_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<Vec<u8>>>;
    /// Drops the session's staged upload. False if there was none.
    async fn drop_staged_upload(&self, session_hash: &str) -> StoreResult<bool>;
}

/// Opens the store named by `url` (`sqlite://...` or `postgres://...`).
pub async fn connect(
    url: &str,
    max_connections: u32,
    synchronous_full: bool,
    audit_key: AuditKey,
) -> StoreResult<std::sync::Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(
            PgStore::connect(url, max_connections, audit_key).await?,
        ))
    } else {
        Ok(std::sync::Arc::new(
            SqliteStore::connect(url, max_connections, synchronous_full, audit_key).await?,
        ))
    }
}
