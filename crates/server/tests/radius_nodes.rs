//! RADIUS as deployments chain it: FreeRADIUS 3.2 as a proxy in front of Tessera (with its
//! Status-Server watchdog), and two Tessera nodes on one PostgreSQL: a challenge started on one
//! is answered on the other, and an identical retransmit to the other node gets the same Accept.
#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::radius::{Nas, RadiusFixture, SECRET};
use common::validate::PASSWORD;
use common::{Db, oracle_totp};
use tessera_radius::{attr, code};
use tessera_server::model::RadiusMode;
use tessera_server::service::radius::AddRadiusClient;
use zeroize::Zeroizing;

/// A free UDP port on loopback (bound and released: FreeRADIUS binds it next).
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private FreeRADIUS proxying everything to Tessera on `home` (research/radius.md §4).
struct Proxy {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn freeradius_proxy(home: u16) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_udp_port();
    for sub in ["log", "run"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::copy("/etc/freeradius/3.0/dictionary", d.join("dictionary"))
        .expect("freeradius installed (.ci/install-tools)");
    let conf = format!(
        r#"prefix = /usr
exec_prefix = /usr
logdir = {d}/log
raddbdir = {d}
confdir = ${{raddbdir}}
run_dir = {d}/run
libdir = /usr/lib/freeradius
name = freeradius
log {{
	destination = files
	file = ${{logdir}}/radius.log
}}
security {{
	reject_delay = 0
	status_server = yes
}}
client nas {{
	ipaddr = 127.0.0.1
	secret = testing123
	require_message_authenticator = no
}}
home_server tessera {{
	type = auth
	ipaddr = 127.0.0.1
	port = {home}
	secret = "{SECRET}"
	response_window = 6
	status_check = status-server
	check_interval = 10
}}
home_server_pool tessera_pool {{
	type = fail-over
	home_server = tessera
}}
realm tessera {{
	auth_pool = tessera_pool
	nostrip
}}
server default {{
	listen {{
		type = auth
		ipaddr = 127.0.0.1
		port = {port}
	}}
	authorize {{
		update control {{
			&Proxy-To-Realm := "tessera"
		}}
	}}
	authenticate {{
	}}
}}
"#,
        d = d.display()
    );
    std::fs::write(d.join("radiusd.conf"), conf).unwrap();
    let child = std::process::Command::new("freeradius")
        .args(["-f", "-d"])
        .arg(d)
        .args(["-D", "/usr/share/freeradius"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("freeradius (.ci/install-tools)");
    Proxy {
        child,
        port,
        _dir: dir,
    }
}

async fn radclient(port: u16, input: &str) -> (bool, String) {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new("radclient")
        .args(["-x", "-t", "4", "-r", "1"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["auth", "testing123"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn freeradius_proxies_challenge_logins_to_tessera() {
    let r = RadiusFixture::new(Db::Sqlite, RadiusMode::Challenge).await;
    r.f.user("alice", true).await;
    let uri = r.f.token("alice", "totp").await;
    let proxy = freeradius_proxy(r.port());
    // FreeRADIUS takes a moment to start: ask until it answers (bounded).
    let first = "User-Name=alice,User-Password=\"".to_owned() + PASSWORD + "\"\n";
    let mut out = String::new();
    for _ in 0..20 {
        let (_, o) = radclient(proxy.port, &first).await;
        out = o;
        if out.contains("Received") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(out.contains("Access-Challenge"), "{out}");
    // radclient prints the State as State = 0x…
    let state = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("State = "))
        .unwrap_or_else(|| panic!("no State: {out}"))
        .to_owned();
    let code = oracle_totp(&uri, r.f.now());
    let second = format!("User-Name=alice,User-Password=\"{code}\",State={state}\n");
    let (ok, out) = radclient(proxy.port, &second).await;
    assert!(ok && out.contains("Access-Accept"), "{out}");
    let (ok, out) = radclient(proxy.port, &first.replace(PASSWORD, "wrong")).await;
    assert!(!ok && out.contains("Access-Reject"), "{out}");
    drop(proxy);
}

/// A second node: another app on the same PostgreSQL database and key, with its own RADIUS
/// server (and so its own reply cache).
async fn second_node(
    r: &RadiusFixture,
) -> (
    tessera_server::App,
    tessera_server::radius::RadiusServer,
    tempfile::TempDir,
) {
    let first = r.f.s.app.service.config().clone();
    let dir = tempfile::tempdir().unwrap();
    let config = tessera_server::Config {
        data_dir: dir.path().join("data"),
        keys: tessera_server::config::KeysConfig {
            key_file: first.key_file(),
        },
        ..first
    };
    let (app, _) = tessera_server::build(config, Arc::new(r.f.s.clock.clone()))
        .await
        .unwrap();
    let server = tessera_server::radius::start(app.service.clone())
        .await
        .unwrap()
        .unwrap();
    (app, server, dir)
}

#[tokio::test]
async fn two_nodes_share_challenges_and_retransmits() {
    if tessera_server::testing::postgres_url().is_none() {
        return; // Two nodes need a shared PostgreSQL (TESSERA_TEST_POSTGRES_URL).
    }
    let mut r = RadiusFixture::new(Db::Postgres, RadiusMode::Challenge).await;
    r.f.user("alice", true).await;
    let uri = r.f.token("alice", "totp").await;
    r.add_client(AddRadiusClient {
        name: "codes".into(),
        address: "127.0.0.5/32".into(),
        mode: RadiusMode::Code,
        require_message_authenticator: true,
        limit_proxy_state: false,
        passthrough: false,
        secret: Some(Zeroizing::new(SECRET.into())),
    })
    .await;
    r.restart().await;
    let (_node2, server2, _dir2) = second_node(&r).await;

    // The challenge on node 1, the answer on node 2.
    let nas1 = r.nas().await;
    let nas2 = Nas::new("127.0.0.1", server2.auth_addr, SECRET).await;
    let challenge = nas1.ask("alice", PASSWORD, &[]).await.unwrap();
    assert_eq!(challenge.code, code::ACCESS_CHALLENGE);
    let state = challenge.state().unwrap();
    let code = oracle_totp(&uri, r.f.now());
    let a = nas2
        .ask("alice", &code, &[(attr::STATE, &state)])
        .await
        .unwrap();
    assert_eq!(a.code, code::ACCESS_ACCEPT, "answered on the other node");
    // Its State is used up on every node.
    r.f.s.clock.advance(30);
    let next = oracle_totp(&uri, r.f.now());
    let a = nas1
        .ask("alice", &next, &[(attr::STATE, &state)])
        .await
        .unwrap();
    assert_eq!(
        a.code,
        code::ACCESS_REJECT,
        "a State works once, across nodes"
    );

    // Node 1 accepts; its reply is lost; the NAS retransmits to node 2: the same Accept.
    let codes1 = Nas::new("127.0.0.5", r.server.auth_addr, SECRET).await;
    r.f.s.clock.advance(30);
    let code = oracle_totp(&uri, r.f.now());
    let (bytes, auth) = codes1.request("alice", &code, &[], true);
    codes1.send(&bytes).await;
    let on1 = codes1.recv(&auth, Duration::from_secs(3)).await.unwrap();
    assert_eq!(on1.code, code::ACCESS_ACCEPT);
    let codes2 = Nas::new("127.0.0.5", server2.auth_addr, SECRET).await;
    codes2.send(&bytes).await;
    let on2 = codes2.recv(&auth, Duration::from_secs(3)).await.unwrap();
    assert_eq!(
        on2.raw, on1.raw,
        "byte-identical Accept from the other node"
    );
    // The same code in another request (not a retransmit) is a replay there.
    let (other, auth2) = codes2.request("alice", &code, &[], true);
    codes2.send(&other).await;
    let replay = codes2.recv(&auth2, Duration::from_secs(3)).await.unwrap();
    assert_eq!(replay.code, code::ACCESS_REJECT);
}
