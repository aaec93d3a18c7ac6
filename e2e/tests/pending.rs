//! Payments the PSP leaves pending (3-D Secure, manual review) are followed with durable
//! timers and status queries until the PSP's final answer, for both adapters.

use payments_domain::{CheckoutId, PaymentOrderStatus as S};
use payments_testkit::{Db, Stack, StackOptions};
use rstest::rstest;
use serde_json::json;

async fn resolve(stack: &Stack, path: &str, result: &str) {
    let resp =
        stack.http.post(format!("{}{path}", stack.sim_url)).json(&json!({"result": result})).send().await.unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
}

/// Stripe 3-D Secure: the order waits (EXECUTING) until the buyer completes the challenge,
/// then ends SUCCESS with one capture; a failed challenge ends FAILED with Stripe's code.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_d_secure_is_awaited(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..StackOptions::new() }).await;
    for (result, status) in [("approve", S::Success), ("fail", S::Failed)] {
        let (id, po) = stack.post_one_order("pm_card_threeDSecure2Required", "20000", "KRW").await;
        let pi = stack.psp_payment_id("stripe", &po).await;
        let waiting = stack.store.checkout(&CheckoutId::parse(id.clone()).unwrap()).await.unwrap().unwrap();
        assert_eq!(waiting.orders[0].status, S::Executing);
        resolve(&stack, &format!("/_sim/3ds/{pi}"), result).await;
        let done = stack.wait_done(&id).await;
        assert_eq!(done.orders[0].status, status, "{result}");
        assert_eq!(stack.captures(&po).await.len(), usize::from(status == S::Success));
        if status == S::Failed {
            assert_eq!(done.orders[0].failure_code.as_deref(), Some("payment_intent_authentication_failure"));
        }
    }
    stack.shutdown().await;
}

/// Toss manual review: approved -> SUCCESS; rejected -> FAILED with Toss's failure code.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_review_is_awaited(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack =
        Stack::start(StackOptions { database_url: Some(url), psp_provider: "toss".into(), ..StackOptions::new() })
            .await;
    for (result, status) in [("approve", S::Success), ("reject", S::Failed)] {
        let (id, po) = stack.post_one_order("billing_sim_review", "20000", "KRW").await;
        let key = stack.psp_payment_id("toss", &po).await;
        resolve(&stack, &format!("/_sim/review/{key}"), result).await;
        let done = stack.wait_done(&id).await;
        assert_eq!(done.orders[0].status, status, "{result}");
        assert_eq!(stack.captures(&po).await.len(), usize::from(status == S::Success));
    }
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    stack.shutdown().await;
}

/// 3-D Secure never answered: at the deadline the workflow asks the PSP, cancels the payment
/// that is still pending there (so a late approval cannot capture), and the order ends FAILED
/// with nothing captured; the late approval is refused by the PSP.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_three_d_secure_is_cancelled_at_the_deadline(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let waits = payments_workflows::messages::WaitLimits {
        psp_pending_secs: 2,
        ..payments_workflows::messages::WaitLimits::DEFAULT
    };
    let stack = Stack::start(StackOptions { database_url: Some(url), waits, ..StackOptions::new() }).await;
    let (id, po) = stack.post_one_order("pm_card_threeDSecure2Required", "20000", "KRW").await;
    let pi = stack.psp_payment_id("stripe", &po).await;
    let done = stack.wait_done(&id).await;
    assert_eq!(done.orders[0].status, S::Failed);
    let late = stack
        .http
        .post(format!("{}/_sim/3ds/{pi}", stack.sim_url))
        .json(&json!({"result": "approve"}))
        .send()
        .await
        .unwrap();
    assert!(late.status().is_client_error(), "late approval accepted: {}", late.status());
    assert!(stack.captures(&po).await.is_empty());
    stack.shutdown().await;
}
