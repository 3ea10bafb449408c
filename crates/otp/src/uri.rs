//! `otpauth://` key URIs (Google Authenticator's Key URI format): parsing what authenticator
//! apps and other servers produce, and building what they read from a QR code.
//!
//! Owns percent-encoding and the label/issuer rules. Must not render QR codes or decide
//! enrolment policy, and must not put secret characters in error messages.

use zeroize::Zeroizing;

use crate::error::OtpError;
use crate::hotp::{HashAlgorithm, Hotp};
use crate::secret::Secret;
use crate::totp::Totp;

/// What the key URI is for, with the parameter only that kind has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriKind {
    /// `otpauth://totp/...`, with its period in seconds (default 30).
    Totp {
        /// The `period` parameter.
        period: u64,
    },
    /// `otpauth://hotp/...`, with the counter to start from (required by the format).
    Hotp {
        /// The `counter` parameter.
        counter: u64,
    },
}

/// A parsed or to-be-built `otpauth://` key URI.
///
/// `Debug` shows the secret as `Secret(redacted)`; there is no `Display` because the URI carries
/// the secret. Build the text explicitly with [`to_uri`](KeyUri::to_uri).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyUri {
    /// TOTP with its period or HOTP with its counter.
    pub kind: UriKind,
    /// The provider or service, shown above the account in apps. `None` and `Some("")` both
    /// mean no issuer.
    pub issuer: Option<String>,
    /// The account name, e.g. an e-mail address. Must not be empty; leading spaces cannot be
    /// represented after an issuer prefix (the format reads them as separator padding).
    pub account: String,
    /// The shared secret.
    pub secret: Secret,
    /// Hash algorithm (default SHA1).
    pub algorithm: HashAlgorithm,
    /// Number of digits, 6..=8 (default 6).
    pub digits: u32,
}

/// The parameters the format defines; others (`image`, `color`, ...) are ignored.
#[derive(Default)]
struct Params {
    secret: Option<Zeroizing<Vec<u8>>>,
    issuer: Option<String>,
    algorithm: Option<String>,
    digits: Option<String>,
    period: Option<String>,
    counter: Option<String>,
}

impl KeyUri {
    /// Parses `otpauth://TYPE/LABEL?PARAMETERS`.
    ///
    /// TYPE is `totp` or `hotp` (any case). LABEL is `account` or `Issuer:account`, with the
    /// colon literal or `%3A` and optional spaces before the account. `secret` is required
    /// (base32, as tolerant as [`Secret::from_base32`]); `hotp` also requires `counter`. If both
    /// an issuer prefix and an `issuer` parameter are present they must be equal.
    pub fn parse(uri: &str) -> Result<KeyUri, OtpError> {
        let uri = uri.trim();
        let (scheme, rest) = uri
            .split_once(':')
            .ok_or_else(|| invalid("expected otpauth://TYPE/LABEL?PARAMETERS"))?;
        if !scheme.eq_ignore_ascii_case("otpauth") {
            return Err(invalid("scheme must be otpauth"));
        }
        let rest = rest
            .strip_prefix("//")
            .ok_or_else(|| invalid("expected otpauth://TYPE/LABEL?PARAMETERS"))?;
        // A fragment is not part of the key; drop it as any URI parser would.
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (kind, rest) = rest
            .split_once('/')
            .ok_or_else(|| invalid("missing label: expected otpauth://TYPE/LABEL?PARAMETERS"))?;
        let is_totp = if kind.eq_ignore_ascii_case("totp") {
            true
        } else if kind.eq_ignore_ascii_case("hotp") {
            false
        } else {
            return Err(invalid("type must be totp or hotp"));
        };
        let (label, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (prefix, account) = split_label(label)?;
        let params = Params::parse(query)?;

        let encoded_secret = params
            .secret
            .ok_or_else(|| invalid("missing secret parameter"))?;
        let encoded_secret = std::str::from_utf8(&encoded_secret)
            .map_err(|_| invalid("secret parameter is not valid UTF-8"))?;
        let secret = Secret::from_base32(encoded_secret)?;

        let issuer = match (prefix, params.issuer.filter(|issuer| !issuer.is_empty())) {
            // Two different issuers: refuse rather than guess which one the user trusts.
            (Some(prefix), Some(issuer)) if prefix != issuer => {
                return Err(invalid("issuer parameter does not match label prefix"));
            }
            (prefix, issuer) => issuer.or(prefix),
        };

        let algorithm = match params.algorithm {
            Some(name) => name.parse()?,
            None => HashAlgorithm::Sha1,
        };
        let digits = match params.digits {
            Some(value) => parse_number(&value, "digits")?,
            None => 6,
        };
        let kind = if is_totp {
            let period = match params.period {
                Some(value) => parse_number(&value, "period")?,
                None => 30,
            };
            // One validation for all parameters: the same rules as building a Totp by hand.
            Totp::new(algorithm, digits, period)?;
            UriKind::Totp { period }
        } else {
            let counter = params
                .counter
                .ok_or_else(|| invalid("missing counter parameter (required for hotp)"))?;
            Hotp::new(algorithm, digits)?;
            UriKind::Hotp {
                counter: parse_number(&counter, "counter")?,
            }
        };

        Ok(KeyUri {
            kind,
            issuer,
            account,
            secret,
            algorithm,
            digits,
        })
    }

    /// Builds `otpauth://totp/Issuer:account?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30`
    /// (`counter=N` instead of `period` for HOTP).
    ///
    /// Label and values are percent-encoded: RFC 3986 unreserved characters and `@` stay literal,
    /// spaces become `%20` (never `+`), and colons inside the issuer or account become `%3A` so
    /// only the separator is a literal colon.
    pub fn to_uri(&self) -> String {
        let mut uri = String::from("otpauth://");
        uri.push_str(match self.kind {
            UriKind::Totp { .. } => "totp/",
            UriKind::Hotp { .. } => "hotp/",
        });
        let issuer = self.issuer.as_deref().filter(|issuer| !issuer.is_empty());
        match issuer {
            Some(issuer) => {
                encode_into(&mut uri, issuer);
                uri.push(':');
            }
            // An empty prefix keeps a colon in the account from being read as the separator.
            None if self.account.contains(':') => uri.push(':'),
            None => {}
        }
        encode_into(&mut uri, &self.account);

        uri.push_str("?secret=");
        // The temporary encoding is key material too.
        uri.push_str(&Zeroizing::new(self.secret.to_base32()));
        if let Some(issuer) = issuer {
            uri.push_str("&issuer=");
            encode_into(&mut uri, issuer);
        }
        uri.push_str("&algorithm=");
        uri.push_str(self.algorithm.as_str());
        uri.push_str("&digits=");
        uri.push_str(&self.digits.to_string());
        match self.kind {
            UriKind::Totp { period } => {
                uri.push_str("&period=");
                uri.push_str(&period.to_string());
            }
            UriKind::Hotp { counter } => {
                uri.push_str("&counter=");
                uri.push_str(&counter.to_string());
            }
        }
        uri
    }

    /// The TOTP generator this URI describes; `InvalidUri` if it is an HOTP URI.
    pub fn totp(&self) -> Result<Totp, OtpError> {
        match self.kind {
            UriKind::Totp { period } => Totp::new(self.algorithm, self.digits, period),
            UriKind::Hotp { .. } => Err(invalid("key URI is hotp, not totp")),
        }
    }

    /// The HOTP generator this URI describes; `InvalidUri` if it is a TOTP URI.
    pub fn hotp(&self) -> Result<Hotp, OtpError> {
        match self.kind {
            UriKind::Hotp { .. } => Hotp::new(self.algorithm, self.digits),
            UriKind::Totp { .. } => Err(invalid("key URI is totp, not hotp")),
        }
    }
}

impl Params {
    fn parse(query: &str) -> Result<Params, OtpError> {
        let mut params = Params::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key.to_ascii_lowercase().as_str() {
                // Decoded straight into a wiped buffer: it is the key.
                "secret" => set_once(
                    &mut params.secret,
                    Zeroizing::new(percent_decode(value, true, "secret parameter")?),
                    "secret",
                )?,
                "issuer" => set_once(
                    &mut params.issuer,
                    decode_utf8(value, true, "issuer parameter")?,
                    "issuer",
                )?,
                "algorithm" => set_once(
                    &mut params.algorithm,
                    decode_utf8(value, true, "algorithm parameter")?,
                    "algorithm",
                )?,
                "digits" => set_once(
                    &mut params.digits,
                    decode_utf8(value, true, "digits parameter")?,
                    "digits",
                )?,
                "period" => set_once(
                    &mut params.period,
                    decode_utf8(value, true, "period parameter")?,
                    "period",
                )?,
                "counter" => set_once(
                    &mut params.counter,
                    decode_utf8(value, true, "counter parameter")?,
                    "counter",
                )?,
                _ => {}
            }
        }
        Ok(params)
    }
}

/// Refuses a repeated parameter: two secrets (or issuers...) are ambiguous, and apps disagree on
/// which one wins.
fn set_once<T>(slot: &mut Option<T>, value: T, name: &str) -> Result<(), OtpError> {
    if slot.replace(value).is_some() {
        return Err(invalid(format!("duplicate {name} parameter")));
    }
    Ok(())
}

/// Splits a raw label into issuer prefix and account, both percent-decoded.
///
/// A literal colon wins over `%3A`, so an issuer or account that contains an encoded colon
/// survives when the separator is literal (as [`KeyUri::to_uri`] writes it). Without a literal
/// colon, the first decoded colon separates, as apps that encode the whole label expect. An empty
/// prefix means no issuer.
fn split_label(raw: &str) -> Result<(Option<String>, String), OtpError> {
    let (prefix, account) = match raw.split_once(':') {
        Some((prefix, account)) => (
            Some(decode_utf8(prefix, false, "label")?),
            decode_utf8(account, false, "label")?,
        ),
        None => {
            let label = decode_utf8(raw, false, "label")?;
            match label.split_once(':') {
                Some((prefix, account)) => (Some(prefix.to_owned()), account.to_owned()),
                None => (None, label),
            }
        }
    };
    // The format allows spaces between the separator and the account (`*"%20"`). They are cut
    // without a separator too: otherwise `totp/%20%20bob?issuer=ACME` would name "  bob" but
    // its own written form `totp/ACME:%20%20bob` would name "bob" (found by fuzz/otp_uri).
    let account = account.trim_start_matches(' ').to_owned();
    if account.is_empty() {
        return Err(invalid("label must name an account"));
    }
    Ok((prefix.filter(|prefix| !prefix.is_empty()), account))
}

/// Decodes `%XX` escapes (and `+` as a space in query values, as form encoding and most URI
/// libraries do). `what` names the part in errors; the input itself is never echoed.
fn percent_decode(input: &str, plus_as_space: bool, what: &str) -> Result<Vec<u8>, OtpError> {
    let bytes = input.as_bytes();
    // Decoding only shrinks, so this buffer never reallocates (no stray copies of a secret).
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'%' => {
                let high = bytes.get(i + 1).copied().and_then(hex_value);
                let low = bytes.get(i + 2).copied().and_then(hex_value);
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(invalid(format!(
                        "{what} has an invalid percent escape at byte {i} (expected % and two hex digits)"
                    )));
                };
                out.push((high << 4) | low);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn decode_utf8(input: &str, plus_as_space: bool, what: &str) -> Result<String, OtpError> {
    String::from_utf8(percent_decode(input, plus_as_space, what)?)
        .map_err(|_| invalid(format!("{what} is not valid UTF-8 after percent-decoding")))
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Appends `text` percent-encoded: RFC 3986 unreserved characters and `@` literal, every other
/// byte of the UTF-8 encoding as `%XX` (so a space is `%20`, never `+`).
fn encode_into(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// A decimal parameter: ASCII digits only (no sign, no spaces), within the target type.
fn parse_number<T: std::str::FromStr>(value: &str, name: &str) -> Result<T, OtpError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!(
            "{name} parameter must be a decimal number"
        )));
    }
    value
        .parse()
        .map_err(|_| invalid(format!("{name} parameter is out of range")))
}

fn invalid(message: impl Into<String>) -> OtpError {
    OtpError::InvalidUri(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_keeps_unreserved_and_at() {
        let mut out = String::new();
        encode_into(&mut out, "a-b.c_d~e@f g:h+é/");
        assert_eq!(out, "a-b.c_d~e@f%20g%3Ah%2B%C3%A9%2F");
    }

    #[test]
    fn decode_handles_escapes_and_plus() {
        assert_eq!(percent_decode("a%20b+c%3a", true, "x").unwrap(), b"a b c:");
        assert_eq!(percent_decode("a+b", false, "x").unwrap(), b"a+b");
        assert!(percent_decode("a%2", false, "x").is_err());
        assert!(percent_decode("a%zz", false, "x").is_err());
        assert!(decode_utf8("%FF", false, "label").is_err());
    }

    #[test]
    fn leading_spaces_of_an_account_go_with_or_without_an_issuer_prefix() {
        for raw in ["%20%20bob", "ACME:%20bob", "ACME%3A%20%20bob"] {
            let (_, account) = split_label(raw).unwrap();
            assert_eq!(account, "bob", "{raw}");
        }
        let uri =
            KeyUri::parse("otpauth://totp/%20%20bob?secret=JBSWY3DPEHPK3PXP&issuer=ACME").unwrap();
        assert_eq!(KeyUri::parse(&uri.to_uri()).unwrap(), uri);
    }

    #[test]
    fn labels_split_on_literal_colon_first() {
        assert_eq!(
            split_label("a%3Ab:c%3Ad").unwrap(),
            (Some("a:b".to_owned()), "c:d".to_owned())
        );
        assert_eq!(
            split_label("ACME%3A%20%20bob").unwrap(),
            (Some("ACME".to_owned()), "bob".to_owned())
        );
        assert_eq!(split_label(":x%3Ay").unwrap(), (None, "x:y".to_owned()));
        assert_eq!(split_label("bob").unwrap(), (None, "bob".to_owned()));
        assert!(split_label("ACME:").is_err());
        assert!(split_label("").is_err());
    }
}
