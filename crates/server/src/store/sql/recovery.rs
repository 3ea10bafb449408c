//! [`RecoveryStore`](crate::store::RecoveryStore): self-service recovery, "this wasn't me" links,
//! account reset and the per-user recovery settings. Written once for both databases, as a macro
//! that [`impl_store!`](super::impl_store) expands for each store; the row readers and imports the
//! bodies use come from there.

/// Implements [`RecoveryStore`](crate::store::RecoveryStore) (see the module notes).
macro_rules! impl_recovery {
    ($store:ty, $db:ty, $begin:literal, $ilike:literal, $apply_writes:path) => {
        #[async_trait::async_trait]
        impl $crate::store::RecoveryStore for $store {
            async fn recovery_policy(
                &self,
                user: UserId,
            ) -> StoreResult<crate::model::RecoveryPolicy> {
                let row = sqlx::query(
                    "SELECT self_recovery, revoke_on_recovery, self_service_locked \
                     FROM users WHERE id = $1",
                )
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await?;
                Ok(match row {
                    Some(r) => crate::model::RecoveryPolicy {
                        self_recovery: r.try_get("self_recovery")?,
                        revoke_on_recovery: r.try_get("revoke_on_recovery")?,
                        self_service_locked: r.try_get("self_service_locked")?,
                    },
                    None => crate::model::RecoveryPolicy::default(),
                })
            }

            async fn set_recovery_policy(
                &self,
                user: UserId,
                self_recovery: Option<bool>,
                revoke_on_recovery: Option<bool>,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE users SET self_recovery = $2, revoke_on_recovery = $3 WHERE id = $1",
                )
                .bind(user.0)
                .bind(self_recovery)
                .bind(revoke_on_recovery)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_recovery_attempt(
                &self,
                user: UserId,
                now: UnixTime,
                since: UnixTime,
            ) -> StoreResult<i64> {
                let mut conn = self.write_conn().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                sqlx::query("DELETE FROM recovery_attempts WHERE user_id = $1 AND created_at < $2")
                    .bind(user.0)
                    .bind(since)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO recovery_attempts (user_id, created_at) VALUES ($1, $2)")
                    .bind(user.0)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let count: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM recovery_attempts WHERE user_id = $1 AND created_at >= $2",
                )
                .bind(user.0)
                .bind(since)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(count)
            }

            async fn insert_recovery_request(
                &self,
                r: &crate::model::RecoveryRequest,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO recovery_requests (id_hash, user_id, code_hash, created_at, \
                     expires_at, attempts, used_at, invitation_hash, source) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&r.id_hash)
                .bind(r.user_id.0)
                .bind(&r.code_hash)
                .bind(r.created_at)
                .bind(r.expires_at)
                .bind(r.attempts)
                .bind(r.used_at)
                .bind(&r.invitation_hash)
                .bind(&r.source)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err(StoreError::from_write)?;
                Ok(())
            }

            async fn recovery_request(
                &self,
                id_hash: &str,
            ) -> StoreResult<Option<crate::model::RecoveryRequest>> {
                let row = sqlx::query(
                    "SELECT id_hash, user_id, code_hash, created_at, expires_at, attempts, \
                     used_at, invitation_hash, source FROM recovery_requests WHERE id_hash = $1",
                )
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| recovery_request_row(&r)).transpose()
            }

            async fn recovery_request_attempt(&self, id_hash: &str) -> StoreResult<i64> {
                let n: Option<i64> = sqlx::query_scalar(
                    "UPDATE recovery_requests SET attempts = attempts + 1 WHERE id_hash = $1 \
                     RETURNING attempts",
                )
                .bind(id_hash)
                .fetch_optional(&mut *self.write_conn().await?)
                .await?;
                Ok(n.unwrap_or(i64::MAX))
            }

            async fn use_recovery_request(
                &self,
                id_hash: &str,
                invitation_hash: &str,
                now: UnixTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE recovery_requests SET used_at = $2, invitation_hash = $3 \
                     WHERE id_hash = $1 AND used_at IS NULL AND expires_at > $2",
                )
                .bind(id_hash)
                .bind(now)
                .bind(invitation_hash)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn recovery_request_by_invitation(
                &self,
                invitation_hash: &str,
            ) -> StoreResult<Option<crate::model::RecoveryRequest>> {
                let row = sqlx::query(
                    "SELECT id_hash, user_id, code_hash, created_at, expires_at, attempts, \
                     used_at, invitation_hash, source FROM recovery_requests \
                     WHERE invitation_hash = $1",
                )
                .bind(invitation_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| recovery_request_row(&r)).transpose()
            }

            async fn insert_block_link(&self, l: &crate::model::BlockLink) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO block_links (id_hash, user_id, token_id, event, created_at, \
                     expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&l.id_hash)
                .bind(l.user_id.0)
                .bind(l.token_id.map(|t| t.0))
                .bind(&l.event)
                .bind(l.created_at)
                .bind(l.expires_at)
                .bind(l.used_at)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err(StoreError::from_write)?;
                Ok(())
            }

            async fn block_link(
                &self,
                id_hash: &str,
            ) -> StoreResult<Option<crate::model::BlockLink>> {
                let row = sqlx::query(
                    "SELECT id_hash, user_id, token_id, event, created_at, expires_at, used_at \
                     FROM block_links WHERE id_hash = $1",
                )
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| block_link_row(&r)).transpose()
            }

            async fn use_block_link(
                &self,
                id_hash: &str,
                now: UnixTime,
            ) -> StoreResult<Option<crate::model::BlockLink>> {
                let row = sqlx::query(
                    "UPDATE block_links SET used_at = $2 \
                     WHERE id_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                     RETURNING id_hash, user_id, token_id, event, created_at, expires_at, used_at",
                )
                .bind(id_hash)
                .bind(now)
                .fetch_optional(&mut *self.write_conn().await?)
                .await?;
                row.map(|r| block_link_row(&r)).transpose()
            }

            async fn set_self_service_locked(
                &self,
                user: UserId,
                locked: bool,
            ) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET self_service_locked = $2 WHERE id = $1")
                    .bind(user.0)
                    .bind(locked)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_reset_request(
                &self,
                r: &crate::model::ResetRequest,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO reset_requests (id_hash, user_id, created_at, expires_at, \
                     used_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&r.id_hash)
                .bind(r.user_id.0)
                .bind(r.created_at)
                .bind(r.expires_at)
                .bind(r.used_at)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err(StoreError::from_write)?;
                Ok(())
            }

            async fn reset_request(
                &self,
                id_hash: &str,
            ) -> StoreResult<Option<crate::model::ResetRequest>> {
                let row = sqlx::query(
                    "SELECT id_hash, user_id, created_at, expires_at, used_at \
                     FROM reset_requests WHERE id_hash = $1",
                )
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(crate::model::ResetRequest {
                        id_hash: r.try_get("id_hash")?,
                        user_id: UserId(r.try_get("user_id")?),
                        created_at: r.try_get("created_at")?,
                        expires_at: r.try_get("expires_at")?,
                        used_at: r.try_get("used_at")?,
                    })
                })
                .transpose()
            }

            async fn reset_account(
                &self,
                user: UserId,
                reset_hash: Option<&str>,
                password_hash: &str,
                hint: &str,
                inv: &crate::model::Invitation,
                now: UnixTime,
            ) -> StoreResult<bool> {
                let mut conn = self.write_conn().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                if let Some(hash) = reset_hash {
                    let used = sqlx::query(
                        "UPDATE reset_requests SET used_at = $3 WHERE id_hash = $1 \
                         AND user_id = $2 AND used_at IS NULL AND expires_at > $3",
                    )
                    .bind(hash)
                    .bind(user.0)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    if used.rows_affected() != 1 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                }
                for statement in [
                    "DELETE FROM challenges WHERE user_id = $1",
                    "DELETE FROM invitations WHERE user_id = $1",
                    "DELETE FROM tokens WHERE user_id = $1",
                    "DELETE FROM recovery_codes WHERE user_id = $1",
                    "DELETE FROM recovery_requests WHERE user_id = $1",
                    "DELETE FROM recovery_attempts WHERE user_id = $1",
                    "DELETE FROM block_links WHERE user_id = $1",
                    "DELETE FROM web_sessions WHERE user_id = $1",
                    "DELETE FROM sessions WHERE user_id = $1",
                    "DELETE FROM vault_backups WHERE user_id = $1",
                ] {
                    sqlx::query(statement)
                        .bind(user.0)
                        .execute(&mut *tx)
                        .await?;
                }
                // tessera-auth vaults that sync later learn of the reset from this time and stop
                // uploading (an old device must not bring the wiped data back).
                sqlx::query(
                    "INSERT INTO vault_backup_resets (user_id, reset_at) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET reset_at = excluded.reset_at",
                )
                .bind(user.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let updated = sqlx::query(
                    "UPDATE users SET password_hash = $2, password_hint = $3, fail_count = 0, \
                     second_factor_at = NULL, throttled_until = 0, updated_at = $4 WHERE id = $1",
                )
                .bind(user.0)
                .bind(password_hash)
                .bind(hint)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO invitations (id_hash, user_id, created_at, expires_at, used_at, \
                     superseded, failed_attempts, token_id) VALUES ($1, $2, $3, $4, NULL, FALSE, 0, NULL)",
                )
                .bind(&inv.id_hash)
                .bind(user.0)
                .bind(inv.created_at)
                .bind(inv.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_write)?;
                tx.commit().await?;
                Ok(true)
            }

            async fn recovery_delivery(&self, user: UserId) -> StoreResult<Option<String>> {
                let row: Option<Option<String>> =
                    sqlx::query_scalar("SELECT recovery_delivery FROM users WHERE id = $1")
                        .bind(user.0)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(row.flatten())
            }

            async fn set_recovery_delivery(
                &self,
                user: UserId,
                delivery: Option<&str>,
            ) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET recovery_delivery = $2 WHERE id = $1")
                    .bind(user.0)
                    .bind(delivery)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn password_hint(&self, user: UserId) -> StoreResult<Option<String>> {
                Ok(
                    sqlx::query_scalar("SELECT password_hint FROM users WHERE id = $1")
                        .bind(user.0)
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }
        }
    };
}
pub(in crate::store) use impl_recovery;
