//! One verified Access-Request → one service call → the reply to send. No sockets: the UDP loop
//! (`server.rs`) hands the packet in and sends what comes back.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use tessera_radius::{Packet, Reply, attr, code, vendor_specific};

use crate::config::{RadiusConfig, ReplyRule};
use crate::model::{Password, RadiusClient, Role};
use crate::service::Service;
use crate::service::radius::{RadiusAnswer, RadiusLogin, STATE_TTL_SECS};
use crate::store::RequestPrint;

/// The fingerprint of a request from `client` at `source`: its exact bytes (identifier and
/// authenticator included). A retransmit has the same one; anything else does not.
pub(crate) fn fingerprint(client: &RadiusClient, source: IpAddr, bytes: &[u8]) -> RequestPrint {
    let mut h = Sha256::new();
    h.update(client.id.to_be_bytes());
    h.update(source.to_string().as_bytes());
    h.update([0]);
    h.update(bytes);
    RequestPrint(h.finalize().into())
}

/// What the handler decided.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Send now.
    Send(Reply),
    /// Send after the reject delay.
    Reject(Reply),
}

/// Decides an Access-Request. `Err`: no answer (the database is down, say); the client
/// retransmits or fails over to another server.
pub(crate) async fn access_request(
    service: &Service,
    config: &RadiusConfig,
    client: &RadiusClient,
    secret: &[u8],
    packet: &Packet<'_>,
    print: RequestPrint,
    source: &str,
) -> Result<Outcome, crate::service::Error> {
    let reject = || Outcome::Reject(Reply::to(packet, code::ACCESS_REJECT));
    // PAP only: CHAP and MS-CHAP need the cleartext password on the server (RFC 2865 §5.3).
    let (Some(name), Some(password)) = (packet.user_name(), packet.user_password(secret)) else {
        return Ok(reject());
    };
    let (Ok(username), Ok(password)) = (
        String::from_utf8(name.to_vec()),
        String::from_utf8(password),
    ) else {
        return Ok(reject());
    };
    let login = RadiusLogin {
        username,
        password: Password::new(password),
        state: packet.attr(attr::STATE),
        request: print,
    };
    Ok(match service.radius_login(client, source, login).await? {
        RadiusAnswer::Accept { role } => {
            let mut reply = Reply::to(packet, code::ACCESS_ACCEPT);
            add_reply_attributes(&mut reply, &config.reply, &client.name, role);
            Outcome::Send(reply)
        }
        RadiusAnswer::Challenge { state, prompt } => {
            let mut reply = Reply::to(packet, code::ACCESS_CHALLENGE);
            reply.push(attr::STATE, &state);
            reply.push(attr::REPLY_MESSAGE, prompt.as_bytes());
            // RFC 2865 §5.27: in a challenge, how long the user has to answer.
            reply.push(
                attr::SESSION_TIMEOUT,
                &u32::try_from(STATE_TTL_SECS).unwrap_or(120).to_be_bytes(),
            );
            Outcome::Send(reply)
        }
        RadiusAnswer::Reject => reject(),
    })
}

/// The attributes of every rule matching the client and the user's role, in order.
pub(crate) fn add_reply_attributes(
    reply: &mut Reply,
    rules: &[ReplyRule],
    client: &str,
    role: Role,
) {
    for r in rules {
        if !r.clients.is_empty() && !r.clients.iter().any(|c| c == client) {
            continue;
        }
        if !r.role.is_empty() && r.role != role.as_str() {
            continue;
        }
        for c in &r.class {
            reply.push(attr::CLASS, c.as_bytes());
        }
        if !r.filter_id.is_empty() {
            reply.push(attr::FILTER_ID, r.filter_id.as_bytes());
        }
        if r.session_timeout > 0 {
            reply.push(attr::SESSION_TIMEOUT, &r.session_timeout.to_be_bytes());
        }
        let vendor = [
            (12356, 1, &r.fortinet_group),
            (25461, 5, &r.palo_alto_user_group),
            (3076, 25, &r.cisco_group_policy),
            (14823, 1, &r.aruba_user_role),
        ];
        let avpairs = r.cisco_av_pair.iter().map(|v| (9, 1, v));
        for (vendor, typ, value) in vendor.into_iter().chain(avpairs) {
            if value.is_empty() {
                continue;
            }
            // Lengths were checked when the configuration was loaded.
            if let Some(v) = vendor_specific(vendor, typ, value.as_bytes()) {
                reply.push(attr::VENDOR_SPECIFIC, &v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_rules_match_client_and_role_and_keep_their_order() {
        let rules = vec![
            ReplyRule {
                class: vec!["OU=all".into(), "OU=second".into()],
                ..Default::default()
            },
            ReplyRule {
                clients: vec!["fw1".into()],
                role: "admin".into(),
                filter_id: "admins".into(),
                fortinet_group: "vpn-admins".into(),
                session_timeout: 3600,
                ..Default::default()
            },
        ];
        let req = tessera_radius::Request::new(code::ACCESS_REQUEST, 1, [0; 16])
            .encode(b"s", true)
            .unwrap();
        let p = Packet::parse(&req).unwrap();
        let encode = |client: &str, role| {
            let mut r = Reply::to(&p, code::ACCESS_ACCEPT);
            add_reply_attributes(&mut r, &rules, client, role);
            r.encode(b"s", true)
        };
        let user = encode("fw1", Role::User);
        let back = Packet::parse(&user).unwrap();
        let classes: Vec<&[u8]> = back.all(attr::CLASS).collect();
        assert_eq!(classes, [&b"OU=all"[..], &b"OU=second"[..]]);
        assert!(back.attr(attr::FILTER_ID).is_none());
        let admin = encode("fw1", Role::Admin);
        let back = Packet::parse(&admin).unwrap();
        assert_eq!(back.attr(attr::FILTER_ID), Some(&b"admins"[..]));
        assert_eq!(
            back.attr(attr::SESSION_TIMEOUT),
            Some(&[0, 0, 0x0e, 0x10][..])
        );
        // Golden bytes of the Fortinet-Group-Name VSA.
        assert_eq!(
            back.attr(attr::VENDOR_SPECIFIC),
            Some(&b"\x00\x00\x30\x44\x01\x0cvpn-admins"[..])
        );
        let other = Packet::parse(&encode("fw2", Role::Admin))
            .unwrap()
            .attrs()
            .len();
        assert_eq!(other, 3, "Message-Authenticator and the two Class values");
    }
}
