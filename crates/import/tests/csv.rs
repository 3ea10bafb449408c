//! CSV seed files: the presets' layouts, delimiter sniffing, BOM, secret encodings, bad rows.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use support::{assert_no_secret, collect, visible};
use tessera_import::csv::{CsvOptions, CsvReader, Preset, SecretEncoding};
use tessera_import::{Kind, Refusal};
use tessera_otp::HashAlgorithm;

fn read(
    text: &str,
    preset: Preset,
    encoding: Option<SecretEncoding>,
) -> (
    Vec<tessera_import::Record>,
    Vec<tessera_import::Skip>,
    Option<Refusal>,
) {
    match CsvReader::new(text.as_bytes(), CsvOptions { preset, encoding }) {
        Ok(r) => collect(r),
        Err(e) => (Vec::new(), Vec::new(), Some(e)),
    }
}

#[test]
fn entra_layout_with_bom_and_semicolons() {
    let file = "\u{feff}upn;serial number;secret key;time interval;manufacturer;model\n\
                user1@acme.org;10001001;JBSWY3DPEHPK3PXP;60;Deepnet Security;SafeID/Classic\n\
                ;0010001002;GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ;30;Token2;C202\n";
    let (r, skips, refusal) = read(file, Preset::Entra, None);
    assert_eq!((refusal, skips.len(), r.len()), (None, 0, 2));
    assert_eq!(r[0].serial.as_deref(), Some("10001001"));
    assert_eq!(r[0].user.as_deref(), Some("user1@acme.org"));
    assert_eq!(
        r[0].kind,
        Kind::Totp {
            period: 60,
            drift: 0
        }
    );
    assert_eq!(r[0].model.as_deref(), Some("SafeID/Classic"));
    assert_eq!(r[0].secret.to_base32(), "JBSWY3DPEHPK3PXP");
    // Leading zeros stay; an empty upn is no user.
    assert_eq!(r[1].serial.as_deref(), Some("0010001002"));
    assert_eq!(r[1].user, None);
    assert_no_secret(&visible(&r, &skips, &None), r[1].secret.as_bytes());
}

#[test]
fn privacyidea_oath_csv_without_header() {
    let file = "# privacyIDEA OATH CSV\n\
                pi1, 3132333435363738393031323334353637383930\n\
                pi2, 3132333435363738393031323334353637383930, totp, 8, 60\n\
                pi3, 3132333435363738393031323334353637383930313233343536373839303132, hotp, 6, 10\n\
                , 31323334\n\
                pi5, 3132, ocra, OCRA-1:HOTP-SHA1-6:QN08\n";
    let (r, skips, refusal) = read(file, Preset::PrivacyIdea, None);
    assert_eq!(refusal, None);
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].kind, Kind::Hotp { counter: 0 });
    assert_eq!(r[0].secret.as_bytes(), b"12345678901234567890");
    assert_eq!(
        (r[1].kind, r[1].digits),
        (
            Kind::Totp {
                period: 60,
                drift: 0
            },
            8
        )
    );
    // The seed's length tells the hash: 32 bytes is SHA-256.
    assert_eq!(
        (r[2].algorithm, r[2].kind),
        (HashAlgorithm::Sha256, Kind::Hotp { counter: 10 })
    );
    let codes: Vec<(&str, &str)> = skips
        .iter()
        .map(|s| (s.locator.as_str(), s.reason.code()))
        .collect();
    assert_eq!(codes, [("line 5", "no_serial"), ("line 6", "ocra")]);
}

#[test]
fn safeid_and_pingid_presets() {
    let (r, _, refusal) = read("SID001,JBSWY3DPEHPK3PXP\n", Preset::SafeId, None);
    assert_eq!(refusal, None);
    assert_eq!(
        r[0].kind,
        Kind::Totp {
            period: 30,
            drift: 0
        }
    );
    let (r, _, _) = read(
        "P1,3132333435363738393031323334353637383930,5\nP2,3132333435363738393031323334353637383930\n",
        Preset::PingId,
        None,
    );
    assert_eq!(r[0].kind, Kind::Hotp { counter: 5 });
    assert_eq!(
        r[1].kind,
        Kind::Totp {
            period: 30,
            drift: 0
        }
    );
}

#[test]
fn auto_encoding_hex_base32_and_ambiguous() {
    let file = "serial,secret\n\
                A,3132333435363738393031323334353637383930\n\
                B,JBSWY3DPEHPK3PXP\n\
                C,2345672345672345672345672345672345672345\n\
                D,not a secret!\n";
    let (r, skips, _) = read(file, Preset::Auto, None);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].secret.as_bytes(), b"12345678901234567890");
    assert_eq!(r[1].secret.to_base32(), "JBSWY3DPEHPK3PXP");
    let codes: Vec<&str> = skips.iter().map(|s| s.reason.code()).collect();
    assert_eq!(codes, ["secret_ambiguous", "secret_invalid"]);
    // Saying which encoding settles the ambiguous row.
    let (r, skips, _) = read(
        "serial,secret\nC,2345672345672345672345672345672345672345\n",
        Preset::Auto,
        Some(SecretEncoding::Base32),
    );
    assert_eq!((r.len(), skips.len()), (1, 0));
}

#[test]
fn header_without_serial_or_secret_refuses() {
    assert_eq!(
        read("name,seed\nx,JBSWY3DPEHPK3PXP\n", Preset::Auto, None).2,
        Some(Refusal::HeaderMissing { column: "serial" })
    );
    assert_eq!(
        read("serial,name\nx,y\n", Preset::Auto, None).2,
        Some(Refusal::HeaderMissing { column: "secret" })
    );
}

#[test]
fn duplicates_and_bad_cells() {
    let file = "serial,secret,type,digits,period\n\
                A,JBSWY3DPEHPK3PXP,totp,6,30\n\
                A,JBSWY3DPEHPK3PXQ,totp,6,30\n\
                B,JBSWY3DPEHPK3PXP,totp,9,30\n\
                C,JBSWY3DPEHPK3PXP,totp,6,0\n\
                D,JBSWY3DPEHPK3PXP,frob,6,30\n";
    let (r, skips, _) = read(file, Preset::Auto, None);
    assert_eq!(r.len(), 1);
    let codes: Vec<&str> = skips.iter().map(|s| s.reason.code()).collect();
    assert_eq!(
        codes,
        [
            "duplicate_serial",
            "digits_unsupported",
            "period_invalid",
            "algorithm_unknown"
        ]
    );
}

#[test]
fn yubico_personalization_log() {
    let file = "LOGGING START,11.12.13 18:55\n\
                OATH-HOTP,11.12.13 18:55,1,cccccccccccc,,3132333435363738393031323334353637383930,,,0,0,0,6,0,0,0,0,0,0\n\
                Yubico OTP,11.12.13 18:56,1,vvccccfiluij,267e04a92d7b,50fa6e6a13c7bbcbe9adb4d9ac84b5cb,,,0,0,0,0,0,0,0,0,0,0\n\
                Static Password: Scan Code,11.12.13 18:57,2,,,,,,0,0,0,0,0,0,0,0,0,0\n";
    let (r, skips, _) = read(file, Preset::Yubico, None);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].serial.as_deref(), Some("cccccccccccc:1"));
    assert_eq!(r[0].secret.as_bytes(), b"12345678901234567890");
    let codes: Vec<&str> = skips.iter().map(|s| s.reason.code()).collect();
    assert_eq!(codes, ["yubico_otp", "static_password"]);
}

#[test]
fn an_overlong_line_is_refused() {
    let file = format!("serial,secret\nA,{}\n", "A".repeat(100_000));
    assert_eq!(
        read(&file, Preset::Auto, None).2.unwrap().code(),
        "file_too_large"
    );
}
