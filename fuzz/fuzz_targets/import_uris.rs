//! otpauth:// lists and Google Authenticator export links (otpauth-migration://, protobuf in
//! base64): never panic, and an export written from what was read reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_import::uri::UriListReader;
use tessera_import::{Item, migration};

fuzz_target!(|data: &[u8]| {
    let mut records = Vec::new();
    for item in UriListReader::new(data).take(10_000) {
        if let Ok(Item::Record(r)) = item {
            records.push(*r);
        }
    }
    // Whatever an export can carry survives a round trip through export_uris.
    let (links, written) = migration::export_uris(&records, 10, 7);
    let mut c = migration::Collector::default();
    for l in &links {
        c.add(l, "fuzz").expect("a written export link reads back");
    }
    let back = c.finish().into_iter().filter(|i| matches!(i, Item::Record(_))).count();
    assert_eq!(back, written);
});
