//! [`AuditStore`](crate::store::AuditStore): group commit (token advances with their audit entries,
//! handed to each database's `apply_writes`) and reading the audit log, with its background user
//! index. Written once for both databases, as a macro that [`impl_store!`](super::impl_store)
//! expands for each store; the row readers and imports the bodies use come from there.

/// Implements [`AuditStore`](crate::store::AuditStore) (see the module notes).
macro_rules! impl_audit {
    ($store:ty, $db:ty, $begin:literal, $ilike:literal, $apply_writes:path) => {
        #[async_trait::async_trait]
        impl $crate::store::AuditStore for $store {
            async fn apply_writes(&self, ops: &[WriteOp]) -> StoreResult<Vec<WriteResult>> {
                $apply_writes(self, ops).await
            }

            async fn list_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
                // Each query names only the filters given, so that the planner can pick the
                // index for them (a `$1 IS NULL OR ...` condition keeps it from using any).
                fn filters(qb: &mut sqlx::QueryBuilder<$db>, f: &AuditFilter, t: &str) {
                    if let Some(action) = &f.action {
                        qb.push(format_args!(" AND {t}action = "))
                            .push_bind(action.clone());
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
                qb.push_bind(upto)
                    .push(" AND username = ")
                    .push_bind(user.clone());
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
                    qb.push_bind(user.clone())
                        .push(" AND i.seq <= ")
                        .push_bind(upto);
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
        }
    };
}
pub(in crate::store) use impl_audit;
