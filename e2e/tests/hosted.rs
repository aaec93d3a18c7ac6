//! The hosted payment page flow (seed 003, Toss Payments) in a real headless Chromium:
//! checkout page -> the PSP's pay page (-> 3-D Secure challenge) -> our success page, with the
//! workflow confirming the payment; a tampered amount confirms nothing; an abandoned checkout
//! expires.

use payments_domain::{CheckoutId, PaymentOrderStatus as S, SellerAccount};
use payments_testkit::browser::Browser;
use payments_testkit::{Db, Stack, StackOptions, unique};
use payments_workflows::messages::WaitLimits;
use psp_simulator::hosted as page;
use rstest::rstest;
use serde_json::{Value, json};
use std::time::Duration;

/// Bound for each browser wait.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

async fn toss_stack(url: String, waits: WaitLimits) -> Stack {
    Stack::start(StackOptions { database_url: Some(url), psp_provider: "toss".into(), waits, ..StackOptions::new() })
        .await
}

/// Creates a two-seller hosted checkout (KRW 12000 + 8000); answers its id and page URL.
async fn create_hosted(stack: &Stack) -> (String, String) {
    let id = unique("hosted");
    let body = json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1", "name": "Kim"},
        "payment_orders": [
            {"seller_account": "seller-a", "amount": "12000", "currency": "KRW", "payment_order_id": format!("{id}-1")},
            {"seller_account": "seller-b", "amount": "8000", "currency": "KRW", "payment_order_id": format!("{id}-2")}
        ]
    });
    let resp = stack.http.post(format!("{}/v1/checkouts", stack.rest_url)).json(&body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!((answer["amount"].as_str(), answer["currency"].as_str()), (Some("20000"), Some("KRW")));
    (id, answer["checkout_url"].as_str().unwrap().to_owned())
}

fn css_id(id: &str) -> String {
    format!("#{id}")
}

/// Buyer path: checkout page, pay button, the PSP's page with `card`, pay, optionally the
/// 3-D Secure challenge; answers the text of our result page's `#status`.
async fn pay_in_browser(browser: &Browser, checkout_url: &str, card: &str, three_ds: bool) -> String {
    browser.goto(checkout_url).await.unwrap();
    browser.wait_for("#pay-button", STEP_TIMEOUT).await.unwrap();
    browser.click("#pay-button").await.unwrap();
    browser.wait_for(&css_id(page::PAY_BUTTON_ID), STEP_TIMEOUT).await.unwrap();
    browser.click(&css_id(card)).await.unwrap();
    browser.click(&css_id(page::PAY_BUTTON_ID)).await.unwrap();
    if three_ds {
        browser.wait_for(&css_id(page::AUTHENTICATE_BUTTON_ID), STEP_TIMEOUT).await.unwrap();
        browser.click(&css_id(page::AUTHENTICATE_BUTTON_ID)).await.unwrap();
    }
    browser.wait_for_url(|u| u.contains("/success") || u.contains("/fail"), STEP_TIMEOUT).await.unwrap();
    browser.wait_for("#status", STEP_TIMEOUT).await.unwrap();
    browser.text("#status").await.unwrap()
}

/// A buyer pays on the PSP's page, with and without a 3-D Secure challenge: the success page
/// shows SUCCESS, both orders are captured by the one payment (captured once), credited to
/// each seller and posted to the ledger.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyer_pays_on_the_hosted_page(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = toss_stack(url, WaitLimits::DEFAULT).await;
    let browser = Browser::start().await.expect("headless Chromium (scripts/ensure-browser.sh)");
    for (card, three_ds) in [(page::CARD_SUCCESS_ID, false), (page::CARD_3DS_ID, true)] {
        let (id, url) = create_hosted(&stack).await;
        assert_eq!(pay_in_browser(&browser, &url, card, three_ds).await, "SUCCESS", "{card}");
        let done = stack.wait_done(&id).await;
        for o in &done.orders {
            assert_eq!(o.status, S::Success);
            assert!(o.wallet_updated && o.ledger_updated);
        }
        assert_eq!(done.orders[0].psp_reference, done.orders[1].psp_reference, "one payment for the checkout");
        assert_eq!(stack.captures(&id).await.len(), 1, "{card}: captured once");
    }
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    browser.quit().await.unwrap();
    stack.shutdown().await;
}

/// One payment for two sellers, one of them blocked: the blocked seller's share is given back
/// as a partial cancel of the one Toss payment (8000 of 20000, idempotency key
/// `{order}:reversal`) and that order ends REVERSED; the other seller keeps its 12000; the
/// books balance (README, "Failure model": per-order policy).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_sellers_share_is_cancelled_from_the_one_payment(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = toss_stack(url, WaitLimits::DEFAULT).await;
    stack.store.block_wallet(&SellerAccount::parse("seller-b").unwrap(), "KYC pending").await.unwrap();
    let browser = Browser::start().await.expect("headless Chromium (scripts/ensure-browser.sh)");
    let (id, url) = create_hosted(&stack).await;
    assert_eq!(pay_in_browser(&browser, &url, page::CARD_SUCCESS_ID, false).await, "SUCCESS");
    let done = stack.wait_done(&id).await;
    let statuses: Vec<_> = done.orders.iter().map(|o| o.status).collect();
    assert_eq!(statuses, vec![S::Success, S::Reversed], "{done:?}");
    assert_eq!(stack.captures(&id).await.len(), 1, "one payment");
    let url = format!("{}/_sim/refunds?payment_order_id={id}", stack.sim_url);
    let refunds: Value = stack.http.get(url).send().await.unwrap().json().await.unwrap();
    let refunds = refunds["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["amount"], 8000, "a partial cancel of the blocked seller's share");
    assert_eq!(refunds[0]["idempotency_key"], format!("{id}-2:reversal"));
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    browser.quit().await.unwrap();
    stack.shutdown().await;
}

/// A declined card ends on a FAILED page with nothing captured; cancelling on the PSP's page
/// lands on our fail page with the PSP's code and leaves the checkout payable.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declines_and_cancels_show_failure(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = toss_stack(url, WaitLimits::DEFAULT).await;
    let browser = Browser::start().await.expect("headless Chromium (scripts/ensure-browser.sh)");
    let (id, url) = create_hosted(&stack).await;
    assert_eq!(pay_in_browser(&browser, &url, page::CARD_DECLINE_ID, false).await, "FAILED");
    let done = stack.wait_done(&id).await;
    assert!(
        done.orders.iter().all(|o| o.status == S::Failed && o.failure_code.as_deref() == Some("REJECT_CARD_COMPANY"))
    );
    assert!(stack.captures(&id).await.is_empty());

    let (id, url) = create_hosted(&stack).await;
    browser.goto(&url).await.unwrap();
    browser.wait_for("#pay-button", STEP_TIMEOUT).await.unwrap();
    browser.click("#pay-button").await.unwrap();
    browser.wait_for(&css_id(page::CANCEL_BUTTON_ID), STEP_TIMEOUT).await.unwrap();
    browser.click(&css_id(page::CANCEL_BUTTON_ID)).await.unwrap();
    browser.wait_for_url(|u| u.contains("/fail"), STEP_TIMEOUT).await.unwrap();
    assert_eq!(browser.text("#code").await.unwrap(), page::FAIL_CODE_CANCELED);
    let record = stack.store.checkout(&CheckoutId::parse(id).unwrap()).await.unwrap().unwrap();
    assert!(record.orders.iter().all(|o| o.status == S::NotStarted), "still payable");
    browser.quit().await.unwrap();
    stack.shutdown().await;
}

/// The redirect's amount is tampered with (the buyer's browser carries it): our success page
/// refuses before any confirm, the PSP's payment stays unconfirmed, nothing is captured.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_amount_confirms_nothing(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = toss_stack(url, WaitLimits::DEFAULT).await;
    let browser = Browser::start().await.expect("headless Chromium (scripts/ensure-browser.sh)");
    let (id, _) = create_hosted(&stack).await;
    // An authenticated payment of the real amount at the PSP, as if the buyer had paid.
    let key = stack.toss_payment_session(&id, 20000).await;
    let tampered = format!("{}/checkout/{id}/success?paymentKey={key}&orderId={id}&amount=200", stack.rest_url);
    browser.goto(&tampered).await.unwrap();
    browser.wait_for("#status", STEP_TIMEOUT).await.unwrap();
    assert_eq!(browser.text("#status").await.unwrap(), "FAILED");
    assert!(browser.text("#detail").await.unwrap().contains("does not match"));
    assert!(stack.captures(&id).await.is_empty());
    let payment = stack.psp_payment(&format!("/v1/payments/{key}")).await;
    assert_eq!(payment["paymentKey"], key.as_str(), "{payment}");
    assert_ne!(payment["status"], "DONE", "not confirmed at the PSP: {payment}");
    let record = stack.store.checkout(&CheckoutId::parse(id).unwrap()).await.unwrap().unwrap();
    assert!(record.orders.iter().all(|o| o.status == S::NotStarted));
    browser.quit().await.unwrap();
    stack.shutdown().await;
}

/// A buyer who never pays: at the deadline the checkout ends with every order FAILED
/// `payment_expired`; a late confirmation is refused and charges nothing.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_checkout_expires(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let waits = WaitLimits { hosted_payment_secs: 2, ..WaitLimits::DEFAULT };
    let stack = toss_stack(url, waits).await;
    let (id, _) = create_hosted(&stack).await;
    let done = stack.wait_done(&id).await;
    assert!(done.orders.iter().all(|o| o.status == S::Failed && o.failure_code.as_deref() == Some("payment_expired")));
    // The buyer pays at Toss after the deadline (a real, authenticated payment whose key
    // would be confirmed on time) and lands on our success page: nothing is confirmed.
    let key = stack.toss_payment_session(&id, 20000).await;
    let late = format!("{}/checkout/{id}/success?paymentKey={key}&orderId={id}&amount=20000", stack.rest_url);
    let resp = stack.http.get(late).send().await.unwrap();
    assert!(resp.status().is_success(), "success page: {}", resp.status());
    let page = resp.text().await.unwrap();
    assert!(page.contains(r#"<p id="status">FAILED</p>"#) && page.contains("already finished"), "{page}");
    assert!(stack.captures(&id).await.is_empty());
    let at_toss = stack.psp_payment(&format!("/v1/payments/{key}")).await;
    assert_eq!(at_toss["paymentKey"], key.as_str(), "{at_toss}");
    assert_ne!(at_toss["status"], "DONE", "{at_toss}");
    stack.shutdown().await;
}
