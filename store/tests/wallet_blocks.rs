//! Wallet blocks (an operator freezes a seller), run against every configured backend.

mod common;

use common::{BOTH, Book, NONE, assert_consistent, balance, captured, seller, usd};
use payments_store::{StoreError, wallet_credit_key};
use sqlx::Row;

async fn movements(store: &payments_store::Store, key: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM wallet_movement WHERE idempotency_key = $1")
        .bind(key)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0)
}

/// A blocked seller's credit is refused with `WalletBlocked` (non-retryable, naming seller and
/// reason) and writes nothing: no movement, no wallet row, no flag, no history. Other sellers
/// are credited as usual. After the unblock the same credit applies once.
#[tokio::test]
async fn block_refuses_credit_and_writes_nothing_until_unblocked() {
    for store in common::stores().await {
        let blocked = seller("seller-b");
        store.block_wallet(&blocked, "fraud review").await.unwrap();
        let id = captured(&store, "po-b", "seller-b", "9.99", NONE).await;
        let history = store.history(&id).await.unwrap();
        for _ in 0..2 {
            match store.credit_wallet_for_order(&id).await {
                Err(e @ StoreError::WalletBlocked { .. }) => {
                    assert_eq!((e.type_name(), e.is_retryable()), ("StoreWalletBlocked", false));
                    let StoreError::WalletBlocked { seller, reason } = e else { unreachable!() };
                    assert_eq!((seller.as_str(), reason.as_str()), ("seller-b", "fraud review"));
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(movements(&store, &wallet_credit_key(&id)).await, 0);
        assert!(store.wallet_balances(&blocked).await.unwrap().is_empty(), "no wallet row");
        let order = store.order(&id).await.unwrap().unwrap();
        assert!(!order.wallet_updated);
        assert_eq!(store.history(&id).await.unwrap(), history);
        // The ledger is not the wallet: posting still works (the saga reverses it if need be).
        store.post_order_ledger(&id).await.unwrap();

        let other = captured(&store, "po-free", "seller-free", "1.00", BOTH).await;
        assert_eq!(balance(&store, "seller-free").await, 100, "{other} credited");

        assert!(store.unblock_wallet(&blocked).await.unwrap());
        assert!(!store.unblock_wallet(&blocked).await.unwrap(), "already unblocked");
        assert_eq!(store.wallet_block(&blocked).await.unwrap(), None);
        let credited = store.credit_wallet_for_order(&id).await.unwrap();
        assert!(credited.applied_now);
        assert_eq!(credited.balance, usd(999));
        assert_eq!(movements(&store, &wallet_credit_key(&id)).await, 1);
        assert_consistent(&store).await;
    }
}

/// Blocking is idempotent: blocking again replaces the reason and keeps the start time. A
/// credit applied before the block is answered as a replay while blocked (nothing new written),
/// and debits still apply.
#[tokio::test]
async fn block_is_idempotent_and_keeps_earlier_credits() {
    for store in common::stores().await {
        let s = seller("seller-k");
        assert_eq!(store.wallet_block(&s).await.unwrap(), None);
        let id = captured(&store, "po-k", "seller-k", "5.00", BOTH).await;
        store.block_wallet(&s, "kyc").await.unwrap();
        let first = store.wallet_block(&s).await.unwrap().unwrap();
        assert_eq!((first.seller_account.as_str(), first.reason.as_str()), ("seller-k", "kyc"));
        store.block_wallet(&s, "kyc: documents expired").await.unwrap();
        let second = store.wallet_block(&s).await.unwrap().unwrap();
        assert_eq!(second.reason, "kyc: documents expired");
        assert_eq!(second.blocked_at_ms, first.blocked_at_ms);
        for bad in ["", "   ", &"x".repeat(payments_store::WALLET_BLOCK_REASON_LEN_MAX + 1)] {
            assert!(matches!(store.block_wallet(&s, bad).await, Err(StoreError::Precondition(_))));
        }

        let replay = store.credit_wallet_for_order(&id).await.unwrap();
        assert!(!replay.applied_now);
        assert_eq!(replay.balance, usd(500));
        let refund = store.request_next_refund(&id, Some(usd(200)), "customer", None).await.unwrap().0;
        store.complete_refund(&refund.refund_id, "re_k").await.unwrap();
        assert_eq!(balance(&store, "seller-k").await, 300, "debits apply to a blocked wallet");

        let late = captured(&store, "po-k2", "seller-k", "1.00", Book { wallet: false, ledger: false }).await;
        assert!(matches!(store.credit_wallet_for_order(&late).await, Err(StoreError::WalletBlocked { .. })));
        assert_eq!(balance(&store, "seller-k").await, 300);
        assert_consistent(&store).await;
    }
}
