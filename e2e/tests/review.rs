//! Checkouts held for an operator's review by the risk rules (`RISK_REVIEW_LIMITS`): they wait
//! in phase `AWAITING_REVIEW` (searchable in Temporal by `CheckoutId` and `PaymentStatus`)
//! without touching the PSP until a decision arrives through gRPC
//! `payments.v1.AdminService/DecideReview` (or `paymentsctl review`): approved -> charged as
//! usual, rejected -> FAILED `risk_review_rejected`, no decision in time -> FAILED
//! `risk_review_expired`. Decisions for checkouts not awaiting review are refused.

use clap::Parser as _;
use payments_domain::{CheckoutId, PaymentOrderId, PaymentOrderStatus as S};
use payments_proto::payments_v1::DecideReviewRequest;
use payments_testkit::{Db, Stack, StackOptions, unique};
use payments_workflows::CheckoutWorkflow;
use payments_workflows::messages::WaitLimits;
use paymentsctl::admin::AdminClient;
use rstest::rstest;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use temporalio_client::{Client, WorkflowFetchHistoryOptions};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use tonic::Code;

/// Orders above this many KRW are held for review.
const REVIEW_LIMIT: &str = "KRW:10000";

fn reviewing(review_secs: u64) -> StackOptions {
    StackOptions {
        risk_review_limits: REVIEW_LIMIT.to_owned(),
        waits: WaitLimits { review_secs, ..WaitLimits::DEFAULT },
        ..StackOptions::new()
    }
}

/// Posts a one-order KRW checkout; answers its id and the order's id.
async fn post(stack: &Stack, token: &str, amount: &str) -> (String, String) {
    let id = unique("chk");
    let po = format!("{id}-1");
    let body: Value = json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": token},
        "payment_orders": [{"seller_account": "seller-a", "amount": amount, "currency": "KRW", "payment_order_id": po}],
    });
    let (status, answer) = stack.post_payment(&body).await;
    assert_eq!(status, 202, "{answer}");
    (id, po)
}

async fn temporal(stack: &Stack) -> Client {
    payments_worker::temporal::connect(&stack.temporal_address, "default").await.expect("temporal")
}

async fn count(temporal: &Client, query: &str) -> Option<usize> {
    temporal.count_workflows(query.to_owned(), Default::default()).await.ok().map(|c| c.count())
}

/// Waits until Temporal's visibility finds the checkout in `phase` (`PaymentStatus`) by its
/// `CheckoutId`.
async fn wait_phase(stack: &Stack, temporal: &Client, checkout_id: &str, phase: &str) {
    let query = format!("CheckoutId = '{checkout_id}' AND PaymentStatus = '{phase}'");
    stack
        .poll_until(&query, Duration::from_secs(30), || async { (count(temporal, &query).await? == 1).then_some(()) })
        .await
}

/// How many messages (signals, or accepted updates) named `name` the checkout's workflow
/// received.
async fn signals(temporal: &Client, checkout_id: &str, name: &str) -> usize {
    let handle = temporal.get_workflow_handle::<CheckoutWorkflow>(format!("checkout-{checkout_id}"));
    let events = handle.fetch_history(WorkflowFetchHistoryOptions::default()).into_events().await.expect("history");
    events
        .iter()
        .filter(|e| {
            matches!(&e.attributes, Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) if a.signal_name == name)
                || matches!(&e.attributes, Some(Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a))
                    if a.accepted_request.as_ref().and_then(|r| r.input.as_ref()).is_some_and(|i| i.name == name))
        })
        .count()
}

async fn admin(stack: &Stack) -> AdminClient {
    stack.admin_grpc().await
}

fn decision(checkout_id: &str, approve: bool, reason: &str, operator: &str) -> DecideReviewRequest {
    DecideReviewRequest {
        checkout_id: checkout_id.to_owned(),
        approve,
        reason: reason.to_owned(),
        operator: operator.to_owned(),
    }
}

async fn order(stack: &Stack, po: &str) -> payments_store::OrderRecord {
    stack.store.order(&PaymentOrderId::parse(po).unwrap()).await.unwrap().expect("order")
}

/// Nothing reached the PSP for this order: no request under its idempotency key, no capture.
async fn untouched_at_psp(stack: &Stack, po: &str) {
    assert!(stack.sim_requests(po).await.is_empty(), "{po} reached the PSP");
    assert!(stack.captures(po).await.is_empty(), "{po} was captured");
}

/// Waits until the checkout is held: visible as `AWAITING_REVIEW` by its `CheckoutId`, its
/// order still NOT_STARTED and untouched at the PSP.
async fn held(stack: &Stack, temporal: &Client, id: &str, po: &str) {
    wait_phase(stack, temporal, id, "AWAITING_REVIEW").await;
    assert_eq!(stack.workflow_runs(&format!("checkout-{id}")).await, 1, "one workflow run for {id}");
    assert_eq!(order(stack, po).await.status, S::NotStarted);
    untouched_at_psp(stack, po).await;
}

/// An approved review is charged as usual: a checkout above the review limit waits in
/// `AWAITING_REVIEW` (found by its `CheckoutId` and `PaymentStatus` search attributes) with
/// nothing sent to the PSP, DecideReview(approve) answers the phase it found, and the order
/// ends SUCCESS with one capture and consistent books (phase `DONE`). A checkout below the limit
/// is not held at all.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_review_is_charged(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack =
        Stack::start(StackOptions { database_url: Some(url), ..reviewing(WaitLimits::DEFAULT.review_secs) }).await;
    let temporal = temporal(&stack).await;
    let (small, small_po) = post(&stack, "pm_card_visa", "10000").await;
    let (id, po) = post(&stack, "pm_card_visa", "20000").await;

    assert_eq!(stack.wait_done(&small).await.orders[0].status, S::Success, "at the limit: not held");
    assert_eq!(stack.captures(&small_po).await.len(), 1);

    held(&stack, &temporal, &id, &po).await;
    let answer = admin(&stack)
        .await
        .decide_review(decision(&id, true, "buyer verified by phone", "alice"))
        .await
        .expect("decide")
        .into_inner();
    assert_eq!((answer.checkout_id.as_str(), answer.phase.as_str()), (id.as_str(), "AWAITING_REVIEW"));

    let done = stack.wait_done(&id).await;
    assert_eq!(done.orders[0].status, S::Success);
    assert!(done.orders[0].wallet_updated && done.orders[0].ledger_updated);
    assert_eq!(stack.captures(&po).await.len(), 1);
    assert_eq!(signals(&temporal, &id, "review_decision").await, 1);
    wait_phase(&stack, &temporal, &id, "DONE").await;
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent() && report.transactions == 2, "{report:?}");
    stack.shutdown().await;
}

/// A rejected review fails every order with `risk_review_rejected`, the operator and reason in
/// the failure message, and nothing is sent to the PSP, credited or booked.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_review_fails_without_charging(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack =
        Stack::start(StackOptions { database_url: Some(url), ..reviewing(WaitLimits::DEFAULT.review_secs) }).await;
    let temporal = temporal(&stack).await;
    let (id, po) = post(&stack, "pm_card_visa", "20000").await;
    held(&stack, &temporal, &id, &po).await;

    let answer = admin(&stack)
        .await
        .decide_review(decision(&id, false, "card reported stolen", "bob"))
        .await
        .expect("decide")
        .into_inner();
    assert_eq!(answer.phase, "AWAITING_REVIEW");
    let done = stack.wait_done(&id).await;
    let o = &done.orders[0];
    assert_eq!((o.status, o.failure_code.as_deref()), (S::Failed, Some("risk_review_rejected")));
    let message = o.failure_message.as_deref().unwrap_or_default();
    assert!(message.contains("bob") && message.contains("card reported stolen"), "{message}");
    assert!(!o.wallet_updated && !o.ledger_updated);
    untouched_at_psp(&stack, &po).await;
    let history: Vec<S> = stack
        .store
        .history(&PaymentOrderId::parse(po.clone()).unwrap())
        .await
        .unwrap()
        .iter()
        .map(|h| h.to_status)
        .collect();
    assert_eq!(history, vec![S::NotStarted, S::Failed]);
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent() && report.transactions == 0, "{report:?}");
    stack.shutdown().await;
}

/// A review nobody decides expires after `review_secs` (2 s here, measured: not before): every
/// order FAILED `risk_review_expired`, nothing sent to the PSP; a decision arriving afterwards
/// is refused with INVALID_ARGUMENT and changes nothing.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_review_expires(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..reviewing(2) }).await;
    let posted = Instant::now();
    let (id, po) = post(&stack, "pm_card_visa", "20000").await;
    let done = stack.wait_done(&id).await;
    assert!(posted.elapsed() >= Duration::from_secs(2), "expired after {:?}", posted.elapsed());
    let o = &done.orders[0];
    assert_eq!((o.status, o.failure_code.as_deref()), (S::Failed, Some("risk_review_expired")));
    untouched_at_psp(&stack, &po).await;

    let late = admin(&stack).await.decide_review(decision(&id, true, "too late", "alice")).await;
    let status = late.expect_err("a decision after expiry is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("not awaiting review"), "{status:?}");
    assert_eq!(order(&stack, &po).await.status, S::Failed);
    untouched_at_psp(&stack, &po).await;
    stack.shutdown().await;
}

/// DecideReview refuses what it cannot deliver: a running checkout that is not held (below the
/// limit, waiting for 3-D Secure) and a finished one -> INVALID_ARGUMENT, and the workflow gets
/// no decision (no `review_decision` signal; the 3-D Secure payment then completes normally);
/// an unknown checkout -> NOT_FOUND; a blank reason or operator, or an invalid checkout id ->
/// INVALID_ARGUMENT.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_for_checkouts_not_awaiting_review_are_refused(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack =
        Stack::start(StackOptions { database_url: Some(url), ..reviewing(WaitLimits::DEFAULT.review_secs) }).await;
    let temporal = temporal(&stack).await;
    let mut admin = admin(&stack).await;

    // Running, but waiting for the buyer's 3-D Secure challenge, not for an operator.
    let (pending, pending_po) = post(&stack, "pm_card_threeDSecure2Required", "5000").await;
    wait_phase(&stack, &temporal, &pending, "AWAITING_PSP").await;
    let refused = admin.decide_review(decision(&pending, true, "ok", "alice")).await.expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("not awaiting review"), "{refused:?}");
    assert_eq!(signals(&temporal, &pending, "review_decision").await, 0);
    assert_eq!(order(&stack, &pending_po).await.status, S::Executing);

    // Finished.
    let (finished, _) = post(&stack, "pm_card_visa", "5000").await;
    assert_eq!(stack.wait_done(&finished).await.orders[0].status, S::Success);
    let refused = admin.decide_review(decision(&finished, false, "no", "alice")).await.expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");

    let unknown = admin.decide_review(decision(&unique("chk-none"), true, "ok", "alice")).await.expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    for (why, request) in [
        ("blank reason", decision(&pending, true, "  ", "alice")),
        ("blank operator", decision(&pending, true, "ok", "")),
        ("invalid id", decision("", true, "ok", "alice")),
    ] {
        let refused = admin.decide_review(request).await.expect_err(why);
        assert_eq!(refused.code(), Code::InvalidArgument, "{why}: {refused:?}");
    }
    assert_eq!(signals(&temporal, &pending, "review_decision").await, 0);

    // The pending payment was not disturbed.
    assert!(stack.captures(&pending_po).await.is_empty());
    let pi = stack.psp_payment_id("stripe", &pending_po).await;
    let resp = stack
        .http
        .post(format!("{}/_sim/3ds/{pi}", stack.sim_url))
        .json(&json!({"result": "approve"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(stack.wait_done(&pending).await.orders[0].status, S::Success);
    assert_eq!(stack.captures(&pending_po).await.len(), 1);
    stack.shutdown().await;
}

/// Runs `paymentsctl <args>` through its library against this stack's gRPC gateway; an error
/// is rendered as the binary prints it before exiting 1.
async fn paymentsctl(stack: &Stack, args: &[&str]) -> Result<(), String> {
    let argv = ["paymentsctl", "--gateway-grpc", &stack.grpc_url, "--admin-key", &stack.admin_key]
        .into_iter()
        .chain(args.iter().copied());
    let cli = paymentsctl::Cli::try_parse_from(argv).expect("command line parses");
    paymentsctl::run(cli).await.map_err(|e| format!("{e:#}"))
}

/// `paymentsctl review approve|reject` delivers the operator's decision through the gateway's
/// gRPC AdminService: an approved checkout ends SUCCESS, a rejected one FAILED
/// `risk_review_rejected` naming the operator and reason; deciding again on a finished
/// checkout, or on an unknown one, fails with a message saying so (the binary exits 1).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paymentsctl_review_decides_through_the_gateway(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack =
        Stack::start(StackOptions { database_url: Some(url), ..reviewing(WaitLimits::DEFAULT.review_secs) }).await;
    let temporal = temporal(&stack).await;
    let (approved, approved_po) = post(&stack, "pm_card_visa", "20000").await;
    let (rejected, rejected_po) = post(&stack, "pm_card_visa", "30000").await;
    held(&stack, &temporal, &approved, &approved_po).await;
    held(&stack, &temporal, &rejected, &rejected_po).await;

    paymentsctl(&stack, &["review", "approve", &approved, "--reason", "known buyer", "--operator", "carol"])
        .await
        .expect("approve");
    paymentsctl(&stack, &["review", "reject", &rejected, "--reason", "mismatched address", "--operator", "carol"])
        .await
        .expect("reject");

    let done = stack.wait_done(&approved).await;
    assert_eq!(done.orders[0].status, S::Success);
    assert_eq!(stack.captures(&approved_po).await.len(), 1);
    let done = stack.wait_done(&rejected).await;
    let o = &done.orders[0];
    assert_eq!((o.status, o.failure_code.as_deref()), (S::Failed, Some("risk_review_rejected")));
    let message = o.failure_message.as_deref().unwrap_or_default();
    assert!(message.contains("carol") && message.contains("mismatched address"), "{message}");
    untouched_at_psp(&stack, &rejected_po).await;

    let again = paymentsctl(&stack, &["review", "reject", &approved, "--reason", "changed my mind"]).await;
    let err = again.expect_err("not awaiting review any more");
    assert!(err.contains("refused") && err.contains("not awaiting review"), "{err}");
    let nobody = unique("chk-none");
    let err = paymentsctl(&stack, &["review", "approve", &nobody, "--reason", "x"]).await.expect_err("unknown");
    assert!(err.contains(&nobody) && err.contains("not found"), "{err}");
    assert_eq!(
        stack.store.checkout(&CheckoutId::parse(approved).unwrap()).await.unwrap().unwrap().orders[0].status,
        S::Success
    );
    stack.shutdown().await;
}
