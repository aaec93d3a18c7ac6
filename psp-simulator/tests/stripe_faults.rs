//! Black-box tests of fault injection on the Stripe surface: fault tokens,
//! fault rates, and the request log that shows what each attempt got.

mod common;

use std::time::{Duration, Instant};

use common::{API_KEY, Sim, confirmed_body, json, poll};
use psp_simulator::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `pm_card_sim_server_error_twice` answers a 503 `api_error` (the edge's, not saved under the key) on
/// attempts 1 and 2 without storing or capturing anything, and captures
/// exactly once on attempt 3 (which is not a replay).
#[tokio::test]
async fn server_error_twice_then_success() {
    let sim = Sim::start().await;
    let body = confirmed_body("pm_card_sim_server_error_twice", "po_500");
    for _ in 0..2 {
        let response = sim.post("/v1/payment_intents", &body, Some("k500")).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().get("idempotent-replayed").is_none());
        assert_eq!(
            json(response).await,
            json!({"error": {"type": "api_error", "message": "An unknown error occurred"}})
        );
        assert!(sim.captures(None).await.is_empty());
    }
    let third = sim.post("/v1/payment_intents", &body, Some("k500")).await;
    assert_eq!(third.status(), StatusCode::OK);
    assert!(third.headers().get("idempotent-replayed").is_none());
    assert_eq!(json(third).await["status"], "succeeded");
    assert_eq!(sim.captures(Some("po_500")).await.len(), 1);
    assert_eq!(sim.outcomes("k500").await, ["503", "503", "200"]);
}

/// `pm_card_sim_rate_limited` answers 429 with Stripe's `rate_limit` body
/// and `Retry-After` on attempt 1 (nothing stored or captured); a retry
/// after that delay captures, and the request log proves the spacing.
#[tokio::test]
async fn rate_limited_then_success_after_retry_after() {
    let mut config = SimConfig::new();
    config.rate_limit_retry_after_secs = 1;
    let sim = Sim::start_with(config).await;
    let body = confirmed_body("pm_card_sim_rate_limited", "po_429");
    let first = sim.post("/v1/payment_intents", &body, Some("k429")).await;
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(first.headers()["retry-after"], "1");
    let error = &json(first).await["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "rate_limit");
    assert!(error["message"].as_str().unwrap().starts_with("Too many requests"));
    assert!(sim.captures(None).await.is_empty());

    // Kept on purpose: honouring `Retry-After` is what a client must do, so
    // the time passing is the behaviour shown (and the log's gap checks it),
    // not a guess at when some state arrives.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = sim.post("/v1/payment_intents", &body, Some("k429")).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(sim.captures(Some("po_429")).await.len(), 1);

    let log = sim.requests("k429").await;
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["outcome"], "429");
    assert_eq!(log[1]["outcome"], "200");
    assert_eq!(log[0]["method"], "POST");
    assert_eq!(log[0]["path"], "/v1/payment_intents");
    let gap = log[1]["received_at_ms"].as_u64().unwrap() - log[0]["received_at_ms"].as_u64().unwrap();
    // The simulator lets any retry through (it does not police Retry-After); what this checks
    // is its request log's clock, which the end-to-end tests read to prove a client waited.
    assert!(gap >= 1_000, "the log puts the retry {gap} ms after the first request");
}

/// Hold-back of the ordering tests' slow fault: far longer than the rest of
/// such a test needs, so on a working simulator the held answer cannot come
/// first, however busy the machine.
const HELD_BACK_MS: u64 = 30_000;
/// Hold-back of the lower-bound tests' slow fault.
const SLOW_MS: u64 = 1_500;

/// `GET /v1/payment_intents/search` for `metadata['payment_order_id']`.
async fn search_by_order(sim: &Sim, payment_order_id: &str) -> Value {
    let query = format!("metadata['payment_order_id']:'{payment_order_id}'");
    let url = format!("{}/v1/payment_intents/search", sim.base);
    let response = sim.client.get(url).bearer_auth(API_KEY).query(&[("query", query.as_str())]).send().await;
    json(response.expect("search")).await
}

/// `pm_card_sim_slow` captures and stores at once but holds the answer
/// back: while the first request still waits (a 30 s hold-back), a search
/// and a same-key replay are answered with the captured intent. The
/// `biased` select polls the held request first, so the test fails if its
/// answer is ready before both quick answers are; no clock is read.
#[tokio::test]
async fn slow_response_is_answered_after_a_later_replay() {
    let mut config = SimConfig::new();
    config.slow_response_ms = HELD_BACK_MS;
    let sim = Sim::start_with(config).await;
    let body = confirmed_body("pm_card_sim_slow", "po_slow");
    let mut slow = {
        let request =
            sim.client.post(format!("{}/v1/payment_intents", sim.base)).bearer_auth(API_KEY).body(body.clone());
        tokio::spawn(request.header("Idempotency-Key", "kslow").send())
    };
    // The capture is the sign the held request executed; wait for it
    // rather than for some time to pass.
    poll("the slow create to capture", async || (sim.captures(Some("po_slow")).await.len() == 1).then_some(())).await;
    let quick = async {
        let found = search_by_order(&sim, "po_slow").await;
        let replay = sim.post("/v1/payment_intents", &body, Some("kslow")).await;
        assert_eq!(replay.status(), StatusCode::OK);
        assert_eq!(replay.headers()["idempotent-replayed"], "true");
        (found, json(replay).await)
    };
    let (found, replayed) = tokio::select! {
        biased;
        answered = &mut slow => panic!("the held-back answer came before the search and the replay: {answered:?}"),
        quick = quick => quick,
    };
    slow.abort();
    assert_eq!(found["data"][0]["status"], "succeeded");
    assert_eq!(replayed["status"], "succeeded");
    assert_eq!(replayed["id"], found["data"][0]["id"]);
    let captures = sim.captures(Some("po_slow")).await;
    assert_eq!((captures.len(), &captures[0]["payment_intent_id"]), (1, &replayed["id"]));
    // Logged when it executed, before its answer was held back.
    assert_eq!(sim.outcomes("kslow").await, ["200", "replayed"]);
}

/// The answer of `pm_card_sim_slow` takes at least `slow_response_ms` (a
/// lower bound only: a busy machine may add any delay) and carries the
/// intent it captured, once.
#[tokio::test]
async fn slow_response_takes_at_least_its_delay() {
    let mut config = SimConfig::new();
    config.slow_response_ms = SLOW_MS;
    let sim = Sim::start_with(config).await;
    let started = Instant::now();
    let response =
        sim.post("/v1/payment_intents", &confirmed_body("pm_card_sim_slow", "po_slow_lb"), Some("kslowlb")).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(SLOW_MS), "answered after {elapsed:?}, before the {SLOW_MS} ms hold-back");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("idempotent-replayed").is_none());
    let answered = json(response).await;
    assert_eq!(answered["status"], "succeeded");
    let captures = sim.captures(Some("po_slow_lb")).await;
    assert_eq!((captures.len(), &captures[0]["payment_intent_id"]), (1, &answered["id"]));
}

/// `pm_card_sim_lost_response`: attempt 1 captures and then the connection
/// closes without a single response byte (a raw socket reads EOF/reset; an
/// HTTP client sees an error with no status). The retry with the same key
/// replays the stored answer, and there is exactly one capture. The
/// request log must say `dropped` (then `replayed`): an unanswered request
/// alone could have other causes.
#[tokio::test]
async fn lost_response_then_replay() {
    let sim = Sim::start().await;
    let body = confirmed_body("pm_card_sim_lost_response", "po_lost");
    let bearer = format!("Bearer {API_KEY}");
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Idempotency-Key", "klost"),
    ];
    // Bounded: EOF or a reset are both a lost response; any byte would not be.
    let received = sim.raw_post("/v1/payment_intents", &headers, &body).await;
    assert!(received.is_empty(), "got {:?}", String::from_utf8_lossy(&received));
    assert_eq!(sim.captures(Some("po_lost")).await.len(), 1);

    let retry = sim.post("/v1/payment_intents", &body, Some("klost")).await;
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(json(retry).await["status"], "succeeded");
    assert_eq!(sim.captures(Some("po_lost")).await.len(), 1);
    assert_eq!(sim.outcomes("klost").await, ["dropped", "replayed"]);

    // The same fault through an HTTP client: an error without a status.
    let body = confirmed_body("pm_card_sim_lost_response", "po_lost2");
    let error = sim
        .client
        .post(format!("{}/v1/payment_intents", sim.base))
        .bearer_auth(API_KEY)
        .header("Idempotency-Key", "klost2")
        .body(body)
        .send()
        .await
        .expect_err("the response is lost");
    assert!(error.status().is_none(), "{error:?}");
    assert_eq!(sim.captures(Some("po_lost2")).await.len(), 1);
    // The simulator says it dropped the answer: no other cause (a client
    // timeout, a crash) made the error.
    assert_eq!(sim.outcomes("klost2").await, ["dropped"]);
}

/// A fault rate of 1 hits the first attempt of a normal token only: the
/// retry succeeds (server error) or replays (lost response), as the request
/// log shows, and declines are never faulted.
#[tokio::test]
async fn fault_rates_hit_first_attempts_of_normal_tokens() {
    let mut config = SimConfig::new();
    config.server_error_rate = 1.0;
    let sim = Sim::start_with(config).await;
    let body = confirmed_body("pm_card_visa", "po_rate");
    let first = sim.post("/v1/payment_intents", &body, Some("krate")).await;
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    let second = sim.post("/v1/payment_intents", &body, Some("krate")).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(sim.outcomes("krate").await, ["503", "200"]);
    let declined = sim
        .post(
            "/v1/payment_intents",
            &confirmed_body("pm_card_chargeDeclined", "po_rate_declined"),
            Some("krate-declined"),
        )
        .await;
    assert_eq!(declined.status(), StatusCode::PAYMENT_REQUIRED);
    sim.stop().await;

    let mut config = SimConfig::new();
    config.lost_response_rate = 1.0;
    let sim = Sim::start_with(config).await;
    let body = confirmed_body("pm_card_mastercard", "po_rate_lost");
    let lost = sim
        .client
        .post(format!("{}/v1/payment_intents", sim.base))
        .bearer_auth(API_KEY)
        .header("Idempotency-Key", "krate-lost")
        .body(body.clone())
        .send()
        .await;
    assert!(lost.is_err());
    let retry = sim.post("/v1/payment_intents", &body, Some("krate-lost")).await;
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(sim.captures(Some("po_rate_lost")).await.len(), 1);
    assert_eq!(sim.outcomes("krate-lost").await, ["dropped", "replayed"], "the rate dropped the first answer");
}

/// `run` refuses fault rates outside [0, 1].
#[tokio::test]
async fn invalid_rates_are_rejected() {
    let mut config = SimConfig::new();
    config.slow_rate = 2.0;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = psp_simulator::run(listener, config, async {}).await;
    assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
}
