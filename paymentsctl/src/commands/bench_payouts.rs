//! `paymentsctl bench-payouts`: a payout cycle over many sellers, end to end (issue 12). It
//! registers `--sellers` sellers with a payout provider through the gateway (AdminService
//! `RegisterSeller`), pays one order to each (checkouts of up to 50 orders, through
//! `POST /v1/payments`), then measures:
//! - the cycle: `RunPayouts` for a fresh period until the cycle workflow (and every run it
//!   continued as) ended, i.e. every payout workflow was started; and until every payout of the
//!   period is SETTLED in the store: payouts/s;
//! - the balance query: `GET /v1/sellers/{id}/balance` for every seller at `--concurrency`:
//!   queries/s and latency percentiles.
//!
//! Needs the gateway, a worker, the simulator and the database (`scripts/bench-payouts.sh`
//! starts them with a short return window, so payouts settle in seconds).

use crate::admin;
use crate::cli::Globals;
use crate::commands::{random_alnum, unix_secs};
use crate::stats::{LatencySummary, millis};
use anyhow::{Context, bail};
use clap::Args;
use futures::stream::{self, StreamExt};
use payments_proto::payments_v1 as pb;
use payments_store::Store;
use payments_workflows::PayoutCycleWorkflow;
use serde_json::json;
use std::time::{Duration, Instant};
use temporalio_client::WorkflowGetResultOptions;

/// Attempts of one request the gateway answers 503 (overloaded).
pub const RETRIES_MAX: usize = 120;

/// Orders per seeding checkout (each to a different seller).
pub const ORDERS_PER_CHECKOUT: usize = 50;

/// Arguments of `bench-payouts`.
#[derive(Debug, Clone, Args)]
pub struct BenchPayoutsArgs {
    /// Sellers paid in the cycle.
    #[arg(long, default_value_t = 1000)]
    pub sellers: usize,
    /// Requests in flight at once while seeding and querying balances.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
    /// Give up waiting for the payouts after this many seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout_secs: u64,
}

async fn in_flight<F, Fut>(n: usize, concurrency: u32, f: F) -> anyhow::Result<Vec<Duration>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let results: Vec<anyhow::Result<Duration>> = stream::iter(0..n)
        .map(|i| {
            let started = Instant::now();
            let call = f(i);
            async move { call.await.map(|()| started.elapsed()) }
        })
        .buffer_unordered(concurrency as usize)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Runs `bench-payouts`.
pub async fn run(globals: &Globals, args: BenchPayoutsArgs) -> anyhow::Result<()> {
    let gateway = globals.gateway_client()?;
    gateway.check_health().await?;
    let target = globals.admin()?;
    let store = Store::connect(&globals.database_url).await.context("the benchmark reads payouts from the database")?;
    let temporal = payments_worker::temporal::connect_secured(
        &globals.temporal_address,
        &globals.temporal_namespace,
        &globals.temporal_security,
    )
    .await
    .context("the benchmark waits for the cycle on Temporal")?;
    let run_id = format!("{}{}", unix_secs(), random_alnum(4)).to_ascii_lowercase();
    let seller = |i: usize| format!("bench-{run_id}-{i:05}");
    let n = args.sellers;

    let started = Instant::now();
    in_flight(n, args.concurrency, |i| {
        let (target, seller) = (target.clone(), seller(i));
        async move {
            let mut client = admin::connect(&target).await?;
            let request = pb::RegisterSellerRequest {
                seller_account: seller,
                provider: "stripe_connect".into(),
                name: "Bench Shop".into(),
                email: "bench@example.com".into(),
                country: "US".into(),
                bank_code: "110000000".into(),
                account_number: "000123456789".into(),
                holder_name: "Bench Seller".into(),
                minimums: String::new(),
            };
            client.register_seller(request).await.map(|_| ()).map_err(|s| anyhow::anyhow!("register: {s}"))
        }
    })
    .await?;
    let checkouts = n.div_ceil(ORDERS_PER_CHECKOUT);
    in_flight(checkouts, args.concurrency.min(8), |c| {
        let gateway = &gateway;
        let id = format!("bench-{run_id}-chk-{c}");
        let orders: Vec<_> = (c * ORDERS_PER_CHECKOUT..((c + 1) * ORDERS_PER_CHECKOUT).min(n))
            .map(|i| json!({"seller_account": seller(i), "amount": "10.00", "currency": "USD", "payment_order_id": format!("{id}-{i}")}))
            .collect();
        let body = json!({"checkout_id": id, "buyer_info": {"buyer_id": "bench"}, "credit_card_info": {"token": "pm_card_visa"}, "payment_orders": orders});
        async move {
            // As a real client would: an overloaded gateway (503) is asked again shortly.
            for _ in 0..RETRIES_MAX {
                let answer = gateway.create_payment(&body).await?;
                if answer.status.is_success() {
                    return Ok(());
                }
                if answer.status.as_u16() != 503 {
                    bail!("checkout refused: {}", answer.error_summary());
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            bail!("checkout refused {RETRIES_MAX} times: the gateway stayed overloaded")
        }
    })
    .await?;
    let candidates = loop {
        let ready = store.payout_candidates(None, None, None, payments_store::PAYOUT_CANDIDATES_PAGE_MAX).await?;
        let mine = ready.iter().filter(|(s, _)| s.as_str().starts_with(&format!("bench-{run_id}-"))).count();
        if mine >= n.min(payments_store::PAYOUT_CANDIDATES_PAGE_MAX) && all_paid(&store, &run_id, n).await? {
            break mine;
        }
        if started.elapsed() > Duration::from_secs(args.timeout_secs) {
            bail!("seeding did not finish in time ({mine} sellers with a balance)");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "seeded {n} sellers (one 10.00 USD capture each) in {:.1} s ({candidates}+ with a balance)",
        started.elapsed().as_secs_f64()
    );

    let period = format!("bench-{run_id}");
    let cycle_started = Instant::now();
    let mut client = admin::connect(&target).await?;
    let request =
        pb::RunPayoutsRequest { seller_account: String::new(), currency: String::new(), period: period.clone() };
    let workflow_id =
        client.run_payouts(request).await.map_err(|s| anyhow::anyhow!("run: {s}"))?.into_inner().workflow_id;
    let result = temporal
        .get_workflow_handle::<PayoutCycleWorkflow>(workflow_id.clone())
        .get_result(WorkflowGetResultOptions::default())
        .await
        .context("the payout cycle's result")?;
    let cycle = cycle_started.elapsed();
    let settled = loop {
        let counts = period_counts(&store, &period).await?;
        let done: i64 = counts.iter().filter(|(s, _)| s == "SETTLED").map(|(_, c)| c).sum();
        let ended: i64 = counts
            .iter()
            .filter(|(s, _)| matches!(s.as_str(), "SETTLED" | "FAILED" | "CANCELED"))
            .map(|(_, c)| c)
            .sum();
        if ended >= n as i64 {
            if done != n as i64 {
                bail!("payouts of {period} ended, but not all settled: {counts:?}");
            }
            break cycle_started.elapsed();
        }
        if cycle_started.elapsed() > Duration::from_secs(args.timeout_secs) {
            bail!("payouts of {period} not all settled in time: {counts:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "payout cycle over {n} sellers: every payout workflow started in {:.1} s ({:.1} workflows/s; {} started, {} existing)",
        cycle.as_secs_f64(),
        n as f64 / cycle.as_secs_f64(),
        result.started,
        result.existing
    );
    println!(
        "every payout SETTLED (reserved, sent to Stripe Connect, paid, return window 1 s) after {:.1} s: {:.1} payouts/s",
        settled.as_secs_f64(),
        n as f64 / settled.as_secs_f64()
    );

    let query_started = Instant::now();
    let latencies = in_flight(n, args.concurrency, |i| {
        let (gateway, seller) = (&gateway, seller(i));
        async move {
            let answer = gateway.get_json(&["v1", "sellers", &seller, "balance"]).await?;
            if !answer.status.is_success() {
                bail!("balance of {seller}: {}", answer.error_summary());
            }
            Ok(())
        }
    })
    .await?;
    let elapsed = query_started.elapsed();
    let s = LatencySummary::of(&latencies).context("no balance queries")?;
    println!(
        "balance query (GET /v1/sellers/{{id}}/balance) x {n} at concurrency {}: {:.1} queries/s, p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
        args.concurrency,
        n as f64 / elapsed.as_secs_f64(),
        millis(s.p50),
        millis(s.p90),
        millis(s.p99)
    );
    store.close().await;
    Ok(())
}

/// Every seeding order of this run is booked (captured, in wallet and ledger).
async fn all_paid(store: &Store, run_id: &str, n: usize) -> anyhow::Result<bool> {
    let booked: i64 = sqlx::query(
        "SELECT COUNT(*) FROM payment_order WHERE checkout_id LIKE $1 AND status = 'SUCCESS' AND wallet_updated AND ledger_updated",
    )
    .bind(format!("bench-{run_id}-chk-%"))
    .fetch_one(store.pool())
    .await
    .map(|r| sqlx::Row::get(&r, 0))?;
    Ok(booked >= n as i64)
}

async fn period_counts(store: &Store, period: &str) -> anyhow::Result<Vec<(String, i64)>> {
    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM payout WHERE period = $1 GROUP BY status")
        .bind(period)
        .fetch_all(store.pool())
        .await?;
    Ok(rows.iter().map(|r| (sqlx::Row::get(r, "status"), sqlx::Row::get(r, "n"))).collect())
}
