//! Argon2id with parameters stored next to what they protect, and bounds checked **before** any
//! hash runs: a floor so a changed header cannot downgrade the work an attacker must do, a
//! ceiling so a hostile file (an import, a server blob) cannot make the client allocate gigabytes
//! or spin for hours (Aegis caps andOTP's iteration count for the same reason).

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::crypto::{KEY_LEN, Key};

/// Argon2id cost and salt, as stored in a vault header or a backup blob.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Always `argon2id`.
    pub alg: String,
    /// Argon2 version: 19 (0x13).
    pub v: u32,
    /// Memory in KiB.
    pub m: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
    /// Salt, base64 (16 random bytes).
    pub salt: String,
}

impl std::fmt::Debug for KdfParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "argon2id(m={} KiB, t={}, p={})", self.m, self.t, self.p)
    }
}

/// Cost of a new PIN or passphrase slot: 64 MiB, 3 passes, 4 lanes (RFC 9106's second
/// recommendation). The PIN is asked for on every unlock, so this is about a quarter second.
pub const PIN_COST: Cost = Cost {
    m: 64 * 1024,
    t: 3,
    p: 4,
};

/// Cost of the backup password (asked for only at setup, restore and password change).
pub const BACKUP_COST: Cost = Cost {
    m: 256 * 1024,
    t: 3,
    p: 4,
};

/// The least work any stored header may ask for: OWASP's Argon2id minimum (19 MiB, t=2).
pub const FLOOR: Cost = Cost {
    m: 19 * 1024,
    t: 2,
    p: 1,
};

/// The most work a stored header may ask for: 1 GiB, 10 passes, 8 lanes.
pub const CEILING: Cost = Cost {
    m: 1024 * 1024,
    t: 10,
    p: 8,
};

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub m: u32,
    pub t: u32,
    pub p: u32,
}

/// Why stored parameters were refused (before running anything).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KdfError {
    #[error("key derivation {0} is not argon2id version 19")]
    Algorithm(String),
    #[error("Argon2id parameters below the floor (at least m={} KiB, t={}, p={})", FLOOR.m, FLOOR.t, FLOOR.p)]
    BelowFloor,
    #[error("Argon2id parameters above the ceiling (at most m={} KiB, t={}, p={})", CEILING.m, CEILING.t, CEILING.p)]
    AboveCeiling,
    #[error("the salt is not 16 to 64 bytes of base64")]
    Salt,
    #[error("Argon2id failed: {0}")]
    Hash(String),
}

impl KdfParams {
    /// New parameters with a fresh salt.
    pub fn new(cost: Cost) -> Result<KdfParams, crate::crypto::RandomError> {
        let salt = crate::crypto::random_vec(16)?;
        Ok(KdfParams {
            alg: "argon2id".into(),
            v: 19,
            m: cost.m,
            t: cost.t,
            p: cost.p,
            salt: data_encoding::BASE64.encode(&salt),
        })
    }

    pub fn cost(&self) -> Cost {
        Cost {
            m: self.m,
            t: self.t,
            p: self.p,
        }
    }

    /// Checks the algorithm, floor, ceiling and salt; runs nothing.
    pub fn check(&self) -> Result<Vec<u8>, KdfError> {
        self.check_with(floor())
    }

    fn check_with(&self, floor: Cost) -> Result<Vec<u8>, KdfError> {
        if self.alg != "argon2id" || self.v != 19 {
            return Err(KdfError::Algorithm(format!("{} v{}", self.alg, self.v)));
        }
        if self.m > CEILING.m || self.t > CEILING.t || self.p > CEILING.p {
            return Err(KdfError::AboveCeiling);
        }
        if self.m < floor.m || self.t < floor.t || self.p < floor.p {
            return Err(KdfError::BelowFloor);
        }
        let salt = data_encoding::BASE64
            .decode(self.salt.as_bytes())
            .map_err(|_| KdfError::Salt)?;
        if !(16..=64).contains(&salt.len()) {
            return Err(KdfError::Salt);
        }
        Ok(salt)
    }

    /// Argon2id(secret, salt) to 32 bytes, after [`check`](Self::check).
    pub fn derive(&self, secret: &[u8]) -> Result<Key, KdfError> {
        let salt = self.check()?;
        let params = argon2::Params::new(self.m, self.t, self.p, Some(KEY_LEN))
            .map_err(|e| KdfError::Hash(e.to_string()))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(secret, &salt, out.as_mut())
            .map_err(|e| KdfError::Hash(e.to_string()))?;
        Ok(Key(out))
    }
}

/// The floor in force. Unit tests of this crate lower it to keep hundreds of vault operations
/// fast; the built binary and every integration test use [`FLOOR`].
fn floor() -> Cost {
    #[cfg(test)]
    {
        TEST_COST
    }
    #[cfg(not(test))]
    {
        FLOOR
    }
}

/// Cheap parameters for this crate's unit tests only (refused by the binary's floor).
#[cfg(test)]
pub const TEST_COST: Cost = Cost { m: 64, t: 1, p: 1 };

#[cfg(test)]
mod tests {
    use super::*;

    fn with(m: u32, t: u32, p: u32) -> KdfParams {
        let mut k = KdfParams::new(PIN_COST).unwrap();
        k.m = m;
        k.t = t;
        k.p = p;
        k
    }

    #[test]
    fn parameters_out_of_bounds_are_refused_before_running() {
        // 64 GiB would abort the process if it ran: refusing proves the check comes first.
        assert_eq!(
            with(64 * 1024 * 1024, 3, 4).derive(b"x").err(),
            Some(KdfError::AboveCeiling)
        );
        assert_eq!(
            with(65536, 1_000_000, 4).derive(b"x").err(),
            Some(KdfError::AboveCeiling)
        );
        assert_eq!(
            with(65536, 3, 64).derive(b"x").err(),
            Some(KdfError::AboveCeiling)
        );
        assert_eq!(with(8, 1, 1).derive(b"x").err(), Some(KdfError::BelowFloor));
        let mut k = with(65536, 3, 4);
        k.alg = "scrypt".into();
        assert!(matches!(k.derive(b"x"), Err(KdfError::Algorithm(_))));
        let mut k = with(65536, 3, 4);
        k.salt = "AAAA".into();
        assert_eq!(k.derive(b"x").err(), Some(KdfError::Salt));
    }

    #[test]
    fn the_shipped_floor_refuses_eight_mebibytes() {
        // m = 8 MiB and t = 1 are below the binary's floor; the defaults lie within bounds.
        assert_eq!(
            with(8 * 1024, 3, 4).check_with(FLOOR).err(),
            Some(KdfError::BelowFloor)
        );
        assert_eq!(
            with(65536, 1, 4).check_with(FLOOR).err(),
            Some(KdfError::BelowFloor)
        );
        for cost in [PIN_COST, BACKUP_COST] {
            assert!(with(cost.m, cost.t, cost.p).check_with(FLOOR).is_ok());
        }
    }

    /// Pins our Argon2id mapping against Bitwarden's published vector (sdk-internal kdf.rs):
    /// password "67t9b5g67$%Dh89n", salt = SHA-256("test_key"), t=4, m=32 MiB, p=2.
    #[test]
    fn argon2id_matches_bitwarden_vector() {
        use sha2::Digest;
        let salt = sha2::Sha256::digest(b"test_key");
        let k = KdfParams {
            alg: "argon2id".into(),
            v: 19,
            m: 32 * 1024,
            t: 4,
            p: 2,
            salt: data_encoding::BASE64.encode(&salt),
        };
        let key = k.derive(b"67t9b5g67$%Dh89n").unwrap();
        assert_eq!(
            key.as_bytes()[..4],
            [207, 240, 225, 177],
            "first bytes of Bitwarden's vector"
        );
        assert_eq!(key.as_bytes()[31], 242);
    }
}
