//! The PSKC reader against the RFC 6030 figures (retyped in tests/data), files written by our
//! writer with known secrets, and hostile or broken files.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod support;

use data_encoding::{BASE64, HEXLOWER};
use support::{assert_no_secret, collect, visible};
use tessera_import::pskc::{ExportProtection, Protection, PskcOptions, PskcReader, PskcWriter};
use tessera_import::{Kind, Record, Refusal, SkipReason};
use tessera_otp::{HashAlgorithm, Hotp, Secret};
use zeroize::Zeroizing;

const FIG6: &str = include_str!("data/rfc6030-figure6.pskcxml");
const FIG7: &str = include_str!("data/rfc6030-figure7.pskcxml");
const FIG3: &str = include_str!("data/rfc6030-figure3.pskcxml");
const RFC_SECRET: &[u8] = b"12345678901234567890";

fn key(hex: &str) -> Protection {
    Protection::Key(Zeroizing::new(HEXLOWER.decode(hex.as_bytes()).unwrap()))
}

fn password(p: &str) -> Protection {
    Protection::Password(Zeroizing::new(p.to_owned()))
}

fn read(
    xml: &str,
    protection: Protection,
) -> (Vec<Record>, Vec<tessera_import::Skip>, Option<Refusal>) {
    let out = collect(PskcReader::new(
        xml.as_bytes(),
        PskcOptions {
            protection,
            allow_unauthenticated: false,
        },
    ));
    assert_no_secret(&visible(&out.0, &out.1, &out.2), RFC_SECRET);
    out
}

fn read_plain(xml: &str) -> (Vec<Record>, Vec<tessera_import::Skip>, Option<Refusal>) {
    collect(PskcReader::new(
        xml.as_bytes(),
        PskcOptions {
            protection: Protection::None,
            allow_unauthenticated: true,
        },
    ))
}

#[test]
fn rfc6030_figure6_pre_shared_key() {
    let (records, skips, refusal) = read(FIG6, key("12345678901234567890123456789012"));
    assert_eq!(refusal, None);
    assert!(skips.is_empty());
    let r = &records[0];
    assert_eq!(r.secret.as_bytes(), RFC_SECRET);
    assert_eq!(r.serial.as_deref(), Some("987654321"));
    assert_eq!(r.manufacturer.as_deref(), Some("Manufacturer"));
    assert_eq!(r.issuer.as_deref(), Some("Issuer"));
    assert_eq!(r.digits, 8);
    assert_eq!(r.kind, Kind::Hotp { counter: 0 });
    assert_eq!(r.algorithm, HashAlgorithm::Sha1);
    // RFC 4226 Appendix D with 8 digits: counter 0 gives 84755224.
    assert_eq!(
        Hotp::new(r.algorithm, r.digits)
            .unwrap()
            .generate(&r.secret, 0),
        "84755224"
    );
}

#[test]
fn rfc6030_figure7_password() {
    let (records, _, refusal) = read(FIG7, password("qwerty"));
    assert_eq!(refusal, None);
    assert_eq!(records[0].secret.as_bytes(), RFC_SECRET);
    assert_eq!(records[0].manufacturer.as_deref(), Some("TokenVendorAcme"));
    assert_eq!(records[0].issuer.as_deref(), Some("Example-Issuer"));
}

#[test]
fn wrong_key_and_wrong_password_get_one_answer() {
    let (records, _, refusal) = read(FIG6, key("12345678901234567890123456789013"));
    assert!(records.is_empty());
    assert_eq!(refusal, Some(Refusal::WrongKeyOrMac));
    let (records, _, refusal) = read(FIG7, password("qwertz"));
    assert!(records.is_empty());
    assert_eq!(refusal, Some(Refusal::WrongKeyOrMac));
}

#[test]
fn tampered_mac_refuses_the_file() {
    let tampered = FIG6.replace(
        "Su+NvtQfmvfJzF6bmQiJqoLRExc=",
        "Su+NvtQfmvfJzF6bmQiJqoLRExd=",
    );
    let (records, _, refusal) = read(&tampered, key("12345678901234567890123456789012"));
    assert!(records.is_empty());
    assert_eq!(refusal.unwrap().code(), "wrong_key_or_mac");
    // A changed ciphertext (same MAC) is caught by the MAC too.
    let changed = FIG6.replace("AAECAwQFBgcICQoLDA0OD+cI", "AAECAwQFBgcICQoLDA0OD+cJ");
    let (_, _, refusal) = read(&changed, key("12345678901234567890123456789012"));
    assert_eq!(refusal, Some(Refusal::WrongKeyOrMac));
}

#[test]
fn missing_mac_refuses_the_file() {
    let start = FIG6.find("<ValueMAC>").unwrap();
    let end = FIG6.find("</ValueMAC>").unwrap() + "</ValueMAC>".len();
    let no_value_mac = format!("{}{}", &FIG6[..start], &FIG6[end..]);
    let (records, _, refusal) = read(&no_value_mac, key("12345678901234567890123456789012"));
    assert!(records.is_empty());
    assert_eq!(refusal, Some(Refusal::MacMissing));
    let start = FIG6.find("<MACMethod").unwrap();
    let end = FIG6.find("</MACMethod>").unwrap() + "</MACMethod>".len();
    let no_method = format!("{}{}", &FIG6[..start], &FIG6[end..]);
    let (_, _, refusal) = read(&no_method, key("12345678901234567890123456789012"));
    assert_eq!(refusal, Some(Refusal::MacMissing));
}

#[test]
fn missing_key_or_password_is_asked_for_by_name() {
    let (_, _, refusal) = read(FIG6, Protection::None);
    assert_eq!(
        refusal,
        Some(Refusal::KeyRequired {
            name: "Pre-shared-key".into()
        })
    );
    let (_, _, refusal) = read(FIG7, Protection::None);
    assert_eq!(
        refusal,
        Some(Refusal::PasswordRequired {
            name: "My Password 1".into()
        })
    );
    // A key where a password is needed is still "give the password".
    let (_, _, refusal) = read(FIG7, key("12345678901234567890123456789012"));
    assert_eq!(refusal.unwrap().code(), "password_required");
}

#[test]
fn plaintext_file_needs_permission_and_warns() {
    let (records, _, refusal) = read(FIG3, Protection::None);
    assert!(records.is_empty());
    assert_eq!(refusal, Some(Refusal::Unauthenticated));
    let (records, _, refusal) = read_plain(FIG3);
    assert_eq!(refusal, None);
    let r = &records[0];
    assert_eq!(r.secret.as_bytes(), RFC_SECRET);
    assert_eq!(r.user.as_deref(), Some("UID=jsmith,DC=example-bank,DC=net"));
    assert!(r.warnings.iter().any(|w| w.code() == "unauthenticated"));
}

#[test]
fn doctype_and_entities_are_refused() {
    let xxe = r#"<?xml version="1.0"?>
<!DOCTYPE KeyContainer [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">
<KeyPackage><DeviceInfo><SerialNo>&xxe;</SerialNo></DeviceInfo></KeyPackage></KeyContainer>"#;
    let (records, _, refusal) = read_plain(xxe);
    assert!(records.is_empty());
    assert_eq!(refusal, Some(Refusal::Doctype));
    // An undefined entity without a DOCTYPE is malformed, not expanded.
    let undefined = FIG3.replace("987654321", "&xxe;");
    let (records, _, refusal) = read_plain(&undefined);
    assert!(records.is_empty());
    assert_eq!(refusal.unwrap().code(), "file_malformed");
}

#[test]
fn truncated_and_non_xml_files_are_refused() {
    let cut = &FIG6[..FIG6.len() / 2];
    let (records, _, refusal) = read(cut, key("12345678901234567890123456789012"));
    assert!(records.is_empty());
    assert!(matches!(
        refusal,
        Some(Refusal::Truncated | Refusal::Malformed { .. })
    ));
    let (_, _, refusal) = read_plain("serial,secret\n1,JBSWY3DPEHPK3PXP\n");
    assert_eq!(refusal.unwrap().code(), "file_malformed");
    let (_, _, refusal) = read_plain("");
    assert_eq!(refusal.unwrap().code(), "file_malformed");
    let (_, _, refusal) = read_plain("<html><body>hi</body></html>");
    assert_eq!(refusal.unwrap().code(), "file_malformed");
}

#[test]
fn huge_text_node_is_refused_without_buffering_it() {
    let mut xml = String::from("<KeyContainer Version=\"1.0\"><KeyPackage><DeviceInfo><SerialNo>");
    xml.push_str(&"9".repeat(200_000));
    xml.push_str("</SerialNo></DeviceInfo></KeyPackage></KeyContainer>");
    let (_, _, refusal) = read_plain(&xml);
    assert_eq!(refusal.unwrap().code(), "file_too_large");
}

/// A plaintext package with a given key element body.
fn package(serial: &str, key: &str) -> String {
    format!("<KeyPackage><DeviceInfo><SerialNo>{serial}</SerialNo></DeviceInfo>{key}</KeyPackage>")
}

fn container(packages: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<KeyContainer Version=\"1.0\" xmlns=\"urn:ietf:params:xml:ns:keyprov:pskc\">{}</KeyContainer>",
        packages.concat()
    )
}

const SECRET_B64: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA="; // "12345678901234567890"

fn key_element(algorithm_attr: &str, params: &str, data: &str) -> String {
    format!(
        "<Key Id=\"k\" {algorithm_attr}><AlgorithmParameters>{params}</AlgorithmParameters><Data><Secret><PlainValue>{SECRET_B64}</PlainValue></Secret>{data}</Data></Key>"
    )
}

#[test]
fn duplicate_serial_in_a_file_is_skipped() {
    let k = key_element(
        "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\"",
        "",
        "",
    );
    let xml = container(&[
        package("9999999", &k),
        package("654321", &k),
        package("9999999", &k),
    ]);
    let (records, skips, refusal) = read_plain(&xml);
    assert_eq!(refusal, None);
    assert_eq!(records.len(), 2);
    assert_eq!(skips.len(), 1);
    assert_eq!(skips[0].reason, SkipReason::DuplicateSerial);
    assert_eq!(skips[0].locator, "KeyPackage #3 serial=9999999");
}

#[test]
fn algorithm_spellings_of_vendor_files() {
    let cases = [
        (
            "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\"",
            "hotp",
        ),
        (
            "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:totp\"",
            "totp",
        ),
        (
            "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc#totp\"",
            "totp",
        ),
        (
            "Algorithm=\"http://www.ietf.org/keyprov/pskc#hotp\"",
            "hotp",
        ),
        (
            "KeyAlgorithm=\"urn:ietf:params:xml:ns:keyprov:pskc#hotp\"",
            "hotp",
        ),
        ("Algorithm=\"HOTP\"", "hotp"),
    ];
    let packages: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, (attr, _))| package(&format!("S{i}"), &key_element(attr, "", "")))
        .collect();
    let (records, skips, refusal) = read_plain(&container(&packages));
    assert_eq!((refusal, skips.len()), (None, 0));
    for (r, (_, kind)) in records.iter().zip(cases) {
        assert_eq!(
            matches!(r.kind, Kind::Hotp { .. }),
            kind == "hotp",
            "{:?}",
            r.serial
        );
    }
}

#[test]
fn unsupported_key_types_are_skipped_with_reasons() {
    let packages = [
        package(
            "O1",
            &key_element(
                "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:ocra\"",
                "",
                "",
            ),
        ),
        package(
            "P1",
            &key_element(
                "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:pin\"",
                "",
                "",
            ),
        ),
        package(
            "Y1",
            &key_element("Algorithm=\"http://www.yubico.com/#yubikey-aes\"", "", ""),
        ),
        package(
            "U1",
            &key_element("Algorithm=\"urn:example:securid\"", "", ""),
        ),
        package(
            "C1",
            &key_element(
                "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\"",
                "<ResponseFormat Length=\"6\" Encoding=\"DECIMAL\" CheckDigits=\"true\"/>",
                "",
            ),
        ),
        package(
            "D1",
            &key_element(
                "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\"",
                "<ResponseFormat Length=\"10\" Encoding=\"DECIMAL\"/>",
                "",
            ),
        ),
        package(
            "H1",
            &key_element(
                "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\"",
                "<ResponseFormat Length=\"6\" Encoding=\"HEXADECIMAL\"/>",
                "",
            ),
        ),
        package(
            "T1",
            &key_element(
                "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:totp\"",
                "",
                "<Time><PlainValue>42</PlainValue></Time>",
            ),
        ),
        package(
            "M1",
            &key_element(
                "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\"",
                "<Suite>HMAC-SHA384</Suite>",
                "",
            ),
        ),
    ];
    let (records, skips, refusal) = read_plain(&container(&packages));
    assert_eq!(refusal, None);
    assert!(records.is_empty());
    let codes: Vec<&str> = skips.iter().map(|s| s.reason.code()).collect();
    assert_eq!(
        codes,
        [
            "ocra",
            "pin_key",
            "yubico_otp",
            "algorithm_unknown",
            "check_digits",
            "digits_unsupported",
            "not_decimal",
            "time_nonzero",
            "hash_unsupported"
        ]
    );
}

#[test]
fn suite_hash_spellings_and_time_drift() {
    let totp = "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:totp\"";
    let packages = [
        package("A", &key_element(totp, "<Suite>HMAC-SHA256</Suite>", "")),
        package("B", &key_element(totp, "<Suite>sha256</Suite>", "")),
        package("C", &key_element(totp, "<Suite>sha-512</Suite>", "")),
        package("D", &key_element(totp, "<Suite hashalgo=\"sha256\"/>", "")),
        package(
            "E",
            &key_element(
                totp,
                "",
                "<TimeInterval><PlainValue>30</PlainValue></TimeInterval><TimeDrift><PlainValue>4</PlainValue></TimeDrift>",
            ),
        ),
        package(
            "F",
            &key_element(
                totp,
                "",
                "<TimeInterval><PlainValue>60</PlainValue></TimeInterval>",
            ),
        ),
    ];
    let (r, skips, refusal) = read_plain(&container(&packages));
    assert_eq!((refusal, skips.len()), (None, 0));
    let algs: Vec<HashAlgorithm> = r.iter().map(|r| r.algorithm).collect();
    use HashAlgorithm::*;
    assert_eq!(algs, [Sha256, Sha256, Sha512, Sha256, Sha1, Sha1]);
    // TimeDrift counts steps (RFC 6030 §4.1), not seconds.
    assert_eq!(
        r[4].kind,
        Kind::Totp {
            period: 30,
            drift: 4
        }
    );
    assert_eq!(
        r[5].kind,
        Kind::Totp {
            period: 60,
            drift: 0
        }
    );
}

#[test]
fn integer_encodings() {
    let hotp = "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\"";
    let counter = |v: &str| format!("<Counter><PlainValue>{v}</PlainValue></Counter>");
    let big_endian = BASE64.encode(&405_834u32.to_be_bytes()[1..]);
    let packages = [
        package("A", &key_element(hotp, "", &counter("831791"))),
        package(
            "B",
            &key_element(hotp, "", &counter(&BASE64.encode(b"709791"))),
        ),
        package("C", &key_element(hotp, "", &counter(&big_endian))),
        package("D", &key_element(hotp, "", &counter("-5"))),
    ];
    let (r, skips, _) = read_plain(&container(&packages));
    let counters: Vec<Kind> = r.iter().map(|r| r.kind).collect();
    assert_eq!(
        counters,
        [
            Kind::Hotp { counter: 831_791 },
            Kind::Hotp { counter: 709_791 },
            Kind::Hotp { counter: 405_834 }
        ]
    );
    assert_eq!(skips[0].reason.code(), "integer_invalid");
}

#[test]
fn policy_rules() {
    let hotp = "Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\"";
    let with_policy = |policy: &str| {
        format!(
            "<Key Id=\"k\" {hotp}><Data><Secret><PlainValue>{SECRET_B64}</PlainValue></Secret></Data><Policy>{policy}</Policy></Key>"
        )
    };
    let packages = [
        package(
            "A",
            &with_policy(
                "<StartDate>2006-05-01T00:00:00Z</StartDate><ExpiryDate>2006-05-31T00:00:00Z</ExpiryDate><KeyUsage>OTP</KeyUsage>",
            ),
        ),
        package("B", &with_policy("<Frobnicate>1</Frobnicate>")),
        package("C", &with_policy("<PINPolicy MinLength=\"4\"/>")),
        package("D", &with_policy("<KeyUsage>Encrypt</KeyUsage>")),
    ];
    let (r, skips, _) = read_plain(&container(&packages));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].not_before, Some(1_146_441_600));
    assert_eq!(r[0].not_after, Some(1_149_033_600));
    let codes: Vec<&str> = skips.iter().map(|s| s.reason.code()).collect();
    assert_eq!(
        codes,
        ["policy_unknown", "policy_unsupported", "key_usage_not_otp"]
    );
}

#[test]
fn key_wrap_rfc3394_secret() {
    // RFC 3394 §4.1: KEK 000102…0f wraps 00112233…ff; key wrap needs no ValueMAC.
    let xml = format!(
        "<KeyContainer Version=\"1.0\"><EncryptionKey><KeyName>PSK</KeyName></EncryptionKey>{}</KeyContainer>",
        package(
            "KW1",
            &format!(
                "<Key Id=\"1\" Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:hotp\"><Data><Secret><EncryptedValue><EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#kw-aes128\"/><CipherData><CipherValue>{}</CipherValue></CipherData></EncryptedValue></Secret></Data></Key>",
                BASE64.encode(
                    &HEXLOWER
                        .decode(b"1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5")
                        .unwrap()
                )
            )
        )
    );
    let (r, _, refusal) = read(&xml, key("000102030405060708090a0b0c0d0e0f"));
    assert_eq!(refusal, None);
    assert_eq!(
        HEXLOWER.encode(r[0].secret.as_bytes()),
        "00112233445566778899aabbccddeeff"
    );
    let (r, _, refusal) = read(&xml, key("000102030405060708090a0b0c0d0e0e"));
    assert!(r.is_empty());
    assert_eq!(refusal, Some(Refusal::WrongKeyOrMac));
}

#[test]
fn asymmetric_and_runaway_kdf_are_refused() {
    let x509 = "<KeyContainer Version=\"1.0\"><EncryptionKey><X509Data><X509Certificate>MIIB</X509Certificate></X509Data></EncryptionKey><KeyPackage/></KeyContainer>";
    assert_eq!(read(x509, Protection::None).2, Some(Refusal::Asymmetric));
    let runaway = FIG7.replace("<IterationCount>1000<", "<IterationCount>4000000000<");
    assert_eq!(
        read(&runaway, password("qwerty")).2.unwrap().code(),
        "kdf_invalid"
    );
    let version = FIG6.replace("Version=\"1.0\"", "Version=\"2.0\"");
    assert_eq!(
        read(&version, Protection::None).2.unwrap().code(),
        "pskc_version"
    );
}

/// Records with known secrets: HOTP and TOTP, every hash, digits 6 to 8.
fn vectors(n: usize) -> Vec<Record> {
    let base = tessera_import::uri::record_from_uri(
        tessera_otp::KeyUri::parse("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP").unwrap(),
        String::new(),
    );
    (0..n)
        .map(|i| {
            let mut r = base.clone();
            r.serial = Some(format!("{i:08}"));
            r.secret = Secret::from_bytes(format!("seed-{i:015}-x").into_bytes()).unwrap();
            r.kind = if i % 2 == 0 {
                Kind::Hotp {
                    counter: i as u64 * 7,
                }
            } else {
                Kind::Totp {
                    period: if i % 3 == 0 { 60 } else { 30 },
                    drift: (i % 5) as i64 - 2,
                }
            };
            r.algorithm = [
                HashAlgorithm::Sha1,
                HashAlgorithm::Sha256,
                HashAlgorithm::Sha512,
            ][i % 3];
            r.digits = 6 + (i % 3) as u32;
            r.manufacturer = Some("Acme & Söhne <GmbH>".into());
            r.model = Some("c200".into());
            r
        })
        .collect()
}

fn counter_random() -> tessera_import::pskc::Random {
    let mut n = 0u8;
    Box::new(move |buf: &mut [u8]| {
        for b in buf {
            n = n.wrapping_add(37);
            *b = n;
        }
        Ok(())
    })
}

fn write(records: &[Record], protection: ExportProtection) -> Vec<u8> {
    let mut w = PskcWriter::new(Vec::new(), protection, counter_random()).unwrap();
    for r in records {
        w.write(r).unwrap();
    }
    w.finish().unwrap()
}

#[test]
fn writer_round_trip_password_and_key() {
    let records = vectors(300);
    for (protection, read_with) in [
        (
            ExportProtection::Password {
                password: Zeroizing::new("correct horse".into()),
                iterations: 1000,
            },
            password("correct horse"),
        ),
        (
            ExportProtection::Key(Zeroizing::new(vec![9u8; 32])),
            Protection::Key(Zeroizing::new(vec![9u8; 32])),
        ),
        (
            ExportProtection::Key(Zeroizing::new(vec![5u8; 16])),
            Protection::Key(Zeroizing::new(vec![5u8; 16])),
        ),
    ] {
        let file = write(&records, protection);
        let text = String::from_utf8(file.clone()).unwrap();
        for r in &records {
            assert_no_secret(&text, r.secret.as_bytes());
        }
        let (back, skips, refusal) = collect(PskcReader::new(
            &file[..],
            PskcOptions {
                protection: read_with,
                allow_unauthenticated: false,
            },
        ));
        assert_eq!((refusal, skips.len(), back.len()), (None, 0, records.len()));
        for (a, b) in records.iter().zip(&back) {
            assert_eq!(a.serial, b.serial);
            assert_eq!(a.secret, b.secret);
            assert_eq!(a.kind, b.kind);
            assert_eq!(a.algorithm, b.algorithm);
            assert_eq!(a.digits, b.digits);
            assert_eq!(a.manufacturer, b.manufacturer);
            assert_eq!(a.model, b.model);
        }
    }
}

#[test]
fn written_file_with_a_changed_byte_is_refused() {
    let file = write(
        &vectors(3),
        ExportProtection::Password {
            password: Zeroizing::new("pw".into()),
            iterations: 10,
        },
    );
    let text = String::from_utf8(file).unwrap();
    // Change one character of the second key's secret ciphertext.
    let at = text
        .match_indices("<Secret><EncryptedValue>")
        .nth(1)
        .unwrap()
        .0;
    let cv = at + text[at..].find("<xenc:CipherValue>").unwrap() + "<xenc:CipherValue>".len() + 30;
    let mut bytes = text.into_bytes();
    bytes[cv] = if bytes[cv] == b'A' { b'B' } else { b'A' };
    let (records, _, refusal) = collect(PskcReader::new(
        &bytes[..],
        PskcOptions {
            protection: password("pw"),
            allow_unauthenticated: false,
        },
    ));
    // The first key came out before the bad one was met: the caller must discard the import.
    assert!(records.len() <= 1);
    assert_eq!(refusal, Some(Refusal::WrongKeyOrMac));
}

#[test]
fn many_keys_stream_through() {
    let records = vectors(20_000);
    let file = write(
        &records,
        ExportProtection::Key(Zeroizing::new(vec![1u8; 32])),
    );
    let reader = PskcReader::new(
        &file[..],
        PskcOptions {
            protection: Protection::Key(Zeroizing::new(vec![1u8; 32])),
            allow_unauthenticated: false,
        },
    );
    let mut count = 0;
    for item in reader {
        assert!(matches!(item, Ok(tessera_import::Item::Record(_))));
        count += 1;
    }
    assert_eq!(count, 20_000);
}
