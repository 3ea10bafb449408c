//! Adding tokens from outside: one `otpauth://` or `otpauth-migration://` text, QR images
//! (PNG/JPEG; Google Authenticator batches in any order across images), text lists of URIs, and
//! other apps' files ([`crate::apps`]). The readers of the `import` crate do the parsing; this
//! module turns their records into vault entries and sorts them into added, duplicate and
//! skipped. A report names locations (line, file, entry number) and labels, never a secret.

use serde::Serialize;
use tessera_import::{Item, Kind, Lang, Record, Refusal, Skip};
use tessera_otp::{HashAlgorithm, Secret};

use crate::entry::{Entry, EntryKind, Origin};
use crate::vault::Content;

/// A token found in a file, not yet in the vault.
#[derive(Debug)]
pub struct Candidate {
    pub kind: EntryKind,
    pub secret: Secret,
    pub algorithm: HashAlgorithm,
    pub digits: u32,
    pub issuer: String,
    pub account: String,
    pub name: String,
    pub note: String,
    pub locator: String,
    /// The source kind (`uri`, `qr`, `ga`, `list`, `aegis`, …), kept in the entry.
    pub origin: &'static str,
}

/// What a reader found: tokens and skips, in file order.
#[derive(Debug, Default)]
pub struct Found {
    pub candidates: Vec<Candidate>,
    pub skips: Vec<Skip>,
}

impl Found {
    /// Sorts the `import` crate's items; `origin` names the source kind.
    pub fn from_items(items: impl IntoIterator<Item = Item>, origin: &'static str) -> Found {
        let mut found = Found::default();
        for item in items {
            match item {
                Item::Record(r) => found.candidates.push(candidate_from_record(*r, origin)),
                Item::Skip(s) => found.skips.push(s),
            }
        }
        found
    }

    pub fn extend(&mut self, other: Found) {
        self.candidates.extend(other.candidates);
        self.skips.extend(other.skips);
    }
}

/// A record of the `import` crate as a candidate entry.
pub fn candidate_from_record(r: Record, origin: &'static str) -> Candidate {
    Candidate {
        kind: match r.kind {
            Kind::Totp { period, .. } => EntryKind::Totp { period },
            Kind::Hotp { counter } => EntryKind::Hotp { counter },
        },
        secret: r.secret,
        algorithm: r.algorithm,
        digits: r.digits,
        issuer: r.issuer.unwrap_or_default(),
        account: r.account.unwrap_or_default(),
        name: String::new(),
        note: String::new(),
        locator: r.locator,
        origin,
    }
}

/// One line of a report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportLine {
    pub locator: String,
    /// The entry's label (issuer and account), never its secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The vault entry added, or the one it duplicates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Stable code of a skip.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Added / duplicate / skipped, for the terminal and `--json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub added: Vec<ReportLine>,
    pub duplicate: Vec<ReportLine>,
    pub skipped: Vec<ReportLine>,
}

impl Report {
    pub fn skip(&mut self, locator: &str, code: &'static str, reason: String) {
        self.skipped.push(ReportLine {
            locator: locator.to_owned(),
            label: None,
            id: None,
            code: Some(code),
            reason: Some(reason),
        });
    }

    /// A whole file refused.
    pub fn refused(&mut self, locator: &str, r: &Refusal) {
        self.skip(locator, r.code(), r.message(Lang::En));
    }

    /// The report as the terminal shows it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for l in &self.added {
            out.push_str(&format!(
                "added      {}  {}\n",
                l.locator,
                l.label.as_deref().unwrap_or("")
            ));
        }
        for l in &self.duplicate {
            out.push_str(&format!(
                "duplicate  {}  {} (already in the vault)\n",
                l.locator,
                l.label.as_deref().unwrap_or("")
            ));
        }
        for l in &self.skipped {
            out.push_str(&format!(
                "skipped    {}  {}\n",
                l.locator,
                l.reason.as_deref().unwrap_or("")
            ));
        }
        out.push_str(&format!(
            "{} added, {} duplicate, {} skipped\n",
            self.added.len(),
            self.duplicate.len(),
            self.skipped.len()
        ));
        out
    }
}

/// Adds what was found to the content: a token whose secret and parameters are already in
/// the vault (or earlier in the same file) is a duplicate. `origin` names the source kind.
pub fn merge_into(
    content: &mut Content,
    found: Found,
    name: Option<&str>,
    now: u64,
) -> Result<Report, crate::crypto::RandomError> {
    let mut report = Report::default();
    for s in found.skips {
        report.skip(&s.locator, s.reason.code(), s.reason.message(Lang::En));
    }
    let single = found.candidates.len() == 1;
    // An index of what is already there, so a 10,000-line list is not 10,000² comparisons.
    let mut known: std::collections::HashMap<[u8; 32], String> = content
        .live()
        .filter_map(|e| {
            Some((
                token_digest(&e.kind, e.algorithm, e.digits, e.secret.as_ref()?),
                e.id.clone(),
            ))
        })
        .collect();
    for c in found.candidates {
        let mut probe = Entry::new(c.kind, c.secret, c.algorithm, c.digits, now)?;
        probe.issuer = c.issuer;
        probe.account = c.account;
        probe.name = c.name;
        probe.note = c.note;
        probe.origin = Origin {
            kind: c.origin.to_owned(),
            server: None,
        };
        if single && let Some(n) = name {
            probe.name = n.to_owned();
        }
        let digest = probe
            .secret
            .as_ref()
            .map(|s| token_digest(&probe.kind, probe.algorithm, probe.digits, s));
        if let Some(existing) = digest.and_then(|d| known.get(&d)) {
            report.duplicate.push(ReportLine {
                locator: c.locator,
                label: Some(probe.label()),
                id: Some(existing.clone()),
                code: None,
                reason: None,
            });
            continue;
        }
        if let Some(d) = digest {
            known.insert(d, probe.id.clone());
        }
        report.added.push(ReportLine {
            locator: c.locator,
            label: Some(probe.label()),
            id: Some(probe.id.clone()),
            code: None,
            reason: None,
        });
        content.entries.push(probe);
    }
    Ok(report)
}

/// SHA-256 over a token's kind, parameters and secret: two entries with the same digest make
/// the same codes (a counter of HOTP does not count: the same token further on).
fn token_digest(
    kind: &EntryKind,
    algorithm: HashAlgorithm,
    digits: u32,
    secret: &Secret,
) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    match kind {
        EntryKind::Totp { period } => {
            h.update(b"totp");
            h.update(period.to_be_bytes());
        }
        EntryKind::Hotp { .. } => h.update(b"hotp"),
        EntryKind::Steam => h.update(b"steam"),
    }
    h.update(algorithm.as_str().as_bytes());
    h.update(digits.to_be_bytes());
    h.update(secret.as_bytes());
    h.finalize().into()
}

/// What a source looks like, decided from its first bytes (whatever the file is called).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Uri,
    Migration,
    Image,
    UriList,
    Aegis,
    TwoFas,
    AndOtp,
    FreeOtpPlus,
}

impl Format {
    pub fn origin(self) -> &'static str {
        match self {
            Format::Uri => "uri",
            Format::Migration => "ga",
            Format::Image => "qr",
            Format::UriList => "list",
            Format::Aegis => "aegis",
            Format::TwoFas => "2fas",
            Format::AndOtp => "andotp",
            Format::FreeOtpPlus => "freeotp+",
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "uri" => Format::Uri,
            "ga" | "google" | "migration" => Format::Migration,
            "image" | "qr" => Format::Image,
            "uris" | "list" | "text" => Format::UriList,
            "aegis" => Format::Aegis,
            "2fas" => Format::TwoFas,
            "andotp" => Format::AndOtp,
            "freeotp+" | "freeotpplus" | "freeotp" => Format::FreeOtpPlus,
            _ => return None,
        })
    }
}

/// Guesses the format of a file's bytes.
pub fn detect(bytes: &[u8]) -> Format {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") || bytes.starts_with(b"\xFF\xD8\xFF") {
        return Format::Image;
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if (t.starts_with('{') || t.starts_with('['))
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes)
    {
        {
            if v.get("header").is_some() && v.get("db").is_some() {
                return Format::Aegis;
            }
            if v.get("schemaVersion").is_some()
                && (v.get("services").is_some() || v.get("servicesEncrypted").is_some())
            {
                return Format::TwoFas;
            }
            if v.get("tokens").is_some() && v.get("tokenOrder").is_some() {
                return Format::FreeOtpPlus;
            }
            if v.is_array() {
                return Format::AndOtp;
            }
        }
    }
    if std::str::from_utf8(bytes).is_err() || bytes.contains(&0) {
        // Binary and no JSON: an encrypted andOTP backup (12-byte IV, ciphertext, tag).
        return Format::AndOtp;
    }
    Format::UriList
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "otpauth://totp/Acme:alice?secret=JBSWY3DPEHPK3PXP&issuer=Acme";

    #[test]
    fn duplicates_are_reported_not_added() {
        let mut content = Content::default();
        let list = format!("{URI}\n{URI}\nnot a uri\n");
        let items: Vec<Item> = tessera_import::uri::UriListReader::new(list.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let r = merge_into(&mut content, Found::from_items(items, "list"), None, 1).unwrap();
        assert_eq!(
            (r.added.len(), r.duplicate.len(), r.skipped.len()),
            (1, 1, 1)
        );
        assert_eq!(r.duplicate[0].locator, "line 2");
        assert_eq!(content.entries.len(), 1);
        let text = r.text() + &serde_json::to_string(&r).unwrap();
        assert!(!text.contains("JBSWY3DPEHPK3PXP"), "{text}");
    }

    #[test]
    fn formats_are_detected_from_bytes() {
        assert_eq!(detect(URI.as_bytes()), Format::UriList);
        assert_eq!(detect(b"\x89PNG\r\n\x1a\nrest"), Format::Image);
        assert_eq!(
            detect(br#"{"version":1,"header":{},"db":""}"#),
            Format::Aegis
        );
        assert_eq!(
            detect(br#"{"schemaVersion":4,"services":[]}"#),
            Format::TwoFas
        );
        assert_eq!(detect(br#"[{"secret":"A","type":"TOTP"}]"#), Format::AndOtp);
    }
}
