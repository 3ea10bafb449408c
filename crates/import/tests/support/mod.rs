//! Helpers shared by the reader tests: collecting a reader's output and checking that no secret
//! appears in anything meant for people (messages, codes, locators, `Debug`).

#![allow(dead_code)] // each test file uses part of these
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

use data_encoding::{BASE32_NOPAD, BASE64, HEXLOWER, HEXUPPER};
use tessera_import::{Item, Lang, Record, Refusal, Skip};

/// Records and skips until the end, or the refusal that ended it.
pub fn collect<I: Iterator<Item = Result<Item, Refusal>>>(
    it: I,
) -> (Vec<Record>, Vec<Skip>, Option<Refusal>) {
    let (mut records, mut skips) = (Vec::new(), Vec::new());
    for item in it {
        match item {
            Ok(Item::Record(r)) => records.push(*r),
            Ok(Item::Skip(s)) => skips.push(s),
            Err(e) => return (records, skips, Some(e)),
        }
    }
    (records, skips, None)
}

/// Every text a person or a log could see of these results.
pub fn visible(records: &[Record], skips: &[Skip], refusal: &Option<Refusal>) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&format!("{r:?}\n"));
        for w in &r.warnings {
            out.push_str(&w.message(Lang::En));
            out.push_str(&w.message(Lang::De));
        }
    }
    for s in skips {
        out.push_str(&format!(
            "{s:?} {} {} {}\n",
            s.reason.message(Lang::En),
            s.reason.message(Lang::De),
            serde_json::to_string(s).unwrap()
        ));
    }
    if let Some(e) = refusal {
        out.push_str(&format!(
            "{e:?} {e} {} {}",
            e.message(Lang::De),
            serde_json::to_string(e).unwrap()
        ));
    }
    out
}

/// Fails if the secret appears in `text` as hex, base32 or base64.
pub fn assert_no_secret(text: &str, secret: &[u8]) {
    for form in [
        HEXLOWER.encode(secret),
        HEXUPPER.encode(secret),
        BASE32_NOPAD.encode(secret),
        BASE32_NOPAD.encode(secret).to_lowercase(),
        BASE64.encode(secret).trim_end_matches('=').to_owned(),
    ] {
        assert!(!text.contains(&form), "a secret appears in visible output");
    }
    if let Ok(s) = std::str::from_utf8(secret)
        && s.len() >= 8
    {
        assert!(!text.contains(s), "a secret appears in visible output");
    }
}
