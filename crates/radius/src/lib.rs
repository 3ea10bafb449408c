//! Tessera's RADIUS codec: bytes in, packets out, and back (RFC 2865 Access-Request with PAP,
//! RFC 2866 accounting, RFC 3579 Message-Authenticator, RFC 5997 Status-Server).
//!
//! No I/O, no clock, no randomness: callers pass the bytes they received, the shared secret and,
//! for packets they build, the random Request Authenticator. Every refusal has a stable
//! [`Refusal::code`], so a server can count and explain drops.
//!
//! What a server must do with it, in order (see `docs/radius.md`):
//! 1. [`Packet::parse`] — the structural checks of FreeRADIUS's `rad_packet_ok`;
//! 2. [`Packet::verify`] with the client's secret — Message-Authenticator (constant time) and,
//!    for accounting, the Request Authenticator;
//! 3. answer with a [`Reply`], which always puts Message-Authenticator first (BlastRADIUS,
//!    CVE-2024-3596) and echoes Proxy-State in order.

mod crypto;
mod packet;
mod reply;
mod request;

pub use crypto::{hide_password, unhide_password};
pub use packet::{Attr, Packet};
pub use reply::Reply;
pub use request::Request;

/// Largest RADIUS packet over UDP (RFC 2865 §3).
pub const MAX_PACKET: usize = 4096;
/// Header: code, identifier, length, authenticator.
pub const HEADER_LEN: usize = 20;
/// Most attributes accepted in one packet (FreeRADIUS's `max_attributes`).
pub const MAX_ATTRIBUTES: usize = 200;
/// Longest attribute value (the length octet covers type and length too).
pub const MAX_VALUE: usize = 253;

/// Packet codes (RFC 2865 §3, RFC 2866, RFC 5997, RFC 7930).
pub mod code {
    pub const ACCESS_REQUEST: u8 = 1;
    pub const ACCESS_ACCEPT: u8 = 2;
    pub const ACCESS_REJECT: u8 = 3;
    pub const ACCOUNTING_REQUEST: u8 = 4;
    pub const ACCOUNTING_RESPONSE: u8 = 5;
    pub const ACCESS_CHALLENGE: u8 = 11;
    pub const STATUS_SERVER: u8 = 12;
    pub const STATUS_CLIENT: u8 = 13;
    pub const DISCONNECT_REQUEST: u8 = 40;
    pub const COA_NAK: u8 = 45;
    pub const PROTOCOL_ERROR: u8 = 52;
}

/// Attribute types used here (RFC 2865 §5, RFC 2869, RFC 3579).
pub mod attr {
    pub const USER_NAME: u8 = 1;
    pub const USER_PASSWORD: u8 = 2;
    pub const CHAP_PASSWORD: u8 = 3;
    pub const NAS_IP_ADDRESS: u8 = 4;
    pub const NAS_PORT: u8 = 5;
    pub const SERVICE_TYPE: u8 = 6;
    pub const FILTER_ID: u8 = 11;
    pub const REPLY_MESSAGE: u8 = 18;
    pub const STATE: u8 = 24;
    pub const CLASS: u8 = 25;
    pub const VENDOR_SPECIFIC: u8 = 26;
    pub const SESSION_TIMEOUT: u8 = 27;
    pub const IDLE_TIMEOUT: u8 = 28;
    pub const CALLING_STATION_ID: u8 = 31;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const PROXY_STATE: u8 = 33;
    pub const ACCT_STATUS_TYPE: u8 = 40;
    pub const PROMPT: u8 = 76;
    pub const EAP_MESSAGE: u8 = 79;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
    pub const ERROR_CAUSE: u8 = 101;
}

/// Why a packet was refused. Each variant is one case of FreeRADIUS's `rad_packet_ok` (or of
/// RFC 2865/3579) and is dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Fewer than 20 bytes: no complete header (RFC 2865 §3).
    TooShort,
    /// More than 4096 bytes received, or a header length above 4096.
    TooLong,
    /// The header's length is below 20.
    LengthBelowHeader,
    /// The header's length is more than the bytes received ("the packet MUST be silently
    /// discarded", RFC 2865 §3).
    LengthBeyondData,
    /// Code 0, or a code no RADIUS document defines.
    BadCode,
    /// An attribute header is cut off by the end of the packet.
    AttributeTruncated,
    /// Attribute type 0.
    AttributeTypeZero,
    /// Attribute length below 2.
    AttributeLengthTooShort,
    /// An attribute runs past the end of the packet.
    AttributeOverflow,
    /// More than [`MAX_ATTRIBUTES`] attributes.
    TooManyAttributes,
    /// Message-Authenticator not exactly 18 bytes (RFC 3579 §3.2).
    MessageAuthenticatorLength,
    /// More than one Message-Authenticator.
    MessageAuthenticatorRepeated,
    /// Status-Server or EAP-Message without Message-Authenticator (RFC 5997 §3, RFC 3579 §3.1),
    /// or a client that must send one did not.
    MessageAuthenticatorMissing,
    /// The Message-Authenticator does not match: a wrong secret or a forged packet.
    MessageAuthenticatorWrong,
    /// The Request Authenticator of an Accounting-Request does not match (RFC 2866 §3).
    RequestAuthenticatorWrong,
    /// User-Password not 16-128 octets in steps of 16 (RFC 2865 §5.2).
    UserPasswordLength,
    /// More than one User-Password, User-Name or State.
    AttributeRepeated,
    /// Proxy-State without Message-Authenticator from a client that limits it (BlastRADIUS).
    ProxyStateWithoutMessageAuthenticator,
    /// A code this server does not answer on this port.
    UnsupportedCode,
}

impl Refusal {
    /// The stable reason code: for metrics, logs and `tessera radius doctor`.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::TooShort => "too_short",
            Refusal::TooLong => "too_long",
            Refusal::LengthBelowHeader => "length_below_header",
            Refusal::LengthBeyondData => "length_beyond_data",
            Refusal::BadCode => "bad_code",
            Refusal::AttributeTruncated => "attribute_truncated",
            Refusal::AttributeTypeZero => "attribute_type_zero",
            Refusal::AttributeLengthTooShort => "attribute_length_too_short",
            Refusal::AttributeOverflow => "attribute_overflow",
            Refusal::TooManyAttributes => "too_many_attributes",
            Refusal::MessageAuthenticatorLength => "message_authenticator_length",
            Refusal::MessageAuthenticatorRepeated => "message_authenticator_repeated",
            Refusal::MessageAuthenticatorMissing => "missing_message_authenticator",
            Refusal::MessageAuthenticatorWrong => "bad_message_authenticator",
            Refusal::RequestAuthenticatorWrong => "bad_request_authenticator",
            Refusal::UserPasswordLength => "user_password_length",
            Refusal::AttributeRepeated => "attribute_repeated",
            Refusal::ProxyStateWithoutMessageAuthenticator => "proxy_state_limited",
            Refusal::UnsupportedCode => "unsupported_code",
        }
    }

    /// Every refusal, for metrics that list each reason.
    pub const ALL: [Refusal; 19] = [
        Refusal::TooShort,
        Refusal::TooLong,
        Refusal::LengthBelowHeader,
        Refusal::LengthBeyondData,
        Refusal::BadCode,
        Refusal::AttributeTruncated,
        Refusal::AttributeTypeZero,
        Refusal::AttributeLengthTooShort,
        Refusal::AttributeOverflow,
        Refusal::TooManyAttributes,
        Refusal::MessageAuthenticatorLength,
        Refusal::MessageAuthenticatorRepeated,
        Refusal::MessageAuthenticatorMissing,
        Refusal::MessageAuthenticatorWrong,
        Refusal::RequestAuthenticatorWrong,
        Refusal::UserPasswordLength,
        Refusal::AttributeRepeated,
        Refusal::ProxyStateWithoutMessageAuthenticator,
        Refusal::UnsupportedCode,
    ];
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for Refusal {}

/// A vendor attribute (RFC 2865 §5.26, the recommended format: vendor type and length octets).
pub fn vendor_specific(vendor: u32, vendor_type: u8, value: &[u8]) -> Option<Vec<u8>> {
    // 4 octets vendor id + type + length + value must fit one attribute.
    if value.len() > MAX_VALUE - 6 {
        return None;
    }
    let mut out = Vec::with_capacity(6 + value.len());
    out.extend_from_slice(&vendor.to_be_bytes());
    out.push(vendor_type);
    out.push((value.len() + 2) as u8);
    out.extend_from_slice(value);
    Some(out)
}
