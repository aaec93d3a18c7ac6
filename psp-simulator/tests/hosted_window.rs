//! Black-box tests of the Toss hosted payment window over real HTTP: the
//! JavaScript SDK stand-in, the pay page, its redirects per test card, the
//! 3-D Secure challenge and cancellation.

mod common;

use std::collections::HashMap;

use common::{Sim, browser, json};
use psp_simulator::hosted;
use reqwest::{StatusCode, Url};

/// Where the test shop wants the buyer back (with a query of its own).
const SUCCESS_URL: &str = "http://shop.test/toss/success?cart=7";
const FAIL_URL: &str = "http://shop.test/toss/fail";

/// `requestPayment`'s parameters for `order_id`, as the pay page gets them.
fn window_fields(order_id: &str, amount: u64) -> Vec<(&'static str, String)> {
    vec![
        ("clientKey", "test_ck_shop0001".to_owned()),
        ("method", "카드".to_owned()),
        ("amount", amount.to_string()),
        ("orderId", order_id.to_owned()),
        ("orderName", "토스 티셔츠 외 2건".to_owned()),
        ("successUrl", SUCCESS_URL.to_owned()),
        ("failUrl", FAIL_URL.to_owned()),
        ("customerName", "김토스".to_owned()),
    ]
}

/// Submits the pay page's form with `card` and `action`.
async fn submit(sim: &Sim, order_id: &str, card: &str, action: &str) -> reqwest::Response {
    let mut form = window_fields(order_id, 15_000);
    form.push(("card", card.to_owned()));
    form.push(("action", action.to_owned()));
    browser().post(format!("{}{}", sim.base, hosted::PAY_PATH)).form(&form).send().await.expect("POST /v1/pay")
}

/// The `303 See Other` target of `response` and its query parameters.
fn redirect(response: &reqwest::Response) -> (Url, HashMap<String, String>) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap();
    let url = Url::parse(location).or_else(|_| Url::parse("http://sim.invalid").unwrap().join(location)).unwrap();
    let query = url.query_pairs().into_owned().collect();
    (url, query)
}

/// Asserts a redirect to `successUrl` (its own query kept) for `order_id`;
/// returns the `paymentKey`.
fn assert_success_redirect(response: &reqwest::Response, order_id: &str) -> String {
    let (url, query) = redirect(response);
    assert_eq!(url.path(), "/toss/success");
    assert_eq!(url.host_str(), Some("shop.test"));
    assert_eq!(query["cart"], "7");
    assert_eq!(query["paymentType"], "NORMAL");
    assert_eq!(query["orderId"], order_id);
    assert_eq!(query["amount"], "15000");
    query["paymentKey"].clone()
}

/// Asserts a redirect to `failUrl` with `code` for `order_id`.
fn assert_fail_redirect(response: &reqwest::Response, code: &str, order_id: &str) {
    let (url, query) = redirect(response);
    assert_eq!(url.path(), "/toss/fail");
    assert_eq!(query["code"], code);
    assert_eq!(query["orderId"], order_id);
    assert!(query["message"].chars().count() > 1, "{query:?}");
    assert!(!query.contains_key("paymentKey"));
}

/// The pay page URL for `fields`.
fn pay_url(sim: &Sim, fields: &[(&str, String)]) -> String {
    let query = serde_urlencoded::to_string(fields).unwrap();
    format!("{}{}?{query}", sim.base, hosted::PAY_PATH)
}

/// The SDK stand-in is JavaScript defining `TossPayments` and computing the
/// simulator's address from its own `<script src>`.
#[tokio::test]
async fn sdk_script_is_served() {
    let sim = Sim::start().await;
    let response = sim.get(hosted::SDK_PATH).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/javascript");
    let script = response.text().await.unwrap();
    for needle in ["TossPayments", "requestPayment", "document.currentScript", "location.assign", hosted::PAY_PATH] {
        assert!(script.contains(needle), "{needle}");
    }
}

/// The pay page shows the order and amount and every stable id, with the
/// success card checked.
#[tokio::test]
async fn pay_page_renders_the_window() {
    let sim = Sim::start().await;
    let response = browser().get(pay_url(&sim, &window_fields("order-page-1", 1_234_500))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = response.text().await.unwrap();
    for id in [
        hosted::CARD_SUCCESS_ID,
        hosted::CARD_DECLINE_ID,
        hosted::CARD_INSUFFICIENT_FUNDS_ID,
        hosted::CARD_3DS_ID,
        hosted::CARD_REVIEW_ID,
        hosted::PAY_BUTTON_ID,
        hosted::CANCEL_BUTTON_ID,
        hosted::ORDER_NAME_ID,
        hosted::AMOUNT_ID,
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(html.contains("id=\"card-success\" value=\"success\" checked"));
    assert!(html.contains("토스 티셔츠 외 2건"));
    assert!(html.contains("1,234,500 KRW"));
    assert!(html.contains("data-amount=\"1234500\""));
    assert!(!html.contains(&format!("id=\"{}\"", hosted::ERROR_ID)));
}

/// Bad parameters (key, amount, orderId, return URLs, method) give a 400
/// page with `#error`, on GET and on POST alike.
#[tokio::test]
async fn pay_page_rejects_bad_parameters() {
    let sim = Sim::start().await;
    let cases = [
        ("clientKey", "live_ck_shop0001"),
        ("clientKey", "test_sk_shop0001"),
        ("amount", "0"),
        ("amount", "-100"),
        ("amount", "100.5"),
        ("amount", "abc"),
        ("orderId", "abc"),
        ("orderId", "order#1234"),
        ("successUrl", "/toss/success"),
        ("failUrl", "mailto:shop@example.com"),
        ("method", "가상계좌"),
    ];
    for (name, value) in cases {
        let fields: Vec<(&str, String)> = window_fields("order-bad-1", 1_000)
            .into_iter()
            .map(|(k, v)| if k == name { (k, value.to_owned()) } else { (k, v) })
            .collect();
        let response = browser().get(pay_url(&sim, &fields)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name}={value}");
        let html = response.text().await.unwrap();
        assert!(html.contains("id=\"error\""), "{name}={value}");
        let posted = browser().post(format!("{}{}", sim.base, hosted::PAY_PATH)).form(&fields).send().await.unwrap();
        assert_eq!(posted.status(), StatusCode::BAD_REQUEST, "POST {name}={value}");
    }
    let missing = browser().get(format!("{}{}", sim.base, hosted::PAY_PATH)).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    assert!(missing.text().await.unwrap().contains("id=\"error\""));
}

/// Paying with each card that needs no challenge redirects to `successUrl`
/// with the payment; the payment is authenticated (`IN_PROGRESS`) and
/// nothing is captured before the confirm.
#[tokio::test]
async fn pay_redirects_to_success_url_per_card() {
    let sim = Sim::start().await;
    for card in ["success", "decline", "insufficient_funds", "review"] {
        let order_id = format!("order-pay-{card}");
        let response = submit(&sim, &order_id, card, "pay").await;
        let key = assert_success_redirect(&response, &order_id);
        let payment = json(sim.toss_get(&format!("/v1/payments/{key}")).await).await;
        assert_eq!(payment["status"], "IN_PROGRESS", "{card}");
        assert_eq!(payment["type"], "NORMAL");
        assert_eq!(payment["orderId"], order_id.as_str());
        assert_eq!(payment["totalAmount"], 15_000);
        assert!(payment["approvedAt"].is_null());
    }
    assert!(sim.captures(None).await.is_empty());
}

/// The 3-D Secure card goes through the challenge page: authenticating
/// redirects to `successUrl`; failing redirects to `failUrl` with
/// `PAY_PROCESS_ABORTED`, aborts the payment and frees the order.
#[tokio::test]
async fn three_d_secure_challenge() {
    let sim = Sim::start().await;
    let response = submit(&sim, "order-3ds-1", "3ds", "pay").await;
    let (url, _) = redirect(&response);
    let key = url.path().strip_prefix(hosted::THREE_DS_PATH_PREFIX).expect("challenge path").to_owned();
    let ready = json(sim.toss_get(&format!("/v1/payments/{key}")).await).await;
    assert_eq!(ready["status"], "READY");
    let challenge = format!("{}{}{key}", sim.base, hosted::THREE_DS_PATH_PREFIX);
    let page = browser().get(&challenge).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    for id in [hosted::AUTHENTICATE_BUTTON_ID, hosted::FAIL_AUTHENTICATION_BUTTON_ID] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    let form = [("result", "authenticate")];
    let passed = browser().post(&challenge).form(&form).send().await.unwrap();
    assert_eq!(assert_success_redirect(&passed, "order-3ds-1"), key);
    let again = browser().post(&challenge).form(&form).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.text().await.unwrap().contains("id=\"error\""));

    let response = submit(&sim, "order-3ds-2", "3ds", "pay").await;
    let (url, _) = redirect(&response);
    let failing = format!("{}{}", sim.base, url.path());
    let failed = browser().post(&failing).form(&[("result", "fail")]).send().await.unwrap();
    assert_fail_redirect(&failed, hosted::FAIL_CODE_AUTHENTICATION, "order-3ds-2");
    let aborted = json(sim.toss_get("/v1/payments/orders/order-3ds-2").await).await;
    assert_eq!(aborted["status"], "ABORTED");
    assert_eq!(aborted["failure"]["code"], hosted::FAIL_CODE_AUTHENTICATION);
    let retry = submit(&sim, "order-3ds-2", "success", "pay").await;
    assert_success_redirect(&retry, "order-3ds-2");
    let unknown = browser().get(format!("{}{}nosuchkey", sim.base, hosted::THREE_DS_PATH_PREFIX)).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert!(sim.captures(None).await.is_empty());
}

/// Cancelling redirects to `failUrl` with `PAY_PROCESS_CANCELED` and leaves
/// no payment; an order with a live payment is refused with
/// `DUPLICATED_ORDER_ID`.
#[tokio::test]
async fn cancel_and_duplicate_orders_go_to_fail_url() {
    let sim = Sim::start().await;
    let canceled = submit(&sim, "order-cxl-w1", "success", "cancel").await;
    assert_fail_redirect(&canceled, hosted::FAIL_CODE_CANCELED, "order-cxl-w1");
    let none = sim.toss_get("/v1/payments/orders/order-cxl-w1").await;
    assert_eq!(none.status(), StatusCode::NOT_FOUND);

    let first = submit(&sim, "order-dup-w1", "success", "pay").await;
    assert_success_redirect(&first, "order-dup-w1");
    let second = submit(&sim, "order-dup-w1", "success", "pay").await;
    assert_fail_redirect(&second, hosted::FAIL_CODE_DUPLICATED_ORDER, "order-dup-w1");
}
