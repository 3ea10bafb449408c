//! Recovery and reset end to end through a real SMTP server (aiosmtpd, `common::smtp`): every
//! mail the user acts on (invitation, e-mailed recovery code, notification with "this wasn't
//! me", re-issued codes, reset link) is read from what the SMTP server received, never from the
//! outbox. Codes come from independent implementations (totp-rs, `oathtool`).

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod enroll_support;
mod recovery_support;
mod web_support;

use common::smtp::SmtpSink;
use common::{Db, TestServer, databases};
use enroll_support::{complete, link_path, start};
use mail_parser::MessageParser;
use recovery_support::{
    actions, emailed_code, enroll_new_device, enroll_with_oathtool, not_me_path, oathtool_totp,
    path_in, recover, request_reset, verify,
};
use tessera_server::Config;
use tessera_server::model::{Language, Role, TokenState};
use tessera_server::service::Actor;
use web_support::{Browser, PASSWORD, hidden, now};

/// One mail as the SMTP server received it.
#[derive(Debug)]
struct Mail {
    to: String,
    subject: String,
    text: String,
}

fn received(sink: &SmtpSink) -> Vec<Mail> {
    sink.delivered()
        .iter()
        .map(|raw| {
            let msg = MessageParser::default().parse(raw).unwrap();
            Mail {
                to: msg
                    .to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address())
                    .unwrap_or_default()
                    .to_owned(),
                subject: msg.subject().unwrap_or_default().to_owned(),
                text: msg.body_text(0).unwrap_or_default().into_owned(),
            }
        })
        .collect()
}

/// Waits for the first mail with `subject` after the first `after` received (some mails are
/// sent in the background, after the page answered).
async fn mail_after(sink: &SmtpSink, after: usize, subject: &str) -> Mail {
    for _ in 0..200 {
        if let Some(m) = received(sink)
            .into_iter()
            .skip(after)
            .find(|m| m.subject == subject)
        {
            return m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no mail {subject:?} after {after}: {:?}", received(sink));
}

/// A server sending mail through `sink`, with `public_url` so links in mails are absolute.
async fn spawn(db: Db, sink: &SmtpSink, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let mail = sink.mail_config();
    TestServer::spawn_with(db, move |c| {
        c.mail = mail;
        tweak(c);
    })
    .await
}

/// A user enrolled through the invitation that arrived over SMTP: returns the recovery codes.
async fn enrolled_user(
    s: &TestServer,
    sink: &SmtpSink,
    name: &str,
    language: Language,
) -> Vec<String> {
    enroll_support::add_user(s, name, &format!("{name}@example.org"), language).await;
    let n = received(sink).len();
    s.app
        .service
        .invite_user(&Actor::operator(), name, true)
        .await
        .unwrap();
    let all = received(sink);
    let invitation = all.get(n).expect("the invitation went out over SMTP");
    assert_eq!(invitation.to, format!("{name}@example.org"));
    let link = link_path(&invitation.text);
    let qr = start(s, &link).await;
    let (done, _) = complete(s, &link, &qr).await;
    let codes = enroll_support::recovery_codes(&done.body);
    assert_eq!(codes.len(), 10);
    codes
}

async fn token_states(s: &TestServer, name: &str) -> Vec<(String, TokenState)> {
    let id = s.app.service.user_named(name).await.unwrap().id;
    s.app
        .service
        .store()
        .tokens_of(id)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.state))
        .collect()
}

#[tokio::test]
async fn lost_phone_recovery_over_smtp_revokes_old_devices_and_this_wasnt_me_locks() {
    for db in databases() {
        let sink = SmtpSink::maildir();
        let s = spawn(db, &sink, |c| c.recovery.revoke_old_devices = true).await;
        let codes = enrolled_user(&s, &sink, "alice", Language::En).await;

        // Lost phone: username and a recovery code, then the code that arrived over SMTP.
        let mut b = Browser::new(&s);
        let n = received(&sink).len();
        let sent = recover(&mut b, "alice", &codes[0]).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        let mail = mail_after(&sink, n, "Your recovery code").await;
        assert_eq!(mail.to, "alice@example.org");
        let next = verify(&mut b, &sent, &emailed_code(&mail.text)).await;
        assert_eq!(next.status, 303, "{db:?}: {}", next.body);
        let link = next.location.split('?').next().unwrap().to_owned();

        // A new device, its first code from oathtool; the old one is revoked by the policy.
        s.clock.advance(30);
        let n = received(&sink).len();
        enroll_with_oathtool(&s, &link).await;
        let states = token_states(&s, "alice").await;
        assert!(
            states.contains(&("Diensthandy".into(), TokenState::Revoked))
                && states.contains(&("Neues Handy".into(), TokenState::Active)),
            "{db:?}: {states:?}"
        );
        // The notification arrived over SMTP; its "this wasn't me" link blocks and locks.
        let notice = mail_after(&sink, n, "Your account was recovered").await;
        let not_me = not_me_path(&notice.text);
        assert!(notice.text.contains("If this wasn't you"));
        let mut owner = Browser::new(&s);
        let confirm = owner.get(&not_me).await;
        assert_eq!(confirm.status, 200, "{}", confirm.body);
        let blocked = owner
            .post(
                &not_me,
                &[("form_token", &hidden(&confirm.body, "form_token"))],
            )
            .await;
        assert_eq!(blocked.status, 200, "{}", blocked.body);
        assert!(blocked.body.contains("self-service is locked"));
        let states = token_states(&s, "alice").await;
        assert!(
            states.iter().all(|(_, st)| *st == TokenState::Revoked),
            "{db:?}: the recovered device is blocked too: {states:?}"
        );
        let id = s.app.service.user_named("alice").await.unwrap().id;
        assert!(
            s.app
                .service
                .store()
                .recovery_policy(id)
                .await
                .unwrap()
                .self_service_locked
        );
        assert!(
            actions(&s, "alice")
                .await
                .contains(&("security.blocked".into(), "success".into()))
        );
        // Locked: another recovery code sends nothing over SMTP.
        let n = received(&sink).len();
        recover(&mut Browser::new(&s), "alice", &codes[1]).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            received(&sink)[n..]
                .iter()
                .all(|m| m.subject != "Your recovery code"),
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn recovery_over_smtp_keeps_old_devices_by_default_in_german() {
    let sink = SmtpSink::maildir();
    let s = spawn(Db::Sqlite, &sink, |_| {}).await;
    let codes = enrolled_user(&s, &sink, "jonas", Language::De).await;
    let mut b = Browser::new(&s);
    let n = received(&sink).len();
    let sent = recover(&mut b, "jonas", &codes[3]).await;
    let mail = mail_after(&sink, n, "Ihr Wiederherstellungscode").await;
    assert!(mail.text.contains("Hallo jonas Example"), "{}", mail.text);
    let next = verify(&mut b, &sent, &emailed_code(&mail.text)).await;
    assert_eq!(next.status, 303);
    s.clock.advance(30);
    let n = received(&sink).len();
    enroll_new_device(&s, next.location.split('?').next().unwrap()).await;
    let states = token_states(&s, "jonas").await;
    assert_eq!(
        states
            .iter()
            .filter(|(_, st)| *st == TokenState::Active)
            .count(),
        2,
        "{states:?}"
    );
    let notice = mail_after(&sink, n, "Ihr Konto wurde wiederhergestellt").await;
    assert!(
        notice.text.contains("Waren Sie das nicht"),
        "{}",
        notice.text
    );
}

/// Logs admin `root` in; returns the browser and the session's CSRF value.
async fn admin(s: &TestServer) -> (Browser<'_>, String) {
    web_support::add_user(s, "root", Role::Admin, false).await;
    let mut b = Browser::new(s);
    assert_eq!(b.login("root", PASSWORD, "").await.status, 303);
    let csrf = b.csrf().await;
    (b, csrf)
}

#[tokio::test]
async fn admin_reissue_shows_codes_once_or_mails_them_over_smtp() {
    let sink = SmtpSink::maildir();
    let s = spawn(Db::Sqlite, &sink, |_| {}).await;
    let old = enrolled_user(&s, &sink, "alice", Language::En).await;
    let (mut b, csrf) = admin(&s).await;
    let issue = "/admin/users/alice/recovery-codes";

    // Shown once to the admin (the default): the user is told, the codes never go by mail.
    let n = received(&sink).len();
    let page = b
        .post(issue, &[("csrf", &csrf), ("reauth_password", PASSWORD)])
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let shown = enroll_support::recovery_codes(&page.body);
    assert_eq!(shown.len(), 10);
    let notice = mail_after(&sink, n, "New recovery codes were issued").await;
    assert!(notice.text.contains("/not-me/"));
    assert!(
        received(&sink)[n..]
            .iter()
            .all(|m| !m.text.contains(&shown[0])),
        "shown codes are never mailed"
    );

    // E-mailed, for this user: set on the user's page, then issued again.
    let saved = b
        .post(
            "/admin/users/alice/recovery-policy",
            &[
                ("csrf", csrf.as_str()),
                ("self_recovery", "default"),
                ("revoke_old_devices", "default"),
                ("delivery", "email"),
                ("codes_at_enrollment", "default"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "still elevated: {}", saved.body);
    let n = received(&sink).len();
    let done = b.post(issue, &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let mailed = mail_after(&sink, n, "New recovery codes").await;
    assert_eq!(mailed.to, "alice@example.org");
    let codes: Vec<&str> = mailed
        .text
        .split_whitespace()
        .filter(|w| w.len() == 11 && w.as_bytes()[5] == b'-')
        .collect();
    assert_eq!(codes.len(), 10, "{}", mailed.text);
    assert!(!codes.contains(&shown[0].as_str()) && !codes.contains(&old[0].as_str()));
    let page = b.get(&done.location).await;
    assert!(!page.body.contains(codes[0]), "not on the admin's page");

    // A mailed code starts a recovery; the shown set is void.
    let mut user = Browser::new(&s);
    let n = received(&sink).len();
    recover(&mut user, "alice", &shown[1]).await;
    recover(&mut user, "alice", codes[1]).await;
    let code_mail = mail_after(&sink, n, "Your recovery code").await;
    assert!(code_mail.text.contains("one of your recovery codes"));
    let log = actions(&s, "alice").await;
    assert_eq!(log[0], ("recovery.start".into(), "success".into()));
    assert_eq!(log[1], ("recovery.start".into(), "failure".into()));
}

#[tokio::test]
async fn reset_by_the_link_mailed_over_smtp_starts_over_with_a_new_device() {
    for db in databases() {
        let sink = SmtpSink::maildir();
        let s = spawn(db, &sink, |_| {}).await;
        enrolled_user(&s, &sink, "alice", Language::En).await;
        let mut b = Browser::new(&s);
        let n = received(&sink).len();
        let answer = request_reset(&mut b, "alice@example.org").await;
        assert_eq!(answer.status, 200);
        let mail = mail_after(&sink, n, "Reset your account").await;
        let link = path_in(&mail.text, "/reset/");
        let page = b.get(&link).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains("deletes all your devices"));
        let n = received(&sink).len();
        let done = b
            .post(
                &link,
                &[
                    ("form_token", &hidden(&page.body, "form_token")),
                    ("password", "a brand new long password"),
                    ("hint", "the new one"),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{db:?}: {}", done.body);
        assert!(token_states(&s, "alice").await.is_empty(), "{db:?}");
        let notice = mail_after(&sink, n, "Your account was reset").await;
        assert!(notice.text.contains("/not-me/"));
        // The link is used up.
        assert_eq!(b.get(&link).await.status, 404);

        // Enroll anew from where the reset led, then log in with the new password and a code.
        let enroll = done.location.split('?').next().unwrap().to_owned();
        let (_, uri) = enroll_with_oathtool(&s, &enroll).await;
        s.clock.advance(30);
        let login = b
            .login(
                "alice",
                "a brand new long password",
                &oathtool_totp(&uri, now(&s)),
            )
            .await;
        assert_eq!(login.status, 303, "{db:?}: {}", login.body);
        assert!(b.get("/login").await.body.contains("the new one"), "hint");
    }
}
