//! The admin JSON API's contract: malformed and hostile input gets a 4xx with a stable code (never
//! a panic or a 500), the served OpenAPI document matches the committed copy, and every error
//! code is documented with its status.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use common::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn bad_input_gets_a_4xx_with_a_stable_code() {
    let s = TestServer::spawn().await;
    let t = s.admin_session("root").await;
    s.call(
        &t,
        Method::POST,
        "/api/v1/users",
        Some(json!({"username": "fay"})),
    )
    .await;
    let raw = |method: Method, path: &str, body: &'static str| {
        s.client
            .request(method, s.url(path))
            .bearer_auth(&t)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let cases: Vec<(reqwest::Response, u16, &str)> = vec![
        (
            raw(Method::POST, "/api/v1/users", "{not json")
                .await
                .unwrap(),
            400,
            "bad_request",
        ),
        (
            raw(Method::POST, "/api/v1/users", r#"{"username": 5}"#)
                .await
                .unwrap(),
            400,
            "bad_request",
        ),
        (
            raw(Method::POST, "/api/v1/users", r#"{}"#).await.unwrap(),
            400,
            "bad_request",
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users",
                r#"{"username": "x", "colour": "red"}"#,
            )
            .await
            .unwrap(),
            400,
            "bad_request",
        ),
        (
            raw(Method::POST, "/api/v1/users", r#"{"username": "FAY"}"#)
                .await
                .unwrap(),
            409,
            "conflict",
        ),
        (
            raw(Method::POST, "/api/v1/users", r#"{"username": "bad name"}"#)
                .await
                .unwrap(),
            400,
            "invalid_input",
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users",
                r#"{"username": "g", "email": "nope"}"#,
            )
            .await
            .unwrap(),
            400,
            "invalid_input",
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users",
                r#"{"username": "g", "password": "short"}"#,
            )
            .await
            .unwrap(),
            400,
            "invalid_input",
        ),
        (
            raw(Method::GET, "/api/v1/users/nobody", "").await.unwrap(),
            404,
            "not_found",
        ),
        (
            raw(Method::POST, "/api/v1/users/nobody/tokens", "{}")
                .await
                .unwrap(),
            404,
            "not_found",
        ),
        (
            raw(Method::POST, "/api/v1/users/fay/tokens", r#"{"digits": 9}"#)
                .await
                .unwrap(),
            400,
            "invalid_input",
        ),
        (
            raw(Method::POST, "/api/v1/users/fay/tokens", r#"{"period": 0}"#)
                .await
                .unwrap(),
            400,
            "invalid_input",
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users/fay/tokens",
                r#"{"algorithm": "MD5"}"#,
            )
            .await
            .unwrap(),
            400,
            "invalid_input",
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users/fay/tokens",
                r#"{"kind": "push"}"#,
            )
            .await
            .unwrap(),
            400,
            "bad_request",
        ),
        (
            raw(
                Method::POST,
                "/api/v1/users/fay/tokens",
                r#"{"digits": -1}"#,
            )
            .await
            .unwrap(),
            400,
            "bad_request",
        ),
        (
            raw(Method::GET, "/api/v1/tokens/abc", "").await.unwrap(),
            400,
            "bad_request",
        ),
        (
            raw(Method::GET, "/api/v1/tokens/999999", "").await.unwrap(),
            404,
            "not_found",
        ),
        (
            raw(
                Method::POST,
                "/api/v1/tokens/1/verify",
                r#"{"code": "12ab56"}"#,
            )
            .await
            .unwrap(),
            400,
            "invalid_input",
        ),
        (
            raw(Method::POST, "/api/v1/tokens/1/explode", "")
                .await
                .unwrap(),
            400,
            "bad_request",
        ),
        (
            raw(Method::GET, "/api/v1/audit?since=yesterday", "")
                .await
                .unwrap(),
            400,
            "invalid_input",
        ),
        (
            raw(Method::GET, "/api/v1/users?limit=many", "")
                .await
                .unwrap(),
            400,
            "bad_request",
        ),
        (
            raw(Method::GET, "/api/v1/nothing", "").await.unwrap(),
            404,
            "not_found",
        ),
    ];
    for (i, (r, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(r.status().as_u16(), status, "case {i}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "case {i}: {body}");
    }
    // Oversized body.
    let huge = format!(r#"{{"username": "{}"}}"#, "a".repeat(100_000));
    let r = s
        .client
        .post(s.url("/api/v1/users"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Extremely long but small-enough fields are refused cleanly too.
    let (st, body) = s
        .call(
            &t,
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "h", "display_name": "x".repeat(5000)})),
        )
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (400, Some("invalid_input"))
    );
}

#[tokio::test]
async fn openapi_document_is_served_and_matches_the_committed_copy() {
    let s = TestServer::spawn().await;
    let served: Value = s
        .client
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served["info"]["title"], "Tessera API");
    let generated = tessera_server::http::api::openapi_json();
    assert_eq!(serde_json::from_str::<Value>(&generated).unwrap(), served);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date: run `UPDATE_GOLDEN=1 cargo test -p tessera-server --test api_contract`"
    );
}

#[test]
fn every_error_code_is_documented_with_its_status() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api.md");
    let doc = std::fs::read_to_string(path).unwrap();
    for code in tessera_server::service::ErrorCode::ALL {
        let status = tessera_server::http::error::status_of(*code).as_u16();
        let row = format!("| `{}` | {status} |", code.as_str());
        assert!(doc.contains(&row), "docs/api.md lacks the row {row}");
    }
}
