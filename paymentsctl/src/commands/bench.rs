//! `paymentsctl bench`: submits many checkouts through the gateway with bounded concurrency
//! and waits for each checkout workflow's result on Temporal. A checkout's latency runs from
//! just before its `POST /v1/payments` to the arrival of a workflow result in which every
//! order is SUCCESS; anything else is a failure. A warm-up batch runs first and is not counted.

use crate::cli::Globals;
use crate::commands::{random_alnum, unix_secs};
use crate::gateway::Gateway;
use crate::stats::{LatencySummary, millis};
use anyhow::{Context, bail};
use clap::Args;
use futures::stream::{self, StreamExt};
use payments_domain::PaymentOrderStatus;
use payments_workflows::{CheckoutResult, CheckoutWorkflow};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use temporalio_client::{Client, WorkflowGetResultOptions};

/// Distinct sellers the benchmark spreads orders over.
pub const SELLERS: usize = 50;
/// Failure reasons printed in full; the rest are only counted.
pub const FAILURES_SHOWN: usize = 5;

/// Arguments of `bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Checkouts measured.
    #[arg(long, default_value_t = 300)]
    pub checkouts: usize,
    /// Checkouts in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Payment orders per checkout, each to a different seller.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=SELLERS as i64))]
    pub orders_per_checkout: u32,
    /// Checkouts run first to warm up every component; not measured.
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Give up on one checkout's workflow result after this many seconds (a failure).
    #[arg(long, default_value_t = 120)]
    pub result_timeout_secs: u64,
}

/// The `POST /v1/payments` body of benchmark checkout number `n`: `orders` USD orders to
/// distinct sellers (`seller-<(n + k) % 50>`), amounts between 10.00 and 99.99.
pub fn bench_body(checkout_id: &str, n: usize, orders: usize) -> Value {
    let orders: Vec<Value> = (0..orders)
        .map(|k| {
            let cents = 1000 + (n * 7919 + k * 104_729) % 9000;
            json!({
                "seller_account": format!("seller-{}", (n + k) % SELLERS),
                "amount": format!("{}.{:02}", cents / 100, cents % 100),
                "currency": "USD",
                "payment_order_id": format!("{checkout_id}-{}", k + 1),
            })
        })
        .collect();
    json!({
        "checkout_id": checkout_id,
        "buyer_info": {"buyer_id": "bench-buyer", "name": "Bench Buyer"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": orders,
    })
}

/// Why a workflow result does not count as a success; `None` when it does.
pub fn result_problem(result: &CheckoutResult, orders: usize) -> Option<String> {
    let bad: Vec<String> = result
        .orders
        .iter()
        .filter(|o| o.status != PaymentOrderStatus::Success)
        .map(|o| match &o.failure_code {
            Some(code) => format!("{} {} ({code})", o.payment_order_id, o.status),
            None => format!("{} {}", o.payment_order_id, o.status),
        })
        .collect();
    if !bad.is_empty() {
        Some(format!("orders not SUCCESS: {}", bad.join(", ")))
    } else if result.orders.len() != orders {
        Some(format!("{} order results for {orders} orders", result.orders.len()))
    } else if !result.is_payment_done {
        Some("workflow ended with is_payment_done = false".to_owned())
    } else {
        None
    }
}

/// What one batch of checkouts produced.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Latency of every successful checkout.
    pub latencies: Vec<Duration>,
    /// One reason per failed checkout.
    pub failures: Vec<String>,
    /// From the first submission to the last result.
    pub wall: Duration,
}

struct Runner {
    gateway: Gateway,
    temporal: Client,
    run_id: String,
    orders: usize,
    concurrency: usize,
    result_timeout: Duration,
}

impl Runner {
    /// One checkout: submit, wait for the workflow's result, judge it.
    async fn one(&self, checkout_id: String, n: usize) -> Result<Duration, String> {
        let body = bench_body(&checkout_id, n, self.orders);
        let t0 = Instant::now();
        let answer = self.gateway.create_payment(&body).await.map_err(|e| format!("{checkout_id}: {e:#}"))?;
        if answer.status != StatusCode::ACCEPTED {
            return Err(format!("{checkout_id}: HTTP {} (expected 202): {}", answer.status, answer.error_summary()));
        }
        let handle = self.temporal.get_workflow_handle::<CheckoutWorkflow>(format!("checkout-{checkout_id}"));
        let waited =
            tokio::time::timeout(self.result_timeout, handle.get_result(WorkflowGetResultOptions::default())).await;
        let t1 = Instant::now();
        let result = waited
            .map_err(|_| {
                let secs = self.result_timeout.as_secs();
                format!("{checkout_id}: no workflow result within {secs}s")
            })?
            .map_err(|e| format!("{checkout_id}: workflow: {e}"))?;
        match result_problem(&result, self.orders) {
            None => Ok(t1 - t0),
            Some(problem) => Err(format!("{checkout_id}: {problem}")),
        }
    }

    /// Runs checkouts `bench-<run id>-<prefix><n>` for `n` in `0..count`.
    async fn batch(&self, prefix: &str, count: usize) -> BatchOutcome {
        let started = Instant::now();
        let results: Vec<Result<Duration, String>> = stream::iter(0..count)
            .map(|n| self.one(format!("bench-{}-{prefix}{n}", self.run_id), n))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut outcome = BatchOutcome { wall: started.elapsed(), ..BatchOutcome::default() };
        for r in results {
            match r {
                Ok(latency) => outcome.latencies.push(latency),
                Err(reason) => outcome.failures.push(reason),
            }
        }
        outcome
    }
}

fn print_failures(failures: &[String]) {
    for reason in failures.iter().take(FAILURES_SHOWN) {
        eprintln!("  failed: {reason}");
    }
    if failures.len() > FAILURES_SHOWN {
        eprintln!("  ... and {} more", failures.len() - FAILURES_SHOWN);
    }
}

/// The benchmark's report as text.
pub fn render(checkouts: usize, outcome: &BatchOutcome) -> String {
    let wall = outcome.wall.as_secs_f64();
    let rate = if wall > 0.0 { outcome.latencies.len() as f64 / wall } else { 0.0 };
    let mut out = format!(
        "checkouts:    {checkouts}\nfailures:     {}\nwall time:    {wall:.3} s\n\
         throughput:   {rate:.1} checkouts/s\n",
        outcome.failures.len()
    );
    match LatencySummary::of(&outcome.latencies) {
        Some(s) => out.push_str(&format!(
            "latency p50:  {:.1} ms\nlatency p90:  {:.1} ms\nlatency p99:  {:.1} ms\n\
             latency max:  {:.1} ms\n",
            millis(s.p50),
            millis(s.p90),
            millis(s.p99),
            millis(s.max)
        )),
        None => out.push_str("latency:      no successful checkout\n"),
    }
    out
}

/// Runs `bench`.
pub async fn run(globals: &Globals, args: BenchArgs) -> anyhow::Result<()> {
    let gateway = globals.gateway_client()?;
    gateway.check_health().await?;
    let temporal = payments_worker::temporal::connect_secured(
        &globals.temporal_address,
        &globals.temporal_namespace,
        &globals.temporal_security,
    )
    .await
    .context("the benchmark waits for workflow results on Temporal")?;
    let runner = Runner {
        gateway,
        temporal,
        run_id: format!("{}{}", unix_secs(), random_alnum(4)),
        orders: args.orders_per_checkout as usize,
        concurrency: args.concurrency as usize,
        result_timeout: Duration::from_secs(args.result_timeout_secs),
    };
    println!(
        "run bench-{}: {} checkouts x {} orders, concurrency {}, warm-up {}",
        runner.run_id, args.checkouts, runner.orders, runner.concurrency, args.warmup
    );
    if args.warmup > 0 {
        let warm = runner.batch("w", args.warmup).await;
        if !warm.failures.is_empty() {
            eprintln!("warning: {} of {} warm-up checkouts failed", warm.failures.len(), args.warmup);
            print_failures(&warm.failures);
        }
    }
    let outcome = runner.batch("", args.checkouts).await;
    print!("{}", render(args.checkouts, &outcome));
    if !outcome.failures.is_empty() {
        print_failures(&outcome.failures);
        bail!("{} of {} checkouts failed", outcome.failures.len(), args.checkouts);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use payments_workflows::OrderResult;

    #[test]
    fn bench_body_is_a_valid_checkout_with_distinct_sellers() {
        for n in [0, 1, 49, 50, 299] {
            let id = format!("bench-1700000000abcd-{n}");
            let body = bench_body(&id, n, 3);
            let orders = body["payment_orders"].as_array().unwrap();
            let sellers: std::collections::BTreeSet<&str> =
                orders.iter().map(|o| o["seller_account"].as_str().unwrap()).collect();
            assert_eq!(sellers.len(), 3);
            assert!(sellers.contains(format!("seller-{}", n % SELLERS).as_str()));
            for o in orders {
                let amount = o["amount"].as_str().unwrap();
                let (units, cents) = amount.split_once('.').unwrap();
                assert_eq!(cents.len(), 2, "{amount}");
                assert!((10..=99).contains(&units.parse::<u32>().unwrap()), "{amount}");
            }
            let draft = payments_domain::checkout::draft_from_json(&body).expect("draft");
            payments_domain::NewCheckout::parse(draft).expect("valid checkout");
        }
    }

    fn result(statuses: &[PaymentOrderStatus], done: bool) -> CheckoutResult {
        let orders = statuses
            .iter()
            .enumerate()
            .map(|(i, s)| OrderResult {
                payment_order_id: payments_domain::PaymentOrderId::parse(format!("c-{i}")).unwrap(),
                status: *s,
                failure_code: (*s != PaymentOrderStatus::Success).then(|| "card_declined".into()),
            })
            .collect();
        CheckoutResult { checkout_id: payments_domain::CheckoutId::parse("c").unwrap(), is_payment_done: done, orders }
    }

    #[test]
    fn only_all_success_counts() {
        use PaymentOrderStatus::{Failed, Success};
        assert_eq!(result_problem(&result(&[Success, Success], true), 2), None);
        let p = result_problem(&result(&[Success, Failed], true), 2).unwrap();
        assert!(p.contains("c-1 FAILED (card_declined)"), "{p}");
        assert!(result_problem(&result(&[Success], true), 2).is_some());
        assert!(result_problem(&result(&[Success, Success], false), 2).is_some());
    }

    #[test]
    fn report_shows_rate_and_percentiles() {
        let outcome = BatchOutcome {
            latencies: (1..=10).map(Duration::from_millis).collect(),
            failures: vec!["x".into()],
            wall: Duration::from_secs(2),
        };
        let text = render(11, &outcome);
        assert!(text.contains("checkouts:    11\n"));
        assert!(text.contains("failures:     1\n"));
        assert!(text.contains("throughput:   5.0 checkouts/s\n"));
        assert!(text.contains("latency p50:  5.0 ms\n"));
        assert!(text.contains("latency p90:  9.0 ms\n"));
        assert!(text.contains("latency max:  10.0 ms\n"));
    }
}
