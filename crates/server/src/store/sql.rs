//! The SQL both stores share. SQLite and PostgreSQL accept the same statements here (`$N`
//! placeholders, `RETURNING`, `ON DELETE CASCADE`), so the [`Store`](super::Store) implementation
//! is written once, as a macro expanded for each pool type; what differs is passed in by name:
//! how a write transaction starts, the case-insensitive LIKE, and group commit
//! (`apply_writes`, in sqlite.rs and postgres.rs around the shared batch.rs).

use std::str::FromStr;

use super::StoreError;

/// Parses a text column into one of the model's enums.
pub(super) fn parse_col<T: FromStr<Err = String>>(
    column: &str,
    value: &str,
) -> Result<T, StoreError> {
    value
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(super) fn u_col(column: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column}: negative")))
}

pub(super) fn u32_col(column: &str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt(format!("{column}: out of range")))
}

pub(super) fn algorithm_col(value: &str) -> Result<tessera_otp::HashAlgorithm, StoreError> {
    value
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("algorithm: {value:?}")))
}

const USER_COLS: &str = "id, username, display_name, email, phone, sms_enabled, language, state, \
    otp_required, role, password_hash, fail_count, throttled_until, created_at, updated_at";
const TOKEN_COLS: &str = "id, user_id, serial, kind, name, algorithm, digits, period, \
    sealed_secret, state, next_counter, drift, fail_count, throttled_until, created_at, last_used_at, \
    resync_hint, resync_hint_at";
const APP_COLS: &str = "id, name, key_prefix, key_hash, mode, state, created_at, revoked_at";
const AUDIT_COLS: &str =
    "seq, at, actor, action, target, username, source, result, reason, prev_hash, hash";
/// [`AUDIT_COLS`] of `audit_log a` in a join.
pub(super) const AUDIT_COLS_JOINED: &str = "a.seq, a.at, a.actor, a.action, a.target, a.username, \
    a.source, a.result, a.reason, a.prev_hash, a.hash";

/// `SELECT` of a user and all tokens (token columns as `t_<name>`), by lower-case username.
pub(super) fn user_with_tokens_sql() -> &'static str {
    static S: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        let user: Vec<String> = USER_COLS.split(", ").map(|c| format!("u.{c}")).collect();
        let token: Vec<String> = TOKEN_COLS
            .split(',')
            .map(str::trim)
            .map(|c| format!("t.{c} AS t_{c}"))
            .collect();
        format!(
            "SELECT {}, {} FROM users u LEFT JOIN tokens t ON t.user_id = u.id \
             WHERE u.username_key = $1 ORDER BY t.id",
            user.join(", "),
            token.join(", ")
        )
    })
}

/// Builds a `&'static str` SQL statement from column lists (the lists are constants).
macro_rules! q {
    ($($part:expr),+ $(,)?) => {{
        static S: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        sqlx::AssertSqlSafe(S.get_or_init(|| [$($part),+].concat()).as_str())
    }};
}
pub(super) use q;

pub(super) const SELECT_USER: [&str; 3] = ["SELECT ", USER_COLS, " FROM users "];
pub(super) const SELECT_TOKEN: [&str; 3] = ["SELECT ", TOKEN_COLS, " FROM tokens "];
pub(super) const SELECT_APP: [&str; 3] = ["SELECT ", APP_COLS, " FROM applications "];
pub(super) const SELECT_AUDIT: [&str; 3] = ["SELECT ", AUDIT_COLS, " FROM audit_log "];
pub(super) const RETURNING_USER: [&str; 2] = [" RETURNING ", USER_COLS];
pub(super) const RETURNING_TOKEN: [&str; 2] = [" RETURNING ", TOKEN_COLS];
pub(super) const RETURNING_APP: [&str; 2] = [" RETURNING ", APP_COLS];

/// Implements [`Store`](super::Store) for a struct with a `pool` field of type `sqlx::Pool<$db>`
/// (reads) and a method `write_conn()` that hands out the connection to write on.
macro_rules! impl_store {
    (
        store = $store:ty,
        db = $db:ty,
        migrator = $migrator:expr,
        begin_write = $begin:literal,
        ilike = $ilike:literal,
        writers = $writers:expr,
        apply_writes = $apply_writes:path $(,)?
    ) => {
        use sqlx::Row as _;
        use $crate::model::*;
        use $crate::clock::UnixTime;
        use $crate::store::sql::{self, q};
        use $crate::store::{StoreError, StoreResult, WriteOp, WriteResult};

        type DbRow = <$db as sqlx::Database>::Row;

        fn user_row(r: &DbRow) -> StoreResult<User> {
            Ok(User {
                id: UserId(r.try_get("id")?),
                username: r.try_get("username")?,
                display_name: r.try_get("display_name")?,
                email: r.try_get("email")?,
                phone: r.try_get("phone")?,
                sms_enabled: r.try_get("sms_enabled")?,
                language: sql::parse_col("language", r.try_get::<&str, _>("language")?)?,
                state: sql::parse_col("state", r.try_get::<&str, _>("state")?)?,
                otp_required: r.try_get("otp_required")?,
                role: sql::parse_col("role", r.try_get::<&str, _>("role")?)?,
                password_hash: r.try_get("password_hash")?,
                fail_count: r.try_get("fail_count")?,
                throttled_until: r.try_get("throttled_until")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        fn token_row(r: &DbRow) -> StoreResult<Token> {
            token_row_prefixed(r, "")
        }

        /// A token from columns named `{prefix}id`, `{prefix}serial`, ... (joined queries).
        fn token_row_prefixed(r: &DbRow, p: &str) -> StoreResult<Token> {
            let c = |name: &str| format!("{p}{name}");
            Ok(Token {
                id: TokenId(r.try_get(c("id").as_str())?),
                user_id: UserId(r.try_get(c("user_id").as_str())?),
                serial: Serial(r.try_get(c("serial").as_str())?),
                kind: sql::parse_col("kind", r.try_get::<&str, _>(c("kind").as_str())?)?,
                name: r.try_get(c("name").as_str())?,
                algorithm: sql::algorithm_col(r.try_get::<&str, _>(c("algorithm").as_str())?)?,
                digits: sql::u32_col("digits", r.try_get(c("digits").as_str())?)?,
                period: sql::u_col("period", r.try_get(c("period").as_str())?)?,
                sealed_secret: r.try_get(c("sealed_secret").as_str())?,
                state: sql::parse_col("state", r.try_get::<&str, _>(c("state").as_str())?)?,
                next_counter: r.try_get(c("next_counter").as_str())?,
                drift: r.try_get(c("drift").as_str())?,
                fail_count: r.try_get(c("fail_count").as_str())?,
                throttled_until: r.try_get(c("throttled_until").as_str())?,
                created_at: r.try_get(c("created_at").as_str())?,
                last_used_at: r.try_get(c("last_used_at").as_str())?,
                resync_hint: r.try_get(c("resync_hint").as_str())?,
                resync_hint_at: r.try_get(c("resync_hint_at").as_str())?,
            })
        }

        fn app_row(r: &DbRow) -> StoreResult<Application> {
            Ok(Application {
                id: AppId(r.try_get("id")?),
                name: r.try_get("name")?,
                key_prefix: r.try_get("key_prefix")?,
                key_hash: r.try_get("key_hash")?,
                mode: sql::parse_col("mode", r.try_get::<&str, _>("mode")?)?,
                state: sql::parse_col("state", r.try_get::<&str, _>("state")?)?,
                created_at: r.try_get("created_at")?,
                revoked_at: r.try_get("revoked_at")?,
            })
        }

        fn session_row(r: &DbRow) -> StoreResult<Session> {
            Ok(Session {
                token_hash: r.try_get("token_hash")?,
                user_id: UserId(r.try_get("user_id")?),
                created_at: r.try_get("created_at")?,
                last_seen_at: r.try_get("last_seen_at")?,
                expires_at: r.try_get("expires_at")?,
                reauth_until: r.try_get("reauth_until")?,
            })
        }

        fn audit_row(r: &DbRow) -> StoreResult<AuditEntry> {
            Ok(AuditEntry {
                seq: r.try_get("seq")?,
                event: AuditEvent {
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    username: r.try_get("username")?,
                    source: r.try_get("source")?,
                    result: r.try_get("result")?,
                    reason: r.try_get("reason")?,
                },
                prev_hash: r.try_get("prev_hash")?,
                hash: r.try_get("hash")?,
            })
        }

        fn challenge_row(r: &DbRow) -> StoreResult<Challenge> {
            Ok(Challenge {
                id_hash: r.try_get("id_hash")?,
                user_id: UserId(r.try_get("user_id")?),
                token_id: TokenId(r.try_get("token_id")?),
                code_hash: r.try_get("code_hash")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                attempts: r.try_get("attempts")?,
                used: r.try_get("used")?,
            })
        }

        fn all<T>(rows: Vec<DbRow>, f: fn(&DbRow) -> StoreResult<T>) -> StoreResult<Vec<T>> {
            rows.iter().map(f).collect()
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn writers(&self) -> $crate::store::Writers {
                $writers
            }

            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn migrate(&self) -> StoreResult<()> {
                // Through the pool: nothing else writes while migrations run, and the migrator
                // wants a connection source it can hold across its own transactions.
                $migrator.run(&self.pool).await?;
                Ok(())
            }

            async fn applied_migrations(&self) -> StoreResult<Vec<String>> {
                let rows = sqlx::query(
                    "SELECT description FROM _sqlx_migrations WHERE success ORDER BY version",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| Ok(r.try_get::<String, _>("description")?))
                    .collect()
            }

            async fn insert_user(&self, n: &NewUser, now: UnixTime) -> StoreResult<User> {
                let row = sqlx::query(q!(
                    "INSERT INTO users (username, username_key, display_name, email, phone, \
                     language, otp_required, role, password_hash, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
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
                limit: i64,
                offset: i64,
            ) -> StoreResult<(Vec<User>, i64)> {
                // Escape LIKE wildcards so a search for "a_b" finds that text only.
                let pattern = format!(
                    "%{}%",
                    search.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
                );
                let filter = concat!(
                    "WHERE username ", $ilike, " $1 ESCAPE '\\' OR display_name ", $ilike,
                    " $1 ESCAPE '\\' OR email ", $ilike, " $1 ESCAPE '\\' "
                );
                let [a, b, c] = sql::SELECT_USER;
                let rows = sqlx::query(q!(a, b, c, filter, "ORDER BY username_key LIMIT $2 OFFSET $3"))
                    .bind(&pattern)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?;
                let total: i64 = sqlx::query(q!("SELECT COUNT(*) AS n FROM users ", filter))
                    .bind(&pattern)
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

            async fn record_token_failure(&self, id: TokenId) -> StoreResult<i64> {
                let row = sqlx::query(
                    "UPDATE tokens SET fail_count = fail_count + 1 WHERE id = $1 \
                     RETURNING fail_count",
                )
                .bind(id.0)
                .fetch_optional(&mut *self.write_conn().await?)
                .await?;
                Ok(match row {
                    Some(r) => r.try_get("fail_count")?,
                    None => 0,
                })
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

            async fn insert_app(
                &self,
                name: &str,
                key_prefix: &str,
                key_hash: &str,
                mode: AppMode,
                now: UnixTime,
            ) -> StoreResult<Application> {
                let row = sqlx::query(q!(
                    "INSERT INTO applications (name, key_prefix, key_hash, mode, state, created_at) \
                     VALUES ($1, $2, $3, $4, 'active', $5)",
                    sql::RETURNING_APP[0], sql::RETURNING_APP[1]
                ))
                .bind(name)
                .bind(key_prefix)
                .bind(key_hash)
                .bind(mode.as_str())
                .bind(now)
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

            async fn record_account_failure(&self, id: UserId) -> StoreResult<i64> {
                let row = sqlx::query(
                    "UPDATE users SET fail_count = fail_count + 1 WHERE id = $1 RETURNING fail_count",
                )
                .bind(id.0)
                .fetch_optional(&mut *self.write_conn().await?)
                .await?;
                Ok(match row {
                    Some(r) => r.try_get("fail_count")?,
                    None => 0,
                })
            }

            async fn throttle_account(&self, id: UserId, until: UnixTime) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE users SET throttled_until = CASE WHEN throttled_until > $2 \
                     THEN throttled_until ELSE $2 END WHERE id = $1",
                )
                .bind(id.0)
                .bind(until)
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

            async fn apply_writes(&self, ops: &[WriteOp]) -> StoreResult<Vec<WriteResult>> {
                $apply_writes(self, ops).await
            }

            async fn list_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
                // Each query names only the filters given, so that the planner can pick the
                // index for them (a `$1 IS NULL OR ...` condition keeps it from using any).
                fn filters(qb: &mut sqlx::QueryBuilder<$db>, f: &AuditFilter, t: &str) {
                    if let Some(action) = &f.action {
                        qb.push(format_args!(" AND {t}action = ")).push_bind(action.clone());
                    }
                    // substr compares characters exactly on both databases (LIKE folds case
                    // on SQLite, and a range would follow PostgreSQL's collation).
                    if !f.action_prefixes.is_empty() {
                        qb.push(" AND (");
                        let mut any = qb.separated(" OR ");
                        for p in &f.action_prefixes {
                            let len = i32::try_from(p.chars().count()).unwrap_or(i32::MAX);
                            any.push(format_args!("substr({t}action, 1, "))
                                .push_bind_unseparated(len)
                                .push_unseparated(") = ")
                                .push_bind_unseparated(p.clone());
                        }
                        qb.push(")");
                    }
                    if let Some(since) = f.since {
                        qb.push(format_args!(" AND {t}at >= ")).push_bind(since);
                    }
                    if let Some(until) = f.until {
                        qb.push(format_args!(" AND {t}at < ")).push_bind(until);
                    }
                    if let Some(before) = f.before_seq {
                        qb.push(format_args!(" AND {t}seq < ")).push_bind(before);
                    }
                }
                let [a, b, c] = sql::SELECT_AUDIT;
                let Some(user) = &f.username else {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!("{a}{b}{c}WHERE 1 = 1"));
                    filters(&mut qb, f, "");
                    qb.push(" ORDER BY seq DESC LIMIT ").push_bind(f.limit);
                    return all(qb.build().fetch_all(&self.pool).await?, audit_row);
                };
                // Entries up to `upto` are in the index; newer ones are read from the log's
                // tail. Reading `upto` once and using it on both sides leaves no gap and no
                // overlap, even if the index grows in between (it only ever grows).
                let upto: i64 =
                    sqlx::query_scalar("SELECT upto FROM audit_user_index_state WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?;
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!("{a}{b}{c}WHERE seq > "));
                qb.push_bind(upto).push(" AND username = ").push_bind(user.clone());
                filters(&mut qb, f, "");
                qb.push(" ORDER BY seq DESC LIMIT ").push_bind(f.limit);
                let mut entries = all(qb.build().fetch_all(&self.pool).await?, audit_row)?;
                let wanted = f.limit - entries.len() as i64;
                if wanted > 0 {
                    // CROSS JOIN: SQLite then reads the user's index range first, newest first,
                    // and stops after `wanted` matches (PostgreSQL plans it as an inner join).
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {} FROM audit_user_index i CROSS JOIN audit_log a \
                         WHERE a.seq = i.seq AND i.username = ",
                        sql::AUDIT_COLS_JOINED
                    ));
                    qb.push_bind(user.clone()).push(" AND i.seq <= ").push_bind(upto);
                    filters(&mut qb, f, "a.");
                    qb.push(" ORDER BY i.seq DESC LIMIT ").push_bind(wanted);
                    entries.extend(all(qb.build().fetch_all(&self.pool).await?, audit_row)?);
                }
                Ok(entries)
            }

            async fn index_audit(&self, max: i64) -> StoreResult<u64> {
                let mut conn = self.write_conn().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                let upto: i64 =
                    sqlx::query_scalar("SELECT upto FROM audit_user_index_state WHERE id = 1")
                        .fetch_one(&mut *tx)
                        .await?;
                // Appends commit in seq order (each one holds the audit head until it commits),
                // so every entry up to the newest one seen here is committed and visible.
                let newest: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(seq) FROM \
                     (SELECT seq FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2) n",
                )
                .bind(upto)
                .bind(max)
                .fetch_one(&mut *tx)
                .await?;
                let Some(newest) = newest else {
                    return Ok(0);
                };
                // The compare-and-set claims the range: a concurrent indexer that read the same
                // `upto` waits for this row and then changes nothing.
                let claimed = sqlx::query(
                    "UPDATE audit_user_index_state SET upto = $1 WHERE id = 1 AND upto = $2",
                )
                .bind(newest)
                .bind(upto)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 {
                    return Ok(0);
                }
                // In index order, so that each user's index page is written once.
                let added = sqlx::query(
                    "INSERT INTO audit_user_index (username, seq) \
                     SELECT username, seq FROM audit_log WHERE seq > $1 AND seq <= $2 \
                     ORDER BY username, seq",
                )
                .bind(upto)
                .bind(newest)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(added)
            }

            async fn audit_after(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
                let [a, b, c] = sql::SELECT_AUDIT;
                let rows = sqlx::query(q!(a, b, c, "WHERE seq > $1 ORDER BY seq LIMIT $2"))
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                all(rows, audit_row)
            }

            async fn audit_head(&self) -> StoreResult<(i64, String)> {
                let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?;
                Ok((row.try_get("seq")?, row.try_get("hash")?))
            }

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
                let row = sqlx::query(
                    "SELECT id_hash, user_id, created_at, expires_at, used_at, superseded, \
                     failed_attempts, token_id FROM invitations WHERE id_hash = $1",
                )
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await?;
                let Some(r) = row else {
                    return Ok(None);
                };
                Ok(Some(Invitation {
                    id_hash: r.try_get("id_hash")?,
                    user_id: UserId(r.try_get("user_id")?),
                    created_at: r.try_get("created_at")?,
                    expires_at: r.try_get("expires_at")?,
                    used_at: r.try_get("used_at")?,
                    superseded: r.try_get("superseded")?,
                    failed_attempts: r.try_get("failed_attempts")?,
                    token_id: r.try_get::<Option<i64>, _>("token_id")?.map(TokenId),
                }))
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

            async fn purge_expired(
                &self,
                now: UnixTime,
                idle_since: UnixTime,
                challenges_before: UnixTime,
                links_before: UnixTime,
            ) -> StoreResult<u64> {
                let mut conn = self.write_conn().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                let mut removed = 0;
                for sql in [
                    "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
                    "DELETE FROM web_sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
                ] {
                    removed += sqlx::query(sql)
                        .bind(now)
                        .bind(idle_since)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                removed += sqlx::query(
                    "DELETE FROM challenges WHERE expires_at <= $1 AND created_at < $2",
                )
                .bind(now)
                .bind(challenges_before)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // Invitations first: a recovery request goes only once its invitation is gone.
                for sql in [
                    "DELETE FROM invitations WHERE expires_at < $1",
                    "DELETE FROM reset_requests WHERE expires_at < $1",
                    "DELETE FROM block_links WHERE expires_at < $1",
                    "DELETE FROM recovery_requests WHERE expires_at < $1 AND NOT EXISTS \
                     (SELECT 1 FROM invitations i WHERE i.id_hash = recovery_requests.invitation_hash)",
                ] {
                    removed += sqlx::query(sql)
                        .bind(links_before)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(removed)
            }

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
                ] {
                    sqlx::query(statement)
                        .bind(user.0)
                        .execute(&mut *tx)
                        .await?;
                }
                let updated = sqlx::query(
                    "UPDATE users SET password_hash = $2, password_hint = $3, fail_count = 0, \
                     throttled_until = 0, updated_at = $4 WHERE id = $1",
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

        fn block_link_row(r: &DbRow) -> StoreResult<crate::model::BlockLink> {
            let token: Option<i64> = r.try_get("token_id")?;
            Ok(crate::model::BlockLink {
                id_hash: r.try_get("id_hash")?,
                user_id: UserId(r.try_get("user_id")?),
                token_id: token.map(TokenId),
                event: r.try_get("event")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                used_at: r.try_get("used_at")?,
            })
        }

        fn recovery_request_row(r: &DbRow) -> StoreResult<crate::model::RecoveryRequest> {
            Ok(crate::model::RecoveryRequest {
                id_hash: r.try_get("id_hash")?,
                user_id: UserId(r.try_get("user_id")?),
                code_hash: r.try_get("code_hash")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                attempts: r.try_get("attempts")?,
                used_at: r.try_get("used_at")?,
                invitation_hash: r.try_get("invitation_hash")?,
                source: r.try_get("source")?,
            })
        }
    };
}
pub(super) use impl_store;

#[cfg(test)]
mod tests {
    #[test]
    fn joined_audit_columns_are_the_audit_columns() {
        let prefixed: Vec<String> = super::AUDIT_COLS
            .split(", ")
            .map(|c| format!("a.{c}"))
            .collect();
        assert_eq!(super::AUDIT_COLS_JOINED, prefixed.join(", "));
    }
}
