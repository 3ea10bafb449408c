//! `/api/v1/me/backup` over HTTP on both databases: a user's login for the API, the opaque blob
//! with ETags and If-Match, the size limit, two generations kept, stale uploads refused, audit
//! rows that record sizes and never content, and an account reset that removes the blobs and
//! tells devices when it happened.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use common::validate::{Fixture, PASSWORD};
use common::{databases, oracle_totp};
use tessera_server::model::{AppMode, AuditFilter};
use tessera_server::service::Actor;

async fn session(f: &Fixture, uri: &str) -> String {
    let r = f
        .s
        .client
        .post(f.s.url("/api/v1/me/login"))
        .json(&serde_json::json!({"username": "ute", "password": PASSWORD, "otp": oracle_totp(uri, f.now())}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    v["session"].as_str().unwrap().to_owned()
}

async fn put(
    f: &Fixture,
    session: &str,
    header: (&str, &str),
    body: Vec<u8>,
) -> (u16, String, serde_json::Value) {
    let r =
        f.s.client
            .put(f.s.url("/api/v1/me/backup"))
            .bearer_auth(session)
            .header("content-type", "application/octet-stream")
            .header(header.0, header.1)
            .body(body)
            .send()
            .await
            .unwrap();
    let status = r.status().as_u16();
    let etag = r
        .headers()
        .get("etag")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        etag,
        r.json().await.unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn backup_api_keeps_two_generations_and_refuses_stale_and_large_uploads() {
    for db in databases() {
        let f = Fixture::with(db, AppMode::PasswordAndOtp, |c| {
            c.authenticator.backup_max_bytes = 4096
        })
        .await;
        f.user("ute", true).await;
        let uri = f.token("ute", "totp").await;
        // No session: 401.
        let r =
            f.s.client
                .get(f.s.url("/api/v1/me/backup"))
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 401);
        // A wrong code: the same answer as any failed login.
        let r = f
            .s
            .client
            .post(f.s.url("/api/v1/me/login"))
            .json(&serde_json::json!({"username": "ute", "password": PASSWORD, "otp": "000000"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        // After a wrong code the next try waits for the next time step.
        f.s.clock.advance(30);
        let s = session(&f, &uri).await;
        let get = |s: String| {
            let f = &f;
            async move {
                let r =
                    f.s.client
                        .get(f.s.url("/api/v1/me/backup"))
                        .bearer_auth(s)
                        .send()
                        .await
                        .unwrap();
                let status = r.status().as_u16();
                let etag = r
                    .headers()
                    .get("etag")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                (status, etag, r.bytes().await.unwrap().to_vec())
            }
        };
        assert_eq!(get(s.clone()).await.0, 404);

        // An upload must say which generation it replaces.
        let r =
            f.s.client
                .put(f.s.url("/api/v1/me/backup"))
                .bearer_auth(&s)
                .body(vec![1u8; 10])
                .send()
                .await
                .unwrap();
        assert_eq!(r.status(), 400);
        let (st, etag, body) = put(&f, &s, ("if-none-match", "*"), b"first blob".to_vec()).await;
        assert_eq!(
            (st, etag.as_str(), body["generation"].as_i64()),
            (201, "\"g1\"", Some(1))
        );
        // A second "first" upload, or one naming an old generation, is refused.
        assert_eq!(
            put(&f, &s, ("if-none-match", "*"), b"x".to_vec()).await.0,
            412
        );
        let (st, _, body) = put(&f, &s, ("if-match", "\"g2\""), b"x".to_vec()).await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (412, Some("backup_conflict"))
        );
        assert_eq!(
            put(&f, &s, ("if-match", "\"g1\""), b"second blob".to_vec())
                .await
                .0,
            201
        );
        assert_eq!(
            put(&f, &s, ("if-match", "\"g2\""), b"third blob".to_vec())
                .await
                .0,
            201
        );
        // A stale device that still thinks g1 is newest.
        assert_eq!(
            put(&f, &s, ("if-match", "\"g1\""), b"stale".to_vec())
                .await
                .0,
            412
        );
        let (st, etag, bytes) = get(s.clone()).await;
        assert_eq!(
            (st, etag.as_str(), bytes.as_slice()),
            (200, "\"g3\"", b"third blob".as_slice())
        );
        // The limit: exactly the limit is fine, one byte more is 413.
        let (st, _, body) = put(&f, &s, ("if-match", "\"g3\""), vec![7u8; 4097]).await;
        assert_eq!(
            (st, body["error"]["code"].as_str()),
            (413, Some("payload_too_large"))
        );
        assert_eq!(
            put(&f, &s, ("if-match", "\"g3\""), vec![7u8; 4096]).await.0,
            201
        );

        // Two generations kept.
        let store = f.s.app.service.store().clone();
        let ute = store.user_by_name("ute").await.unwrap().unwrap();
        let meta: serde_json::Value =
            f.s.client
                .get(f.s.url("/api/v1/me/backup/meta"))
                .bearer_auth(&s)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(meta["generation"], 4);
        assert_eq!(meta["size"], 4096);
        assert!(meta["reset_at"].is_null());
        assert_eq!(meta["generations"], serde_json::json!([3, 4]));
        // A kit rotation deletes the generations below the new one.
        let r =
            f.s.client
                .delete(f.s.url("/api/v1/me/backup?older_than=4"))
                .bearer_auth(&s)
                .send()
                .await
                .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["deleted"], 1);
        assert_eq!(
            store.vault_backup_generations(ute.id).await.unwrap(),
            vec![4]
        );

        // The audit rows name sizes and generations, never the content.
        let rows =
            f.s.app
                .service
                .list_audit(
                    &Actor::operator(),
                    AuditFilter {
                        action: Some("vault_backup.upload".into()),
                        limit: 50,
                        ..AuditFilter::default()
                    },
                )
                .await
                .unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].event.reason, "generation 4, 4096 bytes");
        assert!(rows.iter().all(|r| !r.event.reason.contains("blob")));

        // An account reset removes the blobs and records when; the old session ends.
        f.s.clock.advance(60);
        f.s.app
            .service
            .admin_reset_account(&Actor::operator(), "ute", "another password 1", "")
            .await
            .unwrap();
        assert!(store.latest_vault_backup(ute.id).await.unwrap().is_none());
        assert_eq!(
            store.vault_backup_reset_at(ute.id).await.unwrap(),
            Some(i64::try_from(f.now()).unwrap())
        );
        assert_eq!(get(s.clone()).await.0, 401);
    }
}
