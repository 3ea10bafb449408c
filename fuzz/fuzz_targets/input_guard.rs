//! The NUL guard in front of every route against the decoders behind it: whenever serde_json or
//! the form decoder would hand a handler a string with U+0000, the guard must have said so
//! (no false negatives). The guard may be stricter than a decoder: a NUL in the value of a
//! duplicate JSON key, which serde_json drops for the later one, is refused too (found here).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::http::input::{has_nul_in_form, has_nul_in_json, has_nul_in_uri};

fn json_has_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(json_has_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if json_has_nul(&v) {
            assert!(has_nul_in_json(data), "JSON guard missed a NUL");
        }
    }
    let decoded_nul =
        url::form_urlencoded::parse(data).any(|(k, v)| k.contains('\0') || v.contains('\0'));
    if decoded_nul {
        assert!(has_nul_in_form(data), "form guard missed a NUL");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let (path, query) = match text.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (text, None),
        };
        let _ = has_nul_in_uri(path, query);
    }
});
