//! The PSKC reader (vendor seed files): never panics on any bytes, with no key, a key or a
//! password, and whatever it yields carries no secret in its skips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_import::pskc::{Protection, PskcOptions, PskcReader};
use zeroize::Zeroizing;

fuzz_target!(|data: &[u8]| {
    let protection = match data.first().map(|b| b % 3) {
        Some(1) => Protection::Key(Zeroizing::new(b"1234567890123456".to_vec())),
        // A low iteration count keeps each run fast; the reader caps what a file may ask.
        Some(2) => Protection::Password(Zeroizing::new("qwerty".into())),
        _ => Protection::None,
    };
    let reader = PskcReader::new(
        data,
        PskcOptions {
            protection,
            allow_unauthenticated: data.len() % 2 == 0,
        },
    );
    for item in reader.take(10_000) {
        if let Ok(tessera_import::Item::Skip(s)) = item {
            let _ = s.reason.message(tessera_import::Lang::De);
        }
    }
});
