//! The MD5 constructions of RADIUS: User-Password hiding (RFC 2865 §5.2), the Request and
//! Response Authenticators (RFC 2865 §3, RFC 2866 §3) and Message-Authenticator, HMAC-MD5 over
//! the packet (RFC 3579 §3.2). Comparisons are constant time.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

pub(crate) type HmacMd5 = Hmac<Md5>;

/// MD5 over the concatenation of `parts`.
pub(crate) fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// HMAC-MD5 of `packet` keyed with `secret`.
pub(crate) fn hmac_md5(secret: &[u8], packet: &[u8]) -> [u8; 16] {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let mut mac = match HmacMd5::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return [0; 16],
    };
    mac.update(packet);
    mac.finalize().into_bytes().into()
}

/// Whether `a` and `b` are equal, in time independent of where they differ.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Hides a password for User-Password (RFC 2865 §5.2): padded with zeros to a multiple of 16,
/// each block XORed with MD5(secret + previous block), the first with the Request Authenticator.
/// Returns `None` for a password longer than 128 octets.
pub fn hide_password(password: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Option<Vec<u8>> {
    if password.len() > 128 {
        return None;
    }
    let len = password.len().div_ceil(16).max(1) * 16;
    let mut out = vec![0u8; len];
    out[..password.len()].copy_from_slice(password);
    let mut prev: [u8; 16] = *authenticator;
    for chunk in out.chunks_mut(16) {
        let b = md5(&[secret, &prev]);
        for (c, k) in chunk.iter_mut().zip(b.iter()) {
            *c ^= k;
        }
        prev.copy_from_slice(chunk);
    }
    Some(out)
}

/// Recovers the password from a User-Password value (RFC 2865 §5.2); trailing zero padding is
/// removed. The caller checked the length (16-128 octets, steps of 16) when parsing.
pub fn unhide_password(hidden: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hidden.len());
    let mut prev: &[u8] = authenticator;
    for chunk in hidden.chunks(16) {
        let b = md5(&[secret, prev]);
        out.extend(chunk.iter().zip(b.iter()).map(|(c, k)| c ^ k));
        prev = chunk;
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hiding_round_trips_for_every_length() {
        let auth = [7u8; 16];
        for n in 0..=128 {
            let pw: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
            let hidden = hide_password(&pw, b"s3cret", &auth).unwrap();
            assert_eq!(hidden.len() % 16, 0);
            assert!(hidden.len() >= 16);
            assert_eq!(unhide_password(&hidden, b"s3cret", &auth), pw);
        }
        assert!(hide_password(&[b'x'; 129], b"s", &auth).is_none());
    }

    #[test]
    fn constant_time_compare_checks_length_and_content() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
