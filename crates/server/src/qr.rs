//! QR codes for Key URIs: SVG for pages and the API, PNG for download, and a compact rendering for
//! the terminal. Drawing is the costly part of showing a token; callers draw once per request.

use data_encoding::BASE64;
use qrcode::render::{svg, unicode};
use qrcode::{EcLevel, QrCode};

#[derive(Debug, thiserror::Error)]
#[error("the text is too long for a QR code")]
pub struct QrError;

fn code(text: &str) -> Result<QrCode, QrError> {
    // Level M: readable from a screen with some glare, still small for ~100-character URIs.
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|_| QrError)
}

/// An SVG image (black on white, quiet zone included), at least `min_px` wide.
pub fn svg(text: &str, min_px: u32) -> Result<String, QrError> {
    Ok(code(text)?
        .render::<svg::Color<'_>>()
        .min_dimensions(min_px, min_px)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

/// A PNG image, at least `min_px` wide.
pub fn png(text: &str, min_px: u32) -> Result<Vec<u8>, QrError> {
    let img = code(text)?
        .render::<image::Luma<u8>>()
        .min_dimensions(min_px, min_px)
        .build();
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|_| QrError)?;
    Ok(out.into_inner())
}

/// A PNG image as Base64, for JSON.
pub fn png_base64(text: &str, min_px: u32) -> Result<String, QrError> {
    Ok(BASE64.encode(&png(text, min_px)?))
}

/// Half-block characters for a terminal (two modules per character cell).
pub fn terminal(text: &str) -> Result<String, QrError> {
    Ok(code(text)?
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .build())
}
