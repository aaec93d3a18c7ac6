//! API keys in the store, on every configured backend: random keys stored hashed, revocation,
//! rolls with a grace period, the one-time bootstrap, validation.

mod common;

use common::stores;
use payments_store::{API_KEY_NAME_LEN_MAX, API_KEY_SECRET_CHARS, ApiKeyDraft, ApiKeyMode, ApiScope, StoreError};
use sqlx::Row;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}
fn draft(scopes: &[ApiScope]) -> ApiKeyDraft {
    ApiKeyDraft { name: "svc".into(), scopes: scopes.to_vec(), mode: ApiKeyMode::Test }
}

/// Keys are `sk_test_` + 40 base62 characters, unique, authenticated by the whole key
/// only; the table holds no key, only its hash.
#[tokio::test]
async fn keys_are_random_and_stored_hashed() {
    for store in stores().await {
        let a = store.create_api_key(&draft(&[ApiScope::Payments])).await.unwrap();
        let b = store.create_api_key(&draft(&[ApiScope::Payments])).await.unwrap();
        assert_ne!(a.secret, b.secret);
        let rest = a.secret.strip_prefix("sk_test_").expect("mode prefix");
        assert_eq!(rest.len(), API_KEY_SECRET_CHARS);
        assert!(rest.bytes().all(|c| c.is_ascii_alphanumeric()), "{rest}");
        assert_eq!(ApiKeyMode::of_key(&a.secret), Some(ApiKeyMode::Test));
        let found = store.authenticate_api_key(&a.secret).await.unwrap().expect("authenticated");
        assert_eq!(found, a.record);
        assert!(!format!("{a:?}").contains(&a.secret), "Debug prints no key");
        let truncated = &a.secret[..a.secret.len() - 1];
        assert_eq!(store.authenticate_api_key(truncated).await.unwrap(), None);
        let dump: Vec<String> =
            sqlx::query("SELECT key_id || lineage || secret_hash || name || suffix AS v FROM api_key")
                .fetch_all(store.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("v"))
                .collect();
        assert!(dump.iter().all(|row| !row.contains(rest)), "no stored column holds the key");
    }
}

/// Revoked keys authenticate no more; the record stays listed.
#[tokio::test]
async fn revoked_keys_are_refused_and_listed() {
    for store in stores().await {
        let key = store.create_api_key(&draft(&[ApiScope::Admin, ApiScope::Payments])).await.unwrap();
        assert_eq!(key.record.scopes, vec![ApiScope::Admin, ApiScope::Payments]);
        let revoked = store.revoke_api_key(&key.record.key_id).await.unwrap();
        assert!(revoked.revoked_at_ms.is_some());
        assert_eq!(store.authenticate_api_key(&key.secret).await.unwrap(), None);
        let listed = store.api_keys().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].revoked_at_ms, revoked.revoked_at_ms);
        assert!(matches!(store.revoke_api_key("key_nope").await, Err(StoreError::NotFound(_))));
    }
}

/// A roll issues a new key of the same lineage and scopes; the old key works until its
/// expiry (here: immediately past) and cannot be rolled twice.
#[tokio::test]
async fn rolling_keeps_lineage_and_expires_the_old_key() {
    for store in stores().await {
        let old = store.create_api_key(&draft(&[ApiScope::Payments])).await.unwrap();
        let later = now_ms() + 3_600_000;
        let new = store.roll_api_key(&old.record.key_id, later).await.unwrap();
        assert_eq!(new.record.lineage, old.record.key_id);
        assert_eq!(new.record.scopes, old.record.scopes);
        assert!(store.authenticate_api_key(&old.secret).await.unwrap().is_some(), "old key valid until expiry");
        assert!(store.authenticate_api_key(&new.secret).await.unwrap().is_some());
        let rolled = store.api_key(&old.record.key_id).await.unwrap();
        assert_eq!(
            (rolled.expires_at_ms, rolled.rolled_to.as_deref()),
            (Some(later), Some(new.record.key_id.as_str()))
        );
        assert!(matches!(store.roll_api_key(&old.record.key_id, later).await, Err(StoreError::Precondition(_))));
        // Rolled again with no grace: the second key stops at once, the third works.
        let third = store.roll_api_key(&new.record.key_id, 0).await.unwrap();
        assert_eq!(third.record.lineage, old.record.key_id);
        assert_eq!(store.authenticate_api_key(&new.secret).await.unwrap(), None);
        assert!(store.authenticate_api_key(&third.secret).await.unwrap().is_some());
    }
}

/// The bootstrap issues an admin key only while none is active.
#[tokio::test]
async fn bootstrap_only_without_an_active_admin_key() {
    for store in stores().await {
        store.create_api_key(&draft(&[ApiScope::Payments])).await.unwrap();
        let first = store.bootstrap_admin_key("ops", ApiKeyMode::Test).await.unwrap();
        assert_eq!(first.record.scopes, vec![ApiScope::Admin]);
        let again = store.bootstrap_admin_key("ops", ApiKeyMode::Test).await;
        assert!(matches!(again, Err(StoreError::Precondition(_))), "{again:?}");
        store.revoke_api_key(&first.record.key_id).await.unwrap();
        store.bootstrap_admin_key("ops", ApiKeyMode::Test).await.unwrap();
    }
}

/// Names and scopes are validated.
#[tokio::test]
async fn drafts_are_validated() {
    for store in stores().await {
        assert!(store.create_api_key(&draft(&[])).await.is_err());
        let mut bad = draft(&[ApiScope::Admin]);
        bad.name = " ".into();
        assert!(store.create_api_key(&bad).await.is_err());
        bad.name = "x".repeat(API_KEY_NAME_LEN_MAX + 1);
        assert!(store.create_api_key(&bad).await.is_err());
        assert!(ApiScope::parse("root").is_err());
    }
}
