//! The metrics a validation leaves, as a Prometheus scrape reads them: accepts, rejects by
//! reason, the latency histogram and the group commits behind them.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use common::validate::Fixture;
use common::{Db, databases};
use serde_json::json;
use tessera_otp::KeyUri;
use tessera_server::model::AppMode;

/// The value of the sample `series` (name and labels as printed) in a scrape.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[tokio::test]
async fn validations_are_counted_by_result_and_reason() {
    for db in databases() {
        let f = Fixture::new(db, AppMode::OtpOnly).await;
        f.user_with("alice", |u| u.password = None).await;
        let uri = KeyUri::parse(&f.token("alice", "hotp").await).unwrap();
        let code = uri.hotp().unwrap().generate(&uri.secret, 1);
        assert_eq!(
            f.result(json!({"username": "alice", "otp": code})).await,
            "accept"
        );
        assert_eq!(
            f.result(json!({"username": "alice", "otp": code})).await,
            "reject"
        );
        assert_eq!(
            f.result(json!({"username": "nobody", "otp": "123456"}))
                .await,
            "reject"
        );
        let text = f.s.app.service.render_metrics();
        let v = |s: &str| sample(&text, s);
        assert_eq!(
            v(r#"tessera_validations_total{result="accept",reason=""}"#),
            1.0,
            "{db:?}"
        );
        assert_eq!(
            v(r#"tessera_validations_total{result="reject",reason="replay"}"#),
            1.0
        );
        assert_eq!(
            v(r#"tessera_validations_total{result="reject",reason="unknown_user"}"#),
            1.0
        );
        assert_eq!(v("tessera_validation_duration_seconds_count"), 3.0);
        assert!(v("tessera_write_batch_writes_count") >= 1.0, "{db:?}");
        let database = if db == Db::Sqlite {
            "sqlite"
        } else {
            "postgres"
        };
        assert!(text.contains(&format!("database=\"{database}\"")), "{text}");
    }
}
