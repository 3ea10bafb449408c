//! Self-service recovery (SPEC F4) over HTTP: username and recovery code, the e-mailed code, the
//! enrollment of a new device; identical answers, single use, expiry, attempts, throttling,
//! policies, and only hashes in the database.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;
mod enroll_support;
mod recovery_support;
mod web_support;

use common::{Db, TestServer};
use enroll_support::{contains, database_bytes, form_token, get, post};
use recovery_support::{
    actions, code_after, emailed_code, enroll_new_device, enrolled_user, not_me_path, outbox,
    recover, verify, wait_for_mails,
};
use tessera_server::Config;
use tessera_server::model::{Language, TokenState};
use tessera_server::service::Actor;
use web_support::{Browser, hidden, now};

async fn spawn(tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::spawn_with(Db::Sqlite, tweak).await
}

#[tokio::test]
async fn lost_phone_recovery_code_and_emailed_code_lead_to_a_new_device() {
    let s = spawn(|_| {}).await;
    let codes = enrolled_user(&s, "alice", Language::En).await;
    let mails_before = outbox(&s).len();
    let mut b = Browser::new(&s);
    let sent = recover(&mut b, "alice", &codes[0].to_lowercase()).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(sent.body.contains("one-time code"), "{}", sent.body);
    let mails = wait_for_mails(&s, mails_before + 1).await;
    let (subject, text) = mails.last().unwrap();
    assert_eq!(subject, "Your recovery code");
    let code = emailed_code(text);

    // Switching the language on the code step keeps the step (the form re-sends its fields).
    assert!(
        sent.body.contains(r#"action="/recover/lang?lang=de""#),
        "{}",
        sent.body
    );
    let german = b
        .post(
            "/recover/lang?lang=de",
            &[
                ("recover_form", &hidden(&sent.body, "recover_form")),
                ("ticket", &hidden(&sent.body, "ticket")),
            ],
        )
        .await;
    assert_eq!(german.status, 200, "{}", german.body);
    assert!(
        german.body.contains("Code aus der E-Mail"),
        "{}",
        german.body
    );
    assert_eq!(hidden(&german.body, "ticket"), hidden(&sent.body, "ticket"));
    assert!(german.body.contains(r#"action="/recover/lang?lang=en""#));
    // Without the form's value bound to the browser's cookie, nothing is shown.
    let forged = b
        .post(
            "/recover/lang?lang=de",
            &[
                ("recover_form", "x"),
                ("ticket", &hidden(&sent.body, "ticket")),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    // The first step has its plain link.
    assert!(!b.get("/recover").await.body.contains("/recover/lang"));

    let next = verify(&mut b, &german, &code).await;
    assert_eq!(next.status, 303, "{}", next.body);
    let link = next.location.split('?').next().unwrap().to_owned();
    assert!(link.starts_with("/enroll/"), "{link}");
    // A recovery is no login: no session, the portal stays closed.
    assert!(!b.cookies.contains_key("tessera_session"));
    assert_eq!(b.get("/portal").await.status, 303);

    s.clock.advance(30);
    enroll_new_device(&s, &link).await;
    let tokens = s
        .app
        .service
        .store()
        .tokens_of(s.app.service.user_named("alice").await.unwrap().id)
        .await
        .unwrap();
    let active = tokens
        .iter()
        .filter(|t| t.state == TokenState::Active)
        .count();
    assert_eq!(active, 2, "by default the old device is kept");
    let log = actions(&s, "alice").await;
    for action in ["recovery.start", "recovery.verify", "recovery.complete"] {
        assert!(
            log.contains(&(action.to_owned(), "success".to_owned())),
            "{action}: {log:?}"
        );
    }

    // The recovery code was consumed: the same code sends nothing any more.
    let count = outbox(&s).len();
    let again = recover(&mut b, "alice", &codes[0]).await;
    assert_eq!(again.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(outbox(&s).len(), count, "no mail for a used recovery code");
    assert_eq!(verify(&mut b, &again, &code).await.status, 401);
}

#[tokio::test]
async fn the_page_answers_the_same_for_unknown_users_and_wrong_codes() {
    let s = spawn(|_| {}).await;
    let codes = enrolled_user(&s, "alice", Language::En).await;
    let normalise = |p: &web_support::Page| {
        p.body
            .replace(&hidden(&p.body, "ticket"), "TICKET")
            .replace(&hidden(&p.body, "recover_form"), "FORM")
    };
    let mut pages = Vec::new();
    for (user, code) in [
        ("nobody", codes[1].as_str()),
        ("alice", "AAAAA-AAAAA"),
        ("alice", codes[1].as_str()),
    ] {
        let mut b = Browser::new(&s);
        let started = tokio::time::Instant::now();
        let page = recover(&mut b, user, code).await;
        let took = started.elapsed();
        assert!(
            took >= std::time::Duration::from_millis(250),
            "{user}: {took:?}"
        );
        pages.push((page.status, normalise(&page)));
    }
    assert_eq!(
        pages[0], pages[1],
        "unknown user and wrong code look the same"
    );
    assert_eq!(pages[1], pages[2], "a wrong and a right code look the same");
}

#[tokio::test]
async fn emailed_codes_expire_work_once_and_allow_few_attempts() {
    let s = spawn(|_| {}).await;
    let codes = enrolled_user(&s, "alice", Language::En).await;
    let mut b = Browser::new(&s);

    // Expired after 15 minutes.
    let n = outbox(&s).len();
    let sent = recover(&mut b, "alice", &codes[0]).await;
    let code = code_after(&s, n).await;
    s.clock.advance(15 * 60);
    let late = verify(&mut b, &sent, &code).await;
    assert_eq!(late.status, 401);
    assert!(
        late.body.contains("wrong or no longer valid"),
        "{}",
        late.body
    );

    // Used once.
    let n = outbox(&s).len();
    let sent = recover(&mut b, "alice", &codes[1]).await;
    let code = code_after(&s, n).await;
    assert_eq!(verify(&mut b, &sent, &code).await.status, 303);
    assert_eq!(verify(&mut b, &sent, &code).await.status, 401, "reused");

    // Five wrong answers void it, even for the right code afterwards.
    let n = outbox(&s).len();
    let sent = recover(&mut b, "alice", &codes[2]).await;
    let code = code_after(&s, n).await;
    for _ in 0..5 {
        assert_eq!(verify(&mut b, &sent, "00000000").await.status, 401);
    }
    assert_eq!(verify(&mut b, &sent, &code).await.status, 401);
}

#[tokio::test]
async fn a_typo_in_the_emailed_code_keeps_the_code_step_with_the_tries_left() {
    let s = spawn(|_| {}).await;
    let codes = enrolled_user(&s, "alice", Language::De).await;
    let mut b = Browser::new(&s);
    let n = outbox(&s).len();
    let sent = recover(&mut b, "alice", &codes[0]).await;
    let code = code_after(&s, n).await;
    let mut typo: Vec<char> = code.chars().collect();
    typo[0] = if typo[0] == '1' { '2' } else { '1' };
    let typo: String = typo.into_iter().collect();
    let again = verify(&mut b, &sent, &typo).await;
    assert_eq!(again.status, 401);
    assert_eq!(
        hidden(&again.body, "ticket"),
        hidden(&sent.body, "ticket"),
        "still step 2"
    );
    assert!(again.body.contains("4 more tries"), "{}", again.body);
    let again = verify(&mut b, &again, &typo).await;
    assert!(again.body.contains("3 more tries"), "{}", again.body);
    // The right code on the same page: the recovery code was not spent by the typos.
    let done = verify(&mut b, &again, &code).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location.starts_with("/enroll/"), "{}", done.location);
    // A made-up ticket counts down the same way (the page tells no real ticket from a fake).
    let mut fake = Browser::new(&s);
    let page = fake.get("/recover").await;
    let value = hidden(&page.body, "recover_form");
    let tried = fake
        .post(
            "/recover/code",
            &[
                ("recover_form", &value),
                ("ticket", "made-up"),
                ("tries", "5"),
                ("code", "1"),
            ],
        )
        .await;
    assert!(tried.body.contains("noch 4 Versuche") || tried.body.contains("4 more tries"));
    // At zero, back to the first step.
    let last = fake
        .post(
            "/recover/code",
            &[
                ("recover_form", &value),
                ("ticket", "made-up"),
                ("tries", "1"),
                ("code", "1"),
            ],
        )
        .await;
    assert!(!last.body.contains("name=\"ticket\""), "step 1 again");
}

#[tokio::test]
async fn recovery_is_throttled_per_account_and_per_address() {
    let s = spawn(|c| {
        c.recovery.max_per_account_per_hour = 1;
        c.auth.account_source_failures_per_hour = 2;
    })
    .await;
    let codes = enrolled_user(&s, "alice", Language::En).await;
    let n = outbox(&s).len();
    let mut b = Browser::new(&s);
    recover(&mut b, "alice", "WRONG-CODE1").await;
    recover(&mut b, "alice", "WRONG-CODE2").await;
    // Two wrong codes from this address for this account: the address is refused for the
    // hour; even the right code sends nothing and is not used up. (The owner elsewhere is not
    // affected: tests/security_login.rs.)
    recover(&mut b, "alice", &codes[0]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(outbox(&s).len(), n, "no recovery mail");
    s.clock.advance(3600);
    recover(&mut b, "alice", &codes[0]).await;
    code_after(&s, n).await;
    // One recovery started per account and hour: the next one, even with a right code, mails
    // nothing.
    let n = outbox(&s).len();
    recover(&mut b, "alice", &codes[1]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(outbox(&s).len(), n, "past the account's hourly recoveries");

    let s = spawn(|c| {
        c.recovery.max_per_source_per_minute = 1;
    })
    .await;
    let codes = enrolled_user(&s, "bob", Language::En).await;
    let n = outbox(&s).len();
    let mut b = Browser::new(&s);
    recover(&mut b, "bob", "WRONG-CODE1").await;
    recover(&mut b, "bob", &codes[0]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(outbox(&s).len(), n, "the address's minute was used up");
    s.clock.advance(60);
    recover(&mut b, "bob", &codes[0]).await;
    code_after(&s, n).await;
}

#[tokio::test]
async fn policies_forbid_self_recovery_and_revoke_old_devices() {
    let s = spawn(|c| {
        c.recovery.revoke_old_devices = true;
    })
    .await;
    let codes = enrolled_user(&s, "alice", Language::De).await;
    s.app
        .service
        .set_self_recovery_policy(&Actor::operator(), "alice", Some(false), None)
        .await
        .unwrap();
    let n = outbox(&s).len();
    let mut b = Browser::new(&s);
    // A wrong code gets the usual answer; the owner's right code learns that the IT must help
    // (no promise of a mail that never comes), and the code is not spent.
    let usual = recover(&mut b, "alice", "AAAA-BBBB-CCCC").await;
    assert!(
        !usual.body.contains("Wenden Sie sich bitte an Ihre IT"),
        "{}",
        usual.body
    );
    let told = recover(&mut b, "alice", &codes[0]).await;
    assert_eq!(told.status, 403, "{}", told.body);
    assert!(
        told.body.contains("Please contact your IT team")
            && told.body.contains("your recovery code was not used"),
        "{}",
        told.body
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(outbox(&s).len(), n, "forbidden: no mail");

    s.app
        .service
        .set_self_recovery_policy(&Actor::operator(), "alice", None, None)
        .await
        .unwrap();
    // The refused attempt did not use the code up.
    let sent = recover(&mut b, "alice", &codes[0]).await;
    let mails = wait_for_mails(&s, n + 1).await;
    assert_eq!(
        mails[n].0, "Ihr Wiederherstellungscode",
        "in the user's language"
    );
    let next = verify(&mut b, &sent, &emailed_code(&mails[n].1)).await;
    assert_eq!(next.status, 303);
    let link = next.location.split('?').next().unwrap().to_owned();
    s.clock.advance(30);
    enroll_new_device(&s, &link).await;
    let user = s.app.service.user_named("alice").await.unwrap();
    let tokens = s.app.service.store().tokens_of(user.id).await.unwrap();
    let states: Vec<_> = tokens.iter().map(|t| t.state).collect();
    assert_eq!(
        states.iter().filter(|s| **s == TokenState::Active).count(),
        1,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == TokenState::Revoked).count(),
        1,
        "{states:?}"
    );
}

#[tokio::test]
async fn pin_change_via_recovery_delete_the_token_recover_enroll_anew() {
    let s = spawn(|_| {}).await;
    let codes = enrolled_user(&s, "alice", Language::En).await;
    let user = s.app.service.user_named("alice").await.unwrap();
    // The user forgot the app's PIN: the token is deleted (here by the operator).
    for t in s.app.service.store().tokens_of(user.id).await.unwrap() {
        s.app
            .service
            .delete_token(&Actor::operator(), t.id)
            .await
            .unwrap();
    }
    let mut b = Browser::new(&s);
    let n = outbox(&s).len();
    let sent = recover(&mut b, "alice", &codes[3]).await;
    let code = code_after(&s, n).await;
    let next = verify(&mut b, &sent, &code).await;
    assert_eq!(next.status, 303);
    let link = next.location.split('?').next().unwrap().to_owned();
    s.clock.advance(30);
    enroll_new_device(&s, &link).await;
    let tokens = s.app.service.store().tokens_of(user.id).await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].state, TokenState::Active);
}

#[tokio::test]
async fn the_database_holds_only_hashes_of_tickets_codes_and_links() {
    let s = spawn(|_| {}).await;
    let codes = enrolled_user(&s, "alice", Language::En).await;
    let mut b = Browser::new(&s);
    let n = outbox(&s).len();
    let sent = recover(&mut b, "alice", &codes[0]).await;
    let ticket = hidden(&sent.body, "ticket");
    let code = code_after(&s, n).await;
    let next = verify(&mut b, &sent, &code).await;
    let link = next.location.split('?').next().unwrap().to_owned();
    let link_token = link.trim_start_matches("/enroll/");
    let db = database_bytes(&s);
    assert!(!contains(&db, &ticket), "ticket in the database");
    assert!(!contains(&db, link_token), "link token in the database");
    let normalized: String = codes[0].chars().filter(|c| *c != '-').collect();
    assert!(!contains(&db, &codes[0]) && !contains(&db, &normalized));
    // An 8-digit code could appear by chance in binary data; as text next to "recovery" it
    // must not: the stored code hash is hex of SHA-256.
    assert!(!contains(&db, &format!("recovery:{ticket}:{code}")));
}

#[tokio::test]
async fn this_wasnt_me_revokes_the_new_device_ends_sessions_and_locks_self_service() {
    let s = spawn(|_| {}).await;
    let codes = enrolled_user(&s, "alice", Language::De).await;
    let user = s.app.service.user_named("alice").await.unwrap();
    // An admin with an address, to be told.
    enroll_support::add_user(&s, "root", "root@example.org", Language::En).await;
    let mut root = s.app.service.user_named("root").await.unwrap();
    root.role = tessera_server::model::Role::Admin;
    s.app.service.store().update_user(&root).await.unwrap();

    // Someone with one of her recovery codes (and her mailbox) recovers the account.
    let n = outbox(&s).len();
    let mut attacker = Browser::new(&s);
    let sent = recover(&mut attacker, "alice", &codes[0]).await;
    let code = code_after(&s, n).await;
    let next = verify(&mut attacker, &sent, &code).await;
    let link = next.location.split('?').next().unwrap().to_owned();
    s.clock.advance(30);
    let n = outbox(&s).len();
    let codes = enroll_new_device(&s, &link).await;
    assert_eq!(codes.len(), 10, "a new set with the new device");
    let mails = outbox(&s);
    let notice = mails[n..]
        .iter()
        .find(|(subject, _)| subject == "Ihr Konto wurde wiederhergestellt")
        .expect("a recovery notification in German");
    assert!(notice.1.contains("Von wo: 127.0.0.1"), "{}", notice.1);
    let not_me = not_me_path(&notice.1);

    // A web session and an API session of alice, which the block must end.
    s.app
        .service
        .store()
        .insert_web_session(&tessera_server::model::WebSession {
            id_hash: "h".repeat(64),
            user_id: user.id,
            created_at: 0,
            last_seen_at: now(&s).try_into().unwrap(),
            expires_at: i64::MAX,
            reauth_until: 0,
            csrf_secret: "c".into(),
        })
        .await
        .unwrap();
    let tokens = s.app.service.store().tokens_of(user.id).await.unwrap();
    let new_token = tokens.iter().max_by_key(|t| t.id.0).unwrap().id;

    let page = get(&s, &not_me, &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Das war ich nicht"));
    // Without the form token nothing happens.
    assert_eq!(post(&s, &not_me, &[("form_token", "x")]).await.status, 403);
    let before = outbox(&s).len();
    let token = form_token(&page.body);
    let done = post(&s, &not_me, &[("form_token", &token)]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Erledigt"));
    // Single use.
    assert_eq!(
        post(&s, &not_me, &[("form_token", &token)]).await.status,
        404
    );
    assert_eq!(get(&s, &not_me, &[]).await.status, 404);

    let tokens = s.app.service.store().tokens_of(user.id).await.unwrap();
    let new = tokens.iter().find(|t| t.id == new_token).unwrap();
    assert_eq!(new.state, TokenState::Revoked, "the device of the event");
    assert!(
        tokens
            .iter()
            .any(|t| t.id != new_token && t.state == TokenState::Active),
        "her own device stays"
    );
    assert!(
        s.app
            .service
            .store()
            .web_session(&"h".repeat(64))
            .await
            .unwrap()
            .is_none(),
        "web sessions ended"
    );
    let policy = s
        .app
        .service
        .store()
        .recovery_policy(user.id)
        .await
        .unwrap();
    assert!(policy.self_service_locked);
    let log = actions(&s, "alice").await;
    assert!(log.iter().any(|(a, _)| a == "security.blocked"), "{log:?}");
    let mails = outbox(&s);
    assert!(
        mails[before..]
            .iter()
            .any(|(subject, _)| subject == "Tessera: account alice blocked"),
        "the admin was told: {mails:?}"
    );
    // Self-service is locked: another recovery code sends nothing.
    let n = outbox(&s).len();
    recover(&mut attacker, "alice", &codes[1]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(outbox(&s).len(), n);
    // Until an admin clears it.
    s.app
        .service
        .clear_self_service_lock(&Actor::operator(), "alice")
        .await
        .unwrap();
    recover(&mut attacker, "alice", &codes[1]).await;
    code_after(&s, n).await;
}

#[tokio::test]
async fn a_new_and_a_removed_device_are_notified_in_english() {
    let s = spawn(|_| {}).await;
    enrolled_user(&s, "bob", Language::En).await;
    let mails = outbox(&s);
    let added = mails
        .iter()
        .find(|(subject, _)| subject == "A new device was added")
        .expect("new device notice");
    assert!(
        added.1.contains("/not-me/") && added.1.contains("When: 2023-11-14"),
        "{}",
        added.1
    );
    let user = s.app.service.user_named("bob").await.unwrap();
    let token = s.app.service.store().tokens_of(user.id).await.unwrap()[0].id;
    s.app
        .service
        .delete_token(&Actor::operator(), token)
        .await
        .unwrap();
    let (subject, text) = outbox(&s).pop().unwrap();
    assert_eq!(subject, "A device was removed");
    assert!(text.contains("If this wasn't you"));
    let db = database_bytes(&s);
    let link = not_me_path(&text);
    assert!(
        !contains(&db, link.trim_start_matches("/not-me/")),
        "only the hash is stored"
    );
}
