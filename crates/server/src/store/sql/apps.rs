//! [`AppStore`](crate::store::AppStore): registered applications and their API keys (hashes only).
//! Written once for both databases, as a macro that [`impl_store!`](super::impl_store) expands for
//! each store; the row readers and imports the bodies use come from there.

/// Implements [`AppStore`](crate::store::AppStore) (see the module notes).
macro_rules! impl_apps {
    ($store:ty, $db:ty, $begin:literal, $ilike:literal, $apply_writes:path) => {
        #[async_trait::async_trait]
        impl $crate::store::AppStore for $store {
            async fn insert_app(
                &self,
                name: &str,
                key_prefix: &str,
                key_hash: &str,
                mode: AppMode,
                passthrough: bool,
                now: UnixTime,
            ) -> StoreResult<Application> {
                let row = sqlx::query(q!(
                    "INSERT INTO applications (name, key_prefix, key_hash, mode, passthrough, \
                     state, created_at) VALUES ($1, $2, $3, $4, $6, 'active', $5)",
                    sql::RETURNING_APP[0],
                    sql::RETURNING_APP[1]
                ))
                .bind(name)
                .bind(key_prefix)
                .bind(key_hash)
                .bind(mode.as_str())
                .bind(now)
                .bind(passthrough)
                .fetch_one(&mut *self.write_conn().await?)
                .await
                .map_err(StoreError::from_write)?;
                app_row(&row)
            }

            async fn app(&self, id: AppId) -> StoreResult<Option<Application>> {
                let [a, b, c] = sql::SELECT_APP;
                sqlx::query(q!(a, b, c, "WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(app_row)
                    .transpose()
            }

            async fn app_by_key_hash(&self, key_hash: &str) -> StoreResult<Option<Application>> {
                let [a, b, c] = sql::SELECT_APP;
                sqlx::query(q!(a, b, c, "WHERE key_hash = $1"))
                    .bind(key_hash)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(app_row)
                    .transpose()
            }

            async fn list_apps(&self) -> StoreResult<Vec<Application>> {
                let [a, b, c] = sql::SELECT_APP;
                let rows = sqlx::query(q!(a, b, c, "ORDER BY name"))
                    .fetch_all(&self.pool)
                    .await?;
                all(rows, app_row)
            }

            async fn revoke_app(&self, id: AppId, now: UnixTime) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE applications SET state = 'revoked', revoked_at = $2 \
                     WHERE id = $1 AND state = 'active'",
                )
                .bind(id.0)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(in crate::store) use impl_apps;
