//! Black-box tests of the outage switch (`/_sim/outage`): while a group of
//! operations is down both dialects answer their retryable server error
//! without executing anything, other groups and the simulator's own
//! endpoints keep working, and switching it off lets the same requests
//! (same idempotency keys) succeed exactly once.

mod common;

use common::{Sim, confirmed_body, json};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Sets the outage switch to `setting`; answers what the simulator reports.
async fn set_outage(sim: &Sim, setting: Value) -> Value {
    let response = sim.post_admin("/_sim/outage", &setting).await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await
}

/// `GET /_sim/outage`.
async fn outage(sim: &Sim) -> Value {
    json(sim.get("/_sim/outage").await).await
}

/// Asserts Stripe's 503 `api_error`, the answer of the `ServerError` fault.
async fn assert_stripe_unavailable(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = json(response).await;
    assert_eq!(body["error"]["type"], "api_error", "{body}");
}

/// Asserts Toss's 500, the answer of the `ServerError` fault.
async fn assert_toss_unavailable(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body = json(response).await;
    assert_eq!(body["code"], "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING", "{body}");
    assert!(body["message"].is_string());
}

/// A Toss billing-key charge body.
fn billing(order_id: &str) -> Value {
    json!({"customerKey": "cust", "amount": 12_000, "orderId": order_id, "orderName": "order"})
}

/// Creates a hosted Toss payment session; answers its `paymentKey`.
async fn toss_session(sim: &Sim, order_id: &str) -> String {
    let body = json!({"orderId": order_id, "amount": 30_000});
    let response = sim.post_admin("/_sim/toss/payment-sessions", &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await["paymentKey"].as_str().unwrap().to_owned()
}

/// Everything is up at start; each POST replaces the whole setting (missing
/// fields become `false`) and GET reports it; malformed bodies and unknown
/// fields are 400 and leave the setting as it was.
#[tokio::test]
async fn setting_is_replaced_whole_and_reported() {
    let sim = Sim::start().await;
    let all_up = json!({"charges": false, "lookups": false, "refunds": false, "refund_answers_lost": false});
    assert_eq!(outage(&sim).await, all_up);

    let down = json!({"charges": true, "lookups": false, "refunds": true, "refund_answers_lost": false});
    assert_eq!(set_outage(&sim, json!({"charges": true, "refunds": true})).await, down);
    assert_eq!(outage(&sim).await, down);
    let lookups = json!({"charges": false, "lookups": true, "refunds": false, "refund_answers_lost": false});
    assert_eq!(set_outage(&sim, json!({"lookups": true})).await, lookups);
    assert_eq!(outage(&sim).await, lookups);

    let typo = sim.post_admin("/_sim/outage", &json!({"charge": true})).await;
    assert_eq!(typo.status(), StatusCode::BAD_REQUEST);
    assert!(json(typo).await["error"].is_string());
    let not_json = sim.client.post(format!("{}/_sim/outage", sim.base)).body("charges").send().await.unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(outage(&sim).await, lookups);

    assert_eq!(set_outage(&sim, json!({})).await, all_up);
    assert_eq!(outage(&sim).await, all_up);
}

/// Stripe with charges down: create-and-confirm and confirm answer 503
/// `api_error` (key echoed, logged as `"503"`) and nothing is captured;
/// switched off, the same idempotency key captures once and then replays.
#[tokio::test]
async fn stripe_charges_down_then_same_key_succeeds_once() {
    let sim = Sim::start().await;
    let unconfirmed = "amount=990&currency=usd&confirm=false&payment_method=pm_card_visa\
                       &metadata[payment_order_id]=po_out_later";
    let waiting = json(sim.post("/v1/payment_intents", unconfirmed, None).await).await;
    let confirm_path = format!("/v1/payment_intents/{}/confirm", waiting["id"].as_str().unwrap());
    set_outage(&sim, json!({"charges": true})).await;

    let body = confirmed_body("pm_card_visa", "po_out");
    let refused = sim.post("/v1/payment_intents", &body, Some("out-1")).await;
    assert_eq!(refused.headers()["idempotency-key"], "out-1");
    assert!(refused.headers().get("request-id").is_some());
    assert_stripe_unavailable(refused).await;
    assert_stripe_unavailable(sim.post(&confirm_path, "", Some("out-confirm")).await).await;
    assert!(sim.captures(None).await.is_empty());
    assert_eq!(sim.outcomes("out-1").await, ["503"]);

    set_outage(&sim, json!({"charges": false})).await;
    let first = sim.post("/v1/payment_intents", &body, Some("out-1")).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(json(first).await["status"], "succeeded");
    let replay = sim.post("/v1/payment_intents", &body, Some("out-1")).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(sim.captures(Some("po_out")).await.len(), 1);
    assert_eq!(sim.outcomes("out-1").await, ["503", "200", "replayed"]);
    let confirmed = sim.post(&confirm_path, "", Some("out-confirm")).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(sim.captures(Some("po_out_later")).await.len(), 1);
}

/// Toss with charges down: billing-key charges and hosted confirms answer
/// 500 `FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING` and nothing is captured;
/// switched off, the same idempotency keys capture once and then replay.
#[tokio::test]
async fn toss_charges_down_then_same_key_succeeds_once() {
    let sim = Sim::start().await;
    let payment_key = toss_session(&sim, "order-out-host").await;
    let confirm = json!({"paymentKey": payment_key, "orderId": "order-out-host", "amount": 30_000});
    set_outage(&sim, json!({"charges": true})).await;

    let body = billing("order-out-1");
    let refused = sim.toss_post("/v1/billing/billing_success", &body, Some("tout-1")).await;
    assert_toss_unavailable(refused).await;
    assert_toss_unavailable(sim.toss_post("/v1/payments/confirm", &confirm, Some("tout-confirm")).await).await;
    assert!(sim.captures(None).await.is_empty());
    assert_eq!(sim.outcomes("tout-1").await, ["500"]);
    assert_eq!(sim.outcomes("tout-confirm").await, ["500"]);

    set_outage(&sim, json!({})).await;
    let first = sim.toss_post("/v1/billing/billing_success", &body, Some("tout-1")).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(json(first).await["status"], "DONE");
    let replay = sim.toss_post("/v1/billing/billing_success", &body, Some("tout-1")).await;
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(sim.captures(Some("order-out-1")).await.len(), 1);
    assert_eq!(sim.outcomes("tout-1").await, ["500", "200", "replayed"]);
    let confirmed = sim.toss_post("/v1/payments/confirm", &confirm, Some("tout-confirm")).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(json(confirmed).await["status"], "DONE");
    assert_eq!(sim.captures(Some("order-out-host")).await.len(), 1);
}

/// Stripe with lookups down: retrieve and search answer 503 `api_error`
/// while charges still capture; switched off, the intent is found.
#[tokio::test]
async fn stripe_lookups_down_while_charges_work() {
    let sim = Sim::start().await;
    set_outage(&sim, json!({"lookups": true})).await;
    let charged = sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_look"), Some("look-1")).await;
    assert_eq!(charged.status(), StatusCode::OK);
    let id = json(charged).await["id"].as_str().unwrap().to_owned();
    assert_eq!(sim.captures(Some("po_look")).await.len(), 1);

    let retrieve = format!("/v1/payment_intents/{id}");
    let search = "/v1/payment_intents/search?query=metadata%5B%27payment_order_id%27%5D%3A%27po_look%27";
    assert_stripe_unavailable(sim.get(&retrieve).await).await;
    assert_stripe_unavailable(sim.get(search).await).await;

    set_outage(&sim, json!({"lookups": false})).await;
    assert_eq!(json(sim.get(&retrieve).await).await["status"], "succeeded");
    assert_eq!(json(sim.get(search).await).await["data"][0]["id"], id.as_str());
}

/// Toss with lookups down: lookups by `paymentKey` and by `orderId` answer
/// the 500 while billing charges still capture; switched off, both find it.
#[tokio::test]
async fn toss_lookups_down_while_charges_work() {
    let sim = Sim::start().await;
    set_outage(&sim, json!({"lookups": true})).await;
    let charged = sim.toss_post("/v1/billing/billing_success", &billing("order-look-1"), Some("tlook-1")).await;
    assert_eq!(charged.status(), StatusCode::OK);
    let payment_key = json(charged).await["paymentKey"].as_str().unwrap().to_owned();
    assert_eq!(sim.captures(Some("order-look-1")).await.len(), 1);

    let by_key = format!("/v1/payments/{payment_key}");
    let by_order = "/v1/payments/orders/order-look-1";
    assert_toss_unavailable(sim.toss_get(&by_key).await).await;
    assert_toss_unavailable(sim.toss_get(by_order).await).await;

    set_outage(&sim, json!({})).await;
    assert_eq!(json(sim.toss_get(&by_key).await).await["status"], "DONE");
    assert_eq!(json(sim.toss_get(by_order).await).await["paymentKey"], payment_key.as_str());
}

/// Stripe with refunds down: refunds and intent cancels answer 503 and
/// nothing is refunded or canceled; switched off, the same keys succeed.
#[tokio::test]
async fn stripe_refunds_down_then_succeed() {
    let sim = Sim::start().await;
    let paid = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_ref"), None).await).await;
    let paid_id = paid["id"].as_str().unwrap();
    let waiting = "amount=500&currency=usd&payment_method=pm_card_visa&metadata[payment_order_id]=po_cxl";
    let waiting = json(sim.post("/v1/payment_intents", waiting, None).await).await;
    let waiting_id = waiting["id"].as_str().unwrap();
    set_outage(&sim, json!({"refunds": true})).await;

    let refund = format!("payment_intent={paid_id}&amount=5000");
    let cancel = format!("/v1/payment_intents/{waiting_id}/cancel");
    assert_stripe_unavailable(sim.post("/v1/refunds", &refund, Some("ref-1")).await).await;
    assert_stripe_unavailable(sim.post(&cancel, "", Some("cxl-1")).await).await;
    assert!(sim.refunds(None).await.is_empty());
    let still_waiting = json(sim.get(&format!("/v1/payment_intents/{waiting_id}")).await).await;
    assert_eq!(still_waiting["status"], "requires_confirmation");

    set_outage(&sim, json!({})).await;
    let refunded = sim.post("/v1/refunds", &refund, Some("ref-1")).await;
    assert_eq!(refunded.status(), StatusCode::OK);
    assert_eq!(json(refunded).await["status"], "succeeded");
    let canceled = sim.post(&cancel, "", Some("cxl-1")).await;
    assert_eq!(canceled.status(), StatusCode::OK);
    assert_eq!(json(canceled).await["status"], "canceled");
    assert_eq!(sim.refunds(Some("po_ref")).await.len(), 1);
    assert_eq!(sim.outcomes("ref-1").await, ["503", "200"]);
}

/// Toss with refunds down: cancels answer the 500 and the payment stays
/// `DONE` with nothing refunded; switched off, the same key cancels once.
#[tokio::test]
async fn toss_refunds_down_then_succeed() {
    let sim = Sim::start().await;
    let paid = json(sim.toss_post("/v1/billing/billing_success", &billing("order-ref-1"), None).await).await;
    let payment_key = paid["paymentKey"].as_str().unwrap();
    set_outage(&sim, json!({"refunds": true})).await;

    let path = format!("/v1/payments/{payment_key}/cancel");
    let body = json!({"cancelReason": "고객 변심"});
    assert_toss_unavailable(sim.toss_post(&path, &body, Some("tcxl-1")).await).await;
    assert!(sim.refunds(None).await.is_empty());
    assert_eq!(json(sim.toss_get(&format!("/v1/payments/{payment_key}")).await).await["status"], "DONE");

    set_outage(&sim, json!({})).await;
    let canceled = sim.toss_post(&path, &body, Some("tcxl-1")).await;
    assert_eq!(canceled.status(), StatusCode::OK);
    assert_eq!(json(canceled).await["status"], "CANCELED");
    assert_eq!(sim.refunds(Some("order-ref-1")).await.len(), 1);
    assert_eq!(sim.outcomes("tcxl-1").await, ["500", "200"]);
}

/// Requests refused by the outage are not attempts: a server-error-twice
/// token still fails on its first two real attempts and captures on the
/// third, exactly as without the outage.
#[tokio::test]
async fn refused_requests_are_not_attempts() {
    let sim = Sim::start().await;
    let body = confirmed_body("pm_card_sim_server_error_twice", "po_out_fault");
    set_outage(&sim, json!({"charges": true})).await;
    for _ in 0..3 {
        assert_stripe_unavailable(sim.post("/v1/payment_intents", &body, Some("out-fault")).await).await;
    }
    set_outage(&sim, json!({})).await;
    for _ in 0..2 {
        assert_stripe_unavailable(sim.post("/v1/payment_intents", &body, Some("out-fault")).await).await;
    }
    let third = sim.post("/v1/payment_intents", &body, Some("out-fault")).await;
    assert_eq!(third.status(), StatusCode::OK);
    assert_eq!(sim.captures(Some("po_out_fault")).await.len(), 1);
    assert_eq!(sim.outcomes("out-fault").await, ["503", "503", "503", "503", "503", "200"]);
}

/// With everything down, the simulator's own endpoints, the settlement
/// reports, the payment window and the unguarded Stripe charge lookup still
/// answer, and authentication still comes first (401, not 503).
#[tokio::test]
async fn outage_spares_admin_reports_and_pages() {
    let sim = Sim::start().await;
    let paid = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_spared"), None).await).await;
    set_outage(&sim, json!({"charges": true, "lookups": true, "refunds": true})).await;

    let day = "2024-01-02";
    let charge = format!("/v1/charges/{}", paid["latest_charge"].as_str().unwrap());
    for path in ["/healthz", "/_sim/captures", "/_sim/refunds", "/_sim/stats", "/_sim/webhooks", &charge] {
        assert_eq!(sim.get(path).await.status(), StatusCode::OK, "{path}");
    }
    assert_eq!(sim.get("/v1/balance_transactions").await.status(), StatusCode::OK);
    assert_eq!(sim.get(&format!("/_sim/settlements/stripe/{day}.csv")).await.status(), StatusCode::OK);
    let settlements = format!("/v1/settlements?startDate={day}&endDate={day}");
    assert_eq!(sim.toss_get(&settlements).await.status(), StatusCode::OK);
    assert_eq!(sim.get(psp_simulator::hosted::SDK_PATH).await.status(), StatusCode::OK);
    toss_session(&sim, "order-spared").await;

    let anonymous = sim.client.get(format!("{}/v1/payment_intents/{}", sim.base, paid["id"].as_str().unwrap()));
    assert_eq!(anonymous.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}
