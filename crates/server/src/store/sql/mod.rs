//! The SQL both stores share. SQLite and PostgreSQL accept the same statements here (`$N`
//! placeholders, `RETURNING`, `ON DELETE CASCADE`), so the [`Store`](super::Store) implementation
//! is written once, as a macro expanded for each pool type; what differs is passed in by name:
//! how a write transaction starts, the case-insensitive LIKE, how to ask whether a table exists,
//! and group commit (`apply_writes`, in sqlite.rs and postgres.rs around the shared batch.rs).
//!
//! [`impl_store!`] holds the row readers and `Store`'s own methods (migrations, housekeeping) and
//! expands one macro per resource trait, each in the file of its resource (users.rs, tokens.rs,
//! apps.rs, sessions.rs, audit.rs, enrollment.rs, recovery.rs, radius.rs).

pub(super) mod apps;
pub(super) mod audit;
pub(super) mod enrollment;
pub(super) mod inventory;
pub(super) mod keys;
pub(super) mod maintenance;
pub(super) mod radius;
pub(super) mod recovery;
pub(super) mod sessions;
pub(super) mod tokens;
pub(super) mod users;
pub(super) mod vault_backups;

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
    otp_required, role, password_hash, fail_count, throttled_until, second_factor_at, created_at, \
    updated_at";
const TOKEN_COLS: &str = "id, user_id, serial, kind, name, algorithm, digits, period, \
    sealed_secret, state, next_counter, drift, fail_count, throttled_until, created_at, last_used_at, \
    resync_hint, resync_hint_at, first_use_window";
const APP_COLS: &str =
    "id, name, key_prefix, key_hash, mode, passthrough, state, created_at, revoked_at";
pub(super) const RADIUS_CLIENT_COLS: &str = "id, name, address, sealed_secret, \
    sealed_next_secret, mode, require_message_authenticator, limit_proxy_state, passthrough, \
    created_at, updated_at";
const AUDIT_COLS: &str =
    "seq, chain, at, actor, action, target, username, source, result, reason, prev_hash, hash";
/// [`AUDIT_COLS`] of `audit_log a` in a join.
pub(super) const AUDIT_COLS_JOINED: &str = "a.seq, a.chain, a.at, a.actor, a.action, a.target, \
    a.username, a.source, a.result, a.reason, a.prev_hash, a.hash";

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

/// Filters of [`list_users`](crate::store::Store::list_users), after its search condition; `$2`
/// is the time. Locked: the account or a device is throttled or locked, or self-service is
/// locked.
pub(super) const USERS_LOCKED: &str = "AND (users.throttled_until > $2 OR users.self_service_locked \
    OR EXISTS (SELECT 1 FROM tokens t WHERE t.user_id = users.id \
    AND (t.state = 'locked' OR t.throttled_until > $2))) ";
/// Must use a second factor (required, or had one) and no device can give a code: none active
/// or locked whose codes come from a seed, or go to a phone number or address the user has.
/// The same rule as [`Token::works_for`](crate::model::Token::works_for), locked devices counted.
pub(super) const USERS_WITHOUT_DEVICE: &str = "AND users.state = 'active' AND $2 = $2 \
    AND (users.otp_required OR users.second_factor_at IS NOT NULL) \
    AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.user_id = users.id \
    AND t.state IN ('active', 'locked') AND (t.kind IN ('totp', 'hotp') \
    OR (t.kind = 'sms' AND users.phone <> '' AND users.sms_enabled) \
    OR (t.kind = 'email' AND users.email <> ''))) ";
/// An enrollment link that still works.
pub(super) const USERS_PENDING: &str = "AND EXISTS (SELECT 1 FROM invitations i \
    WHERE i.user_id = users.id AND i.used_at IS NULL AND NOT i.superseded AND i.expires_at > $2) ";
pub(super) const INVITATION_SELECT: &str = "SELECT id_hash, user_id, created_at, expires_at, \
    used_at, superseded, failed_attempts, token_id FROM invitations ";
pub(super) const SELECT_USER: [&str; 3] = ["SELECT ", USER_COLS, " FROM users "];
pub(super) const SELECT_TOKEN: [&str; 3] = ["SELECT ", TOKEN_COLS, " FROM tokens "];
pub(super) const SELECT_APP: [&str; 3] = ["SELECT ", APP_COLS, " FROM applications "];
pub(super) const SELECT_AUDIT: [&str; 3] = ["SELECT ", AUDIT_COLS, " FROM audit_log "];
pub(super) const RETURNING_USER: [&str; 2] = [" RETURNING ", USER_COLS];
pub(super) const RETURNING_TOKEN: [&str; 2] = [" RETURNING ", TOKEN_COLS];
pub(super) const RETURNING_APP: [&str; 2] = [" RETURNING ", APP_COLS];

/// The condition (after `AND`) for audit entries not in the user index yet, given each chain's
/// mark (`audit_index_chains`, by chain): past its chain's mark, or of a chain claimed after the
/// marks were read. `t` prefixes the columns. With one chain, also a plain lower bound on `seq`,
/// which lets SQLite read the tail as one range of its row ids (with several, a chain idle for
/// long would pull that bound far back; PostgreSQL reads each chain's tail on its index).
pub(super) fn unindexed<DB: sqlx::Database>(
    qb: &mut sqlx::QueryBuilder<DB>,
    marks: &[(i64, i64)],
    t: &str,
) where
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    if let [(_, upto)] = marks {
        qb.push(format_args!(" AND {t}seq > ")).push_bind(*upto);
    }
    qb.push(" AND (");
    for (chain, upto) in marks {
        qb.push(format_args!("({t}chain = "))
            .push_bind(*chain)
            .push(format_args!(" AND {t}seq > "))
            .push_bind(*upto)
            .push(") OR ");
    }
    let newest = marks.iter().map(|m| m.0).max().unwrap_or(0);
    qb.push(format_args!("{t}chain > "))
        .push_bind(newest)
        .push(")");
}

/// The condition (after `AND`) for audit entries in the user index: at or before their chain's
/// mark (see [`unindexed`]).
pub(super) fn indexed<DB: sqlx::Database>(
    qb: &mut sqlx::QueryBuilder<DB>,
    marks: &[(i64, i64)],
    t: &str,
) where
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    qb.push(" AND (");
    let mut any = qb.separated(" OR ");
    for (chain, upto) in marks {
        any.push(format_args!("({t}chain = "))
            .push_bind_unseparated(*chain)
            .push_unseparated(format_args!(" AND {t}seq <= "))
            .push_bind_unseparated(*upto)
            .push_unseparated(")");
    }
    if marks.is_empty() {
        any.push("1 = 0");
    }
    qb.push(")");
}

/// Audit entries added to the user index in one transaction (`index_audit`): about 1 ms of
/// the writer's time each on a 2-core machine, so that a validation waiting behind one is not
/// held up for long.
pub(super) const INDEX_ENTRIES_PER_TRANSACTION: usize = 250;
/// Rows per `INSERT` statement there (two parameters each).
pub(super) const INDEX_ROWS_PER_INSERT: usize = 250;

/// Implements [`Store`](super::Store) for a struct with a `pool` field of type `sqlx::Pool<$db>`
/// (reads) and a method `write_conn()` that hands out the connection to write on.
macro_rules! impl_store {
    (
        store = $store:ty,
        db = $db:ty,
        migrator = $migrator:expr,
        begin_write = $begin:literal,
        ilike = $ilike:literal,
        table_exists = $table_exists:literal,
        after_keying = $after_keying:literal,
        writers = $writers:expr,
        writer_chains = $writer_chains:path,
        kind = $kind:expr,
        snapshot = $snapshot:path,
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
                second_factor_at: r.try_get("second_factor_at")?,
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
                first_use_window: r.try_get(c("first_use_window").as_str())?,
            })
        }

        fn app_row(r: &DbRow) -> StoreResult<Application> {
            Ok(Application {
                id: AppId(r.try_get("id")?),
                name: r.try_get("name")?,
                key_prefix: r.try_get("key_prefix")?,
                key_hash: r.try_get("key_hash")?,
                mode: sql::parse_col("mode", r.try_get::<&str, _>("mode")?)?,
                passthrough: r.try_get("passthrough")?,
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
                chain: r.try_get("chain")?,
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

        fn invitation_row(r: &DbRow) -> StoreResult<Invitation> {
            Ok(Invitation {
                id_hash: r.try_get("id_hash")?,
                user_id: UserId(r.try_get("user_id")?),
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                used_at: r.try_get("used_at")?,
                superseded: r.try_get("superseded")?,
                failed_attempts: r.try_get("failed_attempts")?,
                token_id: r.try_get::<Option<i64>, _>("token_id")?.map(TokenId),
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

            fn use_writer_chains(&self) {
                $writer_chains(self)
            }

            fn kind(&self) -> $crate::store::DatabaseKind {
                $kind
            }

            fn pool_stats(&self) -> (u32, usize) {
                (self.pool.size(), self.pool.num_idle())
            }

            async fn snapshot_to(&self, path: &std::path::Path) -> StoreResult<()> {
                $snapshot(self, path).await
            }

            async fn ping(&self) -> StoreResult<()> {
                // A write, not `SELECT 1`: readiness means the database takes writes too.
                sqlx::query("UPDATE readiness SET writes = writes + 1 WHERE id = 1")
                    .execute(&self.pool)
                    .await?;
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
                removed += sqlx::query(
                    "DELETE FROM import_uploads WHERE expires_at <= $1 OR session_hash NOT IN \
                     (SELECT id_hash FROM web_sessions)",
                )
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                removed += sqlx::query("DELETE FROM radius_states_used WHERE expires_at < $1")
                    .bind(now)
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
        }

        // Each resource's macro takes the same arguments as this one, in the same order (the
        // audit log's also whether a table exists, for keying the chain once).
        $crate::store::sql::users::impl_users!($store, $db, $begin, $ilike, $apply_writes);
        $crate::store::sql::tokens::impl_tokens!($store, $db, $begin, $ilike, $apply_writes);
        $crate::store::sql::apps::impl_apps!($store, $db, $begin, $ilike, $apply_writes);
        $crate::store::sql::sessions::impl_sessions!($store, $db, $begin, $ilike, $apply_writes);
        $crate::store::sql::audit::impl_audit!(
            $store,
            $db,
            $begin,
            $ilike,
            $apply_writes,
            $table_exists,
            $after_keying
        );
        $crate::store::sql::enrollment::impl_enrollment!($store, $db, $begin, $ilike, $apply_writes);
        $crate::store::sql::recovery::impl_recovery!($store, $db, $begin, $ilike, $apply_writes);
        $crate::store::sql::keys::impl_keys!($store, $db, $begin, $ilike, $apply_writes);
        $crate::store::sql::vault_backups::impl_vault_backups!($store, $db, $begin, $ilike, $apply_writes);
        $crate::store::sql::maintenance::impl_maintenance!(
            $store,
            $db,
            $begin,
            $ilike,
            $apply_writes
        );
        $crate::store::sql::radius::impl_radius!($store, $db, $begin, $ilike, $apply_writes);
        $crate::store::sql::inventory::impl_inventory!($store, $db, $begin, $ilike, $apply_writes);

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
