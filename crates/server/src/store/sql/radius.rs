//! [`RadiusStore`](crate::store::RadiusStore): RADIUS clients (secrets sealed by the service),
//! answered challenge States, and the request fingerprint kept with a token's counter. Written
//! once for both databases, as a macro that [`impl_store!`](super::impl_store) expands for each.

/// Implements [`RadiusStore`](crate::store::RadiusStore) (see the module notes).
macro_rules! impl_radius {
    ($store:ty, $db:ty, $begin:literal, $ilike:literal, $apply_writes:path) => {
        fn radius_client_row(r: &DbRow) -> StoreResult<RadiusClient> {
            Ok(RadiusClient {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                address: sql::parse_col("address", r.try_get::<&str, _>("address")?)?,
                sealed_secret: r.try_get("sealed_secret")?,
                sealed_next_secret: r.try_get("sealed_next_secret")?,
                mode: sql::parse_col("mode", r.try_get::<&str, _>("mode")?)?,
                require_message_authenticator: r.try_get("require_message_authenticator")?,
                limit_proxy_state: r.try_get("limit_proxy_state")?,
                passthrough: r.try_get("passthrough")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        #[async_trait::async_trait]
        impl $crate::store::RadiusStore for $store {
            async fn insert_radius_client(&self, c: &RadiusClient) -> StoreResult<RadiusClient> {
                let row = sqlx::query(q!(
                    "INSERT INTO radius_clients (name, address, sealed_secret, \
                     sealed_next_secret, mode, require_message_authenticator, limit_proxy_state, \
                     passthrough, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING ",
                    sql::RADIUS_CLIENT_COLS
                ))
                .bind(&c.name)
                .bind(c.address.to_string())
                .bind(&c.sealed_secret)
                .bind(&c.sealed_next_secret)
                .bind(c.mode.as_str())
                .bind(c.require_message_authenticator)
                .bind(c.limit_proxy_state)
                .bind(c.passthrough)
                .bind(c.created_at)
                .fetch_one(&mut *self.write_conn().await?)
                .await
                .map_err(StoreError::from_write)?;
                radius_client_row(&row)
            }

            async fn radius_clients(&self) -> StoreResult<Vec<RadiusClient>> {
                let rows = sqlx::query(q!(
                    "SELECT ",
                    sql::RADIUS_CLIENT_COLS,
                    " FROM radius_clients ORDER BY name"
                ))
                .fetch_all(&self.pool)
                .await?;
                all(rows, radius_client_row)
            }

            async fn radius_client(&self, name: &str) -> StoreResult<Option<RadiusClient>> {
                sqlx::query(q!(
                    "SELECT ",
                    sql::RADIUS_CLIENT_COLS,
                    " FROM radius_clients WHERE name = $1"
                ))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .as_ref()
                .map(radius_client_row)
                .transpose()
            }

            async fn delete_radius_client(&self, name: &str) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM radius_clients WHERE name = $1")
                    .bind(name)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_radius_secrets(
                &self,
                id: i64,
                sealed: &[u8],
                sealed_next: Option<&[u8]>,
                now: UnixTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE radius_clients SET sealed_secret = $2, sealed_next_secret = $3, \
                     updated_at = $4 WHERE id = $1",
                )
                .bind(id)
                .bind(sealed)
                .bind(sealed_next)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_radius_state(
                &self,
                nonce: &str,
                expires_at: UnixTime,
            ) -> StoreResult<bool> {
                // One insert decides, on every node: the primary key refuses a second answer.
                let done = sqlx::query(
                    "INSERT INTO radius_states_used (nonce, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (nonce) DO NOTHING",
                )
                .bind(nonce)
                .bind(expires_at)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn token_moved_by(
                &self,
                token: TokenId,
                fingerprint: &$crate::store::RequestPrint,
                since: UnixTime,
            ) -> StoreResult<bool> {
                let found: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM tokens WHERE id = $1 AND last_request = $2 \
                     AND last_request <> '' AND last_used_at >= $3",
                )
                .bind(token.0)
                .bind($crate::store::RequestPrint::column(Some(fingerprint)))
                .bind(since)
                .fetch_optional(&self.pool)
                .await?;
                Ok(found.is_some())
            }
        }
    };
}
pub(in crate::store) use impl_radius;
