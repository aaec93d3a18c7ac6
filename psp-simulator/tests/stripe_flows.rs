//! Black-box tests of the Stripe flows beyond a plain charge: 3-D Secure,
//! manual review and refunds.

mod common;

use common::{Sim, confirmed_body, json, poll};
use psp_simulator::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Creates and confirms an intent with `token`, returning the intent.
async fn charge(sim: &Sim, token: &str, order: &str, key: &str) -> Value {
    let body = confirmed_body(token, order) + "&return_url=https%3A%2F%2Fshop.example%2Fdone";
    let response = sim.post("/v1/payment_intents", &body, Some(key)).await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await
}

/// `pm_card_threeDSecure2Required` stops in `requires_action` with a
/// `redirect_to_url` next action pointing at the simulator's challenge page
/// (and carrying `return_url`); nothing is captured until the page's
/// "Complete authentication" form is posted, which captures once and
/// redirects back with Stripe's query parameters.
#[tokio::test]
async fn three_d_secure_challenge_page_approves() {
    let sim = Sim::start().await;
    let intent = charge(&sim, "pm_card_threeDSecure2Required", "po_3ds", "k3ds").await;
    let id = intent["id"].as_str().unwrap();
    assert_eq!(intent["status"], "requires_action");
    let redirect = &intent["next_action"]["redirect_to_url"];
    assert_eq!(intent["next_action"]["type"], "redirect_to_url");
    assert_eq!(redirect["url"], format!("{}/3ds/{id}", sim.base));
    assert_eq!(redirect["return_url"], "https://shop.example/done");
    assert!(sim.captures(None).await.is_empty());

    let page = sim.client.get(format!("{}/3ds/{id}", sim.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Complete authentication") && html.contains("Fail authentication"));
    assert!(html.contains("15000"));

    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let submitted =
        no_redirects.post(format!("{}/3ds/{id}", sim.base)).form(&[("result", "approve")]).send().await.unwrap();
    assert_eq!(submitted.status(), StatusCode::SEE_OTHER);
    let location = submitted.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(&format!("https://shop.example/done?payment_intent={id}")));
    assert!(location.ends_with("redirect_status=succeeded"));

    let stored = json(sim.get(&format!("/v1/payment_intents/{id}")).await).await;
    assert_eq!(stored["status"], "succeeded");
    assert!(stored["next_action"].is_null());
    let captures = sim.captures(Some("po_3ds")).await;
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0]["idempotency_key"], "k3ds");
    assert_eq!(captures[0]["psp"], "stripe");
}

/// Failing the challenge through `POST /_sim/3ds/{id}` leaves the intent in
/// `requires_payment_method` with `payment_intent_authentication_failure`
/// and captures nothing; resolving twice is a conflict.
#[tokio::test]
async fn three_d_secure_failure_via_api() {
    let sim = Sim::start().await;
    let intent = charge(&sim, "pm_card_threeDSecure2Required", "po_3ds_fail", "k3f").await;
    let id = intent["id"].as_str().unwrap();
    let path = format!("/_sim/3ds/{id}");
    let failed = sim.post_admin(&path, &json!({"result": "fail"})).await;
    assert_eq!(failed.status(), StatusCode::OK);
    let failed = json(failed).await;
    assert_eq!(failed["status"], "requires_payment_method");
    assert_eq!(failed["last_payment_error"]["code"], "payment_intent_authentication_failure");
    assert!(failed["payment_method"].is_null());
    assert!(sim.captures(None).await.is_empty());
    let again = sim.post_admin(&path, &json!({"result": "approve"})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let missing = sim.post_admin("/_sim/3ds/pi_nope", &json!({"result": "approve"})).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// `pm_card_sim_review` answers `processing` without capturing; approving
/// the review captures once, rejecting declines as `fraudulent`.
#[tokio::test]
async fn manual_review_approve_and_reject() {
    let sim = Sim::start().await;
    let approved = charge(&sim, "pm_card_sim_review", "po_rev_ok", "krev1").await;
    assert_eq!(approved["status"], "processing");
    let rejected = charge(&sim, "pm_card_sim_review", "po_rev_no", "krev2").await;
    assert!(sim.captures(None).await.is_empty());

    let path = format!("/_sim/review/{}", approved["id"].as_str().unwrap());
    let done = json(sim.post_admin(&path, &json!({"result": "approve"})).await).await;
    assert_eq!(done["status"], "succeeded");
    let captures = sim.captures(Some("po_rev_ok")).await;
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0]["idempotency_key"], "krev1");

    let path = format!("/_sim/review/{}", rejected["id"].as_str().unwrap());
    let declined = json(sim.post_admin(&path, &json!({"result": "reject"})).await).await;
    assert_eq!(declined["status"], "requires_payment_method");
    assert_eq!(declined["last_payment_error"]["code"], "card_declined");
    assert_eq!(declined["last_payment_error"]["decline_code"], "fraudulent");
    assert!(sim.captures(Some("po_rev_no")).await.is_empty());

    // The replay of the original request still shows the first answer:
    // marked as a replay, the same intent, as it was then; nothing executes.
    let replay = sim
        .post(
            "/v1/payment_intents",
            &(confirmed_body("pm_card_sim_review", "po_rev_ok") + "&return_url=https%3A%2F%2Fshop.example%2Fdone"),
            Some("krev1"),
        )
        .await;
    assert_eq!(replay.status(), StatusCode::OK);
    let marked = replay.headers().get("idempotent-replayed").map(|value| value.to_str().unwrap().to_owned());
    let replayed = json(replay).await;
    assert_eq!(
        (marked.as_deref(), &replayed["id"], &replayed["status"]),
        (Some("true"), &approved["id"], &json!("processing")),
        "a replay of the first answer"
    );
    assert_eq!(sim.captures(Some("po_rev_ok")).await.len(), 1);
    assert_eq!(sim.outcomes("krev1").await, ["200", "replayed"]);
}

/// With `review_auto_resolve_ms` a review approves itself: the intent
/// answers `processing`, later reads `succeeded`, and is captured once.
#[tokio::test]
async fn manual_review_auto_approves() {
    let mut config = SimConfig::new();
    config.review_auto_resolve_ms = Some(100);
    let sim = Sim::start_with(config).await;
    let intent = charge(&sim, "pm_card_sim_review", "po_rev_auto", "krev3").await;
    assert_eq!(intent["status"], "processing");
    let path = format!("/v1/payment_intents/{}", intent["id"].as_str().unwrap());
    poll("the review to approve itself", async || {
        let stored = json(sim.get(&path).await).await;
        (stored["status"] == "succeeded").then_some(())
    })
    .await;
    assert_eq!(sim.captures(Some("po_rev_auto")).await.len(), 1);
}

/// Refunds: partial, over-refund refused with `amount_too_large`, the rest
/// by default, then `charge_already_refunded`; the charge keeps the
/// bookkeeping and `/_sim/refunds` lists them by payment order.
#[tokio::test]
async fn refunds_partial_full_and_refused() {
    let sim = Sim::start().await;
    let intent = charge(&sim, "pm_card_visa", "po_refund", "kref").await;
    let id = intent["id"].as_str().unwrap();

    let partial = sim
        .post("/v1/refunds", &format!("payment_intent={id}&amount=5000&reason=requested_by_customer"), Some("kref-1"))
        .await;
    assert_eq!(partial.status(), StatusCode::OK);
    let partial = json(partial).await;
    assert!(partial["id"].as_str().unwrap().starts_with("re_"));
    assert_eq!(partial["object"], "refund");
    assert_eq!(partial["amount"], 5000);
    assert_eq!(partial["status"], "succeeded");
    assert_eq!(partial["payment_intent"], id);
    assert_eq!(partial["reason"], "requested_by_customer");

    let replay = sim
        .post("/v1/refunds", &format!("payment_intent={id}&amount=5000&reason=requested_by_customer"), Some("kref-1"))
        .await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");

    let too_much = sim.post("/v1/refunds", &format!("payment_intent={id}&amount=20000"), None).await;
    assert_eq!(too_much.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(too_much).await["error"]["code"], "amount_too_large");

    let rest = json(sim.post("/v1/refunds", &format!("payment_intent={id}"), None).await).await;
    assert_eq!(rest["amount"], 10000);
    let nothing_left = sim.post("/v1/refunds", &format!("payment_intent={id}"), None).await;
    assert_eq!(nothing_left.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(nothing_left).await["error"]["code"], "charge_already_refunded");

    let charge_id = intent["latest_charge"].as_str().unwrap();
    let charge = json(sim.get(&format!("/v1/charges/{charge_id}")).await).await;
    assert_eq!(charge["amount_refunded"], 15000);
    assert_eq!(charge["refunded"], true);

    let refunds = sim.refunds(Some("po_refund")).await;
    assert_eq!(refunds.len(), 2);
    assert_eq!(refunds[0]["psp"], "stripe");
    assert_eq!(refunds[0]["amount"], 5000);
    assert_eq!(refunds[0]["idempotency_key"], "kref-1");
    assert_eq!(refunds[1]["amount"], 10000);
}

/// Refunding an unknown intent is 404 `resource_missing`; refunding one
/// that never succeeded is a 400.
#[tokio::test]
async fn refunds_of_unknown_or_unpaid_intents() {
    let sim = Sim::start().await;
    let unknown = sim.post("/v1/refunds", "payment_intent=pi_nope", None).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(json(unknown).await["error"]["code"], "resource_missing");

    let unpaid = json(sim.post("/v1/payment_intents", "amount=100&currency=usd", None).await).await;
    let id = unpaid["id"].as_str().unwrap();
    let refused = sim.post("/v1/refunds", &format!("payment_intent={id}"), None).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(refused).await["error"]["type"], "invalid_request_error");
    assert!(sim.refunds(None).await.is_empty());
}
