//! SMS challenges of `POST /api/v1/validate` end to end, through an HTTP gateway stub the test
//! runs: the code arrives at the gateway, is accepted once, stops when the phone number is
//! removed, and a failed delivery rejects and voids the challenge.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod challenge_support;
mod common;

use std::sync::atomic::Ordering;

use challenge_support::*;
use common::Db;
use common::smtp::SmtpSink;
use common::validate::PASSWORD;
use serde_json::json;
use tessera_server::model::Language;
use tessera_server::service::{Actor, UserChanges};

#[tokio::test]
async fn sms_code_through_an_http_gateway_until_the_phone_is_removed() {
    let gateway = Gateway::start().await;
    let f = sms_fixture(&gateway).await;
    sms_user(&f, "jana").await;

    let tid = trigger(&f, "jana", "sms").await;
    let code = sms_code(&gateway, 0);
    assert_eq!(code.len(), 6);
    let text = gateway.received()[0]["text"].as_str().unwrap().to_owned();
    assert!(text.starts_with("Your Tessera login code: "), "{text}");
    assert!(!text.contains(&tid));
    assert_eq!(answer(&f, "jana", &tid, &code).await, "accept");
    assert_eq!(
        f.reasons("jana", "validate.challenge").await,
        ["sms code sent"]
    );

    // The admin removes the number: no more SMS, although the token is still there.
    f.s.app
        .service
        .update_user(
            &Actor::operator(),
            "jana",
            UserChanges {
                phone: Some(String::new()),
                ..UserChanges::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        f.result(json!({"username": "jana", "password": PASSWORD}))
            .await,
        "reject"
    );
    assert_eq!(gateway.received().len(), 1, "no SMS without a number");
    let reason = f.last_reason("jana").await;
    assert!(reason.contains("no phone number"), "{reason}");
}

#[tokio::test]
async fn failed_delivery_rejects_and_voids_the_challenge() {
    // SMS: the gateway answers 500 and echoes the request, as some do.
    let gateway = Gateway::start().await;
    gateway.status.store(500, Ordering::SeqCst);
    let f = sms_fixture(&gateway).await;
    sms_user(&f, "kai").await;
    let (status, v) = f
        .validate(json!({"username": "kai", "password": PASSWORD}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["result"], "reject", "{v}");
    assert!(v.get("transaction_id").is_none(), "{v}");
    let code = sms_code(&gateway, 0);
    let reason = f.last_reason("kai").await;
    assert!(
        reason.starts_with("challenge delivery failed") && reason.contains("500"),
        "{reason}"
    );
    assert!(
        !reason.contains(&code),
        "the echoed code is taken out: {reason}"
    );
    assert!(!reason.contains("5112345678"), "and the number: {reason}");
    // The client never learned the transaction id, and the challenge is void anyway: a code that
    // arrives late cannot be used.
    let db = f.s.data_dir().join("tessera.db");
    assert_eq!(
        sqlite_scalar(&db, "SELECT COUNT(*) FROM challenges").await,
        1
    );
    assert_eq!(
        sqlite_scalar(&db, "SELECT COUNT(*) FROM challenges WHERE NOT used").await,
        0
    );

    // Once the gateway works again, a new challenge goes through.
    gateway.status.store(200, Ordering::SeqCst);
    let tid = trigger(&f, "kai", "sms").await;
    let code = sms_code(&gateway, 1);
    assert_eq!(answer(&f, "kai", &tid, &code).await, "accept");

    // E-mail: the SMTP server refuses the recipient.
    let sink = SmtpSink::rejecting();
    let f = smtp_fixture(Db::Sqlite, &sink, |_| {}).await;
    email_user(&f, "lara", Language::En).await;
    assert_eq!(
        f.result(json!({"username": "lara", "password": PASSWORD}))
            .await,
        "reject"
    );
    let reason = f.last_reason("lara").await;
    assert!(
        reason.starts_with("challenge delivery failed") && reason.contains("550"),
        "{reason}"
    );
    let db = f.s.data_dir().join("tessera.db");
    assert_eq!(
        sqlite_scalar(&db, "SELECT COUNT(*) FROM challenges WHERE NOT used").await,
        0
    );
}
