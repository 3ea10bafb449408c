//! `tessera radius ...` as an admin uses it, against a running RADIUS server: clients with
//! generated and given secrets, rotation without downtime, the built-in radtest, the audit.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use common::radius::{Nas, RadiusFixture, SECRET};
use common::validate::PASSWORD;
use common::{Db, oracle_totp, run_cli};
use serde_json::Value;
use tessera_radius::code;
use tessera_server::model::RadiusMode;

fn ok(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

// The CLI runs as a child process while this test waits for it: the server needs a worker of
// its own meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_added_rotated_tested_and_removed_from_the_cli() {
    let mut r = RadiusFixture::new(Db::Sqlite, RadiusMode::PasswordCode).await;
    r.f.user("alice", true).await;
    let uri = r.f.token("alice", "totp").await;
    let dir = r.f.s.data_dir();

    // A generated secret, shown once; --json for scripts.
    let out = run_cli(
        &dir,
        &[
            "--json",
            "radius",
            "client",
            "add",
            "fw1",
            "--address",
            "10.9.0.0/16",
            "--mode",
            "code",
        ],
        None,
    );
    let v: Value = serde_json::from_str(&ok(&out)).unwrap();
    let generated = v["secret"].as_str().unwrap().to_owned();
    assert!(generated.len() >= 32, "{generated}");
    assert_eq!(v["require_message_authenticator"], true);
    assert_eq!(v["mode"], "code");
    let list = ok(&run_cli(&dir, &["radius", "client", "list"], None));
    assert!(list.contains("fw1") && list.contains("10.9.0.0/16") && list.contains("required"));
    assert!(!list.contains(&generated), "list never shows a secret");
    let show = ok(&run_cli(&dir, &["radius", "client", "show", "fw1"], None));
    assert!(show.contains("mode:") && !show.contains(&generated));
    // Secrets from stdin: empty refused, short warned, 64 accepted.
    let empty = run_cli(
        &dir,
        &[
            "radius",
            "client",
            "add",
            "e",
            "--address",
            "10.1.1.1",
            "--secret-stdin",
        ],
        Some("\n"),
    );
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("must not be empty"));
    let short = run_cli(
        &dir,
        &[
            "radius",
            "client",
            "add",
            "s",
            "--address",
            "10.1.1.2",
            "--secret-stdin",
        ],
        Some("short\n"),
    );
    ok(&short);
    assert!(String::from_utf8_lossy(&short.stderr).contains("warning"));
    let long = "x".repeat(64);
    ok(&run_cli(
        &dir,
        &[
            "radius",
            "client",
            "add",
            "l",
            "--address",
            "10.1.1.3",
            "--secret-stdin",
        ],
        Some(&format!("{long}\n")),
    ));
    let bad_cidr = run_cli(
        &dir,
        &["radius", "client", "add", "b", "--address", "10.1.1.1/16"],
        None,
    );
    assert!(!bad_cidr.status.success());

    // The built-in radtest, with --expect and the exit code.
    let server = r.server.auth_addr.to_string();
    let test = |expect: &str, input: String| {
        run_cli(
            &dir,
            &[
                "radius", "test", "alice", "--client", "nas", "--server", &server, "--expect",
                expect,
            ],
            Some(&input),
        )
    };
    let code = oracle_totp(&uri, r.f.now());
    let accepted = test("accept", format!("{PASSWORD}{code}\n"));
    assert!(ok(&accepted).contains("Access-Accept"));
    let rejected = test("reject", format!("{PASSWORD}{code}\n"));
    assert!(ok(&rejected).contains("Access-Reject"), "replayed code");
    let wrong = test("accept", "wrong\n".into());
    assert!(
        !wrong.status.success(),
        "a reject when accept was expected: exit 1"
    );

    // Rotation: the next secret works beside the current one, then alone.
    let v: Value = serde_json::from_str(&ok(&run_cli(
        &dir,
        &["--json", "radius", "client", "rotate", "nas"],
        None,
    )))
    .unwrap();
    let next = v["secret"].as_str().unwrap().to_owned();
    r.restart().await;
    r.f.s.clock.advance(30);
    for secret in [SECRET, next.as_str()] {
        let nas = Nas::new("127.0.0.1", r.server.auth_addr, secret).await;
        let a = nas.ask("alice", "wrong", &[]).await.expect(secret);
        assert_eq!(
            a.code,
            code::ACCESS_REJECT,
            "answered, signed with the matching secret"
        );
    }
    ok(&run_cli(
        &dir,
        &["radius", "client", "rotate", "nas", "--retire-old"],
        None,
    ));
    r.restart().await;
    let old = Nas::new("127.0.0.1", r.server.auth_addr, SECRET).await;
    let (bytes, auth) = old.request("alice", "wrong", &[], true);
    assert!(
        old.silent(&bytes, &auth).await,
        "the retired secret is refused"
    );
    let new = Nas::new("127.0.0.1", r.server.auth_addr, &next).await;
    let code = oracle_totp(&uri, r.f.now());
    let a = new
        .ask("alice", &format!("{PASSWORD}{code}"), &[])
        .await
        .unwrap();
    assert_eq!(a.code, code::ACCESS_ACCEPT);

    ok(&run_cli(&dir, &["radius", "client", "remove", "fw1"], None));
    let list = ok(&run_cli(&dir, &["radius", "client", "list"], None));
    assert!(!list.contains("fw1"));
    let gone = run_cli(&dir, &["radius", "client", "remove", "fw1"], None);
    assert!(!gone.status.success());

    // Audited, and no secret anywhere in the log.
    let audit = ok(&run_cli(&dir, &["--json", "audit", "list"], None));
    for action in [
        "radius.client.add",
        "radius.client.rotate",
        "radius.client.remove",
    ] {
        assert!(audit.contains(action), "{action}");
    }
    for secret in [SECRET, generated.as_str(), next.as_str(), long.as_str()] {
        assert!(!audit.contains(secret), "a secret in the audit log");
    }
}
