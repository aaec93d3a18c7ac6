//! Secrets never leave the adapter (point 7 of the money-safety issue). The failure cases of
//! the e2e suite run here against both PSPs and both databases -- answers lost after a capture
//! (a Toss billing key in the URL path), a token the PSP does not know (Stripe echoes it in its
//! error), declines, refunds whose answers are lost and parked as dead letters, webhooks carrying
//! PaymentMethod ids -- and then every table, every log line of the platform (captured at DEBUG
//! from this process), every Temporal history and every API answer is searched for the test
//! secrets: the payment tokens, the PSP secret keys, the webhook secrets and the token keys.

mod common;

use common::{
    STATE_TIMEOUT, paid_order, paymentsctl, quick_limits, refund_accepted, wait_dead_letter, wait_janitor,
    wait_refund_final,
};
use payments_store::{Backend, DeadLetterStatus, RefundStatus, Store};
use payments_testkit::{Db, Stack, StackOptions, unique};
use prost::Message;
use rstest::rstest;
use serde_json::json;
use sqlx::Row;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use temporalio_client::WorkflowFetchHistoryOptions;

/// Every log line written in this process.
static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures the platform's logs at DEBUG (the simulator's own are the PSP's, not ours).
fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(Arc::clone(&buffer));
        let filter = tracing_subscriber::EnvFilter::new("debug,psp_simulator=off");
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(move || writer.clone()).try_init();
        buffer
    })
    .clone()
}

/// What must never be found.
fn secrets(sim: &psp_simulator::SimConfig) -> Vec<String> {
    let mut all: Vec<String> = [
        "billing_sim_lost_response",
        "billing_decline",
        "billing_success",
        "billing_unknown_to_toss",
        "pm_card_sim_lost_response",
        "pm_card_unknown",
        "pm_card_chargeDeclined",
        "pm_card_visa",
        "sk_test_testkit",
        "test_sk_testkit",
        payments_store::DEV_TOKEN_KEY,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    all.push(sim.stripe_webhook_secret.clone());
    all.push(sim.toss_webhook_secret.clone());
    all
}

/// Every text value of every table, as `table.column: value`.
async fn every_stored_text(store: &Store) -> Vec<String> {
    let tables: Vec<String> = match store.backend() {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = 'public'"
        }
    }
    .pipe(|sql| sqlx::query(sql))
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    let mut texts = Vec::new();
    for table in tables {
        let columns_sql = match store.backend() {
            Backend::Sqlite => format!("SELECT name FROM pragma_table_info('{table}')"),
            Backend::Postgres => {
                format!("SELECT CAST(column_name AS TEXT) FROM information_schema.columns WHERE table_name = '{table}'")
            }
        };
        let columns: Vec<String> =
            sqlx::query(&columns_sql).fetch_all(store.pool()).await.unwrap().iter().map(|r| r.get(0)).collect();
        for column in columns {
            let sql = format!("SELECT CAST(\"{column}\" AS TEXT) FROM \"{table}\"");
            for row in sqlx::query(&sql).fetch_all(store.pool()).await.unwrap() {
                if let Ok(Some(value)) = row.try_get::<Option<String>, _>(0) {
                    texts.push(format!("{table}.{column}: {value}"));
                }
            }
        }
    }
    texts
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

/// Every event of every workflow, protobuf-encoded (payloads hold their JSON verbatim).
async fn histories(stack: &Stack, workflow_ids: &[String]) -> Vec<(String, Vec<u8>)> {
    let temporal = stack.temporal().await;
    let mut all = Vec::new();
    for id in workflow_ids {
        let handle = temporal.get_workflow_handle::<payments_workflows::CheckoutWorkflow>(id.clone());
        let events = handle.fetch_history(WorkflowFetchHistoryOptions::default()).into_events().await.expect("history");
        all.extend(events.iter().map(|e| (id.clone(), e.encode_to_vec())));
    }
    all
}

fn assert_absent(place: &str, haystack: &[u8], secrets: &[String]) {
    for secret in secrets {
        let found = haystack.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "{secret:?} found in {place}: {}", String::from_utf8_lossy(haystack));
    }
}

/// Toss: a billing charge whose answer is lost while lookups are down (the janitor settles
/// it), a declined billing key, a refund whose answers are lost (a dead letter, retried), and
/// a hosted payment. Stripe: a capture whose answer is lost, a token Stripe does not know, a
/// decline, webhooks. Then nothing anywhere holds a secret.
#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_stored_logged_or_answered(
    #[values(Db::Sqlite, Db::Postgres)] db: Db,
    #[values("toss", "stripe")] provider: &str,
) {
    let Some(url) = db.url().await else { return };
    let logs = capture_logs();
    let options = StackOptions {
        database_url: Some(url),
        psp_provider: provider.into(),
        waits: quick_limits(),
        ..StackOptions::new()
    };
    let secrets = secrets(&options.sim);
    let stack = Stack::start(options).await;
    let (lost, declined, unknown, currency, amount) = match provider {
        "toss" => ("billing_sim_lost_response", "billing_decline", "billing_unknown_to_toss", "KRW", "9900"),
        _ => ("pm_card_sim_lost_response", "pm_card_chargeDeclined", "pm_card_unknown", "USD", "9.90"),
    };
    stack.psp_outage(false, true, false).await;
    let (lost_checkout, lost_po) = stack.post_one_order(lost, amount, currency).await;
    wait_janitor(&stack, &lost_checkout, &lost_po).await;
    stack.psp_outage(false, false, false).await;
    stack.wait_done(&lost_checkout).await;
    let mut checkouts = vec![lost_checkout];
    for token in [declined, unknown] {
        let (checkout, _) = stack.post_one_order(token, amount, currency).await;
        stack.wait_done(&checkout).await;
        checkouts.push(checkout);
    }
    let success = if provider == "toss" { "billing_success" } else { "pm_card_visa" };
    let po = paid_order(&stack, success, amount, currency).await;
    checkouts.push(po.trim_end_matches("-1").to_owned());
    stack.sim_outage(json!({"refund_answers_lost": true})).await;
    let refund = refund_accepted(&stack, &po, None, "damaged item").await;
    let letter = format!("{refund}:psp.refund");
    wait_dead_letter(&stack, &letter, DeadLetterStatus::Open, 1).await;
    stack.sim_outage(json!({})).await;
    paymentsctl(&stack, &["dlq", "retry", &letter, "--operator", "dana", "--reason", "PSP back"]).await.unwrap();
    assert_eq!(wait_refund_final(&stack, &refund).await.status, RefundStatus::Succeeded);
    if provider == "toss" {
        let hosted = unique("hosted");
        let body = json!({"checkout_id": hosted, "buyer_info": {"buyer_id": "buyer-1"},
            "payment_orders": [{"seller_account": "seller-a", "amount": "20000", "currency": "KRW",
                "payment_order_id": format!("{hosted}-1")}]});
        stack.http.post(format!("{}/v1/checkouts", stack.rest_url)).json(&body).send().await.unwrap();
        common::pay_hosted(&stack, &hosted, 20000).await;
        stack.wait_done(&hosted).await;
        checkouts.push(hosted);
    } else {
        // The simulator's Stripe events carry the PaymentMethod id; wait for them.
        stack
            .poll_until("webhooks stored", STATE_TIMEOUT, || async {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_event")
                    .fetch_one(stack.store.pool())
                    .await
                    .ok()?;
                (n > 0).then_some(())
            })
            .await;
    }

    for text in every_stored_text(&stack.store).await {
        assert_absent("the database", text.as_bytes(), &secrets);
    }
    let mut workflows: Vec<String> = checkouts.iter().map(|c| format!("checkout-{c}")).collect();
    workflows.push(format!("refund-{refund}"));
    for (id, event) in histories(&stack, &workflows).await {
        assert_absent(&format!("the history of {id}"), &event, &secrets);
    }
    for checkout in &checkouts {
        let (_, answer) = stack.get(&format!("/v1/checkouts/{checkout}")).await;
        assert_absent("GET /v1/checkouts", answer.to_string().as_bytes(), &secrets);
        let (_, order) = stack.get(&format!("/v1/payments/{checkout}-1")).await;
        assert_absent("GET /v1/payments", order.to_string().as_bytes(), &secrets);
    }
    let (_, refunds) = stack.get(&format!("/v1/payments/{po}/refunds")).await;
    assert_absent("GET refunds", refunds.to_string().as_bytes(), &secrets);
    let letters = paymentsctl::commands::dlq::list(&stack.admin_target(), None, 100).await.unwrap();
    assert_absent("ListDeadLetters", format!("{letters:?}").as_bytes(), &secrets);
    common::assert_books_consistent(&stack).await;
    stack.shutdown().await;
    let captured = logs.lock().unwrap().clone();
    assert!(!captured.is_empty(), "logs were captured");
    assert_absent("the logs", &captured, &secrets);
}
