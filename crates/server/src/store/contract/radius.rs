//! RADIUS clients, answered States, and the request fingerprint kept with a token's counter.

use super::*;
use crate::store::RequestPrint;

fn client(name: &str) -> RadiusClient {
    RadiusClient {
        id: 0,
        name: name.into(),
        address: "10.0.0.0/8".parse().unwrap(),
        sealed_secret: vec![1, 2, 3],
        sealed_next_secret: None,
        mode: RadiusMode::Challenge,
        require_message_authenticator: true,
        limit_proxy_state: false,
        passthrough: false,
        created_at: 5,
        updated_at: 5,
    }
}

#[tokio::test]
async fn radius_clients_round_trip_rotate_and_remove() {
    for (db, s) in testing::stores().await {
        let c = s.insert_radius_client(&client("fw1")).await.unwrap();
        assert!(c.id > 0, "{db}");
        assert_eq!(c.mode, RadiusMode::Challenge, "{db}");
        assert_eq!(c.address.to_string(), "10.0.0.0/8", "{db}");
        assert!(matches!(
            s.insert_radius_client(&client("fw1")).await,
            Err(StoreError::Conflict)
        ));
        assert!(
            s.set_radius_secrets(c.id, &[9], Some(&[8]), 7)
                .await
                .unwrap()
        );
        let got = s.radius_client("fw1").await.unwrap().unwrap();
        assert_eq!(got.sealed_secret, vec![9], "{db}");
        assert_eq!(got.sealed_next_secret, Some(vec![8]), "{db}");
        assert_eq!(got.updated_at, 7, "{db}");
        assert_eq!(s.radius_clients().await.unwrap().len(), 1, "{db}");
        assert!(s.delete_radius_client("fw1").await.unwrap(), "{db}");
        assert!(!s.delete_radius_client("fw1").await.unwrap(), "{db}");
        assert!(s.radius_client("fw1").await.unwrap().is_none(), "{db}");
    }
}

#[tokio::test]
async fn a_state_is_claimed_once_and_purged_after_it_expired() {
    for (db, s) in testing::stores().await {
        assert!(s.claim_radius_state("n1", 100).await.unwrap(), "{db}");
        assert!(!s.claim_radius_state("n1", 100).await.unwrap(), "{db}");
        s.purge_expired(101, 0, 0, 0).await.unwrap();
        assert!(s.claim_radius_state("n1", 200).await.unwrap(), "{db}");
    }
}

#[tokio::test]
async fn the_request_that_moved_a_counter_is_remembered_with_it() {
    for (db, s) in testing::stores().await {
        let u = s.insert_user(&new_user("rita"), 1).await.unwrap();
        let t = s.insert_token(&new_token(u.id, "R1"), 1).await.unwrap();
        let print = RequestPrint([7; 32]);
        let mut a = adv(3);
        a.request = Some(print);
        assert!(s.advance_token(t.id, a).await.unwrap(), "{db}");
        assert!(s.token_moved_by(t.id, &print, 1000).await.unwrap(), "{db}");
        assert!(!s.token_moved_by(t.id, &print, 1001).await.unwrap(), "{db}");
        let other = RequestPrint([8; 32]);
        assert!(!s.token_moved_by(t.id, &other, 0).await.unwrap(), "{db}");
        // A later login without a fingerprint clears it.
        assert!(s.advance_token(t.id, adv(4)).await.unwrap(), "{db}");
        assert!(!s.token_moved_by(t.id, &print, 0).await.unwrap(), "{db}");
    }
}
