//! The CSV seed file reader, with every preset and encoding: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_import::csv::{CsvOptions, CsvReader, Preset, SecretEncoding};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let preset = [
        Preset::Auto,
        Preset::Entra,
        Preset::PrivacyIdea,
        Preset::SafeId,
        Preset::PingId,
        Preset::Yubico,
    ][usize::from(mode % 6)];
    let encoding = [None, Some(SecretEncoding::Hex), Some(SecretEncoding::Base32), Some(SecretEncoding::Auto)]
        [usize::from(mode / 6 % 4)];
    if let Ok(reader) = CsvReader::new(rest, CsvOptions { preset, encoding }) {
        for _ in reader.take(10_000) {}
    }
});
