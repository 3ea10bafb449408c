//! The admin's hardware token pages over HTTP (issue 20): upload a seed file → dry-run report
//! (no secret on it, skips with their reasons) → confirm with the password again → imported and
//! audited; the inventory list with search and filters; assigning a token with re-authentication.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod web_support;

use common::{TestServer, databases};
use tessera_server::model::{AuditFilter, InventoryState, Role, TokenState};
use tessera_server::service::Actor;
use web_support::{Browser, PASSWORD, add_user};

/// RFC 6030 figure 7: one HOTP key, serial 987654321, password "qwerty", secret
/// "12345678901234567890".
const FIG7: &str = include_str!("../../import/tests/data/rfc6030-figure7.pskcxml");
const RFC_SECRET_HEX: &str = "3132333435363738393031323334353637383930";
const RFC_SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const RFC_SECRET_B64: &str = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=";

/// A `multipart/form-data` body by hand: (name, file name or "", bytes).
fn multipart(parts: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----tessera-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if file.is_empty() {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        } else {
            body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(b: &Browser<'_>, parts: &[(&str, &str, &[u8])]) -> (u16, String) {
    let (content_type, body) = multipart(parts);
    let cookies: String = b
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let r = reqwest::Client::new()
        .post(b.s.url("/admin/inventory/import"))
        .header("cookie", cookies)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn audited(s: &TestServer, action: &str) -> Vec<tessera_server::model::AuditEntry> {
    s.app
        .service
        .list_audit(
            &Actor::operator(),
            AuditFilter {
                action: Some(action.into()),
                limit: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

fn no_secret(body: &str) {
    for s in [
        RFC_SECRET_HEX,
        RFC_SECRET_B32,
        RFC_SECRET_B64,
        "12345678901234567890",
    ] {
        assert!(!body.contains(s), "a secret on the page: {s}");
    }
}

#[tokio::test]
async fn upload_dry_run_confirm_list_and_assign() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |_| {}).await;
        add_user(&s, "root", Role::Admin, false).await;
        add_user(&s, "alice", Role::User, false).await;
        let mut b = Browser::new(&s);
        assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
        let csrf = b.csrf().await;
        let page = b.get("/admin/inventory").await;
        assert_eq!(page.status, 200, "{db:?}");
        assert!(page.body.contains("enctype=\"multipart/form-data\""));

        // Without the CSRF value the upload is refused.
        let (status, _) = upload(
            &b,
            &[
                ("format", "", b"pskc"),
                ("files", "seeds.xml", FIG7.as_bytes()),
            ],
        )
        .await;
        assert_eq!(status, 403, "{db:?}");
        // A wrong password refuses the whole file: nothing staged.
        let (status, body) = upload(
            &b,
            &[
                ("csrf", "", csrf.as_bytes()),
                ("format", "", b"pskc"),
                ("password", "", b"wrong"),
                ("files", "seeds.xml", FIG7.as_bytes()),
            ],
        )
        .await;
        assert_eq!(status, 422, "{db:?}: {body}");
        assert!(body.contains("wrong_key_or_mac"), "{body}");
        assert!(
            !b.get("/admin/inventory")
                .await
                .body
                .contains("id=\"staged\"")
        );

        // The right password: a dry run, the token's parameters, no secret.
        let (status, body) = upload(
            &b,
            &[
                ("csrf", "", csrf.as_bytes()),
                ("format", "", b"pskc"),
                ("password", "", b"qwerty"),
                ("files", "seeds.xml", FIG7.as_bytes()),
            ],
        )
        .await;
        assert_eq!(status, 200, "{db:?}: {body}");
        assert!(
            body.contains("Would import 1, update 0; 0 in stock already, 0 skipped."),
            "{body}"
        );
        assert!(body.contains("<code>987654321</code>") && body.contains("TokenVendorAcme"));
        assert!(body.contains("action=\"/admin/inventory/import/confirm\""));
        no_secret(&body);
        let (list, _) = s
            .app
            .service
            .list_inventory(&Default::default(), 10, 0)
            .await
            .unwrap();
        assert!(list.is_empty(), "{db:?}: a dry run keeps nothing");
        assert!(
            b.get("/admin/inventory")
                .await
                .body
                .contains("id=\"staged\"")
        );

        // Confirming asks for the password again, then imports.
        let asked = b
            .post("/admin/inventory/import/confirm", &[("csrf", &csrf)])
            .await;
        assert_eq!(asked.status, 403, "{db:?}: {}", asked.body);
        let done = b
            .post(
                "/admin/inventory/import/confirm",
                &[
                    ("csrf", &csrf),
                    ("reauth_password", PASSWORD),
                    ("resume", "1"),
                ],
            )
            .await;
        assert_eq!(done.status, 200, "{db:?}: {}", done.body);
        assert!(
            done.body.contains("Imported 1, update") || done.body.contains("Imported 1, updated 0"),
            "{}",
            done.body
        );
        no_secret(&done.body);
        let inv = s.app.service.inventory_token("987654321").await.unwrap();
        assert_eq!(inv.state, InventoryState::InStock, "{db:?}");
        // Confirmed once: the upload is gone.
        let again = b
            .post("/admin/inventory/import/confirm", &[("csrf", &csrf)])
            .await;
        assert_eq!(again.status, 400, "{db:?}: {}", again.body);
        let audit = audited(&s, "import.tokens").await;
        assert_eq!(
            audit.len(),
            1,
            "{db:?}: one import audited (dry runs are not)"
        );
        assert_eq!(audit[0].event.actor, "user:root");

        // A CSV with a bad row: the report says where and why.
        let csv = b"2100000001,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n2100000002,not-base32!\n";
        let (status, body) = upload(
            &b,
            &[
                ("csrf", "", csrf.as_bytes()),
                ("format", "", b"csv"),
                ("preset", "", b"safeid"),
                ("files", "safeid.csv", csv),
            ],
        )
        .await;
        assert_eq!(status, 200, "{db:?}: {body}");
        assert!(
            body.contains("Would import 1, update 0; 0 in stock already, 1 skipped."),
            "{body}"
        );
        assert!(
            body.contains("line 2") && body.contains("<code>secret_invalid</code>"),
            "{body}"
        );
        assert!(!body.contains("JBSWY3DPEHPK3PXP"));
        // A SafeNet/Aladdin XML file: HOTP, the hash from the seed's length.
        let xml = format!(
            r#"<Tokens><Token serial="00040008CFA5"><ProductName>SafeWord Alpine</ProductName><Applications><Application><Seed>{RFC_SECRET_HEX}</Seed><MovingFactor>3</MovingFactor></Application></Applications></Token><Token serial="00040008CFA6"/></Tokens>"#
        );
        let (status, body) = upload(
            &b,
            &[
                ("csrf", "", csrf.as_bytes()),
                ("format", "", b"safenet"),
                ("files", "safenet.xml", xml.as_bytes()),
            ],
        )
        .await;
        assert_eq!(status, 200, "{db:?}: {body}");
        assert!(
            body.contains("Would import 1, update 0; 0 in stock already, 1 skipped."),
            "{body}"
        );
        assert!(
            body.contains("<code>00040008CFA5</code>") && body.contains("SafeNet SafeWord Alpine")
        );
        assert!(
            body.contains("Token #2 serial=00040008CFA6")
                && body.contains("<code>no_secret</code>")
        );
        no_secret(&body);
        let cancel = b
            .post("/admin/inventory/import/cancel", &[("csrf", &csrf)])
            .await;
        assert_eq!(cancel.status, 303);
        assert!(
            !b.get("/admin/inventory")
                .await
                .body
                .contains("id=\"staged\"")
        );

        // The list: search by serial, filters by state, kind and maker.
        for (query, found) in [
            ("?q=98765", true),
            ("?q=nothing", false),
            ("?state=in_stock", true),
            ("?state=assigned", false),
            ("?kind=hotp", true),
            ("?kind=totp", false),
            ("?manufacturer=TokenVendorAcme", true),
            ("?manufacturer=Other", false),
        ] {
            let page = b.get(&format!("/admin/inventory{query}")).await;
            assert_eq!(page.status, 200);
            assert_eq!(
                page.body.contains("<code>987654321</code>"),
                found,
                "{db:?} {query}"
            );
        }
        assert!(
            b.get("/admin/inventory")
                .await
                .body
                .contains("<option value=\"TokenVendorAcme\">")
        );

        // Assign it to alice: the password again, then it is her active token, audited.
        add_user(&s, "root2", Role::Admin, false).await;
        let mut c = Browser::new(&s);
        c.login("root2", PASSWORD, "").await;
        let csrf2 = c.csrf().await;
        let asked = c
            .post(
                "/admin/inventory/987654321/assign",
                &[("csrf", &csrf2), ("user", "alice")],
            )
            .await;
        assert_eq!(asked.status, 403, "{db:?}: re-authentication asked");
        assert!(
            asked
                .body
                .contains("Assign the hardware token 987654321 to alice"),
            "{}",
            asked.body
        );
        let done = c
            .post(
                "/admin/inventory/987654321/assign",
                &[
                    ("reauth_password", PASSWORD),
                    ("resume", "1"),
                    ("csrf", &csrf2),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{db:?}: {}", done.body);
        assert_eq!(done.location, "/admin/users/alice?done=assigned");
        let alice = s.app.service.user_named("alice").await.unwrap();
        let tokens = s.app.service.store().tokens_of(alice.id).await.unwrap();
        assert_eq!(
            (tokens.len(), tokens[0].state),
            (1, TokenState::Active),
            "{db:?}"
        );
        let page = c.get("/admin/inventory?state=assigned").await;
        assert!(page.body.contains("<code>987654321</code>"), "{db:?}");
        let audit = audited(&s, "inventory.assign").await;
        assert_eq!(audit[0].event.actor, "user:root2", "{db:?}");
    }
}

#[tokio::test]
async fn only_admins_see_the_inventory() {
    let s = TestServer::spawn().await;
    add_user(&s, "uma", Role::User, false).await;
    let mut b = Browser::new(&s);
    b.login("uma", PASSWORD, "").await;
    let csrf = b.csrf().await;
    assert_eq!(b.get("/admin/inventory").await.status, 403);
    let (status, _) = upload(
        &b,
        &[
            ("csrf", "", csrf.as_bytes()),
            ("format", "", b"pskc"),
            ("files", "x.xml", FIG7.as_bytes()),
        ],
    )
    .await;
    assert_eq!(status, 403);
}
