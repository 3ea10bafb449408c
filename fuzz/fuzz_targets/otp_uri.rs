//! The otpauth:// Key URI parser (enrollment links pasted by users, imports): never panics, and
//! whatever it accepts survives a round trip and gives codes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_otp::KeyUri;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = KeyUri::parse(text) else {
        return;
    };
    let again = KeyUri::parse(&uri.to_uri()).expect("a written URI parses again");
    assert_eq!(again, uri, "round trip");
    if let Ok(h) = uri.hotp() {
        let _ = h.generate(&uri.secret, u64::MAX);
    }
    if let Ok(t) = uri.totp() {
        let _ = t.generate(&uri.secret, u64::MAX);
    }
});
