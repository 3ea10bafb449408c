//! The RFC 5080 §2.2.2 reply cache: requests by source, Identifier and code, with the
//! fingerprint of their exact bytes.
//!
//! - a duplicate of a request still being decided (or waiting out its reject delay) is ignored;
//! - a duplicate of an answered one gets the cached reply again, byte for byte, and never
//!   reaches validation (it would consume the code again: a false Reject);
//! - the same Identifier with other bytes is a new request and replaces the entry.
//!
//! Bounded: at most `cap` entries; the oldest go first. Only packets whose authenticity was
//! checked come here, so a forger cannot flush it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::time::{Duration, Instant};

use crate::store::RequestPrint;

/// Longest an entry lives, however often it is retransmitted.
const MAX_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct CacheKey {
    pub source: SocketAddr,
    pub identifier: u8,
    pub code: u8,
}

#[derive(Debug)]
enum Slot {
    InFlight,
    Done(Arc<[u8]>),
}

#[derive(Debug)]
struct Entry {
    print: RequestPrint,
    slot: Slot,
    expires: Instant,
    ttl: Duration,
}

/// What to do with a request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Seen {
    /// New (or replacing a conflicting entry): decide it.
    New,
    /// A duplicate being decided: ignore it.
    InFlight,
    /// A duplicate of an answered request: send this again.
    Answered(Arc<[u8]>),
}

#[derive(Debug)]
pub(super) struct ReplyCache {
    map: HashMap<CacheKey, Entry>,
    /// Keys in insertion order, for expiry and eviction (checked against the map lazily).
    order: VecDeque<(CacheKey, Instant)>,
    ttl: Duration,
    cap: usize,
}

impl ReplyCache {
    pub fn new(ttl: Duration, cap: usize) -> ReplyCache {
        ReplyCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            ttl: ttl.min(MAX_TTL),
            cap: cap.max(1),
        }
    }

    /// Looks `key` up; a new request is entered as in flight.
    pub fn see(&mut self, key: CacheKey, print: RequestPrint, now: Instant) -> Seen {
        self.sweep(now);
        if let Some(e) = self.map.get_mut(&key)
            && e.print == print
            && e.expires > now
        {
            return match &e.slot {
                Slot::InFlight => Seen::InFlight,
                Slot::Done(reply) => {
                    // FreeRADIUS doubles the remaining time per duplicate: a client still
                    // retransmitting will get the reply for a while longer.
                    e.ttl = (e.ttl * 2).min(MAX_TTL);
                    e.expires = now + e.ttl;
                    let reply = reply.clone();
                    self.order.push_back((key, e.expires));
                    Seen::Answered(reply)
                }
            };
        }
        while self.map.len() >= self.cap {
            match self.order.pop_front() {
                Some((old, _)) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        // Until answered, an entry lives as long as a request may take (and a client waits).
        let expires = now + MAX_TTL;
        self.map.insert(
            key,
            Entry {
                print,
                slot: Slot::InFlight,
                expires,
                ttl: self.ttl,
            },
        );
        self.order.push_back((key, expires));
        Seen::New
    }

    /// Stores the reply sent for the request `print` (if its entry is still that request's).
    pub fn answered(&mut self, key: CacheKey, print: RequestPrint, reply: Arc<[u8]>, now: Instant) {
        if let Some(e) = self.map.get_mut(&key)
            && e.print == print
        {
            e.slot = Slot::Done(reply);
            e.expires = now + e.ttl;
            self.order.push_back((key, e.expires));
        }
    }

    /// Forgets a request that got no answer (an internal error): a retransmit is decided anew.
    pub fn abandon(&mut self, key: CacheKey, print: RequestPrint) {
        if self.map.get(&key).is_some_and(|e| e.print == print) {
            self.map.remove(&key);
        }
    }

    fn sweep(&mut self, now: Instant) {
        while let Some((key, at)) = self.order.front().copied() {
            if at > now {
                break;
            }
            self.order.pop_front();
            if self.map.get(&key).is_some_and(|e| e.expires <= now) {
                self.map.remove(&key);
            }
        }
        // Stale order entries of keys refreshed since are dropped as they come to the front;
        // the queue stays within a small multiple of the map.
        if self.order.len() > self.cap.saturating_mul(4) {
            let map = &self.map;
            self.order
                .retain(|(k, at)| map.get(k).is_some_and(|e| e.expires == *at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u8) -> CacheKey {
        CacheKey {
            source: "127.0.0.1:4000".parse().unwrap(),
            identifier: id,
            code: 1,
        }
    }

    #[test]
    fn duplicates_are_ignored_in_flight_and_answered_after() {
        let now = Instant::now();
        let mut c = ReplyCache::new(Duration::from_secs(5), 10);
        let p = RequestPrint([1; 32]);
        assert_eq!(c.see(key(1), p, now), Seen::New);
        assert_eq!(c.see(key(1), p, now), Seen::InFlight);
        let reply: Arc<[u8]> = Arc::from(&b"reply"[..]);
        c.answered(key(1), p, reply.clone(), now);
        assert_eq!(c.see(key(1), p, now), Seen::Answered(reply.clone()));
        // The same id with other bytes is a new request.
        assert_eq!(c.see(key(1), RequestPrint([2; 32]), now), Seen::New);
        assert_eq!(c.see(key(1), p, now), Seen::New);
    }

    #[test]
    fn entries_expire_and_the_cache_stays_bounded() {
        let now = Instant::now();
        let mut c = ReplyCache::new(Duration::from_secs(5), 3);
        let p = RequestPrint([1; 32]);
        c.see(key(1), p, now);
        c.answered(key(1), p, Arc::from(&b"r"[..]), now);
        assert_eq!(
            c.see(key(1), p, now + Duration::from_secs(6)),
            Seen::New,
            "expired"
        );
        for id in 0..100 {
            c.see(key(id), p, now);
        }
        assert!(c.map.len() <= 3);
        assert!(c.order.len() <= 12 + 1);
    }
}
