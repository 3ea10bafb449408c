//! Any bytes as a received RADIUS packet: parsing, verifying and un-hiding never panic, and a
//! reply to any parsed packet parses again and verifies with the same secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_radius::{MAX_PACKET, Packet, Reply, attr, code};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::parse(data) else {
        return;
    };
    let secret = b"fuzz-secret";
    let _ = p.verify(secret, true);
    let _ = p.verify(secret, false);
    let _ = p.user_password(secret);
    let _ = p.verify_reply(secret, &[0; 16], true);
    let mut reply = Reply::to(&p, code::ACCESS_CHALLENGE);
    if let Some(state) = p.attr(attr::STATE) {
        reply.push(attr::STATE, state);
    }
    reply.push(attr::REPLY_MESSAGE, b"Enter the code");
    if reply.len() > MAX_PACKET {
        return;
    }
    let out = reply.encode(secret, true);
    let back = Packet::parse(&out).expect("a reply parses");
    back.verify_reply(secret, &p.authenticator, true)
        .expect("a reply verifies");
    let echoed: Vec<&[u8]> = back.all(attr::PROXY_STATE).collect();
    let sent: Vec<&[u8]> = p.all(attr::PROXY_STATE).collect();
    assert_eq!(echoed, sent);
});
