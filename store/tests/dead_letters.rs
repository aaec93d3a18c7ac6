//! Dead letters (saga steps parked for an operator), run against every configured backend.

mod common;

use payments_domain::CheckoutId;
use payments_store::{DeadLetterDraft, DeadLetterStatus as D, StoreError};

fn draft(id: &str, attempts: i64, error: &str) -> DeadLetterDraft {
    DeadLetterDraft {
        dead_letter_id: id.into(),
        workflow_id: "checkout-chk-1".into(),
        checkout_id: Some(CheckoutId::parse("chk-1").unwrap()),
        subject: "po-1".into(),
        step: "credit_wallet".into(),
        reason: "non-retryable: StoreWalletBlocked".into(),
        last_error: error.into(),
        attempts,
    }
}

/// The whole lifecycle: open (twice: the second call, a retried activity, changes nothing and
/// does not double the attempts), operator retry (RETRYING, idempotent), the retry fails again
/// (re-opened, attempts accumulate, latest error kept), operator resolution (idempotent), and
/// `close_dead_letter_retried` for a retry that succeeded.
#[tokio::test]
async fn dead_letter_lifecycle() {
    for store in common::stores().await {
        let id = "checkout-chk-1:credit_wallet:po-1";
        let opened = store.open_dead_letter(&draft(id, 5, "wallet blocked")).await.unwrap();
        assert_eq!((opened.status, opened.attempts, opened.resolved_by.as_deref()), (D::Open, 5, None));
        assert_eq!(opened.checkout_id.as_ref().map(|c| c.as_str()), Some("chk-1"));
        let again = store.open_dead_letter(&draft(id, 5, "wallet blocked (again)")).await.unwrap();
        assert_eq!(again, opened, "OPEN twice: answered unchanged");
        assert_eq!(store.dead_letter(id).await.unwrap(), Some(opened.clone()));

        let retrying = store.mark_dead_letter_retrying(id, "alice").await.unwrap();
        assert_eq!((retrying.status, retrying.attempts), (D::Retrying, 5));
        assert_eq!(store.mark_dead_letter_retrying(id, "bob").await.unwrap(), retrying);

        let reopened = store.open_dead_letter(&draft(id, 3, "still blocked")).await.unwrap();
        assert_eq!((reopened.status, reopened.attempts), (D::Open, 8));
        assert_eq!(reopened.last_error, "still blocked");
        assert_eq!(reopened.created_at_ms, opened.created_at_ms);
        assert_eq!(store.open_dead_letter(&draft(id, 3, "still blocked")).await.unwrap(), reopened);

        let resolved = store.resolve_dead_letter(id, "alice", "refunded by hand").await.unwrap();
        assert_eq!(resolved.status, D::Resolved);
        assert_eq!(
            (resolved.resolved_by.as_deref(), resolved.resolution.as_deref()),
            (Some("alice"), Some("refunded by hand"))
        );
        assert_eq!(store.resolve_dead_letter(id, "bob", "other").await.unwrap(), resolved);
        assert_eq!(store.mark_dead_letter_retrying(id, "bob").await.unwrap(), resolved, "RESOLVED stays");
        assert_eq!(store.close_dead_letter_retried(id).await.unwrap(), Some(resolved.clone()));

        // Re-opened after RESOLVED: resolution cleared, attempts accumulate.
        let third = store.open_dead_letter(&draft(id, 2, "blocked once more")).await.unwrap();
        assert_eq!((third.status, third.attempts, third.resolved_by, third.resolution), (D::Open, 10, None, None));
        store.mark_dead_letter_retrying(id, "carol").await.unwrap();
        let closed = store.close_dead_letter_retried(id).await.unwrap().unwrap();
        assert_eq!(closed.status, D::Resolved);
        assert_eq!(
            (closed.resolved_by.as_deref(), closed.resolution.as_deref()),
            (Some("workflow"), Some("retry succeeded"))
        );

        // A retry that succeeded straight from OPEN closes it too; unknown ids.
        store.open_dead_letter(&draft("dl-2", 1, "x")).await.unwrap();
        assert_eq!(store.close_dead_letter_retried("dl-2").await.unwrap().unwrap().status, D::Resolved);
        assert_eq!(store.close_dead_letter_retried("dl-none").await.unwrap(), None);
        assert_eq!(store.dead_letter("dl-none").await.unwrap(), None);
        assert!(matches!(store.mark_dead_letter_retrying("dl-none", "a").await, Err(StoreError::NotFound(_))));
        assert!(matches!(store.resolve_dead_letter("dl-none", "a", "b").await, Err(StoreError::NotFound(_))));
    }
}

/// Listing is oldest first, filters by status and honours the limit (at least 1, capped at the
/// maximum); invalid drafts and operator input are refused; overlong errors are cut, not
/// refused.
#[tokio::test]
async fn listing_and_validation() {
    for store in common::stores().await {
        for i in 0..4 {
            // Created in id order; equal milliseconds are ordered by id, so the order is fixed.
            store.open_dead_letter(&draft(&format!("dl-{i}"), i, "boom")).await.unwrap();
        }
        store.resolve_dead_letter("dl-1", "op", "fixed").await.unwrap();
        store.mark_dead_letter_retrying("dl-2", "op").await.unwrap();
        let ids =
            |v: Vec<payments_store::DeadLetterRecord>| v.into_iter().map(|d| d.dead_letter_id).collect::<Vec<_>>();
        assert_eq!(ids(store.dead_letters(None, 10).await.unwrap()), ["dl-0", "dl-1", "dl-2", "dl-3"]);
        assert_eq!(ids(store.dead_letters(Some(D::Open), 10).await.unwrap()), ["dl-0", "dl-3"]);
        assert_eq!(ids(store.dead_letters(Some(D::Open), 1).await.unwrap()), ["dl-0"]);
        assert_eq!(ids(store.dead_letters(Some(D::Retrying), 10).await.unwrap()), ["dl-2"]);
        assert_eq!(ids(store.dead_letters(Some(D::Resolved), i64::MAX).await.unwrap()), ["dl-1"]);
        assert!(matches!(store.dead_letters(None, 0).await, Err(StoreError::Precondition(_))));

        let bad_drafts = [
            draft("", 1, "x"),
            draft("has space", 1, "x"),
            draft(&"x".repeat(payments_store::DEAD_LETTER_ID_LEN_MAX + 1), 1, "x"),
            draft("dl-neg", -1, "x"),
            DeadLetterDraft { step: " ".into(), ..draft("dl-step", 1, "x") },
        ];
        for d in bad_drafts {
            assert!(matches!(store.open_dead_letter(&d).await, Err(StoreError::Precondition(_))), "{d:?}");
        }
        assert!(matches!(store.mark_dead_letter_retrying("dl-0", "").await, Err(StoreError::Precondition(_))));
        assert!(matches!(store.resolve_dead_letter("dl-0", "op", " ").await, Err(StoreError::Precondition(_))));

        let long = "é".repeat(payments_store::DEAD_LETTER_TEXT_BYTES_MAX);
        let d = store.open_dead_letter(&draft("dl-long", 1, &long)).await.unwrap();
        assert!(d.last_error.len() <= payments_store::DEAD_LETTER_TEXT_BYTES_MAX && long.starts_with(&d.last_error));
        assert_eq!(store.dead_letters(None, 100).await.unwrap().len(), 5);
    }
}
