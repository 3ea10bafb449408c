//! Key URIs: parsing what apps and other servers produce, round trips through `to_uri`, and the
//! exact error for each malformed URI.

use proptest::prelude::*;
use tessera_otp::{HashAlgorithm, KeyUri, OtpError, Secret, UriKind};

/// The example from Google Authenticator's Key URI format documentation.
const ACME: &str = "otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30";
const ACME_SECRET: &str = "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ";

fn acme_secret() -> Secret {
    Secret::from_base32(ACME_SECRET).expect("the example secret is valid base32")
}

fn invalid_uri(uri: &str) -> String {
    match KeyUri::parse(uri) {
        Err(OtpError::InvalidUri(message)) => message,
        other => panic!("expected InvalidUri for {uri}, got {other:?}"),
    }
}

#[test]
fn parses_the_key_uri_format_example() {
    let key = KeyUri::parse(ACME).unwrap();
    assert_eq!(key.kind, UriKind::Totp { period: 30 });
    assert_eq!(key.issuer.as_deref(), Some("ACME Co"));
    assert_eq!(key.account, "john.doe@email.com");
    assert_eq!(key.secret, acme_secret());
    assert_eq!(key.algorithm, HashAlgorithm::Sha1);
    assert_eq!(key.digits, 6);
    let totp = key.totp().unwrap();
    assert_eq!((totp.digits(), totp.period()), (6, 30));
    assert!(matches!(key.hotp(), Err(OtpError::InvalidUri(_))));
}

#[test]
fn builds_the_key_uri_format_example() {
    let key = KeyUri {
        kind: UriKind::Totp { period: 30 },
        issuer: Some("ACME Co".to_owned()),
        account: "john.doe@email.com".to_owned(),
        secret: acme_secret(),
        algorithm: HashAlgorithm::Sha1,
        digits: 6,
    };
    assert_eq!(key.to_uri(), ACME);
}

#[test]
fn applies_defaults_for_missing_parameters() {
    let key = KeyUri::parse("otpauth://totp/alice@example.com?secret=JBSWY3DPEHPK3PXP").unwrap();
    assert_eq!(key.kind, UriKind::Totp { period: 30 });
    assert_eq!(key.issuer, None);
    assert_eq!(key.account, "alice@example.com");
    assert_eq!(key.algorithm, HashAlgorithm::Sha1);
    assert_eq!(key.digits, 6);
    assert_eq!(
        key.to_uri(),
        "otpauth://totp/alice@example.com?secret=JBSWY3DPEHPK3PXP&algorithm=SHA1&digits=6&period=30"
    );
}

#[test]
fn parses_hotp_with_counter_and_other_parameters() {
    let key = KeyUri::parse(
        "OTPAUTH://HOTP/Example:bob?secret=jbsw-y3dp-ehpk-3pxp&counter=42&digits=8&algorithm=sha256&image=https%3A%2F%2Fexample.com%2Flogo.png",
    )
    .unwrap();
    assert_eq!(key.kind, UriKind::Hotp { counter: 42 });
    assert_eq!(key.issuer.as_deref(), Some("Example"));
    assert_eq!(key.account, "bob");
    assert_eq!(key.secret, Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap());
    assert_eq!(key.algorithm, HashAlgorithm::Sha256);
    assert_eq!(key.digits, 8);
    let hotp = key.hotp().unwrap();
    assert_eq!(
        (hotp.algorithm(), hotp.digits()),
        (HashAlgorithm::Sha256, 8)
    );
    assert!(matches!(key.totp(), Err(OtpError::InvalidUri(_))));
    assert_eq!(
        key.to_uri(),
        "otpauth://hotp/Example:bob?secret=JBSWY3DPEHPK3PXP&issuer=Example&algorithm=SHA256&digits=8&counter=42"
    );
}

#[test]
fn accepts_encoded_colon_and_spaces_before_the_account() {
    for uri in [
        "otpauth://totp/ACME%20Co%3Ajohn@example.com?secret=JBSWY3DPEHPK3PXP",
        "otpauth://totp/ACME%20Co%3a%20%20john@example.com?secret=JBSWY3DPEHPK3PXP",
        "otpauth://totp/ACME%20Co:%20john@example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME+Co",
        "otpauth://totp/ACME Co: john@example.com?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co",
    ] {
        let key = KeyUri::parse(uri).unwrap();
        assert_eq!(key.issuer.as_deref(), Some("ACME Co"), "{uri}");
        assert_eq!(key.account, "john@example.com", "{uri}");
    }
}

#[test]
fn issuer_parameter_alone_is_the_issuer() {
    let key =
        KeyUri::parse("otpauth://totp/john?secret=JBSWY3DPEHPK3PXP&issuer=Big%20Corp").unwrap();
    assert_eq!(key.issuer.as_deref(), Some("Big Corp"));
    assert_eq!(key.account, "john");
}

#[test]
fn ignores_unknown_parameters_and_fragments() {
    let key = KeyUri::parse(
        "otpauth://totp/A:b?foo=bar&secret=JBSWY3DPEHPK3PXP&&color=%23fff&pin#fragment",
    )
    .unwrap();
    assert_eq!(key.account, "b");
    assert_eq!(key.secret, Secret::from_base32("JBSWY3DPEHPK3PXP").unwrap());
}

#[test]
fn encodes_special_characters_in_label_and_issuer() {
    let key = KeyUri {
        kind: UriKind::Totp { period: 60 },
        issuer: Some("Ünïcode: Co & Sons".to_owned()),
        account: "a b+c@d/e?f#g".to_owned(),
        secret: Secret::from_bytes(b"foobar".to_vec()).unwrap(),
        algorithm: HashAlgorithm::Sha512,
        digits: 7,
    };
    let uri = key.to_uri();
    assert_eq!(
        uri,
        "otpauth://totp/%C3%9Cn%C3%AFcode%3A%20Co%20%26%20Sons:a%20b%2Bc@d%2Fe%3Ff%23g\
         ?secret=MZXW6YTBOI&issuer=%C3%9Cn%C3%AFcode%3A%20Co%20%26%20Sons&algorithm=SHA512&digits=7&period=60"
    );
    assert!(!uri.contains('+'));
    assert!(!uri.contains(' '));
    assert_eq!(KeyUri::parse(&uri).unwrap(), key);
}

#[test]
fn debug_does_not_print_the_secret() {
    let key = KeyUri::parse(ACME).unwrap();
    let debug = format!("{key:?}");
    assert!(debug.contains("Secret(redacted)"));
    assert!(!debug.contains(ACME_SECRET));
}

#[test]
fn each_malformed_uri_gives_its_error() {
    let secret = "secret=JBSWY3DPEHPK3PXP";
    assert_eq!(
        invalid_uri(&format!("https://totp/a?{secret}")),
        "scheme must be otpauth"
    );
    assert!(invalid_uri("otpauth:totp/a").contains("otpauth://TYPE/LABEL"));
    assert!(invalid_uri("no scheme at all").contains("otpauth://TYPE/LABEL"));
    assert_eq!(
        invalid_uri(&format!("otpauth://motp/a?{secret}")),
        "type must be totp or hotp"
    );
    assert!(invalid_uri("otpauth://totp").starts_with("missing label"));
    assert_eq!(
        invalid_uri("otpauth://totp/ACME:john?issuer=ACME"),
        "missing secret parameter"
    );
    assert_eq!(
        invalid_uri("otpauth://totp/ACME:john"),
        "missing secret parameter"
    );
    assert_eq!(
        invalid_uri(&format!("otpauth://totp/ACME:john?{secret}&issuer=Evil")),
        "issuer parameter does not match label prefix"
    );
    assert_eq!(
        invalid_uri(&format!("otpauth://totp/ACME:?{secret}")),
        "label must name an account"
    );
    assert_eq!(
        invalid_uri(&format!("otpauth://totp/?{secret}")),
        "label must name an account"
    );
    assert_eq!(
        invalid_uri(&format!("otpauth://hotp/a?{secret}")),
        "missing counter parameter (required for hotp)"
    );
    assert_eq!(
        invalid_uri(&format!("otpauth://hotp/a?{secret}&counter=-1")),
        "counter parameter must be a decimal number"
    );
    assert_eq!(
        invalid_uri(&format!(
            "otpauth://hotp/a?{secret}&counter=18446744073709551616"
        )),
        "counter parameter is out of range"
    );
    assert_eq!(
        invalid_uri(&format!("otpauth://totp/a?{secret}&digits=six")),
        "digits parameter must be a decimal number"
    );
    assert_eq!(
        invalid_uri(&format!("otpauth://totp/a?{secret}&period=+30")),
        "period parameter must be a decimal number"
    );
    assert_eq!(
        invalid_uri(&format!(
            "otpauth://totp/a?{secret}&secret=GEZDGNBVGY3TQOJQ"
        )),
        "duplicate secret parameter"
    );
    assert_eq!(
        invalid_uri(&format!("otpauth://totp/a?{secret}&issuer=A&issuer=B")),
        "duplicate issuer parameter"
    );
    assert!(
        invalid_uri(&format!("otpauth://totp/a%2?{secret}"))
            .starts_with("label has an invalid percent escape")
    );
    assert_eq!(
        invalid_uri(&format!("otpauth://totp/a%FF?{secret}")),
        "label is not valid UTF-8 after percent-decoding"
    );
    assert_eq!(
        invalid_uri(&format!("otpauth://totp/a?{secret}&issuer=%C3")),
        "issuer parameter is not valid UTF-8 after percent-decoding"
    );
    // The secret's own escape errors name the parameter, never its content.
    let message = invalid_uri("otpauth://totp/a?secret=JBSWY3DP%ZZEHPK3PXP");
    assert!(message.starts_with("secret parameter has an invalid percent escape"));
    assert!(!message.contains("JBSWY3DP"));
}

#[test]
fn parameter_errors_use_their_own_variants() {
    let base = "otpauth://totp/a?secret=JBSWY3DPEHPK3PXP";
    assert_eq!(
        KeyUri::parse(&format!("{base}&digits=9")),
        Err(OtpError::InvalidDigits(9))
    );
    assert_eq!(
        KeyUri::parse(&format!("{base}&period=0")),
        Err(OtpError::InvalidPeriod(0))
    );
    assert_eq!(
        KeyUri::parse(&format!("{base}&algorithm=MD5")),
        Err(OtpError::UnknownAlgorithm("MD5".to_owned()))
    );
    assert_eq!(
        KeyUri::parse("otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP&counter=1&digits=5"),
        Err(OtpError::InvalidDigits(5))
    );
    assert_eq!(
        KeyUri::parse("otpauth://totp/a?secret="),
        Err(OtpError::EmptySecret)
    );
    assert_eq!(
        KeyUri::parse("otpauth://totp/a?secret=JBSWY3DP0HPK3PXP"),
        Err(OtpError::InvalidBase32 {
            position: 8,
            character: '0'
        })
    );
    assert_eq!(
        KeyUri::parse("otpauth://totp/a?secret=JBSWY3DPE"),
        Err(OtpError::InvalidBase32Length { symbols: 9 })
    );
}

#[test]
fn account_with_colon_and_no_issuer_round_trips() {
    let key = KeyUri {
        kind: UriKind::Hotp { counter: 0 },
        issuer: None,
        account: "urn:user:7".to_owned(),
        secret: Secret::from_bytes(vec![9; 20]).unwrap(),
        algorithm: HashAlgorithm::Sha1,
        digits: 6,
    };
    assert_eq!(KeyUri::parse(&key.to_uri()).unwrap(), key);
}

/// Issuer and account text as people type it: spaces, '@', ':', '+', '%', '&', '=', '#', '/',
/// and non-ASCII. Accounts do not start with a space (the format reads leading spaces after the
/// issuer prefix as padding).
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 @:+%&=#/?.~_Ééßü中文😀-]{1,24}"
}

fn account() -> impl Strategy<Value = String> {
    text().prop_filter("no leading space", |account| !account.starts_with(' '))
}

proptest! {
    #[test]
    fn build_then_parse_round_trips(
        issuer in prop::option::of(text()),
        account in account(),
        key in prop::collection::vec(any::<u8>(), 1..=64),
        algorithm in prop_oneof![
            Just(HashAlgorithm::Sha1),
            Just(HashAlgorithm::Sha256),
            Just(HashAlgorithm::Sha512),
        ],
        digits in 6u32..=8,
        kind in prop_oneof![
            (1u64..=86_400).prop_map(|period| UriKind::Totp { period }),
            any::<u64>().prop_map(|counter| UriKind::Hotp { counter }),
        ],
    ) {
        let key = KeyUri {
            kind,
            issuer,
            account,
            secret: Secret::from_bytes(key).unwrap(),
            algorithm,
            digits,
        };
        let uri = key.to_uri();
        prop_assert!(uri.starts_with("otpauth://"));
        prop_assert!(!uri.contains(' '));
        prop_assert!(uri.is_ascii());
        prop_assert_eq!(KeyUri::parse(&uri).unwrap(), key);
    }
}
