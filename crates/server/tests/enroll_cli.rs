//! `tessera enroll ...` and `tessera send-test-email` run as the built binary, on the outbox
//! mailer of a temporary data directory.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use common::smtp::SmtpSink;
use common::{run_cli, run_cli_env, stderr, stdout};

#[test]
fn cli_prints_a_link_sends_in_bulk_and_fails_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let run = |args: &[&str]| run_cli(data, args, None);
    for (name, email) in [
        ("jo", "jo@example.org"),
        ("kai", "kai@example.org"),
        ("lu", ""),
    ] {
        let mut args = vec!["user", "add", name, "--otp-required"];
        if !email.is_empty() {
            args.extend(["--email", email]);
        }
        let out = run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run(&["enroll", "link", "jo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("/enroll/"), "{}", stdout(&out));

    // Everyone pending gets a mail; lu has no address: reported, exit 1.
    let out = run(&["--json", "enroll", "send", "--all-pending"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let results: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let sent: Vec<(&str, bool)> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["username"].as_str().unwrap(),
                r["sent"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(sent, vec![("jo", true), ("kai", true), ("lu", false)]);
    assert!(
        stderr(&out).contains("error (invalid_input): lu:"),
        "{}",
        stderr(&out)
    );
    let mails = std::fs::read_dir(data.join("outbox")).unwrap().count();
    assert_eq!(mails, 2);

    let out = run(&["enroll", "send", "kai"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("1 of 1 invitations written to the outbox"),
        "{}",
        stdout(&out)
    );

    let out = run(&["enroll", "recovery", "kai", "off"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Recovery codes for kai: off."),
        "{}",
        stdout(&out)
    );

    let out = run(&["send-test-email", "it@example.org"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("outbox"), "{}", stdout(&out));
    let out = run(&["send-test-email", "not an address"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid_input"), "{}", stderr(&out));
}

#[test]
fn enroll_send_says_whether_a_mail_was_sent_or_written_to_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let outbox = data.join("outbox");
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    ok(run_cli(
        data,
        &["user", "add", "jo", "--email", "jo@example.org"],
        None,
    ));
    let delivery = ["recovery", "policy", "jo", "--delivery", "email"];
    ok(run_cli(data, &delivery, None));

    // Without a mail server: written to the outbox, named with its path; nothing says "sent".
    let text = ok(run_cli(data, &["enroll", "send", "jo"], None));
    let written = format!(
        "1 of 1 invitations written to the outbox {}",
        outbox.display()
    );
    assert!(text.contains(&written), "{text}");
    assert!(
        text.contains("not sent: no mail server is configured"),
        "{text}"
    );
    assert!(text.contains("jo    in outbox"), "{text}");
    assert!(!text.contains("invitations sent"), "{text}");
    let json = ok(run_cli(data, &["--json", "enroll", "send", "jo"], None));
    let results: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(results[0]["outbox"], outbox.to_str().unwrap());
    let text = ok(run_cli(data, &["recovery", "issue", "jo"], None));
    assert!(
        text.contains("written to the outbox") && text.contains("not sent"),
        "{text}"
    );
    let text = ok(run_cli(data, &["send-test-email", "it@example.org"], None));
    assert!(
        text.contains("written to the outbox") && text.contains("not sent"),
        "{text}"
    );
    let mails = std::fs::read_dir(&outbox).unwrap().count();

    // With a mail server: sent, and no outbox is named.
    let sink = SmtpSink::maildir();
    let port = sink.port.to_string();
    let smtp = [
        ("TESSERA_MAIL__SMTP_HOST", "127.0.0.1"),
        ("TESSERA_MAIL__SMTP_PORT", port.as_str()),
        ("TESSERA_MAIL__SMTP_SECURITY", "none"),
    ];
    let text = ok(run_cli_env(data, &["enroll", "send", "jo"], None, &smtp));
    assert!(text.contains("1 of 1 invitations sent."), "{text}");
    assert!(text.contains("jo    sent"), "{text}");
    assert!(!text.contains("outbox"), "{text}");
    let json = ok(run_cli_env(
        data,
        &["--json", "enroll", "send", "jo"],
        None,
        &smtp,
    ));
    let results: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(results[0].get("outbox").is_none(), "{results}");
    let text = ok(run_cli_env(data, &["recovery", "issue", "jo"], None, &smtp));
    assert!(text.contains("mailed to jo@example.org"), "{text}");
    // Two invitations, the codes, and the notice to the user that codes were re-issued.
    assert_eq!(sink.delivered().len(), 4, "{}", sink.log());
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), mails);
}
