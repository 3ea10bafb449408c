//! Online key rotation (`tessera key ...`; docs/operations.md, "Key rotation").
//!
//! A key file holds several keys; the database names the one every node seals new secrets with
//! (`key_state`), so that all nodes switch together. The steps: `add` a key to the key file
//! (the active key is pinned in the database first, so the new key stays unused), copy the file
//! to every node and restart them, `activate` it, `rewrap` the stored secrets under it while the
//! servers serve (compare-and-set per secret, so a secret changed meanwhile is left alone), and
//! `retire` the old key once `check` finds nothing that needs it. A node whose key file lacks the
//! active key reports itself unready (`/readyz` 503) instead of failing enrollments.
//!
//! Keyed hashes (recovery codes, form tokens) cannot be rewrapped: they verify under every key
//! in the file. A key is retired only when no unused recovery code needs it. The audit chain is
//! keyed with the oldest key, which is therefore never retired.

use serde::Serialize;

use crate::crypto::KeyRing;
use crate::store::{Sealed, SealedKind};

use super::codes::seed_aad;
use super::{Actor, Error, Outcome, Result, Service};
use crate::model::Serial;
use crate::msg::Msg;

/// Secrets read per page when rewrapping or checking.
pub const KEY_PAGE: i64 = 500;

/// One key of the key file as `key list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct KeyInfo {
    pub id: u32,
    /// New secrets are sealed with it.
    pub active: bool,
    /// Keys the audit chain (the oldest key).
    pub audit_chain: bool,
    /// Stored secrets sealed with it.
    pub sealed: u64,
    /// Unused recovery codes hashed with it.
    pub recovery_codes: i64,
}

/// What `key check` or `key rewrap` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyCheck {
    /// Secrets read.
    pub secrets: u64,
    /// Secrets rewrapped to the active key (rewrap only).
    pub rewrapped: u64,
    /// Secrets that changed while being rewrapped (left alone: a later run takes them).
    pub changed_meanwhile: u64,
    /// Secrets still under another key than the active one.
    pub not_active: u64,
    /// Secrets that do not open: what they are (kind and label, never the secret).
    pub unreadable: Vec<String>,
}

/// The associated data a sealed secret of `kind` was sealed with.
fn aad(s: &Sealed) -> Vec<u8> {
    match s.kind {
        SealedKind::TokenSeed => seed_aad(&Serial(s.label.clone())),
        SealedKind::RadiusSecret => super::radius::secret_aad(&s.label, false),
        SealedKind::RadiusNextSecret => super::radius::secret_aad(&s.label, true),
        SealedKind::InventorySeed => super::inventory::inventory_aad(&s.label),
    }
}

fn name(s: &Sealed) -> String {
    match s.kind {
        SealedKind::TokenSeed => format!("token {}", s.label),
        SealedKind::RadiusSecret => format!("RADIUS client {}", s.label),
        SealedKind::RadiusNextSecret => format!("RADIUS client {} (next secret)", s.label),
        SealedKind::InventorySeed => format!("hardware token {} in the inventory", s.label),
    }
}

impl Service {
    /// The key new secrets are sealed with on this node.
    pub fn keys_current(&self) -> u32 {
        self.keys.current_key_id()
    }

    /// Follows the active key the database names; called at start, by `/readyz` and by a
    /// background task every few seconds.
    pub async fn refresh_active_key(&self) -> Result<()> {
        let active = self.store.active_key_id().await?;
        self.keys.follow_active(active);
        Ok(())
    }

    /// The keys of this node's key file with what each is used for.
    pub async fn list_keys(&self, _actor: &Actor) -> Result<Vec<KeyInfo>> {
        self.refresh_active_key().await?;
        let mut sealed = std::collections::BTreeMap::<u32, u64>::new();
        self.each_sealed(|s| {
            if let Some(id) = KeyRing::blob_key_id(&s.blob) {
                *sealed.entry(id).or_default() += 1;
            }
        })
        .await?;
        let ids = self.keys.key_ids();
        let oldest = ids.first().copied();
        let mut out = Vec::new();
        for id in ids {
            out.push(KeyInfo {
                id,
                active: id == self.keys.current_key_id() && self.keys.missing_active().is_none(),
                audit_chain: Some(id) == oldest,
                sealed: sealed.get(&id).copied().unwrap_or(0),
                recovery_codes: self.store.recovery_codes_under(id).await?,
            });
        }
        Ok(out)
    }

    /// Makes key `id` of this node's key file the one every node seals new secrets with.
    pub async fn activate_key(&self, actor: &Actor, id: u32) -> Result<()> {
        if !self.keys.has_key(id) {
            return Err(Error::Invalid(Msg::text(format!(
                "the key file has no key {id} (see `tessera key list`)"
            ))));
        }
        self.store.set_active_key_id(id).await?;
        self.refresh_active_key().await?;
        self.audit(
            actor,
            "key.activate",
            format!("key:{id}"),
            "",
            Outcome::Success,
            format!("key {id} seals new secrets on every node"),
        )
        .await?;
        Ok(())
    }

    /// Adds a new key to the key file at `path` (written atomically) without making it
    /// active: the active key is pinned in the database first, so that the newest key in a file
    /// does not become active by itself on the nodes that have it. Returns the new key's id.
    pub async fn add_key(&self, actor: &Actor, path: &std::path::Path) -> Result<u32> {
        if self.store.active_key_id().await?.is_none() {
            self.store
                .set_active_key_id(self.keys.current_key_id())
                .await?;
        }
        let (mut ring, _) = KeyRing::load_or_create(path)?;
        let id = ring.rotate()?;
        ring.save(path).map_err(|e| {
            Error::Crypto(crate::crypto::CryptoError::KeyFile {
                path: path.display().to_string(),
                message: format!("cannot write: {e}"),
            })
        })?;
        self.audit(
            actor,
            "key.add",
            format!("key:{id}"),
            "",
            Outcome::Success,
            format!("key {id} added to the key file, not active yet"),
        )
        .await?;
        Ok(id)
    }

    /// The next page of sealed secrets of `kind` after row `*after` (moved to the page's last
    /// row); `None` at the end.
    async fn next_sealed(&self, kind: SealedKind, after: &mut i64) -> Result<Option<Vec<Sealed>>> {
        let page = self.store.sealed_page(kind, *after, KEY_PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        *after = last.id;
        Ok(Some(page))
    }

    /// Calls `f` for every stored sealed secret, page by page.
    async fn each_sealed(&self, mut f: impl FnMut(&Sealed)) -> Result<()> {
        for &kind in SealedKind::ALL {
            let mut after = 0;
            while let Some(page) = self.next_sealed(kind, &mut after).await? {
                page.iter().for_each(&mut f);
            }
        }
        Ok(())
    }

    /// Opens every stored secret (`rewrap`: and seals each one under another key than the
    /// active one again under the active key). `progress` is called after each page with the
    /// secrets read so far.
    pub async fn check_keys(
        &self,
        actor: &Actor,
        rewrap: bool,
        mut progress: impl FnMut(u64),
    ) -> Result<KeyCheck> {
        self.refresh_active_key().await?;
        if let Some(id) = self.keys.missing_active() {
            return Err(Error::Invalid(Msg::text(format!(
                "this node's key file lacks the active key {id}: copy the key file that has it"
            ))));
        }
        let active = self.keys.current_key_id();
        let mut check = KeyCheck::default();
        for &kind in SealedKind::ALL {
            let mut after = 0;
            while let Some(page) = self.next_sealed(kind, &mut after).await? {
                for s in &page {
                    check.secrets += 1;
                    let aad = aad(s);
                    let Ok(plain) = self.keys.open(&aad, &s.blob) else {
                        check.unreadable.push(name(s));
                        continue;
                    };
                    if KeyRing::blob_key_id(&s.blob) == Some(active) {
                        continue;
                    }
                    if !rewrap {
                        check.not_active += 1;
                        continue;
                    }
                    let blob = self.keys.seal(&aad, &plain)?;
                    if self.store.replace_sealed(s, &blob).await? {
                        check.rewrapped += 1;
                    } else {
                        check.changed_meanwhile += 1;
                        check.not_active += 1;
                    }
                }
                progress(check.secrets);
            }
        }
        if rewrap {
            self.audit(
                actor,
                "key.rewrap",
                format!("key:{active}"),
                "",
                if check.unreadable.is_empty() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                },
                format!(
                    "{} secrets rewrapped to key {active}, {} unreadable",
                    check.rewrapped,
                    check.unreadable.len()
                ),
            )
            .await?;
        }
        Ok(check)
    }

    /// Whether key `id` may leave the key file: not the active key, not the audit chain's key,
    /// and nothing stored needs it. Returns the ring without it and the retired key's line of
    /// the key file (to keep offline while backups sealed with it exist).
    pub async fn retire_key(
        &self,
        actor: &Actor,
        id: u32,
    ) -> Result<(KeyRing, zeroize::Zeroizing<String>)> {
        let keys = self.list_keys(actor).await?;
        let Some(info) = keys.iter().find(|k| k.id == id) else {
            return Err(Error::Invalid(Msg::text(format!(
                "the key file has no key {id} (see `tessera key list`)"
            ))));
        };
        let refuse = |why: String| Err(Error::Invalid(Msg::text(why)));
        if info.active || self.store.active_key_id().await? == Some(id) {
            return refuse(format!("key {id} is active: activate another key first"));
        }
        if info.audit_chain {
            return refuse(format!(
                "key {id} is the oldest key: the audit log's hash chain is keyed with it, so it \
                 stays in the key file"
            ));
        }
        if info.sealed > 0 {
            return refuse(format!(
                "{} stored secrets are still sealed with key {id}: run `tessera key rewrap` first",
                info.sealed
            ));
        }
        if info.recovery_codes > 0 {
            return refuse(format!(
                "{} unused recovery codes are hashed with key {id} and cannot be rewrapped: \
                 re-issue them (`tessera recovery issue USER`) or wait until they are used",
                info.recovery_codes
            ));
        }
        let Some((ring, line)) = self.keys.without(id) else {
            return refuse(format!("key {id} is the only key"));
        };
        self.audit(
            actor,
            "key.retire",
            format!("key:{id}"),
            "",
            Outcome::Success,
            format!("key {id} retired: nothing stored needs it"),
        )
        .await?;
        Ok((ring, line))
    }
}

/// How often a serving node re-reads which key is active.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts the task that follows the active key (`tessera serve` only): after `key activate`,
/// every node seals with the new key within [`FOLLOW_EVERY`].
pub fn start_follower(service: &std::sync::Arc<Service>) {
    let service = std::sync::Arc::downgrade(service);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FOLLOW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut said = None;
        loop {
            tick.tick().await;
            let Some(service) = service.upgrade() else {
                return;
            };
            if let Err(e) = service.refresh_active_key().await {
                tracing::warn!(error = %e, "cannot read which server key is active");
            }
            let missing = service.keys.missing_active();
            if missing != said {
                match missing {
                    Some(id) => tracing::error!(
                        key_id = id,
                        "the active server key is missing from this node's key file (the node \
                         is unready): copy the key file that has it and restart"
                    ),
                    None => tracing::info!(
                        key_id = service.keys.current_key_id(),
                        "sealing new secrets with the active server key"
                    ),
                }
                said = missing;
            }
        }
    });
}
