//! An independent implementation (totp-rs 6) as oracle: for random secrets, times, algorithms
//! and digit counts, both must produce the same TOTP codes, and each must accept the other's.
//!
//! totp-rs refuses secrets under 128 bits (RFC 4226 §4 R6), so secrets here are 16 bytes or more.

use proptest::prelude::*;
use tessera_otp::{HashAlgorithm, Secret, Totp, Window};

fn oracle_algorithm(algorithm: HashAlgorithm) -> totp_rs::Algorithm {
    match algorithm {
        HashAlgorithm::Sha1 => totp_rs::Algorithm::SHA1,
        HashAlgorithm::Sha256 => totp_rs::Algorithm::SHA256,
        HashAlgorithm::Sha512 => totp_rs::Algorithm::SHA512,
    }
}

fn oracle(algorithm: HashAlgorithm, digits: u32, period: u64, key: &[u8]) -> totp_rs::Totp {
    totp_rs::Builder::new()
        .with_algorithm(oracle_algorithm(algorithm))
        .with_digits(u8::try_from(digits).expect("digits are 6..=8"))
        .with_step_duration(period)
        .with_skew(0)
        .with_secret(key.to_vec())
        .build()
        .expect("totp-rs accepts these parameters")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn totp_codes_match_totp_rs(
        key in prop::collection::vec(any::<u8>(), 16..=Secret::MAX_BYTES),
        algorithm in prop_oneof![
            Just(HashAlgorithm::Sha1),
            Just(HashAlgorithm::Sha256),
            Just(HashAlgorithm::Sha512),
        ],
        digits in prop_oneof![Just(6u32), Just(8u32)],
        period in prop_oneof![Just(30u64), Just(60u64), 1u64..=3600],
        time in prop_oneof![Just(0u64), Just(u64::MAX), 0u64..=4_102_444_800, any::<u64>()],
    ) {
        let ours = Totp::new(algorithm, digits, period).unwrap();
        let theirs = oracle(algorithm, digits, period, &key);
        let secret = Secret::from_bytes(key).unwrap();

        let code = ours.generate(&secret, time);
        prop_assert_eq!(&code, &theirs.generate(time).to_string());
        // Each accepts the other's code at that time.
        prop_assert!(theirs.check(&code, time).is_some());
        prop_assert_eq!(
            ours.verify(&secret, &code, time, Window { back: 0, forward: 0 }),
            Some(ours.step(time))
        );
    }
}

#[test]
fn oracle_agrees_on_the_rfc6238_sha1_vector() {
    // Guards the oracle wiring itself (seed, digits, period) against a silent mismatch.
    let theirs = oracle(HashAlgorithm::Sha1, 8, 30, b"12345678901234567890");
    assert_eq!(theirs.generate(59).to_string(), "94287082");
}

#[test]
fn base32_secrets_decode_like_totp_rs() {
    let encoded = "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ";
    let ours = Secret::from_base32(encoded).unwrap();
    let theirs = totp_rs::Secret::try_from_base32(encoded).unwrap();
    assert_eq!(ours.as_bytes(), theirs.as_ref());
    assert_eq!(ours.to_base32(), theirs.to_base32());
}
