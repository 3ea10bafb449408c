//! QR images (PNG/JPEG uploads in the portal and the CLI): never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_import::qr::QrImages;

fuzz_target!(|data: &[u8]| {
    let mut images = QrImages::default();
    let _ = images.add("fuzz.png", data);
    let _ = images.finish();
});
