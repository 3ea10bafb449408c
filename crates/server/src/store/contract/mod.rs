//! The store contract: one set of behaviours, run against SQLite always and against PostgreSQL
//! when `TESSERA_TEST_POSTGRES_URL` is set (each test in its own new database).
//! Split by resource: users, tokens, applications and sessions here; the audit chain and group
//! commit in `audit.rs`; invitations and recovery in `enrollment.rs`.

mod audit;
mod enrollment;
mod inventory;
mod radius;

use std::sync::Arc;

use crate::model::*;
use crate::store::{Advance, Store, StoreError};
use crate::testing;

fn new_user(name: &str) -> NewUser {
    NewUser {
        username: name.to_owned(),
        display_name: format!("{name} display"),
        email: format!("{name}@example.com"),
        phone: String::new(),
        sms_enabled: false,
        language: Language::En,
        otp_required: false,
        role: Role::User,
        password_hash: None,
    }
}

fn new_token(user: UserId, serial: &str) -> NewToken {
    NewToken {
        user_id: user,
        serial: Serial(serial.to_owned()),
        kind: TokenKind::Totp,
        name: "phone".into(),
        algorithm: tessera_otp::HashAlgorithm::Sha1,
        digits: 6,
        period: 30,
        sealed_secret: vec![1, 2, 3],
        state: TokenState::Active,
        next_counter: 0,
    }
}

fn adv(matched: i64) -> Advance {
    Advance {
        matched,
        drift: 0,
        from: TokenState::Active,
        to: TokenState::Active,
        now: 1000,
        fails: 0,
        request: None,
    }
}

#[test]
fn migration_lists_are_the_same_for_both_dialects() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let list = |d: &str| {
        let mut v: Vec<String> = std::fs::read_dir(dir.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let sqlite = list("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, list("postgres"));
}

#[tokio::test]
async fn applied_migrations_match_files() {
    for (db, s) in testing::stores().await {
        let applied = s.applied_migrations().await.unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        let files = std::fs::read_dir(dir).unwrap().count();
        assert_eq!(applied.len(), files, "{db}: {applied:?}");
        // Applying again is a no-op.
        s.migrate().await.unwrap();
    }
}

#[tokio::test]
async fn usernames_are_unique_ignoring_case() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("Alice"), 10).await.unwrap();
        assert_eq!(u.username, "Alice");
        assert!(!u.sms_enabled, "{db}: stored as given");
        let texted = NewUser {
            phone: "+49 30 1234".into(),
            sms_enabled: true,
            ..new_user("Paula")
        };
        let p = s.insert_user(&texted, 10).await.unwrap();
        assert!(p.sms_enabled, "{db}");
        let found = s.user_by_name("alice").await.unwrap().expect(db);
        assert_eq!(found.id, u.id);
        let dup = s.insert_user(&new_user("ALICE"), 10).await;
        assert!(matches!(dup, Err(StoreError::Conflict)), "{db}: {dup:?}");
        assert!(s.user_by_name("bob").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn user_update_and_search_with_paging() {
    for (db, s) in testing::stores().await {
        for n in ["carol", "dave", "erin", "frank_x"] {
            s.insert_user(&new_user(n), 1).await.unwrap();
        }
        let (page, total) = s.list_users("", UserFilter::All, 0, 2, 0).await.unwrap();
        assert_eq!(total, 4, "{db}");
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].username, "carol");
        let (found, total) = s
            .list_users("DAV", UserFilter::All, 0, 10, 0)
            .await
            .unwrap();
        assert_eq!((found.len(), total), (1, 1), "{db}");
        // LIKE wildcards in the search are literal.
        let (found, _) = s.list_users("_x", UserFilter::All, 0, 10, 0).await.unwrap();
        assert_eq!(found.len(), 1, "{db}");
        let mut u = found[0].clone();
        u.phone = "+49 30 1234".into();
        u.otp_required = true;
        u.role = Role::Admin;
        u.updated_at = 99;
        assert!(s.update_user(&u).await.unwrap());
        assert_eq!(s.user(u.id).await.unwrap().unwrap(), u, "{db}");
    }
}

#[tokio::test]
async fn deleting_a_user_removes_tokens_and_sessions() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("gina"), 1).await.unwrap();
        let t = s.insert_token(&new_token(u.id, "S1"), 1).await.unwrap();
        s.insert_session(&Session {
            token_hash: "h".into(),
            user_id: u.id,
            created_at: 1,
            last_seen_at: 1,
            expires_at: 100,
            reauth_until: 0,
        })
        .await
        .unwrap();
        assert!(s.delete_user(u.id).await.unwrap());
        assert!(s.token(t.id).await.unwrap().is_none(), "{db}");
        assert!(s.session("h").await.unwrap().is_none(), "{db}");
        assert!(!s.delete_user(u.id).await.unwrap());
    }
}

#[tokio::test]
async fn token_round_trip_and_serial_conflict() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("hank"), 1).await.unwrap();
        let t = s.insert_token(&new_token(u.id, "TOTP-1"), 5).await.unwrap();
        assert_eq!(t.sealed_secret, vec![1, 2, 3]);
        assert_eq!(t.created_at, 5);
        assert_eq!(s.token(t.id).await.unwrap().unwrap(), t, "{db}");
        let dup = s.insert_token(&new_token(u.id, "TOTP-1"), 5).await;
        assert!(matches!(dup, Err(StoreError::Conflict)), "{db}");
        assert!(
            s.update_token(t.id, "work phone", TokenState::Disabled)
                .await
                .unwrap()
        );
        let t2 = s.token(t.id).await.unwrap().unwrap();
        assert_eq!(
            (t2.name.as_str(), t2.state),
            ("work phone", TokenState::Disabled)
        );
        assert_eq!(s.tokens_of(u.id).await.unwrap().len(), 1);
        assert_eq!(s.count_tokens().await.unwrap(), 1, "{db}");
        assert!(s.delete_token(t.id).await.unwrap());
        assert!(s.tokens_of(u.id).await.unwrap().is_empty(), "{db}");
        assert_eq!(s.count_tokens().await.unwrap(), 0, "{db}");
    }
}

#[tokio::test]
async fn advance_accepts_each_counter_once() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("ivan"), 1).await.unwrap();
        let t = s.insert_token(&new_token(u.id, "T"), 1).await.unwrap();
        assert!(s.advance_token(t.id, adv(5)).await.unwrap(), "{db}");
        assert!(
            !s.advance_token(t.id, adv(5)).await.unwrap(),
            "{db}: replay"
        );
        assert!(!s.advance_token(t.id, adv(4)).await.unwrap(), "{db}: older");
        assert!(s.advance_token(t.id, adv(6)).await.unwrap(), "{db}");
        let t = s.token(t.id).await.unwrap().unwrap();
        assert_eq!(t.next_counter, 7);
        assert_eq!(t.last_used_at, Some(1000));
        // The state guard: a pending token is not advanced as if active.
        let p = s.insert_token(&new_token(u.id, "P"), 1).await.unwrap();
        s.update_token(p.id, "p", TokenState::Pending)
            .await
            .unwrap();
        assert!(!s.advance_token(p.id, adv(1)).await.unwrap(), "{db}");
        let activate = Advance {
            from: TokenState::Pending,
            to: TokenState::Active,
            ..adv(1)
        };
        assert!(s.advance_token(p.id, activate).await.unwrap(), "{db}");
        assert_eq!(
            s.token(p.id).await.unwrap().unwrap().state,
            TokenState::Active
        );
    }
}

async fn concurrent_advance_accepts_once(db: &str, s: Arc<dyn Store>) {
    let u = s.insert_user(&new_user("judy"), 1).await.unwrap();
    let t = s.insert_token(&new_token(u.id, "C"), 1).await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.advance_token(t.id, adv(42)).await.unwrap() })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        if task.await.unwrap() {
            accepted += 1;
        }
    }
    assert_eq!(
        accepted, 1,
        "{db}: exactly one of 50 concurrent advances wins"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_advances_accept_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_advance_accepts_once("sqlite-file", testing::sqlite_file_store(dir.path()).await)
        .await;
    for (db, s) in testing::stores().await {
        concurrent_advance_accepts_once(db, s).await;
    }
}

#[tokio::test]
async fn failures_throttle_lock_and_unlock() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("kim"), 1).await.unwrap();
        let t = s.insert_token(&new_token(u.id, "F"), 1).await.unwrap();
        assert!(s.count_token_failure(t.id, 0, 500, false).await.unwrap());
        // Counted against a count that moved on: a concurrent failure counted first.
        assert!(
            !s.count_token_failure(t.id, 0, 600, false).await.unwrap(),
            "{db}"
        );
        // A shorter throttle never shortens a longer one.
        assert!(s.count_token_failure(t.id, 1, 400, false).await.unwrap());
        let got = s.token(t.id).await.unwrap().unwrap();
        assert_eq!(
            (got.fail_count, got.throttled_until, got.state),
            (2, 500, TokenState::Active),
            "{db}"
        );
        // An accept that saw the count before a failure is refused.
        let mut stale = adv(5);
        stale.now = 600;
        assert!(!s.advance_token(t.id, stale).await.unwrap(), "{db}");
        assert!(s.count_token_failure(t.id, 2, 900, true).await.unwrap());
        assert_eq!(
            s.token(t.id).await.unwrap().unwrap().state,
            TokenState::Locked
        );
        assert!(s.unlock_token(t.id).await.unwrap());
        let got = s.token(t.id).await.unwrap().unwrap();
        assert_eq!(
            (got.state, got.fail_count, got.throttled_until),
            (TokenState::Active, 0, 0),
            "{db}"
        );
        assert!(s.resync_token(t.id, 77, -2, 5).await.unwrap());
        let got = s.token(t.id).await.unwrap().unwrap();
        assert_eq!((got.next_counter, got.drift), (77, -2));
    }
}

#[tokio::test]
async fn applications_by_key_hash_and_revocation() {
    for (db, s) in testing::stores().await {
        let a = s
            .insert_app("vpn", "tk_abcd", "hash1", AppMode::OtpOnly, false, 3)
            .await
            .unwrap();
        assert_eq!(
            s.app_by_key_hash("hash1").await.unwrap().unwrap(),
            a,
            "{db}"
        );
        let dup = s
            .insert_app("vpn", "x", "hash2", AppMode::OtpOnly, false, 3)
            .await;
        assert!(matches!(dup, Err(StoreError::Conflict)), "{db}");
        assert!(s.revoke_app(a.id, 9).await.unwrap());
        assert!(
            !s.revoke_app(a.id, 9).await.unwrap(),
            "{db}: revoking twice"
        );
        let a = s.app(a.id).await.unwrap().unwrap();
        assert_eq!((a.state, a.revoked_at), (AppState::Revoked, Some(9)));
        assert_eq!(s.list_apps().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn sessions_touch_reauth_delete() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("leo"), 1).await.unwrap();
        let mut sess = Session {
            token_hash: "abc".into(),
            user_id: u.id,
            created_at: 1,
            last_seen_at: 1,
            expires_at: 100,
            reauth_until: 0,
        };
        s.insert_session(&sess).await.unwrap();
        s.touch_session("abc", 7).await.unwrap();
        s.set_session_reauth("abc", 300).await.unwrap();
        sess.last_seen_at = 7;
        sess.reauth_until = 300;
        assert_eq!(s.session("abc").await.unwrap().unwrap(), sess, "{db}");
        s.delete_session("abc").await.unwrap();
        assert!(s.session("abc").await.unwrap().is_none(), "{db}");
    }
}

#[tokio::test]
async fn expired_sessions_and_spent_challenges_are_purged() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("pia"), 1).await.unwrap();
        let t = s.insert_token(&new_token(u.id, "P1"), 1).await.unwrap();
        // now = 1000; idle since 900 or earlier = too long; challenges kept from 400 on.
        let sessions = [
            ("ended", 50, 1000),
            ("idle", 900, 5000),
            ("live", 950, 5000),
        ];
        for (hash, last_seen_at, expires_at) in sessions {
            s.insert_session(&Session {
                token_hash: hash.into(),
                user_id: u.id,
                created_at: 1,
                last_seen_at,
                expires_at,
                reauth_until: 0,
            })
            .await
            .unwrap();
            s.insert_web_session(&WebSession {
                id_hash: hash.into(),
                user_id: u.id,
                created_at: 1,
                last_seen_at,
                expires_at,
                reauth_until: 0,
                csrf_secret: "c".into(),
            })
            .await
            .unwrap();
        }
        let challenges = [
            ("old", 100, 400),
            ("counted", 500, 800),
            ("open", 990, 1200),
        ];
        for (id_hash, created_at, expires_at) in challenges {
            s.insert_challenge(&Challenge {
                id_hash: id_hash.into(),
                user_id: u.id,
                token_id: t.id,
                code_hash: "h".into(),
                created_at,
                expires_at,
                attempts: 0,
                used: false,
            })
            .await
            .unwrap();
        }
        assert_eq!(s.purge_expired(1000, 900, 400, 0).await.unwrap(), 5, "{db}");
        for (hash, ..) in sessions {
            let kept = hash == "live";
            assert_eq!(
                s.session(hash).await.unwrap().is_some(),
                kept,
                "{db} {hash}"
            );
            assert_eq!(
                s.web_session(hash).await.unwrap().is_some(),
                kept,
                "{db} {hash}"
            );
        }
        for (id_hash, ..) in challenges {
            let kept = id_hash != "old";
            assert_eq!(
                s.challenge(id_hash).await.unwrap().is_some(),
                kept,
                "{db} {id_hash}"
            );
        }
        assert_eq!(
            s.count_challenges_since(u.id, 401).await.unwrap(),
            2,
            "{db}: what still counts is kept"
        );
        assert_eq!(s.purge_expired(1000, 900, 400, 0).await.unwrap(), 0, "{db}");
    }
}

#[tokio::test]
async fn mailed_links_are_purged_after_they_expired() {
    use crate::model::{BlockLink, Invitation, RecoveryRequest, ResetRequest};
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("lia"), 1).await.unwrap();
        // Links that expired before 1000 go; the recovery request `led` stays because the
        // invitation it led to is still kept.
        let invitation = |id: &str, expires_at| Invitation {
            id_hash: id.into(),
            user_id: u.id,
            created_at: 1,
            expires_at,
            used_at: None,
            superseded: false,
            failed_attempts: 0,
            token_id: None,
        };
        for (id, expires_at) in [("inv-old", 999), ("inv-kept", 1000), ("inv-led-old", 10)] {
            s.insert_invitation(&invitation(id, expires_at))
                .await
                .unwrap();
        }
        let recovery = |id: &str, invitation_hash: Option<&str>| RecoveryRequest {
            id_hash: id.into(),
            user_id: u.id,
            code_hash: "h".into(),
            created_at: 1,
            expires_at: 500,
            attempts: 0,
            used_at: invitation_hash.map(|_| 2),
            invitation_hash: invitation_hash.map(Into::into),
            source: "127.0.0.1".into(),
        };
        for (id, led_to) in [
            ("rec-unused", None),
            ("rec-led", Some("inv-kept")),
            ("rec-led-old", Some("inv-led-old")),
        ] {
            s.insert_recovery_request(&recovery(id, led_to))
                .await
                .unwrap();
        }
        for (id, expires_at) in [("reset-old", 20), ("reset-kept", 5000)] {
            s.insert_reset_request(&ResetRequest {
                id_hash: id.into(),
                user_id: u.id,
                created_at: 1,
                expires_at,
                used_at: None,
            })
            .await
            .unwrap();
        }
        for (id, expires_at) in [("block-old", 30), ("block-kept", 1001)] {
            s.insert_block_link(&BlockLink {
                id_hash: id.into(),
                user_id: u.id,
                token_id: None,
                event: "device.add".into(),
                created_at: 1,
                expires_at,
                used_at: None,
            })
            .await
            .unwrap();
        }
        assert_eq!(s.purge_expired(1, 0, 0, 1000).await.unwrap(), 6, "{db}");
        for (id, kept) in [
            ("inv-old", false),
            ("inv-kept", true),
            ("inv-led-old", false),
        ] {
            assert_eq!(s.invitation(id).await.unwrap().is_some(), kept, "{db} {id}");
        }
        for (id, kept) in [
            ("rec-unused", false),
            ("rec-led", true),
            ("rec-led-old", false),
        ] {
            assert_eq!(
                s.recovery_request(id).await.unwrap().is_some(),
                kept,
                "{db} {id}"
            );
        }
        for (id, kept) in [("reset-old", false), ("reset-kept", true)] {
            assert_eq!(
                s.reset_request(id).await.unwrap().is_some(),
                kept,
                "{db} {id}"
            );
        }
        for (id, kept) in [("block-old", false), ("block-kept", true)] {
            assert_eq!(s.block_link(id).await.unwrap().is_some(), kept, "{db} {id}");
        }
        // Once its invitation is gone, the recovery request goes too.
        assert_eq!(s.purge_expired(1, 0, 0, 1001).await.unwrap(), 2, "{db}");
        assert!(
            s.recovery_request("rec-led").await.unwrap().is_none(),
            "{db}"
        );
        assert_eq!(s.purge_expired(1, 0, 0, 1001).await.unwrap(), 0, "{db}");
    }
}

#[tokio::test]
async fn user_with_tokens_in_one_call() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("Nora"), 1).await.unwrap();
        let (got, tokens) = s.user_with_tokens("NORA").await.unwrap().expect(db);
        assert_eq!((got.id, tokens.len()), (u.id, 0), "{db}");
        let a = s.insert_token(&new_token(u.id, "A"), 1).await.unwrap();
        let b = s.insert_token(&new_token(u.id, "B"), 2).await.unwrap();
        let (_, tokens) = s.user_with_tokens("nora").await.unwrap().unwrap();
        assert_eq!(tokens, vec![a, b], "{db}");
        assert!(s.user_with_tokens("nobody").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn web_sessions_touch_reauth_and_end_except_the_current_one() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("wanda"), 1).await.unwrap();
        let mut sess = WebSession {
            id_hash: "one".into(),
            user_id: u.id,
            created_at: 1,
            last_seen_at: 1,
            expires_at: 100,
            reauth_until: 0,
            csrf_secret: "csrf".into(),
        };
        s.insert_web_session(&sess).await.unwrap();
        s.insert_web_session(&WebSession {
            id_hash: "two".into(),
            ..sess.clone()
        })
        .await
        .unwrap();
        s.touch_web_session("one", 7).await.unwrap();
        s.set_web_session_reauth("one", 300).await.unwrap();
        sess.last_seen_at = 7;
        sess.reauth_until = 300;
        assert_eq!(s.web_session("one").await.unwrap().unwrap(), sess, "{db}");
        s.delete_web_sessions_of(u.id, "one").await.unwrap();
        assert!(s.web_session("two").await.unwrap().is_none(), "{db}");
        assert!(s.web_session("one").await.unwrap().is_some(), "{db}");
        s.delete_web_session("one").await.unwrap();
        assert!(s.web_session("one").await.unwrap().is_none(), "{db}");
    }
}
