//! An HTTP SMS gateway described by configuration: method, URL, headers and a body template with
//! `{phone}` and `{message}`, so most providers need no code of their own.
//!
//! Placeholders are filled in one pass (a message containing `{phone}` stays as it is) and encoded
//! for where they stand: JSON string escapes for a JSON body, form encoding for a form body,
//! percent-encoding in the URL. Header values usually hold the provider's credentials: errors
//! name a header, never its value, and `Debug` shows only the gateway's scheme, host and port.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use super::{Sms, SmsError, SmsSender, mask_phone};
use crate::config::SmsConfig;

/// Characters of the gateway's answer kept in an error.
const ANSWER_EXCERPT_CHARS: usize = 200;
/// Bytes of the gateway's answer read at most, for that excerpt.
const ANSWER_READ_BYTES: usize = 4096;

/// Sends each message as one HTTP request to the configured gateway.
pub struct HttpSmsGateway {
    client: reqwest::Client,
    method: Method,
    url_template: String,
    headers: HeaderMap,
    body_template: String,
    encoding: BodyEncoding,
    /// Scheme, host and port only: the path or query may hold an API key.
    display_url: String,
    timeout_secs: u64,
}

impl std::fmt::Debug for HttpSmsGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSmsGateway")
            .field("method", &self.method)
            .field("gateway", &self.display_url)
            .field("encoding", &self.encoding)
            .finish_non_exhaustive()
    }
}

/// How placeholder values are encoded in the body, from the content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyEncoding {
    Json,
    Form,
    Raw,
}

impl HttpSmsGateway {
    /// Checks the configuration and prepares the HTTP client. Nothing is sent until the first
    /// message.
    pub fn new(config: &SmsConfig) -> Result<Self, SmsError> {
        let method = match config.method.trim().to_ascii_uppercase().as_str() {
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            "GET" => Method::GET,
            _ => {
                return Err(SmsError::InvalidConfig(format!(
                    "sms.method must be POST, PUT or GET, got {:?}",
                    config.method
                )));
            }
        };

        let url_template = config.gateway_url.trim().to_owned();
        // Placeholders may stand in the URL: check the URL as it will look with values in it.
        let sample = fill(&url_template, "+1000", "x", percent_encode);
        let parsed = url::Url::parse(&sample)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                SmsError::InvalidConfig("sms.gateway_url must be an http:// or https:// URL".into())
            })?;
        // The origin: scheme, host and the port when it is not the default one.
        let display_url = parsed.origin().ascii_serialization();

        let mut headers = HeaderMap::new();
        let content_type = config.content_type.trim();
        if method != Method::GET && !content_type.is_empty() {
            let value = HeaderValue::from_str(content_type).map_err(|_| {
                SmsError::InvalidConfig("sms.content_type is not a valid header value".into())
            })?;
            headers.insert(CONTENT_TYPE, value);
        }
        for (index, line) in config.headers.iter().enumerate() {
            let (name, value) = parse_header(index, line)?;
            headers.insert(name, value);
        }

        let lowered = content_type.to_ascii_lowercase();
        let encoding = if lowered.contains("json") {
            BodyEncoding::Json
        } else if lowered.contains("x-www-form-urlencoded") {
            BodyEncoding::Form
        } else {
            BodyEncoding::Raw
        };

        // rustls, certificates checked against the system's trust store (reqwest's `rustls`).
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs))
            // A redirect is a misconfigured URL: report it rather than send the message (and the
            // credentials in the headers) somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SmsError::InvalidConfig(format!("cannot set up the HTTP client: {e}")))?;

        Ok(Self {
            client,
            method,
            url_template,
            headers,
            body_template: config.body_template.clone(),
            encoding,
            display_url,
            timeout_secs: config.timeout_secs,
        })
    }

    /// The transport error with its causes but without the URL: a GET gateway's URL holds the
    /// number and the text, and often an API key.
    fn request_error(&self, error: reqwest::Error) -> SmsError {
        if error.is_timeout() {
            return SmsError::Gateway(format!(
                "{} did not answer within {} s",
                self.display_url, self.timeout_secs
            ));
        }
        let error = error.without_url();
        let mut message = format!("{}: {error}", self.display_url);
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        SmsError::Gateway(message)
    }

    /// The request body for `sms`, placeholders encoded for the content type.
    fn body(&self, sms: &Sms) -> String {
        match self.encoding {
            BodyEncoding::Json => fill(&self.body_template, &sms.to, &sms.text, json_escape),
            BodyEncoding::Form => fill(&self.body_template, &sms.to, &sms.text, form_encode),
            BodyEncoding::Raw => fill(&self.body_template, &sms.to, &sms.text, str::to_owned),
        }
    }
}

#[async_trait::async_trait]
impl SmsSender for HttpSmsGateway {
    async fn send(&self, sms: &Sms) -> Result<(), SmsError> {
        let url = fill(&self.url_template, &sms.to, &sms.text, percent_encode);
        let mut request = self
            .client
            .request(self.method.clone(), url)
            .headers(self.headers.clone());
        if self.method != Method::GET {
            request = request.body(self.body(sms));
        }
        let response = request.send().await.map_err(|e| self.request_error(e))?;
        let status = response.status();
        if !status.is_success() {
            let answer = read_excerpt(response).await;
            return Err(SmsError::Gateway(format!(
                "{} answered {}: {}",
                self.display_url,
                status_text(status),
                redact(&answer, sms)
            )));
        }
        tracing::info!(to = %mask_phone(&sms.to), gateway = %self.display_url, "SMS sent");
        Ok(())
    }
}

/// Splits `Name: value`. Errors name the header (or only its position), never the value.
fn parse_header(index: usize, line: &str) -> Result<(HeaderName, HeaderValue), SmsError> {
    let Some((name, value)) = line.split_once(':') else {
        return Err(SmsError::InvalidConfig(format!(
            "sms.headers entry {} is not \"Name: value\"",
            index + 1
        )));
    };
    let name = name.trim();
    let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        SmsError::InvalidConfig(format!("sms.headers: {name:?} is not a valid header name"))
    })?;
    let mut value = HeaderValue::from_str(value.trim()).map_err(|_| {
        SmsError::InvalidConfig(format!("sms.headers: the value of {name} is not valid"))
    })?;
    // Keeps the value out of the HTTP client's own debug output.
    value.set_sensitive(true);
    Ok((header, value))
}

/// Replaces `{phone}` and `{message}` in one pass, so text inserted for one placeholder is never
/// searched for the other.
fn fill(template: &str, phone: &str, message: &str, encode: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + phone.len() + message.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        if let Some(after) = tail.strip_prefix("{phone}") {
            out.push_str(&encode(phone));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("{message}") {
            out.push_str(&encode(message));
            rest = after;
        } else {
            out.push('{');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The inside of a JSON string literal for `s` (quotes, backslashes and control characters
/// escaped), for a template that writes the quotes itself: `"text": "{message}"`.
fn json_escape(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_owned()).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or_default()
        .to_owned()
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a value is safe in a path
/// segment and in a query (`+` in a number becomes `%2B`, not a space).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// The first bytes of an error answer, enough for an excerpt; a huge answer is not read whole.
async fn read_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < ANSWER_READ_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    text.chars().take(ANSWER_EXCERPT_CHARS).collect()
}

/// Takes the number and the text out of a gateway's answer before it reaches an error (and so a
/// log): some gateways echo the request, and the text carries a code.
fn redact(answer: &str, sms: &Sms) -> String {
    let mut out = answer.to_owned();
    for (needle, replacement) in [
        (sms.text.clone(), "(message)"),
        (json_escape(&sms.text), "(message)"),
        (form_encode(&sms.text), "(message)"),
        (sms.to.clone(), "(number)"),
        (percent_encode(&sms.to), "(number)"),
    ] {
        if !needle.is_empty() {
            out = out.replace(&needle, replacement);
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
