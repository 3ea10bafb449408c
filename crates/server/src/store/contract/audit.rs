//! The store contract: the audit chain and group commit (see `mod.rs`).

use crate::model::*;
use crate::testing;

use super::{adv, new_token, new_user};

fn event(n: i64, user: &str, action: &str) -> AuditEvent {
    AuditEvent {
        at: 1000 + n,
        actor: "cli:operator".into(),
        action: action.into(),
        target: format!("user:{user}"),
        username: user.into(),
        source: "cli".into(),
        result: "success".into(),
        reason: String::new(),
    }
}

#[tokio::test]
async fn audit_appends_a_chain_and_filters() {
    for (db, s) in testing::stores().await {
        let first = s.append_audit(&event(1, "amy", "user.add")).await.unwrap();
        assert_eq!(first.seq, 1);
        assert_eq!(
            first.prev_hash,
            testing::audit_key().chain_start(first.chain)
        );
        let second = s.append_audit(&event(2, "ben", "token.add")).await.unwrap();
        assert_eq!(second.prev_hash, first.hash, "{db}");
        assert_eq!(
            second.hash,
            testing::audit_key().entry_hash(&first.hash, 2, &event(2, "ben", "token.add"))
        );
        s.append_audit(&event(3, "amy", "token.add")).await.unwrap();
        assert_eq!(s.audit_head().await.unwrap().seq, 3);
        let all = s
            .list_audit(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            vec![3, 2, 1],
            "{db}"
        );
        let amy = s
            .list_audit(&AuditFilter {
                username: Some("amy".into()),
                action: Some("token.add".into()),
                since: Some(1002),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(amy.len(), 1, "{db}");
        assert_eq!(amy[0].seq, 3);
        let after = s.audit_after(1, 10).await.unwrap();
        assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_audit_appends_stay_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores = testing::stores().await;
    stores.push(("sqlite-file", testing::sqlite_file_store(dir.path()).await));
    for (db, s) in stores {
        let tasks: Vec<_> = (0..20)
            .map(|n| {
                let s = s.clone();
                tokio::spawn(async move { s.append_audit(&event(n, "x", "a")).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let entries = s.audit_after(0, 100).await.unwrap();
        assert_eq!(entries.len(), 20, "{db}");
        assert_chains(db, &entries);
        let heads = s.audit_heads().await.unwrap();
        for h in heads.iter().filter(|h| h.position > 0) {
            let newest = entries.iter().rfind(|e| e.chain == h.chain).unwrap();
            assert_eq!((h.seq, &h.hash), (newest.seq, &newest.hash), "{db}");
            assert!(testing::audit_key().chain_seal_matches(h.chain, h.position, &h.hash, &h.seal));
        }
        if db == "sqlite" || db == "sqlite-file" {
            assert_eq!(heads.len(), 1, "{db}: one chain");
        }
    }
}

/// Checks that `entries` (the whole log, by number) form hash chains: each entry links to the
/// one before it in its chain and its hash covers its position there.
fn assert_chains(db: &str, entries: &[AuditEntry]) {
    let key = testing::audit_key();
    let mut chains: std::collections::HashMap<i64, (i64, String)> = Default::default();
    for e in entries {
        let (position, prev) = chains
            .entry(e.chain)
            .or_insert_with(|| (0, key.chain_start(e.chain)));
        *position += 1;
        assert_eq!(&e.prev_hash, prev, "{db}: entry {}", e.seq);
        assert_eq!(e.hash, key.entry_hash(prev, *position, &e.event), "{db}");
        *prev = e.hash.clone();
    }
}

#[tokio::test]
async fn batched_writes_keep_order_and_audit_only_won_advances() {
    use crate::store::{WriteOp, WriteResult};
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("olaf"), 1).await.unwrap();
        let t1 = s.insert_token(&new_token(u.id, "B1"), 1).await.unwrap();
        let t2 = s.insert_token(&new_token(u.id, "B2"), 1).await.unwrap();
        let ops = vec![
            WriteOp::Audit(event(1, "olaf", "first")),
            // Same counter twice in one batch: the first wins, the second is a replay.
            WriteOp::Advance {
                token: t2.id,
                advance: adv(3),
                audit: Some(event(2, "olaf", "won")),
            },
            WriteOp::Advance {
                token: t2.id,
                advance: adv(3),
                audit: Some(event(3, "olaf", "lost")),
            },
            WriteOp::Advance {
                token: t1.id,
                advance: adv(1),
                audit: None,
            },
            WriteOp::Audit(event(4, "olaf", "last")),
        ];
        let r = s.apply_writes(&ops).await.unwrap();
        assert_eq!(r.len(), 5, "{db}");
        assert!(matches!(&r[1], WriteResult::Advanced(true, Some(e)) if e.event.action == "won"));
        assert_eq!(r[2], WriteResult::Advanced(false, None), "{db}");
        assert_eq!(r[3], WriteResult::Advanced(true, None), "{db}");
        let actions: Vec<String> = s
            .audit_after(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.action)
            .collect();
        assert_eq!(actions, ["first", "won", "last"], "{db}");
    }
}

#[tokio::test]
async fn audit_chain_stays_linear_when_another_process_appends_between_batches() {
    // Two stores on one SQLite file: the server and a CLI run beside it. Each remembers the
    // chain's head between its own batches; the other's appends must be noticed.
    let dir = tempfile::tempdir().unwrap();
    let server = testing::sqlite_file_store(dir.path()).await;
    let cli = testing::sqlite_file_store(dir.path()).await;
    for (n, s) in [
        (1, &server),
        (2, &cli),
        (3, &server),
        (4, &server),
        (5, &cli),
        (6, &server),
    ] {
        s.append_audit(&event(n, "x", "a")).await.unwrap();
    }
    let entries = server.audit_after(0, 100).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );
    let mut prev = AUDIT_GENESIS.to_owned();
    for e in &entries {
        assert_eq!(e.prev_hash, prev, "entry {}", e.seq);
        assert_eq!(
            e.hash,
            testing::audit_key().entry_hash(&prev, e.seq, &e.event)
        );
        prev = e.hash.clone();
    }
    let head = server.audit_head().await.unwrap();
    assert_eq!((head.seq, &head.hash), (6, &prev));
    assert!(testing::audit_key().seal_matches(6, &prev, &head.seal));
}

/// What `list_audit` must answer, computed from the whole log.
fn expected(log: &[AuditEntry], f: &AuditFilter) -> Vec<i64> {
    let mut seqs: Vec<i64> = log
        .iter()
        .filter(|e| f.username.as_ref().is_none_or(|u| &e.event.username == u))
        .filter(|e| f.action.as_ref().is_none_or(|a| &e.event.action == a))
        .filter(|e| {
            f.action_prefixes.is_empty()
                || f.action_prefixes
                    .iter()
                    .any(|p| e.event.action.starts_with(p))
        })
        .filter(|e| f.since.is_none_or(|t| e.event.at >= t))
        .filter(|e| f.until.is_none_or(|t| e.event.at < t))
        .filter(|e| f.before_seq.is_none_or(|s| e.seq < s))
        .map(|e| e.seq)
        .rev()
        .collect();
    seqs.truncate(f.limit as usize);
    seqs
}

#[tokio::test]
async fn a_users_trail_joins_the_index_and_the_unindexed_tail() {
    for (db, s) in testing::stores().await {
        assert_eq!(s.index_audit(100).await.unwrap(), 0, "{db}: empty log");
        for n in 1..=30 {
            let user = ["amy", "ben", "amy", "cy"][n as usize % 4];
            let action = if n % 3 == 0 { "validate" } else { "token.add" };
            s.append_audit(&event(n, user, action)).await.unwrap();
        }
        let log = s.audit_after(0, 100).await.unwrap();
        let mut filters = Vec::new();
        for username in [Some("amy"), Some("ben"), Some("nobody"), None] {
            for limit in [1, 4, 30] {
                for before_seq in [None, Some(12), Some(25)] {
                    filters.push(AuditFilter {
                        username: username.map(Into::into),
                        limit,
                        before_seq,
                        ..Default::default()
                    });
                }
            }
            filters.push(AuditFilter {
                username: username.map(Into::into),
                action: Some("validate".into()),
                since: Some(1005),
                until: Some(1027),
                limit: 30,
                ..Default::default()
            });
            for prefixes in [
                &["token."][..],
                &["Token."],
                &["valid", "nothing"],
                &["t", "v"],
            ] {
                filters.push(AuditFilter {
                    username: username.map(Into::into),
                    action_prefixes: prefixes.iter().map(|p| (*p).to_owned()).collect(),
                    limit: 4,
                    ..Default::default()
                });
            }
        }
        // Nothing indexed, part of it (twice), all of it.
        for (step, max) in [(0, 0), (1, 10), (2, 7), (3, 100)] {
            let added = if max > 0 {
                s.index_audit(max).await.unwrap()
            } else {
                0
            };
            assert_eq!(added, [0, 10, 7, 13][step], "{db}: step {step}");
            for f in &filters {
                let got: Vec<i64> = s
                    .list_audit(f)
                    .await
                    .unwrap()
                    .iter()
                    .map(|e| e.seq)
                    .collect();
                assert_eq!(got, expected(&log, f), "{db}: step {step}, {f:?}");
            }
        }
        assert_eq!(s.index_audit(100).await.unwrap(), 0, "{db}: up to date");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_indexers_add_each_entry_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores: Vec<_> = testing::stores()
        .await
        .into_iter()
        .map(|(db, s)| (db, vec![s]))
        .collect();
    // Two stores on one file, as two processes would have.
    let file = vec![
        testing::sqlite_file_store(dir.path()).await,
        testing::sqlite_file_store(dir.path()).await,
    ];
    stores.push(("sqlite-file", file));
    for (db, pair) in stores {
        let s = pair[0].clone();
        for n in 1..=40 {
            s.append_audit(&event(n, "amy", "validate")).await.unwrap();
        }
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = pair[i % pair.len()].clone();
                tokio::spawn(async move {
                    let mut added = 0;
                    for _ in 0..10 {
                        added += s.index_audit(3).await.unwrap();
                    }
                    added
                })
            })
            .collect();
        let mut added = 0;
        for t in tasks {
            added += t.await.unwrap();
        }
        // An indexer that loses the race for a range adds nothing that time, so the tasks may
        // leave a rest: one indexer alone takes it (and would repeat nothing already added).
        loop {
            let more = s.index_audit(3).await.unwrap();
            if more == 0 {
                break;
            }
            added += more;
        }
        assert_eq!(added, 40, "{db}");
        let amy = s
            .list_audit(&AuditFilter {
                username: Some("amy".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(amy.len(), 40, "{db}");
    }
}

/// Two nodes appending at once, each on chains of its own: entries of different chains commit
/// out of number order, and a user's trail, indexed or not, still lists each entry once; every
/// chain holds and its head seals it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_append_on_chains_of_their_own_and_trails_stay_whole() {
    let Some((a, b)) = testing::postgres_nodes().await else {
        return;
    };
    let tasks: Vec<_> = (0..120)
        .map(|n| {
            let s = if n % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let user = ["amy", "ben", "cy"][n as usize % 3];
                s.append_audit(&event(n, user, "validate")).await.unwrap()
            })
        })
        .collect();
    let mut written = Vec::new();
    for t in tasks {
        written.push(t.await.unwrap());
    }
    let log = a.audit_after(0, 1000).await.unwrap();
    assert_eq!(log.len(), 120);
    assert_chains("postgres", &log);
    let chains: std::collections::BTreeSet<i64> = log.iter().map(|e| e.chain).collect();
    assert!(chains.len() >= 2, "{chains:?}");
    for w in &written {
        assert!(
            log.contains(w),
            "entry {} as answered is the one stored",
            w.seq
        );
    }
    let heads = a.audit_heads().await.unwrap();
    for h in heads.iter().filter(|h| h.position > 0) {
        let newest = log.iter().rfind(|e| e.chain == h.chain).unwrap();
        assert_eq!((h.seq, &h.hash), (newest.seq, &newest.hash));
        assert!(testing::audit_key().chain_seal_matches(h.chain, h.position, &h.hash, &h.seal));
    }
    for (step, max) in [(0, 0), (1, 25), (2, 40), (3, 1000)] {
        let from = if step % 2 == 0 { &a } else { &b };
        if max > 0 {
            from.index_audit(max).await.unwrap();
        }
        for username in ["amy", "ben", "nobody"] {
            for limit in [1, 7, 100] {
                let f = AuditFilter {
                    username: Some(username.into()),
                    limit,
                    ..Default::default()
                };
                let got: Vec<i64> = b
                    .list_audit(&f)
                    .await
                    .unwrap()
                    .iter()
                    .map(|e| e.seq)
                    .collect();
                assert_eq!(got, expected(&log, &f), "step {step}, {f:?}");
            }
        }
    }
    assert_eq!(a.index_audit(1000).await.unwrap(), 0, "up to date");
}
