//! Building a reply to a verified request: Access-Accept/-Reject/-Challenge, Accounting-Response.
//!
//! Message-Authenticator is always the FIRST attribute when asked for (the servers' rule since
//! BlastRADIUS, CVE-2024-3596; draft-ietf-radext-deprecating-radius), computed with the
//! request's authenticator in the header (RFC 3579 §3.2); then the Response Authenticator
//! (RFC 2865 §3). Proxy-State is copied unmodified and in order (RFC 2865 §5.33).

use crate::crypto::{hmac_md5, md5};
use crate::{HEADER_LEN, MAX_PACKET, MAX_VALUE, Packet, attr};

/// A reply under construction.
#[derive(Clone)]
pub struct Reply {
    code: u8,
    identifier: u8,
    request_authenticator: [u8; 16],
    attrs: Vec<(u8, Vec<u8>)>,
    proxy_state: Vec<Vec<u8>>,
    size: usize,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // State and Class values may be sealed tokens: types only.
        let types: Vec<u8> = self.attrs.iter().map(|a| a.0).collect();
        f.debug_struct("Reply")
            .field("code", &self.code)
            .field("identifier", &self.identifier)
            .field("attrs", &types)
            .finish_non_exhaustive()
    }
}

impl Reply {
    /// A reply with `code` to `request`, echoing its Proxy-State attributes in order.
    pub fn to(request: &Packet<'_>, code: u8) -> Reply {
        let mut r = Reply::new(code, request.identifier, request.authenticator);
        for ps in request.all(attr::PROXY_STATE) {
            r.size += 2 + ps.len();
            r.proxy_state.push(ps.to_vec());
        }
        r
    }

    /// A reply with `code` for the request with `identifier` and `request_authenticator`.
    pub fn new(code: u8, identifier: u8, request_authenticator: [u8; 16]) -> Reply {
        Reply {
            code,
            identifier,
            request_authenticator,
            attrs: Vec::new(),
            proxy_state: Vec::new(),
            size: HEADER_LEN + 18,
        }
    }

    pub fn code(&self) -> u8 {
        self.code
    }

    /// The encoded length (with Message-Authenticator). Above [`MAX_PACKET`] when the request's
    /// Proxy-State attributes alone fill a packet: such a request cannot be answered.
    pub fn len(&self) -> usize {
        self.size
    }

    /// Never true: a reply has at least a header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Adds an attribute. Refused (`false`) when the value is over 253 octets or the packet
    /// would grow past 4096 octets.
    pub fn push(&mut self, typ: u8, value: &[u8]) -> bool {
        if value.len() > MAX_VALUE || self.size + 2 + value.len() > MAX_PACKET {
            return false;
        }
        self.size += 2 + value.len();
        self.attrs.push((typ, value.to_vec()));
        true
    }

    /// The packet, signed with `secret`. `message_authenticator` is on in every reply Tessera
    /// sends; off only for the historic test vectors of RFC 2865 §7.
    pub fn encode(&self, secret: &[u8], message_authenticator: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size);
        out.extend_from_slice(&[self.code, self.identifier, 0, 0]);
        out.extend_from_slice(&self.request_authenticator);
        if message_authenticator {
            out.extend_from_slice(&[attr::MESSAGE_AUTHENTICATOR, 18]);
            out.extend_from_slice(&[0; 16]);
        }
        let proxy = self.proxy_state.iter().map(|v| (attr::PROXY_STATE, v));
        for (typ, value) in self.attrs.iter().map(|(t, v)| (*t, v)).chain(proxy) {
            out.push(typ);
            out.push((value.len() + 2) as u8);
            out.extend_from_slice(value);
        }
        let len = (out.len() as u16).to_be_bytes();
        out[2..4].copy_from_slice(&len);
        if message_authenticator {
            let mac = hmac_md5(secret, &out);
            out[HEADER_LEN + 2..HEADER_LEN + 18].copy_from_slice(&mac);
        }
        let auth = md5(&[&out, secret]);
        out[4..HEADER_LEN].copy_from_slice(&auth);
        out
    }
}
