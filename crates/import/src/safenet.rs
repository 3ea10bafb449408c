//! SafeNet/Aladdin token XML (the seed files of SafeWord/eToken PASS HOTP tokens):
//!
//! ```xml
//! <Tokens>
//!   <Token serial="00040008CFA5">
//!     <ProductName>SafeWord Alpine</ProductName>
//!     <Applications>
//!       <Application ConnectorID="{…}">
//!         <Seed>3132333435363738393031323334353637383930</Seed>
//!         <MovingFactor>1</MovingFactor>
//!       </Application>
//!     </Applications>
//!   </Token>
//! </Tokens>
//! ```
//!
//! HOTP, 6 digits; the seed is hex, and 64 hex digits mean SHA-256 (40: SHA-1); `MovingFactor`
//! is the next counter. Element and attribute names are matched ignoring case (files with one
//! element in lower case exist). A token with no serial or no seed is skipped with a reason; a
//! second `Application` with a seed becomes `SERIAL:2`. Streaming, one `Token` at a time, with
//! the PSKC reader's limits: no DOCTYPE, nesting at most 32, a text at most 64 KiB.

use std::collections::{HashSet, VecDeque};
use std::io::{BufReader, Read};

use quick_xml::events::Event;
use tessera_otp::{HashAlgorithm, Secret};
use zeroize::Zeroizing;

use crate::limits::{BoundedRead, read_refusal};
use crate::pskc::check_serial;
use crate::reason::detail;
use crate::xml::{Names, element, resolve_reference};
use crate::{Item, Kind, Record, Refusal, Skip, SkipReason};

const MAX_RUN: usize = 64 * 1024;
const MAX_DEPTH: usize = 32;
/// Applications of one token kept; more are skipped with a reason.
const MAX_APPLICATIONS: usize = 16;

/// One `Application` as read.
#[derive(Default)]
struct App {
    seed: Option<Zeroizing<String>>,
    moving_factor: Option<String>,
}

/// One `Token` as read.
#[derive(Default)]
struct Draft {
    serial: Option<String>,
    product: Option<String>,
    model: Option<String>,
    apps: Vec<App>,
}

/// Reads a SafeNet/Aladdin XML file as an iterator of records and skips.
pub struct SafenetReader<R: Read> {
    xml: quick_xml::Reader<BufReader<BoundedRead<R>>>,
    buf: Vec<u8>,
    /// Lower-cased local names of the open elements.
    path: Vec<String>,
    text: Zeroizing<String>,
    token: Option<Draft>,
    index: usize,
    seen: HashSet<String>,
    queue: VecDeque<Item>,
    root_seen: bool,
    done: bool,
}

impl<R: Read> std::fmt::Debug for SafenetReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafenetReader")
            .field("tokens", &self.index)
            .finish_non_exhaustive()
    }
}

impl<R: Read> SafenetReader<R> {
    pub fn new(input: R) -> SafenetReader<R> {
        let bounded = BoundedRead::new(input, b"<>", MAX_RUN);
        let mut xml = quick_xml::Reader::from_reader(BufReader::with_capacity(64 * 1024, bounded));
        xml.config_mut().check_end_names = true;
        SafenetReader {
            xml,
            buf: Vec::with_capacity(1024),
            path: Vec::new(),
            text: Zeroizing::new(String::new()),
            token: None,
            index: 0,
            seen: HashSet::new(),
            queue: VecDeque::new(),
            root_seen: false,
            done: false,
        }
    }

    fn step(&mut self) -> Result<(), Refusal> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let event = match self.xml.read_event_into(&mut buf) {
            Ok(e) => e,
            Err(quick_xml::Error::Io(e)) => return Err(read_refusal(&e)),
            Err(_) => {
                return Err(Refusal::Malformed {
                    problem: format!(
                        "not well-formed XML near byte {}",
                        self.xml.error_position()
                    ),
                });
            }
        };
        let result = match event {
            Event::Start(e) => {
                let (name, attrs) = element(&e, Names::Lower)?;
                self.open(name, &attrs)
            }
            Event::Empty(e) => {
                let (name, attrs) = element(&e, Names::Lower)?;
                self.open(name, &attrs).and_then(|()| self.close())
            }
            Event::End(_) => self.close(),
            Event::Text(t) => self.push_text(&t.xml10_content()),
            Event::CData(t) => self.push_text(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let c = resolve_reference(&r.xml10_content())?;
                self.push_text(&c.to_string())
            }
            // Entities and external references come with a DOCTYPE: never read one (XXE).
            Event::DocType(_) => Err(Refusal::Doctype),
            Event::Eof => {
                self.done = true;
                if !self.path.is_empty() {
                    Err(Refusal::Truncated)
                } else if !self.root_seen {
                    Err(Refusal::Malformed {
                        problem: "no Tokens element".into(),
                    })
                } else {
                    Ok(())
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => Ok(()),
        };
        self.buf = buf;
        result
    }

    fn push_text(&mut self, s: &str) -> Result<(), Refusal> {
        if self.text.len() + s.len() > MAX_RUN {
            return Err(Refusal::TooLarge {
                limit: "text of one element".into(),
            });
        }
        self.text.push_str(s);
        Ok(())
    }

    fn open(&mut self, name: String, attrs: &[(String, String)]) -> Result<(), Refusal> {
        if self.path.len() >= MAX_DEPTH {
            return Err(Refusal::TooLarge {
                limit: "element nesting".into(),
            });
        }
        self.text.clear();
        let parent = self.path.last().cloned().unwrap_or_default();
        if self.path.is_empty() {
            if name != "tokens" || self.root_seen {
                return Err(Refusal::Malformed {
                    problem: "the root element is not Tokens".into(),
                });
            }
            self.root_seen = true;
        }
        match (name.as_str(), parent.as_str()) {
            ("token", "tokens") => {
                self.index += 1;
                let serial = attrs
                    .iter()
                    .find(|(k, _)| k == "serial")
                    .map(|(_, v)| v.clone());
                self.token = Some(Draft {
                    serial,
                    ..Draft::default()
                });
            }
            ("application", "applications") => {
                if let Some(t) = self.token.as_mut()
                    && t.apps.len() < MAX_APPLICATIONS + 1
                {
                    t.apps.push(App::default());
                }
            }
            _ => {}
        }
        self.path.push(name);
        Ok(())
    }

    fn close(&mut self) -> Result<(), Refusal> {
        let name = self.path.pop().unwrap_or_default();
        let parent = self.path.last().map(String::as_str).unwrap_or("");
        let text = std::mem::replace(&mut self.text, Zeroizing::new(String::new()));
        let in_app = parent == "application";
        let Some(token) = self.token.as_mut() else {
            return Ok(());
        };
        match name.as_str() {
            "seed" if in_app => {
                if let Some(app) = token.apps.last_mut() {
                    app.seed = Some(text);
                }
            }
            "movingfactor" if in_app => {
                if let Some(app) = token.apps.last_mut() {
                    app.moving_factor = Some(text.trim().to_owned());
                }
            }
            "productname" if parent == "token" => token.product = Some(text.trim().to_owned()),
            "model" if parent == "token" => token.model = Some(text.trim().to_owned()),
            // A serial as an element, where the attribute is missing.
            "serial" | "serialno" if parent == "token" && token.serial.is_none() => {
                token.serial = Some(text.trim().to_owned());
            }
            "token" if parent == "tokens" => {
                if let Some(draft) = self.token.take() {
                    self.finish(draft);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Turns a token into one item per application with a seed.
    fn finish(&mut self, draft: Draft) {
        let index = self.index;
        let locator = |serial: Option<&str>| match serial {
            Some(s) => format!("Token #{index} serial={}", detail(s)),
            None => format!("Token #{index}"),
        };
        let serial = match draft.serial.as_deref().map(check_serial) {
            None => {
                self.queue
                    .push_back(Item::Skip(Skip::new(locator(None), SkipReason::NoSerial)));
                return;
            }
            Some(Err(reason)) => {
                self.queue
                    .push_back(Item::Skip(Skip::new(locator(None), reason)));
                return;
            }
            Some(Ok(s)) => s,
        };
        let with_seed: Vec<&App> = draft.apps.iter().filter(|a| a.seed.is_some()).collect();
        if with_seed.is_empty() {
            self.queue.push_back(Item::Skip(Skip::new(
                locator(Some(&serial)),
                SkipReason::NoSecret,
            )));
            return;
        }
        for (i, app) in with_seed.into_iter().enumerate() {
            let serial = if i == 0 {
                serial.clone()
            } else {
                format!("{serial}:{}", i + 1)
            };
            let at = locator(Some(&serial));
            if i >= MAX_APPLICATIONS {
                self.queue.push_back(Item::Skip(Skip::new(
                    at,
                    SkipReason::RowMalformed {
                        column: "Application".into(),
                    },
                )));
                break;
            }
            if !self.seen.insert(serial.clone()) {
                self.queue
                    .push_back(Item::Skip(Skip::new(at, SkipReason::DuplicateSerial)));
                continue;
            }
            let item = match record(app, &serial, &at, &draft) {
                Ok(r) => Item::Record(Box::new(r)),
                Err(reason) => Item::Skip(Skip::new(at, reason)),
            };
            self.queue.push_back(item);
        }
    }
}

fn record(app: &App, serial: &str, at: &str, draft: &Draft) -> Result<Record, SkipReason> {
    let seed: Zeroizing<String> = Zeroizing::new(
        app.seed
            .as_deref()
            .map(|s| s.chars().filter(|c| !c.is_whitespace()).collect())
            .unwrap_or_default(),
    );
    if seed.is_empty() {
        return Err(SkipReason::NoSecret);
    }
    let secret = Secret::from_hex(&seed).map_err(|_| SkipReason::SecretInvalid)?;
    let algorithm = if secret.as_bytes().len() == 32 {
        HashAlgorithm::Sha256
    } else {
        HashAlgorithm::Sha1
    };
    let counter = match app.moving_factor.as_deref() {
        None | Some("") => 0,
        Some(n) => n.parse::<u64>().map_err(|_| SkipReason::IntegerInvalid {
            field: "MovingFactor",
        })?,
    };
    let mut r = Record::new(Kind::Hotp { counter }, secret, at.to_owned());
    r.serial = Some(serial.to_owned());
    r.algorithm = algorithm;
    r.manufacturer = Some("SafeNet".into());
    r.model = draft
        .product
        .clone()
        .or_else(|| draft.model.clone())
        .filter(|m| !m.is_empty())
        .map(|m| detail(&m));
    Ok(r)
}

impl<R: Read> Iterator for SafenetReader<R> {
    type Item = Result<Item, Refusal>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.step() {
                self.done = true;
                self.queue.clear();
                return Some(Err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(xml: &str) -> (Vec<Record>, Vec<Skip>, Option<Refusal>) {
        let (mut records, mut skips, mut refusal) = (Vec::new(), Vec::new(), None);
        for item in SafenetReader::new(xml.as_bytes()) {
            match item {
                Ok(Item::Record(r)) => records.push(*r),
                Ok(Item::Skip(s)) => skips.push(s),
                Err(e) => refusal = Some(e),
            }
        }
        (records, skips, refusal)
    }

    const SEED_SHA1: &str = "3132333435363738393031323334353637383930";

    #[test]
    fn tokens_with_seed_and_moving_factor() {
        let xml = format!(
            r#"<?xml version="1.0"?>
<Tokens>
  <Token serial="00040008CFA5">
    <CaseModel>5</CaseModel><ProductName>SafeWord Alpine</ProductName>
    <Applications><Application ConnectorID="{{ab13}}"><Seed>{SEED_SHA1}</Seed><MovingFactor>7</MovingFactor></Application></Applications>
  </Token>
  <token serial="00040008CFA6"><applications><application><seed>{}</seed></application></applications></token>
</Tokens>"#,
            "31".repeat(32)
        );
        let (records, skips, refusal) = read(&xml);
        assert_eq!((refusal, skips.len()), (None, 0));
        assert_eq!(records.len(), 2);
        let r = &records[0];
        assert_eq!(
            r.serial.as_deref(),
            Some("00040008CFA5"),
            "leading zeros kept"
        );
        assert_eq!(r.kind, Kind::Hotp { counter: 7 });
        assert_eq!(r.secret.as_bytes(), b"12345678901234567890");
        assert_eq!((r.algorithm, r.digits), (HashAlgorithm::Sha1, 6));
        assert_eq!(r.model.as_deref(), Some("SafeWord Alpine"));
        // Lower-case elements; 64 hex digits: SHA-256; no MovingFactor: counter 0.
        assert_eq!(records[1].algorithm, HashAlgorithm::Sha256);
        assert_eq!(records[1].kind, Kind::Hotp { counter: 0 });
    }

    #[test]
    fn skips_name_the_token_and_never_the_seed() {
        let xml = format!(
            r#"<Tokens>
<Token><Applications><Application><Seed>{SEED_SHA1}</Seed></Application></Applications></Token>
<Token serial="A1"><Applications><Application><MovingFactor>1</MovingFactor></Application></Applications></Token>
<Token serial="A2"><Applications><Application><Seed>zz{SEED_SHA1}</Seed></Application></Applications></Token>
<Token serial="A3"><Applications><Application><Seed>{SEED_SHA1}</Seed><MovingFactor>-1</MovingFactor></Application></Applications></Token>
<Token serial="A4"><Applications><Application><Seed>{SEED_SHA1}</Seed></Application><Application><Seed>{SEED_SHA1}</Seed></Application></Applications></Token>
<Token serial="A4"><Applications><Application><Seed>{SEED_SHA1}</Seed></Application></Applications></Token>
</Tokens>"#
        );
        let (records, skips, refusal) = read(&xml);
        assert_eq!(refusal, None);
        let serials: Vec<_> = records.iter().filter_map(|r| r.serial.clone()).collect();
        assert_eq!(serials, ["A4", "A4:2"]);
        let codes: Vec<_> = skips
            .iter()
            .map(|s| (s.locator.as_str(), s.reason.code()))
            .collect();
        assert_eq!(
            codes,
            [
                ("Token #1", "no_serial"),
                ("Token #2 serial=A1", "no_secret"),
                ("Token #3 serial=A2", "secret_invalid"),
                ("Token #4 serial=A3", "integer_invalid"),
                ("Token #6 serial=A4", "duplicate_serial"),
            ]
        );
        let all = format!("{skips:?}");
        assert!(!all.contains(SEED_SHA1));
    }

    #[test]
    fn doctype_truncation_and_other_roots_are_refused() {
        let (_, _, r) = read(r#"<!DOCTYPE x [<!ENTITY e "x">]><Tokens/>"#);
        assert_eq!(r.map(|r| r.code()), Some("xml_doctype"));
        let (_, _, r) = read(r#"<Tokens><Token serial="1">"#);
        assert_eq!(r.map(|r| r.code()), Some("file_truncated"));
        let (records, _, r) = read("<Tokens/>");
        assert!(
            records.is_empty() && r.is_none(),
            "an empty file is no error"
        );
        let (_, _, r) = read(r#"<KeyContainer/>"#);
        assert_eq!(r.map(|r| r.code()), Some("file_malformed"));
        let (_, _, r) = read("not xml at all <<<");
        assert!(r.is_some());
        let deep = format!("<Tokens>{}", "<a>".repeat(40));
        let (_, _, r) = read(&deep);
        assert_eq!(r.map(|r| r.code()), Some("file_too_large"));
    }
}
