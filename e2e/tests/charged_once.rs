//! A finished checkout is never charged again, and one whose workflow ended early resumes from
//! its stored state (point 1 of the money-safety issue). A PSP forgets idempotency keys (Stripe
//! after 24 h, Toss after 15 days; the simulator is told to forget them now): past that, a
//! charge sent again under the order's key is a second capture. Every test runs on both
//! databases, against the real Temporal server and simulator.

mod common;

use common::{assert_books_consistent, quick_limits, wait_janitor};
use payments_domain::{CheckoutId, PaymentOrderStatus as S};
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::{Value, json};

fn options(database_url: String, provider: &str) -> StackOptions {
    StackOptions {
        database_url: Some(database_url),
        psp_provider: provider.to_owned(),
        waits: quick_limits(),
        ..StackOptions::new()
    }
}

/// A one-order checkout body.
fn body(checkout: &str, token: &str, amount: &str, currency: &str) -> Value {
    json!({
        "checkout_id": checkout,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": token},
        "payment_orders": [{"seller_account": "seller-a", "amount": amount, "currency": currency,
            "payment_order_id": format!("{checkout}-1")}],
    })
}

/// A checkout paid and booked; its workflow deleted (what namespace retention does after its
/// period) and the PSP's keys forgotten; the same checkout POSTed again. The gateway sees every
/// order final and booked and starts nothing: no workflow exists after the answer, one capture.
/// (Before the fix: a new run charged the order again under its expired key: two captures.)
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_checkout_is_never_charged_again(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(options(url, "stripe")).await;
    let checkout = unique("chk");
    let po = format!("{checkout}-1");
    let request = body(&checkout, "pm_card_visa", "25.00", "USD");
    assert_eq!(stack.post_payment(&request).await.0, 202);
    assert_eq!(stack.wait_done(&checkout).await.orders[0].status, S::Success);
    stack.delete_workflow(&format!("checkout-{checkout}")).await;
    stack.expire_psp_keys().await;

    let (status, answer) = stack.post_payment(&request).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["payment_orders"][0]["status"], "SUCCESS");
    assert!(!stack.workflow_exists(&format!("checkout-{checkout}")).await, "no workflow was started");
    assert_eq!(stack.captures(&po).await.len(), 1);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// The same for a hosted checkout (Toss): paid on the PSP's page and confirmed, its workflow
/// deleted, keys forgotten, the checkout POSTed again: no workflow, one capture.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_hosted_checkout_is_never_confirmed_again(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(options(url, "toss")).await;
    let checkout = unique("hosted");
    let request = json!({
        "checkout_id": checkout,
        "buyer_info": {"buyer_id": "buyer-1"},
        "payment_orders": [{"seller_account": "seller-a", "amount": "20000", "currency": "KRW",
            "payment_order_id": format!("{checkout}-1")}],
    });
    let post = || stack.http.post(format!("{}/v1/checkouts", stack.rest_url)).json(&request).send();
    assert_eq!(post().await.unwrap().status().as_u16(), 201);
    common::pay_hosted(&stack, &checkout, 20000).await;
    assert_eq!(stack.wait_done(&checkout).await.orders[0].status, S::Success);
    stack.delete_workflow(&format!("checkout-{checkout}")).await;
    stack.expire_psp_keys().await;

    assert_eq!(post().await.unwrap().status().as_u16(), 200);
    assert!(!stack.workflow_exists(&format!("checkout-{checkout}")).await, "no workflow was started");
    assert_eq!(stack.captures(&checkout).await.len(), 1);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// The capture's answer was lost and the PSP could not be asked: the order is UNKNOWN and the
/// janitor holds it. Its workflow is deleted (or, in the Toss run, terminated) and the PSP
/// forgets its keys; then the checkout is POSTed again. The gateway starts a resuming run: the
/// UNKNOWN order is looked up at the PSP first -- never charged blind -- found captured and
/// booked: SUCCESS, one capture. (Before the fix, after a deletion the new run charged again
/// under the expired key; after a termination nothing ever ran again and the order stayed
/// UNKNOWN.)
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_order_resumes_from_its_stored_state(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    for (provider, token, amount, currency) in
        [("stripe", "pm_card_sim_lost_response", "9.99", "USD"), ("toss", "billing_sim_lost_response", "9900", "KRW")]
    {
        // Each stack a database of its own: the end-of-test money check reads all of it.
        let Some(url) = db.url().await else { return };
        let stack = Stack::start(options(url, provider)).await;
        stack.psp_outage(false, true, false).await;
        let checkout = unique("chk");
        let po = format!("{checkout}-1");
        let request = body(&checkout, token, amount, currency);
        assert_eq!(stack.post_payment(&request).await.0, 202);
        wait_janitor(&stack, &checkout, &po).await;
        let workflow = format!("checkout-{checkout}");
        match provider {
            "stripe" => stack.delete_workflow(&workflow).await,
            _ => stack.terminate_workflow(&workflow).await,
        }
        stack.expire_psp_keys().await;
        stack.psp_outage(false, false, false).await;

        let (status, answer) = stack.post_payment(&request).await;
        assert_eq!(status, 200, "{answer}");
        let done = stack.wait_done(&checkout).await;
        assert_eq!(done.orders[0].status, S::Success, "{provider}: {done:?}");
        assert!(done.orders[0].wallet_updated && done.orders[0].ledger_updated);
        assert_eq!(stack.captures(&po).await.len(), 1, "{provider}: charged once");
        let id = CheckoutId::parse(&checkout).unwrap();
        assert!(stack.store.checkout(&id).await.unwrap().unwrap().workflow_started);
        assert_books_consistent(&stack).await;
        stack.shutdown().await;
    }
}
