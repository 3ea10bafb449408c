//! A user moves their entry for this organisation out of Google Authenticator (portal): they
//! upload the export's QR images (or screenshots of them); only entries whose issuer is this
//! server's issuer are offered, every other entry (their bank, their mail) is dropped at once
//! and never stored; the user picks one and proves it with the code the app shows now; then it
//! is one of their devices, with the seed the app already has (no re-enrollment).
//!
//! Between the upload and the pick the offered entries wait sealed with the session (as an
//! admin's upload does, `import_web.rs`), at most 30 minutes. Adding a device needs a fresh
//! re-authentication, as in the portal's other "add" actions.

use serde::{Deserialize, Serialize};
use tessera_import::{Item, Kind, Lang};
use tessera_otp::{HashAlgorithm, Secret};
use zeroize::Zeroizing;

use crate::crypto::CryptoError;
use crate::model::{NewToken, Serial, TokenKind, TokenState};
use crate::msg::{Key, Msg};

use super::audit::Outcome;
use super::codes::{CodeCheck, normalize_code, seed_aad};
use super::import_web::{STAGE_SECS, images_source};
use super::tokens::{TokenInfo, validate_token_name};
use super::{Error, Result, Service, WebUser};

/// An entry of the export offered to the user: what an app shows, never the seed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OfferedEntry {
    pub issuer: String,
    pub account: String,
    pub kind: TokenKind,
    pub algorithm: &'static str,
    pub digits: u32,
}

/// What the upload gave: the entries offered, and how many were left out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MigrationOffer {
    pub entries: Vec<OfferedEntry>,
    /// Entries of other issuers: dropped, never stored.
    pub other_issuers: usize,
    /// Entries or images that could not be read (locator and message), e.g. "2 of 3 QR codes".
    pub problems: Vec<(String, String)>,
    pub issuer: String,
}

/// An offered entry as kept between the upload and the pick (sealed).
#[derive(Serialize, Deserialize)]
struct StagedEntry {
    issuer: String,
    account: String,
    hotp_counter: Option<u64>,
    algorithm: String,
    digits: u32,
    secret_hex: String,
}

impl Drop for StagedEntry {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret_hex);
    }
}

#[derive(Serialize, Deserialize)]
struct Staged {
    /// Tells these apart from an admin's staged import.
    migration: bool,
    entries: Vec<StagedEntry>,
}

fn stage_aad(session_hash: &str) -> Vec<u8> {
    [
        b"tessera/portal-migration/v1/".as_slice(),
        session_hash.as_bytes(),
    ]
    .concat()
}

/// Whether an entry's issuer is this server's (the export's issuer field, else the label's
/// prefix before `:`; ignoring case and surrounding spaces).
fn same_issuer(entry: Option<&str>, ours: &str) -> bool {
    entry.is_some_and(|i| i.trim().eq_ignore_ascii_case(ours.trim()))
}

fn offered(e: &StagedEntry) -> OfferedEntry {
    OfferedEntry {
        issuer: e.issuer.clone(),
        account: e.account.clone(),
        kind: if e.hotp_counter.is_some() {
            TokenKind::Hotp
        } else {
            TokenKind::Totp
        },
        algorithm: e
            .algorithm
            .parse::<HashAlgorithm>()
            .map_or("SHA1", |a| a.as_str()),
        digits: e.digits,
    }
}

impl Service {
    /// Reads the uploaded export images (or text with its links) and offers the entries of
    /// this server's issuer; the others are dropped here.
    pub async fn stage_my_migration(
        &self,
        me: &WebUser,
        files: &[(String, Vec<u8>)],
        lang: Lang,
    ) -> Result<MigrationOffer> {
        if files.is_empty() {
            return Err(Error::Invalid(Msg::new(Key::UploadEmpty)));
        }
        // Decoding images is CPU work: off the async workers.
        let owned = files.to_vec();
        let items = tokio::task::spawn_blocking(move || {
            let named: Vec<(String, &[u8])> = owned
                .iter()
                .map(|(n, b)| (n.clone(), b.as_slice()))
                .collect();
            images_source(&named, false).collect::<Vec<_>>()
        })
        .await
        .map_err(|e| Error::Invalid(Msg::text(format!("upload not read: {e}"))))?;
        let ours = self.config.issuer();
        let mut offer = MigrationOffer {
            issuer: ours.clone(),
            ..MigrationOffer::default()
        };
        let mut staged = Staged {
            migration: true,
            entries: Vec::new(),
        };
        for item in items {
            match item {
                Err(refusal) => offer.problems.push((String::new(), refusal.message(lang))),
                Ok(Item::Skip(s)) => offer.problems.push((s.locator, s.reason.message(lang))),
                Ok(Item::Record(r)) => {
                    let issuer = r.issuer.clone().or_else(|| {
                        r.account
                            .as_deref()
                            .and_then(|a| a.split_once(':'))
                            .map(|(i, _)| i.to_owned())
                    });
                    if !same_issuer(issuer.as_deref(), &ours) {
                        // Someone else's entry: not kept, not even in the session.
                        offer.other_issuers += 1;
                        continue;
                    }
                    let (hotp_counter, period) = match r.kind {
                        Kind::Hotp { counter } => (Some(counter), 30),
                        Kind::Totp { period, .. } => (None, period),
                    };
                    if period != 30 {
                        // Export entries are always 30 s; anything else is not an export.
                        continue;
                    }
                    let account = r.account.clone().unwrap_or_default();
                    let account = account
                        .split_once(':')
                        .map_or(account.as_str(), |(_, a)| a)
                        .trim()
                        .to_owned();
                    let entry = StagedEntry {
                        issuer: issuer.unwrap_or_default(),
                        account,
                        hotp_counter,
                        algorithm: r.algorithm.as_str().to_owned(),
                        digits: r.digits,
                        secret_hex: r.secret.to_hex(),
                    };
                    offer.entries.push(offered(&entry));
                    staged.entries.push(entry);
                }
            }
        }
        if staged.entries.is_empty() {
            self.store.drop_staged_upload(&me.session_hash).await?;
        } else {
            let json = Zeroizing::new(
                serde_json::to_vec(&staged)
                    .map_err(|e| Error::Invalid(Msg::text(e.to_string())))?,
            );
            let sealed = self.keys.seal(&stage_aad(&me.session_hash), &json)?;
            let expires = self.clock.now().saturating_add(STAGE_SECS);
            self.store
                .stage_upload(&me.session_hash, &sealed, expires)
                .await?;
        }
        Ok(offer)
    }

    /// The offered entries still waiting, if any.
    pub async fn my_staged_migration(&self, me: &WebUser) -> Result<Vec<OfferedEntry>> {
        Ok(self
            .staged_migration(me)
            .await?
            .map(|s| s.entries.iter().map(offered).collect())
            .unwrap_or_default())
    }

    async fn staged_migration(&self, me: &WebUser) -> Result<Option<Staged>> {
        let Some(sealed) = self
            .store
            .staged_upload(&me.session_hash, self.clock.now())
            .await?
        else {
            return Ok(None);
        };
        // An admin's staged import in the same session is not a migration.
        let Ok(json) = self.keys.open(&stage_aad(&me.session_hash), &sealed) else {
            return Ok(None);
        };
        Ok(serde_json::from_slice::<Staged>(&json)
            .ok()
            .filter(|s| s.migration))
    }

    /// Makes offered entry `index` one of the user's devices, once `code` (the one the app shows
    /// now) proves it; needs a fresh re-authentication. The other offered entries are dropped.
    pub async fn confirm_my_migration(
        &self,
        me: &WebUser,
        index: usize,
        code: &str,
        name: &str,
    ) -> Result<TokenInfo> {
        self.require_web_reauth(me)?;
        let code = normalize_code(code)?;
        let Some(staged) = self.staged_migration(me).await? else {
            return Err(Error::Invalid(Msg::new(Key::UploadGone)));
        };
        let Some(entry) = staged.entries.get(index) else {
            return Err(Error::NotFound("entry"));
        };
        let algorithm: HashAlgorithm = entry
            .algorithm
            .parse()
            .map_err(|_| Error::Invalid(Msg::new(Key::Algorithm)))?;
        let secret = Zeroizing::new(
            data_encoding::HEXLOWER
                .decode(entry.secret_hex.as_bytes())
                .map_err(|_| Error::Crypto(CryptoError::Open { key_id: 0 }))?,
        );
        let secret = Secret::from_bytes(secret.to_vec())
            .map_err(|_| Error::Crypto(CryptoError::Open { key_id: 0 }))?;
        let kind = if entry.hotp_counter.is_some() {
            TokenKind::Hotp
        } else {
            TokenKind::Totp
        };
        let serial = Serial(format!(
            "{}{}",
            if kind == TokenKind::Hotp {
                "HOTP"
            } else {
                "TOTP"
            },
            crate::crypto::random_readable(8)?
        ));
        let name = match name.trim() {
            "" => validate_token_name(&format!("Google Authenticator ({})", entry.issuer))?,
            n => validate_token_name(n)?,
        };
        let new = NewToken {
            user_id: me.user.id,
            sealed_secret: self.keys.seal(&seed_aad(&serial), secret.as_bytes())?,
            serial,
            kind,
            name,
            algorithm,
            digits: entry.digits,
            period: if kind == TokenKind::Totp { 30 } else { 0 },
            state: TokenState::Pending,
            next_counter: i64::try_from(entry.hotp_counter.unwrap_or(0)).unwrap_or(0),
        };
        let token = self.insert_new_token(&new).await?;
        let check = self
            .try_code(&token, &code, TokenState::Pending, TokenState::Active, None)
            .await?;
        let target = format!("token:{}", token.serial);
        if !matches!(check, CodeCheck::Accepted { .. }) {
            // Nothing stays of a wrong try: the entry waits for the right code.
            self.store.delete_token(token.id).await?;
            self.audit(
                &me.actor(),
                "token.migrate",
                target,
                &me.user.username,
                Outcome::Failure,
                "entry from a Google Authenticator export: wrong code",
            )
            .await?;
            return Err(Error::InvalidCode);
        }
        self.store.drop_staged_upload(&me.session_hash).await?;
        self.audit(
            &me.actor(),
            "token.migrate",
            target,
            &me.user.username,
            Outcome::Success,
            format!(
                "{kind} entry of {} moved from a Google Authenticator export, code correct, active",
                entry.issuer
            ),
        )
        .await?;
        let (token, user) = self.token_with_owner(token.id).await?;
        Ok(TokenInfo::new(&token, &user))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn issuers_match_ignoring_case() {
        assert!(super::same_issuer(Some(" acme "), "Acme"));
        assert!(!super::same_issuer(Some("Acme Bank"), "Acme"));
        assert!(!super::same_issuer(None, "Acme"));
    }
}
