//! The store contract: the inventory of hardware tokens and imports (see `mod.rs`).

use crate::model::*;
use crate::store::{FeedItem, FeedSummary, ImportEnd, InventoryFeed, NewImport};
use crate::testing;

use super::{new_token, new_user};

fn row(serial: &str, counter: i64, seed: u8) -> NewInventoryToken {
    NewInventoryToken {
        serial: Serial(serial.to_owned()),
        kind: TokenKind::Hotp,
        algorithm: tessera_otp::HashAlgorithm::Sha1,
        digits: 6,
        period: 0,
        sealed_secret: vec![seed; 8],
        counter,
        drift: 0,
        manufacturer: "Acme".into(),
        model: format!("m{seed}"),
        not_before: None,
        not_after: Some(2_000_000_000),
    }
}

/// A feed of fixed rows that can end in an abort; remembers what the store told it.
struct Rows {
    rows: std::vec::IntoIter<NewInventoryToken>,
    abort: bool,
    existing: Vec<(String, bool)>,
}

impl Rows {
    fn new(rows: Vec<NewInventoryToken>, abort: bool) -> Rows {
        Rows {
            rows: rows.into_iter(),
            abort,
            existing: Vec::new(),
        }
    }
}

impl InventoryFeed for Rows {
    fn next_row(&mut self) -> FeedItem {
        match self.rows.next() {
            Some(r) => FeedItem::Row(r),
            None if self.abort => FeedItem::Abort,
            None => FeedItem::End,
        }
    }
    fn existing(&mut self, serial: &Serial, updated: bool) {
        self.existing.push((serial.0.clone(), updated));
    }
    fn summary(&mut self) -> FeedSummary {
        FeedSummary {
            skipped: 1,
            report: "{}".into(),
            file_sha256: "ab".into(),
        }
    }
}

fn import(now: i64) -> NewImport {
    NewImport {
        actor: "cli:operator".into(),
        format: "pskc".into(),
        file_sha256: String::new(),
        now,
    }
}

#[tokio::test]
async fn import_inserts_in_batches_and_never_lowers_a_counter_or_replaces_a_seed() {
    for (db, s) in testing::stores().await {
        // More rows than one INSERT takes.
        let rows: Vec<_> = (0..1200).map(|i| row(&format!("S{i:05}"), 10, 1)).collect();
        let mut feed = Rows::new(rows, false);
        let end = s
            .import_inventory(&import(100), &mut feed, false, false)
            .await
            .unwrap();
        let ImportEnd::Done {
            import_id,
            inserted,
            updated,
            existing,
        } = end
        else {
            panic!("{db}: {end:?}")
        };
        assert_eq!((inserted, updated, existing), (1200, 0, 0), "{db}");
        let rec = s.import_record(import_id).await.unwrap().unwrap();
        assert_eq!(
            (rec.imported, rec.skipped, rec.file_sha256.as_str()),
            (1200, 1, "ab"),
            "{db}"
        );
        // Again, skip mode: everything is there already, nothing changes.
        let mut feed = Rows::new(vec![row("S00001", 99, 2), row("NEW", 0, 2)], false);
        let end = s
            .import_inventory(&import(200), &mut feed, false, false)
            .await
            .unwrap();
        assert!(
            matches!(
                end,
                ImportEnd::Done {
                    inserted: 1,
                    updated: 0,
                    existing: 1,
                    ..
                }
            ),
            "{db}: {end:?}"
        );
        assert_eq!(feed.existing, [("S00001".to_owned(), false)]);
        let t = s.inventory_token("S00001").await.unwrap().unwrap();
        assert_eq!(
            (t.counter, t.sealed_secret.clone(), t.model.as_str()),
            (10, vec![1; 8], "m1"),
            "{db}"
        );
        // Update mode: a higher counter and new metadata, never a lower counter nor the seed.
        let mut feed = Rows::new(vec![row("S00001", 99, 3), row("S00002", 3, 3)], false);
        let end = s
            .import_inventory(&import(300), &mut feed, true, false)
            .await
            .unwrap();
        assert!(
            matches!(
                end,
                ImportEnd::Done {
                    inserted: 0,
                    updated: 2,
                    ..
                }
            ),
            "{db}: {end:?}"
        );
        let t = s.inventory_token("S00001").await.unwrap().unwrap();
        assert_eq!(
            (t.counter, t.sealed_secret.clone(), t.model.as_str()),
            (99, vec![1; 8], "m3"),
            "{db}"
        );
        let t = s.inventory_token("S00002").await.unwrap().unwrap();
        assert_eq!(t.counter, 10, "{db}: not lowered");
    }
}

#[tokio::test]
async fn an_aborted_or_dry_import_keeps_nothing() {
    for (db, s) in testing::stores().await {
        let mut feed = Rows::new(
            (0..700).map(|i| row(&format!("A{i}"), 0, 1)).collect(),
            true,
        );
        let end = s
            .import_inventory(&import(1), &mut feed, false, false)
            .await
            .unwrap();
        assert_eq!(end, ImportEnd::Aborted, "{db}");
        let mut feed = Rows::new(vec![row("D1", 0, 1)], false);
        let end = s
            .import_inventory(&import(1), &mut feed, false, true)
            .await
            .unwrap();
        assert!(matches!(end, ImportEnd::Done { inserted: 1, .. }), "{db}");
        let (list, total) = s
            .list_inventory(&InventoryFilter::default(), 10, 0)
            .await
            .unwrap();
        assert_eq!((list.len(), total), (0, 0), "{db}");
        assert!(s.imports(10).await.unwrap().is_empty(), "{db}");
    }
}

#[tokio::test]
async fn assign_moves_a_token_once_and_retire_takes_it_out() {
    for (db, s) in testing::stores().await {
        let mut feed = Rows::new(
            vec![row("H1", 42, 1), row("H2", 0, 1), row("h_3", 0, 1)],
            false,
        );
        s.import_inventory(&import(1), &mut feed, false, false)
            .await
            .unwrap();
        let u = s.insert_user(&new_user("hank"), 1).await.unwrap();
        let mut t = new_token(u.id, "H1");
        t.kind = TokenKind::Hotp;
        t.next_counter = 42;
        let token = s
            .assign_inventory("H1", &t, 3, 30, 5)
            .await
            .unwrap()
            .expect(db);
        assert_eq!(
            (token.next_counter, token.drift, token.user_id),
            (42, 3, u.id),
            "{db}"
        );
        assert_eq!(token.first_use_window, 30, "{db}");
        let inv = s.inventory_token("H1").await.unwrap().unwrap();
        assert_eq!(
            (inv.state, inv.token_id),
            (InventoryState::Assigned, Some(token.id)),
            "{db}"
        );
        // A second assignment of the same token fails and adds no token.
        let again = s
            .assign_inventory("H1", &new_token(u.id, "H1-again"), 0, 0, 6)
            .await
            .unwrap();
        assert!(again.is_none(), "{db}");
        assert_eq!(s.tokens_of(u.id).await.unwrap().len(), 1, "{db}");
        assert!(s.retire_inventory("H2", 7).await.unwrap());
        assert!(
            !s.retire_inventory("H2", 7).await.unwrap(),
            "{db}: retired once"
        );
        assert!(
            !s.retire_inventory("H1", 7).await.unwrap(),
            "{db}: assigned stays"
        );
        let filter = InventoryFilter {
            search: String::new(),
            state: Some(InventoryState::InStock),
            ..InventoryFilter::default()
        };
        let (list, total) = s.list_inventory(&filter, 10, 0).await.unwrap();
        assert_eq!((list[0].serial.0.as_str(), total), ("h_3", 1), "{db}");
        // LIKE wildcards in the search are literal.
        let search = InventoryFilter {
            search: "_3".into(),
            state: None,
            ..InventoryFilter::default()
        };
        assert_eq!(s.list_inventory(&search, 10, 0).await.unwrap().1, 1, "{db}");
        let search = InventoryFilter {
            search: "h".into(),
            state: None,
            ..InventoryFilter::default()
        };
        assert_eq!(
            s.list_inventory(&search, 10, 0).await.unwrap().1,
            3,
            "{db}: ignoring case"
        );
        let page = s.inventory_after(0, 10).await.unwrap();
        assert_eq!(page.len(), 1, "{db}: only in stock");
    }
}
