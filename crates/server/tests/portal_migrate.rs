//! "Move from Google Authenticator" in the portal (issue 20): a user uploads export QR images;
//! only the entries of this server's issuer are offered (the others are dropped and never
//! stored); the chosen one becomes an active device once the app's current code and the
//! password again confirm it. The images are the permissive samples in
//! ../shared/fixtures/imports (keyroost: an export with `Acme:alice`, secret "0123456789";
//! dim13: an `Example` enrollment QR).

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod web_support;

use std::path::PathBuf;

use common::{TestServer, databases};
use tessera_server::model::{Role, TokenState};
use web_support::{Browser, PASSWORD, add_user, now};

/// The code of Acme's 80-bit entry at `time`, from oathtool (totp-rs refuses 80-bit secrets).
fn acme_code(time: u64) -> String {
    let out = std::process::Command::new("oathtool")
        .args([
            "--totp",
            "-b",
            "GAYTEMZUGU3DOOBZ",
            "-N",
            &format!("@{time}"),
        ])
        .output()
        .expect("oathtool is installed (.ci/install-tools)");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn fixture(path: &str) -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/imports")
        .join(path);
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(_) => {
            eprintln!("skipped: fixture {} is absent", p.display());
            None
        }
    }
}

/// Posts the images as `multipart/form-data` (built by hand) with the CSRF value.
async fn upload(b: &Browser<'_>, csrf: &str, files: &[(&str, &[u8])]) -> (u16, String) {
    let boundary = "----tessera-migrate-3c9d";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n")
            .into_bytes();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let cookies: String = b
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let r = reqwest::Client::new()
        .post(b.s.url("/portal/migrate"))
        .header("cookie", cookies)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn only_entries_of_this_issuer_are_offered_and_the_chosen_one_needs_a_code() {
    let (Some(export), Some(other)) = (
        fixture("keyroost/migration.png"),
        fixture("dim13/example.png"),
    ) else {
        return;
    };
    for db in databases() {
        let s = TestServer::spawn_with(db, |c| c.otp.issuer = "Acme".into()).await;
        add_user(&s, "alice", Role::User, false).await;
        let mut b = Browser::new(&s);
        assert_eq!(b.login("alice", PASSWORD, "").await.status, 303);
        let csrf = b.csrf().await;
        let portal = b.get("/portal").await;
        assert!(portal.body.contains("action=\"/portal/migrate\""), "{db:?}");
        assert!(portal.body.contains("Only the entry for Acme is kept"));

        // An image of another issuer only: nothing offered, nothing kept.
        let (status, body) = upload(&b, &csrf, &[("example.png", &other)]).await;
        assert_eq!(status, 200, "{db:?}: {body}");
        assert!(body.contains("no entry for Acme"), "{body}");
        assert!(
            body.contains("1 entries of other services were ignored"),
            "{body}"
        );
        assert!(!body.contains("JBSWY3DPEHPK3PXP") && !body.contains("alice@google.com"));

        // The export and the other image: only Acme's entry is offered.
        let (status, body) = upload(
            &b,
            &csrf,
            &[("export.png", &export), ("example.png", &other)],
        )
        .await;
        assert_eq!(status, 200, "{db:?}: {body}");
        assert!(body.contains("Acme: alice"), "{body}");
        assert!(!body.contains("Example: alice@google.com"), "{body}");
        assert!(body.contains("1 entries of other services were ignored"));
        assert!(!body.contains("GAYTEMZUGU3DOOBZ"), "no secret on the page");

        // Confirming asks for the password again; a wrong code adds nothing.
        let asked = b
            .post(
                "/portal/migrate/confirm",
                &[("csrf", &csrf), ("entry", "0"), ("code", "000000")],
            )
            .await;
        assert_eq!(asked.status, 403, "{db:?}: {}", asked.body);
        let wrong = b
            .post(
                "/portal/migrate/confirm",
                &[
                    ("reauth_password", PASSWORD),
                    ("resume", "1"),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(wrong.status, 422, "{db:?}: {}", wrong.body);
        assert!(wrong.body.contains("the code is not valid"));
        let user = s.app.service.user_named("alice").await.unwrap();
        assert!(
            s.app
                .service
                .store()
                .tokens_of(user.id)
                .await
                .unwrap()
                .is_empty(),
            "{db:?}"
        );
        // The code the app shows now: the entry is an active device.
        let code = acme_code(now(&s));
        let done = b
            .post(
                "/portal/migrate/confirm",
                &[
                    ("csrf", &csrf),
                    ("entry", "0"),
                    ("code", &code),
                    ("name", "Phone"),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{db:?}: {}", done.body);
        assert_eq!(done.location, "/portal?done=migrated");
        let tokens = s.app.service.store().tokens_of(user.id).await.unwrap();
        assert_eq!(tokens.len(), 1, "{db:?}");
        assert_eq!(
            (tokens[0].state, tokens[0].name.as_str()),
            (TokenState::Active, "Phone")
        );
        // The offer is used up; the next login needs the app's next code.
        let again = b
            .post(
                "/portal/migrate/confirm",
                &[("csrf", &csrf), ("entry", "0"), ("code", &code)],
            )
            .await;
        assert_eq!(again.status, 400, "{db:?}");
        s.clock.advance(30);
        let mut c = Browser::new(&s);
        let login = c.login("alice", PASSWORD, &acme_code(now(&s))).await;
        assert_eq!(login.status, 303, "{db:?}: {}", login.body);
    }
}
