//! Black-box tests of the Stripe PaymentIntents subset over real HTTP.

mod common;

use common::{API_KEY, Sim, confirmed_body, json};
use reqwest::StatusCode;

/// A Visa payment confirmed on create succeeds with Stripe's PaymentIntent
/// shape, and exactly one capture with the payment order id is recorded.
#[tokio::test]
async fn visa_payment_is_captured() {
    let sim = Sim::start().await;
    let response =
        sim.post("/v1/payment_intents", &(confirmed_body("pm_card_visa", "po_ok") + "&description=order"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response.headers()["request-id"].to_str().unwrap().to_owned();
    assert!(request_id.starts_with("req_"), "{request_id}");
    let intent = json(response).await;
    let id = intent["id"].as_str().unwrap();
    assert!(id.starts_with("pi_") && id.len() == 27, "{id}");
    assert_eq!(intent["object"], "payment_intent");
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["amount"], 15000);
    assert_eq!(intent["amount_received"], 15000);
    assert_eq!(intent["currency"], "krw");
    assert_eq!(intent["payment_method"], "pm_card_visa");
    assert_eq!(intent["metadata"]["payment_order_id"], "po_ok");
    assert_eq!(intent["description"], "order");
    assert_eq!(intent["livemode"], false);
    assert_eq!(intent["capture_method"], "automatic");
    assert_eq!(intent["confirmation_method"], "automatic");
    assert!(intent["latest_charge"].as_str().unwrap().starts_with("ch_"));
    assert!(intent["created"].as_u64().unwrap() > 1_600_000_000);

    let captures = sim.captures(None).await;
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0]["payment_intent_id"], id);
    assert_eq!(captures[0]["payment_order_id"], "po_ok");
    assert_eq!(captures[0]["amount"], 15000);
    assert_eq!(captures[0]["currency"], "krw");
    assert!(captures[0]["idempotency_key"].is_null());
    sim.stop().await;
}

/// Mastercard is approved too.
#[tokio::test]
async fn mastercard_payment_is_captured() {
    let sim = Sim::start().await;
    let response = sim.post("/v1/payment_intents", &confirmed_body("pm_card_mastercard", "po_mc"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await["status"], "succeeded");
    assert_eq!(sim.captures(Some("po_mc")).await.len(), 1);
}

/// Asserts a 402 card decline with `decline_code` and `message`, returns the
/// embedded intent's id, and checks that nothing was captured.
async fn assert_declined(sim: &Sim, token: &str, decline_code: &str, message: &str) -> String {
    let response = sim.post("/v1/payment_intents", &confirmed_body(token, "po_declined"), None).await;
    assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
    let body = json(response).await;
    let error = &body["error"];
    assert_eq!(error["type"], "card_error");
    assert_eq!(error["code"], "card_declined");
    assert_eq!(error["decline_code"], decline_code);
    assert_eq!(error["message"], message);
    let intent = &error["payment_intent"];
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(intent["amount_received"], 0);
    assert_eq!(intent["last_payment_error"]["decline_code"], decline_code);
    assert_eq!(intent["last_payment_error"]["payment_method"]["id"], token);
    assert!(sim.captures(None).await.is_empty());
    intent["id"].as_str().unwrap().to_owned()
}

/// `pm_card_chargeDeclined` is a generic decline; the declined intent is
/// stored and retrievable, and counted as a decline.
#[tokio::test]
async fn generic_decline_is_stored_not_captured() {
    let sim = Sim::start().await;
    let id = assert_declined(&sim, "pm_card_chargeDeclined", "generic_decline", "Your card was declined.").await;
    let stored = json(sim.get(&format!("/v1/payment_intents/{id}")).await).await;
    assert_eq!(stored["status"], "requires_payment_method");
    assert_eq!(sim.stats().await["declines_total"], 1);
}

/// `pm_card_chargeDeclinedInsufficientFunds` declines with
/// `insufficient_funds`.
#[tokio::test]
async fn insufficient_funds_decline() {
    let sim = Sim::start().await;
    assert_declined(
        &sim,
        "pm_card_chargeDeclinedInsufficientFunds",
        "insufficient_funds",
        "Your card has insufficient funds.",
    )
    .await;
}

/// An unknown payment-method token is a 400 `resource_missing` on
/// `payment_method`, and no intent is created.
#[tokio::test]
async fn unknown_token_is_resource_missing() {
    let sim = Sim::start().await;
    let response = sim.post("/v1/payment_intents", &confirmed_body("pm_card_bogus", "po_x"), None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = &json(response).await["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "resource_missing");
    assert_eq!(error["param"], "payment_method");
    assert_eq!(error["message"], "No such PaymentMethod: 'pm_card_bogus'");
    let search = sim.get("/v1/payment_intents/search?query=metadata%5B%27payment_order_id%27%5D%3A%27po_x%27").await;
    assert!(json(search).await["data"].as_array().unwrap().is_empty());
}

/// Missing, malformed and non-test API keys get 401 with Stripe's error
/// shape, and the message never echoes the full key.
#[tokio::test]
async fn auth_failures_are_401_and_mask_the_key() {
    let sim = Sim::start().await;
    let url = format!("{}/v1/payment_intents", sim.base);
    let body = confirmed_body("pm_card_visa", "po_auth");

    let missing = sim.client.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let error = &json(missing).await["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert!(error["message"].as_str().unwrap().starts_with("You did not provide an API key"));

    let live_key = "sk_live_supersecretvalue9876";
    let invalid = sim.client.post(&url).bearer_auth(live_key).body(body).send().await.unwrap();
    assert_eq!(invalid.status(), StatusCode::UNAUTHORIZED);
    let message = json(invalid).await["error"]["message"].as_str().unwrap().to_owned();
    assert_eq!(message, "Invalid API Key provided: sk_live_*****9876");
    assert!(!message.contains("supersecret"));

    let retrieve = sim.client.get(format!("{}/v1/payment_intents/pi_1", sim.base)).send().await.unwrap();
    assert_eq!(retrieve.status(), StatusCode::UNAUTHORIZED);
    assert!(sim.captures(None).await.is_empty());
}

/// A created intent can be retrieved by id; an unknown id is 404
/// `resource_missing`.
#[tokio::test]
async fn retrieve_by_id() {
    let sim = Sim::start().await;
    let created = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_get"), None).await).await;
    let id = created["id"].as_str().unwrap();
    let response = sim.get(&format!("/v1/payment_intents/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await, created);

    let missing = sim.get("/v1/payment_intents/pi_doesnotexist").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let error = &json(missing).await["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "resource_missing");
}

/// Search finds intents by `metadata['payment_order_id']`, newest first, in
/// Stripe's `search_result` shape; other query forms are 400.
#[tokio::test]
async fn search_by_payment_order_id() {
    let sim = Sim::start().await;
    let declined =
        json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_chargeDeclined", "po_find"), None).await).await;
    let approved = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_find"), None).await).await;
    sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_other"), None).await;

    let query = "metadata['payment_order_id']:'po_find'";
    let response = sim
        .client
        .get(format!("{}/v1/payment_intents/search", sim.base))
        .bearer_auth(API_KEY)
        .query(&[("query", query)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let result = json(response).await;
    assert_eq!(result["object"], "search_result");
    assert_eq!(result["has_more"], false);
    assert_eq!(result["url"], "/v1/payment_intents/search");
    let ids: Vec<&str> = result["data"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [approved["id"].as_str().unwrap(), declined["error"]["payment_intent"]["id"].as_str().unwrap()]);

    let other = sim.get("/v1/payment_intents/search?query=status%3A%27succeeded%27").await;
    assert_eq!(other.status(), StatusCode::BAD_REQUEST);
}

/// With `confirm=false` nothing is captured and the intent waits in
/// `requires_confirmation`; the confirm endpoint then captures it once, and a
/// second confirm is rejected as an unexpected state.
#[tokio::test]
async fn create_then_confirm() {
    let sim = Sim::start().await;
    let body = "amount=990&currency=usd&confirm=false&payment_method=pm_card_visa&metadata[payment_order_id]=po_two";
    let created = json(sim.post("/v1/payment_intents", body, None).await).await;
    assert_eq!(created["status"], "requires_confirmation");
    assert_eq!(created["amount_received"], 0);
    assert!(sim.captures(None).await.is_empty());

    let id = created["id"].as_str().unwrap();
    let confirmed = sim.post(&format!("/v1/payment_intents/{id}/confirm"), "", None).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let confirmed = json(confirmed).await;
    assert_eq!(confirmed["status"], "succeeded");
    assert_eq!(confirmed["amount_received"], 990);
    let captures = sim.captures(Some("po_two")).await;
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0]["currency"], "usd");

    let again = sim.post(&format!("/v1/payment_intents/{id}/confirm"), "", None).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(again).await["error"]["code"], "payment_intent_unexpected_state");
    assert_eq!(sim.captures(None).await.len(), 1);
}

/// A declined intent can be confirmed again with another payment method
/// passed to the confirm endpoint.
#[tokio::test]
async fn confirm_after_decline_with_new_payment_method() {
    let sim = Sim::start().await;
    let declined =
        json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_chargeDeclined", "po_retry"), None).await).await;
    let id = declined["error"]["payment_intent"]["id"].as_str().unwrap();
    let path = format!("/v1/payment_intents/{id}/confirm");
    let retried = sim.post(&path, "payment_method=pm_card_visa", None).await;
    assert_eq!(retried.status(), StatusCode::OK);
    assert_eq!(json(retried).await["status"], "succeeded");
    assert_eq!(sim.captures(Some("po_retry")).await.len(), 1);

    let unknown = sim.post("/v1/payment_intents/pi_nope/confirm", "", None).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

/// Unknown parameters are rejected with `parameter_unknown` naming them.
#[tokio::test]
async fn unknown_parameter_is_rejected() {
    let sim = Sim::start().await;
    let response = sim.post("/v1/payment_intents", "amount=100&currency=usd&customer=cus_1", None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error = &json(response).await["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "parameter_unknown");
    assert_eq!(error["param"], "customer");
    assert_eq!(error["message"], "Received unknown parameter: customer");

    let missing = sim.post("/v1/payment_intents", "currency=usd", None).await;
    assert_eq!(json(missing).await["error"]["code"], "parameter_missing");
}

/// Unknown URLs answer 404 in Stripe's error format; admin endpoints work
/// and count only PSP API requests.
#[tokio::test]
async fn admin_endpoints_and_unknown_urls() {
    let sim = Sim::start().await;
    let health = sim.client.get(format!("{}/healthz", sim.base)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().contains_key("request-id"));
    assert_eq!(health.text().await.unwrap(), "ok");

    let unknown = sim.get("/v1/charges").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(unknown).await["error"]["type"], "invalid_request_error");

    sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_a"), None).await;
    sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_b"), None).await;
    sim.post("/v1/payment_intents", &confirmed_body("pm_card_chargeDeclined", "po_c"), None).await;
    assert_eq!(sim.captures(Some("po_b")).await.len(), 1);
    assert_eq!(sim.captures(None).await.len(), 2);
    let stats = sim.stats().await;
    assert_eq!(stats["requests_total"], 3);
    assert_eq!(stats["captures_total"], 2);
    assert_eq!(stats["declines_total"], 1);
    assert_eq!(stats["idempotent_replays_total"], 0);
}
