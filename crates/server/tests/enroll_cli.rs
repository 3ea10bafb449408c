//! `tessera enroll ...` and `tessera send-test-email` run as the built binary, on the outbox
//! mailer of a temporary data directory.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use common::{run_cli, stderr, stdout};

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
        stdout(&out).contains("1 of 1 invitations sent."),
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
