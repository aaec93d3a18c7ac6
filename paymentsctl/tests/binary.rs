//! The `paymentsctl` binary as an operator runs it, against a real stack: what it prints on
//! stdout, its exit status, and what its commands did. The keys reach it through its
//! environment (`PAYMENTS_ADMIN_KEY`, ...), never on the command line. Both databases.
//!
//! A refund whose PSP is down past its retries becomes a dead letter; `dlq list` and
//! `dlq show` print it, `dlq resolve` closes it (the refund ends FAILED `resolved_by_operator`),
//! and `dlq show` of an unknown id fails with a message on stderr and a non-zero exit.

use payments_domain::PaymentOrderStatus;
use payments_store::{DeadLetterStatus, RefundStatus};
use payments_testkit::{Db, Stack, StackOptions};
use payments_workflows::messages::WaitLimits;
use rstest::rstest;
use serde_json::{Value, json};
use std::process::{Command, Output};
use std::time::Duration;

const STATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the binary with the stack's addresses and keys in its environment.
async fn paymentsctl(stack: &Stack, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_paymentsctl"));
    command
        .args(args)
        .env("PAYMENTS_GATEWAY_URL", &stack.rest_url)
        .env("PAYMENTS_GATEWAY_GRPC", &stack.grpc_url)
        .env("PAYMENTS_API_KEY", &stack.payments_key)
        .env("PAYMENTS_ADMIN_KEY", &stack.admin_key)
        .env("DATABASE_URL", &stack.database_url)
        .env("TEMPORAL_ADDRESS", &stack.temporal_address);
    tokio::task::spawn_blocking(move || command.output().expect("run paymentsctl")).await.unwrap()
}

/// stdout of a run that must succeed.
async fn printed(stack: &Stack, args: &[&str]) -> String {
    let out = paymentsctl(stack, args).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "paymentsctl {args:?}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    stdout.into_owned()
}

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_commands_print_and_act(#[values(Db::Sqlite, Db::Postgres)] db: Db) {
    let Some(url) = db.url().await else { return };
    let waits = WaitLimits { psp_attempts_max: 2, unknown_recheck_secs: [1, 1, 1], ..WaitLimits::DEFAULT };
    let stack = Stack::start(StackOptions { database_url: Some(url), waits, ..StackOptions::new() }).await;
    let (checkout, po) = stack.post_one_order("pm_card_visa", "20.00", "USD").await;
    assert_eq!(stack.wait_done(&checkout).await.orders[0].status, PaymentOrderStatus::Success);
    stack.psp_outage(false, false, true).await;
    let resp = stack
        .http
        .post(format!("{}/v1/payments/{po}/refunds", stack.rest_url))
        .json(&json!({ "amount": "5.00", "reason": "damaged item" }))
        .send()
        .await
        .expect("POST refunds");
    assert_eq!(resp.status().as_u16(), 202);
    let refund = resp.json::<Value>().await.unwrap()["refund_id"].as_str().expect("refund_id").to_owned();
    let dl_id = format!("{refund}:psp.refund");
    stack
        .poll_until("the dead letter", STATE_TIMEOUT, || async {
            stack.store.dead_letter(&dl_id).await.ok().flatten().filter(|d| d.status == DeadLetterStatus::Open)
        })
        .await;

    let listed = printed(&stack, &["dlq", "list", "--status", "open"]).await;
    let row: Vec<&str> =
        listed.lines().find(|l| l.starts_with(&dl_id)).unwrap_or_default().split_whitespace().collect();
    assert_eq!(row.get(..4), Some(&[dl_id.as_str(), "OPEN", "2", "psp.refund"][..]), "dlq list printed:\n{listed}");

    let shown = printed(&stack, &["dlq", "show", &dl_id]).await;
    let workflow_line = format!("workflow_id    refund-{refund}");
    for line in ["status         OPEN", "attempts       2", workflow_line.as_str()] {
        assert!(shown.lines().any(|l| l == line), "dlq show lacks {line:?}:\n{shown}");
    }
    let last_error = shown.lines().find_map(|l| l.strip_prefix("last_error")).unwrap_or("-").trim();
    assert_ne!(last_error, "-", "dlq show printed no last error:\n{shown}");
    let as_json: Value = serde_json::from_str(&printed(&stack, &["dlq", "show", &dl_id, "--json"]).await).unwrap();
    let fields = (as_json["dead_letter_id"].as_str(), as_json["status"].as_str());
    assert_eq!(fields, (Some(dl_id.as_str()), Some("OPEN")), "{as_json}");

    let note = "PSP dashboard shows no refund";
    printed(&stack, &["dlq", "resolve", &dl_id, "--reason", note, "--operator", "erin"]).await;
    let letter = stack.store.dead_letter(&dl_id).await.unwrap().expect("letter");
    assert_eq!(letter.status, DeadLetterStatus::Resolved);
    assert_eq!((letter.resolved_by.as_deref(), letter.resolution.as_deref()), (Some("erin"), Some(note)));
    let refund_id = payments_store::RefundId::parse(refund.clone()).unwrap();
    let ended = stack
        .poll_until("the refund to end", STATE_TIMEOUT, || async {
            stack.store.refund(&refund_id).await.ok().flatten().filter(|r| r.status != RefundStatus::Requested)
        })
        .await;
    assert_eq!((ended.status, ended.failure_code.as_deref()), (RefundStatus::Failed, Some("resolved_by_operator")));
    let shown = printed(&stack, &["dlq", "show", &dl_id]).await;
    assert!(shown.lines().any(|l| l == "status         RESOLVED"), "{shown}");

    let missing = paymentsctl(&stack, &["dlq", "show", "po-none:refund:1:psp.refund"]).await;
    assert!(!missing.status.success(), "an unknown dead letter is an error");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.starts_with("error:"), "{stderr}");
    assert!(!stderr.contains(&stack.admin_key), "no key in errors: {stderr}");
    assert!(stack.sim_refunds(&po).await.is_empty(), "nothing refunded at the PSP");
    stack.shutdown().await;
}
