//! Exactly once across worker crashes: the worker binary is killed at a crash point (right
//! after a step's side effect, before the workflow recorded it), then a new worker process is
//! started; the work finishes with every side effect made once. Crash points
//! (`PAYMENTS_CHAOS_ABORT_AFTER`): after the PSP charge, between the ledger post and the wallet
//! credit, after a refund at the PSP, after a compensation's refund at the PSP, after a hosted
//! payment's confirmation, after a payout was sent to its provider. Every test on SQLite and
//! PostgreSQL, each a test of its own.

use payments_activities::chaos::ABORT_AFTER_ENV;
use payments_domain::{CheckoutId, PaymentOrderId, PaymentOrderStatus as S, SellerAccount};
use payments_store::{RefundKind, RefundStatus};
use payments_testkit::{Db, Stack, StackOptions, poll_until, unique};
use rstest::rstest;
use serde_json::{Value, json};
use sqlx::Row;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long a crash point may take to be reached, and a restarted worker to finish.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A worker process of this stack (its PSP `provider`), aborting after `chaos` if given.
fn spawn_worker(stack: &Stack, provider: &str, chaos: Option<&str>) -> Child {
    let c = stack.worker_config();
    let key = if provider == "toss" { "test_sk_testkit" } else { "sk_test_testkit" };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_payments-worker"));
    cmd.env("TEMPORAL_ADDRESS", &c.shared.temporal_address)
        .env("PAYMENTS_TASK_QUEUE", &c.shared.task_queue)
        .env("DATABASE_URL", &c.shared.database_url)
        .env("PSP_BASE_URL", &c.psp_base_url)
        .env("PSP_PROVIDER", provider)
        .env("PSP_SECRET_KEY", key)
        .env("STRIPE_CONNECT_BASE_URL", &c.psp_base_url)
        .env("STRIPE_CONNECT_SECRET_KEY", "sk_test_testkit")
        .env("TOSS_PAYOUTS_BASE_URL", &c.psp_base_url)
        .env("TOSS_PAYOUTS_SECRET_KEY", "test_sk_testkit")
        .env("PAYOUT_SCHEDULE", "off")
        .env("RUST_LOG", "warn")
        .env_remove(ABORT_AFTER_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(point) = chaos {
        cmd.env(ABORT_AFTER_ENV, point);
    }
    cmd.spawn().expect("spawn payments-worker")
}

/// Waits until the chaos worker aborted at its crash point: killed by SIGABRT, as
/// `std::process::abort` does; any other exit (a panic, an error, a clean stop) is a failure.
async fn wait_aborted(worker: &mut Child, point: &str) {
    let exit = poll_until(&format!("the worker to abort after {point}"), TIMEOUT, || {
        let status = worker.try_wait().expect("try_wait");
        async move { status }
    })
    .await;
    assert_eq!(exit.signal(), Some(SIGABRT), "the worker was expected to abort after {point}: {exit}");
}

/// SIGABRT's number on Linux.
const SIGABRT: i32 = 6;

/// Runs `trigger` while the only worker is one that aborts after `point`, waits until it did,
/// and answers what `trigger` answered.
async fn crash_at<T>(stack: &Stack, provider: &str, point: &str, trigger: impl Future<Output = T>) -> T {
    let mut doomed = spawn_worker(stack, provider, Some(point));
    let answer = trigger.await;
    wait_aborted(&mut doomed, point).await;
    answer
}

/// Stops the recovering worker for good, then the stack (which checks the money).
async fn finish(stack: Stack, worker: Child) {
    finish_worker(worker);
    stack.shutdown().await;
}

async fn stack(db: Db, provider: &str) -> Option<Stack> {
    let url = db.url().await?;
    let options =
        StackOptions { worker: false, database_url: Some(url), psp_provider: provider.into(), ..StackOptions::new() };
    Some(Stack::start(options).await)
}

async fn count(stack: &Stack, sql: &str, id: &str) -> i64 {
    sqlx::query(sql).bind(id.to_owned()).fetch_one(stack.store.pool()).await.unwrap().try_get(0).unwrap()
}

/// Exactly one capture, one wallet movement and one ledger pay-in per order; books consistent.
async fn assert_booked_once(stack: &Stack, orders: &[&str]) {
    for po in orders {
        assert_eq!(stack.captures(po).await.len(), 1, "{po} captured exactly once");
    }
    assert_books_written_once(stack, orders).await;
}

/// One wallet movement and one ledger pay-in per order; books consistent.
async fn assert_books_written_once(stack: &Stack, orders: &[&str]) {
    for po in orders {
        let wallet = count(stack, "SELECT COUNT(*) FROM wallet_movement WHERE payment_order_id = $1", po).await;
        let ledger = count(stack, "SELECT COUNT(*) FROM ledger_transaction WHERE payment_order_id = $1", po).await;
        assert_eq!((wallet, ledger), (1, 1), "{po}: wallet movements and ledger transactions");
    }
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
}

fn two_orders(id: &str, token: &str) -> Value {
    json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": token},
        "payment_orders": [
            {"seller_account": "seller-a", "amount": "30.00", "currency": "USD", "payment_order_id": format!("{id}-1")},
            {"seller_account": "seller-b", "amount": "42000", "currency": "KRW", "payment_order_id": format!("{id}-2")}
        ]
    })
}

/// Killed right after the first capture (before the workflow recorded it): a new worker
/// replays the checkout, the PSP sees the same idempotency key and captures nothing new, the
/// wallet and ledger are written once per order.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_after_charge_finishes_exactly_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db, "stripe").await else { return };
    let id = unique("crash");
    let (po1, po2) = (format!("{id}-1"), format!("{id}-2"));
    let posted = crash_at(&stack, "stripe", "psp.charge", stack.post_payment(&two_orders(&id, "pm_card_visa"))).await;
    assert_eq!(posted.0, 202);

    // Money moved at the PSP, but the books have not been written for it yet. The two orders'
    // charges run concurrently, so the second may have reached the PSP before the abort too.
    let captured: usize = stack.captures(&po1).await.len() + stack.captures(&po2).await.len();
    assert!((1..=2).contains(&captured), "a capture happened before the crash, none twice: {captured}");
    let before = stack.store.checkout(&CheckoutId::parse(id.clone()).unwrap()).await.unwrap().unwrap();
    assert!(!before.is_payment_done);
    assert!(before.orders.iter().all(|o| !o.ledger_updated), "{before:?}");

    let worker = spawn_worker(&stack, "stripe", None);
    let done = stack.wait_done(&id).await;
    assert!(done.orders.iter().all(|o| o.status == S::Success), "{done:?}");
    assert_booked_once(&stack, &[&po1, &po2]).await;
    finish(stack, worker).await;
}

/// Killed between an order's ledger post and its wallet credit: the restarted worker credits
/// the wallet once and posts nothing twice.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_between_ledger_and_wallet_books_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db, "stripe").await else { return };
    let id = unique("crash");
    let (po1, po2) = (format!("{id}-1"), format!("{id}-2"));
    let posted = crash_at(&stack, "stripe", "ledger.post", stack.post_payment(&two_orders(&id, "pm_card_visa"))).await;
    assert_eq!(posted.0, 202);

    let before = stack.store.checkout(&CheckoutId::parse(id.clone()).unwrap()).await.unwrap().unwrap();
    let halfway: Vec<_> = before.orders.iter().filter(|o| o.ledger_updated && !o.wallet_updated).collect();
    // The two orders are booked concurrently: both posts may have committed before the abort.
    assert!(!halfway.is_empty(), "an order posted to the ledger, its wallet not credited: {before:?}");
    assert!(before.orders.iter().all(|o| o.ledger_updated || !o.wallet_updated), "{before:?}");

    let worker = spawn_worker(&stack, "stripe", None);
    let done = stack.wait_done(&id).await;
    assert!(done.orders.iter().all(|o| o.status == S::Success && o.wallet_updated), "{done:?}");
    assert_booked_once(&stack, &[&po1, &po2]).await;
    finish(stack, worker).await;
}

/// Killed right after the PSP made a refund (before the refund was booked): the restarted
/// worker sends the refund again under the same key, the PSP answers the first refund, and it
/// is booked once: one refund at the PSP, the wallet debited once.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_during_a_refund_refunds_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db, "stripe").await else { return };
    let (po, refund_id) = crash_at(&stack, "stripe", "psp.refund", async {
        let (checkout, po) = stack.post_one_order("pm_card_visa", "25.00", "USD").await;
        assert_eq!(stack.wait_done(&checkout).await.orders[0].status, S::Success);
        let resp = stack
            .http
            .post(format!("{}/v1/payments/{po}/refunds", stack.rest_url))
            .json(&json!({"amount": "10.00", "reason": "one item returned"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        let refund: Value = resp.json().await.unwrap();
        (po, payments_store::RefundId::parse(refund["refund_id"].as_str().unwrap()).unwrap())
    })
    .await;
    assert_eq!(stack.sim_refunds(&po).await.len(), 1, "the PSP refunded before the crash");
    let stored = stack.store.refund(&refund_id).await.unwrap().unwrap();
    assert_eq!(stored.status, RefundStatus::Requested, "not booked before the crash");

    let worker = spawn_worker(&stack, "stripe", None);
    let done = stack
        .poll_until("the refund to finish", TIMEOUT, || async {
            stack.store.refund(&refund_id).await.ok().flatten().filter(|r| r.status != RefundStatus::Requested)
        })
        .await;
    assert_eq!(done.status, RefundStatus::Succeeded, "{done:?}");
    assert_eq!(stack.sim_refunds(&po).await.len(), 1, "refunded exactly once");
    let wallet = stack.store.wallet_balances(&SellerAccount::parse("seller-a").unwrap()).await.unwrap();
    assert_eq!(wallet.iter().map(|m| m.amount_minor()).collect::<Vec<_>>(), vec![1500], "debited once");
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    finish(stack, worker).await;
}

/// Killed right after a compensation's refund at the PSP (a blocked wallet refused the
/// booking): the restarted worker finishes the reversal with one refund, the order REVERSED.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_during_a_compensation_reverses_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db, "stripe").await else { return };
    let frozen = unique("seller-frozen");
    stack.store.block_wallet(&SellerAccount::parse(frozen.clone()).unwrap(), "KYC review pending").await.unwrap();
    let id = unique("crash");
    let po = format!("{id}-1");
    let body = json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": [{"seller_account": frozen, "amount": "12.34", "currency": "USD", "payment_order_id": po}],
    });
    assert_eq!(crash_at(&stack, "stripe", "psp.reversal", stack.post_payment(&body)).await.0, 202);
    assert_eq!(stack.sim_refunds(&po).await.len(), 1, "the PSP refunded before the crash");

    let worker = spawn_worker(&stack, "stripe", None);
    let done = stack.wait_done(&id).await;
    assert_eq!(done.orders[0].status, S::Reversed, "{done:?}");
    assert_eq!(stack.captures(&po).await.len(), 1, "captured once");
    assert_eq!(stack.sim_refunds(&po).await.len(), 1, "refunded exactly once");
    let refunds = stack.store.refunds(&PaymentOrderId::parse(&po).unwrap()).await.unwrap();
    let kinds: Vec<_> = refunds.iter().map(|r| (r.kind, r.status)).collect();
    assert_eq!(kinds, vec![(RefundKind::Reversal, RefundStatus::Succeeded)]);
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    finish(stack, worker).await;
}

/// Killed right after Toss confirmed a hosted payment (before the workflow recorded it): the
/// restarted worker confirms again under the same key, Toss answers the first confirmation,
/// and both orders are booked once from the one payment.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_during_a_hosted_confirm_books_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(stack) = stack(db, "toss").await else { return };
    let id = unique("hosted");
    let ((po1, po2), success, page) = crash_at(&stack, "toss", "psp.confirm", async {
        let orders = stack.create_hosted_two_sellers(&id).await;
        // The buyer authenticated at Toss; Toss redirects the browser to our success page.
        let key = stack.toss_payment_session(&id, 20000).await;
        let success = stack.hosted_success_url(&id, &key, 20000);
        // The page waits for the workflow, whose worker is about to die: its answer is not awaited.
        let page = tokio::spawn({
            let (http, success) = (stack.http.clone(), success.clone());
            async move { http.get(success).send().await.map(|r| r.status().as_u16()) }
        });
        (orders, success, page)
    })
    .await;
    assert_eq!(stack.captures(&id).await.len(), 1, "Toss confirmed before the crash");

    let worker = spawn_worker(&stack, "toss", None);
    let done = stack.wait_done(&id).await;
    assert!(done.orders.iter().all(|o| o.status == S::Success), "{done:?}");
    assert_eq!(stack.captures(&id).await.len(), 1, "confirmed exactly once");
    assert_books_written_once(&stack, &[&po1, &po2]).await;
    // The buyer reloads the success page: it shows the payment, and confirms nothing new.
    let reload = stack.http.get(success).send().await.unwrap();
    assert!(reload.status().is_success(), "reload: {}", reload.status());
    let shown = reload.text().await.unwrap();
    assert!(shown.contains(r#"<p id="status">SUCCESS</p>"#), "the reload shows the paid checkout: {shown}");
    assert_eq!(stack.captures(&id).await.len(), 1);
    page.abort();
    finish(stack, worker).await;
}

/// Killed right after the payout provider accepted a payout (before the workflow recorded
/// it): the restarted worker sends it again under the same reference, the provider answers the
/// first payout, and the seller is paid once: one payout at the provider, settled once.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_after_a_payout_was_sent_pays_once(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    use payments_proto::payments_v1 as pb;
    let Some(stack) = stack(db, "stripe").await else { return };
    let seller = unique("seller-crash");
    let mut admin = stack.admin_grpc().await;
    let request = pb::RegisterSellerRequest {
        seller_account: seller.clone(),
        provider: "toss_payouts".into(),
        name: "Crash Shop".into(),
        email: "crash@example.com".into(),
        country: "KR".into(),
        bank_code: "088".into(),
        account_number: "000123456789".into(),
        holder_name: "Kim Seller".into(),
        minimums: String::new(),
    };
    admin.register_seller(request).await.expect("seller registered");
    let worker = spawn_worker(&stack, "stripe", None);
    let id = unique("chk-payout");
    let body = json!({
        "checkout_id": id, "buyer_info": {"buyer_id": "buyer-1"}, "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": [{"seller_account": seller, "amount": "40000", "currency": "KRW", "payment_order_id": format!("{id}-1")}],
    });
    assert_eq!(stack.post_payment(&body).await.0, 202);
    assert_eq!(stack.wait_done(&id).await.orders[0].status, S::Success);
    finish_worker(worker);

    let payout_id = format!("payout-{seller}-KRW-2026-11");
    crash_at(&stack, "stripe", "payout.send", async {
        let request =
            pb::RunPayoutsRequest { seller_account: seller.clone(), currency: String::new(), period: "2026-11".into() };
        admin.run_payouts(request).await.expect("payout cycle started");
    })
    .await;
    assert_eq!(stack.sim_payouts(Some(&payout_id)).await.len(), 1, "the provider paid before the crash");
    let stored = stack.store.payout(&payout_id).await.unwrap().unwrap();
    assert_eq!(stored.status, payments_store::PayoutStatus::Reserved, "not recorded before the crash");

    let worker = spawn_worker(&stack, "stripe", None);
    let settled = stack
        .poll_until("the payout to settle", TIMEOUT, || async {
            stack
                .store
                .payout(&payout_id)
                .await
                .ok()
                .flatten()
                .filter(|p| p.status == payments_store::PayoutStatus::Settled)
        })
        .await;
    assert_eq!(settled.amount.amount_minor(), 40_000);
    assert_eq!(stack.sim_payouts(Some(&payout_id)).await.len(), 1, "paid exactly once");
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    finish(stack, worker).await;
}

/// Stops a worker process for good; it must still be running (a worker that crashed or exited
/// during the test fails it, even when the work got done).
fn finish_worker(mut worker: Child) {
    if let Some(exit) = worker.try_wait().expect("try_wait") {
        panic!("the worker process ended during the test: {exit}");
    }
    worker.kill().expect("kill the worker");
    worker.wait().expect("reap the worker");
}
