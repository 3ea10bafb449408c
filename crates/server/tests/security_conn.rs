//! Security suite, connections (issue 17, item 9): slow or silent clients cannot hold the
//! server's sockets. Raw TCP clients against the real listener with small limits; every wait has
//! a generous upper bound and nothing asserts how fast the server is.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::time::Duration;

use common::{Db, TestServer, databases};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Far above any limit the tests set: reaching it means the server never closed the socket.
const BOUND: Duration = Duration::from_secs(20);

/// A client that sends the start of a request and then nothing.
async fn partial_request(server: &TestServer) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: tessera\r\nX-Slow: ")
        .await
        .unwrap();
    s
}

/// Reads until the server closes the socket (or resets it); `None` if it is still open after
/// [`BOUND`]. Returns what the server sent.
async fn until_closed(mut s: TcpStream) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| got)
}

/// One request on a new connection: a pooled one may be closed by the server's idle timeout
/// just as it is reused, which would fail the request for a reason the test does not look at.
async fn healthz(server: &TestServer) -> u16 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    client
        .get(server.url("/healthz"))
        .timeout(BOUND)
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

async fn spawn(db: Db, tweak: impl FnOnce(&mut tessera_server::Config)) -> TestServer {
    TestServer::spawn_with(db, tweak).await
}

#[tokio::test]
async fn partial_requests_are_closed_after_the_header_timeout_while_others_are_served() {
    for db in databases() {
        let server = spawn(db, |c| {
            c.server.header_timeout_secs = 1;
            c.server.max_connections = 64;
        })
        .await;
        let mut slow = Vec::new();
        for _ in 0..40 {
            slow.push(partial_request(&server).await);
        }
        assert_eq!(healthz(&server).await, 200, "{db:?}: served while 40 hang");
        for s in slow {
            assert!(
                until_closed(s).await.is_some(),
                "{db:?}: a partial request kept its socket past the header timeout"
            );
        }
        assert_eq!(healthz(&server).await, 200, "{db:?}");
    }
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    for db in databases() {
        let server = spawn(db, |c| {
            c.server.header_timeout_secs = 600;
            c.server.idle_timeout_secs = 1;
        })
        .await;
        let silent = TcpStream::connect(server.addr).await.unwrap();
        assert!(
            until_closed(silent).await.is_some(),
            "{db:?}: a silent connection stayed open past the idle timeout"
        );
    }
}

#[tokio::test]
async fn connections_above_the_cap_get_503_and_are_closed_at_once() {
    for db in databases() {
        let server = spawn(db, |c| {
            c.server.header_timeout_secs = 600;
            c.server.max_connections = 8;
        })
        .await;
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(partial_request(&server).await);
        }
        // The listener accepts in order, so these 8 hold every slot before the next one.
        let extra = TcpStream::connect(server.addr).await.unwrap();
        let answer = until_closed(extra)
            .await
            .expect("the extra connection is closed");
        assert!(
            answer.starts_with(b"HTTP/1.1 503 "),
            "{db:?}: {:?}",
            String::from_utf8_lossy(&answer)
        );
        drop(held);
        // The slots come back as the server sees the clients go.
        let mut status = 0;
        for _ in 0..100 {
            status = healthz(&server).await;
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            status, 200,
            "{db:?}: served again once the slow clients left"
        );
    }
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_after_the_request_timeout() {
    for db in databases() {
        let server = spawn(db, |c| {
            c.server.request_timeout_secs = 1;
            c.server.idle_timeout_secs = 600;
        })
        .await;
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(
            b"POST /login HTTP/1.1\r\nHost: tessera\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
              username=a",
        )
        .await
        .unwrap();
        let answer = until_closed(s).await.expect("answered and closed");
        assert!(
            answer.starts_with(b"HTTP/1.1 503 "),
            "{db:?}: {:?}",
            String::from_utf8_lossy(&answer)
        );
    }
}
