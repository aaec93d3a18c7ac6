//! Dead letters: a refund whose PSP stays unreachable past its retries parks its workflow
//! (store row with reason, last error and attempts; `PaymentStatus = DEAD_LETTER` in Temporal's
//! visibility) until an operator acts with `paymentsctl dlq retry|resolve` (gRPC
//! AdminService), run here through its library; what the binary prints is checked in
//! `paymentsctl/tests/binary.rs`. Retry and resolve are idempotent. Both databases.

mod common;

use common::{
    assert_books_consistent, paid_order, paymentsctl, quick_limits, refund_accepted, visible, wait_dead_letter,
    wait_refund_final,
};
use payments_store::{DeadLetterStatus, RefundStatus};
use payments_testkit::{Db, Stack, StackOptions};
use rstest::rstest;

async fn stack(database_url: String) -> Stack {
    Stack::start(StackOptions { database_url: Some(database_url), waits: quick_limits(), ..StackOptions::new() }).await
}

/// PSP refunds down: the refund becomes a dead letter (2 attempts, last error from the PSP);
/// listed by `paymentsctl dlq list` and visible as DEAD_LETTER in Temporal. A retry while the
/// PSP is still down re-opens it with the attempts added up; once the PSP is back a retry
/// refunds exactly once and closes it; retrying again changes nothing.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_is_retried_once_the_psp_is_back(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url).await;
    let po = paid_order(&stack, "pm_card_visa", "20.00", "USD").await;
    stack.psp_outage(false, false, true).await;
    let refund = refund_accepted(&stack, &po, Some("5.00"), "damaged item").await;
    let dl_id = format!("{refund}:psp.refund");
    let letter = wait_dead_letter(&stack, &dl_id, DeadLetterStatus::Open, 2).await;
    assert_eq!(letter.attempts, 2, "{letter:?}");
    assert_eq!(letter.workflow_id, format!("refund-{refund}"));
    assert!(letter.reason.contains("after 2 attempts"), "{letter:?}");
    assert!(!letter.last_error.is_empty(), "{letter:?}");
    let query = format!("WorkflowId = 'refund-{refund}' AND PaymentStatus = 'DEAD_LETTER'");
    stack
        .poll_until("DEAD_LETTER in visibility", common::STATE_TIMEOUT, || async {
            (visible(&stack, &query).await == 1).then_some(())
        })
        .await;
    // What `dlq list` and `dlq show` print is checked on the binary (paymentsctl/tests/binary.rs).

    // Still down: the retry fails again; the same dead letter re-opens with 4 attempts.
    paymentsctl(&stack, &["dlq", "retry", &dl_id, "--reason", "PSP status page green", "--operator", "dana"])
        .await
        .expect("dlq retry");
    let letter = wait_dead_letter(&stack, &dl_id, DeadLetterStatus::Open, 4).await;
    assert_eq!(letter.attempts, 4, "{letter:?}");

    stack.psp_outage(false, false, false).await;
    paymentsctl(&stack, &["dlq", "retry", &dl_id, "--reason", "PSP back", "--operator", "dana"])
        .await
        .expect("dlq retry");
    assert_eq!(wait_refund_final(&stack, &refund).await.status, RefundStatus::Succeeded);
    let letter = wait_dead_letter(&stack, &dl_id, DeadLetterStatus::Resolved, 0).await;
    assert_eq!(letter.resolution.as_deref(), Some("retry succeeded"), "{letter:?}");
    paymentsctl(&stack, &["dlq", "retry", &dl_id, "--reason", "again", "--operator", "dana"])
        .await
        .expect("retrying a resolved dead letter is a no-op");
    paymentsctl(&stack, &["dlq", "resolve", &dl_id, "--reason", "again", "--operator", "dana"])
        .await
        .expect("resolving a resolved dead letter is a no-op");
    assert_eq!(stack.store.dead_letter(&dl_id).await.unwrap().unwrap(), letter, "unchanged");
    assert_eq!(stack.sim_refunds(&po).await.len(), 1, "refunded exactly once");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}

/// An operator resolves a dead letter (checked the PSP: nothing was refunded): the refund ends
/// FAILED `resolved_by_operator`, its amount is refundable again, the record keeps who and why,
/// and resolving again changes nothing.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_is_resolved_by_an_operator(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = stack(url).await;
    let po = paid_order(&stack, "pm_card_visa", "20.00", "USD").await;
    stack.psp_outage(false, false, true).await;
    let refund = refund_accepted(&stack, &po, None, "order cancelled").await;
    let dl_id = format!("{refund}:psp.refund");
    wait_dead_letter(&stack, &dl_id, DeadLetterStatus::Open, 2).await;
    let note = "PSP dashboard shows no refund; buyer refunded by bank transfer";
    paymentsctl(&stack, &["dlq", "resolve", &dl_id, "--reason", note, "--operator", "erin"])
        .await
        .expect("dlq resolve");
    let failed = wait_refund_final(&stack, &refund).await;
    assert_eq!((failed.status, failed.failure_code.as_deref()), (RefundStatus::Failed, Some("resolved_by_operator")));
    let letter = wait_dead_letter(&stack, &dl_id, DeadLetterStatus::Resolved, 0).await;
    assert_eq!((letter.resolved_by.as_deref(), letter.resolution.as_deref()), (Some("erin"), Some(note)));
    paymentsctl(&stack, &["dlq", "resolve", &dl_id, "--reason", "twice", "--operator", "erin"])
        .await
        .expect("idempotent resolve");
    assert_eq!(stack.store.dead_letter(&dl_id).await.unwrap().unwrap(), letter, "unchanged");
    assert!(stack.sim_refunds(&po).await.is_empty(), "nothing refunded at the PSP");

    stack.psp_outage(false, false, false).await;
    let again = refund_accepted(&stack, &po, None, "order cancelled").await;
    assert_eq!(wait_refund_final(&stack, &again).await.status, RefundStatus::Succeeded, "amount freed");
    assert_books_consistent(&stack).await;
    stack.shutdown().await;
}
