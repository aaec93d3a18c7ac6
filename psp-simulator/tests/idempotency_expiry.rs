//! Black-box tests of idempotency-key expiry: a key the PSP has forgotten
//! (its TTL passed, or `POST /_sim/idempotency/expire` forced it) makes a
//! resend execute anew instead of replaying — the hazard a platform must
//! not rely on its PSP to catch.

mod common;

use std::time::Duration;

use common::{Sim, confirmed_body, json};
use psp_simulator::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A TTL short enough for a test to outlive.
const SHORT_TTL_MS: u64 = 50;

/// A Toss billing-key charge body.
fn billing(order_id: &str) -> Value {
    json!({"customerKey": "cust", "amount": 12_000, "orderId": order_id, "orderName": "order"})
}

/// Waits until a key first used now has outlived [`SHORT_TTL_MS`]. The TTL
/// is measured on the wall clock, so passing time is the state waited for:
/// this sleep is kept on purpose (twice the TTL is a lower bound, so a busy
/// machine only makes it longer, never too short). Polling would not do:
/// a resend is the only probe, and a resend inside the TTL replays and
/// changes what the test observes.
async fn outlive_short_ttl() {
    tokio::time::sleep(Duration::from_millis(SHORT_TTL_MS * 2)).await;
}

/// `POST /_sim/idempotency/expire` with `body` (raw); answers the count.
async fn expire(sim: &Sim, body: &str) -> u64 {
    let url = format!("{}/_sim/idempotency/expire", sim.base);
    let response = sim.client.post(url).body(body.to_owned()).send().await.expect("expire");
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await["expired"].as_u64().expect("expired count")
}

/// Whether `response` is a replay.
fn replayed(response: &reqwest::Response) -> bool {
    response.headers().get("idempotent-replayed").is_some()
}

/// With a short Stripe TTL, a create-and-confirm resent after it executes
/// again: a second intent and a second capture for the same order, no
/// replay. Toss keys, on their own (default) TTL, still replay.
#[tokio::test]
async fn stripe_key_expires_after_its_ttl() {
    let mut config = SimConfig::new();
    config.stripe_idempotency_key_ttl_ms = SHORT_TTL_MS;
    let sim = Sim::start_with(config).await;
    let body = confirmed_body("pm_card_visa", "po_ttl");
    let first = sim.post("/v1/payment_intents", &body, Some("ttl-1")).await;
    assert_eq!(first.status(), StatusCode::OK);
    let first = json(first).await;
    let toss = sim.toss_post("/v1/billing/billing_success", &billing("order-ttl-keep"), Some("ttl-toss")).await;
    assert_eq!(toss.status(), StatusCode::OK);
    outlive_short_ttl().await;

    let again = sim.post("/v1/payment_intents", &body, Some("ttl-1")).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(!replayed(&again));
    let again = json(again).await;
    assert_eq!(again["status"], "succeeded");
    assert_ne!(again["id"], first["id"], "a new intent, not the remembered one");
    let captures = sim.captures(Some("po_ttl")).await;
    assert_eq!(captures.len(), 2);
    assert!(captures.iter().all(|capture| capture["idempotency_key"] == "ttl-1"));
    assert_eq!(sim.outcomes("ttl-1").await, ["200", "200"]);

    let toss = sim.toss_post("/v1/billing/billing_success", &billing("order-ttl-keep"), Some("ttl-toss")).await;
    assert!(replayed(&toss), "the Toss key lives for Toss's TTL");
    assert_eq!(sim.captures(Some("order-ttl-keep")).await.len(), 1);
}

/// With a short Toss TTL, a billing charge resent after it executes again
/// instead of replaying: Toss's own order-id check then refuses it (400
/// `DUPLICATED_ORDER_ID`, so one capture), exactly what the real Toss
/// answers once it forgot the key. Stripe keys still replay.
#[tokio::test]
async fn toss_key_expires_after_its_ttl() {
    let mut config = SimConfig::new();
    config.toss_idempotency_key_ttl_ms = SHORT_TTL_MS;
    let sim = Sim::start_with(config).await;
    let body = billing("order-ttl-1");
    let first = sim.toss_post("/v1/billing/billing_success", &body, Some("tttl-1")).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(json(first).await["status"], "DONE");
    let stripe = sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_ttl_keep"), Some("ttl-s")).await;
    assert_eq!(stripe.status(), StatusCode::OK);
    outlive_short_ttl().await;

    let again = sim.toss_post("/v1/billing/billing_success", &body, Some("tttl-1")).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(!replayed(&again));
    assert_eq!(json(again).await["code"], "DUPLICATED_ORDER_ID");
    assert_eq!(sim.captures(Some("order-ttl-1")).await.len(), 1);
    assert_eq!(sim.outcomes("tttl-1").await, ["200", "400"]);

    let stripe = sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_ttl_keep"), Some("ttl-s")).await;
    assert!(replayed(&stripe), "the Stripe key lives for Stripe's TTL");
    assert_eq!(sim.captures(Some("po_ttl_keep")).await.len(), 1);
}

/// Sends a Stripe create `body` twice with `key`; answers both statuses.
async fn create_twice(sim: &Sim, body: &str, key: &str) -> (StatusCode, StatusCode) {
    let first = sim.post("/v1/payment_intents", body, Some(key)).await.status();
    (first, sim.post("/v1/payment_intents", body, Some(key)).await.status())
}

/// Stripe, forced expiry: within the TTL the key replays; expired by name
/// (`{"expired": 1}`, then 0 for a key no longer known) the resend
/// captures a second time. Attempt counting restarts at 1 (the rate-limit
/// token answers 429 again), and an expired key may carry a different
/// request without an `idempotency_error`.
#[tokio::test]
async fn stripe_resend_after_forced_expiry_captures_again() {
    let sim = Sim::start().await;
    let body = confirmed_body("pm_card_visa", "po_exp");
    assert_eq!(sim.post("/v1/payment_intents", &body, Some("exp-1")).await.status(), StatusCode::OK);
    assert!(replayed(&sim.post("/v1/payment_intents", &body, Some("exp-1")).await));
    assert_eq!(sim.captures(Some("po_exp")).await.len(), 1);

    assert_eq!(expire(&sim, r#"{"key": "exp-1"}"#).await, 1);
    assert_eq!(expire(&sim, r#"{"key": "exp-1"}"#).await, 0);
    let again = sim.post("/v1/payment_intents", &body, Some("exp-1")).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(!replayed(&again));
    assert_eq!(sim.captures(Some("po_exp")).await.len(), 2);
    assert_eq!(sim.outcomes("exp-1").await, ["200", "replayed", "200"]);

    let limited = confirmed_body("pm_card_sim_rate_limited", "po_exp_429");
    let limited_then_ok = (StatusCode::TOO_MANY_REQUESTS, StatusCode::OK);
    assert_eq!(create_twice(&sim, &limited, "exp-429").await, limited_then_ok);
    assert_eq!(expire(&sim, r#"{"key": "exp-429"}"#).await, 1);
    assert_eq!(create_twice(&sim, &limited, "exp-429").await, limited_then_ok);
    assert_eq!(sim.captures(Some("po_exp_429")).await.len(), 2);

    assert_eq!(expire(&sim, r#"{"key": "exp-1"}"#).await, 1);
    let other = sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_exp_other"), Some("exp-1")).await;
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(sim.captures(Some("po_exp_other")).await.len(), 1);
}

/// Toss, forced expiry of every key: the billing charge's attempt count
/// restarts (the rate-limit key answers 429 again on the next resend), and
/// the resend that executes is refused by Toss's order-id check; one
/// capture. The count covers the keys of both dialects.
#[tokio::test]
async fn toss_resend_after_forced_expiry_executes_again() {
    let sim = Sim::start().await;
    let body = billing("order-exp-1");
    let path = "/v1/billing/billing_sim_rate_limited";
    assert_eq!(sim.toss_post(path, &body, Some("texp-1")).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(sim.toss_post(path, &body, Some("texp-1")).await.status(), StatusCode::OK);
    assert!(replayed(&sim.toss_post(path, &body, Some("texp-1")).await));
    sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_texp"), Some("texp-stripe")).await;

    assert_eq!(expire(&sim, "").await, 2);
    let restarted = sim.toss_post(path, &body, Some("texp-1")).await;
    assert_eq!(restarted.status(), StatusCode::TOO_MANY_REQUESTS, "attempt 1 again");
    let executed = sim.toss_post(path, &body, Some("texp-1")).await;
    assert!(!replayed(&executed));
    assert_eq!(json(executed).await["code"], "DUPLICATED_ORDER_ID");
    assert_eq!(sim.captures(Some("order-exp-1")).await.len(), 1);
    assert_eq!(sim.outcomes("texp-1").await, ["429", "200", "replayed", "429", "400"]);
    assert_eq!(expire(&sim, "{}").await, 1);
}

/// The expiry endpoint refuses an empty key, unknown fields and non-JSON
/// with 400 `{"error": ...}`, and then forgets nothing.
#[tokio::test]
async fn expiry_requests_are_validated() {
    let sim = Sim::start().await;
    sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_expv"), Some("expv-1")).await;
    for body in [r#"{"key": ""}"#, r#"{"keys": ["expv-1"]}"#, "expv-1"] {
        let url = format!("{}/_sim/idempotency/expire", sim.base);
        let response = sim.client.post(url).body(body).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(json(response).await["error"].is_string());
    }
    let replay = sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_expv"), Some("expv-1")).await;
    assert!(replayed(&replay));
}
