//! Building requests, for clients: `tessera radius test`, the load tool and the tests. The
//! caller supplies the Request Authenticator (16 random octets; this crate has no randomness).
//! Message-Authenticator goes first in every Access-Request and Status-Server.

use crate::crypto::{hide_password, hmac_md5, md5};
use crate::{HEADER_LEN, MAX_PACKET, MAX_VALUE, attr, code};

/// A request under construction.
#[derive(Clone)]
pub struct Request {
    code: u8,
    identifier: u8,
    authenticator: [u8; 16],
    attrs: Vec<(u8, Vec<u8>)>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let types: Vec<u8> = self.attrs.iter().map(|a| a.0).collect();
        f.debug_struct("Request")
            .field("code", &self.code)
            .field("identifier", &self.identifier)
            .field("attrs", &types)
            .finish_non_exhaustive()
    }
}

impl Request {
    pub fn new(code: u8, identifier: u8, authenticator: [u8; 16]) -> Request {
        Request {
            code,
            identifier,
            authenticator,
            attrs: Vec::new(),
        }
    }

    pub fn authenticator(&self) -> &[u8; 16] {
        &self.authenticator
    }

    /// Adds an attribute; `false` if the value is over 253 octets.
    pub fn push(&mut self, typ: u8, value: &[u8]) -> bool {
        if value.len() > MAX_VALUE {
            return false;
        }
        self.attrs.push((typ, value.to_vec()));
        true
    }

    /// Adds User-Password, hidden with `secret` (RFC 2865 §5.2); `false` over 128 octets.
    pub fn push_password(&mut self, password: &[u8], secret: &[u8]) -> bool {
        match hide_password(password, secret, &self.authenticator) {
            Some(hidden) => self.push(attr::USER_PASSWORD, &hidden),
            None => false,
        }
    }

    /// The packet, signed with `secret`: Message-Authenticator first when `message_authenticator`;
    /// for Accounting-Request the Request Authenticator is computed (RFC 2866 §3) and the given one
    /// ignored. `None` when it would exceed 4096 octets.
    pub fn encode(&self, secret: &[u8], message_authenticator: bool) -> Option<Vec<u8>> {
        let accounting = self.code == code::ACCOUNTING_REQUEST;
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&[self.code, self.identifier, 0, 0]);
        if accounting {
            out.extend_from_slice(&[0; 16]);
        } else {
            out.extend_from_slice(&self.authenticator);
        }
        if message_authenticator {
            out.extend_from_slice(&[attr::MESSAGE_AUTHENTICATOR, 18]);
            out.extend_from_slice(&[0; 16]);
        }
        for (typ, value) in &self.attrs {
            out.push(*typ);
            out.push((value.len() + 2) as u8);
            out.extend_from_slice(value);
        }
        if out.len() > MAX_PACKET {
            return None;
        }
        let len = (out.len() as u16).to_be_bytes();
        out[2..4].copy_from_slice(&len);
        if message_authenticator {
            let mac = hmac_md5(secret, &out);
            out[HEADER_LEN + 2..HEADER_LEN + 18].copy_from_slice(&mac);
        }
        if accounting {
            let auth = md5(&[&out, secret]);
            out[4..HEADER_LEN].copy_from_slice(&auth);
        }
        Some(out)
    }
}
