//! [`SessionStore`](crate::store::SessionStore): admin API sessions and web sessions (hashes of
//! their tokens only). Written once for both databases, as a macro that
//! [`impl_store!`](super::impl_store) expands for each store; the row readers and imports the
//! bodies use come from there.

/// Implements [`SessionStore`](crate::store::SessionStore) (see the module notes).
macro_rules! impl_sessions {
    ($store:ty, $db:ty, $begin:literal, $ilike:literal, $apply_writes:path) => {
        #[async_trait::async_trait]
        impl $crate::store::SessionStore for $store {
            async fn insert_session(&self, s: &Session) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, \
                     expires_at, reauth_until) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&s.token_hash)
                .bind(s.user_id.0)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.expires_at)
                .bind(s.reauth_until)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err(StoreError::from_write)?;
                Ok(())
            }

            async fn session(&self, token_hash: &str) -> StoreResult<Option<Session>> {
                sqlx::query(
                    "SELECT token_hash, user_id, created_at, last_seen_at, expires_at, \
                     reauth_until FROM sessions WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(session_row)
                .transpose()
            }

            async fn touch_session(&self, token_hash: &str, now: UnixTime) -> StoreResult<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE token_hash = $1")
                    .bind(token_hash)
                    .bind(now)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn set_session_reauth(&self, token_hash: &str, until: UnixTime) -> StoreResult<()> {
                sqlx::query("UPDATE sessions SET reauth_until = $2 WHERE token_hash = $1")
                    .bind(token_hash)
                    .bind(until)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn delete_sessions_of(&self, user: UserId) -> StoreResult<()> {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user.0)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn insert_web_session(&self, s: &WebSession) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO web_sessions (id_hash, user_id, created_at, last_seen_at, \
                     expires_at, reauth_until, csrf_secret) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&s.id_hash)
                .bind(s.user_id.0)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.expires_at)
                .bind(s.reauth_until)
                .bind(&s.csrf_secret)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err(StoreError::from_write)?;
                Ok(())
            }

            async fn web_session(&self, id_hash: &str) -> StoreResult<Option<WebSession>> {
                let row = sqlx::query(
                    "SELECT id_hash, user_id, created_at, last_seen_at, expires_at, \
                     reauth_until, csrf_secret FROM web_sessions WHERE id_hash = $1",
                )
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| {
                    Ok(WebSession {
                        id_hash: r.try_get("id_hash")?,
                        user_id: UserId(r.try_get("user_id")?),
                        created_at: r.try_get("created_at")?,
                        last_seen_at: r.try_get("last_seen_at")?,
                        expires_at: r.try_get("expires_at")?,
                        reauth_until: r.try_get("reauth_until")?,
                        csrf_secret: r.try_get("csrf_secret")?,
                    })
                })
                .transpose()
            }

            async fn touch_web_session(&self, id_hash: &str, now: UnixTime) -> StoreResult<()> {
                sqlx::query("UPDATE web_sessions SET last_seen_at = $2 WHERE id_hash = $1")
                    .bind(id_hash)
                    .bind(now)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn set_web_session_reauth(
                &self,
                id_hash: &str,
                until: UnixTime,
            ) -> StoreResult<()> {
                sqlx::query("UPDATE web_sessions SET reauth_until = $2 WHERE id_hash = $1")
                    .bind(id_hash)
                    .bind(until)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn set_web_session_pending(
                &self,
                id_hash: &str,
                sealed: Option<&[u8]>,
            ) -> StoreResult<()> {
                sqlx::query("UPDATE web_sessions SET pending = $2 WHERE id_hash = $1")
                    .bind(id_hash)
                    .bind(sealed)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn web_session_pending(&self, id_hash: &str) -> StoreResult<Option<Vec<u8>>> {
                let pending: Option<Option<Vec<u8>>> =
                    sqlx::query_scalar("SELECT pending FROM web_sessions WHERE id_hash = $1")
                        .bind(id_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(pending.flatten())
            }

            async fn clear_web_session_pending(
                &self,
                id_hash: &str,
                sealed: &[u8],
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE web_sessions SET pending = NULL WHERE id_hash = $1 AND pending = $2",
                )
                .bind(id_hash)
                .bind(sealed)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_web_session(&self, id_hash: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn delete_web_sessions_of(&self, user: UserId, keep: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM web_sessions WHERE user_id = $1 AND id_hash <> $2")
                    .bind(user.0)
                    .bind(keep)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }
        }
    };
}
pub(in crate::store) use impl_sessions;
