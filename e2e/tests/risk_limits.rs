//! Risk rules fail closed and card numbers are refused wherever they hide (point 8 of the
//! money-safety issue): a checkout over its per-currency total is declined even when each order
//! is within the per-order limit; an order in a currency without a configured limit is
//! declined, never charged unchecked; a card number in free text (a refund reason, an
//! Idempotency-Key, an id) is refused with nothing stored. Both databases, real Temporal and
//! simulator.

mod common;

use common::{assert_books_consistent, paid_order};
use payments_domain::{PaymentOrderId, PaymentOrderStatus as S};
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::{Value, json};

fn body(checkout: &str, orders: &[(&str, &str)]) -> Value {
    let orders: Vec<Value> = orders
        .iter()
        .enumerate()
        .map(|(i, (amount, currency))| {
            json!({"seller_account": format!("seller-{i}"), "amount": amount, "currency": currency,
                "payment_order_id": format!("{checkout}-{}", i + 1)})
        })
        .collect();
    json!({"checkout_id": checkout, "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"}, "payment_orders": orders})
}

/// Five USD orders of 45,000 each: every order is within the default per-order limit (50,000),
/// the checkout (225,000) is over the default per-checkout limit (200,000). Declined
/// `risk_checkout_amount_limit`; nothing charged.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_over_its_total_limit_is_declined(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let id = unique("chk");
    let (status, answer) = stack.post_payment(&body(&id, &[("45000.00", "USD"); 5])).await;
    assert_eq!(status, 202, "{answer}");
    let done = stack.wait_done(&id).await;
    for order in &done.orders {
        assert_eq!(order.status, S::Failed);
        assert_eq!(order.failure_code.as_deref(), Some("risk_checkout_amount_limit"));
        assert!(stack.captures(order.payment_order_id.as_str()).await.is_empty());
    }
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// The worker is configured with limits for USD only: an SGD order is declined
/// `risk_currency_not_configured` (before the fix it was charged with no limit at all).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_currency_without_limits_is_declined(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let options =
        StackOptions { database_url: Some(url), risk_order_limits: Some("USD:50000".into()), ..StackOptions::new() };
    let stack = Stack::start(options).await;
    let id = unique("chk");
    assert_eq!(stack.post_payment(&body(&id, &[("9999999.00", "SGD")])).await.0, 202);
    let done = stack.wait_done(&id).await;
    assert_eq!(done.orders[0].status, S::Failed);
    assert_eq!(done.orders[0].failure_code.as_deref(), Some("risk_currency_not_configured"));
    assert!(stack.captures(&format!("{id}-1")).await.is_empty());
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// A card number hidden in free text -- a refund reason (with dots), an Idempotency-Key, an
/// order id (full-width digits are not ids, so dashes) -- is refused with a 400 naming the
/// field; no refund, key or checkout is stored.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_numbers_in_free_text_are_refused(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let po = paid_order(&stack, "pm_card_visa", "10.00", "USD").await;
    let resp = stack
        .http
        .post(format!("{}/v1/payments/{po}/refunds", stack.rest_url))
        .json(&json!({"reason": "customer card 4111.1111.1111.1111 was charged twice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["param"], "reason");
    assert!(stack.store.refunds(&PaymentOrderId::parse(&po).unwrap()).await.unwrap().is_empty());

    let id = unique("chk");
    let resp = stack
        .http
        .post(format!("{}/v1/payments", stack.rest_url))
        .header("Idempotency-Key", "key-4242424242424242")
        .json(&body(&id, &[("1.00", "USD")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(stack.store.idempotency_record(&stack.stored_key("key-4242424242424242")).await.unwrap().is_none());

    let hidden = format!("{id}-5555-5555-5555-4444");
    let mut with_pan = body(&id, &[("1.00", "USD")]);
    with_pan["payment_orders"][0]["payment_order_id"] = json!(hidden);
    let (status, answer) = stack.post_payment(&with_pan).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["param"], "payment_orders[0].payment_order_id");
    let stored = stack.store.checkout(&payments_domain::CheckoutId::parse(&id).unwrap()).await.unwrap();
    assert!(stored.is_none(), "nothing stored");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}
