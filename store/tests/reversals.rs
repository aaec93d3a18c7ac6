//! Reversals (the saga's compensation of a capture it could not book) and numbered refunds,
//! run against every configured backend. After every completed reversal `verify()` must be
//! consistent, whatever the capture had booked.

mod common;

use common::{BOTH, Book, NONE, assert_consistent, balance, captured, ledger_transactions, po, rid, seller, usd};
use payments_domain::PaymentOrderStatus as S;
use payments_store::{
    PSP_CLEARING_ACCOUNT, RefundKind, RefundStatus, StoreError, Transition, refund_ledger_key, refund_wallet_key,
    reversal_refund_id,
};

/// The saga's path when the seller is blocked: the ledger post succeeded, the wallet credit was
/// refused. Completing the reversal posts one `reversal` ledger transaction (no wallet debit:
/// nothing was credited), moves the order SUCCESS -> REVERSED with a history row, and leaves
/// the books consistent; the order takes no bookings afterwards.
#[tokio::test]
async fn reversal_after_a_blocked_wallet_credit() {
    for store in common::stores().await {
        let id = captured(&store, "po-rb", "seller-rb", "12.34", Book { wallet: false, ledger: true }).await;
        store.block_wallet(&seller("seller-rb"), "kyc pending").await.unwrap();
        let refused = store.credit_wallet_for_order(&id).await.unwrap_err();
        assert!(matches!(&refused, StoreError::WalletBlocked { .. }), "{refused:?}");
        assert!(!store.verify().await.unwrap().is_consistent(), "the pay-in is in the ledger only");

        let r = store.request_reversal(&id, "wallet credit refused: kyc pending").await.unwrap();
        assert_eq!(r.refund_id, reversal_refund_id(&id));
        assert_eq!(r.refund_id.as_str(), "po-rb:reversal");
        assert_eq!((r.kind, r.status, r.amount), (RefundKind::Reversal, RefundStatus::Requested, usd(1234)));
        assert_eq!(store.order(&id).await.unwrap().unwrap().status, S::Success, "a request books nothing");

        let done = store.complete_refund(&r.refund_id, "re_rb").await.unwrap();
        assert_eq!(done.status, RefundStatus::Succeeded);
        let order = store.order(&id).await.unwrap().unwrap();
        assert_eq!((order.status, order.ledger_updated, order.wallet_updated), (S::Reversed, true, false));
        let last = store.history(&id).await.unwrap().pop().unwrap();
        assert_eq!((last.from_status, last.to_status), (Some(S::Success), S::Reversed));
        assert_eq!(last.reason, "reversed: wallet credit refused: kyc pending");
        assert_consistent(&store).await;
        assert_eq!(ledger_transactions(&store, "reversal").await, 1);
        let entries = store.ledger_entries(&refund_ledger_key(&r.refund_id)).await.unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].account.as_str(), entries[0].amount), ("seller_payable:seller-rb", usd(1234)));
        assert_eq!(entries[1].account, PSP_CLEARING_ACCOUNT);
        assert_eq!(balance(&store, "seller-rb").await, 0);

        // Unblocking does not bring the credit back, and nothing else books on a REVERSED order.
        assert!(store.unblock_wallet(&seller("seller-rb")).await.unwrap());
        assert!(matches!(store.credit_wallet_for_order(&id).await, Err(StoreError::Precondition(_))));
        assert!(matches!(store.post_order_ledger(&id).await, Err(StoreError::Precondition(_))));
        assert_consistent(&store).await;
    }
}

/// Whatever the capture booked (nothing, only the ledger, only the wallet, both), the reversal
/// gives back exactly that: the wallet nets to zero, the ledger holds the pay-in and its
/// reversal (or neither), and `verify()` is consistent.
#[tokio::test]
async fn reversal_books_back_exactly_what_was_booked() {
    for store in common::stores().await {
        let cases = [
            ("po-r0", NONE),
            ("po-rl", Book { wallet: false, ledger: true }),
            ("po-rw", Book { wallet: true, ledger: false }),
            ("po-r2", BOTH),
        ];
        for (name, book) in cases {
            let s = format!("seller-{name}");
            let id = captured(&store, name, &s, "7.00", book).await;
            let r = store.request_reversal(&id, "ledger post failed").await.unwrap();
            store.complete_refund(&r.refund_id, "re").await.unwrap();
            let order = store.order(&id).await.unwrap().unwrap();
            assert_eq!(order.status, S::Reversed, "{name}");
            assert_eq!((order.wallet_updated, order.ledger_updated), (book.wallet, book.ledger), "flags kept");
            assert_eq!(balance(&store, &s).await, 0, "{name}");
            let reversal_entries = store.ledger_entries(&refund_ledger_key(&r.refund_id)).await.unwrap();
            assert_eq!(reversal_entries.len(), if book.ledger { 2 } else { 0 }, "{name}");
            let debit = sqlx::query("SELECT amount_minor FROM wallet_movement WHERE idempotency_key = $1")
                .bind(refund_wallet_key(&r.refund_id))
                .fetch_optional(store.pool())
                .await
                .unwrap()
                .map(|row| sqlx::Row::get::<i64, _>(&row, 0));
            assert_eq!(debit, book.wallet.then_some(-700), "{name}");
            assert_consistent(&store).await;
        }
        assert_eq!(ledger_transactions(&store, "reversal").await, 2);
        assert!(store.complete_checkout(&payments_domain::CheckoutId::parse("chk-po-r2").unwrap()).await.unwrap());
    }
}

/// Requesting and completing a reversal again (also concurrently) answers the stored reversal
/// and books nothing more; a failed reversal is answered as failed and leaves the order SUCCESS;
/// `transition` cannot move an order to REVERSED on its own.
#[tokio::test]
async fn reversal_is_idempotent() {
    for store in common::stores().await {
        let id = captured(&store, "po-ri", "seller-ri", "5.00", BOTH).await;
        assert!(matches!(
            store.transition(&id, &Transition::to(S::Reversed, "shortcut")).await,
            Err(StoreError::Precondition(_))
        ));
        let first = store.request_reversal(&id, "first").await.unwrap();
        assert_eq!(store.request_reversal(&id, "second call").await.unwrap(), first);
        let tasks: Vec<_> = (0..4)
            .map(|i| {
                let (store, key) = (store.clone(), first.refund_id.clone());
                tokio::spawn(async move { store.complete_refund(&key, &format!("re_{i}")).await })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap().unwrap());
        }
        answers.dedup();
        assert_eq!(answers.len(), 1, "every caller sees the one completion: {answers:?}");
        assert_eq!(store.complete_refund(&first.refund_id, "re_late").await.unwrap(), answers[0]);
        assert_eq!(store.request_reversal(&id, "after").await.unwrap(), answers[0]);
        assert_eq!(ledger_transactions(&store, "reversal").await, 1);
        let history = store.history(&id).await.unwrap();
        assert_eq!(history.iter().filter(|h| h.to_status == S::Reversed).count(), 1);
        let same = store.transition(&id, &Transition::to(S::Reversed, "replayed")).await.unwrap();
        assert_eq!(same.status, S::Reversed, "an already reversed order is answered unchanged");
        assert_consistent(&store).await;

        // A reversal the PSP refused: the order stays SUCCESS and the same call answers FAILED.
        let other = captured(&store, "po-rf", "seller-rf", "3.00", NONE).await;
        let r = store.request_reversal(&other, "wallet credit failed").await.unwrap();
        let failed = store.fail_refund(&r.refund_id, "psp_refund_failed").await.unwrap();
        assert_eq!(store.request_reversal(&other, "again").await.unwrap(), failed);
        assert_eq!(store.order(&other).await.unwrap().unwrap().status, S::Success);
        assert_consistent(&store).await;
    }
}

/// A REVERSED order takes no refunds (explicit id or numbered); orders that were not captured
/// cannot be reversed; a customer refund cannot take the reversal's id; a capture already
/// refunded in full has nothing left to reverse.
#[tokio::test]
async fn refunds_and_reversals_are_refused_when_they_make_no_sense() {
    for store in common::stores().await {
        let id = captured(&store, "po-rr", "seller-rr", "4.00", BOTH).await;
        let r = store.request_reversal(&id, "compensation").await.unwrap();
        store.complete_refund(&r.refund_id, "re_rr").await.unwrap();
        let res = store.request_refund(&rid("po-rr:refund:1"), &id, None, "customer").await;
        assert!(matches!(res, Err(StoreError::Precondition(_))), "{res:?}");
        let res = store.request_next_refund(&id, Some(usd(100)), "customer", None).await;
        assert!(matches!(res, Err(StoreError::Precondition(_))), "{res:?}");
        assert_eq!(store.refunds(&id).await.unwrap().len(), 1, "only the reversal");

        let fresh = common::checkout_order(&store, "po-rd", "seller-rd", "4.00").await;
        for step in [None, Some(S::Executing), Some(S::Failed)] {
            if let Some(to) = step {
                store.transition(&fresh, &Transition::to(to, "psp answered")).await.unwrap();
            }
            let res = store.request_reversal(&fresh, "x").await;
            assert!(matches!(res, Err(StoreError::Precondition(_))), "{step:?}: {res:?}");
        }
        assert!(store.refunds(&fresh).await.unwrap().is_empty());
        let missing = store.request_reversal(&po("po-none"), "x").await;
        assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");

        let refunded = captured(&store, "po-rx", "seller-rx", "4.00", BOTH).await;
        let squat = store.request_refund(&reversal_refund_id(&refunded), &refunded, None, "customer").await;
        assert!(matches!(squat, Err(StoreError::Precondition(_))), "the reversal id is not a customer's: {squat:?}");
        let full = store.request_next_refund(&refunded, None, "customer", None).await.unwrap().0;
        store.complete_refund(&full.refund_id, "re_full").await.unwrap();
        match store.request_reversal(&refunded, "late").await {
            Err(StoreError::RefundTooLarge { refundable }) => assert_eq!(refundable, usd(0)),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.order(&refunded).await.unwrap().unwrap().status, S::Success);
        assert_consistent(&store).await;
    }
}

/// `request_next_refund` numbers refunds `{order}:refund:1`, `:2`, ... counting every refund
/// of the order (failed ones too), skips an id a caller took explicitly, and enforces the same
/// limit as `request_refund`: partials adding up to the capture succeed, one minor unit more is
/// `RefundTooLarge`.
#[tokio::test]
async fn next_refund_numbering_and_limit() {
    for store in common::stores().await {
        let id = captured(&store, "po-n", "seller-n", "10.00", BOTH).await;
        let one = store.request_next_refund(&id, Some(usd(300)), "partial", None).await.unwrap().0;
        assert_eq!((one.refund_id.as_str(), one.kind), ("po-n:refund:1", RefundKind::Refund));
        store.fail_refund(&one.refund_id, "psp_refused").await.unwrap();
        let two = store.request_next_refund(&id, Some(usd(300)), "partial", None).await.unwrap().0;
        assert_eq!(two.refund_id.as_str(), "po-n:refund:2", "a failed refund still takes its number");
        store.complete_refund(&two.refund_id, "re_2").await.unwrap();
        // A caller took :4 explicitly; the count (3) gives 4 next, which is skipped.
        store.request_refund(&rid("po-n:refund:4"), &id, Some(usd(200)), "explicit").await.unwrap();
        let five = store.request_next_refund(&id, Some(usd(100)), "partial", None).await.unwrap().0;
        assert_eq!(five.refund_id.as_str(), "po-n:refund:5");
        let six = store.request_next_refund(&id, Some(usd(400)), "the rest", None).await.unwrap().0;
        assert_eq!(six.refund_id.as_str(), "po-n:refund:6");
        match store.request_next_refund(&id, Some(usd(1)), "one too many", None).await {
            Err(StoreError::RefundTooLarge { refundable }) => assert_eq!(refundable, usd(0)),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.refunds(&id).await.unwrap().len(), 5, "the refused request stored nothing");
        for r in [&five, &six] {
            store.complete_refund(&r.refund_id, "re").await.unwrap();
        }
        store.complete_refund(&rid("po-n:refund:4"), "re_4").await.unwrap();
        assert_eq!(balance(&store, "seller-n").await, 0);
        assert_consistent(&store).await;

        let bad = store.request_next_refund(&po("po-none"), None, "x", None).await;
        assert!(matches!(bad, Err(StoreError::NotFound(_))), "{bad:?}");
        let unbooked = captured(&store, "po-nu", "seller-nu", "1.00", NONE).await;
        let bad = store.request_next_refund(&unbooked, None, "x", None).await;
        assert!(matches!(bad, Err(StoreError::Precondition(_))), "{bad:?}");
    }
}
