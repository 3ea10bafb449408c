//! The admin JSON API end to end: a real server on a random port, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use common::{ADMIN_PASSWORD, Db, TestServer, databases, oracle_totp};
use reqwest::Method;
use serde_json::{Value, json};

const NOW: u64 = 1_700_000_000;

async fn for_each_db<F, Fut>(f: F)
where
    F: Fn(Db) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for db in databases() {
        f(db).await;
    }
}

#[tokio::test]
async fn create_user_add_token_activate_with_independent_code_and_see_audit() {
    for_each_db(|db| async move {
        let s = TestServer::spawn_with(db, |_| {}).await;
        let t = s.admin_session("root").await;
        let (st, user) = s
            .call(
                &t,
                Method::POST,
                "/api/v1/users",
                Some(json!({
                    "username": "Alice", "email": "alice@example.com", "display_name": "Alice A."
                })),
            )
            .await;
        assert_eq!(st, 201, "{db:?}: {user}");
        assert_eq!(user["username"], "Alice");
        assert!(user.get("password_hash").is_none());

        let (st, created) = s
            .call(
                &t,
                Method::POST,
                "/api/v1/users/alice/tokens",
                Some(json!({"name": "Diensthandy"})),
            )
            .await;
        assert_eq!(st, 201, "{created}");
        assert_eq!(created["state"], "pending");
        let uri = created["otpauth_uri"].as_str().unwrap();
        assert!(uri.starts_with("otpauth://totp/Tessera:Alice?"), "{uri}");
        assert!(created["qr_svg"].as_str().unwrap().contains("<svg"));
        assert!(!created["qr_png_base64"].as_str().unwrap().is_empty());
        let id = created["id"].as_i64().unwrap();

        // Wrong code first: refused, token stays pending.
        let code = oracle_totp(uri, NOW);
        let wrong = format!("{:06}", (code.parse::<u32>().unwrap() + 1) % 1_000_000);
        let (st, body) = s
            .call(
                &t,
                Method::POST,
                &format!("/api/v1/tokens/{id}/verify"),
                Some(json!({"code": wrong})),
            )
            .await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (422, Some("invalid_code"))
        );
        // The token now waits one time step before the next attempt.
        let (st, body) = s
            .call(
                &t,
                Method::POST,
                &format!("/api/v1/tokens/{id}/verify"),
                Some(json!({"code": code})),
            )
            .await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (429, Some("throttled"))
        );
        s.clock.advance(30);
        let code = oracle_totp(uri, NOW + 30);
        let (st, tok) = s
            .call(
                &t,
                Method::POST,
                &format!("/api/v1/tokens/{id}/verify"),
                Some(json!({"code": code})),
            )
            .await;
        assert_eq!(st, 200, "{tok}");
        assert_eq!(tok["state"], "active");
        assert_eq!(tok["fail_count"], 0);

        // The activation code is consumed: verifying again is refused.
        let (st, body) = s
            .call(
                &t,
                Method::POST,
                &format!("/api/v1/tokens/{id}/verify"),
                Some(json!({"code": code})),
            )
            .await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (409, Some("token_state"))
        );

        let (st, audit) = s
            .call(&t, Method::GET, "/api/v1/audit?user=alice", None)
            .await;
        assert_eq!(st, 200);
        let actions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for a in ["user.add", "token.add", "token.activate"] {
            assert!(actions.contains(&a), "{db:?}: {a} missing from {actions:?}");
        }
        let (_, v) = s.call(&t, Method::GET, "/api/v1/audit/verify", None).await;
        assert_eq!(v["ok"], true, "{v}");
    })
    .await;
}

#[tokio::test]
async fn sensitive_change_needs_reauth_then_succeeds() {
    for_each_db(|db| async move {
        let s = TestServer::spawn_with(db, |_| {}).await;
        let t = s.admin_session("root").await;
        s.call(
            &t,
            Method::POST,
            "/api/v1/users",
            Some(json!({"username": "bob", "phone": "+49 30 123456"})),
        )
        .await;
        // A harmless change needs no re-authentication.
        let (st, _) = s
            .call(
                &t,
                Method::PATCH,
                "/api/v1/users/bob",
                Some(json!({"display_name": "Bob"})),
            )
            .await;
        assert_eq!(st, 200);
        // Ticking "OTP required" and clearing the phone does.
        let change = json!({"otp_required": true, "phone": ""});
        let (st, body) = s
            .call(&t, Method::PATCH, "/api/v1/users/bob", Some(change.clone()))
            .await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (403, Some("reauth_required")),
            "{db:?}"
        );
        let (st, body) = s
            .call(
                &t,
                Method::POST,
                "/api/v1/auth/reauth",
                Some(json!({"password": "wrong password"})),
            )
            .await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (401, Some("invalid_credentials"))
        );
        let (st, body) = s
            .call(
                &t,
                Method::POST,
                "/api/v1/auth/reauth",
                Some(json!({"password": ADMIN_PASSWORD})),
            )
            .await;
        assert_eq!(st, 200, "{body}");
        let (st, user) = s
            .call(&t, Method::PATCH, "/api/v1/users/bob", Some(change.clone()))
            .await;
        assert_eq!(st, 200, "{user}");
        assert_eq!(user["otp_required"], true);
        assert_eq!(user["phone"], "");
        assert_eq!(user["sms_enabled"], false, "removing the phone stops SMS");
        // The elevation lasts auth.reauth_minutes (5), then it is needed again.
        s.clock.advance(5 * 60 + 1);
        let (st, body) = s
            .call(
                &t,
                Method::PATCH,
                "/api/v1/users/bob",
                Some(json!({"otp_required": false})),
            )
            .await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (403, Some("reauth_required"))
        );
        // Application keys and revoking devices are sensitive too.
        let (st, body) = s
            .call(
                &t,
                Method::POST,
                "/api/v1/apps",
                Some(json!({"name": "vpn"})),
            )
            .await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (403, Some("reauth_required"))
        );
        let (_, audit) = s
            .call(
                &t,
                Method::GET,
                "/api/v1/audit?user=bob&action=user.set",
                None,
            )
            .await;
        let results: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["result"].as_str().unwrap())
            .collect();
        assert_eq!(
            results,
            ["failure", "success", "failure", "success"],
            "{db:?}: {audit}"
        );
    })
    .await;
}

#[tokio::test]
async fn applications_key_shown_once_and_revocable() {
    let s = TestServer::spawn().await;
    let t = s.admin_session("root").await;
    s.call(
        &t,
        Method::POST,
        "/api/v1/auth/reauth",
        Some(json!({"password": ADMIN_PASSWORD})),
    )
    .await;
    let (st, app) = s
        .call(
            &t,
            Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "vpn", "mode": "otp_only"})),
        )
        .await;
    assert_eq!(st, 201, "{app}");
    let key = app["api_key"].as_str().unwrap();
    assert!(key.starts_with("tsk_"));
    let (_, list) = s.call(&t, Method::GET, "/api/v1/apps", None).await;
    assert!(!list.to_string().contains(key), "the key is never listed");
    assert_eq!(list[0]["mode"], "otp_only");
    assert!(s.app.service.authenticate_app(key).await.is_ok());
    let id = app["id"].as_i64().unwrap();
    let (st, revoked) = s
        .call(&t, Method::POST, &format!("/api/v1/apps/{id}/revoke"), None)
        .await;
    assert_eq!((st, revoked["state"].as_str()), (200, Some("revoked")));
    assert!(s.app.service.authenticate_app(key).await.is_err());
    let (st, _) = s
        .call(
            &t,
            Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "vpn"})),
        )
        .await;
    assert_eq!(st, 409, "duplicate name");
}

#[tokio::test]
async fn token_lifecycle_rename_disable_revoke_delete_and_resync() {
    let s = TestServer::spawn().await;
    let t = s.admin_session("root").await;
    s.call(
        &t,
        Method::POST,
        "/api/v1/users",
        Some(json!({"username": "carl"})),
    )
    .await;
    let (_, created) = s
        .call(
            &t,
            Method::POST,
            "/api/v1/users/carl/tokens",
            Some(json!({"kind": "totp", "algorithm": "SHA256", "digits": 8, "period": 60})),
        )
        .await;
    let uri = created["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.contains("algorithm=SHA256") && uri.contains("digits=8") && uri.contains("period=60"),
        "{uri}"
    );
    let id = created["id"].as_i64().unwrap();
    let (st, _) = s
        .call(
            &t,
            Method::POST,
            &format!("/api/v1/tokens/{id}/verify"),
            Some(json!({"code": oracle_totp(uri, NOW)})),
        )
        .await;
    assert_eq!(st, 200);
    let (_, tok) = s
        .call(
            &t,
            Method::PATCH,
            &format!("/api/v1/tokens/{id}"),
            Some(json!({"name": "YubiKey"})),
        )
        .await;
    assert_eq!(tok["name"], "YubiKey");
    // The token's clock runs 20 minutes fast: two consecutive codes bring it back.
    let ahead = NOW + 20 * 60;
    let (st, tok) = s
        .call(
            &t,
            Method::POST,
            &format!("/api/v1/tokens/{id}/resync"),
            Some(json!({
                "code1": oracle_totp(uri, ahead), "code2": oracle_totp(uri, ahead + 60)
            })),
        )
        .await;
    assert_eq!(st, 200, "{tok}");
    assert_eq!(
        tok["drift"], 21,
        "20 steps of 60 s ahead, second code one more"
    );
    let (_, tok) = s
        .call(
            &t,
            Method::POST,
            &format!("/api/v1/tokens/{id}/disable"),
            None,
        )
        .await;
    assert_eq!(tok["state"], "disabled");
    let (_, tok) = s
        .call(
            &t,
            Method::POST,
            &format!("/api/v1/tokens/{id}/enable"),
            None,
        )
        .await;
    assert_eq!(tok["state"], "active");
    let (st, body) = s
        .call(
            &t,
            Method::POST,
            &format!("/api/v1/tokens/{id}/revoke"),
            None,
        )
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (403, Some("reauth_required"))
    );
    s.call(
        &t,
        Method::POST,
        "/api/v1/auth/reauth",
        Some(json!({"password": ADMIN_PASSWORD})),
    )
    .await;
    let (_, tok) = s
        .call(
            &t,
            Method::POST,
            &format!("/api/v1/tokens/{id}/revoke"),
            None,
        )
        .await;
    assert_eq!(tok["state"], "revoked");
    let (st, body) = s
        .call(
            &t,
            Method::POST,
            &format!("/api/v1/tokens/{id}/enable"),
            None,
        )
        .await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (409, Some("token_state"))
    );
    let (st, _) = s
        .call(&t, Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(st, 204);
    let (st, _) = s
        .call(&t, Method::GET, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(st, 404);
}

#[tokio::test]
async fn deleting_a_user_removes_tokens_and_keeps_the_audit() {
    let s = TestServer::spawn().await;
    let t = s.admin_session("root").await;
    s.call(
        &t,
        Method::POST,
        "/api/v1/users",
        Some(json!({"username": "dora"})),
    )
    .await;
    let (_, created) = s
        .call(
            &t,
            Method::POST,
            "/api/v1/users/dora/tokens",
            Some(json!({})),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let (st, _) = s.call(&t, Method::DELETE, "/api/v1/users/dora", None).await;
    assert_eq!(st, 403, "needs re-authentication");
    s.call(
        &t,
        Method::POST,
        "/api/v1/auth/reauth",
        Some(json!({"password": ADMIN_PASSWORD})),
    )
    .await;
    let (st, _) = s.call(&t, Method::DELETE, "/api/v1/users/dora", None).await;
    assert_eq!(st, 204);
    assert_eq!(
        s.call(&t, Method::GET, &format!("/api/v1/tokens/{id}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        s.call(&t, Method::GET, "/api/v1/users/dora", None).await.0,
        404
    );
    let (_, audit) = s
        .call(&t, Method::GET, "/api/v1/audit?user=dora", None)
        .await;
    assert!(audit.to_string().contains("user.delete"));
}

#[tokio::test]
async fn unauthenticated_and_expired_sessions_are_refused() {
    let s = TestServer::spawn().await;
    let r = s.client.get(s.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthenticated");
    let (st, _) = s
        .call("not-a-session", Method::GET, "/api/v1/users", None)
        .await;
    assert_eq!(st, 401);
    let t = s.admin_session("root").await;
    assert_eq!(s.call(&t, Method::GET, "/api/v1/users", None).await.0, 200);
    s.clock.advance(31 * 60);
    assert_eq!(
        s.call(&t, Method::GET, "/api/v1/users", None).await.0,
        401,
        "idle timeout"
    );
    // Wrong password and unknown user get the same answer.
    for (u, p) in [("root", "wrong password!"), ("nobody", ADMIN_PASSWORD)] {
        let r = s
            .client
            .post(s.url("/api/v1/auth/login"))
            .json(&json!({"username": u, "password": p}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["code"], "invalid_credentials");
    }
    // A non-admin cannot get a session.
    let t2 = s.admin_session("root2").await;
    s.call(
        &t2,
        Method::POST,
        "/api/v1/users",
        Some(json!({"username": "eve", "password": "long enough pw"})),
    )
    .await;
    let r = s
        .client
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "eve", "password": "long enough pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn admin_with_a_token_logs_in_with_password_and_code() {
    let s = TestServer::spawn().await;
    let t = s.admin_session("root").await;
    let (_, created) = s
        .call(
            &t,
            Method::POST,
            "/api/v1/users/root/tokens",
            Some(json!({})),
        )
        .await;
    let uri = created["otpauth_uri"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    s.call(
        &t,
        Method::POST,
        &format!("/api/v1/tokens/{id}/verify"),
        Some(json!({"code": oracle_totp(&uri, NOW)})),
    )
    .await;
    s.clock.advance(30);
    let login = |otp: Option<String>| {
        let mut body = json!({"username": "root", "password": ADMIN_PASSWORD});
        if let Some(o) = otp {
            body["otp"] = json!(o);
        }
        s.client
            .post(s.url("/api/v1/auth/login"))
            .json(&body)
            .send()
    };
    assert_eq!(
        login(None).await.unwrap().status(),
        401,
        "code now required"
    );
    let code = oracle_totp(&uri, NOW + 30);
    assert_eq!(login(Some(code.clone())).await.unwrap().status(), 200);
    assert_eq!(
        login(Some(code)).await.unwrap().status(),
        401,
        "a code is used once"
    );
}
