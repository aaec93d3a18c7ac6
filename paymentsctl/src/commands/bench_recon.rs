//! `paymentsctl bench-recon`: reconciliation of one large settlement day, in process against
//! the database (`--database-url`), without Temporal: the engine the `recon` workflow's
//! activities run. It books `--lines` captured orders (checkouts of 50 orders, each driven to
//! SUCCESS with a PSP reference and its pay-in ledger transaction), writes the PSP's settlement
//! CSV of the day for them (every 1,000th line with its amount off by one minor unit, so the
//! day has breaks to keep), then measures, each phase on its own:
//! - import: parse and store the report, spooled on disk as a download is, read back line by
//!   line (lines/s);
//! - matching: the day matched in pages of payments, both directions (lines/s);
//! - keeping the findings as breaks, and booking the settlement;
//!
//! and the process's peak resident memory during each phase (Linux `VmHWM`, reset before it
//! through `/proc/self/clear_refs`): matching reads pages, so its peak does not grow with the
//! day. Seeding is timed too but is not what is measured.

use crate::cli::Globals;
use crate::commands::{random_alnum, unix_secs};
use anyhow::{Context, bail};
use clap::Args;
use futures::stream::{self, StreamExt};
use payments_domain::checkout::draft_from_json;
use payments_domain::{NewCheckout, PaymentOrderId, PaymentOrderStatus};
use payments_recon::{FeeContract, MatchPolicy, Psp};
use payments_store::{ReportHeader, ReportSource, ReportSpool, SpoolFormat, Store, Transition};
use serde_json::json;
use std::fmt::Write as _;
use std::time::Instant;

/// Orders per seeding checkout.
const ORDERS_PER_CHECKOUT: usize = 50;
/// Every this many lines, one carries an amount off by one minor unit (a break to keep).
const BREAK_EVERY: usize = 1_000;
/// Stripe's contract, as the simulator charges it.
const CONTRACT: FeeContract = FeeContract { bps: 290, fixed_minor: 30, fixed_on_zero_decimal: false };

/// Arguments of `bench-recon`.
#[derive(Debug, Clone, Args)]
pub struct BenchReconArgs {
    /// Settlement lines (and captured orders) of the day.
    #[arg(long, default_value_t = 100_000)]
    pub lines: usize,
    /// Seeding checkouts written at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,
}

/// A memory figure of this process from `/proc/self/status` (`VmHWM`, `VmRSS`), in MiB
/// (`None` off Linux).
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resets the peak to the current resident size (Linux: `5` to `clear_refs`) and answers that
/// size: what the phase starts from (memory freed earlier is often kept by the allocator).
fn reset_peak() -> Option<f64> {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_mib("VmRSS:")
}

fn report(phase: &str, lines: usize, started: Instant, before: Option<f64>) {
    let secs = started.elapsed().as_secs_f64();
    let peak = match (status_mib("VmHWM:"), before) {
        (Some(peak), Some(before)) => format!("{peak:.0} MiB (+{:.0} MiB in the phase)", (peak - before).max(0.0)),
        _ => "n/a".to_owned(),
    };
    println!("{phase:<28} {secs:>8.2} s  {:>10.0} lines/s  peak RSS {peak}", lines as f64 / secs.max(1e-9));
}

/// Runs `bench-recon`.
pub async fn run(globals: &Globals, args: BenchReconArgs) -> anyhow::Result<()> {
    let store = Store::connect(&globals.database_url).await.context("the benchmark works on the database")?;
    let run_id = format!("{}{}", unix_secs(), random_alnum(4)).to_ascii_lowercase();
    let n = args.lines;
    let started = Instant::now();
    let checkouts = n.div_ceil(ORDERS_PER_CHECKOUT);
    let seeded: Vec<anyhow::Result<()>> = stream::iter(0..checkouts)
        .map(|c| seed_checkout(&store, &run_id, c, n))
        .buffer_unordered(args.concurrency as usize)
        .collect()
        .await;
    seeded.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    println!(
        "seeded {n} captured orders with their pay-in ledger transactions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if store.backend() == payments_store::Backend::Postgres {
        // A deployment's orders and ledger have statistics (autovacuum); fresh seed rows do not.
        sqlx::query("ANALYZE payment_order").execute(store.pool()).await?;
        sqlx::query("ANALYZE ledger_transaction").execute(store.pool()).await?;
        sqlx::query("ANALYZE ledger_entry").execute(store.pool()).await?;
    }

    let psp = Psp::Stripe;
    let day = psp.day_of_ms(i64::try_from(unix_secs()).unwrap_or(i64::MAX).saturating_mul(1_000));
    let mut spool = ReportSpool::new(psp, SpoolFormat::Csv)?;
    settlement_csv(&mut spool, &run_id, n, &day.to_string())?;
    let before = reset_peak();
    let phase = Instant::now();
    let name = format!("bench-{run_id}.csv");
    let header = ReportHeader { source: ReportSource::Csv, name: &name, day: Some(day) };
    let imported = store.import_spooled_report(header, &mut spool).await?;
    report("import (parse + store)", n, phase, before);
    if imported.lines_stored != n as u64 {
        bail!("stored {} lines of {n} (was this day imported before?)", imported.lines_stored);
    }

    let policy = MatchPolicy { window_days: 0, fee_tolerance_bps: 10, fee_tolerance_minor: 2 };
    let before = reset_peak();
    let phase = Instant::now();
    let (day_report, findings) = store.match_settlement_day(psp, day, &CONTRACT, &policy).await?;
    report("matching (both directions)", n, phase, before);
    let before = reset_peak();
    let phase = Instant::now();
    let (kept, _) = store.keep_findings(psp, day, &findings).await?;
    report("keeping breaks (per break)", findings.len().max(1), phase, before);
    let before = reset_peak();
    let phase = Instant::now();
    let parts = store.book_settlement(psp, day, &CONTRACT).await?;
    report("booking the settlement", n, phase, before);
    println!(
        "day {day}: {} lines, {} matched, {} breaks ({} new), {} settlement part(s)",
        day_report.lines,
        day_report.matched,
        findings.len(),
        kept.new,
        parts.len()
    );
    let over = findings.iter().filter(|f| f.kind == payments_recon::BreakKind::AmountOver).count();
    if over != n / BREAK_EVERY {
        bail!("{over} amount breaks found where {} were written", n / BREAK_EVERY);
    }
    store.close().await;
    Ok(())
}

fn order_id(run_id: &str, i: usize) -> String {
    format!("br-{run_id}-{i:06}")
}

async fn seed_checkout(store: &Store, run_id: &str, c: usize, n: usize) -> anyhow::Result<()> {
    let ids: Vec<String> =
        (c * ORDERS_PER_CHECKOUT..((c + 1) * ORDERS_PER_CHECKOUT).min(n)).map(|i| order_id(run_id, i)).collect();
    let orders: Vec<_> = ids
        .iter()
        .map(|id| json!({"seller_account": "bench-seller", "amount": "10.00", "currency": "USD", "payment_order_id": id}))
        .collect();
    let body = json!({
        "checkout_id": format!("brc-{run_id}-{c}"),
        "buyer_info": {"buyer_id": "bench"},
        "credit_card_info": {"token": "pm_card_visa"},
        "payment_orders": orders,
    });
    let checkout = NewCheckout::parse(draft_from_json(&body).map_err(|e| anyhow::anyhow!("{e:?}"))?)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    store.create_checkout(&checkout, None).await?;
    for id in ids {
        let order = PaymentOrderId::parse(&id)?;
        store.transition(&order, &Transition::to(PaymentOrderStatus::Executing, "bench")).await?;
        let mut captured = Transition::to(PaymentOrderStatus::Success, "bench capture");
        captured.psp_reference = Some(format!("pi_{id}"));
        store.transition(&order, &captured).await?;
        store.post_order_ledger(&order).await?;
    }
    Ok(())
}

/// The PSP's CSV of the day: one charge per order, every [`BREAK_EVERY`]th one a minor unit off.
/// The day's settlement CSV, written row by row into `spool` as a download would arrive.
fn settlement_csv(spool: &mut ReportSpool, run_id: &str, n: usize, day: &str) -> anyhow::Result<()> {
    let mut row = payments_recon::parse::CSV_COLUMNS.join(",");
    row.push('\n');
    spool.write(row.as_bytes())?;
    for i in 0..n {
        row.clear();
        let id = order_id(run_id, i);
        let amount: i64 = if i % BREAK_EVERY == BREAK_EVERY - 1 { 1_001 } else { 1_000 };
        let fee = CONTRACT.fee_minor(amount, "USD");
        let _ = writeln!(row, "stripe,txn_{id},pi_{id},{id},charge,{amount},{fee},{},usd,{day},", amount - fee);
        spool.write(row.as_bytes())?;
    }
    Ok(())
}
