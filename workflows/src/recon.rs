//! Reconciliation workflows (issue 13).
//!
//! `recon` (id `recon-{psp}-{day}`, with `@{task queue}` outside the default deployment): one
//! PSP's settlement day. It imports the day's report,
//! matches it against our books (breaks kept per fingerprint, so running a day again adds
//! nothing and heals what was fixed), sends the class-1 fixes through the same workflows as
//! pay-in and pay-out (a capture we hold as UNKNOWN: the checkout's janitor is signalled; a
//! payout the provider reports back: the payout's workflow is signalled), books the
//! settlement, and records its report. Each step retries with backoff; a step that fails past
//! its attempts fails the run (recorded, `ReconStatus` = `FAILED`), and running the day again
//! continues where the stored state says.
//!
//! `recon_nightly`: what the Temporal Schedule of a PSP starts every night. Its day is the
//! day before the schedule's nominal time (read from the id Temporal gives a scheduled run,
//! `…-2026-12-01T01:00:00Z`, so a run caught up after downtime reconciles the night it was
//! meant for), in the PSP's zone; it starts that day's `recon` as a child and ends.

use crate::checkout::CheckoutWorkflow;
use crate::messages::PspEventHint;
use crate::payout::PayoutWorkflow;
use crate::recon_contract::{
    BookSettlement, Heal, HealingMark, ImportInput, ImportSettlement, MarkHealing, MatchInput, MatchSettlement,
    RECON_DATE_ATTRIBUTE, RECON_STATUS_ATTRIBUTE, ReconReport, ReconSettings, ReconSettingsFor, RecordRun, RunRecord,
    RunStatus, SettleInput, recon_workflow_id,
};
use payments_recon::line::rfc3339_ms;
use payments_recon::{Day, Psp};
use serde::{Deserialize, Serialize};
use std::time::{Duration, UNIX_EPOCH};
use temporalio_common::RetryPolicy;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, ChildWorkflowOptions, ParentClosePolicy, SignalWorkflowOptions,
    StartChildWorkflowExecutionFailedCause, WorkflowContext, WorkflowContextView, WorkflowIdReusePolicy,
    WorkflowResult,
};
use temporalio_workflow::common::error::ChildWorkflowStartError;

/// A reconciliation run's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconInput {
    /// Whose settlement.
    pub psp: Psp,
    /// Which day.
    pub day: Day,
    /// Contract, tolerances, origin; `None`: the worker's configuration for the PSP.
    pub settings: Option<ReconSettings>,
}

/// The nightly run's input (the Schedule's action).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconNightlyInput {
    /// Whose settlement.
    pub psp: Psp,
}

/// One PSP's settlement day.
#[workflow]
pub struct ReconWorkflow {
    input: ReconInput,
}

/// Import, match and settle steps: regular activities (a large day takes minutes; they
/// heartbeat per page), exponential backoff from 1 s to 1 min.
fn step(attempts_max: u32, timeout: Duration) -> ActivityOptions {
    let retry = RetryPolicy::builder()
        .initial_interval(Duration::from_secs(1))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_secs(60))
        .maximum_attempts(attempts_max.max(1))
        .non_retryable_error_types(["StorePrecondition", "StoreCorrupt", "ReconReportInvalid", "PspAuthentication"])
        .build();
    ActivityOptions::with_start_to_close_timeout(timeout)
        .heartbeat_timeout(Duration::from_secs(60))
        .retry_policy(retry)
        .build()
}

/// Longest an import or a match may run (100,000 lines take well under a minute).
const LONG_STEP: Duration = Duration::from_secs(30 * 60);
/// Longest a bookkeeping step may run.
const SHORT_STEP: Duration = Duration::from_secs(60);

#[workflow_methods]
impl ReconWorkflow {
    /// State from the input.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: ReconInput) -> Self {
        ReconWorkflow { input }
    }

    /// Import, match, heal, settle, report.
    #[run(name = "recon")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<ReconReport> {
        let input = ctx.state(|s| s.input.clone());
        let (psp, day) = (input.psp, input.day);
        let settings = match input.settings {
            Some(settings) => settings,
            None => ctx.execute_local_activity(ReconSettingsFor, psp, crate::policies::store_step(5)).await?,
        };
        ctx.upsert_search_attributes([
            RECON_DATE_ATTRIBUTE.value_set(day.to_string()),
            RECON_STATUS_ATTRIBUTE.value_set("RUNNING".to_owned()),
        ]);
        let run_id = ctx.workflow_id().to_owned();
        let record = |status, report, error| RunRecord { run_id: run_id.clone(), psp, day, status, report, error };
        let short = step(settings.attempts_max, SHORT_STEP);
        ctx.execute_activity(RecordRun, record(RunStatus::Running, None, None), short.clone()).await?;
        match steps(ctx, psp, day, settings).await {
            Ok(report) => {
                let open = report.matching.open_by_class.iter().sum::<u64>();
                let status = if open == 0 { "CLEAN" } else { "BREAKS" };
                ctx.upsert_search_attributes([RECON_STATUS_ATTRIBUTE.value_set(status.to_owned())]);
                ctx.execute_activity(RecordRun, record(RunStatus::Completed, Some(report.clone()), None), short)
                    .await?;
                Ok(report)
            }
            Err(error) => {
                ctx.upsert_search_attributes([RECON_STATUS_ATTRIBUTE.value_set("FAILED".to_owned())]);
                let message = error.to_string();
                ctx.execute_activity(RecordRun, record(RunStatus::Failed, None, Some(message)), short).await?;
                Err(error)
            }
        }
    }
}

/// The run's steps; an error is a step that failed past its attempts.
async fn steps(
    ctx: &WorkflowContext<ReconWorkflow>,
    psp: Psp,
    day: Day,
    settings: ReconSettings,
) -> WorkflowResult<ReconReport> {
    let (long, short) = (step(settings.attempts_max, LONG_STEP), step(settings.attempts_max, SHORT_STEP));
    let import =
        ctx.execute_activity(ImportSettlement, ImportInput { psp, day, origin: settings.origin }, long.clone()).await?;
    let match_input = MatchInput { psp, day, contract: settings.contract, policy: settings.policy };
    let matching = ctx.execute_activity(MatchSettlement, match_input, long.clone()).await?;
    let (mut heals_sent, mut heals_failed) = (0, 0);
    for heal in &matching.heals {
        let (break_id, sent, action) = match heal {
            Heal::AskJanitor { break_id, checkout_id, payment_order_id, psp_reference } => {
                let hint = PspEventHint {
                    event_id: format!("recon-{psp}-{day}-break-{break_id}"),
                    payment_order_id: Some(payment_order_id.clone()),
                    psp_reference: psp_reference.clone(),
                };
                let checkout = ctx.external_workflow(checkout_id.workflow_id(), None);
                let sent = checkout.signal(CheckoutWorkflow::psp_event, hint, SignalWorkflowOptions::default()).await;
                (break_id, sent, format!("signalled the janitor of checkout {checkout_id} (psp_event)"))
            }
            Heal::PayoutReturned { break_id, report } => {
                let payout = ctx.external_workflow(report.payout_id.clone(), None);
                let sent =
                    payout.signal(PayoutWorkflow::payout_event, report.clone(), SignalWorkflowOptions::default()).await;
                let action = format!(
                    "signalled payout {} with the provider's {} (payout_event)",
                    report.payout_id, report.status
                );
                (break_id, sent, action)
            }
        };
        if sent.is_err() {
            // The workflow has ended: nothing to signal; the break stays open for a person.
            heals_failed += 1;
            continue;
        }
        heals_sent += 1;
        ctx.execute_activity(MarkHealing, HealingMark { break_id: *break_id, action }, short.clone()).await?;
    }
    let settlement =
        ctx.execute_activity(BookSettlement, SettleInput { psp, day, contract: settings.contract }, long).await?;
    let mut matching = matching;
    matching.heals.clear();
    Ok(ReconReport { import, matching, heals_sent, heals_failed, settlement })
}

/// What the Schedule starts each night.
#[workflow]
pub struct ReconNightlyWorkflow {
    input: ReconNightlyInput,
}

#[workflow_methods]
impl ReconNightlyWorkflow {
    /// State from the input.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: ReconNightlyInput) -> Self {
        ReconNightlyWorkflow { input }
    }

    /// Starts the night's `recon` child; answers its workflow id.
    #[run(name = "recon_nightly")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        let input = ctx.state(|s| s.input.clone());
        let id = ctx.workflow_id().to_owned();
        // The scheduled time Temporal appended to the id, else (started by hand) the run's own
        // start: both are deterministic on replay.
        let nominal_ms = id.get(id.len().saturating_sub(20)..).and_then(rfc3339_ms).unwrap_or_else(|| {
            let now = ctx.workflow_time().unwrap_or(UNIX_EPOCH);
            now.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        });
        let day = input.psp.day_of_ms(nominal_ms).plus_days(-1);
        let child_id = recon_workflow_id(input.psp, day, ctx.task_queue());
        let mut options = ChildWorkflowOptions::workflow_id(child_id.clone());
        options.parent_close_policy = ParentClosePolicy::Abandon;
        // Running a day again is safe (imports are stored once, breaks kept per fingerprint).
        options.id_reuse_policy = WorkflowIdReusePolicy::AllowDuplicate;
        let child = ReconInput { psp: input.psp, day, settings: None };
        match ctx.start_child_workflow(ReconWorkflow::run, child, options).await {
            Ok(_) => Ok(child_id),
            // Already running (started by hand, or an earlier night still at it).
            Err(ChildWorkflowStartError::StartFailed {
                cause: StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists,
                ..
            }) => Ok(child_id),
            Err(e) => Err(crate::failures::StepError {
                type_name: Some("ReconStartFailed".into()),
                message: e.to_string(),
                non_retryable: false,
            }
            .into_termination()),
        }
    }
}
