//! Programmable hardware tokens over HTTP (issue 20, seed 004) with injected time: the admin (or
//! the user in the portal) makes the key, shown once with the server's clock; the token's first
//! code is looked for within ±15 minutes, its clock's offset reported; far off, or burned with
//! other parameters (SHA-256, 60 s), the next code is needed too, and the token is kept with
//! what it really computes. Codes come from the totp-rs oracle, never from our engine.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod web_support;

use common::{TestServer, databases, oracle_totp};
use tessera_server::model::{Role, TokenState};
use tessera_server::service::Actor;
use web_support::{Browser, PASSWORD, add_user};

/// 2026-12-01T00:00:00Z, a multiple of 60.
const NOW: u64 = 1_796_083_200;

/// The text between `id="ID">` and the next `<`.
fn by_id(body: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {body}"))
        + marker.len();
    body[start..].split('<').next().unwrap().trim().to_owned()
}

/// A browser logged in as `admin` (an admin without a token) and its CSRF value.
async fn admin<'a>(s: &'a TestServer, name: &str) -> (Browser<'a>, String) {
    add_user(s, name, Role::Admin, false).await;
    let mut b = Browser::new(s);
    assert_eq!(b.login(name, PASSWORD, "").await.status, 303);
    let csrf = b.csrf().await;
    (b, csrf)
}

/// Programs a token for `user` from the admin's page: returns the page, the Key URI the token is
/// burned with (base32 from the page, parameters as given) and the token's id.
async fn program(
    b: &mut Browser<'_>,
    csrf: &str,
    user: &str,
    extra: &[(&str, &str)],
) -> (web_support::Page, String) {
    // The first of two fields of one name counts: `extra` goes first.
    let mut fields = extra.to_vec();
    fields.extend_from_slice(&[
        ("csrf", csrf),
        ("serial", "2100123456"),
        ("reauth_password", PASSWORD),
    ]);
    let page = b
        .post(&format!("/admin/users/{user}/program"), &fields)
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let secret: String = by_id(&page.body, "secret-base32")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    (page, secret)
}

fn uri(secret: &str, algorithm: &str, period: u64) -> String {
    format!("otpauth://totp/x?secret={secret}&algorithm={algorithm}&period={period}")
}

/// The token's code at the token's own time `at`.
fn code(secret: &str, algorithm: &str, period: u64, at: u64) -> String {
    oracle_totp(&uri(secret, algorithm, period), at)
}

async fn activate(
    b: &mut Browser<'_>,
    csrf: &str,
    action: &str,
    code: &str,
    next: &str,
) -> web_support::Page {
    b.post(
        action,
        &[("csrf", csrf), ("code", code), ("next_code", next)],
    )
    .await
}

/// The only programmed token of `user`.
async fn token_of(s: &TestServer, user: &str) -> tessera_server::model::Token {
    let u = s.app.service.user_named(user).await.unwrap();
    let mut tokens = s.app.service.store().tokens_of(u.id).await.unwrap();
    assert_eq!(tokens.len(), 1);
    tokens.remove(0)
}

#[tokio::test]
async fn seven_steps_off_activates_with_one_code_and_the_offset_is_reported() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |_| {}).await;
        s.clock.set(NOW as i64);
        add_user(&s, "alice", Role::User, false).await;
        let (mut b, csrf) = admin(&s, "root").await;
        // Without the password again, the key is not made.
        let asked = b
            .post(
                "/admin/users/alice/program",
                &[("csrf", &csrf), ("serial", "2100123456")],
            )
            .await;
        assert_eq!(asked.status, 403, "{db:?}: re-authentication asked");
        let (page, secret) = program(&mut b, &csrf, "alice", &[]).await;
        // The page: QR code, base32 and hex, parameters, the server's clock at NOW (00:00:00
        // UTC) with its style sheet, and the warnings.
        assert!(page.body.contains("<svg"), "{db:?}");
        assert_eq!(secret.len(), 32, "20 bytes in base32");
        let hex: String = by_id(&page.body, "secret-hex").split_whitespace().collect();
        assert_eq!(hex.len(), 40);
        assert_eq!(by_id(&page.body, "params"), "TOTP, SHA-1, 6 digits, 30 s");
        assert_eq!(by_id(&page.body, "serial"), "2100123456");
        assert!(page.body.contains(
            "<span class=\"h\">00</span>:<span class=\"m\">00</span>:<span class=\"s\">00</span>"
        ));
        assert!(page.body.contains("/static/clock.css"));
        assert!(page.body.contains("power") || page.body.contains("off and on"));
        let token = token_of(&s, "alice").await;
        assert_eq!(token.state, TokenState::Pending);
        assert_eq!(token.first_use_window, 30, "±15 minutes in 30 s steps");
        // Never shown again: not on the user's page, not in the audit log.
        let user_page = b.get("/admin/users/alice").await;
        assert!(
            user_page.body.contains("2100123456"),
            "the waiting token is listed"
        );
        assert!(!user_page.body.contains(&secret[..16]), "{db:?}");
        let audit = b.get("/admin/audit").await.body;
        assert!(!audit.contains(&secret[..16]) && !audit.contains(&hex[..16]));

        // The token's clock runs 7 steps (210 s) ahead: one code is enough.
        let action = format!("/admin/programmed/{}/activate", token.id.0);
        let done = activate(
            &mut b,
            &csrf,
            &action,
            &code(&secret, "SHA1", 30, NOW + 210),
            "",
        )
        .await;
        assert_eq!(done.status, 200, "{db:?}: {}", done.body);
        assert!(
            done.body.contains("The hardware token is active."),
            "{}",
            done.body
        );
        assert!(
            done.body
                .contains("about 225 s ahead of the server&#39;s (±15 s)"),
            "{}",
            done.body
        );
        assert!(done.body.contains("programming PC"));
        let token = token_of(&s, "alice").await;
        assert_eq!(
            (token.state, token.drift, token.first_use_window),
            (TokenState::Active, 7, 0),
            "{db:?}"
        );
        // The offset is in the audit log.
        let entries = s
            .app
            .service
            .list_audit(
                &Actor::operator(),
                tessera_server::model::AuditFilter {
                    action: Some("token.activate".into()),
                    limit: 5,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            entries[0].event.reason, "programmed token active, token clock +225 s off",
            "{db:?}"
        );
        // Activated once: a second try is refused as not pending.
        let again = activate(
            &mut b,
            &csrf,
            &action,
            &code(&secret, "SHA1", 30, NOW + 240),
            "",
        )
        .await;
        assert_eq!(again.status, 409, "{db:?}: {}", again.body);
        // The user logs in with the token's next code.
        s.clock.advance(30);
        let mut a = Browser::new(&s);
        let login = a
            .login("alice", PASSWORD, &code(&secret, "SHA1", 30, NOW + 240))
            .await;
        assert_eq!(login.status, 303, "{db:?}: {}", login.body);
    }
}

/// Forty steps of 30 s are 20 minutes: beyond the ±15-minute search, so nothing fits (and the
/// answer says what was tried); 20 and 28 steps are inside it but more than 5 minutes off, so
/// the next code must follow.
#[tokio::test]
async fn far_off_needs_the_next_code_and_beyond_15_minutes_nothing_fits() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |_| {}).await;
        s.clock.set(NOW as i64);
        add_user(&s, "bob", Role::User, false).await;
        add_user(&s, "carl", Role::User, false).await;
        let (mut b, csrf) = admin(&s, "root").await;
        let (_, secret) = program(&mut b, &csrf, "bob", &[]).await;
        let id = token_of(&s, "bob").await.id;
        let action = format!("/admin/programmed/{}/activate", id.0);
        let outside = activate(
            &mut b,
            &csrf,
            &action,
            &code(&secret, "SHA1", 30, NOW + 40 * 30),
            "",
        )
        .await;
        assert_eq!(outside.status, 400, "{db:?}: {}", outside.body);
        assert!(
            outside.body.contains("within 15 minutes"),
            "{}",
            outside.body
        );
        let t = token_of(&s, "bob").await;
        assert_eq!(
            (t.state, t.fail_count),
            (TokenState::Pending, 1),
            "{db:?}: counted"
        );
        s.clock.advance(60); // past the delay after the wrong code
        let now = NOW + 60;
        // 20 steps (600 s) ahead: found, more than 5 minutes off: the next code is asked.
        let asked = activate(
            &mut b,
            &csrf,
            &action,
            &code(&secret, "SHA1", 30, now + 600),
            "",
        )
        .await;
        assert_eq!(asked.status, 200, "{db:?}: {}", asked.body);
        assert!(
            asked.body.contains("more than 5 minutes off"),
            "{}",
            asked.body
        );
        assert!(asked.body.contains("about 615 s ahead"), "{}", asked.body);
        assert!(
            asked.body.contains("autocomplete=\"off\" required"),
            "the next code is required"
        );
        assert_eq!(token_of(&s, "bob").await.state, TokenState::Pending);
        // The same code twice is not two consecutive codes.
        let c1 = code(&secret, "SHA1", 30, now + 600);
        let twice = activate(&mut b, &csrf, &action, &c1, &c1).await;
        assert_eq!(twice.status, 400, "{db:?}: {}", twice.body);
        s.clock.advance(60);
        // The user sends the code shown, waits for it to change, and sends the next one.
        s.clock.advance(30);
        let now = now + 90;
        let c1 = code(&secret, "SHA1", 30, now + 600 - 30);
        let c2 = code(&secret, "SHA1", 30, now + 600);
        let done = activate(&mut b, &csrf, &action, &c1, &c2).await;
        assert_eq!(done.status, 200, "{db:?}: {}", done.body);
        assert!(
            done.body.contains("The hardware token is active."),
            "{}",
            done.body
        );
        assert!(done.body.contains("about 615 s ahead"), "{}", done.body);
        let t = token_of(&s, "bob").await;
        assert_eq!((t.state, t.drift), (TokenState::Active, 20), "{db:?}");

        // 28 steps (14 minutes) behind: inside the window, far off: two codes.
        let (_, secret) = program(&mut b, &csrf, "carl", &[("serial", "")]).await;
        let t = token_of(&s, "carl").await;
        assert!(
            t.serial.0.starts_with("PROG"),
            "{db:?}: a serial is made: {}",
            t.serial.0
        );
        let action = format!("/admin/programmed/{}/activate", t.id.0);
        let now = web_support::now(&s);
        let c1 = code(&secret, "SHA1", 30, now - 840 - 30);
        let c2 = code(&secret, "SHA1", 30, now - 840);
        let asked = activate(&mut b, &csrf, &action, &c1, "").await;
        assert!(
            asked.body.contains("more than 5 minutes off"),
            "{db:?}: {}",
            asked.body
        );
        assert!(asked.body.contains("behind the server"), "{}", asked.body);
        let done = activate(&mut b, &csrf, &action, &c1, &c2).await;
        assert!(
            done.body.contains("The hardware token is active."),
            "{db:?}: {}",
            done.body
        );
        assert_eq!(token_of(&s, "carl").await.drift, -28, "{db:?}");
    }
}

#[tokio::test]
async fn a_token_burned_as_sha256_60s_is_diagnosed_and_kept_as_it_really_is() {
    for db in databases() {
        let s = TestServer::spawn_with(db, |_| {}).await;
        s.clock.set(NOW as i64);
        add_user(&s, "dora", Role::User, false).await;
        let (mut b, csrf) = admin(&s, "root").await;
        // SHA-1/30 s assigned; the burner tool had SHA-256 and 60 s switched on, and the PC's
        // clock was 47 s behind.
        let (_, secret) = program(&mut b, &csrf, "dora", &[]).await;
        let id = token_of(&s, "dora").await.id;
        let action = format!("/admin/programmed/{}/activate", id.0);
        let c1 = code(&secret, "SHA256", 60, NOW - 47);
        let asked = activate(&mut b, &csrf, &action, &c1, "").await;
        assert_eq!(asked.status, 200, "{db:?}: {}", asked.body);
        assert!(
            asked.body.contains(
                "fits only with TOTP, SHA-256, 6 digits, 60 s, not with TOTP, SHA-1, 6 digits, 30 s"
            ),
            "{}",
            asked.body
        );
        let t = token_of(&s, "dora").await;
        assert_eq!(
            (t.state, t.algorithm.as_str(), t.period),
            (TokenState::Pending, "SHA1", 30)
        );
        // The code shown now and, a minute later, the next one.
        s.clock.advance(60);
        let c2 = code(&secret, "SHA256", 60, NOW + 60 - 47);
        let done = activate(&mut b, &csrf, &action, &c1, &c2).await;
        assert_eq!(done.status, 200, "{db:?}: {}", done.body);
        assert!(
            done.body.contains("computes its codes with TOTP, SHA-256, 6 digits, 60 s, not with TOTP, SHA-1, 6 digits, 30 s"),
            "{}",
            done.body
        );
        let t = token_of(&s, "dora").await;
        assert_eq!(
            (t.state, t.algorithm.as_str(), t.period, t.drift),
            (TokenState::Active, "SHA256", 60, -1),
            "{db:?}: stored with the parameters it really uses"
        );
        // And it works for logging in, with its own parameters.
        s.clock.advance(60);
        let mut d = Browser::new(&s);
        let login = d
            .login(
                "dora",
                PASSWORD,
                &code(&secret, "SHA256", 60, NOW + 120 - 47),
            )
            .await;
        assert_eq!(login.status, 303, "{db:?}: {}", login.body);
        let entries = s
            .app
            .service
            .list_audit(
                &Actor::operator(),
                tessera_server::model::AuditFilter {
                    action: Some("token.activate".into()),
                    limit: 5,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            entries[0].event.reason,
            "programmed token active, token clock -30 s off; burned as SHA256 60s, not SHA1 30s as chosen",
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn a_user_programs_a_token_in_the_portal_and_only_their_own() {
    let s = TestServer::spawn().await;
    s.clock.set(NOW as i64);
    add_user(&s, "erin", Role::User, false).await;
    add_user(&s, "fred", Role::User, false).await;
    let mut e = Browser::new(&s);
    assert_eq!(e.login("erin", PASSWORD, "").await.status, 303);
    let csrf = e.csrf().await;
    let portal = e.get("/portal").await;
    assert!(portal.body.contains("action=\"/portal/hardware/program\""));
    let asked = e.post("/portal/hardware/program", &[("csrf", &csrf)]).await;
    assert_eq!(asked.status, 403, "re-authentication asked");
    let page = e
        .post(
            "/portal/hardware/program",
            &[
                ("csrf", &csrf),
                ("sha256", "on"),
                ("reauth_password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(by_id(&page.body, "params"), "TOTP, SHA-256, 6 digits, 30 s");
    let secret: String = by_id(&page.body, "secret-base32")
        .split_whitespace()
        .collect();
    let id = token_of(&s, "erin").await.id;
    // The portal lists it as waiting for its first code, with the form.
    let portal = e.get("/portal").await;
    assert!(
        portal
            .body
            .contains(&format!("/portal/programmed/{}/activate", id.0))
    );
    // Another user cannot activate it (not found, like a token that does not exist).
    let mut f = Browser::new(&s);
    f.login("fred", PASSWORD, "").await;
    let fcsrf = f.csrf().await;
    let theirs = activate(
        &mut f,
        &fcsrf,
        &format!("/portal/programmed/{}/activate", id.0),
        &code(&secret, "SHA256", 30, NOW),
        "",
    )
    .await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    let done = activate(
        &mut e,
        &csrf,
        &format!("/portal/programmed/{}/activate", id.0),
        &code(&secret, "SHA256", 30, NOW),
        "",
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("agrees with the server"),
        "{}",
        done.body
    );
    assert_eq!(token_of(&s, "erin").await.state, TokenState::Active);
}

#[tokio::test]
async fn the_clock_style_sheet_starts_at_the_servers_time_of_day() {
    let s = TestServer::spawn().await;
    // 01:02:03 UTC.
    s.clock.set((NOW + 3723) as i64);
    let r = s
        .client
        .get(s.url("/static/clock.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let css = r.text().await.unwrap();
    assert!(css.contains("@property --clock-s"));
    assert!(css.contains("-3723.000s"), "{css}");
}
