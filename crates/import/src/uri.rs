//! Lists of `otpauth://` key URIs, one a line, as other servers and apps export them (`#` starts
//! a comment, blank lines are ignored). A line holding an `otpauth-migration://` link is read as
//! a Google Authenticator export. The report names line numbers only: each URI carries a live
//! secret and is never echoed.

use std::io::{BufRead, BufReader, Read};

use tessera_otp::{KeyUri, OtpError, UriKind};

use crate::limits::{BoundedRead, read_refusal};
use crate::migration::{self, Collector};
use crate::{Item, Kind, Record, Refusal, Skip, SkipReason};

/// Longest line accepted: a Google Authenticator export of one QR code is about 1,500
/// characters; ten times that is still a line, not an attack.
const MAX_LINE: usize = 16 * 1024;

/// Turns a parsed key URI into a record.
pub fn record_from_uri(uri: KeyUri, locator: String) -> Record {
    let kind = match uri.kind {
        UriKind::Totp { period } => Kind::Totp { period, drift: 0 },
        UriKind::Hotp { counter } => Kind::Hotp { counter },
    };
    let mut record = Record::new(kind, uri.secret, locator);
    record.algorithm = uri.algorithm;
    record.digits = uri.digits;
    record.issuer = uri.issuer.filter(|i| !i.is_empty());
    record.account = Some(uri.account);
    record
}

/// A problem of a URI for the report: the engine's errors never hold key characters except the
/// invalid base32 character, which is by definition not part of the key; it is left out anyway.
pub(crate) fn uri_problem(e: &OtpError) -> String {
    match e {
        OtpError::InvalidBase32 { position, .. } => {
            format!("invalid base32 character at position {position}")
        }
        other => crate::reason::detail(&other.to_string()),
    }
}

/// Reads a URI list (see the module notes).
pub struct UriListReader<R: Read> {
    lines: std::io::Lines<BufReader<BoundedRead<R>>>,
    line: usize,
    migration: Collector,
    tail: Option<std::vec::IntoIter<Item>>,
    done: bool,
}

impl<R: Read> std::fmt::Debug for UriListReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UriListReader")
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl<R: Read> UriListReader<R> {
    pub fn new(input: R) -> UriListReader<R> {
        UriListReader {
            lines: BufReader::new(BoundedRead::new(input, b"\n", MAX_LINE)).lines(),
            line: 0,
            migration: Collector::default(),
            tail: None,
            done: false,
        }
    }
}

impl<R: Read> Iterator for UriListReader<R> {
    type Item = Result<Item, Refusal>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(tail) = &mut self.tail {
                return tail.next().map(Ok);
            }
            if self.done {
                return None;
            }
            let line = match self.lines.next() {
                None => {
                    // Export entries come out once every part of each batch was seen.
                    self.tail = Some(std::mem::take(&mut self.migration).finish().into_iter());
                    continue;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(read_refusal(&e)));
                }
                Some(Ok(line)) => line,
            };
            self.line += 1;
            let text = line.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let locator = format!("line {}", self.line);
            if migration::is_migration(text) {
                if let Err(skip) = self.migration.add(text, &locator) {
                    return Some(Ok(Item::Skip(skip)));
                }
                continue;
            }
            return Some(Ok(match KeyUri::parse(text) {
                Ok(uri) => Item::Record(Box::new(record_from_uri(uri, locator))),
                Err(e) => Item::Skip(Skip::new(
                    locator,
                    SkipReason::UriInvalid {
                        problem: uri_problem(&e),
                    },
                )),
            }));
        }
    }
}
