//! Factory tokens' first use with injected time (issue 20): a token that lay in a box for years
//! is found within its own wide window at its first login; up to 5 minutes off one code is
//! enough, farther off the next consecutive code must follow; then the normal window applies
//! around the learned drift. Codes come from totp-rs/the oracle, never from our engine.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use common::databases;
use common::validate::Fixture;
use serde_json::json;
use tessera_import::pskc::{PskcOptions, PskcReader};
use tessera_server::model::AppMode;
use tessera_server::service::{Actor, ImportPolicy, ReadTally};

/// Now, for every test: 2026-12-01T00:00:00Z.
const NOW: u64 = 1_796_083_200;
const YEAR: u64 = 31_557_600;
/// "12345678901234567890" in base64 and base32.
const SECRET_B64: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=";
const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn pskc(serial: &str, algorithm: &str, start: &str) -> String {
    format!(
        r#"<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"><KeyPackage>
<DeviceInfo><Manufacturer>Feitian</Manufacturer><SerialNo>{serial}</SerialNo><StartDate>{start}</StartDate></DeviceInfo>
<Key Id="1" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:{algorithm}"><Data><Secret><PlainValue>{SECRET_B64}</PlainValue></Secret>
<Counter><PlainValue>0</PlainValue></Counter><TimeInterval><PlainValue>30</PlainValue></TimeInterval></Data></Key>
</KeyPackage></KeyContainer>"#
    )
}

/// Imports one plaintext PSKC token and assigns it to `user`.
async fn stock_and_assign(f: &Fixture, xml: String, serial: &str, user: &str) {
    let svc = &f.s.app.service;
    let source = Box::new(PskcReader::new(
        std::io::Cursor::new(xml.into_bytes()),
        PskcOptions {
            allow_unauthenticated: true,
            ..Default::default()
        },
    ));
    let policy = ImportPolicy {
        format: "pskc".into(),
        ..Default::default()
    };
    let report = svc
        .import_tokens(
            &Actor::operator(),
            source,
            &ReadTally::default(),
            &policy,
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(report.imported, 1, "{report:?}");
    svc.assign_inventory_token(&Actor::operator(), serial, user, None)
        .await
        .unwrap();
}

fn uri() -> String {
    format!("otpauth://totp/x?secret={SECRET_B32}")
}

/// The HOTP code for `counter` from oathtool (an independent implementation).
fn oathtool_hotp(counter: u64) -> String {
    let out = std::process::Command::new("oathtool")
        .args([
            "--hotp",
            "-c",
            &counter.to_string(),
            "3132333435363738393031323334353637383930",
        ])
        .output()
        .expect("oathtool is installed (.ci/install-tools)");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn totp_at(time: u64) -> String {
    common::oracle_totp(&uri(), time)
}

#[tokio::test]
async fn seven_steps_off_is_accepted_with_one_code() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::OtpOnly).await;
        f.s.clock.set(NOW as i64);
        f.user("fiona", true).await;
        stock_and_assign(
            &f,
            pskc("FT7", "totp", "2024-01-01T00:00:00Z"),
            "FT7",
            "fiona",
        )
        .await;
        // The token's clock is 7 steps (3.5 min) ahead: far outside the normal window.
        let ahead = NOW + 7 * 30;
        let body = json!({"username": "fiona", "otp": totp_at(ahead)});
        assert_eq!(f.result(body).await, "accept", "{db:?}");
        // The drift is learned: the next step's code is accepted in the normal window, and the
        // wide first-use window is over (a code 20 steps off is refused now).
        f.s.clock.advance(30);
        let body = json!({"username": "fiona", "otp": totp_at(ahead + 30)});
        assert_eq!(f.result(body).await, "accept", "{db:?}");
        f.s.clock.advance(30);
        let body = json!({"username": "fiona", "otp": totp_at(NOW + 60 - 20 * 30)});
        assert_eq!(f.result(body).await, "reject", "{db:?}");
    }
}

#[tokio::test]
async fn forty_steps_off_needs_two_consecutive_codes() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::OtpOnly).await;
        f.s.clock.set(NOW as i64);
        f.user("gus", true).await;
        // Made 7 years ago: the first-use window is 7 x 3 min = 21 min (42 steps).
        let start = tessera_server::clock::rfc3339((NOW - 7 * YEAR) as i64);
        stock_and_assign(&f, pskc("FT40", "totp", &start), "FT40", "gus").await;
        // 40 steps (20 min) behind: one code is not enough...
        let behind = NOW - 40 * 30;
        let body = json!({"username": "gus", "otp": totp_at(behind)});
        assert_eq!(f.result(body).await, "reject", "{db:?}");
        // ...the next consecutive one completes it.
        f.s.clock.advance(30);
        let body = json!({"username": "gus", "otp": totp_at(behind + 30)});
        assert_eq!(f.result(body).await, "accept", "{db:?}");
        f.s.clock.advance(30);
        let body = json!({"username": "gus", "otp": totp_at(behind + 60)});
        assert_eq!(f.result(body).await, "accept", "{db:?}: drift learned");
    }
}

#[tokio::test]
async fn a_new_token_beyond_its_window_and_a_stray_code_are_refused() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::OtpOnly).await;
        f.s.clock.set(NOW as i64);
        f.user("hal", true).await;
        // Made this year: 15 minutes (30 steps); 40 steps off is never found.
        stock_and_assign(
            &f,
            pskc("FT41", "totp", "2026-06-01T00:00:00Z"),
            "FT41",
            "hal",
        )
        .await;
        let behind = NOW - 40 * 30;
        for step in 0..2 {
            let body = json!({"username": "hal", "otp": totp_at(behind + step * 30)});
            assert_eq!(f.result(body).await, "reject", "{db:?}");
            f.s.clock.advance(30);
        }
    }
}

#[tokio::test]
async fn hotp_first_use_looks_far_ahead_with_two_codes() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::OtpOnly).await;
        f.s.clock.set(NOW as i64);
        f.user("ida", true).await;
        stock_and_assign(
            &f,
            pskc("FH1", "hotp", "2024-01-01T00:00:00Z"),
            "FH1",
            "ida",
        )
        .await;
        // The button was pressed 500 times in the box.
        let hotp = |c: u64| oathtool_hotp(c);
        let body = json!({"username": "ida", "otp": hotp(500)});
        assert_eq!(f.result(body).await, "reject", "{db:?}");
        // A refused code makes the token wait a little, as any failure does.
        f.s.clock.advance(30);
        let body = json!({"username": "ida", "otp": hotp(501)});
        assert_eq!(f.result(body).await, "accept", "{db:?}");
        let body = json!({"username": "ida", "otp": hotp(502)});
        assert_eq!(f.result(body).await, "accept", "{db:?}");
    }
}
