//! Reconciliation settings (issue 13): which PSPs this worker reconciles, their fee contracts,
//! the matching's tolerances, where reports come from, and the nightly Temporal Schedule per
//! PSP (created or updated idempotently at start-up, with a catch-up window so nights missed
//! while the cluster was down are reconciled when it is back).

use crate::WorkerConfig;
use anyhow::{Context, bail};
use clap::Args;
use payments_activities::recon::fetch::ReportSource;
use payments_recon::{FeeContract, MatchPolicy, Psp};
use payments_workflows::recon_contract::{ReconSettings, ReportOrigin};
use payments_workflows::{ReconNightlyInput, ReconNightlyWorkflow};
use std::time::Duration;
use temporalio_client::Client;
use temporalio_client::schedules::{
    CreateScheduleOptions, ScheduleAction, ScheduleCalendarSpec, ScheduleError, ScheduleOverlapPolicy, ScheduleSpec,
};

/// How far back a resumed schedule catches up on missed nights.
pub const RECON_CATCHUP_WINDOW: Duration = Duration::from_secs(7 * 24 * 3_600);

/// Reconciliation settings (worker only).
#[derive(Debug, Clone, Args)]
pub struct ReconConfig {
    /// Comma-separated PSPs to reconcile (`stripe`, `toss`); empty: the worker's PSP_PROVIDER.
    #[arg(long, env = "RECON_PSPS", default_value = "")]
    pub recon_psps: String,
    /// `daily` (a nightly Temporal Schedule per PSP) or `off`.
    #[arg(long, env = "RECON_SCHEDULE", default_value = "daily")]
    pub recon_schedule: String,
    /// Hour (UTC, 0-23) the nightly run starts; it reconciles the PSP's previous day.
    #[arg(long, env = "RECON_HOUR", default_value_t = 2)]
    pub recon_hour: u8,
    /// Where a day's report comes from: `api` (Toss settlements, Stripe balance transactions),
    /// `csv` (the daily file at RECON_CSV_BASE_URL) or `imported` (only `paymentsctl recon import`).
    #[arg(long, env = "RECON_ORIGIN", default_value = "api")]
    pub recon_origin: String,
    /// Base URL of the daily CSV files, `{base}/{psp}/{YYYY-MM-DD}.csv`.
    #[arg(long, env = "RECON_CSV_BASE_URL", default_value = "http://127.0.0.1:8090/_sim/settlements")]
    pub recon_csv_base_url: String,
    /// Days a PSP line may come after our booking before its absence is a break.
    #[arg(long, env = "RECON_WINDOW_DAYS", default_value_t = 1)]
    pub recon_window_days: i64,
    /// A fee difference up to this share of the amount (basis points) is booked automatically...
    #[arg(long, env = "RECON_FEE_TOLERANCE_BPS", default_value_t = 10)]
    pub recon_fee_tolerance_bps: u32,
    /// ...or up to this many minor units, whichever is larger.
    #[arg(long, env = "RECON_FEE_TOLERANCE_MINOR", default_value_t = 2)]
    pub recon_fee_tolerance_minor: i64,
    /// Stripe's contract, `BPS:FIXED_MINOR` (the fixed part not on zero-decimal currencies).
    #[arg(long, env = "RECON_STRIPE_FEE", default_value = "290:30")]
    pub recon_stripe_fee: String,
    /// Toss Payments' contract, `BPS:FIXED_MINOR` (VAT included).
    #[arg(long, env = "RECON_TOSS_FEE", default_value = "320:0")]
    pub recon_toss_fee: String,
    /// Attempts of each step before a run fails.
    #[arg(long, env = "RECON_ATTEMPTS_MAX", default_value_t = 10)]
    pub recon_attempts_max: u32,
}

impl ReconConfig {
    /// The PSPs reconciled; `default` (the worker's PSP) when none is set.
    pub fn psps(&self, default: &str) -> anyhow::Result<Vec<Psp>> {
        let list = if self.recon_psps.trim().is_empty() { default } else { self.recon_psps.as_str() };
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Psp::parse(s).map_err(|_| anyhow::anyhow!("RECON_PSPS: {s:?} is neither stripe nor toss")))
            .collect()
    }

    /// The settings of `psp`'s runs, checked.
    pub fn settings(&self, psp: Psp) -> anyhow::Result<ReconSettings> {
        let (name, text, fixed_on_zero_decimal) = match psp {
            Psp::Stripe => ("RECON_STRIPE_FEE", &self.recon_stripe_fee, false),
            Psp::Toss => ("RECON_TOSS_FEE", &self.recon_toss_fee, true),
        };
        let (bps, fixed) =
            text.split_once(':').with_context(|| format!("{name} {text:?}: expected BPS:FIXED_MINOR"))?;
        let bps: u32 = bps.trim().parse().with_context(|| format!("{name}: basis points"))?;
        let fixed_minor: i64 = fixed.trim().parse().with_context(|| format!("{name}: fixed minor units"))?;
        if bps > 10_000 || fixed_minor < 0 {
            bail!("{name} {text:?}: 0 to 10000 bps and a non-negative fixed part");
        }
        if !(0..=30).contains(&self.recon_window_days) || self.recon_fee_tolerance_minor < 0 {
            bail!("RECON_WINDOW_DAYS must be 0 to 30 and RECON_FEE_TOLERANCE_MINOR non-negative");
        }
        let origin = match self.recon_origin.as_str() {
            "api" => ReportOrigin::Api,
            "csv" => ReportOrigin::Csv,
            "imported" => ReportOrigin::Imported,
            other => bail!("RECON_ORIGIN {other:?}: api, csv or imported"),
        };
        Ok(ReconSettings {
            contract: FeeContract { bps, fixed_minor, fixed_on_zero_decimal },
            policy: MatchPolicy {
                window_days: self.recon_window_days,
                fee_tolerance_bps: self.recon_fee_tolerance_bps,
                fee_tolerance_minor: self.recon_fee_tolerance_minor,
            },
            origin,
            attempts_max: self.recon_attempts_max.clamp(1, 100),
        })
    }

    /// Each reconciled PSP's report source (through the worker's PSP account) and settings.
    pub fn sources(&self, worker: &WorkerConfig) -> anyhow::Result<Vec<(ReportSource, ReconSettings)>> {
        let timeout = Duration::from_millis(worker.psp_request_timeout_ms);
        self.psps(&worker.psp_provider)?
            .into_iter()
            .map(|psp| {
                let source = ReportSource::new(
                    psp,
                    &worker.psp_base_url,
                    &self.recon_csv_base_url,
                    worker.psp_secret_key.clone(),
                    timeout,
                )
                .map_err(|e| anyhow::anyhow!("PSP_BASE_URL / RECON_CSV_BASE_URL: {e}"))?;
                Ok((source, self.settings(psp)?))
            })
            .collect()
    }
}

/// The nightly schedule's id for a PSP and task queue.
pub fn schedule_id(psp: Psp, task_queue: &str) -> String {
    format!("recon-nightly-{psp}-{task_queue}")
}

/// Creates each PSP's nightly schedule, or brings it up to date; with `RECON_SCHEDULE=off`
/// existing ones are paused (their history stays visible).
pub async fn ensure_schedules(client: &Client, worker: &WorkerConfig) -> anyhow::Result<()> {
    let config = &worker.recon;
    let task_queue = &worker.shared.task_queue;
    let on = match config.recon_schedule.as_str() {
        "daily" => true,
        "off" => false,
        other => bail!("RECON_SCHEDULE {other:?}: daily or off"),
    };
    if config.recon_hour > 23 {
        bail!("RECON_HOUR must be 0 to 23");
    }
    for psp in config.psps(&worker.psp_provider)? {
        let id = schedule_id(psp, task_queue);
        let handle = client.get_schedule_handle(id.clone());
        if !on {
            match handle
                .update(
                    |u| {
                        u.set_paused(true).set_note("RECON_SCHEDULE=off");
                    },
                    Default::default(),
                )
                .await
            {
                Ok(()) => tracing::info!(schedule = id, "reconciliation schedule paused (RECON_SCHEDULE=off)"),
                Err(ScheduleError::Rpc(status)) if status.code() == tonic::Code::NotFound => {}
                Err(e) => return Err(e).context("pausing a reconciliation schedule"),
            }
            continue;
        }
        let spec =
            ScheduleSpec::from_calendar(ScheduleCalendarSpec::builder().hour(config.recon_hour.to_string()).build());
        let input = ReconNightlyInput { psp };
        // Temporal appends each run's nominal time to this id; the run reads its day from it.
        let workflow_id = format!("recon-nightly-{psp}");
        let action = || {
            ScheduleAction::start_workflow(ReconNightlyWorkflow::run, input.clone(), task_queue, workflow_id.clone())
        };
        let created = client
            .create_schedule(
                id.clone(),
                CreateScheduleOptions::builder()
                    .action(action())
                    .spec(spec.clone())
                    .overlap_policy(ScheduleOverlapPolicy::BufferAll)
                    .note(format!("reconciliation of {psp}, nightly"))
                    .build(),
            )
            .await;
        match created {
            Ok(_) => tracing::info!(schedule = id, "reconciliation schedule created"),
            Err(ScheduleError::Rpc(status)) if status.code() == tonic::Code::AlreadyExists => {}
            Err(e) => return Err(e).context("creating a reconciliation schedule"),
        }
        let action = action();
        handle
            .update(
                move |u| {
                    u.set_spec(spec)
                        .set_action(action)
                        .set_overlap_policy(ScheduleOverlapPolicy::BufferAll)
                        .set_catchup_window(RECON_CATCHUP_WINDOW)
                        .set_paused(false);
                },
                Default::default(),
            )
            .await
            .context("updating a reconciliation schedule")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::WorkerConfig;
    use payments_recon::Psp;

    /// Defaults: the worker's PSP, the published contracts, a one-day window; bad values are
    /// refused naming the setting.
    #[test]
    fn settings_are_checked() {
        let mut c = WorkerConfig::defaults().recon;
        assert_eq!(c.psps("stripe").unwrap(), [Psp::Stripe]);
        let stripe = c.settings(Psp::Stripe).unwrap();
        assert_eq!((stripe.contract.bps, stripe.contract.fixed_minor, stripe.policy.window_days), (290, 30, 1));
        assert_eq!(c.settings(Psp::Toss).unwrap().contract.bps, 320);
        c.recon_psps = "toss, stripe".into();
        assert_eq!(c.psps("stripe").unwrap(), [Psp::Toss, Psp::Stripe]);
        c.recon_psps = "paypal".into();
        assert!(c.psps("stripe").unwrap_err().to_string().contains("RECON_PSPS"));
        c.recon_stripe_fee = "2.9%".into();
        assert!(c.settings(Psp::Stripe).unwrap_err().to_string().contains("RECON_STRIPE_FEE"));
        c.recon_stripe_fee = "290:30".into();
        c.recon_origin = "ftp".into();
        assert!(c.settings(Psp::Stripe).unwrap_err().to_string().contains("RECON_ORIGIN"));
    }
}
