//! Black-box tests of what follows the Toss payment window: the confirm per
//! test card, the session deadline (`EXPIRED`) and cancelling payments that
//! were never approved.

mod common;

use common::{Sim, Sink, browser, json, poll};
use psp_simulator::{SimConfig, hosted};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};

/// Session lifetime of the expiry tests.
const SHORT_TTL_MS: u64 = 300;
/// Amount of every window payment here.
const AMOUNT: u64 = 15_000;

/// Pays `order_id` in the window with `card` (authenticating a 3-D Secure
/// challenge) and returns the `paymentKey` handed to `successUrl`.
async fn pay(sim: &Sim, order_id: &str, card: &str) -> String {
    let form = [
        ("clientKey", "test_ck_shop0001".to_owned()),
        ("method", "카드".to_owned()),
        ("amount", AMOUNT.to_string()),
        ("orderId", order_id.to_owned()),
        ("orderName", "주문".to_owned()),
        ("successUrl", "https://shop.test/ok".to_owned()),
        ("failUrl", "https://shop.test/fail".to_owned()),
        ("card", card.to_owned()),
        ("action", "pay".to_owned()),
    ];
    let mut response = browser().post(format!("{}{}", sim.base, hosted::PAY_PATH)).form(&form).send().await.unwrap();
    let mut location = location_of(&response);
    if let Some(key) = location.strip_prefix(hosted::THREE_DS_PATH_PREFIX) {
        let challenge = format!("{}{}{key}", sim.base, hosted::THREE_DS_PATH_PREFIX);
        response = browser().post(challenge).form(&[("result", "authenticate")]).send().await.unwrap();
        location = location_of(&response);
    }
    let url = Url::parse(&location).expect("absolute successUrl");
    assert_eq!(url.path(), "/ok");
    url.query_pairs().find(|(name, _)| name == "paymentKey").map(|(_, key)| key.into_owned()).expect("paymentKey")
}

/// The `Location` of a `303 See Other`.
fn location_of(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// Confirms `key` of `order_id` for [`AMOUNT`].
async fn confirm(sim: &Sim, key: &str, order_id: &str) -> reqwest::Response {
    let body = json!({"paymentKey": key, "orderId": order_id, "amount": AMOUNT});
    sim.toss_post("/v1/payments/confirm", &body, None).await
}

/// Asserts a Toss error `code` with `status`.
async fn assert_error(response: reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status);
    let body = json(response).await;
    assert_eq!(body["code"], code, "{body}");
}

/// The current status of payment `key`.
async fn status(sim: &Sim, key: &str) -> Value {
    json(sim.toss_get(&format!("/v1/payments/{key}")).await).await["status"].clone()
}

/// After the window, the confirm decides per card: success and an
/// authenticated 3-D Secure card capture (`DONE`), decline and insufficient
/// funds are refused with Toss's codes, review answers `IN_PROGRESS` until
/// approved through `/_sim/review`.
#[tokio::test]
async fn confirm_outcome_per_card() {
    let sim = Sim::start().await;
    for (card, order_id) in [("success", "order-cf-ok"), ("3ds", "order-cf-3ds")] {
        let key = pay(&sim, order_id, card).await;
        let done = confirm(&sim, &key, order_id).await;
        assert_eq!(done.status(), StatusCode::OK, "{card}");
        assert_eq!(json(done).await["status"], "DONE");
        assert_eq!(sim.captures(Some(order_id)).await.len(), 1, "{card}");
        let twice = confirm(&sim, &key, order_id).await;
        assert_error(twice, StatusCode::BAD_REQUEST, "ALREADY_PROCESSED_PAYMENT").await;
    }
    for (card, code) in [("decline", "REJECT_CARD_COMPANY"), ("insufficient_funds", "REJECT_CARD_PAYMENT")] {
        let order_id = format!("order-cf-{card}");
        let key = pay(&sim, &order_id, card).await;
        assert_error(confirm(&sim, &key, &order_id).await, StatusCode::FORBIDDEN, code).await;
        assert_eq!(status(&sim, &key).await, "ABORTED");
        assert!(sim.captures(Some(&order_id)).await.is_empty());
    }
    let key = pay(&sim, "order-cf-review", "review").await;
    let waiting = confirm(&sim, &key, "order-cf-review").await;
    assert_eq!(waiting.status(), StatusCode::OK);
    assert_eq!(json(waiting).await["status"], "IN_PROGRESS");
    assert!(sim.captures(Some("order-cf-review")).await.is_empty());
    let again = confirm(&sim, &key, "order-cf-review").await;
    assert_error(again, StatusCode::BAD_REQUEST, "ALREADY_PROCESSED_PAYMENT").await;
    let approved = sim.post_admin(&format!("/_sim/review/{key}"), &json!({"result": "approve"})).await;
    assert_eq!(approved.status(), StatusCode::OK);
    assert_eq!(json(approved).await["status"], "DONE");
    assert_eq!(sim.captures(Some("order-cf-review")).await.len(), 1);
}

/// An authenticated payment that waits for its confirm is not in review:
/// `/_sim/review` refuses it and captures nothing.
#[tokio::test]
async fn review_needs_a_confirm_first() {
    let sim = Sim::start().await;
    let key = pay(&sim, "order-rv-early", "review").await;
    let early = sim.post_admin(&format!("/_sim/review/{key}"), &json!({"result": "approve"})).await;
    assert_eq!(early.status(), StatusCode::CONFLICT);
    assert!(sim.captures(None).await.is_empty());
}

/// A payment not confirmed within `payment_session_ttl_ms` becomes
/// `EXPIRED` (GET shows it, a `PAYMENT_STATUS_CHANGED` webhook announces
/// it), its confirm answers 404 `NOT_FOUND_PAYMENT_SESSION`, and nothing is
/// captured; the same holds for an admin payment session.
#[tokio::test]
async fn unconfirmed_payments_expire() {
    let sink = Sink::start().await;
    let mut config = SimConfig::new();
    config.payment_session_ttl_ms = SHORT_TTL_MS;
    config.toss_webhook_url = Some(sink.url.clone());
    let sim = Sim::start_with(config).await;
    let key = pay(&sim, "order-exp-1", "success").await;
    let session: Value =
        json(sim.post_admin("/_sim/toss/payment-sessions", &json!({"orderId": "order-exp-2", "amount": AMOUNT})).await)
            .await;
    let session_key = session["paymentKey"].as_str().unwrap().to_owned();
    // Expiry is the state waited for, whether the timer or a lookup
    // finds the deadline passed.
    for payment_key in [&key, &session_key] {
        poll("an unconfirmed payment to expire", async || (status(&sim, payment_key).await == "EXPIRED").then_some(()))
            .await;
    }
    let by_order = json(sim.toss_get("/v1/payments/orders/order-exp-1").await).await;
    assert_eq!(by_order["status"], "EXPIRED");
    let late = confirm(&sim, &key, "order-exp-1").await;
    assert_error(late, StatusCode::NOT_FOUND, "NOT_FOUND_PAYMENT_SESSION").await;
    let late = confirm(&sim, &session_key, "order-exp-2").await;
    assert_error(late, StatusCode::NOT_FOUND, "NOT_FOUND_PAYMENT_SESSION").await;
    assert!(sim.captures(None).await.is_empty());
    let event = sink.wait_for(|body| body["data"]["paymentKey"] == key.as_str()).await;
    assert_eq!(event["eventType"], "PAYMENT_STATUS_CHANGED");
    assert_eq!(event["data"]["status"], "EXPIRED");

    // An expired order may be paid again.
    let retry = pay(&sim, "order-exp-1", "success").await;
    assert_eq!(confirm(&sim, &retry, "order-exp-1").await.status(), StatusCode::OK);
    assert_eq!(sim.captures(Some("order-exp-1")).await.len(), 1);
}

/// A payment in review (`IN_PROGRESS` after its confirm) can be cancelled:
/// `CANCELED`, `balanceAmount` 0, no refund recorded; approving the review
/// afterwards is refused and captures nothing. An authenticated payment
/// waiting for its confirm cancels the same way and can no longer be
/// confirmed; a partial amount is refused.
#[tokio::test]
async fn cancel_payments_never_approved() {
    let sim = Sim::start().await;
    let key = pay(&sim, "order-unap-1", "review").await;
    assert_eq!(confirm(&sim, &key, "order-unap-1").await.status(), StatusCode::OK);
    let path = format!("/v1/payments/{key}/cancel");
    let canceled = sim.toss_post(&path, &json!({"cancelReason": "고객 취소"}), Some("unap-1")).await;
    assert_eq!(canceled.status(), StatusCode::OK);
    let canceled = json(canceled).await;
    assert_eq!(canceled["status"], "CANCELED");
    assert_eq!(canceled["balanceAmount"], 0);
    assert_eq!(canceled["cancels"][0]["cancelAmount"], 0);
    assert_eq!(canceled["cancels"][0]["cancelReason"], "고객 취소");
    let approve = sim.post_admin(&format!("/_sim/review/{key}"), &json!({"result": "approve"})).await;
    assert_error(approve, StatusCode::BAD_REQUEST, "ALREADY_CANCELED_PAYMENT").await;
    assert_eq!(status(&sim, &key).await, "CANCELED");
    let again = sim.toss_post(&path, &json!({"cancelReason": "again"}), None).await;
    assert_error(again, StatusCode::BAD_REQUEST, "ALREADY_CANCELED_PAYMENT").await;

    let waiting = pay(&sim, "order-unap-2", "success").await;
    let path = format!("/v1/payments/{waiting}/cancel");
    let partial = sim.toss_post(&path, &json!({"cancelReason": "x", "cancelAmount": 1_000}), None).await;
    assert_error(partial, StatusCode::FORBIDDEN, "NOT_CANCELABLE_AMOUNT").await;
    let whole = sim.toss_post(&path, &json!({"cancelReason": "x"}), None).await;
    assert_eq!(json(whole).await["status"], "CANCELED");
    let late = confirm(&sim, &waiting, "order-unap-2").await;
    assert_error(late, StatusCode::BAD_REQUEST, "ALREADY_PROCESSED_PAYMENT").await;

    assert!(sim.captures(None).await.is_empty());
    assert!(sim.refunds(None).await.is_empty());
}
