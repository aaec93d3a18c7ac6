//! Black-box tests of `POST /v1/payment_intents/{id}/cancel` over real
//! HTTP: which intents can be canceled, and that a canceled intent is never
//! captured afterwards.

mod common;

use common::{Sim, Sink, confirmed_body, json};
use psp_simulator::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Creates and confirms an intent with `token`; answers the intent.
async fn charge(sim: &Sim, token: &str, order: &str) -> Value {
    let response = sim.post("/v1/payment_intents", &confirmed_body(token, order), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await
}

/// Asserts Stripe's 400 `payment_intent_unexpected_state`.
async fn assert_unexpected_state(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json(response).await;
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    assert_eq!(body["error"]["code"], "payment_intent_unexpected_state");
    body
}

/// An intent waiting for 3-D Secure is canceled (status, reason, time,
/// `payment_intent.canceled` event, idempotent replay); completing the
/// challenge afterwards — by the admin call or the page — is refused and
/// nothing is captured; confirming it again is refused too.
#[tokio::test]
async fn cancel_requires_action_then_challenge_is_refused() {
    let sink = Sink::start().await;
    let mut config = SimConfig::new();
    config.stripe_webhook_url = Some(sink.url.clone());
    let sim = Sim::start_with(config).await;
    let intent = charge(&sim, "pm_card_threeDSecure2Required", "po_cxl_3ds").await;
    assert_eq!(intent["status"], "requires_action");
    assert!(intent["canceled_at"].is_null());
    assert!(intent["cancellation_reason"].is_null());
    let id = intent["id"].as_str().unwrap();
    let path = format!("/v1/payment_intents/{id}/cancel");
    let form = "cancellation_reason=requested_by_customer";
    let canceled = sim.post(&path, form, Some("cxl-3ds")).await;
    assert_eq!(canceled.status(), StatusCode::OK);
    let canceled = json(canceled).await;
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["cancellation_reason"], "requested_by_customer");
    assert!(canceled["canceled_at"].as_u64().is_some_and(|at| at > 0));
    assert!(canceled["next_action"].is_null());
    let replay = sim.post(&path, form, Some("cxl-3ds")).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json(replay).await, canceled);

    let approve = sim.post_admin(&format!("/_sim/3ds/{id}"), &json!({"result": "approve"})).await;
    let body = assert_unexpected_state(approve).await;
    assert_eq!(body["error"]["payment_intent"]["status"], "canceled");
    let page = sim.client.post(format!("{}/3ds/{id}", sim.base)).form(&[("result", "approve")]).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    let confirm = sim.post(&format!("/v1/payment_intents/{id}/confirm"), "", None).await;
    assert_unexpected_state(confirm).await;
    let current = json(sim.get(&format!("/v1/payment_intents/{id}")).await).await;
    assert_eq!(current["status"], "canceled");
    assert_eq!(current["amount_received"], 0);
    assert!(sim.captures(None).await.is_empty());

    let event = sink.wait_for(|body| body["type"] == "payment_intent.canceled").await;
    assert_eq!(event["data"]["object"]["id"], id);
}

/// An intent in manual review (`processing`) is canceled; approving the
/// review afterwards is refused with `payment_intent_unexpected_state` and
/// captures nothing.
#[tokio::test]
async fn cancel_processing_then_review_is_refused() {
    let sim = Sim::start().await;
    let intent = charge(&sim, "pm_card_sim_review", "po_cxl_review").await;
    assert_eq!(intent["status"], "processing");
    let id = intent["id"].as_str().unwrap();
    let canceled = sim.post(&format!("/v1/payment_intents/{id}/cancel"), "", None).await;
    assert_eq!(canceled.status(), StatusCode::OK);
    let canceled = json(canceled).await;
    assert_eq!(canceled["status"], "canceled");
    assert!(canceled["cancellation_reason"].is_null());
    let approve = sim.post_admin(&format!("/_sim/review/{id}"), &json!({"result": "approve"})).await;
    assert_unexpected_state(approve).await;
    assert!(sim.captures(None).await.is_empty());
}

/// Unconfirmed intents cancel; succeeded and already canceled ones are
/// refused; unknown ids are 404; bad reasons and unknown parameters are
/// refused; authentication is required.
#[tokio::test]
async fn cancel_rules() {
    let sim = Sim::start().await;
    let created = json(sim.post("/v1/payment_intents", "amount=1000&currency=krw", None).await).await;
    assert_eq!(created["status"], "requires_payment_method");
    let path = format!("/v1/payment_intents/{}/cancel", created["id"].as_str().unwrap());
    let bad_reason = sim.post(&path, "cancellation_reason=bored", None).await;
    assert_eq!(bad_reason.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(bad_reason).await["error"]["param"], "cancellation_reason");
    let unknown = sim.post(&path, "amount=5", None).await;
    assert_eq!(json(unknown).await["error"]["code"], "parameter_unknown");
    let abandoned = sim.post(&path, "cancellation_reason=abandoned", None).await;
    assert_eq!(json(abandoned).await["status"], "canceled");
    assert_unexpected_state(sim.post(&path, "", None).await).await;

    let paid = charge(&sim, "pm_card_visa", "po_cxl_paid").await;
    let path = format!("/v1/payment_intents/{}/cancel", paid["id"].as_str().unwrap());
    let body = assert_unexpected_state(sim.post(&path, "", None).await).await;
    assert_eq!(body["error"]["payment_intent"]["status"], "succeeded");
    assert_eq!(sim.captures(Some("po_cxl_paid")).await.len(), 1);

    let missing = sim.post("/v1/payment_intents/pi_nope/cancel", "", None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let anonymous = sim.client.post(format!("{}{path}", sim.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}
