//! A PSP lookup only counts when it is about our order (point 2 of the money-safety issue).
//! After an unclear confirm, the hosted flow looks the payment up by the `paymentKey` the
//! buyer's browser brought back; a key of someone else's payment (or a path in its place) must
//! never make this checkout SUCCESS. Both databases, real Temporal and simulator (Toss).

mod common;

use common::{STATE_TIMEOUT, assert_books_consistent, pay_hosted, paymentsctl, quick_limits, wait_dead_letter};
use payments_domain::{CheckoutId, PaymentOrderStatus as S};
use payments_store::DeadLetterStatus;
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::json;
use std::time::Duration;

async fn toss_stack(database_url: String) -> Stack {
    let options = StackOptions {
        database_url: Some(database_url),
        psp_provider: "toss".into(),
        waits: quick_limits(),
        ..StackOptions::new()
    };
    Stack::start(options).await
}

/// Creates a one-seller hosted checkout of KRW 20000; answers its id.
async fn hosted_checkout(stack: &Stack) -> String {
    let id = unique("hosted");
    let body = json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "payment_orders": [{"seller_account": "seller-a", "amount": "20000", "currency": "KRW",
            "payment_order_id": format!("{id}-1")}],
    });
    let resp = stack.http.post(format!("{}/v1/checkouts", stack.rest_url)).json(&body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    id
}

/// Sends the buyer's browser to our success page with `payment_key`, not waiting for the
/// answer (a confirmation that cannot settle keeps the page waiting).
fn redirect(stack: &Stack, checkout: &str, payment_key: &str) {
    let url = format!(
        "{}/checkout/{checkout}/success?paymentKey={payment_key}&orderId={checkout}&amount=20000",
        stack.rest_url
    );
    let http = stack.http.clone();
    tokio::spawn(async move {
        let _ = http.get(url).timeout(Duration::from_secs(5)).send().await;
    });
}

/// Checkout A is paid. Checkout B's buyer comes back with A's `paymentKey` while Toss's
/// confirm is failing: B's confirm gets no clear answer, so B looks the payment up by that
/// key and finds A's DONE payment -- for order A. That is never B's capture: the lookup parks
/// as a dead letter for an operator, B's order is not SUCCESS and nothing is credited; the
/// operator resolves it and B's order ends FAILED `psp_payment_mismatch`. (Before the fix, B
/// became SUCCESS and its seller was credited with money nobody paid.)
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_never_counts_another_orders_payment(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = toss_stack(url).await;
    let a = hosted_checkout(&stack).await;
    let a_key = pay_hosted(&stack, &a, 20000).await;
    assert_eq!(stack.wait_done(&a).await.orders[0].status, S::Success);

    let b = hosted_checkout(&stack).await;
    stack.psp_outage(true, false, false).await;
    redirect(&stack, &b, &a_key);
    let letter = format!("{b}-1:psp.lookup");
    let parked = wait_dead_letter(&stack, &letter, DeadLetterStatus::Open, 1).await;
    assert!(parked.last_error.contains(&a), "{}", parked.last_error);
    let record = stack.store.checkout(&CheckoutId::parse(&b).unwrap()).await.unwrap().unwrap();
    assert_ne!(record.orders[0].status, S::Success);
    assert!(!record.orders[0].wallet_updated && !record.orders[0].ledger_updated);

    stack.psp_outage(false, false, false).await;
    paymentsctl(&stack, &["dlq", "resolve", &letter, "--operator", "ops", "--reason", "A's payment, not B's"])
        .await
        .unwrap();
    let done = stack.wait_done(&b).await;
    assert_eq!(done.orders[0].status, S::Failed);
    assert_eq!(done.orders[0].failure_code.as_deref(), Some("psp_payment_mismatch"));
    assert_eq!(stack.captures(&a).await.len(), 1);
    assert!(stack.captures(&b).await.is_empty());
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// B's buyer comes back with `paymentKey=orders/<A>`, which an unescaped URL would turn into
/// Toss's lookup of order A. The success page refuses the malformed key before anything
/// reaches the workflow or the PSP; B still awaits its payment and can be paid normally.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_key_is_never_a_path(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = toss_stack(url).await;
    let a = hosted_checkout(&stack).await;
    pay_hosted(&stack, &a, 20000).await;
    stack.wait_done(&a).await;

    let b = hosted_checkout(&stack).await;
    stack.psp_outage(true, false, false).await;
    for key in [format!("orders%2F{a}"), format!("orders/{a}"), "..".to_owned()] {
        let url = format!("{}/checkout/{b}/success?paymentKey={key}&orderId={b}&amount=20000", stack.rest_url);
        let resp = stack.http.get(url).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{key}");
        assert!(resp.text().await.unwrap().contains("malformed"), "{key}");
    }
    let record = stack.store.checkout(&CheckoutId::parse(&b).unwrap()).await.unwrap().unwrap();
    assert!(record.orders.iter().all(|o| o.status == S::NotStarted), "nothing confirmed");

    stack.psp_outage(false, false, false).await;
    pay_hosted(&stack, &b, 20000).await;
    let done = stack
        .poll_until("B paid", STATE_TIMEOUT, || async {
            stack.store.checkout(&CheckoutId::parse(&b).unwrap()).await.ok().flatten().filter(|c| c.is_payment_done)
        })
        .await;
    assert_eq!(done.orders[0].status, S::Success);
    assert_eq!(stack.captures(&b).await.len(), 1);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}
