//! Platform fees booked at capture, on every configured backend: the rate in force at the
//! capture is recorded on the order by its first booking and used by every later one; the
//! pay-in books three legs (clearing = seller net + platform revenue); the wallet mirrors the
//! net; refunds give the fee back proportionally and cumulatively, and the whole order's
//! refunds give back exactly the fee; a reversal gives back exactly what was booked.

mod common;

use common::{
    BOTH, Book, assert_consistent, balance, captured, checkout_order, next_millisecond, rid, seller, stores, usd,
};
use payments_domain::fees::FeeRate;
use payments_domain::{Currency, PaymentOrderStatus as S};
use payments_store::{
    Direction, EntryDraft, PLATFORM_REVENUE_ACCOUNT, PSP_CLEARING_ACCOUNT, Store, Transition, order_ledger_key,
    refund_ledger_key,
};

fn usd_code() -> Currency {
    Currency::parse("USD").unwrap()
}

/// The platform's USD revenue: credits minus debits of its account.
async fn revenue(store: &Store) -> i64 {
    sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE direction WHEN 'CREDIT' THEN amount_minor ELSE -amount_minor END), 0) AS BIGINT) \
         FROM ledger_entry WHERE account = $1 AND currency = 'USD'",
    )
    .bind(PLATFORM_REVENUE_ACCOUNT)
    .fetch_one(store.pool())
    .await
    .map(|r| sqlx::Row::get::<i64, _>(&r, 0))
    .unwrap()
}

fn entry(account: &str, direction: Direction, minor: i64) -> EntryDraft {
    EntryDraft { account: account.into(), direction, amount: usd(minor) }
}

/// 2.90 % + 0.30 on 10.00: 29 + 30 = 59 to the platform, 941 to the seller, in one balanced
/// three-leg transaction; the rate is recorded on the order.
#[tokio::test]
async fn capture_books_net_and_fee_in_three_legs() {
    for store in stores().await {
        store.set_fee_rate(usd_code(), None, FeeRate::new(290, 30).unwrap(), None, "ops").await.unwrap();
        next_millisecond().await;
        let id = captured(&store, "po-fee", "seller-f", "10.00", BOTH).await;
        let entries = store.ledger_entries(&order_ledger_key(&id)).await.unwrap();
        assert_eq!(
            entries,
            vec![
                entry(PSP_CLEARING_ACCOUNT, Direction::Debit, 1000),
                entry("seller_payable:seller-f", Direction::Credit, 941),
                entry(PLATFORM_REVENUE_ACCOUNT, Direction::Credit, 59),
            ]
        );
        assert_eq!(balance(&store, "seller-f").await, 941, "the wallet mirrors the net");
        assert_eq!(revenue(&store).await, 59);
        let fee = store.order(&id).await.unwrap().unwrap().fee.expect("recorded on the order");
        assert_eq!((fee.rate, fee.fee), (FeeRate::new(290, 30).unwrap(), usd(59)));
        let history = store.history(&id).await.unwrap();
        let capture = history.iter().find(|h| h.to_status == S::Success).unwrap();
        assert_eq!(fee.captured_at_ms, capture.created_at_ms, "the moment of capture");
        // Posting and crediting again changes nothing.
        store.post_order_ledger(&id).await.unwrap();
        store.credit_wallet_for_order(&id).await.unwrap();
        assert_eq!((balance(&store, "seller-f").await, revenue(&store).await), (941, 59));
        assert_consistent(&store).await;
    }
}

/// A rate stored after the capture does not apply to it, even when the capture is booked
/// later; the second booking step reads the rate the first recorded. A seller's override
/// applies to that seller only. No rate at all: no fee, two legs.
#[tokio::test]
async fn the_rate_in_force_at_capture_applies_to_every_booking() {
    for store in stores().await {
        // Captured (SUCCESS) before any rate existed, booked after one was set.
        let early = checkout_order(&store, "po-early", "seller-e", "10.00").await;
        store.transition(&early, &Transition::to(S::Executing, "charging")).await.unwrap();
        store.transition(&early, &Transition::to(S::Success, "psp captured")).await.unwrap();
        next_millisecond().await;
        store.set_fee_rate(usd_code(), None, FeeRate::new(1000, 0).unwrap(), None, "ops").await.unwrap();
        store.credit_wallet_for_order(&early).await.unwrap();
        // A higher rate from now on, then the ledger step of the early order.
        next_millisecond().await;
        store
            .set_fee_rate(usd_code(), Some(&seller("seller-o")), FeeRate::new(500, 0).unwrap(), None, "ops")
            .await
            .unwrap();
        store.post_order_ledger(&early).await.unwrap();
        assert_eq!(store.ledger_entries(&order_ledger_key(&early)).await.unwrap().len(), 2, "no fee, two legs");
        assert_eq!(balance(&store, "seller-e").await, 1000);
        next_millisecond().await;

        let plain = captured(&store, "po-plain", "seller-p", "10.00", Book { wallet: true, ledger: false }).await;
        let over = captured(&store, "po-over", "seller-o", "10.00", Book { wallet: false, ledger: true }).await;
        store.post_order_ledger(&plain).await.unwrap();
        store.credit_wallet_for_order(&over).await.unwrap();
        assert_eq!(balance(&store, "seller-p").await, 900, "the default 10 %");
        assert_eq!(balance(&store, "seller-o").await, 950, "the seller's override 5 %");
        assert_eq!(revenue(&store).await, 150);
        assert_consistent(&store).await;
    }
}

/// Percentages round half to even: 1 % of 0.50 is 0.005 -> 0.00; of 1.50, 0.015 -> 0.02; and
/// a fixed fee larger than a tiny order takes it whole, leaving the seller nothing (no wallet
/// movement, two legs) without losing a minor unit.
#[tokio::test]
async fn rounding_is_half_even_and_capped_at_the_gross() {
    for store in stores().await {
        store.set_fee_rate(usd_code(), None, FeeRate::new(100, 0).unwrap(), None, "ops").await.unwrap();
        store
            .set_fee_rate(usd_code(), Some(&seller("seller-tiny")), FeeRate::new(0, 50).unwrap(), None, "ops")
            .await
            .unwrap();
        next_millisecond().await;
        captured(&store, "po-half-a", "seller-h", "0.50", BOTH).await;
        assert_eq!(revenue(&store).await, 0, "0.5 rounds to the even 0");
        captured(&store, "po-half-b", "seller-h", "1.50", BOTH).await;
        assert_eq!(revenue(&store).await, 2, "1.5 rounds to the even 2");
        assert_eq!(balance(&store, "seller-h").await, 50 + 148);
        let tiny = captured(&store, "po-tiny", "seller-tiny", "0.30", BOTH).await;
        assert_eq!(revenue(&store).await, 32, "the fee is capped at the gross");
        assert_eq!(balance(&store, "seller-tiny").await, 0);
        assert!(store.order(&tiny).await.unwrap().unwrap().is_settled());
        assert_consistent(&store).await;
    }
}

/// 10.00 with a 0.59 fee, refunded in parts 3.33 and 6.67: the fee comes back as
/// round(59 x 333 / 1000) = 20, then the rest, 39; the seller gives back 3.13 and 6.28; in the
/// end the seller and the platform both hold zero.
#[tokio::test]
async fn refunds_give_the_fee_back_proportionally() {
    for store in stores().await {
        store.set_fee_rate(usd_code(), None, FeeRate::new(290, 30).unwrap(), None, "ops").await.unwrap();
        next_millisecond().await;
        let id = captured(&store, "po-rf", "seller-r", "10.00", BOTH).await;
        let first = store.request_refund(&rid("po-rf:refund:1"), &id, Some(usd(333)), "part").await.unwrap();
        store.complete_refund(&first.refund_id, "re_1").await.unwrap();
        assert_eq!(
            store.ledger_entries(&refund_ledger_key(&first.refund_id)).await.unwrap(),
            vec![
                entry("seller_payable:seller-r", Direction::Debit, 313),
                entry(PLATFORM_REVENUE_ACCOUNT, Direction::Debit, 20),
                entry(PSP_CLEARING_ACCOUNT, Direction::Credit, 333),
            ]
        );
        assert_eq!((balance(&store, "seller-r").await, revenue(&store).await), (941 - 313, 59 - 20));
        let rest = store.request_refund(&rid("po-rf:refund:2"), &id, None, "rest").await.unwrap();
        assert_eq!(rest.amount, usd(667));
        store.complete_refund(&rest.refund_id, "re_2").await.unwrap();
        assert_eq!((balance(&store, "seller-r").await, revenue(&store).await), (0, 0), "everything given back");
        assert_consistent(&store).await;
    }
}

/// A reversal gives back exactly what the capture booked: the net from the wallet when only
/// the wallet was credited (the fee was recorded by that step), the three legs when both were.
#[tokio::test]
async fn a_reversal_gives_back_net_and_fee() {
    for store in stores().await {
        store.set_fee_rate(usd_code(), None, FeeRate::new(290, 30).unwrap(), None, "ops").await.unwrap();
        next_millisecond().await;
        for (id, book) in [("po-rv-w", Book { wallet: true, ledger: false }), ("po-rv-b", BOTH)] {
            let id = captured(&store, id, "seller-v", "10.00", book).await;
            let reversal = store.request_reversal(&id, "saga compensation").await.unwrap();
            store.complete_refund(&reversal.refund_id, "re_v").await.unwrap();
            assert_eq!(store.order(&id).await.unwrap().unwrap().status, S::Reversed);
        }
        assert_eq!((balance(&store, "seller-v").await, revenue(&store).await), (0, 0));
        assert_consistent(&store).await;
    }
}

/// An order whose ledger step was booked by a version before fees (two legs, the gross, no fee
/// recorded) gets a zero fee when its wallet step runs now, whatever rate is in force: both
/// steps book the same and the books stay consistent.
#[tokio::test]
async fn an_order_booked_before_fees_keeps_a_zero_fee() {
    for store in stores().await {
        let id = checkout_order(&store, "po-old", "seller-old", "10.00").await;
        store.transition(&id, &Transition::to(S::Executing, "charging")).await.unwrap();
        store.transition(&id, &Transition::to(S::Success, "psp captured")).await.unwrap();
        let old = payments_store::TransactionDraft {
            id: order_ledger_key(&id),
            kind: "payin".into(),
            payment_order_id: Some(id.clone()),
            entries: vec![
                entry(PSP_CLEARING_ACCOUNT, Direction::Debit, 1000),
                entry("seller_payable:seller-old", Direction::Credit, 1000),
            ],
        };
        store.post_ledger(&old).await.unwrap();
        sqlx::query("UPDATE payment_order SET ledger_updated = TRUE WHERE payment_order_id = 'po-old'")
            .execute(store.pool())
            .await
            .unwrap();
        store.set_fee_rate(usd_code(), None, FeeRate::new(1000, 0).unwrap(), None, "ops").await.unwrap();
        store.credit_wallet_for_order(&id).await.unwrap();
        assert_eq!(balance(&store, "seller-old").await, 1000, "the gross, as the ledger booked it");
        assert_eq!(store.order(&id).await.unwrap().unwrap().fee.unwrap().fee, usd(0));
        assert_consistent(&store).await;
    }
}
