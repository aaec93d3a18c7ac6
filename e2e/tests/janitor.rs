//! The UNKNOWN janitor: an order whose PSP outcome stayed unknown (answer lost, and the PSP
//! could not be asked either) is asked about again on the configured schedule until the PSP
//! gives a final answer -- captured: the normal path (SUCCESS, ledger, wallet); no such
//! payment: FAILED, nothing charged. Both databases, both ways.

mod common;

use common::{assert_books_consistent, outage, quick_limits, wait_janitor};
use payments_domain::{PaymentOrderId, PaymentOrderStatus as S};
use payments_store::test_db::test_database_urls;
use payments_testkit::{Stack, StackOptions};

async fn stack(database_url: String) -> Stack {
    Stack::start(StackOptions { database_url: Some(database_url), waits: quick_limits(), ..StackOptions::new() }).await
}

async fn statuses(stack: &Stack, po: &str) -> Vec<S> {
    stack.store.history(&PaymentOrderId::parse(po).unwrap()).await.unwrap().iter().map(|h| h.to_status).collect()
}

/// The capture's answer is lost and status queries fail: the order stays UNKNOWN (the checkout
/// is not done). When the PSP answers again the janitor finds the capture: SUCCESS, booked,
/// exactly one capture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janitor_finds_the_capture() {
    for url in test_database_urls().await {
        let stack = stack(url).await;
        outage(&stack, false, true, false).await;
        let (checkout, po) = stack.post_one_order("pm_card_sim_lost_response", "9.99", "USD").await;
        wait_janitor(&stack, &checkout, &po).await;
        let record = stack.store.checkout(&payments_domain::CheckoutId::parse(&checkout).unwrap()).await.unwrap();
        assert!(!record.unwrap().is_payment_done, "UNKNOWN is not done");
        outage(&stack, false, false, false).await;
        let done = stack.wait_done(&checkout).await;
        assert_eq!(done.orders[0].status, S::Success);
        assert!(done.orders[0].wallet_updated && done.orders[0].ledger_updated);
        assert_eq!(stack.captures(&po).await.len(), 1);
        assert_eq!(statuses(&stack, &po).await, vec![S::NotStarted, S::Executing, S::Unknown, S::Success]);
        assert_books_consistent(&stack).await;
        stack.shutdown().await;
    }
}

/// The PSP is down for charges and queries alike: the charge's retries run out, the order is
/// UNKNOWN (never guessed FAILED). When the PSP is back the janitor learns it has no such
/// payment: FAILED `psp_no_payment`, nothing captured, nothing booked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janitor_finds_no_payment() {
    for url in test_database_urls().await {
        let stack = stack(url).await;
        outage(&stack, true, true, false).await;
        let (checkout, po) = stack.post_one_order("pm_card_visa", "9.99", "USD").await;
        wait_janitor(&stack, &checkout, &po).await;
        outage(&stack, false, false, false).await;
        let done = stack.wait_done(&checkout).await;
        assert_eq!(done.orders[0].status, S::Failed);
        assert_eq!(done.orders[0].failure_code.as_deref(), Some("psp_no_payment"));
        assert!(!done.orders[0].wallet_updated && !done.orders[0].ledger_updated);
        assert!(stack.captures(&po).await.is_empty());
        assert_eq!(statuses(&stack, &po).await, vec![S::NotStarted, S::Executing, S::Unknown, S::Failed]);
        assert_books_consistent(&stack).await;
        stack.shutdown().await;
    }
}
