//! Lost starts are always repaired (point 5 of the money-safety issue). A checkout or refund is
//! stored before its workflow starts; when the start is lost (the gateway died in between,
//! Temporal was down) the gateway's start sweep starts it -- nobody has to re-POST, no row is
//! too old for it, and rows that stay parked cannot starve the ones behind them. Both
//! databases, real Temporal and simulator; the sweep runs every second here.

mod common;

use common::{assert_books_consistent, paid_order, quick_limits, wait_refund_final};
use payments_domain::checkout::draft_from_json;
use payments_domain::{CheckoutId, Money, NewCheckout, PaymentOrderId, PaymentOrderStatus as S};
use payments_store::RefundStatus;
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::json;
use std::time::Duration;

/// Refunds parked in front of the lost one: more than one of the old sweep's batches (100).
const PARKED_REFUNDS: usize = 101;
/// Bound for the sweep to reach every row (it runs every second).
const SWEEP_TIMEOUT: Duration = Duration::from_secs(120);

async fn stack(database_url: String) -> Stack {
    let options = StackOptions {
        database_url: Some(database_url),
        waits: quick_limits(),
        start_sweep_secs: 1,
        ..StackOptions::new()
    };
    Stack::start(options).await
}

/// A checkout stored as the gateway stores it, whose gateway died before the start: the sweep
/// starts its workflow; it is charged once and booked.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_whose_start_was_lost_is_started(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url).await;
    let id = unique("chk");
    let body = json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": [{"seller_account": "seller-a", "amount": "7.00", "currency": "USD",
            "payment_order_id": format!("{id}-1")}],
    });
    let checkout = NewCheckout::parse(draft_from_json(&body).unwrap()).unwrap();
    stack.store.create_checkout(&checkout, None).await.unwrap();
    let done = stack.wait_done(&id).await;
    assert_eq!(done.orders[0].status, S::Success);
    assert!(done.workflow_started);
    assert!(stack.workflow_exists(&format!("checkout-{id}")).await);
    assert_eq!(stack.captures(&format!("{id}-1")).await.len(), 1);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// A refund stored two hours ago whose start was lost (the old sweep only looked back one
/// hour) is started all the same: nothing was sent to the PSP for it, so it is safe at any
/// age. It ends SUCCEEDED, refunded once.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_refund_whose_start_was_lost_is_started(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url).await;
    let po = paid_order(&stack, "pm_card_visa", "9.00", "USD").await;
    let order = PaymentOrderId::parse(&po).unwrap();
    let (refund, _) = stack.store.request_next_refund(&order, None, "start lost", None).await.unwrap();
    sqlx::query("UPDATE refund SET created_at_ms = created_at_ms - 7200000 WHERE refund_id = $1")
        .bind(refund.refund_id.to_string())
        .execute(stack.store.pool())
        .await
        .unwrap();
    assert_eq!(wait_refund_final(&stack, &refund.refund_id).await.status, RefundStatus::Succeeded);
    assert_eq!(stack.sim_refunds(&po).await.len(), 1);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// 101 refunds whose starts were lost stay REQUESTED once started (the PSP refuses refunds:
/// they park as dead letters), and one more is stored after them. The old sweep took the 100
/// oldest REQUESTED refunds each round, so the newest was never reached; now every row whose
/// start is missing is reached, in bounded batches. Every refund gets its workflow.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_refunds_do_not_starve_a_lost_start(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url).await;
    let po = paid_order(&stack, "pm_card_visa", "5.00", "USD").await;
    let order = PaymentOrderId::parse(&po).unwrap();
    stack.psp_outage(false, false, true).await;
    let cent = Money::parse("0.01", payments_domain::Currency::parse("USD").unwrap()).unwrap();
    let mut ids = Vec::new();
    for _ in 0..=PARKED_REFUNDS {
        let (refund, _) = stack.store.request_next_refund(&order, Some(cent), "start lost", None).await.unwrap();
        ids.push(refund.refund_id);
    }
    let last = ids.last().unwrap().clone();
    stack
        .poll_until("every refund's workflow to start", SWEEP_TIMEOUT, || async {
            let refunds = stack.store.refunds(&order).await.ok()?;
            refunds.iter().all(|r| r.workflow_started).then_some(())
        })
        .await;
    assert!(stack.workflow_exists(&format!("refund-{last}")).await, "the newest was reached");
    let record = stack.store.refund(&last).await.unwrap().unwrap();
    assert_eq!(record.status, RefundStatus::Requested, "parked, never refunded");
    let checkout = stack.store.order(&order).await.unwrap().unwrap().checkout_id;
    let stored = stack.store.checkout(&CheckoutId::parse(checkout.as_str()).unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.orders[0].status, S::Success);
    assert!(stack.sim_refunds(&po).await.is_empty());
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}
