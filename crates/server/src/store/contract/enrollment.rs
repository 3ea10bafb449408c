//! The store contract: invitations, enrollment and recovery (see `mod.rs`).

use crate::model::*;
use crate::store::StoreError;
use crate::testing;

use super::{new_token, new_user};

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
