//! QR codes for the terminal: the emergency kit's setup code and `show-qr`. Two modules per
//! character cell (`▀▄█`), dark on light with the 4-module quiet zone, so phone apps scan it from
//! the screen. A code wider than the terminal is refused rather than cut.

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// The text of a QR code drawn for a terminal (light modules as dark cells inverted, so it scans
/// on the usual dark terminal background).
pub fn terminal(payload: &str) -> Result<String, qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

/// How many columns [`terminal`] needs for `payload`.
pub fn width(payload: &str) -> Option<usize> {
    let code = QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M).ok()?;
    Some(code.width() + 8)
}
