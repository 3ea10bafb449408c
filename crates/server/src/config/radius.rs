//! `[radius]`: the RADIUS server in `tessera serve` (off unless `listen` is set) and the reply
//! attributes each client's users get.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RadiusConfig {
    /// Address for Access-Request and Status-Server, e.g. "0.0.0.0:1812". Empty: RADIUS off.
    pub listen: String,
    /// Address for Accounting-Request (RFC 2866), e.g. "0.0.0.0:1813". Empty: none.
    pub accounting_listen: String,
    /// Access-Rejects are sent no earlier than this after the request arrived (the deprecating
    /// draft: 1-10 s), the same for unknown users, wrong passwords and wrong codes.
    pub reject_delay_ms: u64,
    /// Up to this much is added at random to each reject's delay.
    pub reject_jitter_ms: u64,
    /// Seconds an answered request's reply is kept for retransmits (RFC 5080: 5-30); doubled for
    /// each duplicate, up to 30.
    pub reply_cache_secs: u64,
    /// Replies kept at most; the oldest go first.
    pub reply_cache_entries: usize,
    /// Requests being decided or waiting out their reject delay at most; more are dropped (the
    /// client retransmits), so hostile traffic cannot grow memory.
    pub max_in_flight: usize,
    /// Seconds between reloads of the client table (changes by the CLI or the admin pages).
    pub client_reload_secs: u64,
    /// Attributes added to an Access-Accept, by client and role; every matching rule adds its
    /// attributes, in order.
    pub reply: Vec<ReplyRule>,
}

impl Default for RadiusConfig {
    fn default() -> Self {
        RadiusConfig {
            listen: String::new(),
            accounting_listen: String::new(),
            reject_delay_ms: 1000,
            reject_jitter_ms: 500,
            reply_cache_secs: 5,
            reply_cache_entries: 100_000,
            max_in_flight: 4096,
            client_reload_secs: 5,
            reply: Vec::new(),
        }
    }
}

/// One rule of reply attributes. Empty values add nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ReplyRule {
    /// Client names the rule applies to; empty: every client.
    pub clients: Vec<String>,
    /// "admin" or "user"; empty: both.
    pub role: String,
    /// Class (25), one attribute per value in order, e.g. "OU=vpn-admins" for a Cisco ASA.
    pub class: Vec<String>,
    /// Filter-Id (11).
    pub filter_id: String,
    /// Session-Timeout (27) in seconds; 0: none.
    pub session_timeout: u32,
    /// Fortinet-Group-Name (vendor 12356, type 1).
    pub fortinet_group: String,
    /// PaloAlto-User-Group (vendor 25461, type 5).
    pub palo_alto_user_group: String,
    /// Cisco ASA Group-Policy (vendor 3076, type 25).
    pub cisco_group_policy: String,
    /// Cisco-AVPair (vendor 9, type 1), one attribute per value.
    pub cisco_av_pair: Vec<String>,
    /// Aruba-User-Role (vendor 14823, type 1).
    pub aruba_user_role: String,
}

impl RadiusConfig {
    /// Checks what cannot be sent: values over an attribute's 253 octets, unknown roles,
    /// unparsable addresses.
    pub fn check(&self) -> Result<(), String> {
        for a in [&self.listen, &self.accounting_listen] {
            if !a.is_empty() && a.parse::<std::net::SocketAddr>().is_err() {
                return Err(format!("radius: {a:?} is not an address like 0.0.0.0:1812"));
            }
        }
        for (i, r) in self.reply.iter().enumerate() {
            if !matches!(r.role.as_str(), "" | "admin" | "user") {
                return Err(format!(
                    "radius.reply[{i}].role: \"admin\", \"user\" or empty"
                ));
            }
            let plain = r.class.iter().chain(std::iter::once(&r.filter_id));
            if plain.into_iter().any(|v| v.len() > 253) {
                return Err(format!(
                    "radius.reply[{i}]: a value is longer than 253 bytes"
                ));
            }
            let vendor = [
                &r.fortinet_group,
                &r.palo_alto_user_group,
                &r.cisco_group_policy,
                &r.aruba_user_role,
            ];
            if vendor
                .into_iter()
                .chain(&r.cisco_av_pair)
                .any(|v| v.len() > 247)
            {
                return Err(format!(
                    "radius.reply[{i}]: a vendor value is longer than 247 bytes"
                ));
            }
        }
        Ok(())
    }
}
