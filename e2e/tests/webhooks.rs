//! The Stripe side of the PSP webhook-to-signal bridge end to end (`POST /webhooks/stripe`):
//! signed events wake payments pending at the PSP, refused signatures leave no trace, each event
//! is handled once, and an event is only ever a hint (the workflow asks the PSP), so duplicated,
//! reordered or forged-but-signed events cannot move an order to SUCCESS. The Toss side is in
//! `webhooks_toss.rs`; the helpers both use are in `common`.
//!
//! Every stack here waits 600 s for a pending PSP payment, so a pending checkout that finishes
//! within a test's bounds was woken by a webhook. "Settled" below means the checkout's workflow
//! has no workflow task pending: it has taken in every signal in its history and is blocked (on
//! the PSP, with its timer running) or finished.

mod common;

use common::{
    delivered, deliveries, fired_timers, long_pending, order, post_webhook, psp_signals, resolve_review,
    rows_with_payload, settled, temporal,
};
use payments_domain::checkout::draft_from_json;
use payments_domain::{CheckoutId, NewCheckout, PaymentOrderId, PaymentOrderStatus as S, SellerAccount};
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use temporalio_client::Client;

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

/// What the bridge recorded for an event: `None` when it was not recorded.
async fn recorded(stack: &Stack, psp: &str, event_id: &str) -> Option<String> {
    stack
        .store
        .webhook_outcome(psp, event_id)
        .await
        .expect("webhook_outcome")
        .map(|outcome| outcome.unwrap_or_else(|| "(no outcome)".to_owned()))
}

/// Waits until the checkout shows `phase` in its `PaymentStatus` search attribute.
async fn wait_phase(stack: &Stack, temporal: &Client, checkout_id: &str, phase: &str) {
    let query = format!("CheckoutId = '{checkout_id}' AND PaymentStatus = '{phase}'");
    stack
        .poll_until(&query, Duration::from_secs(30), || async {
            let count = temporal.count_workflows(query.clone(), Default::default()).await.ok()?.count();
            (count == 1).then_some(())
        })
        .await
}

async fn is_done(stack: &Stack, id: &str) -> bool {
    stack.store.checkout(&CheckoutId::parse(id).unwrap()).await.unwrap().expect("checkout").is_payment_done
}

/// A Stripe event about PaymentIntent `pi` of order `po` in checkout `checkout_id`.
fn stripe_event(event_id: &str, kind: &str, status: &str, pi: &str, po: &str, checkout_id: &str) -> String {
    json!({
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": now_secs(),
        "type": kind,
        "data": {"object": {
            "id": pi,
            "object": "payment_intent",
            "amount": 20000,
            "amount_received": if status == "succeeded" { 20000 } else { 0 },
            "currency": "krw",
            "status": status,
            "metadata": {"payment_order_id": po, "checkout_id": checkout_id},
        }},
    })
    .to_string()
}

/// POSTs a Stripe event signed now with the stack's secret.
async fn post_signed_stripe(stack: &Stack, body: &str) -> (u16, Value) {
    let header = psp_simulator::stripe_signature_header(&stripe_secret(), now_secs(), body);
    post_webhook(stack, "stripe", body, &[("stripe-signature", header)]).await
}

fn stripe_secret() -> String {
    psp_simulator::SimConfig::new().stripe_webhook_secret
}

/// Posts a Stripe review checkout and waits until it is pending at the PSP with the
/// simulator's `payment_intent.processing` event delivered, signaled, and taken in by the
/// workflow, which is then blocked waiting for the PSP. Answers (checkout, order, intent).
async fn pending_stripe_review(stack: &Stack, temporal: &Client) -> (String, String, String) {
    let (id, po) = stack.post_one_order("pm_card_sim_review", "20000", "KRW").await;
    let pi = stack.psp_payment_id("stripe", &po).await;
    let processing = delivered(stack, "payment_intent.processing", 1).await;
    assert_eq!(recorded(stack, "stripe", &processing[0]).await.as_deref(), Some("signaled"));
    assert!(settled(stack, temporal, &id).await, "checkout {id} finished while its payment is in review");
    assert_eq!(order(stack, &po).await.status, S::Executing);
    assert_eq!(psp_signals(temporal, &id).await, 1);
    (id, po, pi)
}

/// (a) A valid, signed Stripe event sent by the simulator itself wakes a payment pending in the
/// PSP's review: the workflow waits in `AWAITING_PSP` (600 s deadline, no polling), the review
/// is approved at the simulator, its `payment_intent.succeeded` webhook is recorded by the
/// bridge with outcome `signaled`, and the checkout ends SUCCESS with one capture within the
/// test's bound, far before the deadline.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_webhook_wakes_pending_payment(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..long_pending("stripe") }).await;
    let temporal = temporal(&stack).await;
    let (id, po, pi) = pending_stripe_review(&stack, &temporal).await;
    wait_phase(&stack, &temporal, &id, "AWAITING_PSP").await;

    resolve_review(&stack, &pi, "approve").await;
    let done = stack.wait_done(&id).await;
    // Woken by the webhook's signal, not by the 600 s deadline's timer (and with no polling).
    assert_eq!(fired_timers(&temporal, &id).await, 0, "a timer ended the wait");
    assert_eq!(done.orders[0].status, S::Success);
    assert_eq!(done.orders[0].psp_reference.as_deref(), Some(pi.as_str()));
    assert_eq!(stack.captures(&po).await.len(), 1);

    let succeeded = delivered(&stack, "payment_intent.succeeded", 1).await;
    assert_eq!(succeeded.len(), 1);
    assert_eq!(recorded(&stack, "stripe", &succeeded[0]).await.as_deref(), Some("signaled"));
    assert!(!settled(&stack, &temporal, &id).await, "workflow finished");
    assert_eq!(psp_signals(&temporal, &id).await, 2, "processing + succeeded");
    wait_phase(&stack, &temporal, &id, "DONE").await;
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    stack.shutdown().await;
}

/// (b) Stripe events whose signature is wrong (another secret, a tampered body, no `v1`, no
/// header) or whose timestamp is outside the 300 s tolerance (310 s old, 310 s ahead) are
/// refused with 401: nothing is recorded and the pending payment's workflow is not signaled
/// (still EXECUTING, nothing captured). The same event, validly signed, is then accepted as
/// new, so the refusals were about the signature alone and left no trace.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_stale_stripe_signatures_are_refused(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..long_pending("stripe") }).await;
    let temporal = temporal(&stack).await;
    let (id, po, pi) = pending_stripe_review(&stack, &temporal).await;

    let event_id = unique("evt_forged");
    let body = stripe_event(&event_id, "payment_intent.succeeded", "succeeded", &pi, &po, &id);
    let secret = stripe_secret();
    let now = now_secs();
    let tampered = body.replace("20000", "20001");
    let refused = [
        ("another secret", psp_simulator::stripe_signature_header("whsec_not_the_secret", now, &body)),
        ("signed another body", psp_simulator::stripe_signature_header(&secret, now, &tampered)),
        ("stale", psp_simulator::stripe_signature_header(&secret, now - 310, &body)),
        // 10 s beyond the tolerance: the gateway reads its clock a little later than the test.
        ("from the future", psp_simulator::stripe_signature_header(&secret, now + 310, &body)),
        ("no v1", format!("t={now}")),
        ("garbage", "v1=deadbeef".to_owned()),
    ];
    for (why, header) in refused {
        let (status, answer) = post_webhook(&stack, "stripe", &body, &[("stripe-signature", header)]).await;
        assert_eq!(status, 401, "{why}: {answer}");
        assert!(answer.get("received").is_none(), "{why}: {answer}");
    }
    let (status, answer) = post_webhook(&stack, "stripe", &body, &[]).await;
    assert_eq!(status, 401, "no header: {answer}");

    assert_eq!(recorded(&stack, "stripe", &event_id).await, None);
    assert!(settled(&stack, &temporal, &id).await);
    assert_eq!(psp_signals(&temporal, &id).await, 1, "only the simulator's processing event");
    assert_eq!(order(&stack, &po).await.status, S::Executing);
    assert!(stack.captures(&po).await.is_empty());

    // Control: the very same event, validly signed, is new to the bridge.
    let (status, answer) = post_signed_stripe(&stack, &body).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("signaled")), "{answer}");
    assert_eq!(recorded(&stack, "stripe", &event_id).await.as_deref(), Some("signaled"));
    // It was a forgery: the PSP still has the payment in review.
    assert!(settled(&stack, &temporal, &id).await);
    assert_eq!(order(&stack, &po).await.status, S::Executing);

    resolve_review(&stack, &pi, "approve").await;
    assert_eq!(stack.wait_done(&id).await.orders[0].status, S::Success);
    assert_eq!(stack.captures(&po).await.len(), 1);
    stack.shutdown().await;
}

/// (c) The same signed event delivered twice is handled once: the first delivery is signaled
/// to the workflow, the second answers `{"received":true,"duplicate":true}` without signaling
/// again, and the event is stored in one row.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_stripe_event_is_handled_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..long_pending("stripe") }).await;
    let temporal = temporal(&stack).await;
    let (id, po, pi) = pending_stripe_review(&stack, &temporal).await;

    let event_id = unique("evt_dup");
    let body = stripe_event(&event_id, "payment_intent.processing", "processing", &pi, &po, &id);
    let (status, first) = post_signed_stripe(&stack, &body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first, json!({"received": true, "outcome": "signaled"}));
    assert!(settled(&stack, &temporal, &id).await);
    assert_eq!(psp_signals(&temporal, &id).await, 2);

    // Redelivered (signed anew, as PSPs do on retries).
    let (status, second) = post_signed_stripe(&stack, &body).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second, json!({"received": true, "duplicate": true}));
    assert!(settled(&stack, &temporal, &id).await);
    assert_eq!(psp_signals(&temporal, &id).await, 2, "the duplicate was not signaled");
    assert_eq!(recorded(&stack, "stripe", &event_id).await.as_deref(), Some("signaled"));
    assert_eq!(rows_with_payload(&stack, "stripe", &body).await, 1);
    assert_eq!(order(&stack, &po).await.status, S::Executing);

    resolve_review(&stack, &pi, "approve").await;
    assert_eq!(stack.wait_done(&id).await.orders[0].status, S::Success);
    stack.shutdown().await;
}

/// (d) Out-of-order and duplicated deliveries: for `pm_card_sim_review_webhook_chaos` the
/// simulator announces the approval with `succeeded` first, then the held-back `processing`,
/// each twice. The checkout ends SUCCESS with exactly one capture, one SUCCESS transition, the
/// seller's wallet credited once and the books consistent, and every delivery was accepted.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_and_duplicated_webhooks_settle_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..long_pending("stripe") }).await;
    let temporal = temporal(&stack).await;
    let seller = unique("seller-chaos");
    let id = unique("chk");
    let po = format!("{id}-1");
    let body = json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_sim_review_webhook_chaos"},
        "payment_orders": [{"seller_account": seller, "amount": "20000", "currency": "KRW", "payment_order_id": po}],
    });
    assert_eq!(stack.post_payment(&body).await.0, 202);
    let pi = stack.psp_payment_id("stripe", &po).await;
    // No event before the resolution (the chaotic review holds "processing" back).
    assert!(settled(&stack, &temporal, &id).await);
    assert_eq!(order(&stack, &po).await.status, S::Executing);

    resolve_review(&stack, &pi, "approve").await;
    let done = stack.wait_done(&id).await;
    assert_eq!(done.orders[0].status, S::Success);

    let succeeded = delivered(&stack, "payment_intent.succeeded", 2).await;
    let processing = delivered(&stack, "payment_intent.processing", 2).await;
    let order_of_delivery: Vec<String> = deliveries(&stack)
        .await
        .iter()
        .filter(|d| d["status_code"].as_u64().is_some_and(|s| (200..300).contains(&s)))
        .filter_map(|d| d["type"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        order_of_delivery.first().map(String::as_str),
        Some("payment_intent.succeeded"),
        "{order_of_delivery:?}"
    );
    assert_eq!(order_of_delivery.len(), 4, "{order_of_delivery:?}");
    for event_id in succeeded.iter().chain(&processing) {
        let outcome = recorded(&stack, "stripe", event_id).await;
        // Each was recorded; only those that arrived while the checkout waited for the PSP
        // were passed on (the rest find it busy or done).
        assert!(
            matches!(outcome.as_deref(), Some("signaled" | "workflow_finished" | "not_awaiting_psp")),
            "{event_id}: {outcome:?}"
        );
    }

    assert!(!settled(&stack, &temporal, &id).await);
    let after = order(&stack, &po).await;
    assert_eq!(after.status, S::Success);
    assert!(after.wallet_updated && after.ledger_updated);
    assert_eq!(stack.captures(&po).await.len(), 1);
    let history: Vec<S> = stack
        .store
        .history(&PaymentOrderId::parse(po.clone()).unwrap())
        .await
        .unwrap()
        .iter()
        .map(|h| h.to_status)
        .collect();
    assert_eq!(history, vec![S::NotStarted, S::Executing, S::Success]);
    let wallet = stack.store.wallet_balances(&SellerAccount::parse(seller).unwrap()).await.unwrap();
    assert_eq!(wallet.iter().map(|m| m.to_string()).collect::<Vec<_>>(), vec!["20000 KRW"]);
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert_eq!(report.transactions, 1);
    stack.shutdown().await;
}

/// (d) A forged but validly signed `payment_intent.succeeded` for a payment still in review
/// does not make it SUCCESS: the bridge signals it, the workflow asks the PSP, finds it still
/// processing and goes back to waiting (order EXECUTING, nothing captured). The real resolution
/// (rejected) then ends the order FAILED with the PSP's decline code, nothing captured.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_signed_success_does_not_complete_payment(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..long_pending("stripe") }).await;
    let temporal = temporal(&stack).await;
    let (id, po, pi) = pending_stripe_review(&stack, &temporal).await;

    let event_id = unique("evt_forged");
    let body = stripe_event(&event_id, "payment_intent.succeeded", "succeeded", &pi, &po, &id);
    let (status, answer) = post_signed_stripe(&stack, &body).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("signaled")), "{answer}");
    assert!(settled(&stack, &temporal, &id).await, "the forged event finished the checkout");
    assert_eq!(psp_signals(&temporal, &id).await, 2);
    let waiting = order(&stack, &po).await;
    assert_eq!(waiting.status, S::Executing);
    assert!(!waiting.wallet_updated && !waiting.ledger_updated);
    assert!(!is_done(&stack, &id).await);
    assert!(stack.captures(&po).await.is_empty());

    resolve_review(&stack, &pi, "reject").await;
    let done = stack.wait_done(&id).await;
    assert_eq!(done.orders[0].status, S::Failed);
    assert_eq!(done.orders[0].failure_code.as_deref(), Some("fraudulent"));
    assert!(!done.orders[0].wallet_updated && !done.orders[0].ledger_updated);
    assert!(stack.captures(&po).await.is_empty());
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent() && report.transactions == 0, "{report:?}");
    stack.shutdown().await;
}

/// (e) Valid events the bridge cannot hand to a running workflow are acknowledged (200, so the
/// PSP stops retrying) and recorded: one naming an unknown checkout and order answers
/// `unknown_checkout`; one for a checkout whose workflow has finished answers
/// `workflow_finished`, and that checkout is unchanged (SUCCESS, one capture, books
/// consistent).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_unknown_or_finished_checkouts_are_acknowledged(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..long_pending("stripe") }).await;
    let temporal = temporal(&stack).await;

    let unknown = unique("evt_unknown");
    let (nobody, nothing) = (unique("chk-none"), unique("po-none"));
    let body = stripe_event(&unknown, "payment_intent.succeeded", "succeeded", "pi_nope", &nothing, &nobody);
    let (status, answer) = post_signed_stripe(&stack, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"received": true, "outcome": "unknown_checkout"}));
    assert_eq!(recorded(&stack, "stripe", &unknown).await.as_deref(), Some("unknown_checkout"));
    assert!(stack.store.checkout(&CheckoutId::parse(nobody).unwrap()).await.unwrap().is_none());

    let (id, po) = stack.post_one_order("pm_card_visa", "20000", "KRW").await;
    assert_eq!(stack.wait_done(&id).await.orders[0].status, S::Success);
    assert!(!settled(&stack, &temporal, &id).await, "workflow still running");
    // The state once the workflow has closed; nothing may change it afterwards.
    let before = order(&stack, &po).await;
    let history_before = stack.store.history(&before.payment_order_id).await.unwrap();
    let pi = before.psp_reference.clone().expect("psp reference");
    let late = unique("evt_late");
    let body = stripe_event(&late, "payment_intent.succeeded", "succeeded", &pi, &po, &id);
    let (status, answer) = post_signed_stripe(&stack, &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"received": true, "outcome": "workflow_finished"}));
    assert_eq!(recorded(&stack, "stripe", &late).await.as_deref(), Some("workflow_finished"));
    assert_eq!(order(&stack, &po).await, before);
    assert_eq!(stack.store.history(&before.payment_order_id).await.unwrap(), history_before);
    assert_eq!(stack.captures(&po).await.len(), 1);
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent() && report.transactions == 1, "{report:?}");
    stack.shutdown().await;
}

/// An event that arrives before its checkout's workflow exists (the checkout is stored, its
/// start was lost and the start sweep has not come round): the bridge starts the workflow, as
/// the sweep would, and delivers the event to it -- it is not filed as "workflow_finished" and
/// lost. The checkout is then charged once and booked.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_before_its_workflow_started_starts_it(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    // The sweep would start the checkout only after an hour: only the event can start it.
    let options = StackOptions { database_url: Some(url), start_sweep_secs: 3600, ..long_pending("stripe") };
    let stack = Stack::start(options).await;
    let id = unique("chk-early");
    let po = format!("{id}-1");
    let body = json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": [{"seller_account": "seller-a", "amount": "20000", "currency": "KRW", "payment_order_id": po}],
    });
    let checkout = NewCheckout::parse(draft_from_json(&body).unwrap()).unwrap();
    stack.store.create_checkout(&checkout, None).await.unwrap();
    let workflow_id = format!("checkout-{id}");
    assert_eq!(stack.workflow_runs(&workflow_id).await, 0, "stored without its workflow");

    let event_id = unique("evt_early");
    let event = stripe_event(&event_id, "payment_intent.processing", "processing", "pi_early", &po, &id);
    let (status, answer) = post_signed_stripe(&stack, &event).await;
    assert_eq!(status, 200, "{answer}");
    let outcome = answer["outcome"].as_str().expect("outcome").to_owned();
    // Told while waiting, or while busy charging, or (a fast worker) after it finished.
    assert!(["signaled", "not_awaiting_psp", "workflow_finished"].contains(&outcome.as_str()), "{answer}");
    assert_eq!(recorded(&stack, "stripe", &event_id).await, Some(outcome));
    assert_eq!(stack.workflow_runs(&workflow_id).await, 1, "the event started the checkout's workflow");

    let done = stack.wait_done(&id).await;
    assert_eq!(done.orders[0].status, S::Success, "{done:?}");
    assert!(done.workflow_started);
    assert_eq!(stack.captures(&po).await.len(), 1);
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent() && report.transactions == 1, "{report:?}");
    stack.shutdown().await;
}

/// The same signed event delivered eight times at once (a PSP retrying while the first delivery
/// is being handled, deliveries spread over replicas), from a multi-threaded runtime: every
/// delivery is answered 200, the event is stored once with outcome `signaled`, and each answer
/// is a delivery (`signaled`) or a duplicate. The payment it announced is then approved: one
/// capture, one SUCCESS transition, one wallet credit, books consistent.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_events_at_once_are_recorded_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let stack = Stack::start(StackOptions { database_url: Some(url), ..long_pending("stripe") }).await;
    let temporal = temporal(&stack).await;
    let (id, po, pi) = pending_stripe_review(&stack, &temporal).await;

    let event_id = unique("evt_burst");
    let body = stripe_event(&event_id, "payment_intent.processing", "processing", &pi, &po, &id);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let deliveries: Vec<_> = (0..8)
        .map(|_| {
            let (barrier, body) = (barrier.clone(), body.clone());
            let header = psp_simulator::stripe_signature_header(&stripe_secret(), now_secs(), &body);
            let request = stack
                .http
                .post(format!("{}/webhooks/stripe", stack.rest_url))
                .header("content-type", "application/json")
                .header("stripe-signature", header)
                .body(body);
            tokio::spawn(async move {
                barrier.wait().await;
                let resp = request.send().await.expect("POST webhook");
                (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut signaled = 0;
    for delivery in deliveries {
        let (status, answer) = delivery.await.expect("delivery task");
        assert_eq!(status, 200, "{answer}");
        if answer == json!({"received": true, "outcome": "signaled"}) {
            signaled += 1;
        } else {
            assert_eq!(answer, json!({"received": true, "duplicate": true}));
        }
    }
    assert!(signaled >= 1, "the event reached the workflow");
    assert_eq!(rows_with_payload(&stack, "stripe", &body).await, 1, "stored once");
    assert_eq!(recorded(&stack, "stripe", &event_id).await.as_deref(), Some("signaled"));
    assert_eq!(order(&stack, &po).await.status, S::Executing, "a hint moves no money");

    resolve_review(&stack, &pi, "approve").await;
    assert_eq!(stack.wait_done(&id).await.orders[0].status, S::Success);
    assert_eq!(stack.captures(&po).await.len(), 1);
    let order_id = PaymentOrderId::parse(po.clone()).unwrap();
    let history = stack.store.history(&order_id).await.unwrap();
    assert_eq!(history.iter().filter(|h| h.to_status == S::Success).count(), 1, "{history:?}");
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent() && report.transactions == 1, "{report:?}");
    stack.shutdown().await;
}
