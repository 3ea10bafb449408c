//! Google Authenticator exports and QR images: the published vectors, the sample images in
//! ../shared/fixtures/imports, multi-part batches in any order, and images that are not images.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use std::path::PathBuf;

use support::{assert_no_secret, collect, visible};
use tessera_import::migration::{Collector, export_uris};
use tessera_import::qr::QrImages;
use tessera_import::uri::UriListReader;
use tessera_import::{Item, Kind, Record, SkipReason};
use tessera_otp::{HashAlgorithm, Totp};

fn records(items: Vec<Item>) -> (Vec<Record>, Vec<tessera_import::Skip>) {
    let (r, s, e) = collect(items.into_iter().map(Ok));
    assert_eq!(e, None);
    (r, s)
}

#[test]
fn dim13_vector_with_unspecified_enums() {
    // dim13/otpauth migration/convert_test.go: algorithm, digits, version and batch all 0.
    let mut c = Collector::default();
    c.add("otpauth-migration://offline?data=CjEKCkhlbGxvId6tvu8SGEV4YW1wbGU6YWxpY2VAZ29vZ2xlLmNvbRoHRXhhbXBsZTAC", "line 1").unwrap();
    let (r, _) = records(c.finish());
    assert_eq!(r[0].issuer.as_deref(), Some("Example"));
    assert_eq!(r[0].account.as_deref(), Some("alice@google.com"));
    assert_eq!(r[0].secret.to_base32(), "JBSWY3DPEHPK3PXP");
    assert_eq!((r[0].algorithm, r[0].digits), (HashAlgorithm::Sha1, 6));
    assert_eq!(
        r[0].kind,
        Kind::Totp {
            period: 30,
            drift: 0
        }
    );
    // dim13 evaluate_test.go: 528064 at 2009-11-10T23:00:00Z.
    assert_eq!(
        Totp::default().generate(&r[0].secret, 1_257_894_000),
        "528064"
    );
    assert!(r[0].warnings.iter().any(|w| w.code() == "weak_secret"));
}

#[test]
fn plus_and_space_in_data_decode_alike() {
    let rec = |issuer: &str, n: u8| {
        let mut r = tessera_import::uri::record_from_uri(
            tessera_otp::KeyUri::parse("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP").unwrap(),
            String::new(),
        );
        r.issuer = Some(issuer.into());
        r.account = Some(format!("user{n}"));
        r.secret = tessera_otp::Secret::from_bytes(vec![0xfb; 20 + usize::from(n)]).unwrap();
        r
    };
    let (links, _) = export_uris(&[rec("A", 1), rec("B", 2)], 10, 5);
    let raw = links[0]
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    assert!(raw.contains('+'));
    for form in [raw.clone(), raw.replace('+', " ")] {
        let mut c = Collector::default();
        c.add(&form, "line 1").unwrap();
        let (r, _) = records(c.finish());
        assert_eq!(r[1].secret.as_bytes(), &[0xfb; 22][..]);
    }
}

#[test]
fn three_part_batch_in_any_order_and_incomplete() {
    let recs: Vec<Record> = (0..25)
        .map(|n| {
            let mut r = tessera_import::uri::record_from_uri(
                tessera_otp::KeyUri::parse(&format!(
                    "otpauth://totp/Acme:user{n}?secret=JBSWY3DPEHPK3PX{}&issuer=Acme",
                    ["A", "B", "C", "D"][n % 4]
                ))
                .unwrap(),
                String::new(),
            );
            if n == 3 {
                r.kind = Kind::Hotp { counter: 4 };
            }
            r
        })
        .collect();
    let (links, written) = export_uris(&recs, 10, -1_320_898_453);
    assert_eq!((links.len(), written), (3, 25));
    let mut c = Collector::default();
    for i in [2, 0, 1] {
        c.add(&links[i], &format!("QR image {i}")).unwrap();
    }
    let (r, skips) = records(c.finish());
    assert_eq!((r.len(), skips.len()), (25, 0));
    assert_eq!(r[3].kind, Kind::Hotp { counter: 4 });
    assert_eq!(r[24].account.as_deref(), Some("user24"));
    // Two parts of three: nothing is imported, each entry says what is missing.
    let mut c = Collector::default();
    c.add(&links[0], "a").unwrap();
    c.add(&links[2], "c").unwrap();
    assert_eq!(c.progress()[0].received, 2);
    let (r, skips) = records(c.finish());
    assert!(r.is_empty());
    assert_eq!(
        skips[0].reason,
        SkipReason::BatchIncomplete {
            received: 2,
            total: 3
        }
    );
    assert_eq!(skips[0].locator, "a, QR 1/3 entry 1");
    assert!(
        skips[0]
            .reason
            .message(tessera_import::Lang::En)
            .contains("2 of 3")
    );
}

#[test]
fn broken_export_links_are_skipped() {
    let mut c = Collector::default();
    for bad in [
        "otpauth-migration://offline?data=XXXX",
        "otpauth-migration://offline",
        "otpauth-migration://offline?data=TG9yZW0gaXBzdW0gZG9sb3Igc2l0IGFtZXQ=",
    ] {
        assert_eq!(
            c.add(bad, "line 1").unwrap_err().reason.code(),
            "entry_invalid"
        );
    }
}

#[test]
fn uri_list_lines_and_comments() {
    let list = "# exported\n\n\
        otpauth://totp/Acme:alice?secret=k2qxvvk7z3xmqcym&issuer=Acme\n\
        otpauth://hotp/bob?secret=JBSWY3DPEHPK3PXP&counter=7\n\
        otpauth://totp/broken?secret=JBSWY3DPEHPK3PX1\n\
        otpauth-migration://offline?data=CjEKCkhlbGxvId6tvu8SGEV4YW1wbGU6YWxpY2VAZ29vZ2xlLmNvbRoHRXhhbXBsZTAC\n";
    let (r, skips, e) = collect(UriListReader::new(list.as_bytes()));
    assert_eq!(e, None);
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].secret.to_base32(), "K2QXVVK7Z3XMQCYM");
    assert_eq!(r[1].kind, Kind::Hotp { counter: 7 });
    assert_eq!(r[2].locator, "line 6, QR 1/1 entry 1");
    assert_eq!(skips[0].locator, "line 5");
    let seen = visible(&r, &skips, &None);
    for rec in &r {
        assert_no_secret(&seen, rec.secret.as_bytes());
    }
    assert!(!seen.contains("JBSWY3DPEHPK3PX1"));
}

fn fixture(path: &str) -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/imports")
        .join(path);
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(_) => {
            eprintln!("skipped: fixture {} is absent", p.display());
            None
        }
    }
}

#[test]
fn fixture_images() {
    let names = [
        "dim13/example.png",
        "keyroost/migration.png",
        "keyroost/enroll.png",
        "keyroost/enroll.jpg",
    ];
    let mut images = QrImages::default();
    for name in names {
        let Some(bytes) = fixture(name) else { return };
        images.add(name, &bytes).unwrap();
    }
    let (r, skips) = records(images.finish());
    assert!(skips.is_empty());
    assert_eq!(r.len(), 4);
    // dim13's image is an ordinary enrollment code; its code at 2009-11-10T23:00:00Z is known.
    assert_eq!(r[0].account.as_deref(), Some("alice@google.com"));
    assert_eq!(
        Totp::default().generate(&r[0].secret, 1_257_894_000),
        "528064"
    );
    for enroll in &r[1..3] {
        assert_eq!(
            (enroll.issuer.as_deref(), enroll.account.as_deref()),
            (Some("Acme"), Some("alice"))
        );
        assert_eq!(enroll.secret.to_base32(), "JBSWY3DPEHPK3PXP");
    }
    // keyroost's export: batch id 0, Acme:alice, secret "0123456789" (80 bits).
    let m = &r[3];
    assert_eq!(m.secret.as_bytes(), b"0123456789");
    assert_eq!(
        (m.issuer.as_deref(), m.account.as_deref()),
        (Some("Acme"), Some("alice"))
    );
    assert_eq!(m.locator, "keyroost/migration.png, QR 1/1 entry 1");
}

#[test]
fn not_images_and_huge_images_are_refused() {
    let mut images = QrImages::default();
    assert_eq!(
        images
            .add("text.png", b"this is text named .png")
            .unwrap_err()
            .code(),
        "image_format"
    );
    let Some(png) = fixture("keyroost/enroll.png") else {
        return;
    };
    assert_eq!(
        images
            .add("cut.png", &png[..png.len() / 2])
            .unwrap_err()
            .code(),
        "image_invalid"
    );
    // A PNG header claiming 100,000 x 100,000 pixels is refused before decoding.
    let mut huge = png[..33].to_vec();
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&huge[12..29]);
    huge[29..33].copy_from_slice(&crc.to_be_bytes());
    huge.extend_from_slice(&png[33..]);
    assert_eq!(
        images.add("huge.png", &huge).unwrap_err().code(),
        "image_too_large"
    );
    // An image without a QR code is a skip, not an error.
    let blank = blank_png();
    images.add("blank.png", &blank).unwrap();
    let (_, skips) = records(images.finish());
    assert_eq!(skips[0].reason, SkipReason::QrNone);
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn blank_png() -> Vec<u8> {
    let img = image::GrayImage::from_pixel(64, 64, image::Luma([255u8]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}
