//! Store behaviour, run against every configured backend (SQLite always, PostgreSQL when
//! `PAYMENTS_TEST_POSTGRES_URL` is set).

mod common;

use common::{po, stores};

use payments_domain::checkout::draft_from_json;
use payments_domain::{NewCheckout, PaymentOrderStatus as S};
use payments_store::{CreateOutcome, Direction, EntryDraft, PostOutcome, StoreError, TransactionDraft, Transition};
use serde_json::json;

fn checkout(id: &str, orders: &[(&str, &str, &str, &str)]) -> NewCheckout {
    let orders: Vec<_> = orders
        .iter()
        .map(|(po, seller, amount, cur)| {
            json!({"payment_order_id": po, "seller_account": seller, "amount": amount, "currency": cur})
        })
        .collect();
    let body = json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": orders,
    });
    NewCheckout::parse(draft_from_json(&body).unwrap()).unwrap()
}

/// Creating a checkout stores the event and NOT_STARTED orders; the same request again is
/// answered from storage; a changed request or a stolen order id is refused.
#[tokio::test]
async fn create_checkout_is_idempotent_and_guards_ids() {
    for store in stores().await {
        let c = checkout("chk-1", &[("po-1", "seller-a", "10.00", "USD"), ("po-2", "seller-b", "5000", "KRW")]);
        let created = store.create_checkout(&c, None).await.unwrap();
        assert!(matches!(created, CreateOutcome::Created(_)));
        let rec = created.record();
        assert_eq!(rec.orders.len(), 2);
        assert!(rec.orders.iter().all(|o| o.status == S::NotStarted && !o.wallet_updated));
        assert_eq!(store.history(&po("po-1")).await.unwrap().len(), 1);

        assert!(matches!(store.create_checkout(&c, None).await.unwrap(), CreateOutcome::Existing(_)));
        let changed = checkout("chk-1", &[("po-1", "seller-a", "11.00", "USD"), ("po-2", "seller-b", "5000", "KRW")]);
        assert!(matches!(store.create_checkout(&changed, None).await, Err(StoreError::CheckoutMismatch(_))));
        let thief = checkout("chk-2", &[("po-9", "seller-a", "1.00", "USD"), ("po-2", "seller-c", "1", "KRW")]);
        match store.create_checkout(&thief, None).await {
            Err(StoreError::OrderIdTaken { index, payment_order_id }) => {
                assert_eq!((index, payment_order_id.as_str()), (1, "po-2"));
            }
            other => panic!("{other:?}"),
        }
        assert!(store.checkout(&thief.checkout_id).await.unwrap().is_none(), "nothing of chk-2 stored");
    }
}

/// Concurrent identical creates store one checkout and answer every caller.
#[tokio::test]
async fn concurrent_creates_store_once() {
    for store in stores().await {
        let c = checkout("chk-c", &[("po-c1", "seller-a", "1.00", "USD")]);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, c) = (store.clone(), c.clone());
                tokio::spawn(async move { store.create_checkout(&c, None).await })
            })
            .collect();
        let mut created = 0;
        for t in tasks {
            if let CreateOutcome::Created(_) = t.await.unwrap().unwrap() {
                created += 1;
            }
        }
        assert_eq!(created, 1);
        assert_eq!(store.history(&po("po-c1")).await.unwrap().len(), 1);
    }
}

/// Transitions follow the lifecycle, are idempotent, and every real one is in the history.
#[tokio::test]
async fn transitions_follow_the_lifecycle() {
    for store in stores().await {
        store.create_checkout(&checkout("chk-t", &[("po-t", "seller-a", "1.00", "USD")]), None).await.unwrap();
        let id = po("po-t");
        store.transition(&id, &Transition::to(S::Executing, "charging")).await.unwrap();
        store.transition(&id, &Transition::to(S::Executing, "charging again")).await.unwrap();
        let mut t = Transition::to(S::Success, "psp captured");
        t.psp_reference = Some("pi_123".into());
        let o = store.transition(&id, &t).await.unwrap();
        assert_eq!((o.status, o.psp_reference.as_deref()), (S::Success, Some("pi_123")));
        assert!(matches!(
            store.transition(&id, &Transition::to(S::Failed, "late decline")).await,
            Err(StoreError::InvalidTransition { .. })
        ));
        let h: Vec<_> = store.history(&id).await.unwrap().iter().map(|h| h.to_status).collect();
        assert_eq!(h, vec![S::NotStarted, S::Executing, S::Success]);
    }
}

/// A captured order is credited to the wallet and posted to the ledger exactly once however
/// often the steps are repeated, and verify finds wallet and ledger equal and balanced.
#[tokio::test]
async fn wallet_and_ledger_are_applied_once() {
    for store in stores().await {
        store.create_checkout(&checkout("chk-w", &[("po-w", "seller-w", "12.34", "USD")]), None).await.unwrap();
        let id = po("po-w");
        assert!(matches!(store.credit_wallet_for_order(&id).await, Err(StoreError::Precondition(_))));
        store.transition(&id, &Transition::to(S::Executing, "charging")).await.unwrap();
        store.transition(&id, &Transition::to(S::Success, "captured")).await.unwrap();
        for i in 0..3 {
            let w = store.credit_wallet_for_order(&id).await.unwrap();
            assert_eq!(w.balance.amount_minor(), 1234);
            assert_eq!(w.applied_now, i == 0);
            let p = store.post_order_ledger(&id).await.unwrap();
            assert_eq!(p, if i == 0 { PostOutcome::Posted } else { PostOutcome::AlreadyPosted });
        }
        let o = store.order(&id).await.unwrap().unwrap();
        assert!(o.wallet_updated && o.ledger_updated);
        assert!(store.complete_checkout(&o.checkout_id).await.unwrap());
        let report = store.verify().await.unwrap();
        assert!(report.is_consistent(), "{report:?}");
        assert_eq!((report.transactions, report.entries, report.wallets), (1, 2, 1));
    }
}

fn entry(account: &str, direction: Direction, minor: i64, cur: &str) -> EntryDraft {
    let currency = payments_domain::Currency::parse(cur).unwrap();
    EntryDraft { account: account.into(), direction, amount: payments_domain::Money::from_minor(minor, currency) }
}

/// The database itself refuses unbalanced transactions, entries added to a sealed transaction,
/// and any UPDATE or DELETE of ledger rows, even from raw SQL that bypasses our code (every
/// append-only table, with real rows: `append_only.rs`).
#[tokio::test]
async fn database_enforces_ledger_invariants() {
    for store in stores().await {
        let good = TransactionDraft {
            id: "t-1".into(),
            kind: "test".into(),
            payment_order_id: None,
            entries: vec![entry("a", Direction::Debit, 100, "USD"), entry("b", Direction::Credit, 100, "USD")],
        };
        assert_eq!(store.post_ledger(&good).await.unwrap(), PostOutcome::Posted);
        let mut other = good.clone();
        other.entries[0].account = "c".into();
        assert!(matches!(store.post_ledger(&other).await, Err(StoreError::Precondition(_))));

        let pool = store.pool();
        let raw = [
            "UPDATE ledger_entry SET amount_minor = 1",
            "DELETE FROM ledger_entry",
            "UPDATE ledger_transaction SET kind = 'x'",
            "DELETE FROM ledger_transaction",
            // Adding to a sealed transaction.
            "INSERT INTO ledger_entry (transaction_id, account, direction, amount_minor, currency) \
             VALUES ('t-1', 'a', 'DEBIT', 5, 'USD')",
        ];
        for sql in raw {
            let mut tx = pool.begin().await.unwrap();
            let res = sqlx::query(sql).execute(&mut *tx).await;
            let res = match res {
                Ok(_) => tx.commit().await.map(|_| ()),
                Err(e) => Err(e),
            };
            assert!(res.is_err(), "database accepted: {sql}");
        }
        // Unbalanced (per currency) transaction written with raw SQL: the seal is refused.
        let mut tx = pool.begin().await.unwrap();
        for (acct, dir, amt, cur) in [("a", "DEBIT", 100, "USD"), ("b", "CREDIT", 100, "EUR")] {
            sqlx::query("INSERT INTO ledger_entry (transaction_id, account, direction, amount_minor, currency) VALUES ('t-2', $1, $2, $3, $4)")
                .bind(acct).bind(dir).bind(amt as i64).bind(cur)
                .execute(&mut *tx).await.unwrap();
        }
        let seal = sqlx::query("INSERT INTO ledger_transaction (id, kind, created_at_ms) VALUES ('t-2', 'x', 0)")
            .execute(&mut *tx)
            .await;
        assert!(seal.is_err(), "unbalanced transaction sealed");
        drop(tx);
        // Entries without a transaction fail at commit (deferred foreign key).
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO ledger_entry (transaction_id, account, direction, amount_minor, currency) VALUES ('t-3', 'a', 'DEBIT', 1, 'USD')")
            .execute(&mut *tx).await.unwrap();
        assert!(tx.commit().await.is_err(), "orphan entry committed");
        let report = store.verify().await.unwrap();
        assert!(report.is_consistent(), "{report:?}");
        assert_eq!(report.transactions, 1);
    }
}
