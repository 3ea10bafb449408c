//! Other authenticator apps' exports as tessera-auth reads them (Aegis, 2FAS, andOTP,
//! FreeOTP+; format guessed from the bytes as `tessera-auth add` does): never a panic, KDF
//! parameters bounded before they run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_authenticator::apps::{self, Given};
use tessera_authenticator::import::{self, Format};
use zeroize::Zeroizing;

fuzz_target!(|data: &[u8]| {
    let guessed = import::detect(data);
    for format in [guessed, Format::Aegis, Format::TwoFas, Format::AndOtp, Format::FreeOtpPlus] {
        let mut pw = Given(Some(Zeroizing::new("test".to_owned())));
        let _ = apps::read(format, data, "fuzz", &mut pw);
    }
});
