//! The admin's RADIUS clients page: register (the secret shown once), rotate, retire and remove,
//! each after the admin's password again; in German and English; 403 for everyone else.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod web_support;

use common::TestServer;
use tessera_server::model::Role;
use tessera_server::service::Actor;
use web_support::{Browser, PASSWORD, add_user};

fn secret_in(body: &str) -> String {
    body.split("id=\"new-secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn admins_manage_radius_clients_after_reauthentication() {
    let s = TestServer::spawn().await;
    add_user(&s, "root", Role::Admin, false).await;
    add_user(&s, "alice", Role::User, false).await;
    let mut b = Browser::new(&s);
    assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
    let page = b.get("/admin/radius").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("RADIUS clients"), "{}", page.body);
    let csrf = b.csrf().await;
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "fw1"),
        ("address", "192.0.2.0/24"),
        ("mode", "challenge"),
    ];
    // Without a fresh re-authentication: the password page, nothing created.
    let ask = b.post("/admin/radius", &form).await;
    assert!(
        ask.body.contains("Register the RADIUS client fw1"),
        "{}",
        ask.body
    );
    let svc = &s.app.service;
    assert!(
        svc.list_radius_clients(&Actor::operator())
            .await
            .unwrap()
            .is_empty()
    );
    let mut with_pw = form.to_vec();
    with_pw.push(("reauth_password", PASSWORD));
    let page = b.post("/admin/radius", &with_pw).await;
    assert_eq!(page.status, 200);
    let secret = secret_in(&page.body);
    assert!(secret.len() >= 32);
    let c = svc
        .get_radius_client(&Actor::operator(), "fw1")
        .await
        .unwrap();
    assert!(
        c.require_message_authenticator,
        "required unless ticked off"
    );
    assert_eq!(c.mode.as_str(), "challenge");
    let again = b.get("/admin/radius").await;
    assert!(again.body.contains("fw1") && !again.body.contains(&secret));

    let rotate = [("csrf", csrf.as_str()), ("reauth_password", PASSWORD)];
    let page = b.post("/admin/radius/fw1/rotate", &rotate).await;
    let next = secret_in(&page.body);
    assert_ne!(next, secret);
    assert!(page.body.contains("Retire the old secret"));
    let retire = [
        ("csrf", csrf.as_str()),
        ("reauth_password", PASSWORD),
        ("retire", "1"),
    ];
    assert_eq!(
        b.post("/admin/radius/fw1/rotate", &retire).await.status,
        200
    );
    let c = svc
        .get_radius_client(&Actor::operator(), "fw1")
        .await
        .unwrap();
    assert!(c.sealed_next_secret.is_none());
    let remove = [("csrf", csrf.as_str()), ("reauth_password", PASSWORD)];
    assert_eq!(
        b.post("/admin/radius/fw1/remove", &remove).await.status,
        303
    );
    assert!(
        svc.list_radius_clients(&Actor::operator())
            .await
            .unwrap()
            .is_empty()
    );

    // German.
    let de = b
        .post(
            "/portal/language",
            &[
                ("csrf", csrf.as_str()),
                ("language", "de"),
                ("back", "radius"),
            ],
        )
        .await;
    assert_eq!(de.location, "/admin/radius");
    let page = b.get("/admin/radius").await;
    assert!(page.body.contains("RADIUS-Clients"), "{}", page.body);

    // Nobody else.
    let mut a = Browser::new(&s);
    assert_eq!(a.login("alice", PASSWORD, "").await.status, 303);
    assert_eq!(a.get("/admin/radius").await.status, 403);
    let csrf = a.csrf().await;
    let page = a
        .post(
            "/admin/radius",
            &[
                ("csrf", &csrf),
                ("reauth_password", PASSWORD),
                ("name", "x"),
                ("address", "10.0.0.1"),
            ],
        )
        .await;
    assert_eq!(page.status, 403);
}
