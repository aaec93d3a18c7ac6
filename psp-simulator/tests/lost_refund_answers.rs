//! Black-box tests of the outage switch's `refund_answers_lost`: a PSP
//! that refunds but whose answer never comes back. The refund executes and
//! is stored under its key, the connection closes without a byte (also on
//! replays while the switch is on), the reads show the refund, and once
//! the switch is off the same key replays the stored answer: one refund.

mod common;

use common::{API_KEY, Sim, confirmed_body, json, toss_auth};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Sets the outage switch to `setting`; answers what the simulator reports.
async fn set_outage(sim: &Sim, setting: Value) -> Value {
    let response = sim.post_admin("/_sim/outage", &setting).await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await
}

/// A raw Stripe refund POST with `key`; answers the bytes received.
async fn stripe_refund_raw(sim: &Sim, form: &str, key: &str) -> Vec<u8> {
    let bearer = format!("Bearer {API_KEY}");
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Idempotency-Key", key),
    ];
    sim.raw_post("/v1/refunds", &headers, form).await
}

/// A raw Toss cancel POST with `key`; answers the bytes received.
async fn toss_cancel_raw(sim: &Sim, path: &str, body: &Value, key: &str) -> Vec<u8> {
    let auth = toss_auth();
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json"), ("Idempotency-Key", key)];
    sim.raw_post(path, &headers, &body.to_string()).await
}

/// Stripe: with refund answers lost the refund executes (in
/// `/_sim/refunds` and `GET /v1/refunds`, with its metadata) while the
/// client gets a closed connection, also on a resend; a request that
/// executes nothing is still answered. Switched off, the same key replays
/// the stored refund: still one refund.
#[tokio::test]
async fn stripe_refund_executes_but_its_answer_is_lost() {
    let sim = Sim::start().await;
    let paid = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_lost_ref"), None).await).await;
    let intent = paid["id"].as_str().unwrap();
    let reported = set_outage(&sim, json!({"refund_answers_lost": true})).await;
    let expected = json!({"charges": false, "lookups": false, "refunds": false, "refund_answers_lost": true});
    assert_eq!(reported, expected);
    assert_eq!(json(sim.get("/_sim/outage").await).await, expected);

    let form = format!("payment_intent={intent}&amount=4000&metadata%5Brefund_id%5D=rf_lost");
    assert!(stripe_refund_raw(&sim, &form, "lref-1").await.is_empty(), "the answer must be lost");
    let refunds = sim.refunds(Some("po_lost_ref")).await;
    assert_eq!(refunds.len(), 1);
    assert_eq!((refunds[0]["amount"].as_u64(), &refunds[0]["idempotency_key"]), (Some(4_000), &json!("lref-1")));
    assert!(stripe_refund_raw(&sim, &form, "lref-1").await.is_empty(), "replays are lost too while on");
    let invalid = sim.post("/v1/refunds", "amount=100", Some("lref-invalid")).await;
    assert_eq!(invalid.status(), StatusCode::BAD_REQUEST, "nothing executed, so answered");

    let listed = json(sim.get(&format!("/v1/refunds?payment_intent={intent}")).await).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["data"][0]["metadata"]["refund_id"], "rf_lost");

    set_outage(&sim, json!({})).await;
    let answered = String::from_utf8(stripe_refund_raw(&sim, &form, "lref-1").await).unwrap();
    assert!(answered.starts_with("HTTP/1.1 200 OK\r\n"), "switched off, the raw resend is answered: {answered}");
    let replay = sim.post("/v1/refunds", &form, Some("lref-1")).await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json(replay).await, listed["data"][0]);
    assert_eq!(sim.refunds(Some("po_lost_ref")).await.len(), 1);
    assert_eq!(sim.stats().await["refunds_total"], 1);
    assert_eq!(sim.outcomes("lref-1").await, ["dropped", "dropped", "replayed", "replayed"]);
}

/// Toss: with refund answers lost a partial cancel executes (the payment
/// is `PARTIAL_CANCELED` with the cancel in `cancels[]`, one refund
/// recorded) while the client gets a closed connection. Switched off, the
/// same key replays the stored Payment: still one refund.
#[tokio::test]
async fn toss_cancel_executes_but_its_answer_is_lost() {
    let sim = Sim::start().await;
    let order = json!({"customerKey": "cust", "amount": 10_000, "orderId": "order-lost-ref", "orderName": "order"});
    let paid = json(sim.toss_post("/v1/billing/billing_success", &order, None).await).await;
    let payment_key = paid["paymentKey"].as_str().unwrap();
    set_outage(&sim, json!({"refund_answers_lost": true})).await;

    let path = format!("/v1/payments/{payment_key}/cancel");
    let body = json!({"cancelReason": "고객 변심 ref:rf_toss", "cancelAmount": 4_000});
    assert!(toss_cancel_raw(&sim, &path, &body, "tlref-1").await.is_empty(), "the answer must be lost");
    let refunds = sim.refunds(Some("order-lost-ref")).await;
    assert_eq!(refunds.len(), 1);
    assert_eq!((refunds[0]["amount"].as_u64(), &refunds[0]["idempotency_key"]), (Some(4_000), &json!("tlref-1")));
    let payment = json(sim.toss_get(&format!("/v1/payments/{payment_key}")).await).await;
    assert_eq!(payment["status"], "PARTIAL_CANCELED");
    assert_eq!(payment["cancels"][0]["cancelReason"], "고객 변심 ref:rf_toss");

    set_outage(&sim, json!({})).await;
    let replay = sim.toss_post(&path, &body, Some("tlref-1")).await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replayed = json(replay).await;
    assert_eq!(replayed["balanceAmount"], 6_000);
    assert_eq!(replayed["cancels"], payment["cancels"]);
    assert_eq!(sim.refunds(Some("order-lost-ref")).await.len(), 1);
    assert_eq!(sim.outcomes("tlref-1").await, ["dropped", "replayed"]);
}

/// `refunds` down takes precedence over lost answers: both dialects answer
/// their retryable server error (a response, not a closed connection) and
/// nothing is refunded.
#[tokio::test]
async fn refunds_down_takes_precedence_over_lost_answers() {
    let sim = Sim::start().await;
    let paid = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_prec"), None).await).await;
    let order = json!({"customerKey": "cust", "amount": 10_000, "orderId": "order-prec", "orderName": "order"});
    let toss = json(sim.toss_post("/v1/billing/billing_success", &order, None).await).await;
    set_outage(&sim, json!({"refunds": true, "refund_answers_lost": true})).await;

    let form = format!("payment_intent={}&amount=1000", paid["id"].as_str().unwrap());
    let stripe = sim.post("/v1/refunds", &form, Some("prec-1")).await;
    assert_eq!(stripe.status(), StatusCode::SERVICE_UNAVAILABLE);
    let cancel = format!("/v1/payments/{}/cancel", toss["paymentKey"].as_str().unwrap());
    let toss = sim.toss_post(&cancel, &json!({"cancelReason": "x"}), Some("tprec-1")).await;
    assert_eq!(toss.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(sim.refunds(None).await.is_empty());
    assert_eq!(sim.outcomes("prec-1").await, ["503"]);
}
