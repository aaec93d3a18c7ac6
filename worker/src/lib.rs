//! The Temporal worker of the payment platform: it polls one task queue and runs the checkout
//! workflow and its activities (risk, PSP, orders/wallet/ledger).
//!
//! Layout: `config.rs` (typed configuration from flags and environment), `temporal.rs`
//! (connecting a Temporal client, plain or with TLS and an API key; shared with the gateway and
//! CLI), `payouts.rs` (pay-out settings, providers and the payout schedule), `recon.rs`
//! (reconciliation settings and the nightly schedules), `production.rs` (what `PAYMENTS_ENV=production` refuses), `telemetry.rs` (logging), `signal.rs` (shutdown signals),
//! this file ([`run`]: build the activities, register, run until shutdown), `main.rs` (thin).

pub mod config;
pub mod payouts;
pub mod production;
pub mod recon;
pub mod signal;
pub mod telemetry;
pub mod temporal;

pub use config::WorkerConfig;

use payments_activities::payout::PayoutActivities;
use payments_activities::psp::PspClient;
use payments_activities::psp::stripe::StripeClient;
use payments_activities::psp::toss::TossClient;
use payments_activities::recon::ReconActivities;
use payments_activities::recon::fix::ReconFixActivities;
use payments_activities::{OrderActivities, PspActivities, RefundActivities, RiskActivities, RiskRules};
use payments_workflows::{
    CheckoutWorkflow, PayoutCycleWorkflow, PayoutWorkflow, ReconFixWorkflow, ReconNightlyWorkflow, ReconWorkflow,
    RefundWorkflow,
};
use std::future::Future;
use std::sync::Arc;
use temporalio_common::telemetry::{Logger, TelemetryOptions};
use temporalio_sdk::runtime::RuntimeOptions;
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

/// Connects to the database and Temporal, then runs the worker until `shutdown` resolves;
/// in-flight tasks are given the graceful shutdown period to finish.
pub async fn run(config: WorkerConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    production::refuse_test_defaults(config.shared.env, config.production_problems())?;
    let store = config.shared.store().await?;
    let rules = RiskRules::parse(&config.risk_config())?;
    let psp = psp_client(&config)?;
    let payout_providers = config.payout_providers.providers()?;
    config.shared.payouts.reserve()?;
    let client = config.shared.temporal().await?;
    payouts::ensure_schedule(&client, &config.shared.payouts, &config.shared.task_queue).await?;
    let recon_sources = config.recon.sources(&config)?;
    recon::ensure_schedules(&client, &config).await?;
    // The SDK core logs nothing unless asked: its warnings (failed workflow tasks,
    // nondeterminism, poll errors) are what an operator needs to see. An empty filter keeps it
    // off (tests running many workers in one process).
    let mut telemetry = TelemetryOptions::builder().build();
    if !config.core_log_filter.is_empty() {
        telemetry.logging = Some(Logger::Console { filter: config.core_log_filter.clone(), format: None });
    }
    let runtime = Runtime::from_current_tokio(
        RuntimeOptions::builder().telemetry_options(telemetry).build().map_err(anyhow::Error::msg)?,
    )?;
    let options = WorkerOptions::new(config.shared.task_queue.clone())
        .register_workflow::<CheckoutWorkflow>()?
        .register_workflow::<RefundWorkflow>()?
        .register_workflow::<PayoutWorkflow>()?
        .register_workflow::<PayoutCycleWorkflow>()?
        .register_workflow::<ReconWorkflow>()?
        .register_workflow::<ReconNightlyWorkflow>()?
        .register_workflow::<ReconFixWorkflow>()?
        .register_activities(RiskActivities::new(rules))
        .register_activities(PspActivities::new(psp, store.clone(), config.psp_key_rules()))
        .register_activities(OrderActivities::new(store.clone()))
        .register_activities(RefundActivities::new(store.clone()))
        .register_activities(PayoutActivities::new(store.clone(), payout_providers.clone()))
        .register_activities(ReconActivities::new(store.clone(), recon_sources, payout_providers))
        .register_activities(ReconFixActivities::new(store.clone()))
        .graceful_shutdown_period(config.graceful_shutdown())
        .build();
    let mut worker = Worker::new(&runtime, client, options)?;
    let stop = worker.shutdown_handle();
    tracing::info!(task_queue = %config.shared.task_queue, temporal = %config.shared.temporal_address, psp = %config.psp_base_url, "worker running");
    let running = worker.run();
    tokio::pin!(running);
    tokio::select! {
        result = &mut running => result?,
        () = shutdown => {
            tracing::info!("shutting down: finishing in-flight tasks");
            stop();
            running.await?;
        }
    }
    store.close().await;
    Ok(())
}

/// The configured PSP adapter. Keys come from the environment and are never logged.
fn psp_client(config: &WorkerConfig) -> anyhow::Result<Arc<dyn PspClient>> {
    let key = config.psp_secret_key.clone();
    let timeout = std::time::Duration::from_millis(config.psp_request_timeout_ms);
    Ok(match config.psp_provider.as_str() {
        "stripe" => Arc::new(StripeClient::new(&config.psp_base_url, key, timeout)?),
        "toss" => Arc::new(TossClient::new(&config.psp_base_url, key, timeout)?),
        other => anyhow::bail!("unsupported PSP_PROVIDER {other:?} (supported: stripe, toss)"),
    })
}
