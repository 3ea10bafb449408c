//! Message catalogues for pages and e-mails: `i18n/en.toml` and `i18n/de.toml`, compiled into the
//! binary and parsed once. Keys are dotted (`landing.title`); `{name}` placeholders are filled by
//! [`Tr::f`]. A test keeps both catalogues on the same keys, so a missing translation fails the
//! build's tests rather than showing a key to a user.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::model::Language;

const EN: &str = include_str!("../i18n/en.toml");
const DE: &str = include_str!("../i18n/de.toml");

type Catalogue = HashMap<String, String>;

fn flatten(prefix: &str, table: &toml::Table, out: &mut Catalogue) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            other => {
                out.insert(key, other.to_string());
            }
        }
    }
}

fn parse(text: &str) -> Catalogue {
    let mut out = Catalogue::new();
    // The catalogues are part of the binary and checked by the tests: a parse error is a build
    // mistake, shown as empty texts (keys) rather than a panic in a request.
    if let Ok(table) = text.parse::<toml::Table>() {
        flatten("", &table, &mut out);
    }
    out
}

fn catalogue(lang: Language) -> &'static Catalogue {
    static CATALOGUES: OnceLock<(Catalogue, Catalogue)> = OnceLock::new();
    let (en, de) = CATALOGUES.get_or_init(|| (parse(EN), parse(DE)));
    match lang {
        Language::En => en,
        Language::De => de,
    }
}

/// Whether the catalogue of `lang` itself (not the English fallback) has a text for `key`.
pub fn has_key(lang: Language, key: &str) -> bool {
    catalogue(lang)
        .get(key)
        .is_some_and(|text| !text.trim().is_empty())
}

/// The keys and texts of `lang` that start with `prefix`, sorted by key.
pub fn entries(lang: Language, prefix: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = catalogue(lang)
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    v.sort();
    v
}

/// A time zone for times people read (`server.time_zone`). Cheap to copy: each zone is looked up
/// once per process and kept.
#[derive(Clone, Copy)]
pub struct Zone(&'static jiff::tz::TimeZone);

impl Zone {
    /// UTC.
    pub fn utc() -> Zone {
        static UTC: OnceLock<jiff::tz::TimeZone> = OnceLock::new();
        Zone(UTC.get_or_init(|| jiff::tz::TimeZone::UTC))
    }

    /// The zone of an IANA name ("Europe/Berlin"), or the system's (the `TZ` environment
    /// variable, else `/etc/localtime`; UTC when neither names one) for "".
    pub fn named(name: &str) -> Result<Zone, String> {
        static ZONES: std::sync::Mutex<Vec<(String, &'static jiff::tz::TimeZone)>> =
            std::sync::Mutex::new(Vec::new());
        let name = name.trim();
        let mut zones = ZONES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, tz)) = zones.iter().find(|(n, _)| n == name) {
            return Ok(Zone(tz));
        }
        let tz = if name.is_empty() {
            jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC)
        } else {
            jiff::tz::TimeZone::get(name).map_err(|_| {
                format!(
                    "unknown time zone {name:?}: use an IANA name such as \"Europe/Berlin\" or \"UTC\", \
                     or leave it empty for the system's"
                )
            })?
        };
        // At most one per distinct name the configuration gave: kept for the process's life.
        let tz: &'static jiff::tz::TimeZone = Box::leak(Box::new(tz));
        zones.push((name.to_owned(), tz));
        Ok(Zone(tz))
    }

    /// The zone's IANA name, where it has one.
    pub fn name(&self) -> &str {
        self.0.iana_name().unwrap_or("")
    }
}

impl Default for Zone {
    fn default() -> Zone {
        Zone::utc()
    }
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Zone({:?})", self.name())
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.0 == other.0
    }
}

impl Eq for Zone {}

/// Texts in one language, and times in one zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr(pub Language, pub Zone);

impl Tr {
    /// Texts in `lang`, times in UTC.
    pub fn new(lang: Language) -> Tr {
        Tr(lang, Zone::utc())
    }

    /// Texts in `lang`, times in `zone`.
    pub fn in_zone(lang: Language, zone: Zone) -> Tr {
        Tr(lang, zone)
    }

    /// The text for `key`; the key itself if the catalogue lacks it (a test prevents that).
    pub fn t(&self, key: &str) -> &'static str {
        catalogue(self.0)
            .get(key)
            .or_else(|| catalogue(Language::En).get(key))
            .map_or("", String::as_str)
    }

    /// The text for `key` with `{name}` placeholders replaced.
    pub fn f(&self, key: &str, args: &[(&str, &str)]) -> String {
        fill(self.t(key), |name| {
            args.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        })
    }

    /// A service message in this language.
    pub fn msg(&self, m: &crate::msg::Msg) -> String {
        use crate::msg::Arg;
        fill(self.t(m.key.as_str()), |name| {
            m.args
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| match v {
                    Arg::Text(text) => text.as_str(),
                    Arg::Key(key) => self.t(key),
                })
        })
    }

    /// [`f`](Self::f) with one placeholder, for templates.
    pub fn f1(&self, key: &str, name: &str, value: &str) -> String {
        self.f(key, &[(name, value)])
    }

    /// [`f`](Self::f) with two placeholders, for templates.
    pub fn f2(&self, key: &str, n1: &str, v1: &str, n2: &str, v2: &str) -> String {
        self.f(key, &[(n1, v1), (n2, v2)])
    }

    /// The language code for `lang` attributes and links.
    pub fn code(&self) -> &'static str {
        self.0.as_str()
    }

    /// A time for people, in the zone, with the zone's abbreviation (or offset, where the zone
    /// has no abbreviation): `24.11.2026, 01:12 CET` or `2026-11-24 01:12 CET`.
    pub fn datetime(&self, t: crate::clock::UnixTime) -> String {
        let format = match self.0 {
            Language::De => "%d.%m.%Y, %H:%M %Z",
            Language::En => "%Y-%m-%d %H:%M %Z",
        };
        jiff::Timestamp::from_second(t)
            .map(|ts| {
                ts.to_zoned_datetime(self.1.0.clone())
                    .strftime(format)
                    .to_string()
            })
            .unwrap_or_else(|_| crate::clock::rfc3339(t))
    }
}

/// `template` with each `{name}` replaced by `value(name)`, in one pass: a value that itself
/// contains `{...}` (a username, a mail server's answer) is never filled again. Unknown names
/// stay as they are.
fn fill<'a>(template: &str, value: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| (&after[..close], close)) {
            Some((name, close)) if !name.contains('{') => {
                match value(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The language for a request: an explicit `?lang=` wins, then the first supported language of
/// `Accept-Language` by quality, then `fallback` (the user's own setting).
pub fn negotiate(
    explicit: Option<&str>,
    accept_language: Option<&str>,
    fallback: Language,
) -> Language {
    if let Some(lang) = explicit.and_then(|l| l.parse::<Language>().ok()) {
        return lang;
    }
    let mut best: Option<(f32, Language)> = None;
    for part in accept_language.unwrap_or("").split(',') {
        let mut pieces = part.split(';');
        let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = pieces
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let Ok(lang) = primary.parse::<Language>() else {
            continue;
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map_or(fallback, |(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogues_have_the_same_keys_and_no_empty_text() {
        let en = parse(EN);
        let de = parse(DE);
        assert!(!en.is_empty(), "en.toml parses");
        let mut only_en: Vec<_> = en.keys().filter(|k| !de.contains_key(*k)).collect();
        let mut only_de: Vec<_> = de.keys().filter(|k| !en.contains_key(*k)).collect();
        only_en.sort();
        only_de.sort();
        assert!(only_en.is_empty(), "missing in de.toml: {only_en:?}");
        assert!(only_de.is_empty(), "missing in en.toml: {only_de:?}");
        for (k, v) in en.iter().chain(de.iter()) {
            assert!(!v.trim().is_empty(), "empty text for {k}");
        }
        // Placeholders match too: a translation must not drop or rename one.
        let placeholders = |s: &str| {
            let mut v: Vec<String> = s
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_owned()))
                .collect();
            v.sort();
            v
        };
        for (k, v) in &en {
            assert_eq!(placeholders(v), placeholders(&de[k]), "placeholders of {k}");
        }
    }

    #[test]
    fn no_text_says_a_recovery_code_signs_anyone_in() {
        // A recovery code starts a recovery (an e-mailed one-time code, then a new device); it
        // never logs anyone in.
        for (lang, cat) in [("de", parse(DE)), ("en", parse(EN))] {
            for (k, v) in &cat {
                let v = v.to_lowercase();
                assert!(
                    !(v.contains("wiederherstellungscode an") && v.contains("melden")),
                    "{lang} {k}: {v}"
                );
                assert!(!v.contains("sign in with a recovery code"), "{lang} {k}");
                assert!(!v.contains("recovery code lets you sign in"), "{lang} {k}");
            }
        }
    }

    #[test]
    fn german_texts_follow_the_glossary() {
        // The words the glossary at the top of de.toml rules out.
        for (k, v) in &parse(DE) {
            assert!(!v.contains("Enrollment"), "{k}: {v}");
            let without_hardware = v.replace("Hardware-Token", "");
            assert!(!without_hardware.contains("Token"), "{k}: {v}");
        }
    }

    #[test]
    fn both_catalogues_parse_as_toml() {
        EN.parse::<toml::Table>().expect("en.toml");
        DE.parse::<toml::Table>().expect("de.toml");
    }

    #[test]
    fn language_negotiation() {
        assert_eq!(
            negotiate(Some("de"), Some("en"), Language::En),
            Language::De
        );
        assert_eq!(
            negotiate(Some("xx"), Some("de-AT,en;q=0.5"), Language::En),
            Language::De
        );
        assert_eq!(
            negotiate(None, Some("fr, en;q=0.4, de;q=0.8"), Language::En),
            Language::De
        );
        assert_eq!(negotiate(None, Some("fr"), Language::De), Language::De);
        assert_eq!(negotiate(None, None, Language::En), Language::En);
        assert_eq!(negotiate(None, Some("de;q=0"), Language::En), Language::En);
    }

    #[test]
    fn placeholders_are_filled() {
        let t = Tr::new(Language::En);
        assert!(t.f1("landing.hello", "name", "Alice").contains("Alice"));
        assert_eq!(
            Tr::new(Language::De).datetime(1_700_000_000),
            "14.11.2023, 22:13 UTC"
        );
        assert_eq!(t.datetime(1_700_000_000), "2023-11-14 22:13 UTC");
        let berlin = Zone::named("Europe/Berlin").unwrap();
        assert_eq!(
            Tr::in_zone(Language::De, berlin).datetime(1_700_000_000),
            "14.11.2023, 23:13 CET"
        );
        // Summer time: 2023-07-01T12:00:00Z.
        assert_eq!(
            Tr::in_zone(Language::En, berlin).datetime(1_688_212_800),
            "2023-07-01 14:00 CEST"
        );
        assert!(Zone::named("Mars/Olympus").is_err());
        assert_eq!(Zone::named("Europe/Berlin").unwrap(), berlin);
    }
}
