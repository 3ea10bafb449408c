//! The store contract: one set of behaviours, run against SQLite always and against PostgreSQL
//! when `TESSERA_TEST_POSTGRES_URL` is set (each test in its own new database).

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
        let (page, total) = s.list_users("", 2, 0).await.unwrap();
        assert_eq!(total, 4, "{db}");
        assert_eq!(page.len(), 2);
        assert_eq!(page[0].username, "carol");
        let (found, total) = s.list_users("DAV", 10, 0).await.unwrap();
        assert_eq!((found.len(), total), (1, 1), "{db}");
        // LIKE wildcards in the search are literal.
        let (found, _) = s.list_users("_x", 10, 0).await.unwrap();
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
        assert!(s.delete_token(t.id).await.unwrap());
        assert!(s.tokens_of(u.id).await.unwrap().is_empty(), "{db}");
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
        assert_eq!(s.record_token_failure(t.id).await.unwrap(), 1);
        assert_eq!(s.record_token_failure(t.id).await.unwrap(), 2, "{db}");
        s.throttle_token(t.id, 500, false).await.unwrap();
        // A shorter throttle never shortens a longer one.
        s.throttle_token(t.id, 400, false).await.unwrap();
        let got = s.token(t.id).await.unwrap().unwrap();
        assert_eq!(
            (got.throttled_until, got.state),
            (500, TokenState::Active),
            "{db}"
        );
        s.throttle_token(t.id, 900, true).await.unwrap();
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
            .insert_app("vpn", "tk_abcd", "hash1", AppMode::OtpOnly, 3)
            .await
            .unwrap();
        assert_eq!(
            s.app_by_key_hash("hash1").await.unwrap().unwrap(),
            a,
            "{db}"
        );
        let dup = s.insert_app("vpn", "x", "hash2", AppMode::OtpOnly, 3).await;
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

fn event(n: i64, user: &str, action: &str) -> AuditEvent {
    AuditEvent {
        at: 1000 + n,
        actor: "cli:operator".into(),
        action: action.into(),
        target: format!("user:{user}"),
        username: user.into(),
        source: "cli".into(),
        result: "success".into(),
        reason: String::new(),
    }
}

#[tokio::test]
async fn audit_appends_a_chain_and_filters() {
    for (db, s) in testing::stores().await {
        let first = s.append_audit(&event(1, "amy", "user.add")).await.unwrap();
        assert_eq!(first.seq, 1);
        assert_eq!(first.prev_hash, AUDIT_GENESIS);
        let second = s.append_audit(&event(2, "ben", "token.add")).await.unwrap();
        assert_eq!(second.prev_hash, first.hash, "{db}");
        assert_eq!(
            second.hash,
            audit_chain_hash(&first.hash, 2, &event(2, "ben", "token.add"))
        );
        s.append_audit(&event(3, "amy", "token.add")).await.unwrap();
        assert_eq!(s.audit_head().await.unwrap().0, 3);
        let all = s
            .list_audit(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![3, 2, 1],
            "{db}"
        );
        let amy = s
            .list_audit(&AuditFilter {
                username: Some("amy".into()),
                action: Some("token.add".into()),
                since: Some(1002),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(amy.len(), 1, "{db}");
        assert_eq!(amy[0].seq, 3);
        let after = s.audit_after(1, 10).await.unwrap();
        assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_audit_appends_stay_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = testing::stores().await;
    stores.push(("sqlite-file", testing::sqlite_file_store(dir.path()).await));
    for (db, s) in stores {
        let tasks: Vec<_> = (0..20)
            .map(|n| {
                let s = s.clone();
                tokio::spawn(async move { s.append_audit(&event(n, "x", "a")).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let entries = s.audit_after(0, 100).await.unwrap();
        assert_eq!(entries.len(), 20, "{db}");
        let mut prev = AUDIT_GENESIS.to_owned();
        for e in &entries {
            assert_eq!(e.prev_hash, prev, "{db}: entry {}", e.seq);
            assert_eq!(e.hash, audit_chain_hash(&prev, e.seq, &e.event));
            prev = e.hash.clone();
        }
    }
}

fn invitation(user: UserId, id_hash: &str, created_at: i64) -> Invitation {
    Invitation {
        id_hash: id_hash.to_owned(),
        user_id: user,
        created_at,
        expires_at: created_at + 3600,
        used_at: None,
        superseded: false,
        failed_attempts: 0,
        token_id: None,
    }
}

#[tokio::test]
async fn a_new_invitation_supersedes_older_ones_and_is_used_once() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("ina"), 1).await.unwrap();
        let other = s.insert_user(&new_user("otto"), 1).await.unwrap();
        s.insert_invitation(&invitation(u.id, "h1", 10))
            .await
            .unwrap();
        s.insert_invitation(&invitation(other.id, "o1", 10))
            .await
            .unwrap();
        assert_eq!(
            s.invitation("h1").await.unwrap().unwrap(),
            invitation(u.id, "h1", 10),
            "{db}"
        );
        s.insert_invitation(&invitation(u.id, "h2", 20))
            .await
            .unwrap();
        assert!(
            s.invitation("h1").await.unwrap().unwrap().superseded,
            "{db}"
        );
        assert!(!s.invitation("h2").await.unwrap().unwrap().superseded);
        // Another user's invitation is untouched.
        assert!(
            !s.invitation("o1").await.unwrap().unwrap().superseded,
            "{db}"
        );
        assert!(
            !s.use_invitation("h1", 30).await.unwrap(),
            "{db}: superseded"
        );
        assert!(s.use_invitation("h2", 30).await.unwrap(), "{db}");
        assert!(!s.use_invitation("h2", 31).await.unwrap(), "{db}: twice");
        assert_eq!(s.invitation("h2").await.unwrap().unwrap().used_at, Some(30));
        // A used invitation is not superseded by a newer one (it stays "used").
        s.insert_invitation(&invitation(u.id, "h3", 40))
            .await
            .unwrap();
        assert!(
            !s.invitation("h2").await.unwrap().unwrap().superseded,
            "{db}"
        );
        s.supersede_invitations(u.id).await.unwrap();
        assert!(
            s.invitation("h3").await.unwrap().unwrap().superseded,
            "{db}"
        );
        assert!(s.invitation("nope").await.unwrap().is_none());
        let dup = s.insert_invitation(&invitation(u.id, "h3", 50)).await;
        assert!(matches!(dup, Err(StoreError::Conflict)), "{db}: {dup:?}");
    }
}

#[tokio::test]
async fn invitation_token_attaches_once_and_failures_count() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("ivy"), 1).await.unwrap();
        let t1 = s.insert_token(&new_token(u.id, "E1"), 1).await.unwrap();
        let t2 = s.insert_token(&new_token(u.id, "E2"), 1).await.unwrap();
        s.insert_invitation(&invitation(u.id, "i1", 10))
            .await
            .unwrap();
        assert!(
            s.attach_invitation_token("i1", t1.id).await.unwrap(),
            "{db}"
        );
        assert!(
            !s.attach_invitation_token("i1", t2.id).await.unwrap(),
            "{db}"
        );
        assert_eq!(
            s.invitation("i1").await.unwrap().unwrap().token_id,
            Some(t1.id)
        );
        assert_eq!(s.record_invitation_failure("i1").await.unwrap(), 1);
        assert_eq!(s.record_invitation_failure("i1").await.unwrap(), 2, "{db}");
        // Deleting the token leaves the invitation without one.
        assert!(s.delete_token(t1.id).await.unwrap());
        assert_eq!(
            s.invitation("i1").await.unwrap().unwrap().token_id,
            None,
            "{db}"
        );
        // Deleting the user removes the invitation.
        assert!(s.delete_user(u.id).await.unwrap());
        assert!(s.invitation("i1").await.unwrap().is_none(), "{db}");
    }
}

#[tokio::test]
async fn users_needing_enrollment_have_otp_required_and_no_active_token() {
    for (db, s) in testing::stores().await {
        let mut names = Vec::new();
        for (name, required, token) in [
            ("a-pending", true, Some(TokenState::Pending)),
            ("b-done", true, Some(TokenState::Active)),
            ("c-none", true, None),
            ("d-optional", false, None),
        ] {
            let mut u = s.insert_user(&new_user(name), 1).await.unwrap();
            u.otp_required = required;
            s.update_user(&u).await.unwrap();
            if let Some(state) = token {
                let mut t = new_token(u.id, &format!("N-{name}"));
                t.state = state;
                s.insert_token(&t, 1).await.unwrap();
            }
            names.push(u);
        }
        let mut disabled = names[2].clone();
        let pending: Vec<String> = s
            .users_needing_enrollment()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect();
        assert_eq!(pending, vec!["a-pending", "c-none"], "{db}");
        disabled.state = UserState::Disabled;
        s.update_user(&disabled).await.unwrap();
        assert_eq!(s.users_needing_enrollment().await.unwrap().len(), 1, "{db}");
    }
}

#[tokio::test]
async fn recovery_codes_are_replaced_whole_and_used_once() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("rita"), 1).await.unwrap();
        assert_eq!(s.recovery_enabled(u.id).await.unwrap(), None, "{db}");
        assert!(s.set_recovery_enabled(u.id, Some(false)).await.unwrap());
        assert_eq!(s.recovery_enabled(u.id).await.unwrap(), Some(false), "{db}");
        s.set_recovery_enabled(u.id, None).await.unwrap();
        assert_eq!(s.recovery_enabled(u.id).await.unwrap(), None, "{db}");

        let first: Vec<String> = (0..3).map(|n| format!("old{n}")).collect();
        s.replace_recovery_codes(u.id, &first, 5).await.unwrap();
        let second: Vec<String> = (0..10).map(|n| format!("new{n}")).collect();
        s.replace_recovery_codes(u.id, &second, 6).await.unwrap();
        let stored = s.recovery_codes_of(u.id).await.unwrap();
        assert_eq!(stored.len(), 10, "{db}");
        assert!(
            stored
                .iter()
                .all(|c| c.created_at == 6 && c.used_at.is_none())
        );
        assert!(!s.use_recovery_code(u.id, "old0", 7).await.unwrap(), "{db}");
        assert!(s.use_recovery_code(u.id, "new3", 7).await.unwrap(), "{db}");
        assert!(!s.use_recovery_code(u.id, "new3", 8).await.unwrap(), "{db}");
        let used: Vec<_> = s
            .recovery_codes_of(u.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.used_at.is_some())
            .collect();
        assert_eq!(used.len(), 1);
        assert_eq!(
            (used[0].code_hash.as_str(), used[0].used_at),
            ("new3", Some(7))
        );
        assert!(s.delete_user(u.id).await.unwrap());
        assert!(s.recovery_codes_of(u.id).await.unwrap().is_empty(), "{db}");
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
async fn batched_writes_keep_order_and_audit_only_won_advances() {
    use crate::store::{WriteOp, WriteResult};
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("olaf"), 1).await.unwrap();
        let t1 = s.insert_token(&new_token(u.id, "B1"), 1).await.unwrap();
        let t2 = s.insert_token(&new_token(u.id, "B2"), 1).await.unwrap();
        let ops = vec![
            WriteOp::Audit(event(1, "olaf", "first")),
            // Same counter twice in one batch: the first wins, the second is a replay.
            WriteOp::Advance {
                token: t2.id,
                advance: adv(3),
                audit: Some(event(2, "olaf", "won")),
            },
            WriteOp::Advance {
                token: t2.id,
                advance: adv(3),
                audit: Some(event(3, "olaf", "lost")),
            },
            WriteOp::Advance {
                token: t1.id,
                advance: adv(1),
                audit: None,
            },
            WriteOp::Audit(event(4, "olaf", "last")),
        ];
        let r = s.apply_writes(&ops).await.unwrap();
        assert_eq!(r.len(), 5, "{db}");
        assert!(matches!(&r[1], WriteResult::Advanced(true, Some(e)) if e.event.action == "won"));
        assert_eq!(r[2], WriteResult::Advanced(false, None), "{db}");
        assert_eq!(r[3], WriteResult::Advanced(true, None), "{db}");
        let actions: Vec<String> = s
            .audit_after(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.action)
            .collect();
        assert_eq!(actions, ["first", "won", "last"], "{db}");
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

#[tokio::test]
async fn audit_chain_stays_linear_when_another_process_appends_between_batches() {
    // Two stores on one SQLite file: the server and a CLI run beside it. Each remembers the
    // chain's head between its own batches; the other's appends must be noticed.
    let dir = tempfile::tempdir().unwrap();
    let server = testing::sqlite_file_store(dir.path()).await;
    let cli = testing::sqlite_file_store(dir.path()).await;
    for (n, s) in [
        (1, &server),
        (2, &cli),
        (3, &server),
        (4, &server),
        (5, &cli),
        (6, &server),
    ] {
        s.append_audit(&event(n, "x", "a")).await.unwrap();
    }
    let entries = server.audit_after(0, 100).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    let mut prev = AUDIT_GENESIS.to_owned();
    for e in &entries {
        assert_eq!(e.prev_hash, prev, "entry {}", e.seq);
        assert_eq!(e.hash, audit_chain_hash(&prev, e.seq, &e.event));
        prev = e.hash.clone();
    }
    assert_eq!(server.audit_head().await.unwrap(), (6, prev));
}

#[tokio::test]
async fn recovery_delivery_and_password_hint_per_user() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("hilde"), 1).await.unwrap();
        assert_eq!(s.recovery_delivery(u.id).await.unwrap(), None, "{db}");
        assert!(s.set_recovery_delivery(u.id, Some("email")).await.unwrap());
        assert_eq!(
            s.recovery_delivery(u.id).await.unwrap().as_deref(),
            Some("email"),
            "{db}"
        );
        assert!(s.set_recovery_delivery(u.id, None).await.unwrap());
        assert_eq!(s.recovery_delivery(u.id).await.unwrap(), None, "{db}");
        assert!(
            !s.set_recovery_delivery(UserId(u.id.0 + 100), Some("show"))
                .await
                .unwrap()
        );

        assert_eq!(
            s.password_hint(u.id).await.unwrap().as_deref(),
            Some(""),
            "{db}"
        );
        let invitation = Invitation {
            id_hash: "inv-hilde".into(),
            user_id: u.id,
            created_at: 2,
            expires_at: 1000,
            used_at: None,
            superseded: false,
            failed_attempts: 0,
            token_id: None,
        };
        assert!(
            s.reset_account(u.id, None, "new-hash", "the red one", &invitation, 2)
                .await
                .unwrap()
        );
        assert_eq!(
            s.password_hint(u.id).await.unwrap().as_deref(),
            Some("the red one"),
            "{db}"
        );
        assert_eq!(
            s.password_hint(UserId(u.id.0 + 100)).await.unwrap(),
            None,
            "{db}"
        );
    }
}
