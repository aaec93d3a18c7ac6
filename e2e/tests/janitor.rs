//! The UNKNOWN janitor: an order whose PSP outcome stayed unknown (answer lost, and the PSP
//! could not be asked either) is asked about again on the configured schedule until the PSP
//! gives a final answer -- captured: the normal path (SUCCESS, ledger, wallet); no such
//! payment: FAILED, nothing charged -- and a lagging search's miss is never taken for "no
//! such payment" (Stripe). Both databases.

mod common;

use common::{assert_books_consistent, quick_limits, wait_janitor};
use payments_domain::{PaymentOrderId, PaymentOrderStatus as S};
use payments_testkit::{Db, Stack, StackOptions};
use rstest::rstest;

fn options(database_url: String) -> StackOptions {
    StackOptions { database_url: Some(database_url), waits: quick_limits(), ..StackOptions::new() }
}

async fn stack(database_url: String) -> Stack {
    Stack::start(options(database_url)).await
}

async fn statuses(stack: &Stack, po: &str) -> Vec<S> {
    stack.store.history(&PaymentOrderId::parse(po).unwrap()).await.unwrap().iter().map(|h| h.to_status).collect()
}

/// The capture's answer is lost and status queries fail: the order stays UNKNOWN (the checkout
/// is not done). When the PSP answers again the janitor finds the capture: SUCCESS, booked,
/// exactly one capture.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janitor_finds_the_capture(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let (stack, po) = lost_capture_found_by_the_janitor(options(url)).await;
    assert_eq!(statuses(&stack, &po).await, vec![S::NotStarted, S::Executing, S::Unknown, S::Success]);
    stack.shutdown().await;
}

/// The PSP is down for charges and queries alike: the charge's retries run out, the order is
/// UNKNOWN (never guessed FAILED). When the PSP is back the janitor learns it has no such
/// payment -- Toss reads by order id, a consistent "no": FAILED `psp_no_payment`, nothing
/// captured, nothing booked.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janitor_finds_no_payment(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let options = StackOptions { psp_provider: "toss".into(), ..options(url) };
    let stack = Stack::start(options).await;
    stack.psp_outage(true, true, false).await;
    let (checkout, po) = stack.post_one_order("billing_success", "9900", "KRW").await;
    wait_janitor(&stack, &checkout, &po).await;
    stack.psp_outage(false, false, false).await;
    let done = stack.wait_done(&checkout).await;
    assert_eq!(done.orders[0].status, S::Failed);
    assert_eq!(done.orders[0].failure_code.as_deref(), Some("psp_no_payment"));
    assert!(!done.orders[0].wallet_updated && !done.orders[0].ledger_updated);
    assert!(stack.captures(&po).await.is_empty());
    assert_eq!(statuses(&stack, &po).await, vec![S::NotStarted, S::Executing, S::Unknown, S::Failed]);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// Stripe finds a payment by our order id only through its Search API, which may lag behind
/// writes: a miss soon after our last request proves nothing. While Stripe still holds the
/// order's key the janitor sends the charge again with it -- Stripe replays the first request's
/// outcome, or makes the charge if it never arrived. Charges and queries down, then back: one
/// capture, SUCCESS, booked.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn janitor_resends_while_the_key_lives(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url).await;
    stack.psp_outage(true, true, false).await;
    let (checkout, po) = stack.post_one_order("pm_card_visa", "9.99", "USD").await;
    wait_janitor(&stack, &checkout, &po).await;
    stack.psp_outage(false, false, false).await;
    let done = stack.wait_done(&checkout).await;
    assert_eq!(done.orders[0].status, S::Success);
    assert_eq!(stack.captures(&po).await.len(), 1);
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// Point 6 of the money-safety issue: the capture happened (its answer was lost) but Stripe's
/// search has not indexed it yet when the janitor asks. Taking that miss as proof would end the
/// order FAILED `psp_no_payment` with the buyer's money captured and booked nowhere. Within the
/// key's lifetime the janitor re-sends under the key instead: Stripe replays the capture.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_miss_is_not_proof_of_no_payment(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let mut options = options(url);
    options.sim.stripe_search_lag_ms = 15_000;
    let (stack, _) = lost_capture_found_by_the_janitor(options).await;
    stack.shutdown().await;
}

/// After the key's lifetime a resend could charge again, so the janitor does not send; it
/// counts a search miss only once the configured lag has passed since the last request, by
/// which time the search shows the capture. (Keys live 1 s here, the search lags 6 s, and the
/// worker trusts a miss 10 s after the last request.) One capture, SUCCESS.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_key_lifetime_a_miss_counts_only_after_the_lag(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let mut options = options(url);
    options.sim.stripe_idempotency_key_ttl_ms = 1_000;
    options.sim.stripe_search_lag_ms = 6_000;
    options.psp_key_ttl_secs = Some(1);
    options.psp_search_lag_secs = Some(10);
    let (stack, po) = lost_capture_found_by_the_janitor(options).await;
    // A resend while the key lives is allowed (a workflow task retried under load re-runs
    // its charge, which the PSP replays); none may come after.
    let arrivals: Vec<u64> =
        stack.sim_requests(&po).await.iter().filter_map(|r| r["received_at_ms"].as_u64()).collect();
    let first = arrivals.first().copied().expect("the charge reached the PSP");
    assert!(arrivals.iter().all(|t| t - first < 1_000), "re-sent after the key's lifetime: {arrivals:?}");
    stack.shutdown().await;
}

/// A capture whose answer is lost while lookups are down: the janitor holds the order; once
/// lookups are back it must end SUCCESS, booked, with exactly one capture. Answers the stack
/// (still running) and the order id.
async fn lost_capture_found_by_the_janitor(options: StackOptions) -> (Stack, String) {
    let stack = Stack::start(options).await;
    stack.psp_outage(false, true, false).await;
    let (checkout, po) = stack.post_one_order("pm_card_sim_lost_response", "9.99", "USD").await;
    wait_janitor(&stack, &checkout, &po).await;
    let record = stack.store.checkout(&payments_domain::CheckoutId::parse(&checkout).unwrap()).await.unwrap();
    assert!(!record.unwrap().is_payment_done, "UNKNOWN is not done");
    stack.psp_outage(false, false, false).await;
    let done = stack.wait_done(&checkout).await;
    assert_eq!(done.orders[0].status, S::Success, "{done:?}");
    assert!(done.orders[0].wallet_updated && done.orders[0].ledger_updated);
    assert_eq!(stack.captures(&po).await.len(), 1);
    assert_books_consistent(&stack).await;
    (stack, po)
}
