//! [`InventoryStore`](crate::store::InventoryStore): hardware tokens in stock and the imports
//! they came from. Written once for both databases, as a macro that
//! [`impl_store!`](super::impl_store) expands for each store.
//!
//! An import is one transaction of multi-row `INSERT … ON CONFLICT (serial)` statements: a
//! conflict either does nothing or (update) raises the counter with a `CASE` (portable, unlike
//! SQLite's `MAX(a, b)` and PostgreSQL's `GREATEST`) and never touches the seed; `RETURNING
//! serial, import_id` tells new rows (this import's id) from updated ones (an older id).

/// Rows per `INSERT` statement: 14 values each stays far below both databases' parameter limits.
pub(in crate::store) const IMPORT_CHUNK: usize = 500;

pub(in crate::store) const INVENTORY_COLS: &str = "id, serial, kind, algorithm, digits, period, \
    sealed_secret, counter, drift, manufacturer, model, not_before, not_after, state, import_id, \
    token_id, assigned_at, created_at, updated_at";

pub(in crate::store) const IMPORT_COLS: &str = "id, actor, format, file_sha256, created_at, \
    imported, updated, existing, skipped, report";

/// Implements [`InventoryStore`](crate::store::InventoryStore) (see the module notes).
macro_rules! impl_inventory {
    ($store:ty, $db:ty, $begin:literal, $ilike:literal, $apply_writes:path) => {
        fn inventory_row(r: &DbRow) -> StoreResult<InventoryToken> {
            Ok(InventoryToken {
                id: r.try_get("id")?,
                serial: Serial(r.try_get("serial")?),
                kind: sql::parse_col("kind", r.try_get::<&str, _>("kind")?)?,
                algorithm: sql::algorithm_col(r.try_get::<&str, _>("algorithm")?)?,
                digits: sql::u32_col("digits", r.try_get("digits")?)?,
                period: sql::u_col("period", r.try_get("period")?)?,
                sealed_secret: r.try_get("sealed_secret")?,
                counter: r.try_get("counter")?,
                drift: r.try_get("drift")?,
                manufacturer: r.try_get("manufacturer")?,
                model: r.try_get("model")?,
                not_before: r.try_get("not_before")?,
                not_after: r.try_get("not_after")?,
                state: sql::parse_col("state", r.try_get::<&str, _>("state")?)?,
                import_id: r.try_get("import_id")?,
                token_id: r.try_get::<Option<i64>, _>("token_id")?.map(TokenId),
                assigned_at: r.try_get("assigned_at")?,
                created_at: r.try_get("created_at")?,
                updated_at: r.try_get("updated_at")?,
            })
        }

        fn import_row(r: &DbRow) -> StoreResult<ImportRecord> {
            Ok(ImportRecord {
                id: r.try_get("id")?,
                actor: r.try_get("actor")?,
                format: r.try_get("format")?,
                file_sha256: r.try_get("file_sha256")?,
                created_at: r.try_get("created_at")?,
                imported: r.try_get("imported")?,
                updated: r.try_get("updated")?,
                existing: r.try_get("existing")?,
                skipped: r.try_get("skipped")?,
                report: r.try_get("report")?,
            })
        }

        #[async_trait::async_trait]
        impl $crate::store::InventoryStore for $store {
            async fn import_inventory(
                &self,
                import: &$crate::store::NewImport,
                feed: &mut dyn $crate::store::InventoryFeed,
                update: bool,
                dry_run: bool,
            ) -> StoreResult<$crate::store::ImportEnd> {
                use $crate::store::{FeedItem, ImportEnd};
                use $crate::store::sql::inventory::IMPORT_CHUNK;
                let mut conn = self.write_conn().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                let import_id: i64 = sqlx::query(
                    "INSERT INTO imports (actor, format, file_sha256, created_at) \
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(&import.actor)
                .bind(&import.format)
                .bind(&import.file_sha256)
                .bind(import.now)
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?;
                let conflict = if update {
                    " ON CONFLICT (serial) DO UPDATE SET \
                     counter = CASE WHEN excluded.counter > inventory_tokens.counter \
                     THEN excluded.counter ELSE inventory_tokens.counter END, \
                     manufacturer = excluded.manufacturer, model = excluded.model, \
                     not_before = excluded.not_before, not_after = excluded.not_after, \
                     updated_at = excluded.updated_at \
                     WHERE inventory_tokens.state = 'in_stock' RETURNING serial, import_id"
                } else {
                    " ON CONFLICT (serial) DO NOTHING RETURNING serial, import_id"
                };
                let (mut inserted, mut updated, mut existing) = (0i64, 0i64, 0i64);
                let mut chunk: Vec<NewInventoryToken> = Vec::with_capacity(IMPORT_CHUNK);
                loop {
                    let mut end = false;
                    while chunk.len() < IMPORT_CHUNK {
                        match feed.next_row() {
                            FeedItem::Row(row) => chunk.push(row),
                            FeedItem::End => {
                                end = true;
                                break;
                            }
                            FeedItem::Abort => {
                                tx.rollback().await?;
                                return Ok(ImportEnd::Aborted);
                            }
                        }
                    }
                    if !chunk.is_empty() {
                        let mut insert = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO inventory_tokens (serial, kind, algorithm, digits, \
                             period, sealed_secret, counter, drift, manufacturer, model, \
                             not_before, not_after, import_id, created_at, updated_at) ",
                        );
                        insert.push_values(&chunk, |mut b, t| {
                            b.push_bind(&t.serial.0)
                                .push_bind(t.kind.as_str())
                                .push_bind(t.algorithm.as_str())
                                .push_bind(i64::from(t.digits))
                                .push_bind(i64::try_from(t.period).unwrap_or(i64::MAX))
                                .push_bind(&t.sealed_secret)
                                .push_bind(t.counter)
                                .push_bind(t.drift)
                                .push_bind(&t.manufacturer)
                                .push_bind(&t.model)
                                .push_bind(t.not_before)
                                .push_bind(t.not_after)
                                .push_bind(import_id)
                                .push_bind(import.now)
                                .push_bind(import.now);
                        });
                        insert.push(conflict);
                        let rows = insert.build().fetch_all(&mut *tx).await?;
                        let mut written = std::collections::HashMap::with_capacity(rows.len());
                        for r in &rows {
                            let serial: String = r.try_get("serial")?;
                            let id: Option<i64> = r.try_get("import_id")?;
                            written.insert(serial, id == Some(import_id));
                        }
                        for t in chunk.drain(..) {
                            match written.get(&t.serial.0) {
                                Some(true) => inserted += 1,
                                Some(false) => {
                                    updated += 1;
                                    feed.existing(&t.serial, true);
                                }
                                None => {
                                    existing += 1;
                                    feed.existing(&t.serial, false);
                                }
                            }
                        }
                    }
                    if end {
                        break;
                    }
                }
                let summary = feed.summary();
                sqlx::query(
                    "UPDATE imports SET imported = $2, updated = $3, existing = $4, \
                     skipped = $5, report = $6, file_sha256 = $7 WHERE id = $1",
                )
                .bind(import_id)
                .bind(inserted)
                .bind(updated)
                .bind(existing)
                .bind(summary.skipped)
                .bind(&summary.report)
                .bind(&summary.file_sha256)
                .execute(&mut *tx)
                .await?;
                if dry_run {
                    tx.rollback().await?;
                } else {
                    tx.commit().await?;
                }
                Ok(ImportEnd::Done {
                    import_id,
                    inserted,
                    updated,
                    existing,
                })
            }

            async fn inventory_token(&self, serial: &str) -> StoreResult<Option<InventoryToken>> {
                let cols = $crate::store::sql::inventory::INVENTORY_COLS;
                sqlx::query(q!("SELECT ", cols, " FROM inventory_tokens WHERE serial = $1"))
                    .bind(serial)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(inventory_row)
                    .transpose()
            }

            async fn list_inventory(
                &self,
                filter: &InventoryFilter,
                limit: i64,
                offset: i64,
            ) -> StoreResult<(Vec<InventoryToken>, i64)> {
                let cols = $crate::store::sql::inventory::INVENTORY_COLS;
                // Escape LIKE wildcards so a search for "a_b" finds that text only.
                let pattern = format!(
                    "%{}%",
                    filter
                        .search
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_")
                );
                let state = filter.state.map(|s| s.as_str()).unwrap_or("");
                let kind = filter.kind.map(|k| k.as_str()).unwrap_or("");
                let cond = concat!(
                    " WHERE (serial ", $ilike, " $1 ESCAPE '\\' OR manufacturer ", $ilike,
                    " $1 ESCAPE '\\' OR model ", $ilike, " $1 ESCAPE '\\') ",
                    "AND ($2 = '' OR state = $2) AND ($3 = '' OR kind = $3) ",
                    "AND ($4 = '' OR manufacturer = $4) "
                );
                let list = ["SELECT ", cols, " FROM inventory_tokens", cond,
                    "ORDER BY serial LIMIT $5 OFFSET $6"].concat();
                let rows = sqlx::query(sqlx::AssertSqlSafe(list))
                    .bind(&pattern)
                    .bind(state)
                    .bind(kind)
                    .bind(&filter.manufacturer)
                    .bind(limit)
                    .bind(offset)
                    .fetch_all(&self.pool)
                    .await?;
                let count = ["SELECT COUNT(*) AS n FROM inventory_tokens", cond].concat();
                let total: i64 = sqlx::query(sqlx::AssertSqlSafe(count))
                    .bind(&pattern)
                    .bind(state)
                    .bind(kind)
                    .bind(&filter.manufacturer)
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("n")?;
                Ok((all(rows, inventory_row)?, total))
            }

            async fn inventory_after(
                &self,
                after: i64,
                limit: i64,
            ) -> StoreResult<Vec<InventoryToken>> {
                let cols = $crate::store::sql::inventory::INVENTORY_COLS;
                let rows = sqlx::query(q!(
                    "SELECT ", cols, " FROM inventory_tokens WHERE id > $1 \
                     AND state = 'in_stock' ORDER BY id LIMIT $2"
                ))
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                all(rows, inventory_row)
            }

            async fn assign_inventory(
                &self,
                serial: &str,
                n: &NewToken,
                drift: i64,
                first_use_window: i64,
                now: UnixTime,
            ) -> StoreResult<Option<Token>> {
                let mut conn = self.write_conn().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                let period = i64::try_from(n.period)
                    .map_err(|_| StoreError::Corrupt("period out of range".into()))?;
                let row = sqlx::query(q!(
                    "INSERT INTO tokens (user_id, serial, kind, name, algorithm, digits, period, \
                     sealed_secret, state, next_counter, drift, created_at, first_use_window) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
                .bind(drift)
                .bind(now)
                .bind(first_use_window)
                .fetch_one(&mut *tx)
                .await
                .map_err(StoreError::from_write)?;
                let token = token_row(&row)?;
                let done = sqlx::query(
                    "UPDATE inventory_tokens SET state = 'assigned', token_id = $2, \
                     assigned_at = $3, updated_at = $3 WHERE serial = $1 AND state = 'in_stock'",
                )
                .bind(serial)
                .bind(token.id.0)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                tx.commit().await?;
                Ok(Some(token))
            }

            async fn retire_inventory(&self, serial: &str, now: UnixTime) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE inventory_tokens SET state = 'retired', updated_at = $2 \
                     WHERE serial = $1 AND state = 'in_stock'",
                )
                .bind(serial)
                .bind(now)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn imports(&self, limit: i64) -> StoreResult<Vec<ImportRecord>> {
                let cols = $crate::store::sql::inventory::IMPORT_COLS;
                let rows = sqlx::query(q!("SELECT ", cols, " FROM imports ORDER BY id DESC LIMIT $1"))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                all(rows, import_row)
            }

            async fn inventory_manufacturers(&self) -> StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT DISTINCT manufacturer FROM inventory_tokens WHERE manufacturer <> '' \
                     ORDER BY manufacturer LIMIT 200",
                )
                .fetch_all(&self.pool)
                .await?)
            }

            async fn stage_upload(
                &self,
                session_hash: &str,
                sealed: &[u8],
                expires_at: UnixTime,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO import_uploads (session_hash, sealed, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (session_hash) DO UPDATE SET sealed = excluded.sealed, \
                     expires_at = excluded.expires_at",
                )
                .bind(session_hash)
                .bind(sealed)
                .bind(expires_at)
                .execute(&mut *self.write_conn().await?)
                .await?;
                Ok(())
            }

            async fn staged_upload(
                &self,
                session_hash: &str,
                now: UnixTime,
            ) -> StoreResult<Option<Vec<u8>>> {
                Ok(sqlx::query_scalar(
                    "SELECT sealed FROM import_uploads WHERE session_hash = $1 AND expires_at > $2",
                )
                .bind(session_hash)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn drop_staged_upload(&self, session_hash: &str) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM import_uploads WHERE session_hash = $1")
                    .bind(session_hash)
                    .execute(&mut *self.write_conn().await?)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn import_record(&self, id: i64) -> StoreResult<Option<ImportRecord>> {
                let cols = $crate::store::sql::inventory::IMPORT_COLS;
                sqlx::query(q!("SELECT ", cols, " FROM imports WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(import_row)
                    .transpose()
            }
        }
    };
}
pub(in crate::store) use impl_inventory;
