//! [`KeyStore`](crate::store::KeyStore): which server key is active, and the sealed secrets a
//! key rotation rewraps (see `service/keys.rs`). Written once for both databases, as a macro
//! that [`impl_store!`](super::impl_store) expands for each store.

/// Implements [`KeyStore`](crate::store::KeyStore) (see the module notes).
macro_rules! impl_keys {
    ($store:ty, $db:ty, $begin:literal, $ilike:literal, $apply_writes:path) => {
        #[async_trait::async_trait]
        impl $crate::store::KeyStore for $store {
            async fn active_key_id(&self) -> StoreResult<Option<u32>> {
                let id: Option<i64> =
                    sqlx::query_scalar("SELECT active_key_id FROM key_state WHERE id = 1")
                        .fetch_optional(&self.pool)
                        .await?
                        .flatten();
                id.map(|v| sql::u32_col("active_key_id", v)).transpose()
            }

            async fn set_active_key_id(&self, key_id: u32) -> StoreResult<()> {
                sqlx::query("UPDATE key_state SET active_key_id = $1 WHERE id = 1")
                    .bind(i64::from(key_id))
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn sealed_page(
                &self,
                kind: $crate::store::SealedKind,
                after: i64,
                limit: i64,
            ) -> StoreResult<Vec<$crate::store::Sealed>> {
                let sql = match kind {
                    $crate::store::SealedKind::TokenSeed => {
                        "SELECT id, serial, sealed_secret FROM tokens WHERE id > $1 \
                         ORDER BY id LIMIT $2"
                    }
                    $crate::store::SealedKind::RadiusSecret => {
                        "SELECT id, name AS serial, sealed_secret FROM radius_clients \
                         WHERE id > $1 ORDER BY id LIMIT $2"
                    }
                    $crate::store::SealedKind::RadiusNextSecret => {
                        "SELECT id, name AS serial, sealed_next_secret AS sealed_secret \
                         FROM radius_clients WHERE id > $1 AND sealed_next_secret IS NOT NULL \
                         ORDER BY id LIMIT $2"
                    }
                    $crate::store::SealedKind::InventorySeed => {
                        "SELECT id, serial, sealed_secret FROM inventory_tokens WHERE id > $1 \
                         ORDER BY id LIMIT $2"
                    }
                };
                let rows = sqlx::query(sql)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::store::Sealed {
                            kind,
                            id: r.try_get("id")?,
                            label: r.try_get("serial")?,
                            blob: r.try_get("sealed_secret")?,
                        })
                    })
                    .collect()
            }

            async fn replace_sealed(
                &self,
                old: &$crate::store::Sealed,
                blob: &[u8],
            ) -> StoreResult<bool> {
                let sql = match old.kind {
                    $crate::store::SealedKind::TokenSeed => {
                        "UPDATE tokens SET sealed_secret = $1 WHERE id = $2 AND sealed_secret = $3"
                    }
                    $crate::store::SealedKind::RadiusSecret => {
                        "UPDATE radius_clients SET sealed_secret = $1 \
                         WHERE id = $2 AND sealed_secret = $3"
                    }
                    $crate::store::SealedKind::RadiusNextSecret => {
                        "UPDATE radius_clients SET sealed_next_secret = $1 \
                         WHERE id = $2 AND sealed_next_secret = $3"
                    }
                    $crate::store::SealedKind::InventorySeed => {
                        "UPDATE inventory_tokens SET sealed_secret = $1 \
                         WHERE id = $2 AND sealed_secret = $3"
                    }
                };
                let done = sqlx::query(sql)
                    .bind(blob)
                    .bind(old.id)
                    .bind(&old.blob)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn recovery_codes_under(&self, key_id: u32) -> StoreResult<i64> {
                // Kept as `k<id>:<hmac>`: they cannot be rewrapped, only re-issued, and verify
                // only while their key is in the key file.
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM recovery_codes WHERE used_at IS NULL AND code_hash LIKE $1",
                )
                .bind(format!("k{key_id}:%"))
                .fetch_one(&self.pool)
                .await?)
            }
        }
    };
}
pub(crate) use impl_keys;
