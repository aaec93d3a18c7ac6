//! Black-box tests of dashboard refunds (`POST /_sim/dashboard/refunds`):
//! refunds an operator makes at the PSP, outside the platform's API calls,
//! visible wherever an API refund is and bounded by the same remainder.

mod common;

use common::{Sim, Sink, confirmed_body, csv_rows, json, utc_date};
use psp_simulator::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};

const DASHBOARD: &str = "/_sim/dashboard/refunds";

/// A simulator whose webhooks of both PSPs go to a fresh sink.
async fn sim_with_sink() -> (Sim, Sink) {
    let sink = Sink::start().await;
    let mut config = SimConfig::new();
    config.stripe_webhook_url = Some(sink.url.clone());
    config.toss_webhook_url = Some(sink.url.clone());
    (Sim::start_with(config).await, sink)
}

/// POSTs a dashboard refund; answers its status and JSON body.
async fn dashboard_refund(sim: &Sim, body: Value) -> (StatusCode, Value) {
    let response = sim.post_admin(DASHBOARD, &body).await;
    (response.status(), json(response).await)
}

/// Stripe: a dashboard refund is a Refund object listed by
/// `GET /v1/refunds?payment_intent=`, recorded in `/_sim/refunds` without
/// an idempotency key, reported as a balance transaction and a CSV row,
/// announced as `charge.refunded`, and shares the charge's remainder with
/// API refunds.
#[tokio::test]
async fn stripe_dashboard_refund_shows_everywhere() {
    let (sim, sink) = sim_with_sink().await;
    let intent = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_dash"), None).await).await;
    let id = intent["id"].as_str().unwrap();
    let body =
        json!({"psp": "stripe", "payment_reference": id, "amount_minor": 5000, "reason": "requested_by_customer"});
    let (status, refund) = dashboard_refund(&sim, body).await;
    assert_eq!(status, StatusCode::OK, "{refund}");
    assert_eq!(
        (&refund["object"], &refund["amount"], &refund["status"]),
        (&json!("refund"), &json!(5000), &json!("succeeded"))
    );
    assert_eq!((&refund["reason"], &refund["charge"]), (&json!("requested_by_customer"), &intent["latest_charge"]));

    let listed = json(sim.get(&format!("/v1/refunds?payment_intent={id}")).await).await;
    assert_eq!(listed["data"], json!([refund]));
    let recorded = sim.refunds(Some("po_dash")).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!((&recorded[0]["id"], &recorded[0]["amount"]), (&refund["id"], &json!(5000)));
    assert!(recorded[0]["idempotency_key"].is_null());
    let refunds = json(sim.get("/v1/balance_transactions?type=refund&expand[]=data.source").await).await;
    assert_eq!(refunds["data"][0]["source"]["id"], refund["id"]);
    assert_eq!(
        (&refunds["data"][0]["amount"], &refunds["data"][0]["id"]),
        (&json!(-5000), &refund["balance_transaction"])
    );
    let day = utc_date(refund["created"].as_u64().unwrap());
    let rows = csv_rows(&sim, "stripe", &day).await;
    assert!(rows.iter().any(|row| row[1] == refund["balance_transaction"] && row[4] == "refund" && row[5] == "-5000"));
    sink.wait_for(|event| event["type"] == "charge.refunded" && event["data"]["object"]["amount_refunded"] == 5000)
        .await;

    let api = sim.post("/v1/refunds", &format!("payment_intent={id}&amount=10001"), None).await;
    assert_eq!(json(api).await["error"]["code"], "amount_too_large", "API refunds see the dashboard refund");
    let over = json!({"psp": "stripe", "payment_reference": id, "amount_minor": 10001});
    let (status, error) = dashboard_refund(&sim, over).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["error"].as_str().unwrap().contains("greater than unrefunded amount"), "{error}");
    let rest = json!({"psp": "stripe", "payment_reference": id, "amount_minor": 10000});
    assert_eq!(dashboard_refund(&sim, rest.clone()).await.0, StatusCode::OK);
    let (status, error) = dashboard_refund(&sim, rest).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["error"].as_str().unwrap().contains("already been refunded"), "{error}");
    assert_eq!(sim.stats().await["refunds_total"], 2);
}

/// Stripe: an unknown intent is 404, one that captured nothing 400, and a
/// reason outside Stripe's list 400; nothing is recorded.
#[tokio::test]
async fn stripe_dashboard_refund_refusals() {
    let sim = Sim::start().await;
    let (status, _) =
        dashboard_refund(&sim, json!({"psp": "stripe", "payment_reference": "pi_missing", "amount_minor": 1})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let open = json(sim.post("/v1/payment_intents", "amount=1000&currency=usd", None).await).await;
    let uncaptured = json!({"psp": "stripe", "payment_reference": open["id"], "amount_minor": 1});
    assert_eq!(dashboard_refund(&sim, uncaptured).await.0, StatusCode::BAD_REQUEST);
    let odd_reason = json!({"psp": "stripe", "payment_reference": open["id"], "amount_minor": 1, "reason": "bored"});
    assert_eq!(dashboard_refund(&sim, odd_reason).await.0, StatusCode::BAD_REQUEST);
    assert!(sim.refunds(None).await.is_empty());
}

/// Toss: a dashboard refund is a cancellation in the payment's `cancels`
/// (partial, then whole), recorded in `/_sim/refunds`, reported by the
/// settlements API and the CSV, announced as `PAYMENT_STATUS_CHANGED`, and
/// bounded by the balance.
#[tokio::test]
async fn toss_dashboard_refund_shows_everywhere() {
    let (sim, sink) = sim_with_sink().await;
    let charge = json!({"customerKey": "c", "amount": 15000, "orderId": "order-dash", "orderName": "n"});
    let payment = json(sim.toss_post("/v1/billing/billing_success", &charge, None).await).await;
    let key = payment["paymentKey"].as_str().unwrap();
    let body = json!({"psp": "toss", "payment_reference": key, "amount_minor": 4000, "reason": "고객 변심"});
    let (status, canceled) = dashboard_refund(&sim, body).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!((&canceled["status"], &canceled["balanceAmount"]), (&json!("PARTIAL_CANCELED"), &json!(11_000)));
    let read = json(sim.toss_get(&format!("/v1/payments/{key}")).await).await;
    let cancel = &read["cancels"][0];
    assert_eq!((&cancel["cancelAmount"], &cancel["cancelReason"]), (&json!(4000), &json!("고객 변심")));
    let recorded = sim.refunds(Some("order-dash")).await;
    assert_eq!((recorded.len(), &recorded[0]["id"]), (1, &cancel["transactionKey"]));
    let day = &payment["approvedAt"].as_str().unwrap()[..10];
    let items = json(sim.toss_get(&format!("/v1/settlements?startDate={day}&endDate={day}")).await).await;
    let refund_item = items.as_array().unwrap().iter().find(|item| !item["cancel"].is_null()).unwrap().clone();
    assert_eq!((&refund_item["amount"], &refund_item["transactionKey"]), (&json!(-4000), &cancel["transactionKey"]));
    let rows = csv_rows(&sim, "toss", day).await;
    assert!(rows.iter().any(|row| row[1] == cancel["transactionKey"] && row[5] == "-4000"));
    sink.wait_for(|event| {
        event["eventType"] == "PAYMENT_STATUS_CHANGED" && event["data"]["status"] == "PARTIAL_CANCELED"
    })
    .await;

    let over = json!({"psp": "toss", "payment_reference": key, "amount_minor": 11_001});
    assert_eq!(dashboard_refund(&sim, over).await.0, StatusCode::BAD_REQUEST);
    let rest = json!({"psp": "toss", "payment_reference": key, "amount_minor": 11_000});
    let (status, whole) = dashboard_refund(&sim, rest.clone()).await;
    assert_eq!((status, &whole["status"]), (StatusCode::OK, &json!("CANCELED")));
    assert_eq!(whole["cancels"][1]["cancelReason"], "dashboard refund", "the default reason");
    assert_eq!(dashboard_refund(&sim, rest).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(sim.refunds(Some("order-dash")).await.len(), 2);
}

/// Toss: an unknown payment is 404; one never approved (a payment session
/// waiting for its confirm) is 400 and stays as it was.
#[tokio::test]
async fn toss_dashboard_refund_refusals() {
    let sim = Sim::start().await;
    let unknown = json!({"psp": "toss", "payment_reference": "nokey", "amount_minor": 1});
    assert_eq!(dashboard_refund(&sim, unknown).await.0, StatusCode::NOT_FOUND);
    let session = json!({"orderId": "order-ready", "amount": 1000, "card": "success"});
    let ready = json(sim.post_admin("/_sim/toss/payment-sessions", &session).await).await;
    let key = ready["paymentKey"].as_str().unwrap();
    let body = json!({"psp": "toss", "payment_reference": key, "amount_minor": 1000});
    assert_eq!(dashboard_refund(&sim, body).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(json(sim.toss_get(&format!("/v1/payments/{key}")).await).await["status"], "READY");
    assert!(sim.refunds(None).await.is_empty());
}
