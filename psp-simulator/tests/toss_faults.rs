//! Black-box tests of fault injection and manual review on the Toss
//! surface: the `billing_sim_*` keys behave like their Stripe twins.

mod common;

use std::time::{Duration, Instant};

use common::{Sim, json, poll, toss_auth};
use psp_simulator::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn billing(order_id: &str) -> Value {
    json!({"customerKey": "cust", "amount": 12_000, "orderId": order_id, "orderName": "order"})
}

/// `billing_sim_server_error_twice`: two 500
/// `FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING` answers with nothing stored,
/// then one capture on attempt 3.
#[tokio::test]
async fn server_error_twice_then_success() {
    let sim = Sim::start().await;
    let body = billing("order-500-1");
    let path = "/v1/billing/billing_sim_server_error_twice";
    for _ in 0..2 {
        let response = sim.toss_post(path, &body, Some("t500")).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(json(response).await["code"], "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING");
    }
    assert!(sim.captures(None).await.is_empty());
    let third = sim.toss_post(path, &body, Some("t500")).await;
    assert_eq!(third.status(), StatusCode::OK);
    assert!(third.headers().get("idempotent-replayed").is_none());
    assert_eq!(sim.captures(Some("order-500-1")).await.len(), 1);
    assert_eq!(sim.outcomes("t500").await, ["500", "500", "200"]);
}

/// `billing_sim_rate_limited`: 429 with `Retry-After`, nothing charged; the
/// retry after the delay captures.
#[tokio::test]
async fn rate_limited_then_success() {
    let mut config = SimConfig::new();
    config.rate_limit_retry_after_secs = 1;
    let sim = Sim::start_with(config).await;
    let body = billing("order-429-1");
    let path = "/v1/billing/billing_sim_rate_limited";
    let first = sim.toss_post(path, &body, Some("t429")).await;
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(first.headers()["retry-after"], "1");
    assert!(json(first).await["code"].is_string());
    assert!(sim.captures(None).await.is_empty());
    // Kept on purpose: the retry honours `Retry-After` as a client must; the
    // time passing is the behaviour shown, not a wait for some state.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = sim.toss_post(path, &body, Some("t429")).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(sim.captures(Some("order-429-1")).await.len(), 1);
}

/// Hold-back of the ordering test's slow fault: far longer than the rest of
/// the test needs, so on a working simulator the held answer cannot come
/// first, however busy the machine.
const HELD_BACK_MS: u64 = 30_000;
/// Hold-back of the lower-bound test's slow fault.
const SLOW_MS: u64 = 1_200;

/// `billing_sim_slow`: captured at once, while the first answer is held
/// back (30 s) the payment is found by its order id and a same-key replay
/// is answered. The `biased` select polls the held request first, so the
/// test fails if its answer is ready before both quick answers are.
#[tokio::test]
async fn slow_response_is_answered_after_a_later_replay() {
    let mut config = SimConfig::new();
    config.slow_response_ms = HELD_BACK_MS;
    let sim = Sim::start_with(config).await;
    let path = "/v1/billing/billing_sim_slow";
    let mut slow = {
        let request = sim.client.post(format!("{}{path}", sim.base)).header("Authorization", toss_auth());
        tokio::spawn(request.header("Idempotency-Key", "tslow").json(&billing("order-slow-1")).send())
    };
    // The capture is the sign the held request executed; wait for it
    // rather than for some time to pass.
    poll("the slow charge to capture", async || (sim.captures(Some("order-slow-1")).await.len() == 1).then_some(()))
        .await;
    let quick = async {
        let found = json(sim.toss_get("/v1/payments/orders/order-slow-1").await).await;
        let replay = sim.toss_post(path, &billing("order-slow-1"), Some("tslow")).await;
        assert_eq!(replay.status(), StatusCode::OK);
        assert_eq!(replay.headers()["idempotent-replayed"], "true");
        (found, json(replay).await)
    };
    let (found, replayed) = tokio::select! {
        biased;
        answered = &mut slow => panic!("the held-back answer came before the lookup and the replay: {answered:?}"),
        quick = quick => quick,
    };
    slow.abort();
    assert_eq!(found["status"], "DONE");
    assert_eq!(replayed["status"], "DONE");
    assert_eq!(replayed["paymentKey"], found["paymentKey"]);
    let captures = sim.captures(Some("order-slow-1")).await;
    assert_eq!((captures.len(), &captures[0]["payment_intent_id"]), (1, &found["paymentKey"]));
    // Logged when it executed, before its answer was held back.
    assert_eq!(sim.outcomes("tslow").await, ["200", "replayed"]);
}

/// The answer of `billing_sim_slow` takes at least `slow_response_ms` (a
/// lower bound only: a busy machine may add any delay) and carries the
/// payment it captured, once.
#[tokio::test]
async fn slow_response_takes_at_least_its_delay() {
    let mut config = SimConfig::new();
    config.slow_response_ms = SLOW_MS;
    let sim = Sim::start_with(config).await;
    let started = Instant::now();
    let response = sim.toss_post("/v1/billing/billing_sim_slow", &billing("order-slow-2"), Some("tslowlb")).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(SLOW_MS), "answered after {elapsed:?}, before the {SLOW_MS} ms hold-back");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("idempotent-replayed").is_none());
    let answered = json(response).await;
    assert_eq!(answered["status"], "DONE");
    let captures = sim.captures(Some("order-slow-2")).await;
    assert_eq!((captures.len(), &captures[0]["payment_intent_id"]), (1, &answered["paymentKey"]));
}

/// `billing_sim_lost_response`: the first attempt captures and its
/// connection closes with no bytes; the retry replays; one capture.
#[tokio::test]
async fn lost_response_then_replay() {
    let sim = Sim::start().await;
    let body = billing("order-lost-1").to_string();
    let auth = toss_auth();
    let headers =
        [("Authorization", auth.as_str()), ("Content-Type", "application/json"), ("Idempotency-Key", "tlost")];
    // Bounded: EOF or a reset are both a lost response; any byte would not be.
    let received = sim.raw_post("/v1/billing/billing_sim_lost_response", &headers, &body).await;
    assert!(received.is_empty());
    assert_eq!(sim.captures(Some("order-lost-1")).await.len(), 1);
    let retry = sim.toss_post("/v1/billing/billing_sim_lost_response", &billing("order-lost-1"), Some("tlost")).await;
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(sim.captures(Some("order-lost-1")).await.len(), 1);
    assert_eq!(sim.outcomes("tlost").await, ["dropped", "replayed"]);
}

/// `billing_sim_review` answers `IN_PROGRESS` without capturing; the review
/// API approves (DONE, one capture) or rejects (ABORTED, `FDS_ERROR`).
#[tokio::test]
async fn review_approve_and_reject() {
    let sim = Sim::start().await;
    let mut keys = Vec::new();
    for order in ["order-rev-1", "order-rev-2"] {
        let payment = json(sim.toss_post("/v1/billing/billing_sim_review", &billing(order), Some(order)).await).await;
        assert_eq!(payment["status"], "IN_PROGRESS");
        keys.push(payment["paymentKey"].as_str().unwrap().to_owned());
    }
    assert!(sim.captures(None).await.is_empty());
    // A resend with the same key replays the review answer: marked, the
    // same payment, nothing executed again.
    let replay = sim.toss_post("/v1/billing/billing_sim_review", &billing("order-rev-1"), Some("order-rev-1")).await;
    assert_eq!(replay.status(), StatusCode::OK);
    let marked = replay.headers().get("idempotent-replayed").map(|value| value.to_str().unwrap().to_owned());
    let replayed = json(replay).await;
    assert_eq!(
        (marked.as_deref(), replayed["paymentKey"].as_str(), &replayed["status"]),
        (Some("true"), Some(keys[0].as_str()), &json!("IN_PROGRESS")),
        "a replay of the first answer"
    );
    assert_eq!(sim.outcomes("order-rev-1").await, ["200", "replayed"]);
    let approve = sim.post_admin(&format!("/_sim/review/{}", keys[0]), &json!({"result": "approve"})).await;
    assert_eq!(json(approve).await["status"], "DONE");
    let captures = sim.captures(Some("order-rev-1")).await;
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0]["idempotency_key"], "order-rev-1");
    let reject = sim.post_admin(&format!("/_sim/review/{}", keys[1]), &json!({"result": "reject"})).await;
    let rejected = json(reject).await;
    assert_eq!(rejected["status"], "ABORTED");
    assert_eq!(rejected["failure"]["code"], "FDS_ERROR");
    assert!(sim.captures(Some("order-rev-2")).await.is_empty());
    let twice = sim.post_admin(&format!("/_sim/review/{}", keys[1]), &json!({"result": "approve"})).await;
    assert_eq!(twice.status(), StatusCode::CONFLICT);
}
