//! What the RADIUS server counts and why it dropped packets: counters by reason, and the most
//! recent drops with their source and a hint, written to `radius-status.json` in the data
//! directory for `tessera radius doctor` (another process) to read. No secrets, no passwords,
//! no user names: sources, client names and reason codes only.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Drops kept for `doctor`.
const RECENT: usize = 100;

/// The file `doctor` reads.
pub fn status_file(data_dir: &Path) -> PathBuf {
    data_dir.join("radius-status.json")
}

/// Counted events besides the codec's refusals.
pub const EVENTS: [&str; 11] = [
    "unknown_client",
    "overloaded",
    "database_unreachable",
    "accepts",
    "rejects",
    "challenges",
    "duplicates_resent",
    "duplicates_ignored",
    "status_server",
    "accounting",
    "with_message_authenticator",
];

/// A hint for people, by reason.
pub fn hint(reason: &str) -> &'static str {
    match reason {
        "unknown_client" => {
            "no client covers this address: tessera radius client add NAME --address IP/32"
        }
        "bad_message_authenticator" | "bad_request_authenticator" => {
            "wrong secret? the NAS's shared secret differs from the client's in Tessera"
        }
        "missing_message_authenticator" => {
            "the client sends no Message-Authenticator: turn it on at the NAS (or, if it \
             cannot, --require-message-authenticator no)"
        }
        "proxy_state_limited" => {
            "Proxy-State without Message-Authenticator (BlastRADIUS): turn Message-Authenticator \
             on at the proxy"
        }
        "overloaded" => "more requests at once than radius.max_in_flight",
        "database_unreachable" => "Status-Server unanswered: the database does not answer",
        "unsupported_code" => "a packet type this port does not answer (accounting on 1812?)",
        _ => "a malformed packet: check the NAS's RADIUS implementation",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DropRecord {
    pub at: i64,
    pub source: String,
    pub client: String,
    pub reason: String,
}

/// The file's contents.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    pub written_at: i64,
    pub listen: String,
    pub counters: Vec<(String, u64)>,
    pub recent: Vec<DropRecord>,
}

#[derive(Debug)]
pub(super) struct Status {
    names: Vec<&'static str>,
    counts: Vec<AtomicU64>,
    recent: Mutex<VecDeque<DropRecord>>,
    changed: AtomicU64,
    /// The second of the last kept drop, and how many were kept in it: a flood is counted in
    /// full but kept for `doctor` only a few times a second (no lock, no allocation per packet).
    kept_second: AtomicI64,
    kept_in_second: AtomicU64,
}

/// Drops kept for `doctor` per second at most.
const KEPT_PER_SECOND: u64 = 5;

impl Status {
    pub fn new() -> Status {
        let names: Vec<&'static str> = tessera_radius::Refusal::ALL
            .iter()
            .map(|r| r.code())
            .chain(EVENTS)
            .collect();
        Status {
            counts: names.iter().map(|_| AtomicU64::new(0)).collect(),
            names,
            recent: Mutex::new(VecDeque::with_capacity(RECENT)),
            changed: AtomicU64::new(0),
            kept_second: AtomicI64::new(0),
            kept_in_second: AtomicU64::new(0),
        }
    }

    pub fn count(&self, name: &str) {
        if let Some(i) = self.names.iter().position(|n| *n == name) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
            self.changed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn get(&self, name: &str) -> u64 {
        self.names
            .iter()
            .position(|n| *n == name)
            .map_or(0, |i| self.counts[i].load(Ordering::Relaxed))
    }

    /// Counts a drop and keeps it among the recent ones.
    pub fn dropped(&self, at: i64, source: IpAddr, client: &str, reason: &str) {
        self.count(reason);
        if self.kept_second.swap(at, Ordering::Relaxed) != at {
            self.kept_in_second.store(0, Ordering::Relaxed);
        }
        if self.kept_in_second.fetch_add(1, Ordering::Relaxed) >= KEPT_PER_SECOND {
            return;
        }
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(DropRecord {
            at,
            source: source.to_string(),
            client: client.to_owned(),
            reason: reason.to_owned(),
        });
    }

    /// A change counter: the writer skips writing when nothing happened.
    pub fn generation(&self) -> u64 {
        self.changed.load(Ordering::Relaxed)
    }

    pub fn report(&self, now: i64, listen: &str) -> StatusReport {
        StatusReport {
            written_at: now,
            listen: listen.to_owned(),
            counters: self
                .names
                .iter()
                .zip(&self.counts)
                .map(|(n, c)| ((*n).to_owned(), c.load(Ordering::Relaxed)))
                .collect(),
            recent: self
                .recent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect(),
        }
    }
}
