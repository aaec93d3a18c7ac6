//! Idempotency-Key records, run against every configured backend (SQLite always, PostgreSQL
//! when `PAYMENTS_TEST_POSTGRES_URL` is set).

mod common;

use common::stores;

use payments_store::{
    IDEMPOTENCY_CLAIM_STALE_MS, IDEMPOTENCY_KEY_TTL_MS, IdempotencyClaim as Claim, IdempotencyState, Store,
};

const EP: &str = "POST /v1/payments";
/// A fixed "now" so expiry is exact.
const NOW: i64 = 1_700_000_000_000;

/// The first claim wins; the same request while it runs is told "in progress"; once finished,
/// the same request replays the stored status and body exactly, and the record says so.
#[tokio::test]
async fn claim_then_in_progress_then_replay() {
    for store in stores().await {
        assert_eq!(store.claim_idempotency_key("k1", EP, "h1", NOW).await.unwrap(), Claim::New);
        assert_eq!(store.claim_idempotency_key("k1", EP, "h1", NOW + 1).await.unwrap(), Claim::InProgress);
        let body = r#"{"checkout_id":"chk-1","payment_orders":[]}"#;
        store.finish_idempotency_key("k1", 202, body).await.unwrap();
        let replay = store.claim_idempotency_key("k1", EP, "h1", NOW + 2).await.unwrap();
        assert_eq!(replay, Claim::Replay { status: 202, body: body.to_owned() });
        let record = store.idempotency_record("k1").await.unwrap().unwrap();
        assert_eq!(record.state, IdempotencyState::Done);
        assert_eq!((record.response_status, record.created_at_ms), (Some(202), NOW));
        // A finished key cannot be finished again or released.
        assert!(store.finish_idempotency_key("k1", 200, "{}").await.is_err());
        store.release_idempotency_key("k1").await.unwrap();
        assert!(store.idempotency_record("k1").await.unwrap().is_some());
    }
}

/// The same key with another body hash or another endpoint is a mismatch, whether the first
/// request is running or done, and leaves the stored record unchanged.
#[tokio::test]
async fn reuse_with_other_request_is_a_mismatch() {
    for store in stores().await {
        assert_eq!(store.claim_idempotency_key("k2", EP, "h1", NOW).await.unwrap(), Claim::New);
        assert_eq!(store.claim_idempotency_key("k2", EP, "h2", NOW).await.unwrap(), Claim::Mismatch);
        assert_eq!(store.claim_idempotency_key("k2", "POST /v1/checkouts", "h1", NOW).await.unwrap(), Claim::Mismatch);
        store.finish_idempotency_key("k2", 200, "{}").await.unwrap();
        assert_eq!(store.claim_idempotency_key("k2", EP, "h2", NOW).await.unwrap(), Claim::Mismatch);
        let record = store.idempotency_record("k2").await.unwrap().unwrap();
        assert_eq!((record.endpoint.as_str(), record.request_hash.as_str()), (EP, "h1"));
    }
}

/// A released claim frees the key: the next request (even a different one) claims it anew.
#[tokio::test]
async fn release_frees_the_key() {
    for store in stores().await {
        assert_eq!(store.claim_idempotency_key("k3", EP, "h1", NOW).await.unwrap(), Claim::New);
        store.release_idempotency_key("k3").await.unwrap();
        assert!(store.idempotency_record("k3").await.unwrap().is_none());
        assert_eq!(store.claim_idempotency_key("k3", EP, "h2", NOW).await.unwrap(), Claim::New);
    }
}

/// A key is honoured for the full TTL and counts as absent after it: a claim older than 24 h is
/// taken over by any request, done or not.
#[tokio::test]
async fn expired_keys_are_reusable() {
    for store in stores().await {
        assert_eq!(store.claim_idempotency_key("k4", EP, "h1", NOW).await.unwrap(), Claim::New);
        store.finish_idempotency_key("k4", 202, "{}").await.unwrap();
        let at_ttl = NOW + IDEMPOTENCY_KEY_TTL_MS;
        assert_eq!(store.claim_idempotency_key("k4", EP, "h2", at_ttl).await.unwrap(), Claim::Mismatch);
        assert_eq!(store.claim_idempotency_key("k4", EP, "h2", at_ttl + 1).await.unwrap(), Claim::New);
        let record = store.idempotency_record("k4").await.unwrap().unwrap();
        assert_eq!((record.request_hash.as_str(), record.state), ("h2", IdempotencyState::InProgress));
        assert_eq!(record.created_at_ms, at_ttl + 1);

        // An abandoned in-progress claim expires too.
        assert_eq!(store.claim_idempotency_key("k5", EP, "h1", NOW).await.unwrap(), Claim::New);
        assert_eq!(store.claim_idempotency_key("k5", EP, "h1", at_ttl + 1).await.unwrap(), Claim::New);
    }
}

/// A request that died with its gateway does not hold its key for a day: an in-progress claim
/// older than the stale bound is taken over; a younger one still answers in progress.
#[tokio::test]
async fn stale_in_progress_claims_are_taken_over() {
    for store in stores().await {
        assert_eq!(store.claim_idempotency_key("k6", EP, "h1", NOW).await.unwrap(), Claim::New);
        let young = NOW + IDEMPOTENCY_CLAIM_STALE_MS;
        assert_eq!(store.claim_idempotency_key("k6", EP, "h1", young).await.unwrap(), Claim::InProgress);
        assert_eq!(store.claim_idempotency_key("k6", EP, "h1", young + 1).await.unwrap(), Claim::New);
        // A finished key is not affected by the stale bound: it replays for the whole TTL.
        store.finish_idempotency_key("k6", 202, "{}").await.unwrap();
        let later = young + 1 + IDEMPOTENCY_CLAIM_STALE_MS * 10;
        assert!(matches!(store.claim_idempotency_key("k6", EP, "h1", later).await.unwrap(), Claim::Replay { .. }));
    }
}

/// The purge deletes exactly the keys claimed before the cut-off and answers how many.
#[tokio::test]
async fn purge_deletes_old_keys_only() {
    for store in stores().await {
        for (key, at) in [("old-1", NOW - 10), ("old-2", NOW - 1), ("new-1", NOW), ("new-2", NOW + 5)] {
            assert_eq!(store.claim_idempotency_key(key, EP, "h", at).await.unwrap(), Claim::New);
        }
        store.finish_idempotency_key("old-1", 202, "{}").await.unwrap();
        assert_eq!(store.purge_idempotency_keys(NOW).await.unwrap(), 2);
        assert!(store.idempotency_record("old-1").await.unwrap().is_none());
        assert!(store.idempotency_record("old-2").await.unwrap().is_none());
        assert!(store.idempotency_record("new-1").await.unwrap().is_some());
        assert!(store.idempotency_record("new-2").await.unwrap().is_some());
        assert_eq!(store.purge_idempotency_keys(NOW).await.unwrap(), 0);
    }
}

/// Many concurrent claims of one key: exactly one wins, the rest see it in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_have_one_winner() {
    for store in stores().await {
        let claims = race_claims(&store, 8).await;
        assert_eq!(claims.iter().filter(|c| **c == Claim::New).count(), 1, "{claims:?}");
        assert!(claims.iter().all(|c| matches!(c, Claim::New | Claim::InProgress)), "{claims:?}");
    }
}

/// Claims the key `race` from `n` tasks at once; answers every outcome.
async fn race_claims(store: &Store, n: usize) -> Vec<Claim> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.claim_idempotency_key("race", EP, "h", NOW).await.unwrap() })
        })
        .collect();
    let mut claims = Vec::new();
    for t in tasks {
        claims.push(t.await.unwrap());
    }
    claims
}
