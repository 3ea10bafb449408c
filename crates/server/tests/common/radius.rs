//! RADIUS in the end-to-end tests: a server with one RADIUS client, and a NAS of our own (the
//! codec's Request, Message-Authenticator first) to send exact bytes, duplicates and forgeries.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use std::net::SocketAddr;
use std::time::Duration;

use tessera_radius::{Packet, Request, attr, code};
use tessera_server::model::{AppMode, RadiusMode};
use tessera_server::radius::RadiusServer;
use tessera_server::service::Actor;
use tessera_server::service::radius::AddRadiusClient;
use tokio::net::UdpSocket;
use zeroize::Zeroizing;

use super::Db;
use super::validate::Fixture;

/// The shared secret of the test client "nas".
pub const SECRET: &str = "Vq3xN8pL2sT7wK9dR4mB6hJ1-test-secret";

/// A server with users and tokens (the validate fixture) and RADIUS on 127.0.0.1.
pub struct RadiusFixture {
    pub f: Fixture,
    pub server: RadiusServer,
}

impl RadiusFixture {
    /// RADIUS client "nas" on 127.0.0.1/32 in `mode`.
    pub async fn new(db: Db, mode: RadiusMode) -> RadiusFixture {
        Self::with(db, |_| {}, |c| c.mode = mode).await
    }

    pub async fn with(
        db: Db,
        config: impl FnOnce(&mut tessera_server::Config),
        client: impl FnOnce(&mut AddRadiusClient),
    ) -> RadiusFixture {
        let f = Fixture::with(db, AppMode::PasswordAndOtp, |c| {
            c.radius.listen = "127.0.0.1:0".into();
            c.radius.accounting_listen = "127.0.0.1:0".into();
            c.radius.reject_jitter_ms = 100;
            config(c);
        })
        .await;
        let mut add = AddRadiusClient {
            name: "nas".into(),
            address: "127.0.0.1/32".into(),
            mode: RadiusMode::PasswordCode,
            require_message_authenticator: true,
            limit_proxy_state: false,
            passthrough: false,
            secret: Some(Zeroizing::new(SECRET.into())),
        };
        client(&mut add);
        f.s.app
            .service
            .add_radius_client(&Actor::operator(), add)
            .await
            .unwrap();
        let server = tessera_server::radius::start(f.s.app.service.clone())
            .await
            .unwrap()
            .unwrap();
        RadiusFixture { f, server }
    }

    /// Adds another client (the running server sees it at its next reload; start a new server
    /// with [`RadiusFixture::restart`] to use it at once).
    pub async fn add_client(&self, add: AddRadiusClient) {
        self.f
            .s
            .app
            .service
            .add_radius_client(&Actor::operator(), add)
            .await
            .unwrap();
    }

    /// A fresh RADIUS server on the same service: an empty reply cache, as on another node.
    pub async fn restart(&mut self) {
        self.server = tessera_server::radius::start(self.f.s.app.service.clone())
            .await
            .unwrap()
            .unwrap();
    }

    pub async fn nas(&self) -> Nas {
        Nas::new("127.0.0.1", self.server.auth_addr, SECRET).await
    }

    pub fn port(&self) -> u16 {
        self.server.auth_addr.port()
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code: u8,
    pub raw: Vec<u8>,
}

impl Answer {
    pub fn state(&self) -> Option<Vec<u8>> {
        Packet::parse(&self.raw)
            .unwrap()
            .attr(attr::STATE)
            .map(<[u8]>::to_vec)
    }

    pub fn all(&self, typ: u8) -> Vec<Vec<u8>> {
        Packet::parse(&self.raw)
            .unwrap()
            .all(typ)
            .map(<[u8]>::to_vec)
            .collect()
    }
}

/// A NAS of our own on `ip`.
pub struct Nas {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    pub secret: Vec<u8>,
    next_id: std::sync::atomic::AtomicU8,
}

impl Nas {
    pub async fn new(ip: &str, server: SocketAddr, secret: &str) -> Nas {
        Nas {
            sock: UdpSocket::bind(format!("{ip}:0")).await.unwrap(),
            server,
            secret: secret.as_bytes().to_vec(),
            next_id: std::sync::atomic::AtomicU8::new(1),
        }
    }

    /// An Access-Request: User-Name, User-Password, `extra`, signed with Message-Authenticator
    /// first when `ma`. Returns the bytes and the Request Authenticator.
    pub fn request(
        &self,
        user: &str,
        password: &str,
        extra: &[(u8, &[u8])],
        ma: bool,
    ) -> (Vec<u8>, [u8; 16]) {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut auth = [0u8; 16];
        auth.copy_from_slice(&tessera_server::crypto::random_bytes(16).unwrap());
        let mut r = Request::new(code::ACCESS_REQUEST, id, auth);
        r.push(attr::USER_NAME, user.as_bytes());
        r.push_password(password.as_bytes(), &self.secret);
        r.push(attr::NAS_IDENTIFIER, b"test-nas");
        for (t, v) in extra {
            r.push(*t, v);
        }
        (r.encode(&self.secret, ma).unwrap(), auth)
    }

    pub async fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).await.unwrap();
    }

    /// The next datagram within `wait`, checked: our secret, Message-Authenticator first.
    pub async fn recv(&self, auth: &[u8; 16], wait: Duration) -> Option<Answer> {
        let mut buf = vec![0u8; 4096];
        let (n, _) = tokio::time::timeout(wait, self.sock.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        let raw = buf[..n].to_vec();
        let p = Packet::parse(&raw).expect("a reply parses");
        p.verify_reply(&self.secret, auth, true)
            .expect("reply signed, Message-Authenticator first");
        assert_eq!(raw[20], attr::MESSAGE_AUTHENTICATOR);
        assert_eq!(raw[21], 18);
        Some(Answer { code: p.code, raw })
    }

    /// Sends a request and waits for its answer (rejects come after the reject delay).
    pub async fn ask(&self, user: &str, password: &str, extra: &[(u8, &[u8])]) -> Option<Answer> {
        let (bytes, auth) = self.request(user, password, extra, true);
        self.send(&bytes).await;
        self.recv(&auth, Duration::from_secs(4)).await
    }

    /// No answer within 1.5 s (the reject delay is 1 s + up to 0.1 s).
    pub async fn silent(&self, bytes: &[u8], auth: &[u8; 16]) -> bool {
        self.send(bytes).await;
        self.recv(auth, Duration::from_millis(1500)).await.is_none()
    }
}
