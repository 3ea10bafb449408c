//! [`UserStore`](crate::store::UserStore): users and their accounts: names, e-mail, roles,
//! wrong-password counting and throttling, and the validation hot path's one read of a user with
//! all tokens. Written once for both databases, as a macro that [`impl_store!`](super::impl_store)
//! expands for each store; the row readers and imports the bodies use come from there.

/// Implements [`UserStore`](crate::store::UserStore) (see the module notes).
macro_rules! impl_users {
    ($store:ty, $db:ty, $begin:literal, $ilike:literal, $apply_writes:path) => {
        #[async_trait::async_trait]
        impl $crate::store::UserStore for $store {
            async fn insert_user(&self, n: &NewUser, now: UnixTime) -> StoreResult<User> {
                let row = sqlx::query(q!(
                    "INSERT INTO users (username, username_key, display_name, email, phone, \
                     language, otp_required, role, password_hash, created_at, updated_at, \
                     sms_enabled) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)",
                    sql::RETURNING_USER[0], sql::RETURNING_USER[1]
                ))
                .bind(&n.username)
                .bind(n.username.to_lowercase())
                .bind(&n.display_name)
                .bind(&n.email)
                .bind(&n.phone)
                .bind(n.language.as_str())
                .bind(n.otp_required)
                .bind(n.role.as_str())
                .bind(&n.password_hash)
                .bind(now)
                .bind(n.sms_enabled)
                .fetch_one(&mut *self.write_conn().await?)
                .await
                .map_err(StoreError::from_write)?;
                user_row(&row)
            }

            async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
                let [a, b, c] = sql::SELECT_USER;
                sqlx::query(q!(a, b, c, "WHERE id = $1"))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(user_row)
                    .transpose()
            }

            async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
                let [a, b, c] = sql::SELECT_USER;
                sqlx::query(q!(a, b, c, "WHERE username_key = $1"))
                    .bind(username.to_lowercase())
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(user_row)
                    .transpose()
            }

            async fn list_users(
                &self,
                search: &str,
                filter: UserFilter,
                now: UnixTime,
                limit: i64,
                offset: i64,
            ) -> StoreResult<(Vec<User>, i64)> {
                // Escape LIKE wildcards so a search for "a_b" finds that text only.
                let pattern = format!(
                    "%{}%",
                    search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
                );
                let search = concat!(
                    "WHERE (username ", $ilike, " $1 ESCAPE '\\' OR display_name ", $ilike,
                    " $1 ESCAPE '\\' OR email ", $ilike, " $1 ESCAPE '\\') "
                );
                // $2 is `now` in every filter (bound even where unused, so the numbering holds).
                let filter = match filter {
                    UserFilter::All => "AND $2 = $2 ",
                    UserFilter::Locked => sql::USERS_LOCKED,
                    UserFilter::NoDevice => sql::USERS_WITHOUT_DEVICE,
                    UserFilter::Pending => sql::USERS_PENDING,
                };
                let [a, b, c] = sql::SELECT_USER;
                let list = [a, b, c, search, filter, "ORDER BY username_key LIMIT $3 OFFSET $4"].concat();
                let rows = sqlx::query(sqlx::AssertSqlSafe(list))
                    .bind(&pattern)
                    .bind(now)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?;
                let count = ["SELECT COUNT(*) AS n FROM users ", search, filter].concat();
                let total: i64 = sqlx::query(sqlx::AssertSqlSafe(count))
                    .bind(&pattern)
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("n")?;
                Ok((all(rows, user_row)?, total))
            }

            async fn update_user(&self, u: &User) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE users SET display_name = $2, email = $3, phone = $4, sms_enabled = $5, \
                     language = $6, state = $7, otp_required = $8, role = $9, password_hash = $10, \
                     updated_at = $11 WHERE id = $1",
                )
                .bind(u.id.0)
                .bind(&u.display_name)
                .bind(&u.email)
                .bind(&u.phone)
                .bind(u.sms_enabled)
                .bind(u.language.as_str())
                .bind(u.state.as_str())
                .bind(u.otp_required)
                .bind(u.role.as_str())
                .bind(&u.password_hash)
                .bind(u.updated_at)
                .execute(&mut *self.write_conn().await?)
                .await
                .map_err(StoreError::from_write)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
                // Tokens and sessions go with the user (ON DELETE CASCADE), in one statement.
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.0)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn count_active_admins(&self) -> StoreResult<i64> {
                Ok(sqlx::query(
                    "SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND state = 'active' \
                     AND password_hash IS NOT NULL",
                )
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?)
            }

            async fn user_with_tokens(
                &self,
                username: &str,
            ) -> StoreResult<Option<(User, Vec<Token>)>> {
                // One query for the validation hot path: the user and every token.
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql::user_with_tokens_sql()))
                    .bind(username.to_lowercase())
                    .fetch_all(&self.pool)
                    .await?;
                let Some(first) = rows.first() else {
                    return Ok(None);
                };
                let user = user_row(first)?;
                let mut tokens = Vec::with_capacity(rows.len());
                for r in &rows {
                    if r.try_get::<Option<i64>, _>("t_id")?.is_some() {
                        tokens.push(token_row_prefixed(r, "t_")?);
                    }
                }
                Ok(Some((user, tokens)))
            }

            async fn claim_account_attempt(
                &self,
                id: UserId,
                seen: i64,
                until: UnixTime,
                now: UnixTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE users SET fail_count = $2 + 1, throttled_until = $3 \
                     WHERE id = $1 AND fail_count = $2 AND throttled_until <= $4",
                )
                .bind(id.0)
                .bind(seen)
                .bind(until)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn mark_second_factor(&self, id: UserId, now: UnixTime) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE users SET second_factor_at = $2 \
                     WHERE id = $1 AND second_factor_at IS NULL",
                )
                .bind(id.0)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn reset_account_failures(&self, id: UserId) -> StoreResult<()> {
                sqlx::query("UPDATE users SET fail_count = 0, throttled_until = 0 WHERE id = $1")
                    .bind(id.0)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(())
            }

            async fn users_by_email(&self, email: &str) -> StoreResult<Vec<User>> {
                let [a, b, c] = sql::SELECT_USER;
                let rows = sqlx::query(q!(
                    a,
                    b,
                    c,
                    "WHERE LOWER(email) = LOWER($1) AND email <> '' ORDER BY id"
                ))
                .bind(email)
                .fetch_all(&self.pool)
                .await?;
                all(rows, user_row)
            }
        }
    };
}
pub(in crate::store) use impl_users;
