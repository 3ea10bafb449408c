//! The server under test: parsing its base URL and refusing anything that is not this machine.
//!
//! A load generator aimed at the wrong host is a denial-of-service tool, so only loopback targets
//! are accepted: `127.0.0.0/8`, `[::1]` and `localhost` (whose resolved addresses the binary checks
//! again with [`is_loopback_addr`] before connecting). Plain HTTP only: the tool measures the
//! server, not TLS.

use std::net::IpAddr;

/// A checked base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host as written, without IPv6 brackets: `127.0.0.1`, `::1` or `localhost`.
    pub host: String,
    /// The port (80 when the URL has none).
    pub port: u16,
    /// `host:port` as it goes into the `Host` header (IPv6 in brackets).
    pub authority: String,
    /// A path prefix without the trailing slash, usually empty (`/tessera` behind a proxy path).
    pub base_path: String,
}

impl Target {
    /// The path of an API route below the base, e.g. `path("/api/v1/validate")`.
    pub fn path(&self, route: &str) -> String {
        format!("{}{route}", self.base_path)
    }

    /// The full URL of a route.
    pub fn url(&self, route: &str) -> String {
        format!("http://{}{}", self.authority, self.path(route))
    }
}

/// Why a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not `http://host[:port][/path]`.
    #[error("not a usable URL ({0}): expected http://127.0.0.1:PORT")]
    Malformed(&'static str),
    /// The host is not this machine.
    #[error("refusing {0}: the load tool only targets loopback (127.0.0.0/8, [::1], localhost)")]
    NotLoopback(String),
}

/// Parses `http://HOST[:PORT][/PATH]` and accepts it only if HOST is a loopback address or
/// `localhost`.
pub fn parse_loopback_url(url: &str) -> Result<Target, TargetError> {
    let rest = url
        .trim()
        .strip_prefix("http://")
        .ok_or(TargetError::Malformed("only http:// is supported"))?;
    if rest.contains(['?', '#', '@']) {
        return Err(TargetError::Malformed(
            "no user info, query or fragment allowed",
        ));
    }
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let (host, port) = split_host_port(authority)?;
    if !is_loopback_host(host) {
        return Err(TargetError::NotLoopback(host.to_owned()));
    }
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(Target {
        host: host.to_owned(),
        port,
        authority,
        base_path: path.trim_end_matches('/').to_owned(),
    })
}

fn split_host_port(authority: &str) -> Result<(&str, u16), TargetError> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or(TargetError::Malformed("unclosed [ in the host"))?;
        match after {
            "" => (host, None),
            _ => (
                host,
                Some(
                    after
                        .strip_prefix(':')
                        .ok_or(TargetError::Malformed("text after ]"))?,
                ),
            ),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(TargetError::Malformed("empty host"));
    }
    let port = match port {
        None => 80,
        Some(port) => port
            .parse()
            .map_err(|_| TargetError::Malformed("bad port"))?,
    };
    Ok((host, port))
}

/// Whether `host` (without brackets) names this machine: `localhost` or a loopback IP literal.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| is_loopback_addr(&ip))
}

/// Whether an address is loopback: `127.0.0.0/8` or `::1`.
pub fn is_loopback_addr(ip: &IpAddr) -> bool {
    ip.is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_are_accepted() {
        let t = parse_loopback_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.authority.as_str()),
            ("127.0.0.1", 8080, "127.0.0.1:8080")
        );
        assert_eq!(
            t.url("/api/v1/validate"),
            "http://127.0.0.1:8080/api/v1/validate"
        );
        let t = parse_loopback_url("http://[::1]:9000/tessera/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.authority.as_str()),
            ("::1", "[::1]:9000")
        );
        assert_eq!(t.path("/api/v1/validate"), "/tessera/api/v1/validate");
        assert_eq!(parse_loopback_url("http://localhost").unwrap().port, 80);
        assert!(parse_loopback_url("http://127.42.0.9:1").is_ok());
        assert!(parse_loopback_url("http://LOCALHOST.:1").is_ok());
    }

    #[test]
    fn other_hosts_are_refused() {
        for url in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "http://example.com:8080/api",
            "http://[::2]:80",
            "http://0.0.0.0:8080",
            "http://128.0.0.1",
            "http://localhost.example.com",
            "http://[::ffff:10.0.0.1]:1",
        ] {
            assert!(
                matches!(parse_loopback_url(url), Err(TargetError::NotLoopback(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn malformed_urls_are_refused() {
        for url in [
            "https://127.0.0.1",
            "127.0.0.1:8080",
            "http://127.0.0.1:port",
            "http://user@127.0.0.1",
            "http://evil.example@127.0.0.1",
            "http://127.0.0.1:80?x=1",
            "http://[::1",
            "http://:80",
        ] {
            assert!(
                matches!(parse_loopback_url(url), Err(TargetError::Malformed(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn resolved_addresses_are_checked() {
        assert!(is_loopback_addr(&"127.0.0.1".parse().unwrap()));
        assert!(is_loopback_addr(&"::1".parse().unwrap()));
        assert!(!is_loopback_addr(&"10.0.0.1".parse().unwrap()));
        assert!(!is_loopback_host("10.0.0.1"));
        assert!(!is_loopback_host("example.com"));
    }
}
