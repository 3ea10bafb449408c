//! The RADIUS server of `tessera serve` (on when `[radius] listen` is set): the UDP loops
//! (`server.rs`), one request → one service call → one reply (`handler.rs`), the RFC 5080 reply
//! cache (`cache.rs`) and what `tessera radius doctor` reads (`status.rs`). The codec is the
//! pure crate `tessera-radius`; policy stays in `service::radius` and validation.

mod cache;
pub(crate) mod handler;
mod server;
pub mod status;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

use crate::config::RadiusConfig;
use crate::service::Service;
use crate::service::radius::LiveClient;

/// A client of the table, shared with the tasks deciding its requests.
#[derive(Debug, Clone)]
pub(crate) struct LiveRef {
    pub live: Arc<LiveClient>,
}

impl LiveRef {
    /// The secret that verified the request: the current one, or the next during a rotation
    /// (the reply is signed with the one that matched).
    pub fn secret(&self, next: bool) -> &[u8] {
        match (&self.live.next_secret, next) {
            (Some(n), true) => n,
            _ => &self.live.secret,
        }
    }
}

/// The clients, most specific range first: the first that contains a source is its client.
#[derive(Debug, Default)]
pub(crate) struct ClientTable {
    clients: Vec<LiveRef>,
}

impl ClientTable {
    pub fn new(mut clients: Vec<LiveClient>) -> ClientTable {
        // Longest prefix wins (FreeRADIUS client_find, authentik): sort by prefix, longest first.
        clients.sort_by_key(|c| std::cmp::Reverse(c.client.address.prefix));
        ClientTable {
            clients: clients
                .into_iter()
                .map(|c| LiveRef { live: Arc::new(c) })
                .collect(),
        }
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<&LiveRef> {
        self.clients
            .iter()
            .find(|c| c.live.client.address.contains(ip))
    }
}

/// A running RADIUS server; dropping it stops it.
#[derive(Debug)]
pub struct RadiusServer {
    pub auth_addr: SocketAddr,
    pub accounting_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for RadiusServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the server on the configured addresses (`None` when `radius.listen` is empty).
pub async fn start(service: Arc<Service>) -> anyhow::Result<Option<RadiusServer>> {
    let config: RadiusConfig = service.config().radius.clone();
    if config.listen.is_empty() {
        return Ok(None);
    }
    let table = ClientTable::new(service.radius_client_table().await?);
    let auth = Arc::new(
        UdpSocket::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen for RADIUS on {}", config.listen))?,
    );
    let acct = match config.accounting_listen.as_str() {
        "" => None,
        a => Some(Arc::new(UdpSocket::bind(a).await.with_context(|| {
            format!("cannot listen for RADIUS accounting on {a}")
        })?)),
    };
    let auth_addr = auth.local_addr()?;
    let accounting_addr = acct.as_ref().map(|s| s.local_addr()).transpose()?;
    let reload = std::time::Duration::from_secs(config.client_reload_secs.max(1));
    let data_dir = service.config().data_dir.clone();
    let (shared, rejects) = server::Shared::new(service, config, table);
    let mut tasks = Vec::new();
    // Two receivers on the auth socket: the checks before a request is spawned use a core each.
    for _ in 0..2 {
        tasks.push(tokio::spawn(server::receive(
            shared.clone(),
            auth.clone(),
            server::Port::Auth,
        )));
    }
    if let Some(acct) = &acct {
        tasks.push(tokio::spawn(server::receive(
            shared.clone(),
            acct.clone(),
            server::Port::Accounting,
        )));
    }
    tasks.push(tokio::spawn(server::send_rejects(
        shared.clone(),
        auth.clone(),
        rejects,
    )));
    tasks.push(tokio::spawn(reload_clients(shared.clone(), reload)));
    tasks.push(tokio::spawn(write_status(
        shared.clone(),
        data_dir,
        auth_addr.to_string(),
    )));
    tracing::info!(address = %auth_addr, accounting = ?accounting_addr, "RADIUS listening");
    Ok(Some(RadiusServer {
        auth_addr,
        accounting_addr,
        tasks,
    }))
}

/// Re-reads the clients now and then, so that `tessera radius client add` (another process,
/// or another node) takes effect without a restart.
async fn reload_clients(shared: Arc<server::Shared>, every: std::time::Duration) {
    loop {
        tokio::time::sleep(every).await;
        match shared.service.radius_client_table().await {
            Ok(clients) => {
                let table = Arc::new(ClientTable::new(clients));
                *shared.table.write().unwrap_or_else(|e| e.into_inner()) = table;
            }
            Err(e) => tracing::warn!(error = %e, "RADIUS clients not reloaded"),
        }
    }
}

/// Writes the counters and recent drops for `doctor` when they changed (every 2 s at most).
async fn write_status(shared: Arc<server::Shared>, data_dir: std::path::PathBuf, listen: String) {
    let path = status::status_file(&data_dir);
    let tmp = path.with_extension("json.tmp");
    let mut written = u64::MAX;
    loop {
        let generation = shared.status.generation();
        if generation != written {
            let report = shared.status.report(shared.service.clock.now(), &listen);
            if let Ok(json) = serde_json::to_vec_pretty(&report)
                && tokio::fs::write(&tmp, json).await.is_ok()
                && tokio::fs::rename(&tmp, &path).await.is_ok()
            {
                written = generation;
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}
