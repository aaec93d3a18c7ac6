//! Exactly once across a worker crash: the worker binary is killed between the PSP charge and
//! the ledger post, then restarted; the checkout completes with one capture, one wallet credit
//! and one ledger transaction per order.

use payments_activities::chaos::ABORT_AFTER_ENV;
use payments_domain::PaymentOrderStatus as S;
use payments_testkit::{Stack, StackOptions, poll_until, unique};
use serde_json::json;
use sqlx::Row;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn spawn_worker(stack: &Stack, chaos: bool) -> Child {
    let c = stack.worker_config();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_payments-worker"));
    cmd.env("TEMPORAL_ADDRESS", &c.shared.temporal_address)
        .env("PAYMENTS_TASK_QUEUE", &c.shared.task_queue)
        .env("DATABASE_URL", &c.shared.database_url)
        .env("PSP_BASE_URL", &c.psp_base_url)
        .env("RUST_LOG", "warn")
        .env_remove(ABORT_AFTER_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if chaos {
        cmd.env(ABORT_AFTER_ENV, "psp.charge");
    }
    cmd.spawn().expect("spawn payments-worker")
}

async fn count(stack: &Stack, sql: &str, id: &str) -> i64 {
    sqlx::query(sql).bind(id.to_owned()).fetch_one(stack.store.pool()).await.unwrap().try_get(0).unwrap()
}

/// The worker process aborts right after the first capture (before the workflow recorded it);
/// a new worker process replays the checkout: the PSP sees the same idempotency key and
/// captures nothing new, the wallet and ledger are written once per order, and the books
/// balance. On SQLite and on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_after_charge_finishes_exactly_once() {
    for url in payments_store::test_db::test_database_urls().await {
        killed_after_charge(url).await;
    }
}

async fn killed_after_charge(database_url: String) {
    let stack =
        Stack::start(StackOptions { worker: false, database_url: Some(database_url), ..StackOptions::new() }).await;
    let id = unique("crash");
    let (po1, po2) = (format!("{id}-1"), format!("{id}-2"));
    let body = json!({
        "checkout_id": id,
        "buyer_info": {"buyer_id": "buyer-1"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": [
            {"seller_account": "seller-a", "amount": "30.00", "currency": "USD", "payment_order_id": po1},
            {"seller_account": "seller-b", "amount": "42000", "currency": "KRW", "payment_order_id": po2}
        ]
    });
    let mut doomed = spawn_worker(&stack, true);
    assert_eq!(stack.post_payment(&body).await.0, 202);
    let exit = poll_until("the chaos worker to abort", Duration::from_secs(60), || {
        let status = doomed.try_wait().expect("try_wait");
        async move { status }
    })
    .await;
    assert!(!exit.success(), "the worker was expected to abort");

    // Money moved at the PSP, but the books have not been written for it yet.
    let captured: usize = stack.captures(&po1).await.len() + stack.captures(&po2).await.len();
    assert!(captured >= 1, "a capture happened before the crash");
    let before = stack.store.checkout(&payments_domain::CheckoutId::parse(id.clone()).unwrap()).await.unwrap().unwrap();
    assert!(!before.is_payment_done);
    assert!(before.orders.iter().all(|o| !o.ledger_updated), "{before:?}");

    let mut worker = spawn_worker(&stack, false);
    let done = stack.wait_done(&id).await;
    for (po, o) in [&po1, &po2].into_iter().zip(&done.orders) {
        assert_eq!(o.status, S::Success);
        assert_eq!(stack.captures(po).await.len(), 1, "{po} captured exactly once");
        assert_eq!(count(&stack, "SELECT COUNT(*) FROM wallet_movement WHERE payment_order_id = $1", po).await, 1);
        assert_eq!(count(&stack, "SELECT COUNT(*) FROM ledger_transaction WHERE payment_order_id = $1", po).await, 1);
    }
    let report = stack.store.verify().await.unwrap();
    assert!(report.is_consistent(), "{report:?}");
    worker.kill().ok();
    worker.wait().ok();
    stack.shutdown().await;
}
