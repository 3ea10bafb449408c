//! `tessera-auth`'s end-to-end encrypted backups (SPEC F9, F6): the server keeps opaque blobs
//! it cannot read (their key needs the user's account key, which never reaches the server), at
//! most two generations a user, each upload a compare-and-set on the generation the device last
//! saw. The audit log records sizes and generations, never content. An account reset deletes
//! the blobs and records its time (in the reset's own transaction, `store/sql/recovery.rs`), so
//! a device that syncs later learns of it instead of uploading the wiped data again.

use super::web::WebUser;
use super::{Outcome, Result, Service};
use crate::clock::UnixTime;
use crate::store::VaultBackup;

/// What an upload led to.
#[derive(Debug)]
pub enum BackupPut {
    /// Stored as this generation.
    Stored(i64),
    /// The newest stored generation is not the one the device expected: download, merge, retry.
    Conflict { current: i64 },
    /// Larger than `authenticator.backup_max_bytes`.
    TooLarge { limit: usize },
}

/// The newest generation's facts, and the last reset.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct BackupMeta {
    /// 0: nothing stored.
    pub generation: i64,
    pub size: usize,
    pub updated_at: Option<UnixTime>,
    /// When an account reset last wiped the backups (devices that set up before must stop).
    pub reset_at: Option<UnixTime>,
    /// The generations kept, oldest first (at most two, one after a kit rotation).
    pub generations: Vec<i64>,
}

impl Service {
    /// The newest generation of the user's own backup.
    pub async fn my_vault_backup(&self, me: &WebUser) -> Result<Option<VaultBackup>> {
        let b = self.store.latest_vault_backup(me.user.id).await?;
        if let Some(b) = &b {
            self.audit(
                &me.actor(),
                "vault_backup.download",
                format!("user:{}", me.user.username),
                &me.user.username,
                Outcome::Success,
                format!("generation {}, {} bytes", b.generation, b.blob.len()),
            )
            .await?;
        }
        Ok(b)
    }

    pub async fn my_vault_backup_meta(&self, me: &WebUser) -> Result<BackupMeta> {
        let b = self.store.latest_vault_backup(me.user.id).await?;
        Ok(BackupMeta {
            generation: b.as_ref().map_or(0, |b| b.generation),
            size: b.as_ref().map_or(0, |b| b.blob.len()),
            updated_at: b.as_ref().map(|b| b.created_at),
            reset_at: self.store.vault_backup_reset_at(me.user.id).await?,
            generations: self.store.vault_backup_generations(me.user.id).await?,
        })
    }

    /// Stores a new generation if `expected` (0: none yet) is still the newest.
    pub async fn put_my_vault_backup(
        &self,
        me: &WebUser,
        expected: i64,
        blob: &[u8],
    ) -> Result<BackupPut> {
        let limit = self.config.authenticator.backup_max_bytes;
        if blob.len() > limit {
            return Ok(BackupPut::TooLarge { limit });
        }
        let now = self.clock.now();
        let target = format!("user:{}", me.user.username);
        match self
            .store
            .put_vault_backup(me.user.id, expected, blob, now)
            .await?
        {
            Some(generation) => {
                self.audit(
                    &me.actor(),
                    "vault_backup.upload",
                    target,
                    &me.user.username,
                    Outcome::Success,
                    format!("generation {generation}, {} bytes", blob.len()),
                )
                .await?;
                Ok(BackupPut::Stored(generation))
            }
            None => {
                let current = self
                    .store
                    .latest_vault_backup(me.user.id)
                    .await?
                    .map_or(0, |b| b.generation);
                Ok(BackupPut::Conflict { current })
            }
        }
    }

    /// Deletes the generations of the user's backup below `before` (a kit rotation: an older
    /// generation would still open with the old kit), or every generation.
    pub async fn delete_my_vault_backup(&self, me: &WebUser, before: Option<i64>) -> Result<u64> {
        let n = self.store.delete_vault_backups(me.user.id, before).await?;
        self.audit(
            &me.actor(),
            "vault_backup.delete",
            format!("user:{}", me.user.username),
            &me.user.username,
            Outcome::Success,
            format!("{n} generations deleted"),
        )
        .await?;
        Ok(n)
    }
}
