//! Helpers shared by the failure-path tests (refunds, compensation, dead letters, janitor):
//! running `paymentsctl` through its library, refunds over REST, the simulator's outage
//! switch, and waiting on stored state with a bound.
//!
//! The webhook tests (`webhooks.rs` for Stripe, `webhooks_toss.rs` for Toss) share the rest:
//! stacks with a long PSP pending deadline, posting to `/webhooks/{psp}`, the simulator's
//! deliveries and reviews, the stored webhook rows, and a checkout workflow's Temporal state.
#![allow(dead_code)] // each test binary uses a different subset

use payments_domain::{PaymentOrderId, PaymentOrderStatus};
use payments_store::{DeadLetterRecord, DeadLetterStatus, RefundId, RefundRecord, RefundStatus};
use payments_testkit::Stack;
use payments_workflows::messages::WaitLimits;
use serde_json::{Value, json};
use std::time::Duration;

// Used by the webhook helpers below.
use payments_testkit::StackOptions;
use payments_workflows::CheckoutWorkflow;
use temporalio_client::{Client, WorkflowDescribeOptions, WorkflowExecutionStatus, WorkflowFetchHistoryOptions};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

/// How long a test waits for a refund, a dead letter or the janitor.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Limits that make failure paths quick: 2 attempts per PSP call (about 0.5 s of backoff), the
/// janitor asking every second.
pub fn quick_limits() -> WaitLimits {
    WaitLimits { psp_attempts_max: 2, unknown_recheck_secs: [1, 1, 1], ..WaitLimits::DEFAULT }
}

/// Runs `paymentsctl <args>` through its library against this stack (gRPC gateway and
/// database); an error is the command's failure, as the binary would exit non-zero.
pub async fn paymentsctl(stack: &Stack, args: &[&str]) -> Result<(), String> {
    use clap::Parser;
    let globals = [
        "paymentsctl",
        "--gateway-grpc",
        &stack.grpc_url,
        "--gateway",
        &stack.rest_url,
        "--api-key",
        &stack.payments_key,
        "--admin-key",
        &stack.admin_key,
    ];
    let argv = globals.into_iter().chain(["--database-url", &stack.database_url]).chain(args.iter().copied());
    let cli = paymentsctl::Cli::try_parse_from(argv).expect("command line parses");
    paymentsctl::run(cli).await.map_err(|e| format!("{e:#}"))
}

/// `paymentsctl verify` must say the books are consistent: every transaction and the ledger
/// balance per currency, every wallet equals its ledger projection.
pub async fn assert_books_consistent(stack: &Stack) {
    if let Err(e) = paymentsctl(stack, &["verify"]).await {
        panic!("paymentsctl verify: {e}");
    }
}

/// Posts a one-order checkout and waits until it is done; answers the order id.
pub async fn paid_order(stack: &Stack, token: &str, amount: &str, currency: &str) -> String {
    let (checkout, po) = stack.post_one_order(token, amount, currency).await;
    let done = stack.wait_done(&checkout).await;
    assert_eq!(done.orders[0].status, PaymentOrderStatus::Success, "{done:?}");
    po
}

/// `POST /v1/payments/{po}/refunds`; answers status and body.
pub async fn post_refund(stack: &Stack, po: &str, amount: Option<&str>, reason: &str) -> (u16, Value) {
    let mut body = json!({ "reason": reason });
    if let Some(a) = amount {
        body["amount"] = json!(a);
    }
    let resp = stack
        .http
        .post(format!("{}/v1/payments/{po}/refunds", stack.rest_url))
        .json(&body)
        .send()
        .await
        .expect("POST refunds");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Posts a refund that must be accepted; answers its id.
pub async fn refund_accepted(stack: &Stack, po: &str, amount: Option<&str>, reason: &str) -> RefundId {
    let (status, body) = post_refund(stack, po, amount, reason).await;
    assert_eq!(status, 202, "{body}");
    RefundId::parse(body["refund_id"].as_str().expect("refund_id")).expect("refund id")
}

/// Waits until the refund leaves REQUESTED; answers it.
pub async fn wait_refund_final(stack: &Stack, id: &RefundId) -> RefundRecord {
    stack
        .poll_until(&format!("refund {id} to finish"), STATE_TIMEOUT, || async {
            stack.store.refund(id).await.ok().flatten().filter(|r| r.status != RefundStatus::Requested)
        })
        .await
}

/// Waits until the order reaches `status`.
pub async fn wait_order_status(stack: &Stack, po: &str, status: PaymentOrderStatus) {
    let id = PaymentOrderId::parse(po).expect("order id");
    stack
        .poll_until(&format!("order {po} to be {status}"), STATE_TIMEOUT, || async {
            stack.store.order(&id).await.ok().flatten().filter(|o| o.status == status).map(|_| ())
        })
        .await
}

/// Waits until the dead letter exists with `status` and at least `attempts` attempts.
pub async fn wait_dead_letter(stack: &Stack, id: &str, status: DeadLetterStatus, attempts: i64) -> DeadLetterRecord {
    stack
        .poll_until(&format!("dead letter {id} to be {}", status.as_str()), STATE_TIMEOUT, || async {
            stack.store.dead_letter(id).await.ok().flatten().filter(|d| d.status == status && d.attempts >= attempts)
        })
        .await
}

/// How many workflows Temporal's visibility lists for `query` (e.g. a search attribute).
pub async fn visible(stack: &Stack, query: &str) -> usize {
    let client = payments_worker::temporal::connect(&stack.temporal_address, "default").await.expect("temporal");
    client.count_workflows(query.to_owned(), Default::default()).await.expect("count workflows").count()
}

/// Waits until the checkout's workflow is in the janitor's hands (`PaymentStatus = UNKNOWN`
/// in visibility; set only once the inline status queries have given up).
pub async fn wait_janitor(stack: &Stack, checkout: &str, po: &str) {
    wait_order_status(stack, po, PaymentOrderStatus::Unknown).await;
    let query = format!("WorkflowId = 'checkout-{checkout}' AND PaymentStatus = 'UNKNOWN'");
    stack
        .poll_until("the janitor to take over", STATE_TIMEOUT, || async {
            (visible(stack, &query).await == 1).then_some(())
        })
        .await;
}

// Helpers of the webhook tests (Stripe and Toss).

/// Pending deadline of every `long_pending` stack: far beyond any test's bound.
pub const PENDING_SECS: u64 = 600;
/// Bound for the workflow to take in what it was sent.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound for the simulator to deliver its events.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Stack options for `provider` with a PSP pending deadline of `PENDING_SECS`: a pending
/// checkout that finishes within a test's bounds was woken by a webhook.
pub fn long_pending(provider: &str) -> StackOptions {
    StackOptions {
        psp_provider: provider.to_owned(),
        waits: WaitLimits { psp_pending_secs: PENDING_SECS, ..WaitLimits::DEFAULT },
        ..StackOptions::new()
    }
}

/// Resolves a review at the simulator (`/_sim/review/{id}`).
pub async fn resolve_review(stack: &Stack, payment: &str, result: &str) {
    let resp = stack
        .http
        .post(format!("{}/_sim/review/{payment}", stack.sim_url))
        .json(&json!({"result": result}))
        .send()
        .await
        .expect("POST /_sim/review");
    assert!(resp.status().is_success(), "review {payment} {result}: {}", resp.status());
}

/// The simulator's webhook delivery attempts, oldest first.
pub async fn deliveries(stack: &Stack) -> Vec<Value> {
    let body: Value = stack
        .http
        .get(format!("{}/_sim/webhooks", stack.sim_url))
        .send()
        .await
        .expect("GET /_sim/webhooks")
        .json()
        .await
        .expect("json");
    body["deliveries"].as_array().cloned().unwrap_or_default()
}

/// Waits until the simulator has delivered (2xx) at least `n` events of type `kind`; answers
/// their event ids in delivery order.
pub async fn delivered(stack: &Stack, kind: &str, n: usize) -> Vec<String> {
    stack
        .poll_until(&format!("{n} {kind} webhook(s) to be delivered"), DELIVERY_TIMEOUT, || async {
            let ids: Vec<String> = deliveries(stack)
                .await
                .iter()
                .filter(|d| d["type"] == kind && d["status_code"].as_u64().is_some_and(|s| (200..300).contains(&s)))
                .filter_map(|d| d["event_id"].as_str().map(str::to_owned))
                .collect();
            (ids.len() >= n).then_some(ids)
        })
        .await
}

/// Rows of `webhook_event` for `psp` whose payload is exactly `payload`.
pub async fn rows_with_payload(stack: &Stack, psp: &str, payload: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM webhook_event WHERE psp = $1 AND payload = $2")
        .bind(psp.to_owned())
        .bind(payload.to_owned())
        .fetch_one(stack.store.pool())
        .await
        .expect("count webhook rows")
}

/// A Temporal client on the stack's server, namespace `default`.
pub async fn temporal(stack: &Stack) -> Client {
    payments_worker::temporal::connect(&stack.temporal_address, "default").await.expect("temporal")
}

/// Waits until the checkout's workflow has no workflow task pending; answers whether it is
/// still running.
pub async fn settled(stack: &Stack, temporal: &Client, checkout_id: &str) -> bool {
    let handle = temporal.get_workflow_handle::<CheckoutWorkflow>(format!("checkout-{checkout_id}"));
    stack
        .poll_until(&format!("checkout {checkout_id}'s workflow to settle"), SETTLE_TIMEOUT, || async {
            let d = handle.describe(WorkflowDescribeOptions::default()).await.ok()?;
            d.raw().pending_workflow_task.is_none().then(|| d.status() == WorkflowExecutionStatus::Running)
        })
        .await
}

/// How many timers fired in the checkout's workflow (a wait that ended at its deadline fires
/// one; a wait ended by a signal fires none).
pub async fn fired_timers(temporal: &Client, checkout_id: &str) -> usize {
    let handle = temporal.get_workflow_handle::<CheckoutWorkflow>(format!("checkout-{checkout_id}"));
    let events = handle.fetch_history(WorkflowFetchHistoryOptions::default()).into_events().await.expect("history");
    events.iter().filter(|e| matches!(&e.attributes, Some(Attributes::TimerFiredEventAttributes(_)))).count()
}

/// How many `psp_event` signals the checkout's workflow received.
pub async fn psp_signals(temporal: &Client, checkout_id: &str) -> usize {
    let handle = temporal.get_workflow_handle::<CheckoutWorkflow>(format!("checkout-{checkout_id}"));
    let events = handle.fetch_history(WorkflowFetchHistoryOptions::default()).into_events().await.expect("history");
    events
        .iter()
        .filter(|e| {
            matches!(&e.attributes, Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) if a.signal_name == "psp_event")
        })
        .count()
}

/// The stored payment order `po`.
pub async fn order(stack: &Stack, po: &str) -> payments_store::OrderRecord {
    stack.store.order(&PaymentOrderId::parse(po).unwrap()).await.unwrap().expect("order")
}

/// POSTs `body` to `/webhooks/{psp}` with `headers`; answers the status and JSON body.
pub async fn post_webhook(stack: &Stack, psp: &str, body: &str, headers: &[(&str, String)]) -> (u16, Value) {
    let mut request = stack
        .http
        .post(format!("{}/webhooks/{psp}", stack.rest_url))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let resp = request.send().await.expect("POST /webhooks");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A gRPC `CreatePayment` for checkout `checkout_id`: one USD order `{checkout_id}-1` of
/// `amount` to `seller-a`, paid with `pm_card_visa`.
pub fn grpc_one_order(checkout_id: &str, amount: &str) -> payments_proto::payments_v1::CreatePaymentRequest {
    use payments_proto::payments_v1 as pb;
    pb::CreatePaymentRequest {
        checkout_id: checkout_id.to_owned(),
        buyer_info: Some(pb::BuyerInfo { buyer_id: "buyer-1".into(), ..Default::default() }),
        credit_card_info: Some(pb::CreditCardInfo { token: "pm_card_visa".into() }),
        payment_orders: vec![pb::PaymentOrderRequest {
            seller_account: "seller-a".into(),
            amount: amount.into(),
            currency: "USD".into(),
            payment_order_id: format!("{checkout_id}-1"),
        }],
    }
}

/// Pays hosted checkout `checkout` of `amount` KRW as a buyer would: an authenticated payment
/// at the PSP (the simulator's payment session, what its pay page makes), then the PSP's
/// redirect to our success page, which confirms it; answers the payment key.
pub async fn pay_hosted(stack: &Stack, checkout: &str, amount: i64) -> String {
    let key = stack.toss_payment_session(checkout, amount).await;
    let success =
        format!("{}/checkout/{checkout}/success?paymentKey={key}&orderId={checkout}&amount={amount}", stack.rest_url);
    let resp = stack.http.get(success).send().await.expect("GET success page");
    assert!(resp.status().is_success(), "success page: {}", resp.status());
    key
}
