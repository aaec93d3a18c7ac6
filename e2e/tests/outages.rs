//! No outage, however long, ends a workflow with money in flight (point 4 of the money-safety
//! issue). With short policies (one attempt per run of a database step), the database goes
//! away right after the PSP captured the payment, for longer than every retry budget, then
//! comes back: the checkout ends SUCCESS and booked, one capture, its workflow never failed.
//! PostgreSQL is cut at the network (a proxy refusing connections); SQLite is locked by
//! another writer. Both databases, real Temporal and simulator.

mod common;

use common::{assert_books_consistent, paid_order, quick_limits, wait_order_status, wait_refund_final};
use payments_domain::PaymentOrderStatus as S;
use payments_store::RefundStatus;
use payments_testkit::{Db, Stack, StackOptions};
use payments_workflows::messages::WaitLimits;
use rstest::rstest;
use std::time::Duration;
use temporalio_client::{WorkflowDescribeOptions, WorkflowExecutionStatus};

/// Longer than one run of a store step here (one attempt: a 10 s busy wait or connect
/// timeout) and its first re-runs: before the fix the workflow had failed by then.
const OUTAGE: Duration = Duration::from_secs(25);
/// How long a test waits for the capture to reach the PSP.
const CAPTURE_TIMEOUT: Duration = Duration::from_secs(30);

fn options(database_url: String) -> StackOptions {
    let mut options = StackOptions {
        database_url: Some(database_url),
        waits: WaitLimits { store_attempts_max: 1, ..quick_limits() },
        database_proxy: true,
        ..StackOptions::new()
    };
    // The capture's answer is held back 3 s: the database goes away while it is in flight.
    options.sim.slow_response_ms = 3_000;
    options
}

async fn workflow_status(stack: &Stack, id: &str) -> WorkflowExecutionStatus {
    let temporal = stack.temporal().await;
    let handle = temporal.get_workflow_handle::<payments_workflows::CheckoutWorkflow>(id.to_owned());
    handle.describe(WorkflowDescribeOptions::default()).await.expect("describe").status()
}

/// The database goes away while the capture is in flight and stays away past every retry
/// budget; the PSP captures. Once it is back the order is recorded SUCCESS and booked.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_past_every_retry_budget_ends_booked(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(options(url)).await;
    let (checkout, po) = stack.post_one_order("pm_card_sim_slow", "12.34", "USD").await;
    wait_order_status(&stack, &po, S::Executing).await;
    let outage = stack.database_outage().await;
    stack
        .poll_until("the capture at the PSP", CAPTURE_TIMEOUT, || async {
            (stack.captures(&po).await.len() == 1).then_some(())
        })
        .await;
    tokio::time::sleep(OUTAGE).await;
    let workflow = format!("checkout-{checkout}");
    assert_eq!(workflow_status(&stack, &workflow).await, WorkflowExecutionStatus::Running, "never failed");
    outage.end(&stack).await;

    let done = stack.wait_done(&checkout).await;
    assert_eq!(done.orders[0].status, S::Success);
    assert!(done.orders[0].wallet_updated && done.orders[0].ledger_updated);
    assert_eq!(stack.captures(&po).await.len(), 1);
    stack
        .poll_until("the workflow to complete", CAPTURE_TIMEOUT, || async {
            (workflow_status(&stack, &workflow).await == WorkflowExecutionStatus::Completed).then_some(())
        })
        .await;
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// The same for a refund: the database goes away while the PSP is still refusing the refund
/// (down, retried); the PSP then refunds, and the booking meets the outage, past every retry
/// budget. Once the database is back the refund is booked SUCCEEDED, refunded once.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_during_a_refund_ends_booked(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let mut options = options(url);
    // Refund attempts back off 0.5 s, 1 s, 2 s, ...: the PSP comes back mid-outage.
    options.waits.psp_attempts_max = 10;
    let stack = Stack::start(options).await;
    let po = paid_order(&stack, "pm_card_visa", "20.00", "USD").await;
    stack.psp_outage(false, false, true).await;
    let refund = common::refund_accepted(&stack, &po, Some("5.00"), "damaged item").await;
    let outage = stack.database_outage().await;
    stack.psp_outage(false, false, false).await;
    stack
        .poll_until("the refund at the PSP", CAPTURE_TIMEOUT, || async {
            (stack.sim_refunds(&po).await.len() == 1).then_some(())
        })
        .await;
    tokio::time::sleep(OUTAGE).await;
    outage.end(&stack).await;
    assert_eq!(wait_refund_final(&stack, &refund).await.status, RefundStatus::Succeeded);
    assert_eq!(stack.sim_refunds(&po).await.len(), 1);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}
