//! A client's Idempotency-Key creates one refund (or checkout), whatever became of the first
//! answer (point 3 of the money-safety issue): a 5xx that the key layer forgets, a gRPC call
//! cut short, a claim taken over once stale. And a parked refund is never refunded twice by an
//! operator's retry or resolve: the PSP is asked first. Both databases, real Temporal (behind a
//! proxy the tests cut) and simulator.

mod common;

use common::{
    STATE_TIMEOUT, assert_books_consistent, paid_order, paymentsctl, quick_limits, wait_dead_letter, wait_refund_final,
};
use payments_domain::PaymentOrderId;
use payments_proto::payments_v1 as pb;
use payments_store::{DeadLetterStatus, RefundId, RefundStatus};
use payments_testkit::{Db, ProxyMode, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::{Value, json};

async fn stack(database_url: String, provider: &str) -> Stack {
    let options = StackOptions {
        database_url: Some(database_url),
        psp_provider: provider.to_owned(),
        waits: quick_limits(),
        temporal_proxy: true,
        start_sweep_secs: 1,
        ..StackOptions::new()
    };
    Stack::start(options).await
}

/// `POST /v1/payments/{po}/refunds` with an Idempotency-Key; answers status and body.
async fn post_refund(stack: &Stack, po: &str, key: &str, amount: &str) -> (u16, Value) {
    let resp = stack
        .http
        .post(format!("{}/v1/payments/{po}/refunds", stack.rest_url))
        .header("Idempotency-Key", key)
        .json(&json!({"amount": amount, "reason": "one item returned"}))
        .send()
        .await
        .expect("POST refund");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn temporal_proxy(stack: &Stack) -> &payments_testkit::Proxy {
    stack.temporal_proxy.as_ref().expect("temporal proxy")
}

async fn refunds_of(stack: &Stack, po: &str) -> Vec<payments_store::RefundRecord> {
    stack.store.refunds(&PaymentOrderId::parse(po).unwrap()).await.unwrap()
}

/// Refund `id` ends SUCCEEDED, and it is the order's only refund, here and at the PSP.
async fn assert_refunded_once(stack: &Stack, po: &str, id: &RefundId) {
    assert_eq!(wait_refund_final(stack, id).await.status, RefundStatus::Succeeded);
    let refunds = refunds_of(stack, po).await;
    assert_eq!(refunds.len(), 1, "one refund row: {refunds:?}");
    assert_eq!(stack.sim_refunds(po).await.len(), 1, "one refund at the PSP");
}

/// Temporal is unreachable when the refund is asked for: the refund is stored, its workflow
/// cannot start. The client retries with the same key once Temporal is back and gets the same
/// refund; in the end there is one refund row, one refund at the PSP, SUCCEEDED. (Before the
/// fix the first answer was a 500 the key layer forgot, the retry stored refund n+1 and the
/// repair sweep started refund n: two refunds.)
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_is_created_once_per_key_through_a_5xx(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url, "stripe").await;
    let po = paid_order(&stack, "pm_card_visa", "25.00", "USD").await;
    let key = unique("rf");
    temporal_proxy(&stack).set(ProxyMode::Refuse);
    let (status, first) = post_refund(&stack, &po, &key, "10.00").await;
    temporal_proxy(&stack).set(ProxyMode::Open);
    let (again_status, again) = post_refund(&stack, &po, &key, "10.00").await;
    assert_eq!(again_status, 202, "{again}");
    if status == 202 {
        assert_eq!(first["refund_id"], again["refund_id"]);
    }
    let id = RefundId::parse(again["refund_id"].as_str().unwrap()).unwrap();
    assert_refunded_once(&stack, &po, &id).await;
    let (_, other) = post_refund(&stack, &po, &key, "1.00").await;
    assert_eq!(other["error"]["code"], "idempotency_key_reused", "the key belongs to the first refund");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// The same over gRPC (`idempotency-key` metadata on CreateRefund), Toss this time: Temporal
/// down for the first call, the retry gets the refund the first call stored.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_refund_is_created_once_per_key(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url, "toss").await;
    let po = paid_order(&stack, "billing_success", "25000", "KRW").await;
    let mut client = stack.payments_grpc().await;
    let key = unique("rf");
    let request = || {
        let mut r = tonic::Request::new(pb::CreateRefundRequest {
            payment_order_id: po.clone(),
            amount: "10000".into(),
            reason: "one item returned".into(),
        });
        r.metadata_mut().insert("idempotency-key", key.parse().unwrap());
        r
    };
    temporal_proxy(&stack).set(ProxyMode::Refuse);
    let first = client.create_refund(request()).await;
    temporal_proxy(&stack).set(ProxyMode::Open);
    let again = client.create_refund(request()).await.expect("retry");
    if let Ok(first) = first {
        assert_eq!(first.get_ref().refund_id, again.get_ref().refund_id);
    }
    let id = RefundId::parse(again.get_ref().refund_id.clone()).unwrap();
    assert_refunded_once(&stack, &po, &id).await;
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// The first request stores the refund and then hangs (Temporal stalls); after 60 s its claim
/// on the key counts as stale (aged here in the database) and the client's retry takes the key
/// over. The retry gets the refund the first request stored, not a new one.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_claim_taken_over_finds_the_same_refund(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url, "stripe").await;
    let po = paid_order(&stack, "pm_card_visa", "25.00", "USD").await;
    let key = unique("rf");
    temporal_proxy(&stack).set(ProxyMode::Stall);
    let first = {
        let (http, url, key) =
            (stack.http.clone(), format!("{}/v1/payments/{po}/refunds", stack.rest_url), key.clone());
        tokio::spawn(async move {
            let body = json!({"amount": "10.00", "reason": "one item returned"});
            // Status 0: no answer reached the client (its connection may give up while hung).
            match http.post(url).header("Idempotency-Key", key).json(&body).send().await {
                Ok(response) => (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null)),
                Err(_) => (0, Value::Null),
            }
        })
    };
    stack
        .poll_until("the first request to store its refund", STATE_TIMEOUT, || async {
            (refunds_of(&stack, &po).await.len() == 1).then_some(())
        })
        .await;
    sqlx::query("UPDATE idempotency_key SET created_at_ms = created_at_ms - 61000 WHERE key = $1")
        .bind(stack.stored_key(&key))
        .execute(stack.store.pool())
        .await
        .unwrap();
    let aged = claimed_at(&stack, &key).await.expect("the first request's claim");
    let second = {
        let (http, url, key) =
            (stack.http.clone(), format!("{}/v1/payments/{po}/refunds", stack.rest_url), key.clone());
        tokio::spawn(async move {
            let body = json!({"amount": "10.00", "reason": "one item returned"});
            let response = http.post(url).header("Idempotency-Key", key).json(&body).send().await.expect("POST");
            (response.status().as_u16(), response.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    // Both hang on Temporal until it answers again: the second once it has taken the stale
    // claim over (a claim of its own, made now).
    stack
        .poll_until("the retry to take the stale claim over", STATE_TIMEOUT, || async {
            claimed_at(&stack, &key).await.filter(|at| *at > aged).map(|_| ())
        })
        .await;
    temporal_proxy(&stack).set(ProxyMode::Open);
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    let refunds = refunds_of(&stack, &po).await;
    assert_eq!(refunds.len(), 1, "one refund stored: {refunds:?}");
    let stored = refunds[0].refund_id.to_string();
    // The retry that took the key over answers the refund the first request stored.
    assert!((200..300).contains(&second.0), "the retry: {second:?}");
    assert_eq!(second.1["refund_id"].as_str(), Some(stored.as_str()), "the retry: {second:?}");
    // The first request, whose claim was taken over, answers that refund too or nothing of
    // its own: never another refund.
    if (200..300).contains(&first.0) {
        assert_eq!(first.1["refund_id"].as_str(), Some(stored.as_str()), "the first request: {first:?}");
    }
    assert_refunded_once(&stack, &po, &refunds[0].refund_id).await;
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// The same rule for checkouts: Temporal down when the checkout is POSTed, the client retries
/// with the same key and gets the checkout as created (202), and its workflow is started; the
/// key used for another checkout is refused.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_key_is_bound_to_its_checkout(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url, "stripe").await;
    let (checkout, key) = (unique("chk"), unique("key"));
    let body = |id: &str| {
        json!({"checkout_id": id, "buyer_info": {"buyer_id": "buyer-1"}, "credit_card_info": {"token": "pm_card_visa"},
            "payment_orders": [{"seller_account": "seller-a", "amount": "5.00", "currency": "USD",
                "payment_order_id": format!("{id}-1")}]})
    };
    let post = |value: Value| {
        let http = stack.http.clone();
        let url = format!("{}/v1/payments", stack.rest_url);
        let key = key.clone();
        async move {
            let resp = http.post(url).header("Idempotency-Key", key).json(&value).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    temporal_proxy(&stack).set(ProxyMode::Refuse);
    let _first = post(body(&checkout)).await;
    temporal_proxy(&stack).set(ProxyMode::Open);
    let (status, answer) = post(body(&checkout)).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["checkout_id"], checkout.as_str());
    assert!(stack.wait_done(&checkout).await.is_payment_done);
    let (status, answer) = post(body(&unique("chk"))).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("idempotency_key_reused")), "{answer}");
    assert_eq!(stack.captures(&format!("{checkout}-1")).await.len(), 1);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// A refund the PSP made but whose answers were all lost parks as a dead letter. The PSP then
/// forgets the key. An operator's retry asks the PSP first (by the refund's id), finds the
/// refund and books it: one refund at the PSP. (Before the fix the retry re-sent it under the
/// forgotten key: a second refund.) Stripe, then the resolve twin on Toss: an operator's
/// resolve of such a letter books the refund the PSP made instead of failing it (which made
/// its amount refundable again: a second refund waiting to happen).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_never_refunds_twice(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    for (provider, token, amount, refund, verb) in
        [("stripe", "pm_card_visa", "20.00", "5.00", "retry"), ("toss", "billing_success", "20000", "5000", "resolve")]
    {
        // Each stack a database of its own: the end-of-test money check reads all of it.
        let Some(url) = db.url().await else { return };
        let stack = stack(url, provider).await;
        let po = paid_order(&stack, token, amount, if provider == "toss" { "KRW" } else { "USD" }).await;
        stack.sim_outage(json!({"refund_answers_lost": true})).await;
        let id = common::refund_accepted(&stack, &po, Some(refund), "damaged item").await;
        let letter = format!("{id}:psp.refund");
        wait_dead_letter(&stack, &letter, DeadLetterStatus::Open, 1).await;
        assert_eq!(stack.sim_refunds(&po).await.len(), 1, "{provider}: the PSP made the refund");
        stack.expire_psp_keys().await;
        stack.sim_outage(json!({})).await;
        paymentsctl(&stack, &["dlq", verb, &letter, "--operator", "dana", "--reason", "PSP looked fine"])
            .await
            .unwrap();
        let done = wait_refund_final(&stack, &id).await;
        assert_eq!(done.status, RefundStatus::Succeeded, "{provider}: {done:?}");
        assert!(done.psp_refund_reference.is_some());
        assert_eq!(stack.sim_refunds(&po).await.len(), 1, "{provider}: refunded exactly once");
        wait_dead_letter(&stack, &letter, DeadLetterStatus::Resolved, 0).await;
        assert_books_consistent(&stack).await;
        stack.shutdown().await;
    }
}

/// When the key's current claim was made; `None` while it is not claimed.
async fn claimed_at(stack: &Stack, key: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT created_at_ms FROM idempotency_key WHERE key = $1")
        .bind(stack.stored_key(key))
        .fetch_optional(stack.store.pool())
        .await
        .expect("read the claim")
}
