//! The SafeNet/Aladdin XML reader (vendor seed files): never panics on any bytes, and what it
//! yields carries no secret in its skips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_import::safenet::SafenetReader;

fuzz_target!(|data: &[u8]| {
    for item in SafenetReader::new(data).take(10_000) {
        if let Ok(tessera_import::Item::Skip(s)) = item {
            let _ = s.reason.message(tessera_import::Lang::De);
        }
    }
});
