//! Property tests: generate/verify agree, nothing outside the window matches, no input panics,
//! and secret encodings round-trip.
//!
//! Chance collisions are real (two steps share a 6-digit code with probability 10^-6), so window
//! properties compare against a brute-force search of the window instead of assuming uniqueness.

use proptest::prelude::*;
use tessera_otp::{HashAlgorithm, Hotp, KeyUri, Secret, Totp, Window};

fn algorithm() -> impl Strategy<Value = HashAlgorithm> {
    prop_oneof![
        Just(HashAlgorithm::Sha1),
        Just(HashAlgorithm::Sha256),
        Just(HashAlgorithm::Sha512),
    ]
}

fn secret() -> impl Strategy<Value = Secret> {
    prop::collection::vec(any::<u8>(), 1..=Secret::MAX_BYTES)
        .prop_map(|bytes| Secret::from_bytes(bytes).expect("1..=128 bytes is a valid length"))
}

fn totp() -> impl Strategy<Value = Totp> {
    (
        algorithm(),
        6u32..=8,
        prop_oneof![Just(30u64), Just(60), 1u64..=Totp::MAX_PERIOD],
    )
        .prop_map(|(algorithm, digits, period)| {
            Totp::new(algorithm, digits, period).expect("parameters drawn from the valid ranges")
        })
}

/// Any u64, with the edges drawn often.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u64::MAX),
        Just(u64::MAX - 1),
        any::<u64>(),
    ]
}

/// A window side: small (the normal case), or anything up to u64::MAX (clamped by the engine).
fn side() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0u64..=3, 1 => Just(u64::MAX), 1 => any::<u64>()]
}

/// The first step in `first..=last` whose code is `code`: what verification must answer.
fn brute_force(totp: &Totp, secret: &Secret, code: &str, first: u64, last: u64) -> Option<u64> {
    (first..=last).find(|&step| totp.generate_step(secret, step) == code)
}

proptest! {
    #[test]
    fn totp_code_verifies_at_exactly_its_step(
        totp in totp(), secret in secret(), step in edgy_u64(),
    ) {
        let code = totp.generate_step(&secret, step);
        prop_assert_eq!(code.len(), totp.digits() as usize);
        prop_assert!(code.bytes().all(|b| b.is_ascii_digit()));
        let exact = Window { back: 0, forward: 0 };
        prop_assert_eq!(totp.verify_step(&secret, &code, step, exact), Some(step));
    }

    #[test]
    fn totp_code_verifies_in_any_window_containing_its_step(
        totp in totp(), secret in secret(), step in edgy_u64(),
        back in 0u64..=3, forward in 0u64..=3, offset in 0u64..=6,
    ) {
        // Place the centre so that `step` lies inside [center - back, center + forward].
        let center = step.saturating_sub(forward).saturating_add(offset.min(back + forward));
        let window = Window { back, forward };
        let first = center.saturating_sub(back);
        let last = center.saturating_add(forward);
        prop_assume!(first <= step && step <= last);
        let code = totp.generate_step(&secret, step);
        let found = totp.verify_step(&secret, &code, center, window);
        prop_assert_eq!(found, brute_force(&totp, &secret, &code, first, last));
        // The first match is `step` itself unless an earlier step collides.
        prop_assert!(found.is_some_and(|s| s <= step));
    }

    #[test]
    fn totp_code_never_verifies_outside_the_window(
        totp in totp(), secret in secret(), step in edgy_u64(),
        back in 0u64..=3, forward in 0u64..=3, distance in 1u64..=1_000_000, after in any::<bool>(),
    ) {
        let window = Window { back, forward };
        // A centre whose window ends before `step` (after = true) or starts after it.
        let center = if after {
            step.checked_sub(distance.saturating_add(forward))
        } else {
            step.checked_add(distance.saturating_add(back))
        };
        let center = match center {
            Some(center) => center,
            None => return Ok(()),
        };
        let first = center.saturating_sub(back);
        let last = center.saturating_add(forward);
        prop_assert!(step < first || step > last);
        let code = totp.generate_step(&secret, step);
        let found = totp.verify_step(&secret, &code, center, window);
        prop_assert_ne!(found, Some(step));
        // Only a genuine collision inside the window may match.
        prop_assert_eq!(found, brute_force(&totp, &secret, &code, first, last));
    }

    #[test]
    fn totp_verify_by_time_uses_the_step_of_that_time(
        totp in totp(), secret in secret(), time in edgy_u64(),
    ) {
        let code = totp.generate(&secret, time);
        let step = totp.step(time);
        prop_assert_eq!(step, time / totp.period());
        let exact = Window { back: 0, forward: 0 };
        prop_assert_eq!(totp.verify(&secret, &code, time, exact), Some(step));
    }

    #[test]
    fn hotp_code_verifies_at_its_counter_within_look_ahead(
        algorithm in algorithm(), digits in 6u32..=8, secret in secret(),
        counter in edgy_u64(), ahead in 0u64..=5, look_ahead in 0u64..=5,
    ) {
        let hotp = Hotp::new(algorithm, digits).unwrap();
        let start = counter.saturating_sub(ahead);
        let code = hotp.generate(&secret, counter);
        prop_assert_eq!(hotp.verify(&secret, &code, counter, 0), Some(counter));
        let found = hotp.verify(&secret, &code, start, look_ahead);
        let last = start.saturating_add(look_ahead);
        let expected = (start..=last).find(|&c| hotp.generate(&secret, c) == code);
        prop_assert_eq!(found, expected);
        if counter - start <= look_ahead {
            prop_assert!(found.is_some_and(|c| c <= counter));
        } else {
            prop_assert_ne!(found, Some(counter));
        }
    }
}

proptest! {
    // Wide windows cost up to 2 * Window::MAX_SIDE + 1 HMACs per call in an unoptimised build.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn totp_verify_never_panics(
        totp in totp(), secret in secret(),
        code in prop_oneof!["[0-9]{6,8}", ".{0,12}", "\\PC*"],
        time in edgy_u64(), back in side(), forward in side(),
    ) {
        let window = Window { back, forward };
        if let Some(step) = totp.verify(&secret, &code, time, window) {
            // Anything accepted really is the code of that step, inside the clamped window.
            prop_assert_eq!(totp.generate_step(&secret, step), code);
            let center = totp.step(time);
            prop_assert!(step >= center.saturating_sub(back.min(Window::MAX_SIDE)));
            prop_assert!(step <= center.saturating_add(forward.min(Window::MAX_SIDE)));
        }
    }

    #[test]
    fn hotp_verify_never_panics(
        algorithm in algorithm(), digits in 6u32..=8, secret in secret(),
        code in prop_oneof!["[0-9]{6,8}", ".{0,12}"],
        counter in edgy_u64(), look_ahead in side(),
    ) {
        let hotp = Hotp::new(algorithm, digits).unwrap();
        if let Some(found) = hotp.verify(&secret, &code, counter, look_ahead) {
            prop_assert_eq!(hotp.generate(&secret, found), code);
            prop_assert!(found >= counter);
            prop_assert!(found - counter <= look_ahead.min(Hotp::MAX_LOOK_AHEAD));
        }
    }
}

proptest! {
    #[test]
    fn malformed_codes_never_verify(
        totp in totp(), secret in secret(), time in edgy_u64(), code in "\\PC{0,12}",
    ) {
        prop_assume!(code.len() != totp.digits() as usize || !code.bytes().all(|b| b.is_ascii_digit()));
        let wide = Window { back: 2, forward: 2 };
        prop_assert_eq!(totp.verify(&secret, &code, time, wide), None);
    }

    #[test]
    fn base32_round_trips(bytes in prop::collection::vec(any::<u8>(), 1..=Secret::MAX_BYTES)) {
        let secret = Secret::from_bytes(bytes.clone()).unwrap();
        let encoded = secret.to_base32();
        prop_assert!(!encoded.contains('='));
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        prop_assert_eq!(Secret::from_base32(&encoded).unwrap().as_bytes().to_vec(), bytes.clone());
        prop_assert_eq!(Secret::from_base32(&secret.to_base32_grouped()).unwrap().as_bytes().to_vec(), bytes.clone());
        prop_assert_eq!(Secret::from_hex(&secret.to_hex()).unwrap().as_bytes().to_vec(), bytes.clone());
        prop_assert_eq!(secret.bits(), bytes.len() * 8);
    }

    #[test]
    fn base32_accepts_case_separators_and_padding(
        bytes in prop::collection::vec(any::<u8>(), 1..=64),
        lower in prop::collection::vec(any::<bool>(), 256),
        separators in prop::collection::vec(prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("-"), 1 => Just("  ")], 256),
        padded in any::<bool>(),
    ) {
        let secret = Secret::from_bytes(bytes.clone()).unwrap();
        let mut typed = String::new();
        for (i, character) in secret.to_base32().chars().enumerate() {
            typed.push_str(separators[i]);
            typed.push(if lower[i] { character.to_ascii_lowercase() } else { character });
        }
        if padded {
            // Standard RFC 4648 padding up to a multiple of eight symbols.
            let symbols = secret.to_base32().len();
            typed.push_str(&"=".repeat((8 - symbols % 8) % 8));
        }
        prop_assert_eq!(Secret::from_base32(&typed).unwrap().as_bytes().to_vec(), bytes.clone());
    }

    #[test]
    fn parsers_never_panic(input in "\\PC{0,200}") {
        let _ = Secret::from_base32(&input);
        let _ = Secret::from_hex(&input);
        let _ = KeyUri::parse(&input);
        let _ = KeyUri::parse(&format!("otpauth://totp/{input}"));
        let _ = KeyUri::parse(&format!("otpauth://hotp/A:b?secret=JBSWY3DPEHPK3PXP&counter=1&{input}"));
        let _ = input.parse::<HashAlgorithm>();
    }
}
