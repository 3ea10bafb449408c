//! RADIUS end to end with real peers: radclient (freeradius-utils) and pyrad 2.6.0 with
//! `enforce_ma=True`, plus a NAS of our own for exact bytes, duplicates and forgeries. On SQLite
//! always and on PostgreSQL when configured. Codes come from totp-rs, never from our engine.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::time::Duration;

use common::radius::{Nas, RadiusFixture, SECRET};
use common::validate::PASSWORD;
use common::{databases, oracle_totp};
use serde_json::Value;
use tessera_radius::{attr, code};
use tessera_server::model::RadiusMode;
use tessera_server::service::radius::AddRadiusClient;
use zeroize::Zeroizing;

async fn radclient(port: u16, kind: &str, input: &str) -> (bool, String) {
    let mut child = tokio::process::Command::new("radclient")
        .args(["-x", "-t", "3", "-r", "1"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(kind)
        .arg(SECRET)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("radclient (apt-get install freeradius-utils; .ci/install-tools)");
    use tokio::io::AsyncWriteExt as _;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn pyrad(port: u16, user: &str, password: &str, extra: &[&str]) -> Value {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/radius/pyrad_peer.py"
    );
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(SECRET)
        .arg(user)
        .arg(password)
        .args(extra)
        .output()
        .await
        .expect("python3 with pyrad 2.6.0 (.ci/install-tools)");
    assert!(
        out.status.success(),
        "pyrad: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A user with an active TOTP token; returns its Key URI.
async fn alice(r: &RadiusFixture) -> String {
    r.f.user("alice", true).await;
    r.f.token("alice", "totp").await
}

fn code_now(r: &RadiusFixture, uri: &str) -> String {
    oracle_totp(uri, r.f.now())
}

#[tokio::test]
async fn pap_logins_and_status_server_through_radclient() {
    for db in databases() {
        let r = RadiusFixture::new(db, RadiusMode::PasswordCode).await;
        let uri = alice(&r).await;
        let code = code_now(&r, &uri);
        let login = |pass: &str| {
            format!("User-Name=alice,User-Password=\"{pass}\",Message-Authenticator=0x00\n")
        };
        let (ok, out) = radclient(r.port(), "auth", &login(&format!("{PASSWORD}{code}"))).await;
        assert!(ok, "{db:?} accept: {out}");
        assert!(out.contains("Access-Accept"), "{out}");
        // The same code again (a new request): replay, rejected.
        let (ok, out) = radclient(r.port(), "auth", &login(&format!("{PASSWORD}{code}"))).await;
        assert!(!ok && out.contains("Access-Reject"), "{db:?} replay: {out}");
        r.f.s.clock.advance(30);
        let next = code_now(&r, &uri);
        let (ok, out) = radclient(r.port(), "auth", &login(&format!("wrong{next}"))).await;
        assert!(
            !ok && out.contains("Access-Reject"),
            "{db:?} wrong password: {out}"
        );
        let (ok, _) = radclient(r.port(), "auth", &login(&format!("{PASSWORD}000000"))).await;
        assert!(!ok, "{db:?} wrong code");
        // Without Message-Authenticator: no answer at all (BlastRADIUS).
        let plain = format!("User-Name=alice,User-Password=\"{PASSWORD}{next}\"\n");
        let (ok, out) = radclient(r.port(), "auth", &plain).await;
        assert!(!ok && !out.contains("Received"), "{db:?} unsigned: {out}");
        let (ok, out) = radclient(r.port(), "status", "Message-Authenticator=0x00\n").await;
        assert!(ok && out.contains("Access-Accept"), "{db:?} status: {out}");
        let acct = "Acct-Status-Type=Start,User-Name=alice,Acct-Session-Id=s1\n";
        let port = r.server.accounting_addr.unwrap().port();
        let (ok, out) = radclient(port, "acct", acct).await;
        assert!(
            ok && out.contains("Accounting-Response"),
            "{db:?} acct: {out}"
        );
        let reasons = r.f.reasons("alice", "validate").await;
        assert!(
            reasons.iter().any(|x| x.contains("code already used")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|x| x.contains("wrong password")),
            "{reasons:?}"
        );
    }
}

#[tokio::test]
async fn pyrad_strict_peer_gets_message_authenticator_first_in_every_reply() {
    for db in databases() {
        let r = RadiusFixture::new(db, RadiusMode::Challenge).await;
        let uri = alice(&r).await;
        let ps = ["--proxy-state", "aa01", "--proxy-state", "bb02"];
        let first = pyrad(r.port(), "alice", PASSWORD, &ps).await;
        assert_eq!(first["code"], 11, "{db:?} challenge: {first}");
        assert_eq!(first["proxy_state"], serde_json::json!(["aa01", "bb02"]));
        assert_eq!(
            first["reply_message"],
            "Enter the code from your authenticator app"
        );
        let state = first["state"].as_str().unwrap().to_owned();
        let code = code_now(&r, &uri);
        let second = pyrad(r.port(), "alice", &code, &["--state", &state]).await;
        assert_eq!(second["code"], 2, "{db:?} accept: {second}");
        // The State works once.
        r.f.s.clock.advance(30);
        let again = pyrad(r.port(), "alice", &code_now(&r, &uri), &["--state", &state]).await;
        assert_eq!(again["code"], 3, "{db:?} reused State: {again}");
        let wrong = pyrad(r.port(), "alice", "wrong password", &[]).await;
        assert_eq!(wrong["code"], 3, "{db:?} wrong password: {wrong}");
        let fresh = pyrad(r.port(), "alice", PASSWORD, &[]).await;
        let state = fresh["state"].as_str().unwrap().to_owned();
        let bad = pyrad(r.port(), "alice", "000000", &["--state", &state]).await;
        assert_eq!(bad["code"], 3, "{db:?} wrong code: {bad}");
    }
}

#[tokio::test]
async fn duplicates_get_the_identical_reply_and_use_the_code_once() {
    for db in databases() {
        let mut r = RadiusFixture::new(db, RadiusMode::Code).await;
        let uri = alice(&r).await;
        let nas = r.nas().await;
        let code = code_now(&r, &uri);
        let (bytes, auth) = nas.request("alice", &code, &[], true);
        nas.send(&bytes).await;
        nas.send(&bytes).await;
        let first = nas.recv(&auth, Duration::from_secs(3)).await.unwrap();
        assert_eq!(first.code, code::ACCESS_ACCEPT, "{db:?}");
        for _ in 0..5 {
            nas.send(&bytes).await;
        }
        let mut replies = 0;
        while let Some(a) = nas.recv(&auth, Duration::from_millis(700)).await {
            assert_eq!(a, first, "{db:?}: a retransmit gets the same bytes");
            replies += 1;
        }
        assert!(replies >= 5, "{db:?}: {replies} replies to 5 retransmits");
        let accepted = r.f.reasons("alice", "validate").await;
        assert_eq!(accepted, ["code accepted"], "{db:?}: one validation");
        // A new reply cache (another node, or after the cache expired): the identical
        // retransmit still gets the same Accept, not "code already used".
        r.restart().await;
        let nas = Nas::new("127.0.0.1", r.server.auth_addr, SECRET).await;
        nas.send(&bytes).await;
        let later = nas.recv(&auth, Duration::from_secs(3)).await.unwrap();
        assert_eq!(later.code, code::ACCESS_ACCEPT, "{db:?}");
        assert_eq!(later.raw, first.raw, "{db:?}: byte-identical");
        let reasons = r.f.reasons("alice", "validate").await;
        assert!(
            reasons[0].starts_with("identical retransmit"),
            "{reasons:?}"
        );
        let nas2 = nas;
        // The same code in a new request (new authenticator): decided again, a replay.
        let (other, auth2) = nas2.request("alice", &code, &[], true);
        nas2.send(&other).await;
        let replay = nas2.recv(&auth2, Duration::from_secs(3)).await.unwrap();
        assert_eq!(replay.code, code::ACCESS_REJECT, "{db:?}");
    }
}

async fn status_counter(r: &RadiusFixture, name: &str) -> u64 {
    // The server writes its counters every 2 s: wait for them (bounded).
    let path = r.f.s.data_dir().join("radius-status.json");
    for _ in 0..50 {
        if let Ok(b) = std::fs::read(&path) {
            let v: Value = serde_json::from_slice(&b).unwrap();
            let n = v["counters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c[0] == name)
                .map_or(0, |c| c[1].as_u64().unwrap());
            if n > 0 {
                return n;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    0
}

#[tokio::test]
async fn forged_unsigned_and_unknown_packets_get_no_reply() {
    let r = RadiusFixture::new(common::Db::Sqlite, RadiusMode::Code).await;
    let uri = alice(&r).await;
    let code = code_now(&r, &uri);
    let nas = r.nas().await;
    // Unsigned, from a client that must sign.
    let (bytes, auth) = nas.request("alice", &code, &[], false);
    assert!(nas.silent(&bytes, &auth).await);
    // Signed with another secret.
    let wrong = Nas::new("127.0.0.1", r.server.auth_addr, "not-the-secret-at-all").await;
    let (bytes, auth) = wrong.request("alice", &code, &[], true);
    assert!(wrong.silent(&bytes, &auth).await);
    // Corrupted Message-Authenticator.
    let (mut bytes, auth) = nas.request("alice", &code, &[], true);
    bytes[25] ^= 0x40;
    assert!(nas.silent(&bytes, &auth).await);
    // From an address no client covers.
    let stranger = Nas::new("127.0.0.2", r.server.auth_addr, SECRET).await;
    let (bytes, auth) = stranger.request("alice", &code, &[], true);
    assert!(stranger.silent(&bytes, &auth).await);
    // Nothing of that touched the code: it still logs in.
    let ok = nas.ask("alice", &code, &[]).await.unwrap();
    assert_eq!(ok.code, code::ACCESS_ACCEPT);
    for reason in [
        "unknown_client",
        "bad_message_authenticator",
        "missing_message_authenticator",
    ] {
        assert!(status_counter(&r, reason).await >= 1, "{reason}");
    }
    // `tessera radius doctor` explains them.
    let out = common::run_cli(&r.f.s.data_dir(), &["radius", "doctor"], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("127.0.0.2") && text.contains("unknown_client"),
        "{text}"
    );
    assert!(text.contains("wrong secret?"), "{text}");
    assert!(!text.contains(SECRET), "doctor never shows a secret");
}

#[tokio::test]
async fn proxy_state_limit_and_echo_in_order() {
    let r = RadiusFixture::with(
        common::Db::Sqlite,
        |_| {},
        |c| {
            c.mode = RadiusMode::Code;
            c.require_message_authenticator = false;
            c.limit_proxy_state = true;
        },
    )
    .await;
    let uri = alice(&r).await;
    let nas = r.nas().await;
    let ps: [(u8, &[u8]); 2] = [(attr::PROXY_STATE, b"one"), (attr::PROXY_STATE, b"two")];
    let (bytes, auth) = nas.request("alice", "000000", &ps, false);
    assert!(
        nas.silent(&bytes, &auth).await,
        "Proxy-State unsigned: dropped"
    );
    let code = code_now(&r, &uri);
    let ok = nas.ask("alice", &code, &ps).await.unwrap();
    assert_eq!(ok.code, code::ACCESS_ACCEPT);
    assert_eq!(
        ok.all(attr::PROXY_STATE),
        [b"one".to_vec(), b"two".to_vec()]
    );
    // Unsigned without Proxy-State is answered for such a client.
    let (bytes, auth) = nas.request("alice", "000000", &[], false);
    nas.send(&bytes).await;
    let reject = nas.recv(&auth, Duration::from_secs(3)).await.unwrap();
    assert_eq!(reject.code, code::ACCESS_REJECT);
}

#[tokio::test]
async fn challenge_states_are_bound_to_client_user_and_time() {
    let r = RadiusFixture::new(common::Db::Sqlite, RadiusMode::Challenge).await;
    let uri = alice(&r).await;
    r.f.user("bob", true).await;
    r.f.token("bob", "totp").await;
    r.add_client(AddRadiusClient {
        name: "other".into(),
        address: "127.0.0.4/32".into(),
        mode: RadiusMode::Challenge,
        require_message_authenticator: true,
        limit_proxy_state: false,
        passthrough: false,
        secret: Some(Zeroizing::new(SECRET.into())),
    })
    .await;
    let mut r = r;
    r.restart().await;
    let nas = r.nas().await;
    let other = Nas::new("127.0.0.4", r.server.auth_addr, SECRET).await;
    let state = |a: Option<common::radius::Answer>| {
        let a = a.unwrap();
        assert_eq!(a.code, code::ACCESS_CHALLENGE);
        a.state().unwrap()
    };
    let code = code_now(&r, &uri);
    // A State of another client.
    let foreign = state(other.ask("alice", PASSWORD, &[]).await);
    let a = nas
        .ask("alice", &code, &[(attr::STATE, &foreign)])
        .await
        .unwrap();
    assert_eq!(a.code, code::ACCESS_REJECT, "foreign State");
    // A State of another user.
    let bobs = state(nas.ask("bob", PASSWORD, &[]).await);
    let a = nas
        .ask("alice", &code, &[(attr::STATE, &bobs)])
        .await
        .unwrap();
    assert_eq!(a.code, code::ACCESS_REJECT, "State of another user");
    // Never issued.
    let a = nas
        .ask("alice", &code, &[(attr::STATE, b"0123456789abcdef0123")])
        .await
        .unwrap();
    assert_eq!(a.code, code::ACCESS_REJECT, "never issued");
    // Expired.
    let old = state(nas.ask("alice", PASSWORD, &[]).await);
    r.f.s.clock.advance(121);
    let a = nas
        .ask("alice", &code_now(&r, &uri), &[(attr::STATE, &old)])
        .await
        .unwrap();
    assert_eq!(a.code, code::ACCESS_REJECT, "expired");
    // And a good one works.
    let good = state(nas.ask("alice", PASSWORD, &[]).await);
    let a = nas
        .ask("alice", &code_now(&r, &uri), &[(attr::STATE, &good)])
        .await
        .unwrap();
    assert_eq!(a.code, code::ACCESS_ACCEPT);
    let reasons = r.f.reasons("alice", "validate").await;
    for want in [
        "State not issued to this client, or altered",
        "State issued for another user",
        "State expired",
    ] {
        assert!(reasons.iter().any(|x| x == want), "{want}: {reasons:?}");
    }
}
