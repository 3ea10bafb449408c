//! [`EnrollmentStore`](crate::store::EnrollmentStore): enrollment invitations and recovery codes.
//! Written once for both databases, as a macro that [`impl_store!`](super::impl_store) expands for
//! each store; the row readers and imports the bodies use come from there.

/// Implements [`EnrollmentStore`](crate::store::EnrollmentStore) (see the module notes).
macro_rules! impl_enrollment {
    ($store:ty, $db:ty, $begin:literal, $ilike:literal, $apply_writes:path) => {
        #[async_trait::async_trait]
        impl $crate::store::EnrollmentStore for $store {
            async fn insert_invitation(&self, inv: &Invitation) -> StoreResult<()> {
                let mut conn = self.write_conn().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                // Older links stop working in the same transaction that creates the new one.
                sqlx::query(
                    "UPDATE invitations SET superseded = TRUE \
                     WHERE user_id = $1 AND used_at IS NULL AND NOT superseded",
                )
                .bind(inv.user_id.0)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO invitations (id_hash, user_id, created_at, expires_at, used_at, \
                     superseded, failed_attempts, token_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&inv.id_hash)
                .bind(inv.user_id.0)
                .bind(inv.created_at)
                .bind(inv.expires_at)
                .bind(inv.used_at)
                .bind(inv.superseded)
                .bind(inv.failed_attempts)
                .bind(inv.token_id.map(|t| t.0))
                .execute(&mut *tx)
                .await
                .map_err(StoreError::from_write)?;
                tx.commit().await?;
                Ok(())
            }

            async fn invitation(&self, id_hash: &str) -> StoreResult<Option<Invitation>> {
                let row = sqlx::query(q!(sql::INVITATION_SELECT, "WHERE id_hash = $1"))
                    .bind(id_hash)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(invitation_row).transpose()
            }

            async fn live_invitation(
                &self,
                user: UserId,
                now: UnixTime,
            ) -> StoreResult<Option<Invitation>> {
                let row = sqlx::query(q!(
                    sql::INVITATION_SELECT,
                    "WHERE user_id = $1 AND used_at IS NULL AND NOT superseded AND expires_at > $2 \
                     ORDER BY created_at DESC LIMIT 1"
                ))
                .bind(user.0)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(invitation_row).transpose()
            }

            async fn attach_invitation_token(
                &self,
                id_hash: &str,
                token: TokenId,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE invitations SET token_id = $2 WHERE id_hash = $1 \
                     AND token_id IS NULL AND used_at IS NULL AND NOT superseded",
                )
                .bind(id_hash)
                .bind(token.0)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_invitation_failure(&self, id_hash: &str) -> StoreResult<i64> {
                let row = sqlx::query(
                    "UPDATE invitations SET failed_attempts = failed_attempts + 1 \
                     WHERE id_hash = $1 RETURNING failed_attempts",
                )
                .bind(id_hash)
                .fetch_optional(&mut *self.write_conn().await?)
                .await?;
                Ok(match row {
                    Some(r) => r.try_get("failed_attempts")?,
                    None => i64::MAX,
                })
            }

            async fn use_invitation(&self, id_hash: &str, now: UnixTime) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE invitations SET used_at = $2 \
                     WHERE id_hash = $1 AND used_at IS NULL AND NOT superseded",
                )
                .bind(id_hash)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn supersede_invitations(&self, user: UserId) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE invitations SET superseded = TRUE \
                     WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user.0)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn users_needing_enrollment(&self) -> StoreResult<Vec<User>> {
                let [a, b, c] = sql::SELECT_USER;
                let rows = sqlx::query(q!(
                    a, b, c,
                    "WHERE otp_required AND state = 'active' AND NOT EXISTS \
                     (SELECT 1 FROM tokens t WHERE t.user_id = users.id AND t.state = 'active') \
                     ORDER BY username_key"
                ))
                .fetch_all(&self.pool)
                .await?;
                all(rows, user_row)
            }

            async fn recovery_enabled(&self, user: UserId) -> StoreResult<Option<bool>> {
                let row = sqlx::query("SELECT recovery_enabled FROM users WHERE id = $1")
                    .bind(user.0)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(match row {
                    Some(r) => r.try_get("recovery_enabled")?,
                    None => None,
                })
            }

            async fn set_recovery_enabled(
                &self,
                user: UserId,
                enabled: Option<bool>,
            ) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE users SET recovery_enabled = $2 WHERE id = $1")
                    .bind(user.0)
                    .bind(enabled)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn replace_recovery_codes(
                &self,
                user: UserId,
                code_hashes: &[String],
                now: UnixTime,
            ) -> StoreResult<()> {
                let mut conn = self.write_conn().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await?;
                for hash in code_hashes {
                    sqlx::query(
                        "INSERT INTO recovery_codes (user_id, code_hash, created_at) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(user.0)
                    .bind(hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::from_write)?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn recovery_codes_of(&self, user: UserId) -> StoreResult<Vec<RecoveryCode>> {
                let rows = sqlx::query(
                    "SELECT user_id, code_hash, created_at, used_at FROM recovery_codes \
                     WHERE user_id = $1 ORDER BY code_hash",
                )
                .bind(user.0)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(RecoveryCode {
                            user_id: UserId(r.try_get("user_id")?),
                            code_hash: r.try_get("code_hash")?,
                            created_at: r.try_get("created_at")?,
                            used_at: r.try_get("used_at")?,
                        })
                    })
                    .collect()
            }

            async fn use_recovery_code(
                &self,
                user: UserId,
                code_hash: &str,
                now: UnixTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $3 \
                     WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                )
                .bind(user.0)
                .bind(code_hash)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(in crate::store) use impl_enrollment;
