//! [`VaultBackupStore`](crate::store::VaultBackupStore): `tessera-auth`'s opaque backup blobs.
//! Written once for both databases, as a macro that [`impl_store!`](super::impl_store) expands
//! for each store.

/// Implements [`VaultBackupStore`](crate::store::VaultBackupStore) (see the module notes).
macro_rules! impl_vault_backups {
    ($store:ty, $db:ty, $begin:literal, $ilike:literal, $apply_writes:path) => {
        #[async_trait::async_trait]
        impl $crate::store::VaultBackupStore for $store {
            async fn latest_vault_backup(
                &self,
                user: $crate::model::UserId,
            ) -> StoreResult<Option<$crate::store::VaultBackup>> {
                let row = sqlx::query(
                    "SELECT generation, blob, created_at FROM vault_backups WHERE user_id = $1 \
                     ORDER BY generation DESC LIMIT 1",
                )
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok($crate::store::VaultBackup {
                        generation: r.try_get("generation")?,
                        blob: r.try_get("blob")?,
                        created_at: r.try_get("created_at")?,
                    })
                })
                .transpose()
            }

            async fn put_vault_backup(
                &self,
                user: $crate::model::UserId,
                expected: i64,
                blob: &[u8],
                now: UnixTime,
            ) -> StoreResult<Option<i64>> {
                let mut conn = self.write_conn().await?;
                // One statement decides: inserted only while the newest generation is still
                // `expected`; a concurrent upload of the same generation hits the primary key.
                let inserted = sqlx::query(
                    "INSERT INTO vault_backups (user_id, generation, blob, size, created_at) \
                     SELECT $1, $2 + 1, $3, $4, $5 WHERE COALESCE((SELECT MAX(generation) \
                     FROM vault_backups WHERE user_id = $1), 0) = $2",
                )
                .bind(user.0)
                .bind(expected)
                .bind(blob)
                .bind(i64::try_from(blob.len()).unwrap_or(i64::MAX))
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::from_write);
                match inserted {
                    Ok(r) if r.rows_affected() == 1 => {}
                    Ok(_) | Err(StoreError::Conflict) => return Ok(None),
                    Err(e) => return Err(e),
                }
                let generation = expected + 1;
                // Two generations are kept: the new one and the one before it.
                sqlx::query("DELETE FROM vault_backups WHERE user_id = $1 AND generation < $2")
                    .bind(user.0)
                    .bind(generation - 1)
                    .execute(&mut *conn)
                    .await?;
                Ok(Some(generation))
            }

            async fn delete_vault_backups(
                &self,
                user: $crate::model::UserId,
                before: Option<i64>,
            ) -> StoreResult<u64> {
                let r =
                    sqlx::query("DELETE FROM vault_backups WHERE user_id = $1 AND generation < $2")
                        .bind(user.0)
                        .bind(before.unwrap_or(i64::MAX))
                        .execute(&mut *self.write_conn().await?)
                        .await?;
                Ok(r.rows_affected())
            }

            async fn vault_backup_generations(
                &self,
                user: $crate::model::UserId,
            ) -> StoreResult<Vec<i64>> {
                Ok(sqlx::query_scalar(
                    "SELECT generation FROM vault_backups WHERE user_id = $1 ORDER BY generation",
                )
                .bind(user.0)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn vault_backup_reset_at(
                &self,
                user: $crate::model::UserId,
            ) -> StoreResult<Option<UnixTime>> {
                Ok(sqlx::query_scalar(
                    "SELECT reset_at FROM vault_backup_resets WHERE user_id = $1",
                )
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?)
            }
        }
    };
}
pub(crate) use impl_vault_backups;
