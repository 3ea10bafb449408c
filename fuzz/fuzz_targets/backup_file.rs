//! The backup file reader (`tessera restore FILE`) against any bytes: the header and manifest
//! parse, and a plain payload is copied and checked, without a panic and within the bounds the
//! reader promises (the manifest at most 64 KiB, nothing written beyond the payload's length).
//! Encrypted payloads need the passphrase's key (Argon2id, at least 19 MiB per try), so the
//! fuzzer stops at their header checks; their chunk handling is covered by the unit tests.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_server::backup::format::{read_manifest, read_payload};

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    let Ok((manifest, hash)) = read_manifest(&mut r) else {
        return;
    };
    if manifest.encryption.is_some() {
        return;
    }
    let mut out = Vec::new();
    if read_payload(&mut r, &mut out, &manifest, &hash, None).is_ok() {
        assert_eq!(out.len() as u64, manifest.payload_len);
    }
    assert!(out.len() as u64 <= manifest.payload_len);
});
