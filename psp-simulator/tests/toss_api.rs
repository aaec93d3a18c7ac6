//! Black-box tests of the Toss Payments dialect over real HTTP: billing
//! charges, the hosted confirm flow, lookups, cancellation, authentication
//! and idempotency.

mod common;

use common::{Sim, TOSS_SECRET_KEY, json};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A billing-charge body for `order_id`.
fn billing(order_id: &str, amount: u64) -> Value {
    json!({
        "customerKey": "customer_1",
        "amount": amount,
        "orderId": order_id,
        "orderName": "토스 티셔츠 외 2건",
        "customerEmail": "customer@example.com",
    })
}

/// Asserts a Toss error `code` with `status`.
async fn assert_error(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let body = json(response).await;
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    body
}

/// `billing_success` approves with Toss's Payment shape (DONE, 카드, KRW,
/// VAT split, `+09:00` timestamps, card details, no cancels), records one
/// capture under the orderId, and is found by key and by order.
#[tokio::test]
async fn billing_success_is_captured() {
    let sim = Sim::start().await;
    let response = sim.toss_post("/v1/billing/billing_success", &billing("order-ok-1", 15_000), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let payment = json(response).await;
    assert_eq!(payment["status"], "DONE");
    assert_eq!(payment["type"], "BILLING");
    assert_eq!(payment["method"], "카드");
    assert_eq!(payment["currency"], "KRW");
    assert_eq!(payment["orderId"], "order-ok-1");
    assert_eq!(payment["totalAmount"], 15_000);
    assert_eq!(payment["balanceAmount"], 15_000);
    assert_eq!(payment["suppliedAmount"], 13_636);
    assert_eq!(payment["vat"], 1_364);
    assert_eq!(payment["version"], "2022-11-16");
    assert!(payment["cancels"].is_null());
    assert!(payment["failure"].is_null());
    assert_eq!(payment["card"]["amount"], 15_000);
    for field in ["requestedAt", "approvedAt"] {
        assert!(payment[field].as_str().unwrap().ends_with("+09:00"), "{field}");
    }
    let key = payment["paymentKey"].as_str().unwrap();
    assert!(payment["lastTransactionKey"].is_string());

    let captures = sim.captures(Some("order-ok-1")).await;
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0]["psp"], "toss");
    assert_eq!(captures[0]["payment_intent_id"], key);
    assert_eq!(captures[0]["currency"], "KRW");
    assert_eq!(captures[0]["transaction_id"], payment["lastTransactionKey"]);

    let by_key = json(sim.toss_get(&format!("/v1/payments/{key}")).await).await;
    assert_eq!(by_key, payment);
    let by_order = json(sim.toss_get("/v1/payments/orders/order-ok-1").await).await;
    assert_eq!(by_order["paymentKey"], key);
    let missing = sim.toss_get("/v1/payments/orders/order-none-1").await;
    assert_error(missing, StatusCode::NOT_FOUND, "NOT_FOUND_PAYMENT").await;
    let missing = sim.toss_get("/v1/payments/nosuchkey").await;
    assert_error(missing, StatusCode::NOT_FOUND, "NOT_FOUND_PAYMENT").await;
}

/// Declining keys answer 403 with Toss's codes and leave an `ABORTED`
/// payment (with `failure`) that frees the order for a retry; an approved
/// order cannot be charged again (`DUPLICATED_ORDER_ID`).
#[tokio::test]
async fn billing_declines_and_duplicate_orders() {
    let sim = Sim::start().await;
    let declined = sim.toss_post("/v1/billing/billing_decline", &billing("order-dec-1", 5_000), None).await;
    assert_error(declined, StatusCode::FORBIDDEN, "REJECT_CARD_COMPANY").await;
    let poor = sim.toss_post("/v1/billing/billing_insufficient_funds", &billing("order-dec-1", 5_000), None).await;
    assert_error(poor, StatusCode::FORBIDDEN, "REJECT_CARD_PAYMENT").await;
    let aborted = json(sim.toss_get("/v1/payments/orders/order-dec-1").await).await;
    assert_eq!(aborted["status"], "ABORTED");
    assert_eq!(aborted["failure"]["code"], "REJECT_CARD_PAYMENT");
    assert!(sim.captures(None).await.is_empty());

    let ok = sim.toss_post("/v1/billing/billing_success", &billing("order-dec-1", 5_000), None).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let again = sim.toss_post("/v1/billing/billing_success", &billing("order-dec-1", 5_000), None).await;
    assert_error(again, StatusCode::BAD_REQUEST, "DUPLICATED_ORDER_ID").await;
    assert_eq!(sim.captures(Some("order-dec-1")).await.len(), 1);
}

/// Unknown billing keys, non-KRW currencies and missing fields are refused
/// before anything is charged.
#[tokio::test]
async fn billing_validation() {
    let sim = Sim::start().await;
    let unknown = sim.toss_post("/v1/billing/billing_nope", &billing("order-val-1", 1_000), None).await;
    assert_error(unknown, StatusCode::NOT_FOUND, "NOT_FOUND_BILLING").await;
    let mut usd = billing("order-val-1", 1_000);
    usd["currency"] = json!("USD");
    let usd = sim.toss_post("/v1/billing/billing_success", &usd, None).await;
    assert_error(usd, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    let mut krw = billing("order-val-2", 1_000);
    krw["currency"] = json!("KRW");
    let krw = sim.toss_post("/v1/billing/billing_success", &krw, None).await;
    assert_eq!(krw.status(), StatusCode::OK);
    for field in ["amount", "orderId", "customerKey", "orderName"] {
        let mut partial = billing("order-val-3", 1_000);
        partial.as_object_mut().unwrap().remove(field);
        let response = sim.toss_post("/v1/billing/billing_success", &partial, None).await;
        assert_error(response, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    }
    let float = sim
        .toss_post(
            "/v1/billing/billing_success",
            &json!({"customerKey": "c", "amount": 10.5, "orderId": "order-val-4", "orderName": "n"}),
            None,
        )
        .await;
    assert_error(float, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    assert_eq!(sim.captures(None).await.len(), 1);
}

/// Basic auth needs a `test_sk_`/`test_gsk_` key followed by `:`; anything
/// else is 401 `UNAUTHORIZED_KEY`.
#[tokio::test]
async fn authentication() {
    use base64::Engine as _;
    let sim = Sim::start().await;
    let url = format!("{}/v1/payments/orders/order-auth-1", sim.base);
    let basic = |credentials: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials));
    for header in [
        None,
        Some(basic("live_sk_abcdefgh:")),
        Some(basic(TOSS_SECRET_KEY)),
        Some(format!("Bearer {TOSS_SECRET_KEY}")),
        Some("Basic !!!".to_owned()),
    ] {
        let mut request = sim.client.get(&url);
        if let Some(header) = &header {
            request = request.header("Authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "UNAUTHORIZED_KEY").await;
    }
    let widget = sim.client.get(&url).header("Authorization", basic("test_gsk_widgetkey:")).send().await.unwrap();
    assert_error(widget, StatusCode::NOT_FOUND, "NOT_FOUND_PAYMENT").await;
}

/// The same Idempotency-Key replays the first answer and charges once; the
/// key reused for a different body is refused; an overlong key is invalid.
#[tokio::test]
async fn idempotency() {
    let sim = Sim::start().await;
    let body = billing("order-idem-1", 2_000);
    let first = sim.toss_post("/v1/billing/billing_success", &body, Some("toss-key-1")).await;
    let first = json(first).await;
    let second = sim.toss_post("/v1/billing/billing_success", &body, Some("toss-key-1")).await;
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(json(second).await, first);
    assert_eq!(sim.captures(Some("order-idem-1")).await.len(), 1);

    let other = sim.toss_post("/v1/billing/billing_success", &billing("order-idem-2", 2_000), Some("toss-key-1")).await;
    assert_error(other, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    let long_key = "k".repeat(301);
    let long = sim.toss_post("/v1/billing/billing_success", &body, Some(&long_key)).await;
    assert_error(long, StatusCode::BAD_REQUEST, "INVALID_IDEMPOTENCY_KEY").await;
}

/// Creates a hosted payment session and returns its `paymentKey`.
async fn session(sim: &Sim, order_id: &str, amount: u64, card: &str) -> String {
    let response = sim
        .post_admin("/_sim/toss/payment-sessions", &json!({"orderId": order_id, "amount": amount, "card": card}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await["paymentKey"].as_str().unwrap().to_owned()
}

/// Hosted flow: a `READY` session confirms to `DONE` once; a second confirm
/// is `ALREADY_PROCESSED_PAYMENT`; a wrong amount, an unknown key or a
/// declining card get Toss's errors.
#[tokio::test]
async fn hosted_confirm_flow() {
    let sim = Sim::start().await;
    let key = session(&sim, "order-host-1", 30_000, "success").await;
    let ready = json(sim.toss_get(&format!("/v1/payments/{key}")).await).await;
    assert_eq!(ready["status"], "READY");
    assert_eq!(ready["type"], "NORMAL");

    let confirm = |amount: u64, key: &str| json!({"paymentKey": key, "orderId": "order-host-1", "amount": amount});
    let wrong = sim.toss_post("/v1/payments/confirm", &confirm(1, &key), None).await;
    assert_error(wrong, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;
    let done = sim.toss_post("/v1/payments/confirm", &confirm(30_000, &key), None).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(json(done).await["status"], "DONE");
    let twice = sim.toss_post("/v1/payments/confirm", &confirm(30_000, &key), None).await;
    assert_error(twice, StatusCode::BAD_REQUEST, "ALREADY_PROCESSED_PAYMENT").await;
    let unknown = sim.toss_post("/v1/payments/confirm", &confirm(30_000, "nosuchkey"), None).await;
    assert_error(unknown, StatusCode::NOT_FOUND, "NOT_FOUND_PAYMENT_SESSION").await;
    assert_eq!(sim.captures(Some("order-host-1")).await.len(), 1);

    let declining = session(&sim, "order-host-2", 1_000, "decline").await;
    let declined = sim
        .toss_post(
            "/v1/payments/confirm",
            &json!({"paymentKey": declining, "orderId": "order-host-2", "amount": 1_000}),
            None,
        )
        .await;
    assert_error(declined, StatusCode::FORBIDDEN, "REJECT_CARD_COMPANY").await;
    assert!(sim.captures(Some("order-host-2")).await.is_empty());
}

/// Partial then full cancellation: `PARTIAL_CANCELED` with a lower balance,
/// over-cancel refused (`NOT_CANCELABLE_AMOUNT`), `CANCELED` at zero, then
/// `ALREADY_CANCELED_PAYMENT`; each cancel is a Toss refund record.
#[tokio::test]
async fn cancel_partial_and_full() {
    let sim = Sim::start().await;
    let payment = json(sim.toss_post("/v1/billing/billing_success", &billing("order-cxl-1", 10_000), None).await).await;
    let path = format!("/v1/payments/{}/cancel", payment["paymentKey"].as_str().unwrap());
    let partial =
        sim.toss_post(&path, &json!({"cancelReason": "고객 변심", "cancelAmount": 4_000}), Some("cxl-1")).await;
    assert_eq!(partial.status(), StatusCode::OK);
    let partial = json(partial).await;
    assert_eq!(partial["status"], "PARTIAL_CANCELED");
    assert_eq!(partial["balanceAmount"], 6_000);
    assert_eq!(partial["cancels"][0]["cancelAmount"], 4_000);
    assert_eq!(partial["cancels"][0]["refundableAmount"], 6_000);
    assert_eq!(partial["cancels"][0]["cancelStatus"], "DONE");
    let replay =
        sim.toss_post(&path, &json!({"cancelReason": "고객 변심", "cancelAmount": 4_000}), Some("cxl-1")).await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(json(replay).await, partial, "the first answer, not a second cancel");
    assert_eq!(sim.refunds(Some("order-cxl-1")).await.len(), 1);

    let over = sim.toss_post(&path, &json!({"cancelReason": "x", "cancelAmount": 7_000}), None).await;
    assert_error(over, StatusCode::FORBIDDEN, "NOT_CANCELABLE_AMOUNT").await;
    let rest = json(sim.toss_post(&path, &json!({"cancelReason": "rest"}), None).await).await;
    assert_eq!(rest["status"], "CANCELED");
    assert_eq!(rest["balanceAmount"], 0);
    assert_eq!(rest["cancels"].as_array().unwrap().len(), 2);
    let again = sim.toss_post(&path, &json!({"cancelReason": "again"}), None).await;
    assert_error(again, StatusCode::BAD_REQUEST, "ALREADY_CANCELED_PAYMENT").await;
    let missing_reason = sim.toss_post(&path, &json!({}), None).await;
    assert_error(missing_reason, StatusCode::BAD_REQUEST, "INVALID_REQUEST").await;

    let refunds = sim.refunds(Some("order-cxl-1")).await;
    assert_eq!(refunds.len(), 2);
    assert_eq!(refunds[0]["psp"], "toss");
    assert_eq!(refunds[0]["amount"], 4_000);
    assert_eq!(refunds[0]["idempotency_key"], "cxl-1");
    assert_eq!(refunds[1]["amount"], 6_000);
}

/// `GET /v1/payments/{paymentKey}` lists each refund in `cancels[]` with
/// `cancelReason` exactly as sent (a platform's reference at its end
/// included), `cancelAmount`, `transactionKey` (the refund's id in
/// `/_sim/refunds`), `canceledAt` in Korea time and `cancelStatus` `DONE`,
/// oldest first.
#[tokio::test]
async fn lookup_lists_each_cancel_as_sent() {
    let sim = Sim::start().await;
    let paid =
        json(sim.toss_post("/v1/billing/billing_success", &billing("order-cancels-1", 10_000), None).await).await;
    let payment_key = paid["paymentKey"].as_str().unwrap();
    let path = format!("/v1/payments/{payment_key}/cancel");
    let reasons = ["부분 환불 — 사이즈 \"M\" 교환 ref:rf_01HZX9", "  남은 금액 환불 ref:rf_02  "];
    for (reason, amount) in reasons.iter().zip([3_000, 7_000]) {
        let body = json!({"cancelReason": reason, "cancelAmount": amount});
        assert_eq!(sim.toss_post(&path, &body, None).await.status(), StatusCode::OK);
    }

    let payment = json(sim.toss_get(&format!("/v1/payments/{payment_key}")).await).await;
    assert_eq!(payment["status"], "CANCELED");
    let cancels = payment["cancels"].as_array().unwrap();
    let refunds = sim.refunds(Some("order-cancels-1")).await;
    assert_eq!((cancels.len(), refunds.len()), (2, 2));
    for ((cancel, refund), (reason, amount)) in cancels.iter().zip(&refunds).zip(reasons.iter().zip([3_000, 7_000])) {
        assert_eq!(cancel["cancelReason"], *reason);
        assert_eq!(cancel["cancelAmount"], amount);
        assert_eq!(cancel["cancelStatus"], "DONE");
        assert_eq!(cancel["transactionKey"], refund["id"]);
        assert!(cancel["canceledAt"].as_str().unwrap().ends_with("+09:00"), "{cancel}");
    }
    assert_eq!(payment["lastTransactionKey"], cancels[1]["transactionKey"]);
}

/// An escaped slash stays inside its path segment: `/v1/payments/orders%2F<id>`
/// reaches the `{paymentKey}` route (key `orders/<id>`: 404
/// `NOT_FOUND_PAYMENT`), not the lookup by order that `/v1/payments/orders/<id>`
/// is; and that route's key is percent-decoded.
#[tokio::test]
async fn escaped_slash_reaches_the_payment_key_route() {
    let sim = Sim::start().await;
    let paid = json(sim.toss_post("/v1/billing/billing_success", &billing("order-esc-1", 1_000), None).await).await;
    let by_order = sim.toss_get("/v1/payments/orders/order-esc-1").await;
    assert_eq!(by_order.status(), StatusCode::OK);
    let escaped = sim.toss_get("/v1/payments/orders%2Forder-esc-1").await;
    assert_error(escaped, StatusCode::NOT_FOUND, "NOT_FOUND_PAYMENT").await;
    let escaped = sim.toss_get("/v1/payments/orders%2Fabc").await;
    assert_error(escaped, StatusCode::NOT_FOUND, "NOT_FOUND_PAYMENT").await;

    let payment_key = paid["paymentKey"].as_str().unwrap();
    let encoded = format!("%{:02X}{}", payment_key.as_bytes()[0], &payment_key[1..]);
    let found = sim.toss_get(&format!("/v1/payments/{encoded}")).await;
    assert_eq!(found.status(), StatusCode::OK);
    assert_eq!(json(found).await["paymentKey"], payment_key);
}
