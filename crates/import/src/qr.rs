//! QR images (PNG and JPEG, e.g. screenshots of an authenticator's export screen or of an
//! enrollment page): [`decode_image`] gives the texts of the QR codes in an image, and
//! [`QrImages`] turns a set of images into records: `otpauth://` codes directly,
//! `otpauth-migration://` codes through the export [`Collector`] (parts in any order, across
//! images).
//!
//! Only PNG and JPEG are read, recognised by their first bytes whatever the file is called;
//! dimensions and decoder memory are bounded before any pixel is decoded.

use std::io::Cursor;

use tessera_otp::KeyUri;

use crate::migration::{self, BatchProgress, Collector};
use crate::uri::{record_from_uri, uri_problem};
use crate::{Item, Refusal, Skip, SkipReason};

/// Widest and tallest image accepted: a phone screenshot is about 1,300 × 2,800.
pub const MAX_SIDE: u32 = 6000;
/// Memory the image decoder may allocate.
const MAX_ALLOC: u64 = 128 * 1024 * 1024;
/// Largest image file accepted.
pub const MAX_FILE: usize = 20 * 1024 * 1024;

/// The texts of every QR code found in a PNG or JPEG image (empty if none was found).
pub fn decode_image(bytes: &[u8]) -> Result<Vec<String>, Refusal> {
    if bytes.len() > MAX_FILE {
        return Err(Refusal::ImageTooLarge);
    }
    let format = if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        image::ImageFormat::Png
    } else if bytes.starts_with(b"\xFF\xD8\xFF") {
        image::ImageFormat::Jpeg
    } else {
        return Err(Refusal::ImageFormat);
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    let mut reader = image::ImageReader::new(Cursor::new(bytes));
    reader.set_format(format);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => Refusal::ImageTooLarge,
        _ => Refusal::ImageInvalid,
    })?;
    let grey = img.to_luma8();
    let (w, h) = (grey.width() as usize, grey.height() as usize);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        grey.get_pixel(x as u32, y as u32).0[0]
    });
    let mut texts = Vec::new();
    for grid in prepared.detect_grids() {
        if let Ok((_, text)) = grid.decode() {
            texts.push(text);
        }
    }
    Ok(texts)
}

/// Reads a set of images (see the module notes). Add images with [`QrImages::add`], then take
/// the items with [`QrImages::finish`].
#[derive(Debug, Default)]
pub struct QrImages {
    items: Vec<Item>,
    migration: Collector,
}

impl QrImages {
    /// Reads one image; `name` is how the report names it (a file name). A file that is not a
    /// PNG or JPEG, or too large, is refused: the caller decides whether that stops everything.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), Refusal> {
        let texts = decode_image(bytes)?;
        if texts.is_empty() {
            self.items
                .push(Item::Skip(Skip::new(name, SkipReason::QrNone)));
        }
        let many = texts.len() > 1;
        for (n, text) in texts.iter().enumerate() {
            let locator = if many {
                format!("{name} code {}", n + 1)
            } else {
                name.to_owned()
            };
            self.add_text(text, &locator);
        }
        Ok(())
    }

    /// Adds the text of one QR code decoded elsewhere.
    pub fn add_text(&mut self, text: &str, locator: &str) {
        let text = text.trim();
        if migration::is_migration(text) {
            if let Err(skip) = self.migration.add(text, locator) {
                self.items.push(Item::Skip(skip));
            }
        } else if text
            .get(..10)
            .is_some_and(|p| p.eq_ignore_ascii_case("otpauth://"))
        {
            self.items.push(match KeyUri::parse(text) {
                Ok(uri) => Item::Record(Box::new(record_from_uri(uri, locator.to_owned()))),
                Err(e) => Item::Skip(Skip::new(
                    locator,
                    SkipReason::UriInvalid {
                        problem: uri_problem(&e),
                    },
                )),
            });
        } else {
            self.items
                .push(Item::Skip(Skip::new(locator, SkipReason::QrNotOtp)));
        }
    }

    /// How complete each Google Authenticator export is so far.
    pub fn progress(&self) -> Vec<BatchProgress> {
        self.migration.progress()
    }

    /// Everything read: enrollment codes in order, then export entries.
    pub fn finish(self) -> Vec<Item> {
        let mut items = self.items;
        items.extend(self.migration.finish());
        items
    }
}
