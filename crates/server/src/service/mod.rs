//! The use-cases: the only place policy lives (windows, throttling, replay refusal, who may do
//! what, what is audited). HTTP, RADIUS and the CLI all call these methods.
//!
//! Time comes from the injected [`Clock`], randomness from [`crate::crypto`], persistence from
//! the [`Store`]. Nothing here knows about HTTP, SQL or terminals.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::{AuditKey, KeyRing, PasswordHasher};
use crate::mail::Mailer;
use crate::sms::SmsSender;
use crate::store::{Store, StoreError};

mod actor;
mod apps;
mod attempts;
mod audit;
mod auth;
mod cache;
mod challenge;
mod codes;
mod enroll;
mod error;
mod hardware;
pub mod housekeeping;
mod import_web;
mod inventory;
mod invite;
pub mod keys;
mod limits;
mod migrate;
mod notify;
mod programmed;
pub mod radius;
mod recovery;
mod recovery_admin;
mod reset;
mod throttle;
mod tokens;
mod users;
mod validate;
mod vault_backup;
mod web;

pub use actor::{Actor, Principal};
pub use apps::{APP_KEY_PREFIX, AppCreated, CreateApp};
pub use audit::{AuditVerification, MAX_AUDIT_PAGE, Outcome};
pub use auth::LoginResult;
pub use enroll::{Device, EnrollmentDone, EnrollmentKey, EnrollmentView, FirstCode, LinkProblem};
pub use import_web::{STAGE_SECS, Upload, UploadFormat, UploadedFile, images_source, pskc_source};
pub use inventory::{
    ImportPolicy, ImportReport, REPORT_LIST_MAX, ReadTally, ReportAssignment, ReportEntry,
    ReportToken,
};
pub use invite::InvitationSent;
pub use migrate::{MigrationOffer, OfferedEntry};
pub use notify::{BlockView, Blocked};
pub use programmed::{
    BurnParams, ClockOffset, PROGRAM_WINDOW_SECS, ProgramActivation, ProgramToken, ProgrammedToken,
};
pub use recovery::RECOVERY_CODE_COUNT;
pub use recovery_admin::{RecoveryChanges, RecoverySettings, ReissuedCodes, Setting};
pub use reset::{ResetDone, ResetView};
pub use tokens::{AddToken, TokenAction, TokenCreated, TokenInfo};
pub use users::{CreateUser, MAX_PAGE, UserChanges, UserPage, validate_username};
pub use validate::{ValidateRequest, ValidateResponse, Verdict};
pub use vault_backup::{BackupMeta, BackupPut};
pub use web::{WebLogin, WebUser};

pub use error::{Error, ErrorCode};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The service layer, shared by every front-end.
#[derive(Debug)]
pub struct Service {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) keys: KeyRing,
    /// What the audit chain is checked with (the store hashes with the same key).
    pub(crate) audit_key: AuditKey,
    pub(crate) hasher: PasswordHasher,
    /// Password checks at validation have their own cap, so they never starve admin logins and
    /// never run on the OTP-only path.
    pub(crate) validate_hasher: PasswordHasher,
    pub(crate) config: Arc<Config>,
    pub(crate) mailer: Arc<dyn Mailer>,
    pub(crate) sms: Arc<dyn SmsSender>,
    pub(crate) source_limiter: limits::SourceLimiter,
    /// Recovery attempts per source address (SPEC F4), apart from validation's budget.
    pub(crate) recovery_limiter: limits::SourceLimiter,
    /// Failures of people who did not know the password, per source address (see
    /// `attempts.rs`): never counted against the account they tried.
    pub(crate) source_failures: limits::FailureBudget,
    /// The same per account and source address.
    pub(crate) account_source_failures: limits::FailureBudget,
    /// Failed hardware token claims (serial + code) per user and per source (`hardware.rs`).
    pub(crate) claim_user_failures: limits::FailureBudget,
    pub(crate) claim_source_failures: limits::FailureBudget,
    pub(crate) writer: audit::Writer,
    pub(crate) app_cache: apps::AppCache,
    pub(crate) user_cache: cache::UserCache,
    /// A hash of a throw-away password, checked when there is no real one (see `auth.rs`).
    pub(crate) dummy_hash: tokio::sync::OnceCell<String>,
    /// This node's counters and histograms (`/metrics`).
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// SIGTERM came: `/readyz` fails while the last requests are served.
    draining: std::sync::atomic::AtomicBool,
}

/// How long the readiness check waits for the database.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1500);

impl Service {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys: KeyRing,
        audit_key: AuditKey,
        config: Arc<Config>,
        mailer: Arc<dyn Mailer>,
        sms: Arc<dyn SmsSender>,
    ) -> Service {
        audit::start_indexer(&store, clock.clone());
        let metrics = Arc::new(crate::metrics::Metrics::new(clock.now()));
        Service {
            hasher: PasswordHasher::new(config.auth.max_concurrent_password_hashes),
            validate_hasher: PasswordHasher::new(config.validate.max_concurrent_password_checks),
            source_limiter: limits::SourceLimiter::new(config.validate.source_requests_per_minute),
            recovery_limiter: limits::SourceLimiter::new(config.recovery.max_per_source_per_minute),
            source_failures: limits::FailureBudget::new(config.auth.source_failures_per_hour, 3600),
            account_source_failures: limits::FailureBudget::new(
                config.auth.account_source_failures_per_hour,
                3600,
            ),
            claim_user_failures: limits::FailureBudget::new(
                hardware::CLAIM_FAILURES_PER_USER,
                3600,
            ),
            claim_source_failures: limits::FailureBudget::new(
                hardware::CLAIM_FAILURES_PER_SOURCE,
                3600,
            ),
            mailer,
            sms,
            writer: audit::Writer::start(store.clone(), metrics.clone()),
            metrics,
            draining: Default::default(),
            app_cache: apps::AppCache::default(),
            user_cache: cache::UserCache::default(),
            store,
            clock,
            keys,
            audit_key,
            config,
            dummy_hash: tokio::sync::OnceCell::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// This node's metrics in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let database = match self.store.kind() {
            crate::store::DatabaseKind::Sqlite => "sqlite",
            crate::store::DatabaseKind::Postgres => "postgres",
        };
        self.metrics.render(
            self.store.pool_stats(),
            database,
            self.keys.current_key_id(),
        )
    }

    /// Counts a validation request from `source` against its per-minute budget.
    pub(crate) fn source_allowed(&self, source: &str) -> bool {
        self.source_limiter.allow(source, self.clock.now())
    }

    /// Password checks made by logins and validations so far, real or throw-away: every login
    /// path makes one per attempt that carries a password, whether the user exists or not.
    pub fn login_password_checks(&self) -> u64 {
        self.validate_hasher.verifications()
    }

    /// Whether the database answers (readiness).
    /// From now on `/readyz` says the node is draining (SIGTERM): it still serves requests.
    pub fn start_draining(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn ready(&self) -> Result<()> {
        // Bounded: with the database gone, taking a connection waits for the pool's timeout
        // (10 s), longer than a probe waits; the answer must be "not ready", not no answer.
        tokio::time::timeout(READY_TIMEOUT, async {
            self.store.ping().await?;
            self.refresh_active_key().await
        })
        .await
        .map_err(|_| StoreError::Database(sqlx::Error::PoolTimedOut))??;
        if let Some(key_id) = self.keys.missing_active() {
            return Err(crate::crypto::CryptoError::Open { key_id }.into());
        }
        Ok(())
    }
}
