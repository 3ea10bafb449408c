//! "Add a hardware token" in the portal (issue 20): a user binds a token from stock with its
//! serial and the code it shows now; an unknown serial and a wrong code get the same answer;
//! failures are throttled; a token whose clock is far off needs the next code too. Injected
//! time; codes from the totp-rs oracle.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod web_support;

use common::{TestServer, databases};
use tessera_import::pskc::{PskcOptions, PskcReader};
use tessera_server::model::Role;
use tessera_server::service::{Actor, ImportPolicy, ReadTally};
use web_support::{Browser, PASSWORD, add_user};

const NOW: u64 = 1_796_083_200;
const SECRET_B64: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=";
const URI: &str = "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

async fn stock(s: &TestServer, serials: &[(&str, &str)]) {
    let packages: String = serials
        .iter()
        .map(|(serial, start)| {
            format!(
                r#"<KeyPackage><DeviceInfo><SerialNo>{serial}</SerialNo><StartDate>{start}</StartDate></DeviceInfo>
<Key Id="1" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp"><Data><Secret><PlainValue>{SECRET_B64}</PlainValue></Secret></Data></Key></KeyPackage>"#
            )
        })
        .collect();
    let xml = format!(r#"<KeyContainer Version="1.0">{packages}</KeyContainer>"#);
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
    let r = s
        .app
        .service
        .import_tokens(
            &Actor::operator(),
            source,
            &ReadTally::default(),
            &policy,
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(r.imported as usize, serials.len());
}

fn code_at(t: u64) -> String {
    common::oracle_totp(URI, t)
}

/// The message part of an error page (its status and text, not the layout around it).
fn answer(page: &web_support::Page) -> (u16, String) {
    let body = &page.body;
    let start = body.find("<main").unwrap_or(0);
    (page.status, body[start..].to_owned())
}

#[tokio::test]
async fn claim_by_serial_and_code_with_one_answer_for_wrong_serial_and_code() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |_| {}).await;
        s.clock.set(NOW as i64);
        stock(
            &s,
            &[
                ("FT100", "2025-01-01T00:00:00Z"),
                ("FT101", "2025-01-01T00:00:00Z"),
            ],
        )
        .await;
        add_user(&s, "uma", Role::User, false).await;
        let mut b = Browser::new(&s);
        assert_eq!(b.login("uma", PASSWORD, "").await.status, 303);
        let portal = b.get("/portal").await;
        assert!(portal.body.contains("name=\"serial\""), "{}", portal.body);
        let csrf = b.csrf().await;
        let post = |serial: &'static str, code: String| {
            let csrf = csrf.clone();
            (serial, code, csrf)
        };
        // Unknown serial and wrong code: the same answer.
        let (serial, code, csrf1) = post("NOPE1", code_at(NOW));
        let unknown = b
            .post(
                "/portal/hardware",
                &[
                    ("csrf", &csrf1),
                    ("serial", serial),
                    ("code", &code),
                    ("next_code", ""),
                ],
            )
            .await;
        let (serial, _, csrf2) = post("FT100", String::new());
        let wrong = b
            .post(
                "/portal/hardware",
                &[
                    ("csrf", &csrf2),
                    ("serial", serial),
                    ("code", "000000"),
                    ("next_code", ""),
                ],
            )
            .await;
        assert_ne!(unknown.status, 303);
        assert_eq!(answer(&unknown), answer(&wrong), "{db:?}");
        // The right code, the token's clock 7 steps ahead: bound and active at once.
        let code = code_at(NOW + 7 * 30);
        let done = b
            .post(
                "/portal/hardware",
                &[
                    ("csrf", &csrf),
                    ("serial", "FT100"),
                    ("code", &code),
                    ("next_code", ""),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{db:?}: {}", done.body);
        let user = s.app.service.user_named("uma").await.unwrap();
        let tokens = s.app.service.store().tokens_of(user.id).await.unwrap();
        assert_eq!(
            (tokens.len(), tokens[0].state.as_str(), tokens[0].drift),
            (1, "active", 7),
            "{db:?}"
        );
        // Taken: nobody claims it again.
        add_user(&s, "vic", Role::User, false).await;
        let mut v = Browser::new(&s);
        v.login("vic", PASSWORD, "").await;
        let vcsrf = v.csrf().await;
        s.clock.advance(30);
        let code = code_at(NOW + 8 * 30);
        let again = v
            .post(
                "/portal/hardware",
                &[
                    ("csrf", &vcsrf),
                    ("serial", "FT100"),
                    ("code", &code),
                    ("next_code", ""),
                ],
            )
            .await;
        assert_eq!(answer(&again).0, answer(&wrong).0, "{db:?}");
        let filter = tessera_server::model::AuditFilter {
            action: Some("inventory.claim".into()),
            limit: 100,
            ..Default::default()
        };
        let audit = s.app.service.store().list_audit(&filter).await.unwrap();
        let claims: Vec<_> = audit
            .iter()
            .filter(|e| e.event.action == "inventory.claim")
            .collect();
        assert!(
            claims
                .iter()
                .any(|e| e.event.reason == "no such serial in stock"),
            "{db:?}"
        );
        assert!(claims.iter().any(|e| e.event.reason == "wrong code"));
        assert!(
            claims
                .iter()
                .any(|e| e.event.result == "success" && e.event.reason.contains("+210 s"))
        );
    }
}

#[tokio::test]
async fn claims_are_throttled_and_a_far_clock_needs_the_next_code() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |_| {}).await;
        s.clock.set(NOW as i64);
        // Made 7 years ago: a first-use window of 21 minutes.
        stock(&s, &[("OLD1", "2019-12-01T00:00:00Z")]).await;
        add_user(&s, "wes", Role::User, false).await;
        let mut b = Browser::new(&s);
        b.login("wes", PASSWORD, "").await;
        let csrf = b.csrf().await;
        let behind = NOW - 40 * 30;
        let code = code_at(behind);
        let ask = b
            .post(
                "/portal/hardware",
                &[
                    ("csrf", &csrf),
                    ("serial", "OLD1"),
                    ("code", &code),
                    ("next_code", ""),
                ],
            )
            .await;
        assert_eq!(ask.status, 400, "{db:?}");
        assert!(ask.body.contains("next one"), "{}", ask.body);
        let next = code_at(behind + 30);
        let done = b
            .post(
                "/portal/hardware",
                &[
                    ("csrf", &csrf),
                    ("serial", "OLD1"),
                    ("code", &code),
                    ("next_code", &next),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{db:?}: {}", done.body);
        // Five failures an hour, then even a right answer waits.
        stock(&s, &[("NEW1", "2026-11-01T00:00:00Z")]).await;
        for _ in 0..5 {
            b.post(
                "/portal/hardware",
                &[
                    ("csrf", &csrf),
                    ("serial", "NEW1"),
                    ("code", "000000"),
                    ("next_code", ""),
                ],
            )
            .await;
        }
        let code = code_at(NOW);
        let throttled = b
            .post(
                "/portal/hardware",
                &[
                    ("csrf", &csrf),
                    ("serial", "NEW1"),
                    ("code", &code),
                    ("next_code", ""),
                ],
            )
            .await;
        assert_eq!(throttled.status, 429, "{db:?}");
        s.clock.advance(3601);
        let code = code_at(NOW + 3601);
        let ok = b
            .post(
                "/portal/hardware",
                &[
                    ("csrf", &csrf),
                    ("serial", "NEW1"),
                    ("code", &code),
                    ("next_code", ""),
                ],
            )
            .await;
        assert_eq!(ok.status, 303, "{db:?}: {}", ok.body);
    }
}
