//! Tessera's server: configuration, storage, the use-cases and their HTTP and CLI front-ends.
//!
//! [`build`] assembles an [`App`] from a [`Config`]; `main` and the end-to-end tests both use it,
//! so the tests run the same wiring as production.

pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod emails;
pub mod events;
pub mod http;
pub mod i18n;
pub mod mail;
pub mod metrics;
pub mod model;
pub mod msg;
pub mod qr;
pub mod radius;
pub mod service;
pub mod sms;
pub mod store;
#[doc(hidden)]
pub mod testing;

use std::sync::Arc;

use anyhow::Context as _;

pub use config::Config;
pub use service::Service;

/// A ready application: the service layer and its HTTP router.
#[derive(Debug, Clone)]
pub struct App {
    pub service: Arc<Service>,
}

impl App {
    /// The HTTP router for this app.
    pub fn router(&self) -> axum::Router {
        http::router(self.service.clone())
    }

    /// What `tessera serve` does before it listens: each writer appends to an audit chain of
    /// its own (PostgreSQL), so that writers of this and other nodes never wait for each other.
    pub fn use_writer_chains(&self) {
        self.service.store.use_writer_chains();
    }
}

/// What `build` reports about first-start set-up, so the caller can log it.
#[derive(Debug, Default, Clone)]
pub struct Startup {
    pub created_data_dir: bool,
    pub created_key_file: bool,
    pub database: String,
}

/// Opens (and on first start, creates) the data directory, key file and database, applies
/// migrations and returns the app. Refuses a database whose restore did not finish.
pub async fn build(config: Config, clock: Arc<dyn clock::Clock>) -> anyhow::Result<(App, Startup)> {
    backup::check_no_restore_pending(&config)?;
    build_unchecked(config, clock).await
}

/// [`build`] without the restore check: for the restore itself.
pub(crate) async fn build_unchecked(
    config: Config,
    clock: Arc<dyn clock::Clock>,
) -> anyhow::Result<(App, Startup)> {
    let mut startup = Startup::default();
    let url = config.database_url();
    if !config.data_dir.exists() {
        create_private_dir(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        startup.created_data_dir = true;
    }
    let key_file = config.key_file();
    let (keys, created) = crypto::KeyRing::load_or_create(&key_file)?;
    startup.created_key_file = created;
    startup.database = config::redact_url(&url);
    let audit_key = keys.audit_key()?;
    let store = store::connect(
        &url,
        config.database.max_connections,
        config.database.sqlite_synchronous == config::SqliteSynchronous::Full,
        audit_key.clone(),
    )
    .await
    .with_context(|| format!("cannot open database {}", config::redact_url(&url)))?;
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    key_audit_chain(store.as_ref(), clock.now()).await?;
    let mailer = mail::mailer_from_config(&config).context("mail configuration")?;
    let sms = sms::sms_from_config(&config).context("SMS configuration")?;
    let service = Service::new(store, clock, keys, audit_key, Arc::new(config), mailer, sms);
    service
        .refresh_active_key()
        .await
        .context("cannot read which server key is active")?;
    Ok((
        App {
            service: Arc::new(service),
        },
        startup,
    ))
}

/// Keys an audit log written before the chain was keyed, when migration 0011 asks for it (once
/// per database; see docs/security.md, "Audit log integrity"), and says so in the log.
async fn key_audit_chain(store: &dyn store::Store, now: clock::UnixTime) -> anyhow::Result<()> {
    let Some(keying) = store
        .key_audit_chain(now)
        .await
        .context("cannot key the audit log's hash chain")?
    else {
        return Ok(());
    };
    match &keying.problem {
        None if keying.entries == 0 => tracing::info!("audit chain keyed (the log was empty)"),
        None => tracing::warn!(
            entries = keying.entries,
            "audit log keyed: every entry written before fitted the unkeyed chain and was \
             rehashed with the key (entry audit.key records it)"
        ),
        Some(problem) => tracing::error!(
            entries = keying.entries,
            problem = %problem,
            "audit log keyed, but the entries written before did not fit the unkeyed chain: \
             they were rehashed as found (entry audit.key records it)"
        ),
    }
    Ok(())
}

/// Creates a directory readable only by its owner: it holds the database and the key file.
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}
