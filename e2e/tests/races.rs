//! Requests that race each other for the same money, sent at once from a multi-threaded runtime
//! (each batch lined up on a barrier) against the real gateway, worker, Temporal and simulator,
//! on both databases: two or more refunds of everything, and a buyer's success page loaded
//! twice at once. Whatever the interleaving, money moves once. (Duplicate webhooks at once are
//! in `webhooks.rs`; a refund racing a reversal on one order is a store test, `races.rs`
//! there, since the API never offers both on one order.)

mod common;

use common::{assert_books_consistent, paid_order, wait_refund_final};
use payments_domain::{CheckoutId, PaymentOrderId, PaymentOrderStatus as S};
use payments_store::{RefundId, RefundStatus};
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::{Value, json};
use sqlx::Row;
use std::sync::Arc;
use tokio::sync::Barrier;

/// Concurrent requests per race.
const RACERS: usize = 6;

/// Runs `RACERS` copies of `request` (given its index) at once; answers their results in order.
async fn race<T, F, Fut>(request: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (barrier, request) = (Arc::clone(&barrier), request(i));
            tokio::spawn(async move {
                barrier.wait().await;
                request.await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(RACERS);
    for task in tasks {
        results.push(task.await.expect("racer panicked"));
    }
    results
}

/// Six requests for a refund of everything at once, each with its own Idempotency-Key (six
/// clients, or one client's six different intentions): exactly one is accepted (202), the
/// other five are refused 400 `refund_too_large`; the PSP refunds once, the full amount, and
/// the books hold.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refunds_of_everything_at_once_refund_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let po = paid_order(&stack, "pm_card_visa", "25.00", "USD").await;
    let batch = unique("race");
    let answers = race(|i| {
        let request = stack
            .http
            .post(format!("{}/v1/payments/{po}/refunds", stack.rest_url))
            .header("Idempotency-Key", format!("{batch}-{i}"))
            .json(&json!({"reason": "refund everything"}));
        async move {
            let resp = request.send().await.expect("POST refunds");
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    })
    .await;
    let accepted: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 202).map(|(_, b)| b).collect();
    assert_eq!(accepted.len(), 1, "exactly one refund of everything: {answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 202) {
        assert_eq!(*status, 400, "{body}");
        assert_eq!(body["error"]["code"], "refund_too_large", "{body}");
    }
    let id = RefundId::parse(accepted[0]["refund_id"].as_str().expect("refund_id")).expect("refund id");
    assert_eq!(wait_refund_final(&stack, &id).await.status, RefundStatus::Succeeded);
    let refunds = stack.store.refunds(&PaymentOrderId::parse(&po).unwrap()).await.unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    let at_psp = stack.sim_refunds(&po).await;
    assert_eq!(at_psp.len(), 1, "{at_psp:?}");
    assert_eq!(at_psp[0]["amount"], 2500, "{at_psp:?}");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// The buyer's browser loads the success page twice at once (a double click, a retried
/// redirect): both loads show the paid checkout, Toss confirms the payment once, and each
/// order is booked once in the wallet and the ledger.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_success_page_loaded_twice_at_once_confirms_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let options = StackOptions { database_url: Some(url), psp_provider: "toss".into(), ..StackOptions::new() };
    let stack = Stack::start(options).await;
    let id = unique("hosted-race");
    let (po1, po2) = stack.create_hosted_two_sellers(&id).await;
    let key = stack.toss_payment_session(&id, 20000).await;
    let success = stack.hosted_success_url(&id, &key, 20000);
    let pages = race(|_| {
        let request = stack.http.get(&success);
        async move {
            let resp = request.send().await.expect("GET success page");
            (resp.status().as_u16(), resp.text().await.unwrap_or_default())
        }
    })
    .await;
    for (status, page) in &pages {
        assert_eq!(*status, 200, "{page}");
        assert!(page.contains(r#"<p id="status">SUCCESS</p>"#), "each load shows the paid checkout: {page}");
    }
    let done = stack.wait_done(&id).await;
    assert!(done.orders.iter().all(|o| o.status == S::Success), "{done:?}");
    assert_eq!(stack.captures(&id).await.len(), 1, "Toss confirmed the payment once");
    for po in [&po1, &po2] {
        let wallet = count(&stack, "SELECT COUNT(*) FROM wallet_movement WHERE payment_order_id = $1", po).await;
        let ledger = count(&stack, "SELECT COUNT(*) FROM ledger_transaction WHERE payment_order_id = $1", po).await;
        assert_eq!((wallet, ledger), (1, 1), "{po}: wallet movements and ledger transactions");
    }
    let checkout = stack.store.checkout(&CheckoutId::parse(id.clone()).unwrap()).await.unwrap().unwrap();
    assert!(checkout.is_payment_done);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

async fn count(stack: &Stack, sql: &str, id: &str) -> i64 {
    sqlx::query(sql).bind(id.to_owned()).fetch_one(stack.store.pool()).await.unwrap().try_get(0).unwrap()
}
