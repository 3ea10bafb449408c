//! Parsing a received packet: the structural checks of FreeRADIUS's `rad_packet_ok` (one
//! [`Refusal`] each), then, with the client's secret, the authenticators.
//!
//! Attribute order never matters and unknown attributes are kept but ignored (RFC 2865 §5,
//! draft-ietf-radext-deprecating-radius: "MUST NOT discard a packet for where
//! Message-Authenticator sits").

use crate::crypto::{ct_eq, hmac_md5, md5, unhide_password};
use crate::{HEADER_LEN, MAX_ATTRIBUTES, MAX_PACKET, Refusal, attr, code};

/// One attribute: its type and value (without the two header octets).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Attr<'a> {
    pub typ: u8,
    pub value: &'a [u8],
}

impl std::fmt::Debug for Attr<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be hidden passwords, states or secrets' MACs: only type and length.
        write!(f, "Attr({}, {} octets)", self.typ, self.value.len())
    }
}

/// A packet that passed the structural checks. Borrowed from the received bytes.
#[derive(Clone)]
pub struct Packet<'a> {
    pub code: u8,
    pub identifier: u8,
    pub authenticator: [u8; 16],
    /// Exactly the header's length: padding after it is ignored (RFC 2865 §3).
    bytes: &'a [u8],
    attrs: Vec<Attr<'a>>,
    /// Where the Message-Authenticator's 16 octets start in `bytes`.
    ma_at: Option<usize>,
}

impl std::fmt::Debug for Packet<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("code", &self.code)
            .field("identifier", &self.identifier)
            .field("attrs", &self.attrs)
            .finish_non_exhaustive()
    }
}

impl<'a> Packet<'a> {
    /// Checks the structure of `data` as received from the network.
    pub fn parse(data: &'a [u8]) -> Result<Packet<'a>, Refusal> {
        if data.len() < HEADER_LEN {
            return Err(Refusal::TooShort);
        }
        if data.len() > MAX_PACKET {
            return Err(Refusal::TooLong);
        }
        let code = data[0];
        // RFC 2865 §3: unknown codes are silently discarded (FreeRADIUS: 0 and >= 53).
        if code == 0 || code > code::PROTOCOL_ERROR {
            return Err(Refusal::BadCode);
        }
        let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
        if len < HEADER_LEN {
            return Err(Refusal::LengthBelowHeader);
        }
        if len > MAX_PACKET {
            return Err(Refusal::TooLong);
        }
        if len > data.len() {
            return Err(Refusal::LengthBeyondData);
        }
        let bytes = &data[..len];
        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&bytes[4..HEADER_LEN]);
        let mut attrs = Vec::with_capacity(8);
        let mut ma_at = None;
        let (mut seen_name, mut seen_password, mut seen_state) = (false, false, false);
        let mut at = HEADER_LEN;
        while at < len {
            if len - at < 2 {
                return Err(Refusal::AttributeTruncated);
            }
            let typ = bytes[at];
            let alen = usize::from(bytes[at + 1]);
            if typ == 0 {
                return Err(Refusal::AttributeTypeZero);
            }
            if alen < 2 {
                return Err(Refusal::AttributeLengthTooShort);
            }
            if alen > len - at {
                return Err(Refusal::AttributeOverflow);
            }
            if attrs.len() == MAX_ATTRIBUTES {
                return Err(Refusal::TooManyAttributes);
            }
            let value = &bytes[at + 2..at + alen];
            match typ {
                attr::MESSAGE_AUTHENTICATOR => {
                    if alen != 18 {
                        return Err(Refusal::MessageAuthenticatorLength);
                    }
                    if ma_at.is_some() {
                        return Err(Refusal::MessageAuthenticatorRepeated);
                    }
                    ma_at = Some(at + 2);
                }
                attr::USER_PASSWORD => {
                    // RFC 2865 §5.2: 16 to 128 octets, a multiple of 16.
                    if value.len() < 16 || value.len() > 128 || !value.len().is_multiple_of(16) {
                        return Err(Refusal::UserPasswordLength);
                    }
                    if std::mem::replace(&mut seen_password, true) {
                        return Err(Refusal::AttributeRepeated);
                    }
                }
                attr::USER_NAME if std::mem::replace(&mut seen_name, true) => {
                    return Err(Refusal::AttributeRepeated);
                }
                attr::STATE if std::mem::replace(&mut seen_state, true) => {
                    return Err(Refusal::AttributeRepeated);
                }
                _ => {}
            }
            attrs.push(Attr { typ, value });
            at += alen;
        }
        let packet = Packet {
            code,
            identifier: bytes[1],
            authenticator,
            bytes,
            attrs,
            ma_at,
        };
        // RFC 5997 §3 and RFC 3579 §3.1: these MUST carry Message-Authenticator.
        if packet.ma_at.is_none()
            && (code == code::STATUS_SERVER || packet.attr(attr::EAP_MESSAGE).is_some())
        {
            return Err(Refusal::MessageAuthenticatorMissing);
        }
        Ok(packet)
    }

    /// The packet as received, up to its header's length.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Every attribute, in the order received.
    pub fn attrs(&self) -> &[Attr<'a>] {
        &self.attrs
    }

    /// The first attribute of type `typ`.
    pub fn attr(&self, typ: u8) -> Option<&'a [u8]> {
        self.attrs.iter().find(|a| a.typ == typ).map(|a| a.value)
    }

    /// Every attribute of type `typ`, in order (Proxy-State, Class).
    pub fn all(&self, typ: u8) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.attrs
            .iter()
            .filter(move |a| a.typ == typ)
            .map(|a| a.value)
    }

    pub fn has_message_authenticator(&self) -> bool {
        self.ma_at.is_some()
    }

    /// Checks the packet's integrity with `secret`: the Message-Authenticator when present
    /// (RFC 3579 §3.2; `required` refuses a packet without one) and, for Accounting-Request, the
    /// Request Authenticator (RFC 2866 §3). A failure is silently discarded by servers.
    pub fn verify(&self, secret: &[u8], required: bool) -> Result<(), Refusal> {
        let accounting = self.code == code::ACCOUNTING_REQUEST;
        match self.ma_at {
            Some(at) => {
                let mut copy = self.bytes.to_vec();
                copy[at..at + 16].fill(0);
                if accounting {
                    // Accounting packets are signed with a zero Request Authenticator.
                    copy[4..HEADER_LEN].fill(0);
                }
                let expected = hmac_md5(secret, &copy);
                if !ct_eq(&expected, &self.bytes[at..at + 16]) {
                    return Err(Refusal::MessageAuthenticatorWrong);
                }
            }
            None if required => return Err(Refusal::MessageAuthenticatorMissing),
            None => {}
        }
        if accounting {
            let expected = md5(&[
                &self.bytes[..4],
                &[0u8; 16],
                &self.bytes[HEADER_LEN..],
                secret,
            ]);
            if !ct_eq(&expected, &self.authenticator) {
                return Err(Refusal::RequestAuthenticatorWrong);
            }
        }
        Ok(())
    }

    /// The User-Name, if present.
    pub fn user_name(&self) -> Option<&'a [u8]> {
        self.attr(attr::USER_NAME)
    }

    /// The password from User-Password, un-hidden with `secret` (RFC 2865 §5.2).
    pub fn user_password(&self, secret: &[u8]) -> Option<Vec<u8>> {
        self.attr(attr::USER_PASSWORD)
            .map(|hidden| unhide_password(hidden, secret, &self.authenticator))
    }

    /// Checks a reply to a request with `request_authenticator`: the Response Authenticator and,
    /// when `require_ma`, a valid Message-Authenticator as the first attribute (what pyrad's
    /// `enforce_ma` and radclient's `-b` demand). For clients such as `tessera radius test`.
    pub fn verify_reply(
        &self,
        secret: &[u8],
        request_authenticator: &[u8; 16],
        require_ma: bool,
    ) -> Result<(), Refusal> {
        let expected = md5(&[
            &self.bytes[..4],
            request_authenticator,
            &self.bytes[HEADER_LEN..],
            secret,
        ]);
        if !ct_eq(&expected, &self.authenticator) {
            return Err(Refusal::MessageAuthenticatorWrong);
        }
        match self.ma_at {
            Some(at) => {
                if require_ma && at != HEADER_LEN + 2 {
                    return Err(Refusal::MessageAuthenticatorMissing);
                }
                let mut copy = self.bytes.to_vec();
                copy[4..HEADER_LEN].copy_from_slice(request_authenticator);
                copy[at..at + 16].fill(0);
                if !ct_eq(&hmac_md5(secret, &copy), &self.bytes[at..at + 16]) {
                    return Err(Refusal::MessageAuthenticatorWrong);
                }
            }
            None if require_ma => return Err(Refusal::MessageAuthenticatorMissing),
            None => {}
        }
        Ok(())
    }
}
