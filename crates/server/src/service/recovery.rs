//! Recovery codes (SPEC F1, F4): ten single-use codes issued at enrollment, shown once.
//!
//! A code has 10 symbols of a 32-letter alphabet (50 bits). Plain SHA-256 of that could be
//! brute-forced from a database dump; the codes are stored as HMAC-SHA256 under a subkey of the
//! server key (see `KeyRing::keyed_hash`), which the dump alone does not contain.

use crate::crypto::random_readable;
use crate::model::User;

use super::audit::Outcome;
use super::{Actor, Result, Service};

/// Recovery codes issued at enrollment.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// Purpose label of the codes' keyed hash (its own subkey).
const RECOVERY_PURPOSE: &str = "recovery-code";

/// Strips what people type around a recovery code (spaces, dashes, lower case).
pub(crate) fn normalize_recovery_code(code: &str) -> String {
    code.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A new recovery code, `ABCDE-FGHJK`: 10 symbols of 32, 50 bits.
fn new_recovery_code() -> Result<String> {
    let raw = random_readable(10)?;
    Ok(format!("{}-{}", &raw[..5], &raw[5..]))
}

impl Service {
    /// Whether `username` gets recovery codes at enrollment: `Some(on)` for this user, or `None`
    /// to follow `enroll.recovery_codes_for_new_users`. A policy change: needs re-authentication.
    pub async fn set_recovery_policy(
        &self,
        actor: &Actor,
        username: &str,
        enabled: Option<bool>,
    ) -> Result<()> {
        let user = self.user_named(username).await?;
        actor.require_reauth(self.clock.now())?;
        if !self.store.set_recovery_enabled(user.id, enabled).await? {
            return Err(super::Error::NotFound("user"));
        }
        self.audit(
            actor,
            "user.recovery",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            match enabled {
                Some(true) => "recovery codes on for this user".to_owned(),
                Some(false) => "recovery codes off for this user".to_owned(),
                None => format!(
                    "recovery codes follow the policy (now {})",
                    if self.config.enroll.recovery_codes_for_new_users {
                        "on"
                    } else {
                        "off"
                    }
                ),
            },
        )
        .await?;
        Ok(())
    }

    /// Whether the user gets recovery codes at enrollment (own setting, else the policy).
    pub(crate) async fn recovery_enabled_for(&self, user: &User) -> Result<bool> {
        Ok(self
            .store
            .recovery_enabled(user.id)
            .await?
            .unwrap_or(self.config.enroll.recovery_codes_for_new_users))
    }

    /// Replaces the user's recovery codes by ten new ones, stored as keyed hashes; returns the
    /// codes, which exist nowhere else.
    pub(crate) async fn issue_recovery_codes(
        &self,
        actor: &Actor,
        user: &User,
    ) -> Result<Vec<String>> {
        let mut codes = Vec::with_capacity(RECOVERY_CODE_COUNT);
        let mut hashes = Vec::with_capacity(RECOVERY_CODE_COUNT);
        while codes.len() < RECOVERY_CODE_COUNT {
            let code = new_recovery_code()?;
            let hash = self
                .keys
                .keyed_hash(RECOVERY_PURPOSE, normalize_recovery_code(&code).as_bytes())?;
            if !hashes.contains(&hash) {
                hashes.push(hash);
                codes.push(code);
            }
        }
        self.store
            .replace_recovery_codes(user.id, &hashes, self.clock.now())
            .await?;
        self.audit(
            actor,
            "recovery.issue",
            format!("user:{}", user.username),
            &user.username,
            Outcome::Success,
            format!("{RECOVERY_CODE_COUNT} recovery codes issued, earlier ones void"),
        )
        .await?;
        Ok(codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_readable_and_normalise() {
        let code = new_recovery_code().unwrap();
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert_eq!(normalize_recovery_code(" abcde-fghjk "), "ABCDEFGHJK");
    }
}
