//! Black-box tests of Stripe-style idempotency over real HTTP.

mod common;

use std::sync::Arc;

use common::{Sim, confirmed_body, json};
use psp_simulator::{IDEMPOTENCY_KEY_LEN_MAX, SimConfig};
use reqwest::StatusCode;
use tokio::task::JoinSet;

/// Repeating a request with the same key replays the first response byte for
/// byte with `Idempotent-Replayed: true`, and money moves only once.
#[tokio::test]
async fn replay_returns_first_response_and_captures_once() {
    let sim = Sim::start().await;
    let body = confirmed_body("pm_card_visa", "po_replay");
    let first = sim.post("/v1/payment_intents", &body, Some("key-replay")).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_request_id = first.headers()["request-id"].clone();
    let first_body = first.bytes().await.unwrap();

    let second = sim.post("/v1/payment_intents", &body, Some("key-replay")).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.headers()["idempotency-key"], "key-replay");
    assert_ne!(second.headers()["request-id"], first_request_id);
    assert_eq!(second.bytes().await.unwrap(), first_body);

    let captures = sim.captures(Some("po_replay")).await;
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0]["idempotency_key"], "key-replay");
    let stats = sim.stats().await;
    assert_eq!(stats["idempotent_replays_total"], 1);
    assert_eq!(stats["captures_total"], 1);
}

/// Parameter order does not matter for "the same parameters".
#[tokio::test]
async fn replay_ignores_parameter_order() {
    let sim = Sim::start().await;
    let a = "amount=100&currency=usd&confirm=true&payment_method=pm_card_visa";
    let b = "payment_method=pm_card_visa&confirm=true&currency=usd&amount=100";
    let first = json(sim.post("/v1/payment_intents", a, Some("key-order")).await).await;
    let second = sim.post("/v1/payment_intents", b, Some("key-order")).await;
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(json(second).await, first);
}

/// A card decline is the idempotent result too: retrying with the same key
/// replays the 402 instead of charging again.
#[tokio::test]
async fn decline_is_replayed() {
    let sim = Sim::start().await;
    let body = confirmed_body("pm_card_chargeDeclined", "po_decline_replay");
    let first = sim.post("/v1/payment_intents", &body, Some("key-decline")).await;
    assert_eq!(first.status(), StatusCode::PAYMENT_REQUIRED);
    let first_body = first.bytes().await.unwrap();
    let second = sim.post("/v1/payment_intents", &body, Some("key-decline")).await;
    assert_eq!(second.status(), StatusCode::PAYMENT_REQUIRED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.bytes().await.unwrap(), first_body);
    assert_eq!(sim.stats().await["declines_total"], 1);
}

/// Reusing a key with different parameters, or on a different endpoint, is
/// an `idempotency_error` and executes nothing.
#[tokio::test]
async fn key_reuse_with_different_request_is_rejected() {
    let sim = Sim::start().await;
    let first =
        json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_k"), Some("key-reuse")).await).await;

    let different =
        sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_other"), Some("key-reuse")).await;
    assert_eq!(different.status(), StatusCode::BAD_REQUEST);
    let error = &json(different).await["error"];
    assert_eq!(error["type"], "idempotency_error");
    assert_eq!(
        error["message"],
        "Keys for idempotent requests can only be used with the same parameters they were first used \
         with. Try using a key other than 'key-reuse' if you meant to execute a different request."
    );

    let id = first["id"].as_str().unwrap();
    let other_endpoint = sim.post(&format!("/v1/payment_intents/{id}/confirm"), "", Some("key-reuse")).await;
    assert_eq!(other_endpoint.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(other_endpoint).await["error"]["type"], "idempotency_error");
    assert_eq!(sim.captures(None).await.len(), 1);
}

/// Validation failures are not stored: after a 400 the same key can be used
/// with corrected parameters.
#[tokio::test]
async fn validation_errors_are_not_stored() {
    let sim = Sim::start().await;
    let bad = sim.post("/v1/payment_intents", "amount=100&currency=usd&bogus=1", Some("key-fix")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let fixed = sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_fix"), Some("key-fix")).await;
    assert_eq!(fixed.status(), StatusCode::OK);
    assert!(fixed.headers().get("idempotent-replayed").is_none());
}

/// Twenty concurrent requests with one key execute once: exactly one
/// capture, and every response carries the same intent.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_same_key_requests_capture_once() {
    let sim = Arc::new(Sim::start().await);
    let body = confirmed_body("pm_card_visa", "po_concurrent");
    let mut requests = JoinSet::new();
    for _ in 0..20 {
        let sim = Arc::clone(&sim);
        let body = body.clone();
        requests.spawn(async move {
            let response = sim.post("/v1/payment_intents", &body, Some("key-concurrent")).await;
            assert_eq!(response.status(), StatusCode::OK);
            json(response).await["id"].as_str().unwrap().to_owned()
        });
    }
    let mut ids = Vec::new();
    while let Some(id) = requests.join_next().await {
        ids.push(id.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1, "all responses must carry the same intent");
    assert_eq!(sim.captures(Some("po_concurrent")).await.len(), 1);
    assert_eq!(sim.stats().await["idempotent_replays_total"], 19);
}

/// Keys longer than the limit are rejected before anything executes.
#[tokio::test]
async fn overlong_key_is_rejected() {
    let sim = Sim::start().await;
    let at_limit = "k".repeat(IDEMPOTENCY_KEY_LEN_MAX);
    let ok = sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_len"), Some(&at_limit)).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let too_long = "k".repeat(IDEMPOTENCY_KEY_LEN_MAX + 1);
    let rejected = sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_len2"), Some(&too_long)).await;
    assert_eq!(rejected.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(rejected).await["error"]["type"], "invalid_request_error");
    assert!(sim.captures(Some("po_len2")).await.is_empty());
}

/// With a bound of one key, an older key is forgotten and executes again —
/// the documented consequence of the bound.
#[tokio::test]
async fn bounded_store_forgets_oldest_key() {
    let mut config = SimConfig::new();
    config.idempotency_keys_max = 1;
    let sim = Sim::start_with(config).await;
    let body = confirmed_body("pm_card_visa", "po_bound");
    sim.post("/v1/payment_intents", &body, Some("key-old")).await;
    sim.post("/v1/payment_intents", "amount=1&currency=usd", Some("key-new")).await;
    let again = sim.post("/v1/payment_intents", &body, Some("key-old")).await;
    assert!(again.headers().get("idempotent-replayed").is_none());
    assert_eq!(sim.captures(Some("po_bound")).await.len(), 2);
}
