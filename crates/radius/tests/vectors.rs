//! The RFC 2865 §7 examples byte for byte, and one case per refusal of `rad_packet_ok`
//! (FreeRADIUS's src/tests/unit/protocols/radius/errors.txt).
#![allow(clippy::unwrap_used)] // helpers of tests: a malformed fixture should fail loudly

use tessera_radius::{Packet, Refusal, Reply, Request, attr, code, hide_password, vendor_specific};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const SECRET: &[u8] = b"xyzzy5461";

/// RFC 2865 §7.1: nemo logs in with PAP, password "arctangent".
const REQ_7_1: &str =
    "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a 01 06 6e 65 6d 6f
    02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8 01 10 05 06 00 00 00 03";
const ACCEPT_7_1: &str =
    "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2 06 06 00 00 00 01
    0f 06 00 00 00 00 0e 06 c0 a8 01 03";

#[test]
fn rfc2865_7_1_request_parses_and_password_unhides() {
    let bytes = hex(REQ_7_1);
    let p = Packet::parse(&bytes).unwrap();
    assert_eq!(p.code, code::ACCESS_REQUEST);
    assert_eq!(p.identifier, 0);
    assert_eq!(p.user_name(), Some(&b"nemo"[..]));
    assert_eq!(p.user_password(SECRET).unwrap(), b"arctangent");
    assert_eq!(p.attr(attr::NAS_IP_ADDRESS), Some(&[192, 168, 1, 16][..]));
    assert!(!p.has_message_authenticator());
    p.verify(SECRET, false).unwrap();
    assert_eq!(
        p.verify(SECRET, true),
        Err(Refusal::MessageAuthenticatorMissing)
    );
}

#[test]
fn rfc2865_7_1_password_hides_to_the_rfc_bytes() {
    let bytes = hex(REQ_7_1);
    let auth: [u8; 16] = bytes[4..20].try_into().unwrap();
    assert_eq!(
        hide_password(b"arctangent", SECRET, &auth).unwrap(),
        &bytes[28..44]
    );
    let mut r = Request::new(code::ACCESS_REQUEST, 0, auth);
    r.push(attr::USER_NAME, b"nemo");
    r.push_password(b"arctangent", SECRET);
    r.push(attr::NAS_IP_ADDRESS, &[192, 168, 1, 16]);
    r.push(attr::NAS_PORT, &[0, 0, 0, 3]);
    assert_eq!(r.encode(SECRET, false).unwrap(), bytes);
}

#[test]
fn rfc2865_7_1_accept_encodes_to_the_rfc_bytes() {
    let req = hex(REQ_7_1);
    let p = Packet::parse(&req).unwrap();
    let mut reply = Reply::to(&p, code::ACCESS_ACCEPT);
    reply.push(attr::SERVICE_TYPE, &[0, 0, 0, 1]);
    reply.push(15, &[0, 0, 0, 0]);
    reply.push(14, &[192, 168, 1, 3]);
    let out = reply.encode(SECRET, false);
    assert_eq!(out, hex(ACCEPT_7_1));
    let back = Packet::parse(&out).unwrap();
    back.verify_reply(SECRET, &p.authenticator, false).unwrap();
    assert_eq!(
        back.verify_reply(SECRET, &p.authenticator, true),
        Err(Refusal::MessageAuthenticatorMissing)
    );
    assert!(
        back.verify_reply(b"wrong", &p.authenticator, false)
            .is_err()
    );
}

#[test]
fn rfc2865_7_2_chap_request_and_framed_accept() {
    let req = hex(
        "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e 0d 33 67 a2 01 08 66 6c 6f 70 73 79
         03 13 16 e9 75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04 06 c0 a8 01 10 05 06 00 00
         00 14 06 06 00 00 00 02 07 06 00 00 00 01",
    );
    let p = Packet::parse(&req).unwrap();
    assert_eq!(p.user_name(), Some(&b"flopsy"[..]));
    assert!(p.attr(attr::CHAP_PASSWORD).is_some());
    // The response as printed in the RFC (with Framed-Compression corrected to 1, as radius-rs
    // and layeh/radius do): its authenticator was not computed from this request, so only its
    // structure is checked.
    let accept = hex(
        "02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0 3c 86 01 a4 06 06 00 00 00 02
         07 06 00 00 00 01 08 06 ff ff ff fe 0a 06 00 00 00 00 0d 06 00 00 00 01
         0c 06 00 00 05 dc",
    );
    let r = Packet::parse(&accept).unwrap();
    assert_eq!(r.code, code::ACCESS_ACCEPT);
    assert_eq!(r.attr(8), Some(&[0xff, 0xff, 0xff, 0xfe][..]));
    assert_eq!(r.attr(12), Some(&[0, 0, 5, 0xdc][..]));
    assert_eq!(r.attrs().len(), 6);
}

fn signed_request(extra: &[(u8, &[u8])]) -> (Vec<u8>, [u8; 16]) {
    let auth = [0x42; 16];
    let mut r = Request::new(code::ACCESS_REQUEST, 9, auth);
    r.push(attr::USER_NAME, b"alice");
    r.push_password(b"pw123456", b"testing123");
    for (t, v) in extra {
        r.push(*t, v);
    }
    (r.encode(b"testing123", true).unwrap(), auth)
}

#[test]
fn message_authenticator_is_checked_wherever_it_sits() {
    let (bytes, _) = signed_request(&[]);
    let p = Packet::parse(&bytes).unwrap();
    assert!(p.has_message_authenticator());
    p.verify(b"testing123", true).unwrap();
    assert_eq!(
        p.verify(b"wrong-secret", true),
        Err(Refusal::MessageAuthenticatorWrong)
    );
    // Moved to the end, recomputed: still valid (its position MUST NOT matter).
    let mut r = Request::new(code::ACCESS_REQUEST, 9, [0x42; 16]);
    r.push(attr::USER_NAME, b"alice");
    r.push(attr::MESSAGE_AUTHENTICATOR, &[0; 16]);
    let mut moved = r.encode(b"testing123", false).unwrap();
    let mac = {
        use hmac::{Hmac, KeyInit, Mac};
        let mut m = <Hmac<md5::Md5>>::new_from_slice(b"testing123").unwrap();
        m.update(&moved);
        m.finalize().into_bytes()
    };
    let n = moved.len();
    moved[n - 16..].copy_from_slice(&mac);
    Packet::parse(&moved)
        .unwrap()
        .verify(b"testing123", true)
        .unwrap();
    // One flipped bit anywhere breaks it.
    for i in [1usize, 5, 20, 23, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[i] ^= 1;
        if let Ok(p) = Packet::parse(&bad) {
            assert!(p.verify(b"testing123", true).is_err(), "byte {i}");
        }
    }
}

#[test]
fn replies_carry_message_authenticator_first_and_echo_proxy_state_in_order() {
    let (bytes, auth) = signed_request(&[
        (attr::PROXY_STATE, b"one"),
        (attr::USER_NAME + 100, b"unknown attribute"),
        (attr::PROXY_STATE, b"two"),
    ]);
    let p = Packet::parse(&bytes).unwrap();
    for c in [
        code::ACCESS_ACCEPT,
        code::ACCESS_REJECT,
        code::ACCESS_CHALLENGE,
    ] {
        let mut reply = Reply::to(&p, c);
        reply.push(attr::REPLY_MESSAGE, b"hello");
        let out = reply.encode(b"testing123", true);
        assert_eq!(out[20], attr::MESSAGE_AUTHENTICATOR);
        assert_eq!(out[21], 18);
        let back = Packet::parse(&out).unwrap();
        back.verify_reply(b"testing123", &auth, true).unwrap();
        let ps: Vec<&[u8]> = back.all(attr::PROXY_STATE).collect();
        assert_eq!(ps, [&b"one"[..], &b"two"[..]]);
    }
}

#[test]
fn accounting_requests_are_checked_by_their_authenticator() {
    let mut r = Request::new(code::ACCOUNTING_REQUEST, 3, [0; 16]);
    r.push(attr::ACCT_STATUS_TYPE, &[0, 0, 0, 1]);
    r.push(attr::USER_NAME, b"alice");
    for ma in [false, true] {
        let bytes = r.encode(b"s3cret", ma).unwrap();
        let p = Packet::parse(&bytes).unwrap();
        p.verify(b"s3cret", false).unwrap();
        assert!(p.verify(b"other", false).is_err());
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 1] ^= 0x20;
        assert!(
            Packet::parse(&bad)
                .unwrap()
                .verify(b"s3cret", false)
                .is_err()
        );
    }
    let plain = r.encode(b"s3cret", false).unwrap();
    let p = Packet::parse(&plain).unwrap();
    let out = Reply::to(&p, code::ACCOUNTING_RESPONSE).encode(b"s3cret", true);
    Packet::parse(&out)
        .unwrap()
        .verify_reply(b"s3cret", &p.authenticator, true)
        .unwrap();
}

fn refusal(bytes: &[u8]) -> Refusal {
    Packet::parse(bytes).unwrap_err()
}

fn header(code: u8, len: u16, attrs: &[u8]) -> Vec<u8> {
    let mut v = vec![code, 1];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&[0; 16]);
    v.extend_from_slice(attrs);
    v
}

#[test]
fn every_rad_packet_ok_case_has_its_own_refusal() {
    assert_eq!(refusal(&[1; 19]), Refusal::TooShort);
    assert_eq!(refusal(&vec![1; 4097]), Refusal::TooLong);
    for c in [0u8, 53, 255] {
        assert_eq!(refusal(&header(c, 20, &[])), Refusal::BadCode, "code {c}");
    }
    assert_eq!(refusal(&header(1, 19, &[])), Refusal::LengthBelowHeader);
    assert_eq!(refusal(&header(1, 21, &[])), Refusal::LengthBeyondData);
    assert_eq!(refusal(&header(1, 4097, &[0; 4077])), Refusal::TooLong);
    assert_eq!(refusal(&header(1, 21, &[1])), Refusal::AttributeTruncated);
    assert_eq!(
        refusal(&header(1, 23, &[0, 3, 0])),
        Refusal::AttributeTypeZero
    );
    assert_eq!(
        refusal(&header(1, 22, &[1, 0])),
        Refusal::AttributeLengthTooShort
    );
    assert_eq!(
        refusal(&header(1, 22, &[1, 1])),
        Refusal::AttributeLengthTooShort
    );
    assert_eq!(
        refusal(&header(1, 23, &[1, 4, 0])),
        Refusal::AttributeOverflow
    );
    let mut ma17 = vec![80, 17];
    ma17.extend_from_slice(&[0; 15]);
    assert_eq!(
        refusal(&header(1, 37, &ma17)),
        Refusal::MessageAuthenticatorLength
    );
    let mut ma19 = vec![80, 19];
    ma19.extend_from_slice(&[0; 17]);
    assert_eq!(
        refusal(&header(1, 39, &ma19)),
        Refusal::MessageAuthenticatorLength
    );
    let mut two_ma = vec![80, 18];
    two_ma.extend_from_slice(&[0; 16]);
    two_ma.extend_from_slice(&two_ma.clone());
    assert_eq!(
        refusal(&header(1, 56, &two_ma)),
        Refusal::MessageAuthenticatorRepeated
    );
    assert_eq!(
        refusal(&header(12, 20, &[])),
        Refusal::MessageAuthenticatorMissing
    );
    assert_eq!(
        refusal(&header(1, 25, &[79, 5, 2, 0, 0])),
        Refusal::MessageAuthenticatorMissing
    );
    let many: Vec<u8> = (0..201).flat_map(|_| [18u8, 2]).collect();
    assert_eq!(
        refusal(&header(1, 20 + 402, &many)),
        Refusal::TooManyAttributes
    );
    let fine: Vec<u8> = (0..200).flat_map(|_| [18u8, 2]).collect();
    assert!(Packet::parse(&header(1, 20 + 400, &fine)).is_ok());
    for n in [0usize, 15, 17, 144] {
        let mut pw = vec![2u8, (n + 2) as u8];
        pw.resize(n + 2, 7);
        let len = (20 + pw.len()) as u16;
        assert_eq!(
            refusal(&header(1, len, &pw)),
            Refusal::UserPasswordLength,
            "{n}"
        );
    }
    let two_names = [1u8, 3, b'a', 1, 3, b'b'];
    assert_eq!(
        refusal(&header(1, 26, &two_names)),
        Refusal::AttributeRepeated
    );
    // Padding after the header's length is ignored.
    let mut padded = header(1, 20, &[]);
    padded.extend_from_slice(&[0xff; 10]);
    assert_eq!(Packet::parse(&padded).unwrap().bytes().len(), 20);
    // Stable, distinct codes.
    let mut codes: Vec<&str> = Refusal::ALL.iter().map(|r| r.code()).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), Refusal::ALL.len());
}

#[test]
fn vendor_attributes_follow_the_recommended_format() {
    assert_eq!(
        vendor_specific(12356, 1, b"vpn-users").unwrap(),
        [
            0, 0, 0x30, 0x44, 1, 11, b'v', b'p', b'n', b'-', b'u', b's', b'e', b'r', b's'
        ]
    );
    assert!(vendor_specific(9, 1, &[b'x'; 248]).is_none());
    assert!(vendor_specific(9, 1, &[b'x'; 247]).is_some());
}

#[test]
fn replies_refuse_values_and_sizes_past_the_limits() {
    let (bytes, _) = signed_request(&[]);
    let p = Packet::parse(&bytes).unwrap();
    let mut reply = Reply::to(&p, code::ACCESS_ACCEPT);
    assert!(!reply.push(attr::CLASS, &[0; 254]));
    let mut n = 0;
    while reply.push(attr::CLASS, &[0; 253]) {
        n += 1;
    }
    // 4096 - 20 header - 18 Message-Authenticator leaves room for 15 of 255 octets.
    assert_eq!(n, 15);
    assert!(reply.encode(b"testing123", true).len() <= 4096);
}
