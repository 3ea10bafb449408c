//! The HTTP listener: accepts TCP connections and serves each with hyper (HTTP/1.1), with the
//! limits that keep slow or silent clients from holding the server's file descriptors.
//!
//! `axum::serve` sets no timeouts, so a client that sends half a request line and then nothing
//! keeps its socket forever; about a thousand of them exhaust the default descriptor limit and
//! every new client fails. Here:
//!
//! - **header timeout**: a request's line and headers must arrive within
//!   `server.header_timeout_secs` of the connection's start or of the end of the previous
//!   response (hyper's own timer; it also ends kept-alive connections that send nothing more);
//! - **idle timeout**: a connection on which no byte moved either way for
//!   `server.idle_timeout_secs` is closed (a client that stopped reading its response);
//! - **request timeout**: the router's `TimeoutLayer` answers 503 when a request, including
//!   reading its body, takes longer than `server.request_timeout_secs`;
//! - **connection cap**: at most `max_connections` are served at once; one more is answered with
//!   a fixed 503 and closed at once, logged as one WARN line per 10 s instead of one per refusal.
//!
//! No policy here and no clock of the service: these are transport limits in Tokio's time.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use crate::config::ServerConfig;

/// Descriptors kept free below the open-file limit for everything that is not an HTTP
/// connection: the listener, logs, the mail outbox, SMTP and SMS connections, and per database
/// connection up to three files (SQLite: database, WAL, shared memory).
const RESERVED_DESCRIPTORS: u64 = 64;

/// How often a WARN about refused connections or failed accepts is written at most.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The answer to a connection above the cap: written without waiting, then the socket closes.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
connection: close\r\nretry-after: 1\r\ncontent-length: 25\r\n\r\ntoo many open connections";

/// The transport limits of the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Limits {
    /// The limits of `config`, as configured.
    pub fn from_config(config: &ServerConfig) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(config.header_timeout_secs),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
            max_connections: config.max_connections.max(1),
        }
    }

    /// These limits with the connection cap lowered, if needed, so that connections plus
    /// `database_connections` and a reserve stay below `open_files` descriptors.
    pub fn within_open_files(mut self, open_files: u64, database_connections: u32) -> Limits {
        let reserved = RESERVED_DESCRIPTORS + 3 * u64::from(database_connections);
        let room = usize::try_from(open_files.saturating_sub(reserved)).unwrap_or(usize::MAX);
        self.max_connections = self.max_connections.min(room).max(1);
        self
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open connections finish
/// their current request (for at most `grace`) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    let mut refused = WarnEvery::default();
    let mut failed_accepts = WarnEvery::default();
    let mut tick = tokio::time::interval(WARN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // EMFILE/ENFILE and the like: the pending connection stays in the backlog;
                    // pause instead of spinning on the same error.
                    if failed_accepts.first() {
                        tracing::warn!(error = %e, "cannot accept connections");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = tick.tick() => {
                if let Some(n) = refused.window_end() {
                    tracing::warn!(
                        refused = n,
                        max_connections = limits.max_connections,
                        "connection limit still reached: refused {n} more connections in the last 10 s",
                    );
                }
                if let Some(n) = failed_accepts.window_end() {
                    tracing::warn!(failed = n, "accepting connections still fails");
                }
                continue;
            }
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if refused.first() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    peer = %peer.ip(),
                    "connection limit reached: refusing new connections with 503 \
                     (server.max_connections)",
                );
            }
            // Without waiting: a peer that does not read must not hold this loop.
            let _ = stream.try_write(BUSY_RESPONSE);
            continue;
        };
        let router = router.clone();
        let closing = closing_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, router, limits, closing).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period: closing them");
    }
}

/// One connection: HTTP/1.1 with keep-alive, the header timeout, the idle watchdog, and a
/// graceful end when the server shuts down.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    mut closing: watch::Receiver<bool>,
) {
    let moved = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Counted {
        inner: stream,
        moved: moved.clone(),
    });
    // Handlers read the peer address through `ConnectInfo`, as with axum::serve.
    let service = router.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.map(Body::new)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut conn = pin!(builder.serve_connection(io, TowerToHyperService::new(service)));
    let mut watchdog = tokio::time::interval(limits.idle_timeout);
    watchdog.tick().await;
    let mut seen = 0;
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    // Header timeouts, resets and malformed requests: the client's business.
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = closing.changed(), if !shutting_down => {
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = watchdog.tick() => {
                // A whole period without a byte in or out: idle (between one and two periods).
                let now = moved.load(Ordering::Relaxed);
                if now == seen {
                    tracing::debug!("idle timeout: closing connection");
                    return;
                }
                seen = now;
            }
        }
    }
}

/// A socket that counts the reads and writes that moved bytes, for the idle watchdog.
struct Counted {
    inner: TcpStream,
    moved: Arc<AtomicU64>,
}

impl Counted {
    fn note(&self, progressed: bool) {
        if progressed {
            self.moved.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let progressed = matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before;
        self.note(progressed);
        poll
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(matches!(poll, Poll::Ready(Ok(n)) if n > 0));
        poll
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(matches!(poll, Poll::Ready(Ok(n)) if n > 0));
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Errors of one pending connection (the peer gave up), not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// One WARN per window: the first event of a quiet window is logged at once, the rest of the
/// window only as a count at its end.
#[derive(Debug, Default)]
struct WarnEvery {
    logged: bool,
    since: u64,
}

impl WarnEvery {
    /// Records an event; true when it is to be logged now.
    fn first(&mut self) -> bool {
        if self.logged {
            self.since += 1;
            false
        } else {
            self.logged = true;
            true
        }
    }

    /// Ends a window: the events not yet logged, if any.
    fn window_end(&mut self) -> Option<u64> {
        let n = std::mem::take(&mut self.since);
        if n == 0 {
            // A window without further events: the next one is logged at once again.
            self.logged = false;
            None
        } else {
            Some(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize) -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: max,
        }
    }

    #[test]
    fn cap_stays_below_the_open_file_limit() {
        // 1,024 descriptors (systemd's default) with 8 database connections: 936 for HTTP.
        assert_eq!(limits(4096).within_open_files(1024, 8).max_connections, 936);
        assert_eq!(limits(100).within_open_files(1024, 8).max_connections, 100);
        assert_eq!(limits(100).within_open_files(10, 8).max_connections, 1);
        assert_eq!(
            limits(4096).within_open_files(u64::MAX, 8).max_connections,
            4096
        );
    }

    #[test]
    fn warnings_are_one_per_window_with_a_count() {
        let mut w = WarnEvery::default();
        assert!(w.first());
        assert!(!w.first());
        assert!(!w.first());
        assert_eq!(w.window_end(), Some(2));
        assert!(!w.first(), "still the same episode: counted, not logged");
        assert_eq!(w.window_end(), Some(1));
        assert_eq!(w.window_end(), None);
        assert!(
            w.first(),
            "after a quiet window the next event is logged at once"
        );
    }
}
