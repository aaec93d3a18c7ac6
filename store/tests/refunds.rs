//! Refund storage, run against every configured backend (SQLite always, PostgreSQL when
//! `PAYMENTS_TEST_POSTGRES_URL` is set). Every test checks `verify()` after each step: the
//! wallets must always equal the ledger projection.

mod common;

use common::{po, stores};

use payments_domain::{Currency, Money, PaymentOrderId, PaymentOrderStatus as S, SellerAccount};
use payments_store::{
    Direction, EntryDraft, RefundId, RefundStatus, Store, StoreError, TransactionDraft, Transition, refund_ledger_key,
};

fn rid(s: &str) -> RefundId {
    RefundId::parse(s).unwrap()
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::parse("USD").unwrap())
}

/// Stores a one-order checkout and drives the order to SUCCESS with wallet and ledger booked,
/// unless `book` is false (then it stops at `status`).
async fn order(store: &Store, id: &str, seller: &str, amount: &str, status: S, book: bool) -> PaymentOrderId {
    let id = common::checkout_order(store, id, seller, amount).await;
    if status != S::NotStarted {
        store.transition(&id, &Transition::to(S::Executing, "charging")).await.unwrap();
    }
    if matches!(status, S::Success | S::Failed) {
        store.transition(&id, &Transition::to(status, "psp answered")).await.unwrap();
    }
    if book {
        store.credit_wallet_for_order(&id).await.unwrap();
        store.post_order_ledger(&id).await.unwrap();
    }
    id
}

async fn assert_consistent(store: &Store) {
    let report = store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
}

async fn balance(store: &Store, seller: &str) -> i64 {
    let b = store.wallet_balances(&SellerAccount::parse(seller).unwrap()).await.unwrap();
    assert_eq!(b.len(), 1, "{b:?}");
    b[0].amount_minor()
}

/// A full refund (amount `None`) reserves the whole capture; completing it books the ledger
/// reversal and the wallet debit, leaving the seller at zero and the books consistent.
#[tokio::test]
async fn full_refund_reverses_wallet_and_ledger() {
    for store in stores().await {
        let id = order(&store, "po-full", "seller-f", "12.34", S::Success, true).await;
        let r = store.request_refund(&rid("po-full:refund:1"), &id, None, "customer request").await.unwrap();
        assert_eq!((r.status, r.amount, r.reason.as_str()), (RefundStatus::Requested, usd(1234), "customer request"));
        assert_eq!(balance(&store, "seller-f").await, 1234, "a request books nothing");
        assert_consistent(&store).await;

        let done = store.complete_refund(&r.refund_id, "re_full").await.unwrap();
        assert_eq!((done.status, done.psp_refund_reference.as_deref()), (RefundStatus::Succeeded, Some("re_full")));
        assert_eq!(balance(&store, "seller-f").await, 0);
        let entries = store.ledger_entries(&refund_ledger_key(&r.refund_id)).await.unwrap();
        assert_eq!(
            entries,
            vec![
                EntryDraft {
                    account: "seller_payable:seller-f".into(),
                    direction: Direction::Debit,
                    amount: usd(1234)
                },
                EntryDraft { account: "psp_clearing".into(), direction: Direction::Credit, amount: usd(1234) },
            ]
        );
        assert_eq!(store.refunds(&id).await.unwrap(), vec![done]);
        assert_consistent(&store).await;
        match store.request_refund(&rid("po-full:refund:2"), &id, None, "again").await {
            Err(StoreError::RefundTooLarge { refundable }) => assert_eq!(refundable, usd(0)),
            other => panic!("{other:?}"),
        }
    }
}

/// Several partial refunds add up exactly to the capture; one minor unit more is refused with
/// `RefundTooLarge` naming what is still refundable, and bad amounts are preconditions.
#[tokio::test]
async fn partial_refunds_add_up_to_the_capture_and_no_more() {
    for store in stores().await {
        let id = order(&store, "po-part", "seller-p", "10.00", S::Success, true).await;
        for (n, minor) in [(1, 300), (2, 450)] {
            let key = rid(&format!("po-part:refund:{n}"));
            let r = store.request_refund(&key, &id, Some(usd(minor)), "partial").await.unwrap();
            store.complete_refund(&r.refund_id, &format!("re_{n}")).await.unwrap();
            assert_consistent(&store).await;
        }
        match store.request_refund(&rid("po-part:refund:3"), &id, Some(usd(251)), "one too many").await {
            Err(e @ StoreError::RefundTooLarge { .. }) => {
                assert!(matches!(e, StoreError::RefundTooLarge { refundable } if refundable == usd(250)));
                assert_eq!(e.type_name(), "StoreRefundTooLarge");
                assert!(!e.is_retryable());
            }
            other => panic!("{other:?}"),
        }
        let other_currency = Money::from_minor(250, Currency::parse("EUR").unwrap());
        for bad in [usd(0), usd(-5), other_currency] {
            let res = store.request_refund(&rid("po-part:refund:3"), &id, Some(bad), "bad").await;
            assert!(matches!(res, Err(StoreError::Precondition(_))), "{bad}: {res:?}");
        }
        let last = store.request_refund(&rid("po-part:refund:3"), &id, Some(usd(250)), "the rest").await.unwrap();
        store.complete_refund(&last.refund_id, "re_3").await.unwrap();
        assert_eq!(balance(&store, "seller-p").await, 0);
        let refunds = store.refunds(&id).await.unwrap();
        assert_eq!(refunds.iter().map(|r| r.amount.amount_minor()).sum::<i64>(), 1000);
        assert!(refunds.iter().all(|r| r.status == RefundStatus::Succeeded));
        assert!(matches!(
            store.request_refund(&rid("po-part:refund:4"), &id, Some(usd(1)), "over").await,
            Err(StoreError::RefundTooLarge { refundable }) if refundable == usd(0)
        ));
        assert_consistent(&store).await;
    }
}

/// Requesting the same refund id again answers the stored refund (another amount or order is
/// refused); completing it again, even concurrently, books nothing more.
#[tokio::test]
async fn request_and_complete_are_idempotent() {
    for store in stores().await {
        let id = order(&store, "po-idem", "seller-i", "5.00", S::Success, true).await;
        let other = order(&store, "po-idem2", "seller-i", "5.00", S::Success, true).await;
        let key = rid("po-idem:refund:1");
        let first = store.request_refund(&key, &id, Some(usd(200)), "dup").await.unwrap();
        assert_eq!(store.request_refund(&key, &id, Some(usd(200)), "dup").await.unwrap(), first);
        assert_eq!(store.request_refund(&key, &id, None, "dup").await.unwrap(), first);
        assert!(matches!(
            store.request_refund(&key, &id, Some(usd(201)), "dup").await,
            Err(StoreError::Precondition(_))
        ));
        assert!(matches!(
            store.request_refund(&key, &other, Some(usd(200)), "dup").await,
            Err(StoreError::Precondition(_))
        ));
        assert_eq!(store.refunds(&id).await.unwrap().len(), 1);
        assert!(store.refunds(&other).await.unwrap().is_empty());

        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move { store.complete_refund(&key, &format!("re_{i}")).await })
            })
            .collect();
        let mut references = Vec::new();
        for t in tasks {
            let r = t.await.unwrap().unwrap();
            assert_eq!(r.status, RefundStatus::Succeeded);
            references.push(r.psp_refund_reference.unwrap());
        }
        references.dedup();
        assert_eq!(references.len(), 1, "every caller sees the one completion: {references:?}");
        let done = store.complete_refund(&key, "re_late").await.unwrap();
        assert_eq!(done.psp_refund_reference, Some(references[0].clone()), "answered unchanged");
        assert_eq!(balance(&store, "seller-i").await, 1000 - 200);
        assert_eq!(store.request_refund(&key, &id, Some(usd(200)), "dup").await.unwrap(), done);
        assert!(matches!(store.fail_refund(&key, "late_failure").await, Err(StoreError::Precondition(_))));
        let report = store.verify().await.unwrap();
        assert!(report.is_consistent(), "{report:?}");
        assert_eq!(report.transactions, 3, "two pay-ins and one refund");
    }
}

/// A failed refund frees its amount: the whole capture can be refunded afterwards. Failing is
/// idempotent, and a failed refund cannot be completed.
#[tokio::test]
async fn failed_refund_frees_the_amount() {
    for store in stores().await {
        let id = order(&store, "po-fail", "seller-x", "7.00", S::Success, true).await;
        let r = store.request_refund(&rid("po-fail:refund:1"), &id, None, "first try").await.unwrap();
        assert!(matches!(
            store.request_refund(&rid("po-fail:refund:2"), &id, Some(usd(1)), "blocked").await,
            Err(StoreError::RefundTooLarge { refundable }) if refundable == usd(0)
        ));
        let failed = store.fail_refund(&r.refund_id, "insufficient_psp_balance").await.unwrap();
        assert_eq!(
            (failed.status, failed.failure_code.as_deref()),
            (RefundStatus::Failed, Some("insufficient_psp_balance"))
        );
        assert_eq!(store.fail_refund(&r.refund_id, "other_code").await.unwrap(), failed);
        assert!(matches!(store.complete_refund(&r.refund_id, "re_x").await, Err(StoreError::Precondition(_))));
        assert_eq!(balance(&store, "seller-x").await, 700);
        assert_consistent(&store).await;

        let second = store.request_refund(&rid("po-fail:refund:2"), &id, None, "second try").await.unwrap();
        assert_eq!(second.amount, usd(700));
        store.complete_refund(&second.refund_id, "re_2").await.unwrap();
        assert_eq!(balance(&store, "seller-x").await, 0);
        assert_consistent(&store).await;
    }
}

/// Concurrent requests for the same order never reserve more than the capture: of eight
/// requests for 3.00 against 10.00 exactly three win, the rest are `RefundTooLarge`.
#[tokio::test]
async fn concurrent_requests_never_exceed_the_capture() {
    for store in stores().await {
        let id = order(&store, "po-conc", "seller-c", "10.00", S::Success, true).await;
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (store, id) = (store.clone(), id.clone());
                tokio::spawn(async move {
                    store.request_refund(&rid(&format!("po-conc:refund:{i}")), &id, Some(usd(300)), "race").await
                })
            })
            .collect();
        let (mut won, mut refused) = (Vec::new(), 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(r) => won.push(r),
                Err(StoreError::RefundTooLarge { refundable }) => {
                    assert!(refundable.amount_minor() < 300, "{refundable}");
                    refused += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!((won.len(), refused), (3, 5));
        let completions: Vec<_> = won
            .into_iter()
            .map(|r| {
                let store = store.clone();
                tokio::spawn(async move { store.complete_refund(&r.refund_id, "re_race").await })
            })
            .collect();
        for c in completions {
            c.await.unwrap().unwrap();
        }
        let stored = store.refunds(&id).await.unwrap();
        assert_eq!(stored.iter().map(|r| r.amount.amount_minor()).sum::<i64>(), 900);
        assert_eq!(balance(&store, "seller-c").await, 100);
        assert_consistent(&store).await;
    }
}

/// Orders that are not SUCCESS, or not yet booked in wallet and ledger, cannot be refunded;
/// unknown orders and refunds are `NotFound`.
#[tokio::test]
async fn refund_of_unsettled_orders_is_refused() {
    for store in stores().await {
        let cases = [
            ("po-new", S::NotStarted, false),
            ("po-exec", S::Executing, false),
            ("po-declined", S::Failed, false),
            ("po-unbooked", S::Success, false),
        ];
        for (name, status, book) in cases {
            let id = order(&store, name, "seller-u", "1.00", status, book).await;
            let res = store.request_refund(&rid(&format!("{name}:refund:1")), &id, None, "no").await;
            assert!(matches!(res, Err(StoreError::Precondition(_))), "{name}: {res:?}");
            assert!(store.refunds(&id).await.unwrap().is_empty());
        }
        let res = store.request_refund(&rid("po-none:refund:1"), &po("po-none"), None, "no").await;
        assert!(matches!(res, Err(StoreError::NotFound(_))), "{res:?}");
        assert!(matches!(store.complete_refund(&rid("nope"), "re").await, Err(StoreError::NotFound(_))));
        assert!(matches!(store.fail_refund(&rid("nope"), "x").await, Err(StoreError::NotFound(_))));
        assert!(RefundId::parse("").is_err() && RefundId::parse("a b").is_err());
        assert_consistent(&store).await;
    }
}

/// A refund the seller's wallet cannot cover (the money was paid out meanwhile) is booked all
/// the same: the buyer's refund is never held up by the seller's balance, which goes below
/// zero (carried to the next payout) and stays equal to the ledger.
#[tokio::test]
async fn a_refund_after_a_payout_carries_a_negative_balance() {
    for store in stores().await {
        let id = order(&store, "po-neg", "seller-n", "5.00", S::Success, true).await;
        // Simulate a payout of 4.00 (ledger and wallet together; the payout flow comes later).
        let payout = TransactionDraft {
            id: "payout-1".into(),
            kind: "payout".into(),
            payment_order_id: None,
            entries: vec![
                EntryDraft { account: "seller_payable:seller-n".into(), direction: Direction::Debit, amount: usd(400) },
                EntryDraft { account: "bank".into(), direction: Direction::Credit, amount: usd(400) },
            ],
        };
        store.post_ledger(&payout).await.unwrap();
        sqlx::query("UPDATE wallet SET balance_minor = balance_minor - 400 WHERE seller_account = 'seller-n'")
            .execute(store.pool())
            .await
            .unwrap();
        assert_consistent(&store).await;

        let r = store.request_refund(&rid("po-neg:refund:1"), &id, None, "too late").await.unwrap();
        store.complete_refund(&r.refund_id, "re_neg").await.unwrap();
        assert_eq!(balance(&store, "seller-n").await, -400, "5.00 credited, 4.00 paid out, 5.00 refunded");
        assert_eq!(store.refunds(&id).await.unwrap()[0].status, RefundStatus::Succeeded);
        assert_eq!(store.ledger_entries(&refund_ledger_key(&r.refund_id)).await.unwrap().len(), 2, "no fee: two legs");
        assert_consistent(&store).await;
    }
}
