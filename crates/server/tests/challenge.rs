//! E-mail and SMS challenges of `POST /api/v1/validate` end to end, through real transports: a
//! real SMTP server (aiosmtpd), an HTTP SMS gateway stub, and the outbox a new installation uses.
//! The login sends no code, gets `challenge` and a transaction id, reads the code from the mail or
//! the SMS, and answers with both.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod challenge_support;
mod common;

use challenge_support::*;
use common::smtp::SmtpSink;
use common::validate::{Fixture, PASSWORD};
use common::{Db, databases};
use serde_json::json;
use tessera_server::Config;
use tessera_server::model::{AppMode, AuditFilter, Language, TokenKind};
use tessera_server::service::{Actor, TokenAction};

#[tokio::test]
async fn email_code_from_a_real_smtp_server_is_accepted_once() {
    for db in databases() {
        let sink = SmtpSink::maildir();
        let f = smtp_fixture(db, &sink, |_| {}).await;
        email_user(&f, "anna", Language::En).await;
        email_user(&f, "bernd", Language::De).await;
        let cases = [
            ("anna", "Your login code", "your one-time passcode"),
            (
                "bernd",
                "Ihr Passcode für die Anmeldung",
                "Ihr Passcode für die Anmeldung lautet",
            ),
        ];
        for (i, (user, subject, words)) in cases.into_iter().enumerate() {
            let tid = trigger(&f, user, "email").await;
            let sent = mails(&sink);
            assert_eq!(sent.len(), i + 1, "{db:?}: one mail per challenge");
            let mail = &sent[i];
            assert_eq!(mail.to, format!("{user}@example.com"));
            assert_eq!(mail.subject, subject, "{db:?}");
            assert!(mail.text.contains(words), "{db:?}: {}", mail.text);
            assert!(
                mail.text.contains(&format!("Hello {user}"))
                    || mail.text.contains(&format!("Hallo {user}")),
                "{}",
                mail.text
            );
            let code = code_in(&mail.text);
            assert_eq!(code.len(), 6);
            assert!(
                !mail.text.contains(&tid),
                "the mail carries no transaction id"
            );

            assert_eq!(answer(&f, user, &tid, &code).await, "accept", "{db:?}");
            // Single use: the same answer again is refused.
            assert_eq!(answer(&f, user, &tid, &code).await, "reject", "{db:?}");
            assert_eq!(
                f.reasons(user, "validate").await,
                ["challenge already used", "challenge code accepted"],
                "{db:?}"
            );
            assert_eq!(
                f.reasons(user, "validate.challenge").await,
                ["email code sent"]
            );
        }
        assert_eq!(mails(&sink).len(), 2, "answers send no mail");
    }
}

#[tokio::test]
async fn wrong_answers_void_the_challenge_after_the_maximum() {
    for db in databases() {
        let sink = SmtpSink::maildir();
        let f = smtp_fixture(db, &sink, |_| {}).await;
        email_user(&f, "carla", Language::En).await;

        // Fewer wrong answers than the maximum: the right code still works.
        let tid = trigger(&f, "carla", "email").await;
        let code = code_in(&mails(&sink)[0].text);
        for n in 1..MAX_ATTEMPTS {
            let wrong = other_code(&code, u32::try_from(n).unwrap());
            assert_eq!(answer(&f, "carla", &tid, &wrong).await, "reject");
        }
        assert_eq!(answer(&f, "carla", &tid, &code).await, "accept", "{db:?}");

        // As many wrong answers as allowed: then even the right code is refused.
        let tid = trigger(&f, "carla", "email").await;
        let code = code_in(&mails(&sink)[1].text);
        for n in 1..=MAX_ATTEMPTS {
            let wrong = other_code(&code, u32::try_from(n).unwrap());
            assert_eq!(answer(&f, "carla", &tid, &wrong).await, "reject");
        }
        assert_eq!(answer(&f, "carla", &tid, &code).await, "reject", "{db:?}");
        let reasons = f.reasons("carla", "validate").await;
        assert_eq!(
            reasons[..=MAX_ATTEMPTS],
            [
                "challenge void after too many attempts",
                "wrong challenge code",
                "wrong challenge code",
                "wrong challenge code",
            ],
            "{db:?}"
        );
        // Wrong answers blame neither the account nor the token: the challenge carries the limit.
        let user = f.s.app.service.user_named("carla").await.unwrap();
        assert_eq!(user.fail_count, 0);
    }
}

#[tokio::test]
async fn challenge_expires_after_its_ttl() {
    let sink = SmtpSink::maildir();
    let f = smtp_fixture(Db::Sqlite, &sink, |_| {}).await;
    email_user(&f, "dora", Language::En).await;
    assert!(mails(&sink).is_empty());

    let tid = trigger(&f, "dora", "email").await;
    let code = code_in(&mails(&sink)[0].text);
    assert!(mails(&sink)[0].text.contains("valid for 5 minutes"));
    f.s.clock.advance(TTL - 1);
    assert_eq!(answer(&f, "dora", &tid, &code).await, "accept");

    let tid = trigger(&f, "dora", "email").await;
    let code = code_in(&mails(&sink)[1].text);
    f.s.clock.advance(TTL);
    assert_eq!(answer(&f, "dora", &tid, &code).await, "reject");
    assert_eq!(f.last_reason("dora").await, "challenge expired");
}

#[tokio::test]
async fn transaction_of_another_user_is_refused() {
    let sink = SmtpSink::maildir();
    let f = smtp_fixture(Db::Sqlite, &sink, |_| {}).await;
    email_user(&f, "emil", Language::En).await;
    email_user(&f, "frida", Language::En).await;
    let tid = trigger(&f, "emil", "email").await;
    let code = code_in(&mails(&sink)[0].text);

    assert_eq!(answer(&f, "frida", &tid, &code).await, "reject");
    assert_eq!(
        f.last_reason("frida").await,
        "transaction belongs to another user"
    );
    assert_eq!(
        answer(&f, "emil", "not-a-transaction", &code).await,
        "reject"
    );
    assert_eq!(f.last_reason("emil").await, "unknown transaction");
    // Neither spent the challenge: its owner still completes it.
    assert_eq!(answer(&f, "emil", &tid, &code).await, "accept");
}

#[tokio::test]
async fn wrong_password_sends_no_code() {
    let sink = SmtpSink::maildir();
    let f = smtp_fixture(Db::Sqlite, &sink, |_| {}).await;
    email_user(&f, "gero", Language::En).await;
    for body in [
        json!({"username": "gero", "password": "wrong password"}),
        json!({"username": "gero"}),
    ] {
        let (status, v) = f.validate(body).await;
        assert_eq!(status, 200);
        assert_eq!(v["result"], "reject", "{v}");
        assert!(v.get("transaction_id").is_none(), "{v}");
        assert_eq!(
            f.last_reason("gero").await,
            "wrong password (challenge not sent)"
        );
    }
    assert!(mails(&sink).is_empty(), "no mail without the password");
    assert!(
        f.reasons("gero", "validate.challenge").await.is_empty(),
        "no challenge"
    );
    let user = f.s.app.service.user_named("gero").await.unwrap();
    assert_eq!(
        user.fail_count, 2,
        "wrong passwords count against the account"
    );
}

#[tokio::test]
async fn challenges_per_user_and_hour_are_limited() {
    let sink = SmtpSink::maildir();
    let f = smtp_fixture(Db::Sqlite, &sink, |c| c.validate.challenge_max_per_hour = 2).await;
    email_user(&f, "hanna", Language::En).await;
    email_user(&f, "ines", Language::En).await;
    trigger(&f, "hanna", "email").await;
    f.s.clock.advance(600);
    trigger(&f, "hanna", "email").await;
    assert_eq!(mails(&sink).len(), 2);

    // The third within the hour (from the first) is refused and sends nothing.
    f.s.clock.advance(3600 - 600 - 1);
    assert_eq!(
        f.result(json!({"username": "hanna", "password": PASSWORD}))
            .await,
        "reject"
    );
    assert_eq!(
        f.last_reason("hanna").await,
        "challenge not sent: hourly limit reached"
    );
    assert_eq!(mails(&sink).len(), 2, "no third mail");
    // The limit is per user.
    trigger(&f, "ines", "email").await;
    assert_eq!(mails(&sink).len(), 3);

    // An hour after the first, one more may be sent (the second is still within its hour).
    f.s.clock.advance(1);
    let tid = trigger(&f, "hanna", "email").await;
    let sent = mails(&sink);
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[3].to, "hanna@example.com");
    assert_eq!(
        answer(&f, "hanna", &tid, &code_in(&sent[3].text)).await,
        "accept"
    );
    assert_eq!(
        f.result(json!({"username": "hanna", "password": PASSWORD}))
            .await,
        "reject"
    );
    assert_eq!(mails(&sink).len(), 4);
}

#[tokio::test]
async fn neither_code_nor_transaction_id_is_stored_or_audited() {
    for db in databases() {
        // Eight digits: a six-digit string turns up by chance in the hex of the hashes a database
        // holds, and this search must not fail by chance.
        let f = Fixture::with(db, AppMode::PasswordAndOtp, |c| {
            c.validate.challenge_digits = 8;
        })
        .await;
        email_user(&f, "ida", Language::En).await;
        let mut codes = Vec::new();
        let mut tids = Vec::new();
        // Accepted, replayed, answered wrongly until void, expired: every path a code takes.
        let tid = trigger(&f, "ida", "email").await;
        let code = code_in(&outbox_mails(&f)[0].text);
        assert_eq!(code.len(), 8);
        assert_eq!(answer(&f, "ida", &tid, &code).await, "accept");
        assert_eq!(answer(&f, "ida", &tid, &code).await, "reject");
        codes.push(code);
        tids.push(tid);
        let tid = trigger(&f, "ida", "email").await;
        let code = code_in(&outbox_mails(&f)[1].text);
        for n in 1..=MAX_ATTEMPTS {
            let wrong = other_code(&code, u32::try_from(n).unwrap());
            assert_eq!(answer(&f, "ida", &tid, &wrong).await, "reject");
            codes.push(wrong);
        }
        codes.push(code);
        tids.push(tid);
        let tid = trigger(&f, "ida", "email").await;
        let code = code_in(&outbox_mails(&f)[2].text);
        f.s.clock.advance(TTL);
        assert_eq!(answer(&f, "ida", &tid, &code).await, "reject");
        codes.push(code);
        tids.push(tid);
        let secrets: Vec<&String> = codes.iter().chain(&tids).collect();

        let audit =
            f.s.app
                .service
                .list_audit(
                    &Actor::operator(),
                    AuditFilter {
                        limit: 1000,
                        ..AuditFilter::default()
                    },
                )
                .await
                .unwrap();
        assert!(audit.len() > 10, "{}", audit.len());
        let audit = serde_json::to_string(&audit).unwrap();
        assert!(audit.contains("challenge code accepted"), "{audit}");
        for secret in &secrets {
            assert!(
                !audit.contains(secret.as_str()),
                "{db:?}: audit has {secret}"
            );
        }

        if db == Db::Sqlite {
            // A consistent copy of what the database holds, and the raw files as they lie.
            let file = f.s.data_dir().join("tessera.db");
            let copy = f.s.dir.path().join("copy.db");
            {
                use sqlx::Connection as _;
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&file);
                let mut conn = sqlx::SqliteConnection::connect_with(&options)
                    .await
                    .unwrap();
                // The test's own path, no outside input.
                let vacuum =
                    sqlx::AssertSqlSafe(format!("VACUUM INTO '{}'", copy.to_str().unwrap()));
                sqlx::query(vacuum).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
            let mut dumps = vec![("copy", std::fs::read(&copy).unwrap())];
            for name in ["tessera.db", "tessera.db-wal"] {
                if let Ok(bytes) = std::fs::read(f.s.data_dir().join(name)) {
                    dumps.push((name, bytes));
                }
            }
            // The search works: the challenges' id hashes are there.
            for tid in &tids {
                let hash = tessera_server::crypto::token_hash(tid);
                assert!(contains(&dumps[0].1, hash.as_bytes()), "{hash} not found");
            }
            for (name, bytes) in &dumps {
                for secret in &secrets {
                    assert!(!contains(bytes, secret.as_bytes()), "{name} has {secret}");
                }
            }
        }
    }
}

#[test]
fn the_constants_are_the_configured_defaults() {
    let defaults = Config::default().validate;
    assert_eq!(i64::try_from(defaults.challenge_ttl_secs).unwrap(), TTL);
    assert_eq!(
        usize::try_from(defaults.challenge_max_attempts).unwrap(),
        MAX_ATTEMPTS
    );
    assert_eq!(defaults.challenge_digits, 6);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn email_code_goes_to_the_outbox_without_a_mail_server() {
    // A new installation: nothing configured.
    let f = Fixture::new(Db::Sqlite, AppMode::PasswordAndOtp).await;
    email_user(&f, "mia", Language::De).await;
    let tid = trigger(&f, "mia", "email").await;
    let outbox = outbox_mails(&f);
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].to, "mia@example.com");
    assert_eq!(outbox[0].subject, "Ihr Passcode für die Anmeldung");
    assert_eq!(
        answer(&f, "mia", &tid, &code_in(&outbox[0].text)).await,
        "accept"
    );
}

#[tokio::test]
async fn otp_only_application_sends_a_challenge_for_the_username_alone() {
    let f = Fixture::new(Db::Sqlite, AppMode::OtpOnly).await;
    f.user_with("nils", |u| {
        u.otp_required = true;
        u.password = None;
    })
    .await;
    f.challenge_token("nils", TokenKind::Email).await;
    let tid = trigger_with(&f, json!({"username": "nils"}), "email").await;
    let code = code_in(&outbox_mails(&f)[0].text);
    assert_eq!(answer(&f, "nils", &tid, &code).await, "accept");
    assert_eq!(f.last_reason("nils").await, "challenge code accepted");
}

#[tokio::test]
async fn challenge_of_a_disabled_or_revoked_token_cannot_be_answered() {
    // Taking a token away ends what it can do at once, a code already on its way included.
    let f = Fixture::new(Db::Sqlite, AppMode::PasswordAndOtp).await;
    let svc = &f.s.app.service;
    for (i, (user, action)) in [
        ("olaf", TokenAction::Disable),
        ("paul", TokenAction::Revoke),
    ]
    .into_iter()
    .enumerate()
    {
        email_user(&f, user, Language::En).await;
        let tid = trigger(&f, user, "email").await;
        let code = code_in(&outbox_mails(&f)[i].text);
        let token = svc
            .list_tokens(&Actor::operator(), Some(user), 0, 0)
            .await
            .unwrap()
            .remove(0);
        svc.change_token_state(&Actor::operator(), token.id, action)
            .await
            .unwrap();
        assert_eq!(answer(&f, user, &tid, &code).await, "reject", "{action:?}");
        assert_eq!(
            f.last_reason(user).await,
            "token of the challenge no longer active"
        );
    }
}
