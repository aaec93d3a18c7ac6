//! Black-box tests of outgoing webhooks: Stripe's signed events, Toss's
//! payment and payout notifications, retries, and the chaotic review.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{Sim, confirmed_body, json, poll};
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

    /// Waits (bounded by [`poll`]) until `count` webhooks were accepted,
    /// then returns all accepted so far, in order of arrival.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        poll(&format!("{count} accepted webhooks"), async || {
            let received = self.state.received.lock().unwrap().clone();
            (received.len() >= count).then_some(received)
        })
        .await
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

/// `GET /_sim/webhooks`: every logged delivery attempt, oldest first.
async fn logged_deliveries(sim: &Sim) -> Vec<Value> {
    json(sim.get("/_sim/webhooks").await).await["deliveries"].as_array().expect("deliveries").clone()
}

/// The distinct `event_id`s of `deliveries`, in order of first attempt.
fn event_ids(deliveries: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for delivery in deliveries {
        let id = delivery["event_id"].as_str().expect("event_id");
        if !ids.iter().any(|known| known == id) {
            ids.push(id.to_owned());
        }
    }
    ids
}

/// The `attempt` numbers logged for event `id`, in order.
fn attempts_of(deliveries: &[Value], id: &str) -> Vec<u64> {
    deliveries.iter().filter(|d| d["event_id"] == id).map(|d| d["attempt"].as_u64().expect("attempt")).collect()
}

/// Failed deliveries are retried with backoff until accepted, and every
/// attempt is listed by `/_sim/webhooks`: exactly three (500, 500, 200).
/// An attempt is logged only once the receiver has answered it, so the
/// test polls the log for the accepted attempt rather than reading it as
/// soon as the receiver saw the body.
#[tokio::test]
async fn deliveries_are_retried_and_logged() {
    let receiver = Receiver::start(2).await;
    let sim = sim_for(&receiver).await;
    sim.post("/v1/payment_intents", &confirmed_body("pm_card_threeDSecure2Required", "po_retry_hook"), None).await;
    let received = receiver.wait_for(1).await;
    assert_eq!(received[0].json()["type"], "payment_intent.requires_action");
    let deliveries = poll("the accepted delivery in the log", async || {
        let deliveries = logged_deliveries(&sim).await;
        deliveries.iter().any(|delivery| delivery["status_code"] == 200).then_some(deliveries)
    })
    .await;
    assert_eq!(deliveries.len(), 3, "{deliveries:?}");
    for (index, delivery) in deliveries.iter().enumerate() {
        assert_eq!(delivery["attempt"], index + 1);
        assert_eq!(delivery["psp"], "stripe");
        assert_eq!(delivery["type"], "payment_intent.requires_action");
        assert_eq!(delivery["event_id"], deliveries[0]["event_id"]);
    }
    let statuses: Vec<&Value> = deliveries.iter().map(|delivery| &delivery["status_code"]).collect();
    assert_eq!(statuses, [&json!(500), &json!(500), &json!(200)]);
    let gap = deliveries[2]["at_ms"].as_u64().unwrap() - deliveries[1]["at_ms"].as_u64().unwrap();
    assert!(gap >= 40, "second backoff doubles the first: {gap} ms");
}

/// Attempts per event at the unreachable endpoint.
const UNREACHABLE_ATTEMPTS_MAX: u32 = 2;

/// An unreachable endpoint gets exactly `webhook_attempts_max` attempts
/// per event, each logged with an error instead of a status. One emission
/// is delivered event after event by one task, so once the fourth event of
/// a chaotic review's batch has its first attempt logged, the first three
/// are done: their counts are final and must equal the maximum, not just
/// reach it. (The last event's count is checked too, but nothing after it
/// could reveal an extra attempt.)
#[tokio::test]
async fn unreachable_endpoint_gets_exactly_attempts_max_per_event() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let mut config = SimConfig::new();
    config.toss_webhook_url = Some(url);
    config.webhook_attempts_max = UNREACHABLE_ATTEMPTS_MAX;
    config.webhook_initial_backoff_ms = 10;
    let sim = Sim::start_with(config).await;
    let order = json!({"customerKey": "c", "amount": 1000, "orderId": "order-unreach", "orderName": "n"});
    let payment = json(sim.toss_post("/v1/billing/billing_sim_review_webhook_chaos", &order, None).await).await;
    let path = format!("/_sim/review/{}", payment["paymentKey"].as_str().unwrap());
    assert_eq!(sim.post_admin(&path, &json!({"result": "reject"})).await.status(), StatusCode::OK);

    let (deliveries, ids) = poll("the first attempt at the batch's fourth event", async || {
        let deliveries = logged_deliveries(&sim).await;
        let ids = event_ids(&deliveries);
        (ids.len() == 4).then_some((deliveries, ids))
    })
    .await;
    let all_attempts: Vec<u64> = (1..=u64::from(UNREACHABLE_ATTEMPTS_MAX)).collect();
    for id in &ids[..3] {
        assert_eq!(attempts_of(&deliveries, id), all_attempts, "attempts at event {id}");
    }
    let last = &ids[3];
    let deliveries = poll("every attempt at the batch's last event", async || {
        let deliveries = logged_deliveries(&sim).await;
        (attempts_of(&deliveries, last).len() >= all_attempts.len()).then_some(deliveries)
    })
    .await;
    assert_eq!(attempts_of(&deliveries, last), all_attempts, "attempts at event {last}");
    assert!(deliveries.iter().all(|d| d["error"].is_string() && d["status_code"].is_null()), "{deliveries:?}");
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

/// The ids the received events are about: Stripe's `data.object.id`, or
/// Toss's `data.paymentKey`.
fn subjects(received: &[Received]) -> Vec<Value> {
    received
        .iter()
        .map(|received| {
            let event = received.json();
            if event["data"]["object"].is_object() {
                event["data"]["object"]["id"].clone()
            } else {
                event["data"]["paymentKey"].clone()
            }
        })
        .collect()
}

/// A chaotic Stripe review holds back its `processing` event: the first
/// event to arrive is a plain review's, created after it (waited for
/// instead of sleeping, so a held event sent early would have been ahead
/// of it). On approval the final event arrives first, then the held one,
/// each twice, and nothing else.
#[tokio::test]
async fn chaotic_stripe_review_reorders_and_duplicates_events() {
    let receiver = Receiver::start(0).await;
    let sim = sim_for(&receiver).await;
    let chaos_body = confirmed_body("pm_card_sim_review_webhook_chaos", "po_chaos");
    let intent = json(sim.post("/v1/payment_intents", &chaos_body, None).await).await;
    assert_eq!(intent["status"], "processing");
    let plain = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_sim_review", "po_plain"), None).await);
    let plain = plain.await;
    assert_eq!(subjects(&receiver.wait_for(1).await), [plain["id"].clone()], "only the plain review announced");

    let path = format!("/_sim/review/{}", intent["id"].as_str().unwrap());
    assert_eq!(sim.post_admin(&path, &json!({"result": "approve"})).await.status(), StatusCode::OK);
    let received = receiver.wait_for(5).await.split_off(1);
    assert_eq!(subjects(&received), vec![intent["id"].clone(); 4]);
    let types: Vec<Value> = received.iter().map(|received| received.json()["type"].clone()).collect();
    let (last, held) = ("payment_intent.succeeded", "payment_intent.processing");
    assert_eq!(types, [last, held, last, held]);
}

/// A chaotic Toss review holds back its `IN_PROGRESS` event (a plain
/// review created after it is announced first); on rejection `ABORTED`
/// arrives first, then the held `IN_PROGRESS`, each twice, and nothing
/// else.
#[tokio::test]
async fn chaotic_toss_review_reorders_and_duplicates_events() {
    let receiver = Receiver::start(0).await;
    let sim = sim_for(&receiver).await;
    let order = |id: &str| json!({"customerKey": "c", "amount": 1000, "orderId": id, "orderName": "n"});
    let chaos = sim.toss_post("/v1/billing/billing_sim_review_webhook_chaos", &order("order-chaos"), None).await;
    let payment = json(chaos).await;
    assert_eq!(payment["status"], "IN_PROGRESS");
    let plain = json(sim.toss_post("/v1/billing/billing_sim_review", &order("order-plain"), None).await).await;
    assert_eq!(subjects(&receiver.wait_for(1).await), [plain["paymentKey"].clone()], "only the plain review announced");

    let path = format!("/_sim/review/{}", payment["paymentKey"].as_str().unwrap());
    assert_eq!(sim.post_admin(&path, &json!({"result": "reject"})).await.status(), StatusCode::OK);
    let received = receiver.wait_for(5).await.split_off(1);
    assert_eq!(subjects(&received), vec![payment["paymentKey"].clone(); 4]);
    let statuses: Vec<Value> = received.iter().map(|received| received.json()["data"]["status"].clone()).collect();
    assert_eq!(statuses, ["ABORTED", "IN_PROGRESS", "ABORTED", "IN_PROGRESS"]);
}
