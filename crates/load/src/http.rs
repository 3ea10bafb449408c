//! One HTTP/1.1 keep-alive connection to the server under test, as raw hyper: no pool, no
//! redirects, no per-request allocation beyond the request itself. Each load worker owns one;
//! `prepare` and `unlock` use a handful for the admin API.
//!
//! Connects only to an address the caller resolved and checked to be loopback.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tessera_load::report::ErrorKind;
use tokio::net::TcpStream;

/// A request body type every request here uses: the bytes, serialised beforehand.
pub type Body = Full<Bytes>;

/// A keep-alive connection that reconnects when the server closed it.
#[derive(Debug)]
pub struct HttpConn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Body>>,
}

impl HttpConn {
    /// A connection to `addr` (opened on first use) sending `host` as the `Host` header.
    pub fn new(addr: SocketAddr, host: HeaderValue) -> HttpConn {
        HttpConn {
            addr,
            host,
            sender: None,
        }
    }

    /// Opens the connection now unless it is open.
    pub async fn connect(&mut self) -> Result<(), ErrorKind> {
        self.ready().await.map(|_| ())
    }

    async fn ready(&mut self) -> Result<&mut SendRequest<Body>, ErrorKind> {
        // A connection the server closed between requests (idle timeout, restart) is replaced
        // without counting an error: no request was lost.
        let usable = match self.sender.as_mut() {
            Some(sender) => !sender.is_closed() && sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|_| ErrorKind::Connect)?;
            // Small request/answer pairs: do not let Nagle's algorithm hold them back.
            stream.set_nodelay(true).map_err(|_| ErrorKind::Connect)?;
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| ErrorKind::Connect)?;
            // The connection's I/O runs as its own task; it ends when the sender is dropped.
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or(ErrorKind::Connect)
    }

    /// Sends `request` and reads the whole answer within `timeout`. After a failure the
    /// connection is dropped and the next request opens a new one.
    pub async fn send(
        &mut self,
        mut request: Request<Body>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), ErrorKind> {
        request.headers_mut().insert(HOST, self.host.clone());
        let sender = self.ready().await?;
        let exchange = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|_| ErrorKind::Send)?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|_| ErrorKind::Body)?
                .to_bytes();
            Ok((status, body))
        };
        let result = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ErrorKind::Timeout),
        };
        if result.is_err() {
            self.sender = None;
        }
        result
    }
}

/// A `POST` of a JSON body to `path` (origin form, e.g. `/api/v1/validate`), with an optional
/// `Authorization` header. `Host` is added by [`HttpConn::send`].
pub fn post_json(path: &Uri, authorization: Option<&HeaderValue>, body: Bytes) -> Request<Body> {
    request(Method::POST, path, authorization, body)
}

/// A request with a JSON body (empty for none).
pub fn request(
    method: Method,
    path: &Uri,
    authorization: Option<&HeaderValue>,
    body: Bytes,
) -> Request<Body> {
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = path.clone();
    let headers = request.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(value) = authorization {
        headers.insert(AUTHORIZATION, value.clone());
    }
    request
}

/// `Bearer <token>` as a header value that is never logged by hyper.
pub fn bearer(token: &str) -> anyhow::Result<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| anyhow::anyhow!("the key or token is not a valid header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Resolves the target's host and keeps a loopback address only: `localhost` could be mapped
/// elsewhere in `/etc/hosts`, and the tool must never send load off this machine.
pub async fn resolve_loopback(target: &tessera_load::target::Target) -> anyhow::Result<SocketAddr> {
    let addrs = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot resolve {}: {e}", target.host))?;
    let mut refused = Vec::new();
    for addr in addrs {
        if tessera_load::target::is_loopback_addr(&addr.ip()) {
            return Ok(addr);
        }
        refused.push(addr.ip().to_string());
    }
    anyhow::bail!(
        "{} resolves to no loopback address ({}): refusing to send load there",
        target.host,
        refused.join(", ")
    )
}

/// The `Host` header for a target.
pub fn host_header(target: &tessera_load::target::Target) -> anyhow::Result<HeaderValue> {
    HeaderValue::from_str(&target.authority)
        .map_err(|_| anyhow::anyhow!("host {} is not a valid header value", target.authority))
}

/// A route below the target's base path as a request URI.
pub fn route(target: &tessera_load::target::Target, path: &str) -> anyhow::Result<Uri> {
    target
        .path(path)
        .parse()
        .map_err(|_| anyhow::anyhow!("bad path {path}"))
}
