//! [`TokenStore`](crate::store::TokenStore): tokens (counters, failures, throttling, resync hints)
//! and e-mail/SMS challenges. Written once for both databases, as a macro that
//! [`impl_store!`](super::impl_store) expands for each store; the row readers and imports the
//! bodies use come from there.

/// Implements [`TokenStore`](crate::store::TokenStore) (see the module notes).
macro_rules! impl_tokens {
    ($store:ty, $db:ty, $begin:literal, $ilike:literal, $apply_writes:path) => {
        #[async_trait::async_trait]
        impl $crate::store::TokenStore for $store {
            async fn insert_token(&self, n: &NewToken, now: UnixTime) -> StoreResult<Token> {
                let period = i64::try_from(n.period)
                    .map_err(|_| StoreError::Corrupt("period out of range".into()))?;
                let row = sqlx::query(q!(
                    "INSERT INTO tokens (user_id, serial, kind, name, algorithm, digits, period, \
                     sealed_secret, state, next_counter, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    sql::RETURNING_TOKEN[0], sql::RETURNING_TOKEN[1]
                ))
                .bind(n.user_id.0)
                .bind(&n.serial.0)
                .bind(n.kind.as_str())
                .bind(&n.name)
                .bind(n.algorithm.as_str())
                .bind(i64::from(n.digits))
                .bind(period)
                .bind(&n.sealed_secret)
                .bind(n.state.as_str())
                .bind(n.next_counter)
                .bind(now)
                .fetch_one(&mut *self.write_conn().await?)
                .await
                .map_err(StoreError::from_write)?;
                token_row(&row)
            }

            async fn token(&self, id: TokenId) -> StoreResult<Option<Token>> {
                let [a, b, c] = sql::SELECT_TOKEN;
                sqlx::query(q!(a, b, c, "WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(token_row)
                    .transpose()
            }

            async fn tokens_of(&self, user: UserId) -> StoreResult<Vec<Token>> {
                let [a, b, c] = sql::SELECT_TOKEN;
                let rows = sqlx::query(q!(a, b, c, "WHERE user_id = $1 ORDER BY id"))
                    .bind(user.0)
                    .fetch_all(&self.pool)
                    .await?;
                all(rows, token_row)
            }

            async fn list_tokens(&self, limit: i64, offset: i64) -> StoreResult<Vec<Token>> {
                let [a, b, c] = sql::SELECT_TOKEN;
                let rows = sqlx::query(q!(a, b, c, "ORDER BY id LIMIT $1 OFFSET $2"))
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?;
                all(rows, token_row)
            }

            async fn count_tokens(&self) -> StoreResult<i64> {
                Ok(sqlx::query("SELECT COUNT(*) AS n FROM tokens")
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("n")?)
            }

            async fn update_token(
                &self,
                id: TokenId,
                name: &str,
                state: TokenState,
            ) -> StoreResult<bool> {
                let done = sqlx::query("UPDATE tokens SET name = $2, state = $3 WHERE id = $1")
                    .bind(id.0)
                    .bind(name)
                    .bind(state.as_str())
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_token(&self, id: TokenId) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM tokens WHERE id = $1")
                    .bind(id.0)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn resync_token(
                &self,
                id: TokenId,
                next: i64,
                drift: i64,
                now: UnixTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE tokens SET next_counter = $2, drift = $3, fail_count = 0, \
                     throttled_until = 0, last_used_at = $4, \
                     state = CASE WHEN state = 'locked' THEN 'active' ELSE state END \
                     WHERE id = $1",
                )
                .bind(id.0)
                .bind(next)
                .bind(drift)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn count_token_failure(
                &self,
                id: TokenId,
                seen: i64,
                until: UnixTime,
                lock: bool,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE tokens SET fail_count = $2 + 1, \
                     throttled_until = CASE WHEN throttled_until > $3 THEN throttled_until ELSE $3 END, \
                     state = CASE WHEN $4 AND state = 'active' THEN 'locked' ELSE state END \
                     WHERE id = $1 AND fail_count = $2",
                )
                .bind(id.0)
                .bind(seen)
                .bind(until)
                .bind(lock)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn throttle_token(
                &self,
                id: TokenId,
                until: UnixTime,
                lock: bool,
            ) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE tokens SET throttled_until = CASE WHEN throttled_until > $2 \
                     THEN throttled_until ELSE $2 END, \
                     state = CASE WHEN $3 AND state = 'active' THEN 'locked' ELSE state END \
                     WHERE id = $1",
                )
                .bind(id.0)
                .bind(until)
                .bind(lock)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn unlock_token(&self, id: TokenId) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE tokens SET fail_count = 0, throttled_until = 0, \
                     state = CASE WHEN state = 'locked' THEN 'active' ELSE state END \
                     WHERE id = $1",
                )
                .bind(id.0)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_pending_params(
                &self,
                id: TokenId,
                algorithm: tessera_otp::HashAlgorithm,
                period: u64,
                first_use_window: i64,
            ) -> StoreResult<bool> {
                let period = i64::try_from(period)
                    .map_err(|_| StoreError::Corrupt("period out of range".into()))?;
                let done = sqlx::query(
                    "UPDATE tokens SET algorithm = $2, period = $3, first_use_window = $4 \
                     WHERE id = $1 AND state = 'pending'",
                )
                .bind(id.0)
                .bind(algorithm.as_str())
                .bind(period)
                .bind(first_use_window)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_resync_hint(
                &self,
                id: TokenId,
                hint: Option<i64>,
                at: UnixTime,
            ) -> StoreResult<()> {
                sqlx::query("UPDATE tokens SET resync_hint = $2, resync_hint_at = $3 WHERE id = $1")
                    .bind(id.0)
                    .bind(hint)
                    .bind(at)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn insert_challenge(&self, c: &Challenge) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO challenges (id_hash, user_id, token_id, code_hash, created_at, \
                     expires_at, attempts, used) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&c.id_hash)
                .bind(c.user_id.0)
                .bind(c.token_id.0)
                .bind(&c.code_hash)
                .bind(c.created_at)
                .bind(c.expires_at)
                .bind(c.attempts)
                .bind(c.used)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err(StoreError::from_write)?;
                Ok(())
            }

            async fn challenge(&self, id_hash: &str) -> StoreResult<Option<Challenge>> {
                sqlx::query(
                    "SELECT id_hash, user_id, token_id, code_hash, created_at, expires_at, \
                     attempts, used FROM challenges WHERE id_hash = $1",
                )
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(challenge_row)
                .transpose()
            }

            async fn challenge_attempt(&self, id_hash: &str) -> StoreResult<i64> {
                let row = sqlx::query(
                    "UPDATE challenges SET attempts = attempts + 1 WHERE id_hash = $1 \
                     RETURNING attempts",
                )
                .bind(id_hash)
                .fetch_optional(&mut *self.write_conn().await?)
                .await?;
                Ok(match row {
                    Some(r) => r.try_get("attempts")?,
                    None => i64::MAX,
                })
            }

            async fn consume_challenge(&self, id_hash: &str, now: UnixTime) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE challenges SET used = TRUE \
                     WHERE id_hash = $1 AND NOT used AND expires_at > $2",
                )
                .bind(id_hash)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn count_challenges_since(&self, user: UserId, since: UnixTime) -> StoreResult<i64> {
                Ok(sqlx::query(
                    "SELECT COUNT(*) AS n FROM challenges WHERE user_id = $1 AND created_at >= $2",
                )
                .bind(user.0)
                .bind(since)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?)
            }
        }
    };
}
pub(in crate::store) use impl_tokens;
