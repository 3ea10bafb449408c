//! Cost of the hot paths the server calls per login: TOTP verification over a ±1 window, HOTP
//! verification with a look-ahead of 10, and HOTP generation.
//!
//! Verification checks the whole window without early exit, so every input costs the same; the
//! benchmarks still use the worst case (a code matching the last candidate) to show it.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_otp::{Hotp, Secret, Totp, Window};

fn secret() -> Secret {
    Secret::from_bytes(b"12345678901234567890".to_vec()).expect("a 20-byte secret is valid")
}

fn totp_verify_window_1(c: &mut Criterion) {
    let totp = Totp::default();
    let secret = secret();
    let time = 1_700_000_000;
    let window = Window::default();
    // The code of the last step in the window: the worst case for an early-exit implementation.
    let code = totp.generate_step(&secret, totp.step(time) + 1);
    assert_eq!(
        totp.verify(&secret, &code, time, window),
        Some(totp.step(time) + 1)
    );
    c.bench_function("totp_verify_window_1", |b| {
        b.iter(|| {
            totp.verify(
                black_box(&secret),
                black_box(&code),
                black_box(time),
                window,
            )
        })
    });
}

fn hotp_verify_lookahead_10(c: &mut Criterion) {
    let hotp = Hotp::default();
    let secret = secret();
    let counter = 1_000;
    let code = hotp.generate(&secret, counter + 10);
    assert_eq!(hotp.verify(&secret, &code, counter, 10), Some(counter + 10));
    c.bench_function("hotp_verify_lookahead_10", |b| {
        b.iter(|| hotp.verify(black_box(&secret), black_box(&code), black_box(counter), 10))
    });
}

fn hotp_generate(c: &mut Criterion) {
    let hotp = Hotp::default();
    let secret = secret();
    c.bench_function("hotp_generate", |b| {
        b.iter(|| hotp.generate(black_box(&secret), black_box(1_000)))
    });
}

criterion_group!(
    benches,
    totp_verify_window_1,
    hotp_verify_lookahead_10,
    hotp_generate
);
criterion_main!(benches);
