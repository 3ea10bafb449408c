//! The UDP loops. Every datagram is checked on the receiving task, cheapest check first, before
//! anything is allocated for it: known client (longest prefix), structure (`rad_packet_ok`),
//! Message-Authenticator with the client's secret (current, then next during a rotation), the
//! Proxy-State limit, then the reply cache. Only then is a task spawned, under a permit of
//! `radius.max_in_flight`, so hostile traffic cannot grow memory. Rejects wait on one timer task
//! (a heap of due times), not in the tasks that decided them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};

use tessera_radius::{MAX_PACKET, Packet, Refusal, Reply, attr, code};
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Duration, Instant};

use super::cache::{CacheKey, ReplyCache, Seen};
use super::handler::{self, Outcome};
use super::status::Status;
use super::{ClientTable, LiveRef};
use crate::config::RadiusConfig;
use crate::service::Service;
use crate::store::RequestPrint;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Port {
    Auth,
    Accounting,
}

/// A reject waiting out its delay.
pub(super) struct Delayed {
    bytes: Vec<u8>,
    to: SocketAddr,
    key: CacheKey,
    print: RequestPrint,
    _permit: OwnedSemaphorePermit,
}

pub(super) struct Shared {
    pub service: Arc<Service>,
    pub config: RadiusConfig,
    pub table: RwLock<Arc<ClientTable>>,
    pub cache: Mutex<ReplyCache>,
    pub status: Status,
    permits: Arc<Semaphore>,
    delayed: mpsc::Sender<(Instant, Delayed)>,
    last_unknown_log: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(
        service: Arc<Service>,
        config: RadiusConfig,
        table: ClientTable,
    ) -> (Arc<Shared>, mpsc::Receiver<(Instant, Delayed)>) {
        let (tx, rx) = mpsc::channel(config.max_in_flight.max(1));
        let shared = Shared {
            service,
            cache: Mutex::new(ReplyCache::new(
                Duration::from_secs(config.reply_cache_secs),
                config.reply_cache_entries,
            )),
            permits: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            config,
            table: RwLock::new(Arc::new(table)),
            status: Status::new(),
            delayed: tx,
            last_unknown_log: Mutex::new(None),
        };
        (Arc::new(shared), rx)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, ReplyCache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn drop_packet(&self, source: SocketAddr, client: &str, reason: &str) {
        let now = self.service.clock.now();
        self.status.dropped(now, source.ip(), client, reason);
        if reason == "unknown_client" {
            // At most once a second: a flood from unknown sources must not flood the log.
            let mut last = self
                .last_unknown_log
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let t = Instant::now();
            if last.is_none_or(|l| t.duration_since(l) >= Duration::from_secs(1)) {
                *last = Some(t);
                tracing::warn!(source = %source, count = self.status.get(reason), "RADIUS packet from an unknown client dropped");
            }
        } else {
            tracing::debug!(source = %source, client, reason, "RADIUS packet dropped");
        }
    }

    /// Everything done on the receiving task for one datagram.
    pub fn datagram(
        self: &Arc<Self>,
        sock: &Arc<UdpSocket>,
        data: &[u8],
        src: SocketAddr,
        port: Port,
    ) {
        let table = self.table.read().unwrap_or_else(|e| e.into_inner()).clone();
        let Some(live) = table.lookup(src.ip()) else {
            return self.drop_packet(src, "", "unknown_client");
        };
        let client = &live.live.client;
        let packet = match Packet::parse(data) {
            Ok(p) => p,
            Err(r) => return self.drop_packet(src, &client.name, r.code()),
        };
        let allowed = match port {
            Port::Auth => matches!(packet.code, code::ACCESS_REQUEST | code::STATUS_SERVER),
            Port::Accounting => packet.code == code::ACCOUNTING_REQUEST,
        };
        if !allowed {
            return self.drop_packet(src, &client.name, Refusal::UnsupportedCode.code());
        }
        // Status-Server always needs Message-Authenticator (checked in parse); Access-Request
        // when the client is set to (the default for new clients: BlastRADIUS).
        let required = packet.code == code::ACCESS_REQUEST && client.require_message_authenticator;
        let use_next = match packet.verify(&live.live.secret, required) {
            Ok(()) => false,
            Err(
                first @ (Refusal::MessageAuthenticatorWrong | Refusal::RequestAuthenticatorWrong),
            ) => match &live.live.next_secret {
                Some(next) if packet.verify(next, required).is_ok() => true,
                _ => return self.drop_packet(src, &client.name, first.code()),
            },
            Err(r) => return self.drop_packet(src, &client.name, r.code()),
        };
        if packet.has_message_authenticator() {
            self.status.count("with_message_authenticator");
        }
        if client.limit_proxy_state
            && !packet.has_message_authenticator()
            && packet.attr(attr::PROXY_STATE).is_some()
        {
            return self.drop_packet(
                src,
                &client.name,
                Refusal::ProxyStateWithoutMessageAuthenticator.code(),
            );
        }
        let secret = live.secret(use_next);
        match packet.code {
            code::ACCOUNTING_REQUEST => {
                self.status.count("accounting");
                // RFC 2866: the Response Authenticator signs it. Message-Authenticator is for
                // Access-* replies; over an Accounting-Response peers compute it differently
                // (FreeRADIUS with a zero vector), so none is sent.
                let out = Reply::to(&packet, code::ACCOUNTING_RESPONSE).encode(secret, false);
                let _ = sock.try_send_to(&out, src);
            }
            code::STATUS_SERVER => {
                // RFC 5997: answered with Access-Accept, never cached, only while the database
                // answers (a proxy's watchdog then marks this node dead).
                let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                    return self.drop_packet(src, &client.name, "overloaded");
                };
                let out = Reply::to(&packet, code::ACCESS_ACCEPT).encode(secret, true);
                let (shared, sock, name) = (self.clone(), sock.clone(), client.name.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    if shared.service.radius_ready().await {
                        shared.status.count("status_server");
                        let _ = sock.send_to(&out, src).await;
                    } else {
                        shared.drop_packet(src, &name, "database_unreachable");
                    }
                });
            }
            _ => self.access_request(sock, live, use_next, &packet, src),
        }
    }

    fn access_request(
        self: &Arc<Self>,
        sock: &Arc<UdpSocket>,
        live: &LiveRef,
        use_next: bool,
        packet: &Packet<'_>,
        src: SocketAddr,
    ) {
        let client = &live.live.client;
        let print = handler::fingerprint(client, src.ip(), packet.bytes());
        let key = CacheKey {
            source: src,
            identifier: packet.identifier,
            code: packet.code,
        };
        let received = Instant::now();
        match self.cache().see(key, print, received) {
            Seen::InFlight => return self.status.count("duplicates_ignored"),
            Seen::Answered(reply) => {
                self.status.count("duplicates_resent");
                let _ = sock.try_send_to(&reply, src);
                return;
            }
            Seen::New => {}
        }
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            self.cache().abandon(key, print);
            return self.drop_packet(src, &client.name, "overloaded");
        };
        let (shared, sock, live) = (self.clone(), sock.clone(), live.clone());
        let bytes = packet.bytes().to_vec();
        tokio::spawn(async move {
            let Ok(packet) = Packet::parse(&bytes) else {
                return;
            };
            let client = &live.live.client;
            let secret = live.secret(use_next);
            let source = src.ip().to_string();
            let decided = handler::access_request(
                &shared.service,
                &shared.config,
                client,
                secret,
                &packet,
                print,
                &source,
            )
            .await;
            // A request whose Proxy-State attributes fill a packet cannot be answered: its
            // reply (which must echo them) would be larger than RADIUS allows.
            let too_long = matches!(&decided, Ok(Outcome::Send(r) | Outcome::Reject(r)) if r.len() > MAX_PACKET);
            if too_long {
                shared.cache().abandon(key, print);
                return shared.drop_packet(src, &client.name, Refusal::TooLong.code());
            }
            match decided {
                Ok(Outcome::Send(reply)) => {
                    shared.status.count(if reply.code() == code::ACCESS_ACCEPT {
                        "accepts"
                    } else {
                        "challenges"
                    });
                    let out: Arc<[u8]> = reply.encode(secret, true).into();
                    // Cached before it is sent: a client that retransmits the moment it has
                    // the answer must find it, not an entry still in flight.
                    shared
                        .cache()
                        .answered(key, print, out.clone(), Instant::now());
                    let _ = sock.send_to(&out, src).await;
                }
                Ok(Outcome::Reject(reply)) => {
                    shared.status.count("rejects");
                    let due = received + shared.reject_delay();
                    let item = Delayed {
                        bytes: reply.encode(secret, true),
                        to: src,
                        key,
                        print,
                        _permit: permit,
                    };
                    // The channel holds as many as there are permits: this never waits long.
                    let _ = shared.delayed.send((due, item)).await;
                }
                Err(e) => {
                    tracing::warn!(client = %client.name, error = %e, "RADIUS request not answered");
                    shared.cache().abandon(key, print);
                }
            }
        });
    }

    /// The reject delay with jitter.
    fn reject_delay(&self) -> Duration {
        let jitter = self.config.reject_jitter_ms;
        let extra = if jitter == 0 {
            0
        } else {
            crate::crypto::random_bytes(8)
                .ok()
                .and_then(|b| <[u8; 8]>::try_from(&b[..]).ok())
                .map_or(0, |b| u64::from_le_bytes(b) % (jitter + 1))
        };
        Duration::from_millis(self.config.reject_delay_ms.saturating_add(extra))
    }
}

/// Receives on `sock` forever.
pub(super) async fn receive(shared: Arc<Shared>, sock: Arc<UdpSocket>, port: Port) {
    // One byte more than the largest packet: a longer datagram is seen as too long.
    let mut buf = vec![0u8; MAX_PACKET + 1];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, src)) => shared.datagram(&sock, &buf[..n], src, port),
            Err(e) => {
                tracing::debug!(error = %e, "RADIUS receive failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Sends each reject when its time has come: one task and a heap for all of them.
pub(super) async fn send_rejects(
    shared: Arc<Shared>,
    sock: Arc<UdpSocket>,
    mut rx: mpsc::Receiver<(Instant, Delayed)>,
) {
    let mut heap: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut waiting: HashMap<u64, Delayed> = HashMap::new();
    let mut seq = 0u64;
    loop {
        let next = heap.peek().map(|Reverse((due, _))| *due);
        tokio::select! {
            item = rx.recv() => {
                let Some((due, d)) = item else { return };
                seq += 1;
                heap.push(Reverse((due, seq)));
                waiting.insert(seq, d);
            }
            () = async {
                match next {
                    Some(due) => tokio::time::sleep_until(due).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = Instant::now();
                while let Some(Reverse((due, n))) = heap.peek().copied() {
                    if due > now {
                        break;
                    }
                    heap.pop();
                    if let Some(d) = waiting.remove(&n) {
                        let bytes: Arc<[u8]> = d.bytes.into();
                        shared.cache().answered(d.key, d.print, bytes.clone(), now);
                        let _ = sock.try_send_to(&bytes, d.to);
                    }
                }
            }
        }
    }
}
