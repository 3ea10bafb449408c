//! The streaming PSKC reader: XML events in, one `KeyPackage` at a time out. Elements are matched
//! by local name (files use no prefix, `pskc:`, or odd ones); structure is tracked as a path of
//! names, bounded in depth.

use std::collections::{HashSet, VecDeque};
use std::io::{BufReader, Read};

use data_encoding::BASE64;
use quick_xml::events::Event;
use zeroize::Zeroizing;

use super::crypto::{Cipher, MacHash};
use super::package::{self, Keys, Package, Value, strip_ws};
use super::{MAX_DEPTH, MAX_ITERATIONS, MAX_RUN, Protection, PskcOptions};
use crate::limits::{BoundedRead, read_refusal};
use crate::reason::detail;
use crate::xml::{Names, element, resolve_reference};
use crate::{Item, Refusal, Warning};

/// What the container says about its encryption, read before the first `KeyPackage`.
#[derive(Debug, Default)]
struct Header {
    encryption_key: bool,
    key_name: Option<String>,
    derived: bool,
    kdf_algorithm: Option<String>,
    salt: Option<String>,
    iterations: Option<String>,
    key_length: Option<String>,
    prf: Option<String>,
    master_key_name: Option<String>,
    asymmetric: bool,
    mac_algorithm: Option<String>,
    mac_key_cipher: Option<String>,
    mac_key_value: Option<Zeroizing<String>>,
}

/// What the reader keeps of an XML event.
enum Ev {
    Open(String, Vec<(String, String)>),
    Empty(String, Vec<(String, String)>),
    Close,
    Text(Zeroizing<String>),
    Eof,
    Other,
}

/// Reads a PSKC file as an iterator of records and skips (see the module notes).
pub struct PskcReader<R: Read> {
    xml: quick_xml::Reader<BufReader<BoundedRead<R>>>,
    buf: Vec<u8>,
    path: Vec<String>,
    text: Zeroizing<String>,
    protection: Protection,
    allow_unauthenticated: bool,
    header: Header,
    keys: Option<Keys>,
    package: Option<Package>,
    index: usize,
    seen: HashSet<String>,
    queue: VecDeque<Item>,
    root_open: bool,
    done: bool,
    warnings: Vec<Warning>,
}

impl<R: Read> std::fmt::Debug for PskcReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PskcReader")
            .field("packages", &self.index)
            .finish_non_exhaustive()
    }
}

impl<R: Read> PskcReader<R> {
    pub fn new(input: R, options: PskcOptions) -> PskcReader<R> {
        let bounded = BoundedRead::new(input, b"<>", MAX_RUN);
        let mut xml = quick_xml::Reader::from_reader(BufReader::with_capacity(64 * 1024, bounded));
        xml.config_mut().check_end_names = true;
        PskcReader {
            xml,
            buf: Vec::with_capacity(1024),
            path: Vec::new(),
            text: Zeroizing::new(String::new()),
            protection: options.protection,
            allow_unauthenticated: options.allow_unauthenticated,
            header: Header::default(),
            keys: None,
            package: None,
            index: 0,
            seen: HashSet::new(),
            queue: VecDeque::new(),
            root_open: false,
            done: false,
            warnings: Vec::new(),
        }
    }

    /// File-level warnings met so far (a signature that was not verified).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Bytes of the input read so far (for a progress bar).
    pub fn position(&self) -> u64 {
        self.xml.buffer_position()
    }

    fn step(&mut self) -> Result<(), Refusal> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let event = self.next_event(&mut buf);
        self.buf = buf;
        match event? {
            Ev::Open(name, attrs) => self.open(name, attrs)?,
            Ev::Empty(name, attrs) => {
                self.open(name, attrs)?;
                self.close()?;
            }
            Ev::Close => self.close()?,
            Ev::Text(s) => self.push_text(&s)?,
            Ev::Eof => {
                self.done = true;
                if self.root_open {
                    return Err(Refusal::Truncated);
                }
                if self.index == 0 && self.path.is_empty() && self.header.mac_algorithm.is_none() {
                    return Err(Refusal::Malformed {
                        problem: "no KeyContainer element".into(),
                    });
                }
            }
            Ev::Other => {}
        }
        Ok(())
    }

    /// Reads one event and keeps what the reader needs of it.
    fn next_event(&mut self, buf: &mut Vec<u8>) -> Result<Ev, Refusal> {
        let event = match self.xml.read_event_into(buf) {
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
        Ok(match event {
            Event::Start(e) => {
                let (name, attrs) = element(&e, Names::AsWritten)?;
                Ev::Open(name, attrs)
            }
            Event::Empty(e) => {
                let (name, attrs) = element(&e, Names::AsWritten)?;
                Ev::Empty(name, attrs)
            }
            Event::End(_) => Ev::Close,
            Event::Text(t) => Ev::Text(Zeroizing::new(t.xml10_content().into_owned())),
            Event::CData(t) => Ev::Text(Zeroizing::new(t.xml10_content().into_owned())),
            Event::GeneralRef(r) => {
                let c = resolve_reference(&r.xml10_content())?;
                Ev::Text(Zeroizing::new(c.to_string()))
            }
            // Entities and external references come with a DOCTYPE: never read one (XXE).
            Event::DocType(_) => return Err(Refusal::Doctype),
            Event::Eof => Ev::Eof,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => Ev::Other,
        })
    }

    fn push_text(&mut self, s: &str) -> Result<(), Refusal> {
        if self.text.len() + s.len() > MAX_RUN * 2 {
            return Err(Refusal::TooLarge {
                limit: "text of one element".into(),
            });
        }
        self.text.push_str(s);
        Ok(())
    }

    fn within(&self, name: &str) -> bool {
        self.path.iter().rev().skip(1).any(|p| p == name)
    }

    fn parent(&self) -> &str {
        self.path
            .len()
            .checked_sub(2)
            .map_or("", |i| self.path[i].as_str())
    }

    /// The `Data` child the current element belongs to (`Secret`, `Counter`, ...).
    fn data_field(&self) -> Option<&str> {
        let i = self.path.iter().position(|p| p == "Data")?;
        self.path.get(i + 1).map(String::as_str)
    }

    fn current_value(&mut self) -> Option<&mut Value> {
        let field = self.data_field()?.to_owned();
        let key = self.package.as_mut()?.keys.last_mut()?;
        Some(match field.as_str() {
            "Secret" => &mut key.secret,
            "Counter" => &mut key.counter,
            "Time" => &mut key.time,
            "TimeInterval" => &mut key.interval,
            "TimeDrift" => &mut key.drift,
            _ => return None,
        })
    }

    fn open(&mut self, name: String, attrs: Vec<(String, String)>) -> Result<(), Refusal> {
        if self.path.len() >= MAX_DEPTH {
            return Err(Refusal::TooLarge {
                limit: "element nesting".into(),
            });
        }
        let attr = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        self.text.clear();
        self.path.push(name);
        let name = self.path.last().map(String::as_str).unwrap_or("");
        if self.path.len() == 1 {
            if name != "KeyContainer" || self.root_open || self.done {
                return Err(Refusal::Malformed {
                    problem: "the root element is not a PSKC KeyContainer".into(),
                });
            }
            if let Some(v) = attr("Version").filter(|v| v.trim() != "1.0") {
                return Err(Refusal::Version {
                    version: detail(&v),
                });
            }
            self.root_open = true;
            return Ok(());
        }
        let parent = self.parent().to_owned();
        match name {
            "KeyPackage" if parent == "KeyContainer" => {
                self.ensure_keys()?;
                self.index += 1;
                self.package = Some(Package::default());
            }
            "Key" if parent == "KeyPackage" => {
                if let Some(p) = self.package.as_mut() {
                    package::max_keys_reached(p.keys.len())?;
                    p.keys.push(package::KeyDraft {
                        id: attr("Id").or_else(|| attr("KeyId")),
                        algorithm: attr("Algorithm").or_else(|| attr("KeyAlgorithm")),
                        ..Default::default()
                    });
                }
            }
            "EncryptionKey" if parent == "KeyContainer" => self.header.encryption_key = true,
            "DerivedKey" if parent == "EncryptionKey" => self.header.derived = true,
            "X509Data" if self.within("EncryptionKey") => self.header.asymmetric = true,
            "KeyDerivationMethod" => self.header.kdf_algorithm = attr("Algorithm"),
            "PRF" if self.within("EncryptionKey") => self.header.prf = attr("Algorithm"),
            "MACMethod" if parent == "KeyContainer" => {
                self.header.mac_algorithm = Some(attr("Algorithm").unwrap_or_default());
            }
            "Signature"
                if parent == "KeyContainer"
                    && !self.warnings.contains(&Warning::SignatureNotVerified) =>
            {
                self.warnings.push(Warning::SignatureNotVerified);
            }
            "EncryptionMethod" if self.within("MACKey") => {
                self.header.mac_key_cipher = attr("Algorithm");
            }
            "EncryptionMethod" if self.within("EncryptedValue") => {
                if let Some(v) = self.current_value() {
                    v.cipher = attr("Algorithm");
                }
            }
            "ResponseFormat" => {
                if let Some(k) = self.key_mut() {
                    k.length = attr("Length");
                    k.encoding = attr("Encoding").or_else(|| attr("Format"));
                    k.check_digits = attr("CheckDigits");
                }
            }
            "Suite" => {
                if let Some(k) = self.key_mut() {
                    k.suite_hashalgo = attr("hashalgo");
                }
            }
            "KeyReference" if parent == "Key" => {
                if let Some(k) = self.key_mut() {
                    k.key_reference = true;
                }
            }
            _ if parent == "Policy" => {
                let element = name.to_owned();
                if let Some(k) = self.key_mut() {
                    match element.as_str() {
                        "StartDate" | "ExpiryDate" | "KeyUsage" => {}
                        "PINPolicy" | "NumberOfTransactions" => {
                            k.policy_unsupported = Some(element);
                        }
                        _ => k.policy_unknown = Some(detail(&element)),
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn key_mut(&mut self) -> Option<&mut package::KeyDraft> {
        self.package.as_mut()?.keys.last_mut()
    }

    fn close(&mut self) -> Result<(), Refusal> {
        let text = std::mem::replace(&mut self.text, Zeroizing::new(String::new()));
        let value = || Some(text.trim().to_owned());
        let name = self.path.last().cloned().unwrap_or_default();
        let parent = self.parent().to_owned();
        match (parent.as_str(), name.as_str()) {
            (_, "KeyContainer") if self.path.len() == 1 => {
                self.root_open = false;
            }
            ("KeyContainer", "KeyPackage") => {
                if let Some(p) = self.package.take() {
                    let keys = self.keys.get_or_insert_with(Keys::default);
                    let mut out = Vec::new();
                    p.finish(self.index, keys, &mut self.seen, &mut out)?;
                    self.queue.extend(out);
                }
            }
            ("DeviceInfo", field) => {
                if let Some(p) = self.package.as_mut() {
                    match field {
                        "Manufacturer" => p.manufacturer = value(),
                        "SerialNo" => p.serial = value(),
                        "Model" => p.model = value(),
                        "StartDate" => p.start = value(),
                        "ExpiryDate" => p.expiry = value(),
                        "UserId" => p.user_id = value(),
                        _ => {}
                    }
                }
            }
            ("CryptoModuleInfo", "Id") => {
                if let Some(p) = self.package.as_mut() {
                    p.module_id = value();
                }
            }
            ("Key", field) if self.within("KeyPackage") => {
                if let Some(k) = self.key_mut() {
                    match field {
                        "Issuer" => k.issuer = value(),
                        "FriendlyName" => k.friendly_name = value(),
                        "UserId" => k.user_id = value(),
                        _ => {}
                    }
                }
            }
            ("AlgorithmParameters", "Suite") => {
                if let Some(k) = self.key_mut() {
                    k.suite = value();
                }
            }
            ("Policy", field) => {
                if let Some(k) = self.key_mut() {
                    match field {
                        "StartDate" => k.start = value(),
                        "ExpiryDate" => k.expiry = value(),
                        "KeyUsage" => k.key_usage.push(text.trim().to_owned()),
                        _ => {}
                    }
                }
            }
            (_, "PlainValue") if self.data_field().is_some() => {
                if let Some(v) = self.current_value() {
                    v.plain = Some(text);
                }
            }
            ("CipherData", "CipherValue") if self.within("EncryptedValue") => {
                if let Some(v) = self.current_value() {
                    v.cipher_value = Some(text);
                }
            }
            ("CipherData", "CipherValue") if self.within("MACKey") => {
                self.header.mac_key_value = Some(text);
            }
            (_, "ValueMAC") if self.data_field().is_some() => {
                let mac = text.trim().to_owned();
                if let Some(v) = self.current_value() {
                    v.mac = Some(mac);
                }
            }
            ("EncryptionKey", "KeyName") => self.header.key_name = value(),
            ("DerivedKey", "MasterKeyName") => self.header.master_key_name = value(),
            ("Salt", "Specified") => self.header.salt = value(),
            (_, "IterationCount") if self.within("EncryptionKey") => {
                self.header.iterations = value();
            }
            (_, "KeyLength") if self.within("EncryptionKey") => self.header.key_length = value(),
            _ => {}
        }
        self.path.pop();
        Ok(())
    }

    /// Works out the container's keys from the header and what the caller gave, once, before
    /// the first package.
    fn ensure_keys(&mut self) -> Result<(), Refusal> {
        if self.keys.is_some() {
            return Ok(());
        }
        let h = &self.header;
        if h.asymmetric {
            return Err(Refusal::Asymmetric);
        }
        let label = |s: &Option<String>| s.as_deref().map(detail).unwrap_or_default();
        let mac_cipher = h
            .mac_key_cipher
            .as_deref()
            .map(Cipher::from_uri)
            .transpose()?;
        let key = match (&self.protection, h.encryption_key, h.derived) {
            (Protection::Password(password), _, true) => Some(self.derive(password, mac_cipher)?),
            (_, _, true) => {
                return Err(Refusal::PasswordRequired {
                    name: label(&h.master_key_name),
                });
            }
            (Protection::Key(key), true, false) => Some(key.clone()),
            (_, true, false) => {
                return Err(Refusal::KeyRequired {
                    name: label(&h.key_name),
                });
            }
            // A plaintext file: values that turn out encrypted fail on the missing key.
            (_, false, _) => None,
        };
        let mac = match (&h.mac_algorithm, &key) {
            (Some(alg), Some(key)) => {
                let hash = MacHash::from_uri(alg)?;
                let mac_key = match (&h.mac_key_value, mac_cipher) {
                    (Some(b64), Some(cipher)) => {
                        let raw = BASE64
                            .decode(strip_ws(b64).as_bytes())
                            .map_err(|_| Refusal::WrongKeyOrMac)?;
                        cipher.decrypt(key, &raw)?
                    }
                    (Some(_), None) => {
                        return Err(Refusal::Malformed {
                            problem: "MACKey without EncryptionMethod".into(),
                        });
                    }
                    // Files written before RFC 6030 use the encryption key as the MAC key.
                    (None, _) => key.clone(),
                };
                Some((hash, mac_key))
            }
            _ => None,
        };
        self.keys = Some(Keys {
            key,
            mac,
            allow_unauthenticated: self.allow_unauthenticated,
        });
        Ok(())
    }

    /// RFC 6030 §6.2: PBKDF2 over the password with the file's salt and iteration count.
    fn derive(
        &self,
        password: &Zeroizing<String>,
        mac_cipher: Option<Cipher>,
    ) -> Result<Zeroizing<Vec<u8>>, Refusal> {
        let h = &self.header;
        let invalid = |problem: &str| Refusal::KdfInvalid {
            problem: problem.into(),
        };
        let alg = h.kdf_algorithm.as_deref().unwrap_or("");
        if !alg.to_ascii_lowercase().ends_with("pbkdf2") {
            return Err(Refusal::AlgorithmUnsupported {
                algorithm: detail(alg),
            });
        }
        let salt = h
            .salt
            .as_deref()
            .and_then(|s| BASE64.decode(strip_ws(s).as_bytes()).ok())
            .ok_or_else(|| invalid("missing or invalid Salt"))?;
        let iterations: u32 = h
            .iterations
            .as_deref()
            .and_then(|s| s.trim().parse().ok())
            .filter(|n| (1..=MAX_ITERATIONS).contains(n))
            .ok_or_else(|| invalid("IterationCount missing or out of range"))?;
        let length = match h.key_length.as_deref() {
            Some(s) => s
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| invalid("KeyLength out of range"))?,
            None => mac_cipher.map_or(16, Cipher::key_len),
        };
        let prf = match &h.prf {
            Some(uri) if !uri.trim().is_empty() => MacHash::from_uri(uri)?,
            _ => MacHash::Sha1,
        };
        let mut out = Zeroizing::new(vec![0u8; length]);
        prf.pbkdf2(password.as_bytes(), &salt, iterations, &mut out);
        Ok(out)
    }
}

impl<R: Read> Iterator for PskcReader<R> {
    type Item = Result<Item, Refusal>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(Ok(item));
            }
            if self.done {
                return None;
            }
            if let Err(refusal) = self.step() {
                self.done = true;
                self.queue.clear();
                return Some(Err(refusal));
            }
        }
    }
}
