//! The PSP failing the way real PSPs fail, end to end through the checkout workflow, for both
//! adapters (Stripe PaymentIntents and Toss Payments billing charges) against the simulator:
//! lost responses, 429 with Retry-After, 5xx, declines and slow answers.

use payments_domain::{PaymentOrderId, PaymentOrderStatus as S};
use payments_store::CheckoutRecord;
use payments_testkit::{Db, Stack, StackOptions, unique};
use rstest::rstest;
use serde_json::json;

/// (adapter, its test token for a fault) pairs.
#[derive(Clone, Copy)]
struct Psp {
    provider: &'static str,
    token_prefix: &'static str,
}

const STRIPE: Psp = Psp { provider: "stripe", token_prefix: "pm_card_" };
const TOSS: Psp = Psp { provider: "toss", token_prefix: "billing_" };

impl Psp {
    fn token(&self, fault: &str) -> String {
        format!("{}{fault}", self.token_prefix)
    }
}

/// A stack of `psp` on a new database of `db`; `None` when that backend is not configured.
async fn stack(db: Db, psp: Psp, tweak: impl FnOnce(&mut StackOptions)) -> Option<Stack> {
    let url = db.url().await?;
    let mut options =
        StackOptions { database_url: Some(url), psp_provider: psp.provider.to_owned(), ..StackOptions::new() };
    tweak(&mut options);
    Some(Stack::start(options).await)
}

/// Posts a one-order KRW checkout (Toss charges won only) and waits until it is done.
async fn checkout(stack: &Stack, token: &str) -> (String, CheckoutRecord) {
    let id = unique("chk");
    let po = format!("{id}-1");
    let body = json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": token},
        "payment_orders": [{"seller_account": "seller-a", "amount": "15000", "currency": "KRW", "payment_order_id": po}],
    });
    let (status, answer) = stack.post_payment(&body).await;
    assert_eq!(status, 202, "{answer}");
    (po, stack.wait_done(&id).await)
}

async fn history(stack: &Stack, po: &str) -> Vec<S> {
    stack.store.history(&PaymentOrderId::parse(po).unwrap()).await.unwrap().iter().map(|h| h.to_status).collect()
}

async fn assert_books_consistent(stack: &Stack) {
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
}

/// The PSP captures, then the connection drops before any reply: the order goes UNKNOWN, the
/// workflow asks the PSP, finds the capture and ends SUCCESS with exactly one capture.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_response_is_resolved_by_a_status_query(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    for psp in [STRIPE, TOSS] {
        let Some(stack) = stack(db, psp, |_| {}).await else { return };
        let (po, done) = checkout(&stack, &psp.token("sim_lost_response")).await;
        assert_eq!(done.orders[0].status, S::Success, "{}", psp.provider);
        assert_eq!(stack.captures(&po).await.len(), 1, "{}: captured once", psp.provider);
        assert_eq!(history(&stack, &po).await, vec![S::NotStarted, S::Executing, S::Unknown, S::Success]);
        assert_books_consistent(&stack).await;
        stack.shutdown().await;
    }
}

/// A 429 with `Retry-After: 2` is retried with the same key, and no sooner than 2 s later.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_retried_after_retry_after(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    for psp in [STRIPE, TOSS] {
        let Some(stack) = stack(db, psp, |o| o.sim.rate_limit_retry_after_secs = 2).await else { return };
        let (po, done) = checkout(&stack, &psp.token("sim_rate_limited")).await;
        assert_eq!(done.orders[0].status, S::Success, "{}", psp.provider);
        assert_eq!(stack.captures(&po).await.len(), 1);
        let requests = stack.sim_requests(&po).await;
        assert!(requests.len() >= 2, "{requests:?}");
        let at = |i: usize| requests[i]["received_at_ms"].as_i64().unwrap();
        assert!(at(1) - at(0) >= 2000, "{}: retried after {} ms: {requests:?}", psp.provider, at(1) - at(0));
        stack.shutdown().await;
    }
}

/// Two 5xx answers, then success: SUCCESS with one capture, no detour through UNKNOWN (a 5xx
/// is retried with the same idempotency key).
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_then_success_capture_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    for psp in [STRIPE, TOSS] {
        let Some(stack) = stack(db, psp, |_| {}).await else { return };
        let (po, done) = checkout(&stack, &psp.token("sim_server_error_twice")).await;
        assert_eq!(done.orders[0].status, S::Success, "{}", psp.provider);
        assert_eq!(stack.captures(&po).await.len(), 1);
        assert_eq!(stack.sim_requests(&po).await.len(), 3, "{}", psp.provider);
        assert_eq!(history(&stack, &po).await, vec![S::NotStarted, S::Executing, S::Success]);
        stack.shutdown().await;
    }
}

/// A decline ends FAILED with the PSP's own code and message kept, nothing captured or booked.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decline_keeps_the_psp_reason(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    for (psp, token, code) in
        [(STRIPE, "pm_card_chargeDeclined", "generic_decline"), (TOSS, "billing_decline", "REJECT_CARD_COMPANY")]
    {
        let Some(stack) = stack(db, psp, |_| {}).await else { return };
        let (po, done) = checkout(&stack, token).await;
        let order = &done.orders[0];
        assert_eq!((order.status, order.failure_code.as_deref()), (S::Failed, Some(code)), "{}", psp.provider);
        assert!(!order.failure_message.as_deref().unwrap_or_default().is_empty());
        assert!(stack.captures(&po).await.is_empty());
        assert_books_consistent(&stack).await;
        stack.shutdown().await;
    }
}

/// The PSP answers later than our timeout: the order is UNKNOWN, then the status query finds
/// the capture: SUCCESS, one capture, never FAILED.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_response_is_unknown_then_resolved(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    for psp in [STRIPE, TOSS] {
        let Some(stack) = stack(db, psp, |o| {
            o.sim.slow_response_ms = 3_000;
            o.psp_request_timeout_ms = 1_000;
        })
        .await
        else {
            return;
        };
        let (po, done) = checkout(&stack, &psp.token("sim_slow")).await;
        assert_eq!(done.orders[0].status, S::Success, "{}", psp.provider);
        assert_eq!(stack.captures(&po).await.len(), 1);
        assert_eq!(history(&stack, &po).await, vec![S::NotStarted, S::Executing, S::Unknown, S::Success]);
        assert_books_consistent(&stack).await;
        stack.shutdown().await;
    }
}

/// Credentials the PSP refuses fail the order at once (nothing was charged) instead of being
/// retried: an operator must fix the configuration.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_fail_without_retrying(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    for (psp, key) in [(STRIPE, "sk_live_not_ours"), (TOSS, "live_sk_not_ours")] {
        let Some(stack) = stack(db, psp, |o| o.psp_secret_key = Some(key.to_owned())).await else { return };
        let (po, done) = checkout(&stack, &psp.token(if psp.provider == "toss" { "success" } else { "visa" })).await;
        let order = &done.orders[0];
        assert_eq!(
            (order.status, order.failure_code.as_deref()),
            (S::Failed, Some("PspAuthentication")),
            "{}",
            psp.provider
        );
        assert!(stack.captures(&po).await.is_empty());
        let stats: serde_json::Value =
            stack.http.get(format!("{}/_sim/stats", stack.sim_url)).send().await.unwrap().json().await.unwrap();
        assert_eq!(stats["requests_total"], 1, "{}: one request, refused, never retried: {stats}", psp.provider);
        stack.shutdown().await;
    }
}
