//! Black-box tests of outgoing webhooks: Stripe's signed events, Toss's
//! payment and payout notifications, retries, and the chaotic review.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Sim, confirmed_body, json};
use psp_simulator::{SimConfig, stripe_signature_header, toss_payout_signature};
use serde_json::{Value, json};

/// One received webhook.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("webhook body is JSON")
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|value| value.to_str().unwrap().to_owned())
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Requests to answer with 500 before accepting.
    failures_left: Mutex<u32>,
}

/// A webhook endpoint on an ephemeral port.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    async fn start(failures: u32) -> Self {
        let state = Arc::new(ReceiverState::default());
        *state.failures_left.lock().unwrap() = failures;
        let app = Router::new().route("/hook", post(receive)).with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, state }
    }

    /// Waits until `count` webhooks were accepted, then returns them all.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..200 {
            let received = self.state.received.lock().unwrap().clone();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {count} webhooks");
    }
}

async fn receive(State(state): State<Arc<ReceiverState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    {
        let mut failures = state.failures_left.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    let body = String::from_utf8(body.to_vec()).unwrap();
    state.received.lock().unwrap().push(Received { headers, body });
    StatusCode::OK
}

/// A simulator sending both dialects' webhooks to `receiver`.
async fn sim_for(receiver: &Receiver) -> Sim {
    let mut config = SimConfig::new();
    config.stripe_webhook_url = Some(receiver.url.clone());
    config.toss_webhook_url = Some(receiver.url.clone());
    config.webhook_initial_backoff_ms = 20;
    Sim::start_with(config).await
}

/// Stripe events carry the `event` envelope and a `Stripe-Signature` that
/// verifies with the public helper and the default secret.
#[tokio::test]
async fn stripe_events_are_signed() {
    let receiver = Receiver::start(0).await;
    let sim = sim_for(&receiver).await;
    let intent = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_hook"), None).await).await;
    let received = receiver.wait_for(1).await;
    let event = received[0].json();
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(event["object"], "event");
    assert_eq!(event["type"], "payment_intent.succeeded");
    assert_eq!(event["livemode"], false);
    assert!(event["api_version"].is_string());
    assert_eq!(event["data"]["object"]["id"], intent["id"]);

    let header = received[0].header("stripe-signature").unwrap();
    let timestamp: u64 = header.strip_prefix("t=").and_then(|rest| rest.split(',').next()).unwrap().parse().unwrap();
    assert_eq!(header, stripe_signature_header("whsec_test_secret", timestamp, &received[0].body));

    let id = intent["id"].as_str().unwrap();
    sim.post("/v1/refunds", &format!("payment_intent={id}&amount=100"), None).await;
    let refunded = receiver.wait_for(2).await[1].json();
    assert_eq!(refunded["type"], "charge.refunded");
    assert_eq!(refunded["data"]["object"]["object"], "charge");
    assert_eq!(refunded["data"]["object"]["amount_refunded"], 100);

    sim.post("/v1/payment_intents", &confirmed_body("pm_card_chargeDeclined", "po_hook_declined"), None).await;
    assert_eq!(receiver.wait_for(3).await[2].json()["type"], "payment_intent.payment_failed");
}

/// Failed deliveries are retried with backoff until accepted, and every
/// attempt is listed by `/_sim/webhooks`.
#[tokio::test]
async fn deliveries_are_retried_and_logged() {
    let receiver = Receiver::start(2).await;
    let sim = sim_for(&receiver).await;
    sim.post("/v1/payment_intents", &confirmed_body("pm_card_threeDSecure2Required", "po_retry_hook"), None).await;
    let received = receiver.wait_for(1).await;
    assert_eq!(received[0].json()["type"], "payment_intent.requires_action");
    let log = json(sim.get("/_sim/webhooks").await).await;
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 3);
    for (index, delivery) in deliveries.iter().enumerate() {
        assert_eq!(delivery["attempt"], index + 1);
        assert_eq!(delivery["psp"], "stripe");
        assert_eq!(delivery["type"], "payment_intent.requires_action");
        assert_eq!(delivery["event_id"], deliveries[0]["event_id"]);
    }
    assert_eq!(deliveries[0]["status_code"], 500);
    assert_eq!(deliveries[2]["status_code"], 200);
    let gap = deliveries[2]["at_ms"].as_u64().unwrap() - deliveries[1]["at_ms"].as_u64().unwrap();
    assert!(gap >= 40, "second backoff doubles the first: {gap} ms");
}

/// An unreachable endpoint is retried `webhook_attempts_max` times, each
/// attempt logged with an error instead of a status.
#[tokio::test]
async fn unreachable_endpoint_gives_up() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let mut config = SimConfig::new();
    config.toss_webhook_url = Some(url);
    config.webhook_attempts_max = 2;
    config.webhook_initial_backoff_ms = 10;
    let sim = Sim::start_with(config).await;
    sim.toss_post(
        "/v1/billing/billing_success",
        &json!({"customerKey": "c", "amount": 1000, "orderId": "order-unreach", "orderName": "n"}),
        None,
    )
    .await;
    for _ in 0..100 {
        let log = json(sim.get("/_sim/webhooks").await).await;
        let deliveries = log["deliveries"].as_array().unwrap().clone();
        if deliveries.len() == 2 {
            assert!(deliveries.iter().all(|d| d["error"].is_string() && d["status_code"].is_null()));
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("expected two failed attempts");
}

/// Toss payment events are unsigned `PAYMENT_STATUS_CHANGED` envelopes
/// around the Payment.
#[tokio::test]
async fn toss_payment_status_changed() {
    let receiver = Receiver::start(0).await;
    let sim = sim_for(&receiver).await;
    sim.toss_post(
        "/v1/billing/billing_success",
        &json!({"customerKey": "c", "amount": 1000, "orderId": "order-hook-1", "orderName": "n"}),
        None,
    )
    .await;
    let received = receiver.wait_for(1).await;
    let event = received[0].json();
    assert_eq!(event["eventType"], "PAYMENT_STATUS_CHANGED");
    assert!(event["createdAt"].is_string());
    assert_eq!(event["data"]["status"], "DONE");
    assert_eq!(event["data"]["orderId"], "order-hook-1");
    assert!(received[0].header("tosspayments-webhook-signature").is_none());
}

/// Payout events carry Toss's transmission-time header and a two-value
/// signature, one of which verifies with the configured secret.
#[tokio::test]
async fn toss_payout_events_are_signed() {
    let receiver = Receiver::start(0).await;
    let sim = sim_for(&receiver).await;
    let response = sim
        .post_admin("/_sim/toss/payouts", &json!({"payoutId": "payout-1", "amount": 50_000, "destination": "seller-1"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let payout = json(response).await;
    assert_eq!(payout["refPayoutId"], "payout-1");
    assert_eq!(payout["amount"]["value"], 50_000);
    let received = receiver.wait_for(1).await;
    let event = received[0].json();
    assert_eq!(event["eventType"], "payout.changed");
    assert_eq!(event["entityType"], "payout");
    assert_eq!(event["entityBody"]["status"], "COMPLETED");
    let time = received[0].header("tosspayments-webhook-transmission-time").unwrap();
    assert!(time.ends_with("+09:00"));
    let header = received[0].header("tosspayments-webhook-signature").unwrap();
    let values: Vec<&str> = header.split(',').collect();
    assert_eq!(values.len(), 2);
    let expected = toss_payout_signature("toss_webhook_test_secret", &received[0].body, &time);
    assert!(values.contains(&expected.as_str()), "{header}");
}

/// A chaotic review holds back its "processing" event; on resolution the
/// final event arrives first, then the held one, each twice — on both
/// dialects.
#[tokio::test]
async fn chaotic_review_reorders_and_duplicates_events() {
    let receiver = Receiver::start(0).await;
    let sim = sim_for(&receiver).await;
    let intent = json(
        sim.post("/v1/payment_intents", &confirmed_body("pm_card_sim_review_webhook_chaos", "po_chaos"), None).await,
    )
    .await;
    assert_eq!(intent["status"], "processing");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(receiver.state.received.lock().unwrap().is_empty());
    let path = format!("/_sim/review/{}", intent["id"].as_str().unwrap());
    sim.post_admin(&path, &json!({"result": "approve"})).await;
    let types: Vec<Value> = receiver.wait_for(4).await.iter().map(|received| received.json()["type"].clone()).collect();
    assert_eq!(
        types,
        [
            "payment_intent.succeeded",
            "payment_intent.processing",
            "payment_intent.succeeded",
            "payment_intent.processing"
        ]
    );

    let payment = json(
        sim.toss_post(
            "/v1/billing/billing_sim_review_webhook_chaos",
            &json!({"customerKey": "c", "amount": 1000, "orderId": "order-chaos", "orderName": "n"}),
            None,
        )
        .await,
    )
    .await;
    let path = format!("/_sim/review/{}", payment["paymentKey"].as_str().unwrap());
    sim.post_admin(&path, &json!({"result": "reject"})).await;
    let statuses: Vec<Value> =
        receiver.wait_for(8).await[4..].iter().map(|received| received.json()["data"]["status"].clone()).collect();
    assert_eq!(statuses, ["ABORTED", "IN_PROGRESS", "ABORTED", "IN_PROGRESS"]);
}
