//! The published test vectors: RFC 4226 Appendix D (HOTP) and RFC 6238 Appendix B (TOTP).
//! Expected values are copied from the RFCs, never produced by this crate.

use tessera_otp::{HashAlgorithm, Hotp, Secret, Totp, Window};

const SEED_SHA1: &[u8] = b"12345678901234567890";
const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

/// RFC 4226 Appendix D: HOTP values for counters 0-9 (HMAC-SHA-1, 6 digits).
const RFC4226_CODES: [&str; 10] = [
    "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
    "520489",
];

/// RFC 4226 Appendix D: the decimal value of the dynamically truncated HMAC for counters 0-9.
const RFC4226_TRUNCATED: [u32; 10] = [
    1_284_755_224,
    1_094_287_082,
    137_359_152,
    1_726_969_429,
    1_640_338_314,
    868_254_676,
    1_918_287_922,
    82_162_583,
    673_399_871,
    645_520_489,
];

/// RFC 6238 Appendix B: (time, T, SHA1, SHA256, SHA512), 8 digits, 30-second steps.
const RFC6238_TABLE: [(u64, u64, &str, &str, &str); 6] = [
    (59, 0x1, "94287082", "46119246", "90693936"),
    (
        1_111_111_109,
        0x0235_23EC,
        "07081804",
        "68084774",
        "25091201",
    ),
    (
        1_111_111_111,
        0x0235_23ED,
        "14050471",
        "67062674",
        "99943326",
    ),
    (
        1_234_567_890,
        0x0273_EF07,
        "89005924",
        "91819424",
        "93441116",
    ),
    (
        2_000_000_000,
        0x03F9_40AA,
        "69279037",
        "90698825",
        "38618901",
    ),
    (
        20_000_000_000,
        0x27BC_86AA,
        "65353130",
        "77737706",
        "47863826",
    ),
];

fn secret(seed: &[u8]) -> Secret {
    Secret::from_bytes(seed.to_vec()).expect("RFC seeds are valid secrets")
}

#[test]
fn hotp_matches_rfc4226_appendix_d() {
    let hotp = Hotp::new(HashAlgorithm::Sha1, 6).unwrap();
    let secret = secret(SEED_SHA1);
    for (counter, expected) in (0u64..).zip(RFC4226_CODES) {
        assert_eq!(
            hotp.generate(&secret, counter),
            expected,
            "counter {counter}"
        );
    }
}

#[test]
fn hotp_truncation_matches_rfc4226_intermediate_values() {
    // 7- and 8-digit codes are the truncated value modulo 10^7 and 10^8, so they expose more of
    // the dynamic truncation than the 6-digit codes do.
    let secret = secret(SEED_SHA1);
    for digits in [7u32, 8] {
        let hotp = Hotp::new(HashAlgorithm::Sha1, digits).unwrap();
        let modulus = 10u32.pow(digits);
        for (counter, truncated) in (0u64..).zip(RFC4226_TRUNCATED) {
            let expected = format!("{:0width$}", truncated % modulus, width = digits as usize);
            assert_eq!(
                hotp.generate(&secret, counter),
                expected,
                "counter {counter}"
            );
        }
    }
}

#[test]
fn hotp_verifies_every_rfc4226_code_at_its_counter() {
    let hotp = Hotp::default();
    let secret = secret(SEED_SHA1);
    for (counter, code) in (0u64..).zip(RFC4226_CODES) {
        assert_eq!(hotp.verify(&secret, code, counter, 0), Some(counter));
        assert_eq!(hotp.verify(&secret, code, 0, 9), Some(counter));
        if counter > 0 {
            // A counter already passed is never accepted again.
            assert_eq!(hotp.verify(&secret, code, counter + 1, 9), None);
        }
    }
}

#[test]
fn totp_matches_rfc6238_appendix_b_for_all_hashes() {
    let cases = [
        (HashAlgorithm::Sha1, SEED_SHA1),
        (HashAlgorithm::Sha256, SEED_SHA256),
        (HashAlgorithm::Sha512, SEED_SHA512),
    ];
    for (time, step, sha1, sha256, sha512) in RFC6238_TABLE {
        for ((algorithm, seed), expected) in cases.into_iter().zip([sha1, sha256, sha512]) {
            let totp = Totp::new(algorithm, 8, 30).unwrap();
            let secret = secret(seed);
            assert_eq!(totp.step(time), step, "T at {time}");
            assert_eq!(
                totp.generate(&secret, time),
                expected,
                "{algorithm} at {time}"
            );
            assert_eq!(
                totp.generate_step(&secret, step),
                expected,
                "{algorithm} at T={step}"
            );
            assert_eq!(
                totp.verify(&secret, expected, time, Window::default()),
                Some(step),
                "{algorithm} verify at {time}"
            );
        }
    }
}

#[test]
fn totp_rfc6238_codes_fail_with_the_wrong_hash() {
    // Each table row under another algorithm (with its own seed) must not verify: the algorithm
    // really is part of the computation.
    let secret = secret(SEED_SHA1);
    let totp = Totp::new(HashAlgorithm::Sha256, 8, 30).unwrap();
    for (time, _, sha1, _, _) in RFC6238_TABLE {
        assert_eq!(totp.verify(&secret, sha1, time, Window::default()), None);
    }
}
