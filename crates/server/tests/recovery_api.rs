//! A user's recovery settings, self-service lock and recovery history over the JSON API
//! (`/api/v1/users/{username}/recovery...`): admins only, changes after re-authentication,
//! audited like the web page and the CLI.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod web_support;

use reqwest::Method;
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, Db, TestServer, databases};
use tessera_server::clock::Clock;
use tessera_server::model::{AuditEvent, Role};
use web_support::add_user;

async fn reauth(s: &TestServer, token: &str) {
    let (st, _) = s
        .call(
            token,
            Method::POST,
            "/api/v1/auth/reauth",
            Some(json!({"password": ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn recovery_settings_read_change_and_return_to_the_default_over_the_api() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |c| c.recovery.revoke_old_devices = true).await;
        add_user(&s, "alice", Role::User, false).await;
        let admin = s.admin_session("root").await;
        let path = "/api/v1/users/alice/recovery";

        let (st, view) = s.call(&admin, Method::GET, path, None).await;
        assert_eq!(st, 200, "{db:?}: {view}");
        assert_eq!(
            view["self_recovery"],
            json!({"value": true, "user_setting": false})
        );
        assert_eq!(
            view["revoke_old_devices"],
            json!({"value": true, "user_setting": false}),
            "the configuration's value"
        );
        assert_eq!(
            view["delivery"],
            json!({"value": "show", "user_setting": false})
        );
        assert_eq!(view["self_service_locked"], json!(false));

        let change = json!({"self_recovery": "off", "delivery": "email"});
        let (st, answer) = s
            .call(&admin, Method::PUT, path, Some(change.clone()))
            .await;
        assert_eq!(
            (st, answer["error"]["code"].as_str()),
            (403, Some("reauth_required")),
            "{db:?}"
        );
        reauth(&s, &admin).await;
        let (st, view) = s.call(&admin, Method::PUT, path, Some(change)).await;
        assert_eq!(st, 200, "{db:?}: {view}");
        assert_eq!(
            view["self_recovery"],
            json!({"value": false, "user_setting": true})
        );
        assert_eq!(
            view["delivery"],
            json!({"value": "email", "user_setting": true})
        );
        assert_eq!(
            view["revoke_old_devices"],
            json!({"value": true, "user_setting": false}),
            "left out: unchanged"
        );

        let (st, view) = s
            .call(
                &admin,
                Method::PUT,
                path,
                Some(json!({"self_recovery": "policy", "delivery": "policy"})),
            )
            .await;
        assert_eq!(st, 200);
        assert_eq!(view["self_recovery"]["user_setting"], json!(false));
        assert_eq!(
            view["delivery"],
            json!({"value": "show", "user_setting": false})
        );

        // Bad input is a 400 with a stable code; nothing changes.
        for bad in [json!({"self_recovery": "maybe"}), json!({"colour": "on"})] {
            let (st, answer) = s.call(&admin, Method::PUT, path, Some(bad)).await;
            assert_eq!(
                (st, answer["error"]["code"].as_str()),
                (400, Some("bad_request")),
                "{answer}"
            );
        }
        let (st, answer) = s
            .call(&admin, Method::GET, "/api/v1/users/nobody/recovery", None)
            .await;
        assert_eq!(
            (st, answer["error"]["code"].as_str()),
            (404, Some("not_found"))
        );

        // Many later logins do not push the history out of reach.
        let store = s.app.service.store();
        for _ in 0..1_100 {
            store
                .append_audit(&AuditEvent {
                    at: s.clock.now(),
                    actor: "app:vpn".into(),
                    action: "validate".into(),
                    target: "user:alice".into(),
                    username: "alice".into(),
                    source: "192.0.2.1".into(),
                    result: "success".into(),
                    reason: "accepted".into(),
                })
                .await
                .unwrap();
        }
        let (st, history) = s
            .call(
                &admin,
                Method::GET,
                "/api/v1/users/alice/recovery-history?limit=10",
                None,
            )
            .await;
        assert_eq!(st, 200);
        let actions: Vec<&str> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions
                .iter()
                .filter(|a| **a == "user.recovery_policy")
                .count(),
            2,
            "{db:?}: {actions:?}"
        );
        assert_eq!(
            actions
                .iter()
                .filter(|a| **a == "user.recovery_delivery")
                .count(),
            2
        );
    }
}

#[tokio::test]
async fn the_self_service_lock_is_cleared_over_the_api_after_reauth_and_by_admins_only() {
    let s = TestServer::spawn_with(Db::Sqlite, |_| {}).await;
    add_user(&s, "alice", Role::User, false).await;
    let id = s.app.service.user_named("alice").await.unwrap().id;
    s.app
        .service
        .store()
        .set_self_service_locked(id, true)
        .await
        .unwrap();
    let admin = s.admin_session("root").await;
    let path = "/api/v1/users/alice/self-service-unlock";
    let (st, answer) = s.call(&admin, Method::POST, path, None).await;
    assert_eq!(
        (st, answer["error"]["code"].as_str()),
        (403, Some("reauth_required"))
    );
    let locked = |s: &TestServer| {
        let store = s.app.service.store().clone();
        async move { store.recovery_policy(id).await.unwrap().self_service_locked }
    };
    assert!(locked(&s).await);
    reauth(&s, &admin).await;
    let (st, _) = s.call(&admin, Method::POST, path, None).await;
    assert_eq!(st, 204);
    assert!(!locked(&s).await);

    // Without an admin session: refused, whatever the body.
    let (st, answer): (u16, Value) = s
        .call(
            "not-a-session",
            Method::GET,
            "/api/v1/users/alice/recovery",
            None,
        )
        .await;
    assert_eq!(
        (st, answer["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
}
