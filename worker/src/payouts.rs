//! Pay-out configuration shared by the worker and the gateway (the payout delay, the
//! schedule, the payout workflow's waits), the providers the worker pays through, and the
//! Temporal Schedule of the payout cycle, created or updated idempotently at worker start-up.

use crate::config::SecretKey;
use anyhow::Context;
use clap::Args;
use payments_activities::payout::stripe::StripeConnectClient;
use payments_activities::payout::toss::TossPayoutClient;
use payments_activities::payout::{PayoutProviderKind, PayoutProviders};
use payments_store::PayoutHolds;
use payments_workflows::payout_contract::RollingReserve;
use payments_workflows::payout_cycle::{PAYOUT_CYCLE_PAGE_MAX, PayoutCycleWorkflow, PayoutInterval};
use payments_workflows::{PayoutCycleInput, PayoutTimings};
use std::sync::Arc;
use std::time::Duration;
use temporalio_client::Client;
use temporalio_client::schedules::{
    CreateScheduleOptions, ScheduleAction, ScheduleCalendarSpec, ScheduleError, ScheduleOverlapPolicy, ScheduleSpec,
};

/// The prefix of the payout cycle's schedule id, `payout-cycle-{task queue}` (one schedule per
/// deployment sharing a namespace), also the prefix of its workflows' ids.
pub const PAYOUT_SCHEDULE_ID_PREFIX: &str = "payout-cycle";

/// The payout schedule's id for a task queue.
pub fn schedule_id(task_queue: &str) -> String {
    format!("{PAYOUT_SCHEDULE_ID_PREFIX}-{task_queue}")
}
/// The published test security key of Toss payouts (the simulator's); refused in production.
pub const TOSS_PAYOUTS_SECURITY_KEY_TEST: &str = "7a3f2c9e1b8d4f6a0c5e7b9d2f4a6c8e1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a";
/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Pay-out settings read by the worker and the gateway.
#[derive(Debug, Clone, Args)]
pub struct PayoutConfig {
    /// Days a captured payment stays pending before it can be paid out (Stripe's `delay_days`).
    #[arg(long, env = "PAYOUT_DELAY_DAYS", default_value_t = 7)]
    pub payout_delay_days: u32,
    /// How often the payout cycle runs: `monthly`, `weekly`, `daily`, or `off` (no schedule;
    /// payouts only on demand).
    #[arg(long, env = "PAYOUT_SCHEDULE", default_value = "monthly")]
    pub payout_schedule: String,
    /// The day the cycle runs: day of the month 1 to 28 (monthly), ISO weekday 1 (Monday) to 7
    /// (weekly); unused for daily.
    #[arg(long, env = "PAYOUT_ANCHOR", default_value_t = 1)]
    pub payout_anchor: u32,
    /// The hour (UTC) the cycle runs.
    #[arg(long, env = "PAYOUT_HOUR_UTC", default_value_t = 3)]
    pub payout_hour_utc: u32,
    /// Seconds a payout waits for a provider event before asking the provider.
    #[arg(long, env = "PAYOUT_STATUS_CHECK_SECS", default_value_t = PayoutTimings::DEFAULT.status_check_secs)]
    pub payout_status_check_secs: u64,
    /// Seconds after the provider reports a payout paid during which a bank may still return
    /// it; the payout settles after.
    #[arg(long, env = "PAYOUT_RETURN_WINDOW_SECS", default_value_t = PayoutTimings::DEFAULT.return_window_secs)]
    pub payout_return_window_secs: u64,
    /// Rolling reserve: basis points of every capture held back after the delay (0: none;
    /// 1000 = 10 %), released `PAYOUT_RESERVE_DAYS` after the capture.
    #[arg(long, env = "PAYOUT_RESERVE_BPS", default_value_t = 0)]
    pub payout_reserve_bps: u32,
    /// Days after its capture until a capture's rolling reserve is released (more than
    /// `PAYOUT_DELAY_DAYS` when a reserve is set).
    #[arg(long, env = "PAYOUT_RESERVE_DAYS", default_value_t = 90)]
    pub payout_reserve_days: u32,
    /// Payouts one cycle run starts before it continues as new.
    #[arg(long, env = "PAYOUT_PAGE_SIZE", default_value_t = 200)]
    pub payout_page_size: u32,
}

impl PayoutConfig {
    /// The payout delay in milliseconds.
    pub fn delay_ms(&self) -> i64 {
        i64::from(self.payout_delay_days) * DAY_MS
    }

    /// The rolling reserve; an error when it is out of range or ends within the delay.
    pub fn reserve(&self) -> anyhow::Result<RollingReserve> {
        if self.payout_reserve_bps == 0 {
            return Ok(RollingReserve::default());
        }
        anyhow::ensure!(self.payout_reserve_bps <= 10_000, "PAYOUT_RESERVE_BPS must be 0 to 10000");
        anyhow::ensure!(
            self.payout_reserve_days > self.payout_delay_days,
            "PAYOUT_RESERVE_DAYS ({}) must exceed PAYOUT_DELAY_DAYS ({}): the reserve is held after the delay",
            self.payout_reserve_days,
            self.payout_delay_days
        );
        Ok(RollingReserve { bps: self.payout_reserve_bps, window_ms: i64::from(self.payout_reserve_days) * DAY_MS })
    }

    /// What holds a seller's money back from a payout: the delay and the rolling reserve.
    pub fn holds(&self) -> anyhow::Result<PayoutHolds> {
        let reserve = self.reserve()?;
        Ok(PayoutHolds { delay_ms: self.delay_ms(), reserve_bps: reserve.bps, reserve_window_ms: reserve.window_ms })
    }

    /// The payout workflows' waits and attempts.
    pub fn timings(&self) -> PayoutTimings {
        PayoutTimings {
            status_check_secs: self.payout_status_check_secs,
            return_window_secs: self.payout_return_window_secs,
            ..PayoutTimings::DEFAULT
        }
    }

    /// The schedule's interval, `None` when off; an unknown value is an error.
    pub fn interval(&self) -> anyhow::Result<Option<PayoutInterval>> {
        match self.payout_schedule.as_str() {
            "off" => Ok(None),
            s => PayoutInterval::parse(s)
                .map(Some)
                .with_context(|| format!("PAYOUT_SCHEDULE {s:?}: monthly, weekly, daily or off")),
        }
    }

    /// A cycle's input for `interval` (`period`, `seller`, `currency`: an on-demand run's
    /// filters).
    pub fn cycle_input(&self, interval: PayoutInterval) -> anyhow::Result<PayoutCycleInput> {
        Ok(PayoutCycleInput {
            interval,
            period: None,
            seller: None,
            currency: None,
            page_size: self.payout_page_size.clamp(1, PAYOUT_CYCLE_PAGE_MAX),
            payout_delay_ms: self.delay_ms(),
            reserve: self.reserve()?,
            timings: self.timings(),
            after: None,
            started_before: 0,
            existing_before: 0,
        })
    }

    /// The calendar the schedule runs on.
    pub fn calendar(&self, interval: PayoutInterval) -> anyhow::Result<ScheduleCalendarSpec> {
        anyhow::ensure!(self.payout_hour_utc < 24, "PAYOUT_HOUR_UTC must be 0 to 23");
        let hour = self.payout_hour_utc.to_string();
        Ok(match interval {
            PayoutInterval::Monthly => {
                anyhow::ensure!(
                    (1..=28).contains(&self.payout_anchor),
                    "PAYOUT_ANCHOR must be a day 1 to 28 for monthly payouts"
                );
                ScheduleCalendarSpec::builder().hour(hour).day_of_month(self.payout_anchor.to_string()).build()
            }
            PayoutInterval::Weekly => {
                anyhow::ensure!(
                    (1..=7).contains(&self.payout_anchor),
                    "PAYOUT_ANCHOR must be a weekday 1 (Monday) to 7"
                );
                // Temporal counts weekdays from Sunday = 0.
                ScheduleCalendarSpec::builder().hour(hour).day_of_week((self.payout_anchor % 7).to_string()).build()
            }
            PayoutInterval::Daily => ScheduleCalendarSpec::builder().hour(hour).build(),
        })
    }
}

/// Payout provider settings (worker only).
#[derive(Clone, Args)]
pub struct PayoutProviderConfig {
    /// Comma-separated payout providers this deployment pays through: `stripe_connect`,
    /// `toss_payouts` (empty: none).
    #[arg(long, env = "PAYOUT_PROVIDERS", default_value = "stripe_connect,toss_payouts")]
    pub payout_providers: String,
    /// Stripe API base URL for Connect transfers and payouts.
    #[arg(long, env = "STRIPE_CONNECT_BASE_URL", default_value = "http://127.0.0.1:8090")]
    pub stripe_connect_base_url: String,
    /// Stripe secret key of the platform account. Never logged.
    #[arg(long, env = "STRIPE_CONNECT_SECRET_KEY", default_value = "sk_test_local", hide_env_values = true)]
    pub stripe_connect_secret_key: SecretKey,
    /// Toss Payments API base URL for payouts v2.
    #[arg(long, env = "TOSS_PAYOUTS_BASE_URL", default_value = "http://127.0.0.1:8090")]
    pub toss_payouts_base_url: String,
    /// Toss Payments secret key for payouts. Never logged.
    #[arg(long, env = "TOSS_PAYOUTS_SECRET_KEY", default_value = "test_sk_local", hide_env_values = true)]
    pub toss_payouts_secret_key: SecretKey,
    /// Toss Payments security key (64 hex characters) encrypting payout requests. Never logged.
    #[arg(long, env = "TOSS_PAYOUTS_SECURITY_KEY", default_value = TOSS_PAYOUTS_SECURITY_KEY_TEST, hide_env_values = true)]
    pub toss_payouts_security_key: SecretKey,
    /// Per-request timeout of payout provider calls, in ms.
    #[arg(long, env = "PAYOUT_REQUEST_TIMEOUT_MS", default_value_t = payments_activities::psp::http::REQUEST_TIMEOUT_MS_DEFAULT)]
    pub payout_request_timeout_ms: u64,
}

impl std::fmt::Debug for PayoutProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayoutProviderConfig")
            .field("stripe_connect_base_url", &self.stripe_connect_base_url)
            .field("toss_payouts_base_url", &self.toss_payouts_base_url)
            .finish_non_exhaustive()
    }
}

impl PayoutProviderConfig {
    /// The providers enabled, checked (an unknown name is an error).
    pub fn enabled(&self) -> anyhow::Result<Vec<PayoutProviderKind>> {
        self.payout_providers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                PayoutProviderKind::parse(s)
                    .with_context(|| format!("PAYOUT_PROVIDERS: unknown provider {s:?} (stripe_connect, toss_payouts)"))
            })
            .collect()
    }

    /// The enabled providers' clients.
    pub fn providers(&self) -> anyhow::Result<PayoutProviders> {
        let timeout = Duration::from_millis(self.payout_request_timeout_ms);
        let mut providers = PayoutProviders::new();
        for kind in self.enabled()? {
            providers = match kind {
                PayoutProviderKind::StripeConnect => providers.with(Arc::new(
                    StripeConnectClient::new(
                        &self.stripe_connect_base_url,
                        self.stripe_connect_secret_key.clone(),
                        timeout,
                    )
                    .context("STRIPE_CONNECT_BASE_URL")?,
                )),
                PayoutProviderKind::TossPayouts => providers.with(Arc::new(
                    TossPayoutClient::new(
                        &self.toss_payouts_base_url,
                        self.toss_payouts_secret_key.clone(),
                        &self.toss_payouts_security_key,
                        timeout,
                    )
                    .context("TOSS_PAYOUTS_* settings")?,
                )),
            };
        }
        Ok(providers)
    }

    /// What production refuses: test keys and plain-HTTP URLs of the enabled providers.
    pub fn production_problems(&self, problems: &mut Vec<crate::production::Problem>) {
        for kind in self.enabled().unwrap_or_default() {
            match kind {
                PayoutProviderKind::StripeConnect => {
                    let key = self.stripe_connect_secret_key.expose();
                    if key == "sk_test_local" || key.starts_with("sk_test_") {
                        problems.push(("STRIPE_CONNECT_SECRET_KEY", "is a test-mode key".into()));
                    }
                    crate::production::url_problems("STRIPE_CONNECT_BASE_URL", &self.stripe_connect_base_url, problems);
                }
                PayoutProviderKind::TossPayouts => {
                    if self.toss_payouts_security_key.expose() == TOSS_PAYOUTS_SECURITY_KEY_TEST {
                        problems.push(("TOSS_PAYOUTS_SECURITY_KEY", "is the published test key".into()));
                    }
                    let key = self.toss_payouts_secret_key.expose();
                    if key == "test_sk_local" || key.starts_with("test_") {
                        problems.push(("TOSS_PAYOUTS_SECRET_KEY", "is a test-mode key".into()));
                    }
                    crate::production::url_problems("TOSS_PAYOUTS_BASE_URL", &self.toss_payouts_base_url, problems);
                }
            }
        }
    }
}

/// Creates the payout schedule, or brings an existing one up to date (spec, action, overlap
/// policy): safe to run at every start of every worker. With `PAYOUT_SCHEDULE=off` an existing
/// schedule is paused, not deleted (its history stays visible).
pub async fn ensure_schedule(client: &Client, config: &PayoutConfig, task_queue: &str) -> anyhow::Result<()> {
    let id = schedule_id(task_queue);
    let handle = client.get_schedule_handle(id.clone());
    let Some(interval) = config.interval()? else {
        match handle
            .update(
                |u| {
                    u.set_paused(true).set_note("PAYOUT_SCHEDULE=off");
                },
                Default::default(),
            )
            .await
        {
            Ok(()) => tracing::info!("payout schedule paused (PAYOUT_SCHEDULE=off)"),
            Err(ScheduleError::Rpc(status)) if status.code() == tonic::Code::NotFound => {}
            Err(e) => return Err(e).context("pausing the payout schedule"),
        }
        return Ok(());
    };
    let spec = ScheduleSpec::from_calendar(config.calendar(interval)?);
    let input = config.cycle_input(interval)?;
    let action = || ScheduleAction::start_workflow(PayoutCycleWorkflow::run, input.clone(), task_queue, id.clone());
    let created = client
        .create_schedule(
            id.clone(),
            CreateScheduleOptions::builder()
                .action(action())
                .spec(spec.clone())
                .overlap_policy(ScheduleOverlapPolicy::Skip)
                .note(format!("payouts {}", config.payout_schedule))
                .build(),
        )
        .await;
    match created {
        Ok(_) => {
            tracing::info!(schedule = id, interval = config.payout_schedule, "payout schedule created")
        }
        Err(ScheduleError::Rpc(status)) if status.code() == tonic::Code::AlreadyExists => {
            let action = action();
            handle
                .update(
                    move |u| {
                        u.set_spec(spec)
                            .set_action(action)
                            .set_overlap_policy(ScheduleOverlapPolicy::Skip)
                            .set_paused(false);
                    },
                    Default::default(),
                )
                .await
                .context("updating the payout schedule")?;
            tracing::info!(schedule = id, interval = config.payout_schedule, "payout schedule updated");
        }
        Err(e) => return Err(e).context("creating the payout schedule"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::WorkerConfig;

    /// No reserve by default; a set reserve is carried in milliseconds; one out of range or
    /// ending within the payout delay is refused at start-up, naming the setting.
    #[test]
    fn the_rolling_reserve_is_checked() {
        let mut c = WorkerConfig::defaults().shared.payouts;
        assert_eq!(c.reserve().unwrap().bps, 0);
        assert_eq!(c.holds().unwrap().reserve_bps, 0);
        c.payout_reserve_bps = 500;
        c.payout_reserve_days = 30;
        let reserve = c.reserve().unwrap();
        assert_eq!((reserve.bps, reserve.window_ms), (500, 30 * super::DAY_MS));
        assert_eq!(c.holds().unwrap().delay_ms, i64::from(c.payout_delay_days) * super::DAY_MS);
        c.payout_reserve_days = c.payout_delay_days;
        assert!(c.reserve().unwrap_err().to_string().contains("PAYOUT_RESERVE_DAYS"));
        c.payout_reserve_days = 30;
        c.payout_reserve_bps = 10_001;
        assert!(c.reserve().unwrap_err().to_string().contains("PAYOUT_RESERVE_BPS"));
    }
}
