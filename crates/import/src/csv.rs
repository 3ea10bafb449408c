//! CSV seed files: one reader driven by the header row, with presets for the layouts vendors and
//! other servers ship (research: hardware-imports §2):
//!
//! | preset | header | columns | secret |
//! |---|---|---|---|
//! | `auto` | yes | by name: serial, secret/seed/key, type, digits, period, counter, hash, upn/user, manufacturer, model | auto |
//! | `entra` | yes | `upn,serial number,secret key,time interval,manufacturer,model` (TOTP) | base32 |
//! | `privacyidea` | no | `serial, seed, type=hotp, otplen=6, counter (hotp) or timestep (totp)` | hex |
//! | `safeid` | no | `serial, secret` (TOTP 30 s) | base32 |
//! | `pingid` | no | `serial, secret[, counter]` (HOTP with a counter column, else TOTP) | hex |
//! | `yubico` | no | YubiKey personalization log: `mode, time, slot, public id, private id, key, …` (OATH-HOTP rows) | hex |
//!
//! The delimiter (`,`, `;` or tab) is sniffed from the first line, a byte order mark dropped,
//! cells trimmed, `#` lines skipped, serials kept as text. In `auto` secret encoding a value is
//! hex only if it has 32, 40, 64 or 128 hex digits; one that reads as hex and as base32 is
//! skipped as ambiguous.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};

use tessera_otp::{HashAlgorithm, Secret};

use crate::limits::{BoundedRead, read_refusal};
use crate::pskc::check_serial;
use crate::reason::detail;
use crate::{Item, Kind, Record, Refusal, Skip, SkipReason};

const MAX_LINE: usize = 64 * 1024;

/// A known layout (see the module notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preset {
    #[default]
    Auto,
    Entra,
    PrivacyIdea,
    SafeId,
    PingId,
    Yubico,
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Preset, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => Preset::Auto,
            "entra" => Preset::Entra,
            "privacyidea" => Preset::PrivacyIdea,
            "safeid" | "safeid2col" => Preset::SafeId,
            "pingid" => Preset::PingId,
            "yubico" => Preset::Yubico,
            _ => {
                return Err(format!(
                    "unknown CSV format {s:?}: expected auto, entra, privacyidea, safeid, pingid or yubico"
                ));
            }
        })
    }
}

/// How secrets are written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretEncoding {
    #[default]
    Auto,
    Hex,
    Base32,
}

impl std::str::FromStr for SecretEncoding {
    type Err = String;
    fn from_str(s: &str) -> Result<SecretEncoding, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "auto" => SecretEncoding::Auto,
            "hex" => SecretEncoding::Hex,
            "base32" => SecretEncoding::Base32,
            _ => {
                return Err(format!(
                    "unknown secret encoding {s:?}: expected hex, base32 or auto"
                ));
            }
        })
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CsvOptions {
    pub preset: Preset,
    /// `None`: the preset's encoding (auto for `auto`).
    pub encoding: Option<SecretEncoding>,
}

/// Decodes a secret as the encoding says (see the module notes for `auto`).
pub fn decode_secret(text: &str, encoding: SecretEncoding) -> Result<Secret, SkipReason> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        return Err(SkipReason::NoSecret);
    }
    let hex = || Secret::from_hex(&compact).map_err(|_| SkipReason::SecretInvalid);
    let base32 = || Secret::from_base32(&compact).map_err(|_| SkipReason::SecretInvalid);
    match encoding {
        SecretEncoding::Hex => hex(),
        SecretEncoding::Base32 => base32(),
        SecretEncoding::Auto => {
            let looks_hex = compact.bytes().all(|b| b.is_ascii_hexdigit())
                && matches!(compact.len(), 32 | 40 | 64 | 128);
            match (looks_hex, base32()) {
                (true, Ok(_)) => Err(SkipReason::SecretAmbiguous),
                (true, Err(_)) => hex(),
                (false, result) => result,
            }
        }
    }
}

/// Column positions, found from the header or given by the preset.
#[derive(Debug, Default, Clone)]
struct Columns {
    serial: Option<usize>,
    secret: Option<usize>,
    user: Option<usize>,
    period: Option<usize>,
    kind: Option<usize>,
    digits: Option<usize>,
    counter: Option<usize>,
    hash: Option<usize>,
    manufacturer: Option<usize>,
    model: Option<usize>,
}

impl Columns {
    fn from_header(header: &csv::StringRecord) -> Columns {
        let mut c = Columns::default();
        for (i, name) in header.iter().enumerate() {
            let name = name.trim().to_ascii_lowercase().replace([' ', '-'], "_");
            let slot = match name.as_str() {
                "serial" | "serial_number" | "serialno" | "serial_no" | "token_serial" => {
                    &mut c.serial
                }
                "secret" | "secret_key" | "seed" | "key" | "secret_hex" | "otpkey" => &mut c.secret,
                "upn" | "user" | "username" | "user_name" | "login" => &mut c.user,
                "time_interval" | "timestep" | "time_step" | "period" | "interval" => &mut c.period,
                "type" | "algorithm" | "token_type" => &mut c.kind,
                "digits" | "otplen" | "response_length" | "otp_length" => &mut c.digits,
                "counter" => &mut c.counter,
                "hash" | "hashlib" | "hash_algorithm" => &mut c.hash,
                "manufacturer" => &mut c.manufacturer,
                "model" => &mut c.model,
                _ => continue,
            };
            slot.get_or_insert(i);
        }
        c
    }
}

/// Reads a CSV seed file (see the module notes).
pub struct CsvReader<R: Read> {
    records: csv::StringRecordsIntoIter<BufReader<BoundedRead<R>>>,
    preset: Preset,
    encoding: SecretEncoding,
    columns: Option<Columns>,
    seen: HashSet<String>,
    done: bool,
}

impl<R: Read> std::fmt::Debug for CsvReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvReader")
            .field("preset", &self.preset)
            .finish_non_exhaustive()
    }
}

/// The delimiter the first data line uses most: `,`, `;` or tab.
fn sniff(head: &[u8]) -> u8 {
    let line = head
        .split(|&b| b == b'\n')
        .find(|l| {
            let t = l.trim_ascii();
            !t.is_empty() && !t.starts_with(b"#")
        })
        .unwrap_or(b"");
    let count = |d: u8| line.iter().filter(|&&b| b == d).count();
    [b';', b'\t'].into_iter().fold(
        b',',
        |best, d| if count(d) > count(best) { d } else { best },
    )
}

impl<R: Read> CsvReader<R> {
    pub fn new(input: R, options: CsvOptions) -> Result<CsvReader<R>, Refusal> {
        let mut buf = BufReader::with_capacity(64 * 1024, BoundedRead::new(input, b"\n", MAX_LINE));
        let head = buf.fill_buf().map_err(|e| read_refusal(&e))?;
        let delimiter = sniff(head);
        let records = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(buf)
            .into_records();
        let preset = options.preset;
        let encoding = options.encoding.unwrap_or(match preset {
            Preset::Auto => SecretEncoding::Auto,
            Preset::Entra | Preset::SafeId => SecretEncoding::Base32,
            Preset::PrivacyIdea | Preset::PingId | Preset::Yubico => SecretEncoding::Hex,
        });
        let columns = match preset {
            Preset::Auto | Preset::Entra => None,
            Preset::PrivacyIdea => Some(Columns {
                serial: Some(0),
                secret: Some(1),
                kind: Some(2),
                digits: Some(3),
                counter: Some(4),
                ..Default::default()
            }),
            Preset::SafeId => Some(Columns {
                serial: Some(0),
                secret: Some(1),
                ..Default::default()
            }),
            Preset::PingId => Some(Columns {
                serial: Some(0),
                secret: Some(1),
                counter: Some(2),
                ..Default::default()
            }),
            Preset::Yubico => Some(Columns::default()),
        };
        Ok(CsvReader {
            records,
            preset,
            encoding,
            columns,
            seen: HashSet::new(),
            done: false,
        })
    }

    fn row(&mut self, row: &csv::StringRecord, line: u64) -> Item {
        let locator = format!("line {line}");
        let result = if self.preset == Preset::Yubico {
            self.yubico_row(row, &locator)
        } else {
            self.columns
                .clone()
                .map(|c| self.generic_row(&c, row, &locator))
                .unwrap_or(Err(SkipReason::RowMalformed {
                    column: "header".into(),
                }))
        };
        match result {
            Ok(record) => {
                let serial = record.serial.clone().unwrap_or_default();
                if !self.seen.insert(serial) {
                    return Item::Skip(Skip::new(locator, SkipReason::DuplicateSerial));
                }
                Item::Record(Box::new(record))
            }
            Err(reason) => Item::Skip(Skip::new(locator, reason)),
        }
    }

    fn generic_row(
        &self,
        c: &Columns,
        row: &csv::StringRecord,
        locator: &str,
    ) -> Result<Record, SkipReason> {
        let cell = |i: Option<usize>| i.and_then(|i| row.get(i)).filter(|s| !s.is_empty());
        let serial = cell(c.serial).ok_or(SkipReason::NoSerial)?;
        let serial = check_serial(serial)?;
        let secret_text = cell(c.secret).ok_or(SkipReason::NoSecret)?;
        let secret = decode_secret(secret_text, self.encoding)?;
        let kind_text = cell(c.kind).map(|k| {
            k.rsplit([':', '#'])
                .next()
                .unwrap_or(k)
                .to_ascii_lowercase()
        });
        let counter_text = cell(c.counter);
        let hotp = match kind_text.as_deref() {
            Some("hotp") => true,
            Some("totp") => false,
            Some("ocra") => return Err(SkipReason::Ocra),
            Some(other) => {
                return Err(SkipReason::AlgorithmUnknown {
                    name: detail(other),
                });
            }
            None => match self.preset {
                Preset::PrivacyIdea => true,
                Preset::PingId => counter_text.is_some(),
                _ => false,
            },
        };
        let int = |text: Option<&str>, field: &'static str| -> Result<Option<u64>, SkipReason> {
            text.map(|t| {
                t.parse::<u64>()
                    .map_err(|_| SkipReason::IntegerInvalid { field })
            })
            .transpose()
        };
        let digits = match cell(c.digits) {
            None => 6,
            Some(d) => match d.parse::<u32>() {
                Ok(n @ 6..=8) => n,
                _ => {
                    return Err(SkipReason::DigitsUnsupported { digits: detail(d) });
                }
            },
        };
        let kind = if hotp {
            Kind::Hotp {
                counter: int(counter_text, "counter")?.unwrap_or(0),
            }
        } else {
            // privacyIDEA's fifth column is the time step for TOTP rows.
            let period_text = match self.preset {
                Preset::PrivacyIdea => counter_text,
                _ => cell(c.period),
            };
            let period = int(period_text, "time interval")?.unwrap_or(30);
            if !(1..=86_400).contains(&period) {
                return Err(SkipReason::PeriodInvalid);
            }
            Kind::Totp { period, drift: 0 }
        };
        let algorithm = match cell(c.hash) {
            Some(h) => h
                .parse::<HashAlgorithm>()
                .map_err(|_| SkipReason::HashUnsupported { name: detail(h) })?,
            // privacyIDEA tells the hash by the seed's length.
            None if self.preset == Preset::PrivacyIdea => match secret.as_bytes().len() {
                32 => HashAlgorithm::Sha256,
                64 => HashAlgorithm::Sha512,
                28 | 48 => {
                    return Err(SkipReason::HashUnsupported {
                        name: "SHA-224/SHA-384".into(),
                    });
                }
                _ => HashAlgorithm::Sha1,
            },
            None => HashAlgorithm::Sha1,
        };
        let mut record = Record::new(kind, secret, locator.to_owned());
        record.serial = Some(serial);
        record.algorithm = algorithm;
        record.digits = digits;
        record.user = cell(c.user).map(str::to_owned);
        record.manufacturer = cell(c.manufacturer).map(str::to_owned);
        record.model = cell(c.model).map(str::to_owned);
        Ok(record)
    }

    /// A YubiKey personalization log row: only OATH-HOTP slots carry an OATH key.
    fn yubico_row(&self, row: &csv::StringRecord, locator: &str) -> Result<Record, SkipReason> {
        let mode = row.get(0).unwrap_or("");
        if mode.starts_with("Static Password") {
            return Err(SkipReason::StaticPassword);
        }
        if mode.eq_ignore_ascii_case("Yubico OTP") {
            return Err(SkipReason::YubicoOtp);
        }
        if !mode.eq_ignore_ascii_case("OATH-HOTP") {
            return Err(SkipReason::AlgorithmUnknown { name: detail(mode) });
        }
        let public_id = row
            .get(3)
            .filter(|s| !s.is_empty())
            .ok_or(SkipReason::NoSerial)?;
        let slot = row.get(2).filter(|s| !s.is_empty()).unwrap_or("1");
        let serial = check_serial(&format!("{public_id}:{slot}"))?;
        let key = row
            .get(5)
            .filter(|s| !s.is_empty())
            .ok_or(SkipReason::NoSecret)?;
        let secret = decode_secret(key, self.encoding)?;
        let digits = match row.get(11).and_then(|d| d.parse::<u32>().ok()) {
            Some(8) => 8,
            _ => 6,
        };
        let mut record = Record::new(Kind::Hotp { counter: 0 }, secret, locator.to_owned());
        record.serial = Some(serial);
        record.digits = digits;
        record.manufacturer = Some("Yubico".into());
        Ok(record)
    }
}

impl<R: Read> Iterator for CsvReader<R> {
    type Item = Result<Item, Refusal>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let row = match self.records.next() {
                None => {
                    self.done = true;
                    if self.columns.is_none() {
                        return Some(Err(Refusal::HeaderMissing { column: "header" }));
                    }
                    return None;
                }
                Some(Ok(row)) => row,
                Some(Err(e)) => {
                    let line = e.position().map_or(0, csv::Position::line);
                    if let csv::ErrorKind::Io(io) = e.kind() {
                        self.done = true;
                        return Some(Err(read_refusal(io)));
                    }
                    return Some(Ok(Item::Skip(Skip::new(
                        format!("line {line}"),
                        SkipReason::RowMalformed {
                            column: "not UTF-8 text".into(),
                        },
                    ))));
                }
            };
            let line = row.position().map_or(0, csv::Position::line);
            if row.iter().all(str::is_empty) {
                continue;
            }
            if self.columns.is_none() {
                let columns = Columns::from_header(&row);
                if columns.serial.is_none() {
                    self.done = true;
                    return Some(Err(Refusal::HeaderMissing { column: "serial" }));
                }
                if columns.secret.is_none() {
                    self.done = true;
                    return Some(Err(Refusal::HeaderMissing { column: "secret" }));
                }
                self.columns = Some(columns);
                continue;
            }
            if self.preset == Preset::Yubico && row.get(0) == Some("LOGGING START") {
                continue;
            }
            return Some(Ok(self.row(&row, line)));
        }
    }
}
