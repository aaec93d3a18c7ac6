//! Stripe's `Idempotency-Key` rules on the REST API, through the real gateway: a retry replays
//! the first answer (once stored, never twice started), a key reused for another request is
//! refused, a request still running answers 409, validation failures are not remembered, and
//! keys older than 24 h are free again; a gateway that dies mid-request leaves nothing a retry
//! with the same key cannot finish. On SQLite and on PostgreSQL.

mod common;

use payments_domain::{CheckoutId, PaymentOrderStatus};
use payments_store::{IDEMPOTENCY_CLAIM_STALE_MS, IDEMPOTENCY_KEY_TTL_MS, IdempotencyClaim, IdempotencyState};
use payments_testkit::{Db, ProxyMode, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PAYMENTS: &str = "/v1/payments";

fn checkout(checkout_id: &str) -> Value {
    json!({
        "checkout_id": checkout_id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": [
            {"seller_account": "seller-a", "amount": "10.00", "currency": "USD", "payment_order_id": format!("{checkout_id}-1")}
        ]
    })
}

/// One answer: status, raw body, and whether it was marked replayed.
struct Answer {
    status: u16,
    body: String,
    replayed: bool,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn post(stack: &Stack, path: &str, key: &str, body: &Value) -> Answer {
    let resp = stack
        .http
        .post(format!("{}{path}", stack.rest_url))
        .header("content-type", "application/json")
        .header("Idempotency-Key", key)
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let status = resp.status().as_u16();
    let replayed = resp.headers().get("idempotent-replayed").is_some_and(|v| v == "true");
    Answer { status, body: resp.text().await.expect("body"), replayed }
}

async fn assert_checkout_count(stack: &Stack, checkout_id: &str, expected: usize) {
    let id = CheckoutId::parse(checkout_id).expect("checkout id");
    let stored = stack.store.checkout(&id).await.expect("read").is_some();
    assert_eq!(usize::from(stored), expected.min(1), "checkout {checkout_id} stored");
    assert_eq!(stack.workflow_runs(&id.workflow_id()).await, expected, "workflows of {checkout_id}");
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The same key and body twice: the second answer is the first one byte for byte (status and
/// body), marked `Idempotent-Replayed: true`; one checkout and one workflow exist.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_with_same_key_replays_the_first_answer(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    retry_with_same_key_replays_the_first_answer_on(url).await;
}

async fn retry_with_same_key_replays_the_first_answer_on(url: String) {
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let (id, key) = (unique("chk"), unique("key"));
    let first = post(&stack, PAYMENTS, &key, &checkout(&id)).await;
    assert_eq!((first.status, first.replayed), (202, false), "{}", first.body);
    let second = post(&stack, PAYMENTS, &key, &checkout(&id)).await;
    assert_eq!((second.status, second.replayed), (202, true), "{}", second.body);
    assert_eq!(second.body, first.body);
    let record = stack.store.idempotency_record(&stack.stored_key(&key)).await.unwrap().expect("key stored");
    assert_eq!((record.state, record.endpoint.as_str()), (IdempotencyState::Done, "POST /v1/payments"));
    assert_checkout_count(&stack, &id, 1).await;
    // Without a key the old behaviour holds: the same checkout again is 200, not a replay.
    let (status, _) = stack.post_payment(&checkout(&id)).await;
    assert_eq!(status, 200);
    stack.wait_done(&id).await;
    assert!(stack.store.verify().await.unwrap().is_consistent(), "books consistent");
    stack.shutdown().await;
}

/// The same key with another body, or on the other endpoint, is refused with 400
/// `idempotency_error` / `idempotency_key_reused`; nothing of the second request is stored and
/// the key keeps its first request; a malformed key is refused naming the header.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_reused_for_another_request_is_refused(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    key_reused_for_another_request_is_refused_on(url).await;
}

async fn key_reused_for_another_request_is_refused_on(url: String) {
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let (id, key) = (unique("chk"), unique("key"));
    assert_eq!(post(&stack, PAYMENTS, &key, &checkout(&id)).await.status, 202);
    let before = stack.store.idempotency_record(&stack.stored_key(&key)).await.unwrap();

    let other = unique("chk");
    for (path, body) in [(PAYMENTS, checkout(&other)), ("/v1/checkouts", checkout(&other))] {
        let answer = post(&stack, path, &key, &body).await;
        let error = &answer.json()["error"];
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        assert_eq!(
            (error["type"].as_str(), error["code"].as_str()),
            (Some("idempotency_error"), Some("idempotency_key_reused"))
        );
        assert_eq!(error["param"], "Idempotency-Key");
        assert!(!answer.replayed);
    }
    assert_checkout_count(&stack, &other, 0).await;
    assert_eq!(stack.store.idempotency_record(&stack.stored_key(&key)).await.unwrap(), before, "the key was rewritten");

    for bad in [" ".repeat(3), "k".repeat(256), "with space".to_owned()] {
        let answer = post(&stack, PAYMENTS, &bad, &checkout(&other)).await;
        assert_eq!(answer.status, 400, "{bad:?}: {}", answer.body);
        assert_eq!(answer.json()["error"]["type"], "idempotency_error");
        assert_eq!(answer.json()["error"]["param"], "Idempotency-Key");
    }
    assert_checkout_count(&stack, &other, 0).await;
    stack.wait_done(&id).await;
    assert!(stack.store.verify().await.unwrap().is_consistent(), "books consistent");
    stack.shutdown().await;
}

/// While the first request with a key runs (its claim made through the store), the same
/// request gets 409 `idempotency_key_in_use` and starts nothing; two truly concurrent requests
/// with one key produce one checkout and one workflow, the loser answered 409 or with the
/// winner's answer replayed.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_key_create_one_checkout(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    concurrent_requests_with_one_key_create_one_checkout_on(url).await;
}

async fn concurrent_requests_with_one_key_create_one_checkout_on(url: String) {
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    // Learn the gateway's hash of a request from a finished key, then hold a second key with it.
    let (id, learn, held) = (unique("chk"), unique("key"), unique("key"));
    assert_eq!(post(&stack, PAYMENTS, &learn, &checkout(&id)).await.status, 202);
    let hash = stack.store.idempotency_record(&stack.stored_key(&learn)).await.unwrap().expect("stored").request_hash;
    let claim = stack
        .store
        .claim_idempotency_key(&stack.stored_key(&held), "POST /v1/payments", &hash, now_ms())
        .await
        .unwrap();
    assert_eq!(claim, IdempotencyClaim::New);
    let busy = post(&stack, PAYMENTS, &held, &checkout(&id)).await;
    assert_eq!(busy.status, 409, "{}", busy.body);
    assert_eq!(busy.json()["error"]["type"], "idempotency_error");
    assert_eq!(busy.json()["error"]["code"], "idempotency_key_in_use");
    // The holder gives up (a 5xx): the retry is handled normally.
    stack.store.release_idempotency_key(&stack.stored_key(&held)).await.unwrap();
    assert_eq!(post(&stack, PAYMENTS, &held, &checkout(&id)).await.status, 200);
    assert_checkout_count(&stack, &id, 1).await;

    let (racing, key) = (unique("chk"), unique("key"));
    let body = checkout(&racing);
    let (a, b) = tokio::join!(post(&stack, PAYMENTS, &key, &body), post(&stack, PAYMENTS, &key, &body));
    let (winner, loser) = if a.status == 202 && !a.replayed { (a, b) } else { (b, a) };
    assert_eq!((winner.status, winner.replayed), (202, false), "{}", winner.body);
    match loser.status {
        409 => assert_eq!(loser.json()["error"]["code"], "idempotency_key_in_use"),
        202 => assert!(loser.replayed && loser.body == winner.body, "{}", loser.body),
        other => panic!("unexpected {other}: {}", loser.body),
    }
    assert_checkout_count(&stack, &racing, 1).await;
    stack.wait_done(&racing).await;
    stack.wait_done(&id).await;
    assert!(stack.store.verify().await.unwrap().is_consistent(), "books consistent");
    stack.shutdown().await;
}

/// A request refused by validation (400) is not remembered: the corrected request with the same
/// key is handled (202), and from then on replayed.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_failure_is_not_stored(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    validation_failure_is_not_stored_on(url).await;
}

async fn validation_failure_is_not_stored_on(url: String) {
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let (id, key) = (unique("chk"), unique("key"));
    let mut bad = checkout(&id);
    bad["payment_orders"][0]["amount"] = json!("10.005");
    let refused = post(&stack, PAYMENTS, &key, &bad).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["error"]["type"], "invalid_request_error");
    assert!(stack.store.idempotency_record(&stack.stored_key(&key)).await.unwrap().is_none(), "a 400 was stored");

    let fixed = post(&stack, PAYMENTS, &key, &checkout(&id)).await;
    assert_eq!((fixed.status, fixed.replayed), (202, false), "{}", fixed.body);
    let again = post(&stack, PAYMENTS, &key, &checkout(&id)).await;
    assert_eq!((again.status, again.replayed, again.body == fixed.body), (202, true, true));
    assert_checkout_count(&stack, &id, 1).await;
    stack.wait_done(&id).await;
    assert!(stack.store.verify().await.unwrap().is_consistent(), "books consistent");
    stack.shutdown().await;
}

/// A key claimed more than 24 h ago is free: a new request with it is handled as new (not a
/// mismatch, not a replay) and takes the key over.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_key_is_reusable(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    expired_key_is_reusable_on(url).await;
}

async fn expired_key_is_reusable_on(url: String) {
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let (id, key) = (unique("chk"), unique("key"));
    let long_ago = now_ms() - IDEMPOTENCY_KEY_TTL_MS - 60_000;
    // One statement: the gateway's purge (which runs at its start) may delete the old record
    // at any moment, before or after this; either way the key must be free.
    sqlx::query(
        "INSERT INTO idempotency_key (key, endpoint, request_hash, state, response_status, response_body, \
         created_at_ms) VALUES ($1, 'POST /v1/payments', 'old-hash', 'done', 202, '{\"old\":true}', $2)",
    )
    .bind(stack.stored_key(&key))
    .bind(long_ago)
    .execute(stack.store.pool())
    .await
    .unwrap();

    let answer = post(&stack, PAYMENTS, &key, &checkout(&id)).await;
    assert_eq!((answer.status, answer.replayed), (202, false), "{}", answer.body);
    let record = stack.store.idempotency_record(&stack.stored_key(&key)).await.unwrap().expect("stored");
    assert_ne!(record.request_hash, "old-hash");
    assert!(record.created_at_ms > long_ago + IDEMPOTENCY_KEY_TTL_MS);
    assert_checkout_count(&stack, &id, 1).await;
    stack.wait_done(&id).await;
    assert!(stack.store.verify().await.unwrap().is_consistent(), "books consistent");
    stack.shutdown().await;
}

/// The gRPC twin: `idempotency-key` metadata on CreatePayment replays the first answer (marked
/// `idempotent-replayed`), refuses the key for another request, and does not remember a
/// validation failure.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_metadata_key_follows_the_same_rules(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    grpc_metadata_key_follows_the_same_rules_on(url).await;
}

async fn grpc_metadata_key_follows_the_same_rules_on(url: String) {
    use payments_proto::payments_v1 as pb;

    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let mut client = stack.payments_grpc().await;
    let id = unique("grpc-idem");
    let create = |amount: &str| common::grpc_one_order(&id, amount);
    let with_key = |message: pb::CreatePaymentRequest, key: &str| {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("idempotency-key", key.parse().unwrap());
        request
    };
    let key = unique("key");
    let bad = client.create_payment(with_key(create("10.005"), &key)).await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    let first = client.create_payment(with_key(create("10.00"), &key)).await.expect("corrected retry runs anew");
    assert!(first.metadata().get("idempotent-replayed").is_none());
    let again = client.create_payment(with_key(create("10.00"), &key)).await.unwrap();
    assert_eq!(again.metadata().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(again.get_ref().checkout_id, first.get_ref().checkout_id);
    let other = client.create_payment(with_key(create("11.00"), &key)).await.unwrap_err();
    assert_eq!(other.code(), tonic::Code::InvalidArgument);
    assert!(other.message().starts_with("idempotency_key_reused"), "{}", other.message());
    assert_checkout_count(&stack, &id, 1).await;
    stack.wait_done(&id).await;
    assert!(stack.store.verify().await.unwrap().is_consistent(), "books consistent");
    stack.shutdown().await;
}

/// The gateway is killed while a request is in flight: the checkout is stored, the workflow
/// start is on its way to Temporal (held there by a stalled connection), the client's
/// connection drops without an answer. A new gateway comes up; the client retries with the
/// same Idempotency-Key, as a client must after a lost answer. The dead request's claim answers
/// 409 until it is stale (`IDEMPOTENCY_CLAIM_STALE_MS`, aged here), then the retry takes it
/// over and is answered 202 with the same checkout: one checkout, one workflow, the order
/// charged once; later retries replay that answer.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_request_is_finished_by_the_retry(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let options = StackOptions { database_url: Some(url), temporal_proxy: true, ..StackOptions::new() };
    let mut stack = Stack::start(options).await;
    let id = unique("chk-crash");
    let key = unique("key-crash");
    let body = checkout(&id);
    stack.temporal_proxy.as_ref().expect("temporal proxy").set(ProxyMode::Stall);
    let in_flight = tokio::spawn({
        let request = stack
            .http
            .post(format!("{}/v1/payments", stack.rest_url))
            .header("Idempotency-Key", key.clone())
            .json(&body);
        async move { request.send().await.map(|r| r.status().as_u16()) }
    });
    let checkout_id = CheckoutId::parse(id.clone()).expect("checkout id");
    stack
        .poll_until("the checkout to be stored", Duration::from_secs(30), || async {
            stack.store.checkout(&checkout_id).await.ok().flatten().map(|_| ())
        })
        .await;
    stack.kill_gateway().await;
    let lost = in_flight.await.expect("client task");
    assert!(lost.is_err(), "the request in flight must get no answer from a killed gateway: {lost:?}");
    stack.temporal_proxy.as_ref().expect("temporal proxy").set(ProxyMode::Open);
    stack.restart_gateway(true).await;
    // The dead request's claim stays "in progress" (409) until it is stale; age it rather than
    // wait the minute out.
    let retry = post(&stack, "/v1/payments", &key, &body).await;
    assert_eq!(retry.status, 409, "{}", retry.body);
    sqlx::query("UPDATE idempotency_key SET created_at_ms = created_at_ms - $1 WHERE key = $2")
        .bind(IDEMPOTENCY_CLAIM_STALE_MS + 1000)
        .bind(stack.stored_key(&key))
        .execute(stack.store.pool())
        .await
        .unwrap();
    let answer = stack
        .poll_until("the retry to be answered", Duration::from_secs(30), || async {
            let answer = post(&stack, "/v1/payments", &key, &body).await;
            (answer.status != 409).then_some(answer)
        })
        .await;
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.json()["checkout_id"], id.as_str(), "{}", answer.body);
    let done = stack.wait_done(&id).await;
    assert_eq!(done.orders[0].status, PaymentOrderStatus::Success, "{done:?}");
    assert_checkout_count(&stack, &id, 1).await;
    assert_eq!(stack.captures(&format!("{id}-1")).await.len(), 1);
    // From now on the key replays that answer.
    let again = post(&stack, "/v1/payments", &key, &body).await;
    assert_eq!((again.status, again.replayed), (202, true), "{}", again.body);
    stack.shutdown().await;
}
