//! [`MaintenanceStore`](crate::store::MaintenanceStore): what a restore changes in a copy of the
//! database before it is used (see `service/backup.rs`). Written once for both databases, as a
//! macro that [`impl_store!`](super::impl_store) expands for each store.

/// The first TOTP step a restored token may accept at `$1` (Unix time): past the forward window
/// (`$2` steps) and the token's learned drift when it is ahead, so that no code that was shown
/// up to now can be accepted again, whenever it was used.
pub(in crate::store) const TOTP_FIRST_STEP: &str =
    "($1 / period + (CASE WHEN drift > 0 THEN drift ELSE 0 END) + $2 + 1)";

/// Implements [`MaintenanceStore`](crate::store::MaintenanceStore) (see the module notes).
macro_rules! impl_maintenance {
    ($store:ty, $db:ty, $begin:literal, $ilike:literal, $apply_writes:path) => {
        #[async_trait::async_trait]
        impl $crate::store::MaintenanceStore for $store {
            async fn roll_forward(
                &self,
                now: UnixTime,
                totp_forward: i64,
                hotp_advance: i64,
            ) -> StoreResult<$crate::store::RolledForward> {
                use $crate::store::sql::maintenance::TOTP_FIRST_STEP;
                let mut conn = self.write_conn().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                let mut done = $crate::store::RolledForward::default();
                done.totp_tokens = sqlx::query(q!(
                    "UPDATE tokens SET next_counter = ",
                    TOTP_FIRST_STEP,
                    ", resync_hint = NULL WHERE kind = 'totp' AND period > 0 AND next_counter < ",
                    TOTP_FIRST_STEP
                ))
                .bind(now)
                .bind(totp_forward)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                done.hotp_tokens = sqlx::query(
                    "UPDATE tokens SET next_counter = next_counter + $1, resync_hint = NULL \
                     WHERE kind = 'hotp'",
                )
                .bind(hotp_advance)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                for sql in ["DELETE FROM sessions", "DELETE FROM web_sessions"] {
                    done.sessions += sqlx::query(sql).execute(&mut *tx).await?.rows_affected();
                }
                // Mailed links and sent codes still open in the copy may have been used since.
                for sql in [
                    "UPDATE invitations SET expires_at = $1 WHERE used_at IS NULL AND expires_at > $1",
                    "UPDATE reset_requests SET expires_at = $1 WHERE used_at IS NULL AND expires_at > $1",
                    "UPDATE block_links SET expires_at = $1 WHERE used_at IS NULL AND expires_at > $1",
                    "UPDATE recovery_requests SET expires_at = $1 \
                     WHERE used_at IS NULL AND expires_at > $1",
                    "UPDATE challenges SET expires_at = $1 WHERE NOT used AND expires_at > $1",
                ] {
                    done.links += sqlx::query(sql)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(done)
            }
        }
    };
}
pub(crate) use impl_maintenance;
