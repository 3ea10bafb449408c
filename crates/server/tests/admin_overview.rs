//! The admin area finds the users who need help (issue: admin overview): the user list filters
//! locked users, users without a working device and pending enrollments, with one invitation for
//! all of them; a device's buttons depend on its state; deleting a user always asks first, naming
//! the user; a confirmation's "cancel" leads back to where the action started.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod web_support;

use common::{TestServer, databases};
use tessera_server::model::{Role, TokenState};
use tessera_server::service::{Actor, AddToken, TokenAction, UserChanges};
use web_support::{Browser, PASSWORD, add_totp, add_user, hidden};

/// The usernames linked in a user list page.
fn listed(body: &str) -> Vec<String> {
    body.split("<td><a href=\"/admin/users/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_user_list_filters_those_who_need_help_and_invites_them_at_once() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |_| {}).await;
        let svc = &s.app.service;
        let op = Actor::operator();
        add_user(&s, "root", Role::Admin, false).await;
        // Fine: a working app.
        add_user(&s, "fine", Role::User, true).await;
        add_totp(&s, "fine", "phone").await;
        // Locked: self-service locked after "this wasn't me" (the device still works).
        add_user(&s, "locked", Role::User, true).await;
        add_totp(&s, "locked", "phone").await;
        let id = svc.user_named("locked").await.unwrap().id;
        svc.store().set_self_service_locked(id, true).await.unwrap();
        // No device at all.
        add_user(&s, "nodevice", Role::User, true).await;
        // SMS only, then the number removed: the device stays but cannot send (and the change
        // mails the invitation: a pending enrollment).
        add_user(&s, "sms", Role::User, true).await;
        svc.add_token(
            &op,
            "sms",
            AddToken {
                kind: Some(tessera_server::model::TokenKind::Sms),
                ..AddToken::default()
            },
        )
        .await
        .unwrap();
        let (_, invitation) = svc
            .update_user_invited(
                &op,
                "sms",
                UserChanges {
                    phone: Some(String::new()),
                    ..UserChanges::default()
                },
            )
            .await
            .unwrap();
        assert!(matches!(invitation, Some(Ok(_))), "{db:?}");
        // Invited, not enrolled yet.
        add_user(&s, "invited", Role::User, true).await;
        svc.invite_user(&op, "invited", true).await.unwrap();

        let mut b = Browser::new(&s);
        assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
        let csrf = b.csrf().await;
        let all = b.get("/admin").await;
        assert_eq!(
            listed(&all.body),
            ["fine", "invited", "locked", "nodevice", "root", "sms"],
            "{db:?}"
        );
        assert!(
            !all.body.contains("/admin/invite-all"),
            "{db:?}: no bulk for all"
        );
        let page = b.get("/admin?filter=locked").await;
        assert_eq!(listed(&page.body), ["locked"], "{db:?}");
        assert!(page.body.contains(r#"aria-current="page""#), "{db:?}");
        let page = b.get("/admin?filter=no_device").await;
        assert_eq!(listed(&page.body), ["invited", "nodevice", "sms"], "{db:?}");
        let page = b.get("/admin?filter=pending").await;
        assert_eq!(listed(&page.body), ["invited", "sms"], "{db:?}");
        // Search and filter together.
        let page = b.get("/admin?filter=no_device&q=sm").await;
        assert_eq!(listed(&page.body), ["sms"], "{db:?}");

        // One click invites everyone without a working device.
        let page = b.get("/admin?filter=no_device").await;
        assert!(
            page.body.contains("Send all 3 a new setup link"),
            "{db:?}: {}",
            page.body
        );
        let done = b
            .post(
                "/admin/invite-all",
                &[("csrf", &csrf), ("filter", "no_device"), ("q", "")],
            )
            .await;
        assert_eq!(done.status, 303, "{db:?}: {}", done.body);
        assert_eq!(
            done.location, "/admin?q=&filter=no_device&sent=3&failed=0",
            "{db:?}"
        );
        let page = b.get(&done.location).await;
        assert!(page.body.contains("3 setup links were e-mailed."), "{db:?}");
        let page = b.get("/admin?filter=pending").await;
        assert_eq!(listed(&page.body), ["invited", "nodevice", "sms"], "{db:?}");
        // The bulk form takes only the filters it offers.
        let refused = b
            .post("/admin/invite-all", &[("csrf", &csrf), ("filter", "all")])
            .await;
        assert_eq!(refused.status, 400, "{db:?}");
        // The same filter over the API and the CLI's service call.
        let listed_api = svc
            .list_users(&op, "", tessera_server::model::UserFilter::Locked, 50, 0)
            .await
            .unwrap();
        assert_eq!(listed_api.total, 1, "{db:?}");
    }
}

#[tokio::test]
async fn device_buttons_follow_the_state_and_cancel_leads_back() {
    let s = TestServer::spawn().await;
    let svc = &s.app.service;
    add_user(&s, "root", Role::Admin, false).await;
    add_user(&s, "dora", Role::User, true).await;
    let (id, _) = add_totp(&s, "dora", "phone").await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
    let buttons = |body: &str| -> Vec<String> {
        let marker = format!("/admin/tokens/{}/", id.0);
        body.split(marker.as_str())
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    };
    let page = b.get("/admin/users/dora").await;
    assert_eq!(buttons(&page.body), ["disable", "revoke", "remove"]);
    svc.change_token_state(&Actor::operator(), id, TokenAction::Disable)
        .await
        .unwrap();
    let page = b.get("/admin/users/dora").await;
    assert_eq!(buttons(&page.body), ["enable", "revoke", "remove"]);
    svc.change_token_state(&Actor::operator(), id, TokenAction::Revoke)
        .await
        .unwrap();
    let info = svc.get_token(&Actor::operator(), id).await.unwrap();
    assert_eq!(info.state, TokenState::Revoked);
    let page = b.get("/admin/users/dora").await;
    assert_eq!(buttons(&page.body), ["remove"]);

    // The password page of a device action: it names the action, and cancel goes back to the
    // user's page, not to the portal.
    let csrf = b.csrf().await;
    let (other, _) = add_totp(&s, "dora", "second").await;
    let page = b
        .post(
            &format!("/admin/tokens/{}/revoke", other.0),
            &[("csrf", &csrf), ("back", "/admin/users/dora")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains(r#"href="/admin/users/dora""#),
        "{}",
        page.body
    );
    // A back address that is not one of our pages is not taken.
    let page = b
        .post(
            &format!("/admin/tokens/{}/revoke", other.0),
            &[("csrf", &csrf), ("back", "//evil.example/admin")],
        )
        .await;
    assert!(!page.body.contains("evil.example"), "{}", page.body);
}

#[tokio::test]
async fn deleting_a_user_asks_first_and_then_the_password() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |_| {}).await;
        add_user(&s, "root", Role::Admin, false).await;
        add_user(&s, "erik", Role::User, false).await;
        let mut b = Browser::new(&s);
        assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
        let csrf = b.csrf().await;
        let ask = b.post("/admin/users/erik/delete", &[("csrf", &csrf)]).await;
        assert_eq!(ask.status, 200, "{db:?}");
        assert!(ask.body.contains("Delete the user erik"), "{db:?}");
        assert!(ask.body.contains("cannot be undone"), "{db:?}");
        assert_eq!(hidden(&ask.body, "confirm"), "yes");
        // Confirmed, but the re-authentication is not fresh: the password page names the user.
        let reauth = b
            .post(
                "/admin/users/erik/delete",
                &[("csrf", &csrf), ("confirm", "yes")],
            )
            .await;
        assert_eq!(reauth.status, 403, "{db:?}");
        assert!(reauth.body.contains("Delete the user erik"), "{db:?}");
        assert!(
            reauth.body.contains(r#"href="/admin/users/erik""#),
            "{db:?}"
        );
        assert!(s.app.service.user_named("erik").await.is_ok(), "{db:?}");
        let done = b
            .post(
                "/admin/users/erik/delete",
                &[
                    ("csrf", &csrf),
                    ("resume", "1"),
                    ("reauth_password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{db:?}: {}", done.body);
        assert!(s.app.service.user_named("erik").await.is_err(), "{db:?}");
    }
}
