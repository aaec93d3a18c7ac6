//! The saga's compensation: a captured order whose booking is rejected (its seller's wallet
//! is blocked) is given back -- one refund at the PSP with the `{order}:reversal` key, the
//! ledger pay-in reversed, the order REVERSED -- while the checkout's other orders keep their
//! money (policy: per order, not all-or-nothing; see README "Failure model"). Both databases.

mod common;

use common::assert_books_consistent;
use payments_domain::{PaymentOrderId, PaymentOrderStatus as S, SellerAccount};
use payments_store::{RefundKind, RefundStatus};
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::json;

/// Two sellers, one blocked: the blocked seller's order is captured, refunded in full at the
/// PSP exactly once and ends REVERSED with its pay-in and reversal both in the ledger and
/// nothing in the wallet; the other seller's order ends SUCCESS, credited, never refunded.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_wallet_gives_that_order_back_and_keeps_the_other(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let blocked = SellerAccount::parse("seller-frozen").unwrap();
    stack.store.block_wallet(&blocked, "KYC review pending").await.unwrap();
    let id = unique("chk");
    let (kept, given_back) = (format!("{id}-1"), format!("{id}-2"));
    let body = json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": [
            {"seller_account": "seller-ok", "amount": "30.00", "currency": "USD", "payment_order_id": kept},
            {"seller_account": "seller-frozen", "amount": "12.34", "currency": "USD", "payment_order_id": given_back},
        ],
    });
    let (status, answer) = stack.post_payment(&body).await;
    assert_eq!(status, 202, "{answer}");
    let done = stack.wait_done(&id).await;
    let status_of = |po: &str| done.orders.iter().find(|o| o.payment_order_id.as_str() == po).unwrap().clone();
    assert_eq!(status_of(&kept).status, S::Success);
    assert!(status_of(&kept).wallet_updated && status_of(&kept).ledger_updated);
    let reversed = status_of(&given_back);
    assert_eq!(reversed.status, S::Reversed, "{reversed:?}");
    assert!(!reversed.wallet_updated, "the blocked wallet was never credited");

    assert_eq!(stack.captures(&given_back).await.len(), 1, "captured once");
    let at_psp = stack.sim_refunds(&given_back).await;
    assert_eq!(at_psp.len(), 1, "refunded once: {at_psp:?}");
    assert!(stack.sim_refunds(&kept).await.is_empty(), "the other order is not refunded");

    let order_id = PaymentOrderId::parse(&given_back).unwrap();
    let refunds = stack.store.refunds(&order_id).await.unwrap();
    assert_eq!(refunds.len(), 1);
    assert_eq!((refunds[0].kind, refunds[0].status), (RefundKind::Reversal, RefundStatus::Succeeded));
    assert_eq!(refunds[0].refund_id.as_str(), format!("{given_back}:reversal"));
    assert_eq!(refunds[0].amount.amount_minor(), 1234);
    let history: Vec<_> =
        stack.store.history(&order_id).await.unwrap().into_iter().map(|h| (h.to_status, h.reason)).collect();
    let statuses: Vec<_> = history.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, vec![S::NotStarted, S::Executing, S::Success, S::Reversed], "{history:?}");
    assert!(history[3].1.contains("blocked"), "the reason is recorded: {history:?}");
    assert!(stack.store.wallet_balances(&blocked).await.unwrap().iter().all(|m| m.amount_minor() == 0));
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// The saga unwinds with a charge whose outcome is unknown: the capture's answer was lost and
/// the PSP could not be asked, then the checkout is cancelled (`paymentsctl checkout cancel`).
/// The compensation registered before the charge still applies: once the janitor learns the
/// payment was captured, it is booked and given back -- one capture, one refund, REVERSED.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_compensates_a_charge_whose_outcome_was_unknown(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack =
        Stack::start(StackOptions { database_url: Some(url), waits: common::quick_limits(), ..StackOptions::new() })
            .await;
    stack.psp_outage(false, true, false).await;
    let (checkout, po) = stack.post_one_order("pm_card_sim_lost_response", "7.77", "USD").await;
    common::wait_janitor(&stack, &checkout, &po).await;
    common::paymentsctl(&stack, &["checkout", "cancel", &checkout, "--reason", "buyer called", "--operator", "fay"])
        .await
        .expect("checkout cancel");
    stack.psp_outage(false, false, false).await;
    let done = stack.wait_done(&checkout).await;
    assert_eq!(done.orders[0].status, S::Reversed, "{done:?}");
    assert_eq!(stack.captures(&po).await.len(), 1);
    assert_eq!(stack.sim_refunds(&po).await.len(), 1);
    let order_id = PaymentOrderId::parse(&po).unwrap();
    let history: Vec<_> = stack.store.history(&order_id).await.unwrap();
    let statuses: Vec<_> = history.iter().map(|h| h.to_status).collect();
    assert_eq!(statuses, vec![S::NotStarted, S::Executing, S::Unknown, S::Success, S::Reversed]);
    assert!(history[4].reason.contains("checkout cancelled by fay: buyer called"), "{history:?}");
    let refused = common::paymentsctl(&stack, &["checkout", "cancel", &checkout, "--reason", "again"]).await;
    assert!(refused.is_err(), "a done checkout cannot be cancelled");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// A checkout held for review and cancelled charges nothing: FAILED `checkout_cancelled`.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_review_charges_nothing(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions {
        database_url: Some(url),
        risk_review_limits: "USD:100".into(),
        ..StackOptions::new()
    })
    .await;
    let (checkout, po) = stack.post_one_order("pm_card_visa", "500.00", "USD").await;
    let query = format!("WorkflowId = 'checkout-{checkout}' AND PaymentStatus = 'AWAITING_REVIEW'");
    stack
        .poll_until("the review hold", common::STATE_TIMEOUT, || async {
            (common::visible(&stack, &query).await == 1).then_some(())
        })
        .await;
    common::paymentsctl(&stack, &["checkout", "cancel", &checkout, "--reason", "duplicate order"])
        .await
        .expect("cancel");
    let done = stack.wait_done(&checkout).await;
    assert_eq!(done.orders[0].status, S::Failed);
    assert_eq!(done.orders[0].failure_code.as_deref(), Some("checkout_cancelled"));
    assert!(stack.captures(&po).await.is_empty());
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// Waits until the checkout's workflow shows `phase` in Temporal's visibility.
async fn wait_phase(stack: &Stack, checkout: &str, phase: &str) {
    let query = format!("WorkflowId = 'checkout-{checkout}' AND PaymentStatus = '{phase}'");
    stack
        .poll_until(&format!("phase {phase}"), common::STATE_TIMEOUT, || async {
            (common::visible(stack, &query).await == 1).then_some(())
        })
        .await;
}

/// A cancel ends the other long waits at once: a hosted checkout awaiting the buyer fails every
/// order `checkout_cancelled`; a payment pending 3-D Secure is cancelled at the PSP (nothing
/// captured, a late approval can no longer capture) and the order ends FAILED.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_hosted_and_pending_waits(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    let hosted = unique("hosted");
    let body = json!({
        "checkout_id": hosted,
        "buyer_info": {"buyer_id": "buyer-1"},
        "payment_orders": [{"seller_account": "seller-a", "amount": "5000", "currency": "KRW", "payment_order_id": format!("{hosted}-1")}],
    });
    let resp = stack.http.post(format!("{}/v1/checkouts", stack.rest_url)).json(&body).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    wait_phase(&stack, &hosted, "AWAITING_PAYMENT").await;
    common::paymentsctl(&stack, &["checkout", "cancel", &hosted, "--reason", "buyer left"]).await.expect("cancel");
    let done = stack.wait_done(&hosted).await;
    assert_eq!(done.orders[0].status, S::Failed);
    assert_eq!(done.orders[0].failure_code.as_deref(), Some("checkout_cancelled"));
    // The buyer finishes paying at Toss after all and lands on our success page: nothing is
    // confirmed, the payment stays unconfirmed at Toss.
    let key = stack.toss_payment_session(&hosted, 5000).await;
    let page = format!("{}/checkout/{hosted}/success?paymentKey={key}&orderId={hosted}&amount=5000", stack.rest_url);
    let late = stack.http.get(page).send().await.unwrap();
    assert!(late.status().is_success(), "success page: {}", late.status());
    let page_text = late.text().await.unwrap();
    assert!(page_text.contains(r#"<p id="status">FAILED</p>"#), "{page_text}");
    assert!(stack.captures(&hosted).await.is_empty(), "nothing confirmed after the cancel");
    let at_toss = stack.psp_payment(&format!("/v1/payments/{key}")).await;
    assert_eq!(at_toss["paymentKey"], key.as_str(), "{at_toss}");
    assert_ne!(at_toss["status"], "DONE", "{at_toss}");

    let (pending, po) = stack.post_one_order("pm_card_threeDSecure2Required", "30.00", "USD").await;
    wait_phase(&stack, &pending, "AWAITING_PSP").await;
    let intent = stack.psp_payment_id("stripe", &po).await;
    common::paymentsctl(&stack, &["checkout", "cancel", &pending, "--reason", "buyer gave up"]).await.expect("cancel");
    let done = stack.wait_done(&pending).await;
    assert_eq!(done.orders[0].status, S::Failed, "{done:?}");
    // The buyer completes 3-D Secure too late: Stripe refuses, the intent stays cancelled.
    let late = stack
        .http
        .post(format!("{}/_sim/3ds/{intent}", stack.sim_url))
        .json(&json!({"result": "approve"}))
        .send()
        .await
        .unwrap();
    assert!(late.status().is_client_error(), "late approval accepted: {}", late.status());
    let at_stripe = stack.psp_payment(&format!("/v1/payment_intents/{intent}")).await;
    assert_eq!((at_stripe["id"].as_str(), at_stripe["status"].as_str()), (Some(intent.as_str()), Some("canceled")));
    assert!(stack.captures(&po).await.is_empty(), "nothing captured");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}
