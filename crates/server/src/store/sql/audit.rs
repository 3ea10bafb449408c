//! [`AuditStore`](crate::store::AuditStore): group commit (token advances with their audit entries,
//! handed to each database's `apply_writes`) and reading the audit log, with its background user
//! index, and keying a log written before the chain was keyed (the walk itself is in
//! `store/keying.rs`). Written once for both databases, as a macro that
//! [`impl_store!`](super::impl_store) expands for each store; the row readers and imports the
//! bodies use come from there.

/// Implements [`AuditStore`](crate::store::AuditStore) (see the module notes).
macro_rules! impl_audit {
    (
        $store:ty,
        $db:ty,
        $begin:literal,
        $ilike:literal,
        $apply_writes:path,
        $table_exists:literal,
        $after_keying:literal
    ) => {
        fn head_row(r: &DbRow) -> StoreResult<AuditHead> {
            Ok(AuditHead {
                chain: r.try_get("id")?,
                seq: r.try_get("entry")?,
                position: r.try_get("seq")?,
                hash: r.try_get("hash")?,
                seal: r.try_get("seal")?,
            })
        }

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
                // Entries up to each chain's mark are in the index; newer ones are read from the
                // log's tail. Reading the marks once and using them on both sides leaves no gap
                // and no overlap, even if the index grows in between (it only ever grows). A
                // chain claimed after the marks were read has all its entries in the tail.
                let marks: Vec<(i64, i64)> =
                    sqlx::query_as("SELECT chain, upto FROM audit_index_chains ORDER BY chain")
                        .fetch_all(&self.pool)
                        .await?;
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!("{a}{b}{c}WHERE username = "));
                qb.push_bind(user.clone());
                sql::unindexed(&mut qb, &marks, "");
                filters(&mut qb, f, "");
                qb.push(" ORDER BY seq DESC LIMIT ").push_bind(f.limit);
                let mut entries = all(qb.build().fetch_all(&self.pool).await?, audit_row)?;
                // With one chain the tail is newer than everything indexed; with several, one
                // chain's unindexed entries may be older than another's indexed ones, so both
                // sides give up to `limit` and are merged.
                let one_chain = marks.len() == 1;
                let wanted = if one_chain {
                    f.limit - entries.len() as i64
                } else {
                    f.limit
                };
                let newest_mark = marks.iter().map(|m| m.1).max().unwrap_or(0);
                if wanted > 0 && newest_mark > 0 {
                    // CROSS JOIN: SQLite then reads the user's index range first, newest first,
                    // and stops after `wanted` matches (PostgreSQL plans it as an inner join).
                    let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                        "SELECT {} FROM audit_user_index i CROSS JOIN audit_log a \
                         WHERE a.seq = i.seq AND i.username = ",
                        sql::AUDIT_COLS_JOINED
                    ));
                    qb.push_bind(user.clone())
                        .push(" AND i.seq <= ")
                        .push_bind(newest_mark);
                    sql::indexed(&mut qb, &marks, "a.");
                    filters(&mut qb, f, "a.");
                    qb.push(" ORDER BY i.seq DESC LIMIT ").push_bind(wanted);
                    entries.extend(all(qb.build().fetch_all(&self.pool).await?, audit_row)?);
                }
                if !one_chain {
                    entries.sort_unstable_by_key(|e| std::cmp::Reverse(e.seq));
                    entries.truncate(usize::try_from(f.limit).unwrap_or(0));
                }
                Ok(entries)
            }

            async fn index_audit(&self, max: i64) -> StoreResult<u64> {
                // What to add is read on the pool, outside any write: reads hold nobody up.
                // Per chain: a chain's entries commit in its order, and its head moves in the
                // transaction that appends, so every entry of the chain up to the head's newest
                // one is committed and visible (entries of different chains are not: one chain's
                // entry 12 may commit after another's entry 13).
                let pending: Vec<(i64, i64, i64)> = sqlx::query_as(
                    "SELECT s.chain, s.upto, h.entry FROM audit_index_chains s \
                     JOIN audit_head h ON h.id = s.chain WHERE h.entry > s.upto ORDER BY s.chain",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut rows: Vec<(String, i64)> = Vec::new();
                let mut moves = Vec::new();
                for (chain, upto, entry) in pending {
                    let left = max - rows.len() as i64;
                    if left <= 0 {
                        break;
                    }
                    let part: Vec<(String, i64)> = sqlx::query_as(
                        "SELECT username, seq FROM audit_log \
                         WHERE chain = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
                    )
                    .bind(chain)
                    .bind(upto)
                    .bind(entry)
                    .bind(left)
                    .fetch_all(&self.pool)
                    .await?;
                    if let Some((_, newest)) = part.last() {
                        moves.push((chain, upto, *newest));
                    }
                    rows.extend(part);
                }
                if moves.is_empty() {
                    return Ok(0);
                }
                // In index order, so that each user's index page is written once per run.
                rows.sort_unstable();
                // Written in small transactions, each a contiguous range of users (its own index
                // pages, so each page is still written once per run), with the write lock given
                // back in between and a pause as long as the transaction took: the index takes
                // at most half of the writer's time, in slices of about a millisecond. In one
                // transaction, a second's worth of entries at 20,000 validations per second held
                // the writer for 20-45 ms once a second, and every validation arriving meanwhile
                // waited that long for its commit; in back-to-back transactions of 2,000 entries
                // (5 ms each) the validations got one commit in between each, too few to keep up
                // (docs/benchmarks.md, "Tail latency").
                // A crash between the transactions leaves some entries indexed ahead of the
                // marks: the next run adds them again and the conflict is ignored, and readers
                // never look past the marks in the index.
                let mut added = 0;
                let mut pause = std::time::Duration::ZERO;
                for (n, chunk) in rows.chunks(sql::INDEX_ENTRIES_PER_TRANSACTION).enumerate() {
                    if n > 0 {
                        tokio::time::sleep(pause).await;
                    }
                    let took = $crate::clock::Stopwatch::start();
                    let mut conn = self.write_conn().await?;
                    let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                    for part in chunk.chunks(sql::INDEX_ROWS_PER_INSERT) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "INSERT INTO audit_user_index (username, seq) ",
                        );
                        qb.push_values(part, |mut row, (username, seq)| {
                            row.push_bind(username).push_bind(seq);
                        });
                        qb.push(" ON CONFLICT DO NOTHING");
                        // Full parts share one statement text; the shorter last part of a run
                        // is not kept in the connection's statement cache.
                        let persistent = part.len() == sql::INDEX_ROWS_PER_INSERT;
                        added += qb
                            .build()
                            .persistent(persistent)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                    }
                    tx.commit().await?;
                    drop(conn);
                    pause = std::time::Duration::from_secs_f64(took.ms().max(1.0) / 1000.0);
                }
                // The compare-and-set moves a chain's mark once everything up to its newest entry
                // read above is in the index. A concurrent indexer that read the same mark added
                // nothing new (its rows conflicted) or the same rows; one of the two moves it.
                let mut conn = self.write_conn().await?;
                for (chain, upto, newest) in moves {
                    sqlx::query(
                        "UPDATE audit_index_chains SET upto = $1 WHERE chain = $2 AND upto = $3",
                    )
                    .bind(newest)
                    .bind(chain)
                    .bind(upto)
                    .execute(&mut *conn)
                    .await?;
                }
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

            async fn audit_head(&self) -> StoreResult<AuditHead> {
                let row = sqlx::query(
                    "SELECT id, seq, entry, hash, seal FROM audit_head \
                     ORDER BY entry DESC, id LIMIT 1",
                )
                .fetch_one(&self.pool)
                .await?;
                head_row(&row)
            }

            async fn audit_heads(&self) -> StoreResult<Vec<AuditHead>> {
                let rows =
                    sqlx::query("SELECT id, seq, entry, hash, seal FROM audit_head ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?;
                all(rows, head_row)
            }

            async fn key_audit_chain(
                &self,
                now: UnixTime,
            ) -> StoreResult<Option<$crate::store::AuditKeying>> {
                use $crate::store::keying::{PAGE, Rekey};
                let mut conn = self.write_conn().await?;
                let mut tx = sqlx::Connection::begin_with(&mut *conn, $begin).await?;
                // The head first (a row lock on PostgreSQL; SQLite's immediate transaction holds
                // the write lock already): of several nodes starting at once, one keys the chain
                // and the others then find the table gone.
                sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
                    .execute(&mut *tx)
                    .await?;
                let pending: i64 = sqlx::query_scalar($table_exists)
                    .bind("audit_chain_unkeyed")
                    .fetch_one(&mut *tx)
                    .await?;
                if pending == 0 {
                    return Ok(None);
                }
                let row = sqlx::query("SELECT seq, hash, seal FROM audit_head WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
                let head: (i64, String) = (row.try_get("seq")?, row.try_get("hash")?);
                let seal: String = row.try_get("seal")?;
                if self.audit_key.seal_matches(head.0, &head.1, &seal) {
                    // Only this server's key makes that seal: the chain was keyed, and the table
                    // asking for it was made again from outside. Its entries are left alone.
                    tracing::warn!(
                        "audit_chain_unkeyed was created again after the audit chain was keyed; \
                         dropped it and left the chain as it is"
                    );
                    sqlx::query("DROP TABLE audit_chain_unkeyed")
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    return Ok(None);
                }
                let mut rekey = Rekey::new(&self.audit_key, head);
                let [a, b, c] = sql::SELECT_AUDIT;
                let mut after = 0i64;
                loop {
                    let rows = sqlx::query(q!(a, b, c, "WHERE seq > $1 ORDER BY seq LIMIT $2"))
                        .bind(after)
                        .bind(PAGE)
                        .fetch_all(&mut *tx)
                        .await?;
                    let page = all(rows, audit_row)?;
                    let Some(last) = page.last() else {
                        break;
                    };
                    after = last.seq;
                    // One statement per page; a VALUES list names its columns column1.. on both
                    // databases.
                    let mut update = sqlx::QueryBuilder::<$db>::new(
                        "UPDATE audit_log SET prev_hash = v.column2, hash = v.column3 FROM (",
                    );
                    update.push_values(&page, |mut row, e| {
                        let (prev_hash, hash) = rekey.push(e);
                        row.push_bind(e.seq).push_bind(prev_hash).push_bind(hash);
                    });
                    update.push(") AS v WHERE audit_log.seq = v.column1");
                    update.build().execute(&mut *tx).await?;
                }
                let (entry, head, keying) = rekey.finish(now);
                if let Some(a) = &entry {
                    let mut insert =
                        sqlx::QueryBuilder::<$db>::new($crate::store::batch::INSERT_AUDIT);
                    insert.push_values(std::iter::once(a), |mut b, a| {
                        b.push_bind(a.seq)
                            .push_bind(a.event.at)
                            .push_bind(a.event.actor.clone())
                            .push_bind(a.event.action.clone())
                            .push_bind(a.event.target.clone())
                            .push_bind(a.event.username.clone())
                            .push_bind(a.event.source.clone())
                            .push_bind(a.event.result.clone())
                            .push_bind(a.event.reason.clone())
                            .push_bind(a.prev_hash.clone())
                            .push_bind(a.hash.clone());
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                sqlx::query(
                    "UPDATE audit_head SET seq = $1, entry = $1, hash = $2, seal = $3 WHERE id = 1",
                )
                .bind(head.0)
                    .bind(&head.1)
                    .bind(self.audit_key.head_seal(head.0, &head.1))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DROP TABLE audit_chain_unkeyed")
                    .execute(&mut *tx)
                    .await?;
                // The entry numbered here by hand must not be handed out again.
                sqlx::query($after_keying).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(Some(keying))
            }
        }
    };
}
pub(in crate::store) use impl_audit;
