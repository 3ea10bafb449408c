//! RADIUS clients: the NASes, VPN gateways and proxies allowed to ask over RADIUS.

use std::net::IpAddr;

use serde::Serialize;

use crate::clock::UnixTime;

/// How a client's users log in over RADIUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RadiusMode {
    /// User-Password is the password immediately followed by the code.
    #[serde(rename = "password+code")]
    PasswordCode,
    /// User-Password is the code; the client checked the password itself.
    #[serde(rename = "code")]
    Code,
    /// User-Password is the password; an Access-Challenge then asks for the code.
    #[serde(rename = "challenge")]
    Challenge,
}

impl RadiusMode {
    pub const ALL: [RadiusMode; 3] = [
        RadiusMode::PasswordCode,
        RadiusMode::Code,
        RadiusMode::Challenge,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RadiusMode::PasswordCode => "password+code",
            RadiusMode::Code => "code",
            RadiusMode::Challenge => "challenge",
        }
    }
}

impl std::fmt::Display for RadiusMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RadiusMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RadiusMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown RADIUS mode {s:?} (password+code, code, challenge)"))
    }
}

/// An address range in CIDR notation (`10.0.0.0/8`, `192.0.2.7/32`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in the range. IPv4-mapped IPv6 sources count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;
    /// A plain address is a single host (/32 or /128). Host bits must be zero, so that what is
    /// stored is what matches.
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix must be 0-{max}"))?,
            None => max,
        };
        let c = Cidr { addr, prefix };
        let network_only = match addr {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                u32::from(v4) & !mask == 0
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                u128::from(v6) & !mask == 0
            }
        };
        if !network_only {
            return Err(format!("{s:?}: host bits are set (did you mean a /{max}?)"));
        }
        Ok(c)
    }
}

/// A RADIUS client as stored. The secrets stay sealed: see `service::radius`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RadiusClient {
    pub id: i64,
    pub name: String,
    #[serde(serialize_with = "display")]
    pub address: Cidr,
    #[serde(skip)]
    pub sealed_secret: Vec<u8>,
    #[serde(skip)]
    pub sealed_next_secret: Option<Vec<u8>>,
    pub mode: RadiusMode,
    pub require_message_authenticator: bool,
    pub limit_proxy_state: bool,
    pub passthrough: bool,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

fn display<S: serde::Serializer>(c: &Cidr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_ranges_match_their_hosts_only() {
        let net: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.0.9".parse().unwrap()));
        let host: Cidr = "127.0.0.1".parse().unwrap();
        assert_eq!(host.prefix, 32);
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.5".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        for bad in ["10.1.0.1/16", "10.0.0.0/33", "nope", "10.0.0.0/x"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert_eq!(
            "password+code".parse::<RadiusMode>(),
            Ok(RadiusMode::PasswordCode)
        );
    }
}
