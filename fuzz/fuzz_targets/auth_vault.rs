//! tessera-auth vault files: any bytes either open (with the PIN the fuzzer cannot know, so
//! practically never) or are refused with an error; never a panic, never an unbounded KDF run
//! (the parameter checks come before Argon2id).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_authenticator::vault::{Credential, Vault};

fuzz_target!(|data: &[u8]| {
    let _ = Vault::open(data, Credential::Secret(b"123456"));
});
