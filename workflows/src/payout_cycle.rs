//! The `payout_cycle` workflow (issue 12): one run of the payout schedule (a Temporal Schedule,
//! monthly, weekly or daily) or of an operator's on-demand request. It names the period from
//! its own workflow time (deterministic), pages through the (seller, currency) pairs with a
//! positive balance, and starts one `payout` child per pair with id
//! `payout-{seller}-{currency}-{period}`. Children are abandoned when the cycle ends (a payout
//! lives for its provider's return window); a child that already exists (the period was run
//! before, by hand or by the schedule) is counted, never started twice. After each page the
//! cycle continues as new with its cursor, so no run holds more than one page of children and
//! its history stays small whatever the number of sellers.

use crate::payout::{PayoutInput, PayoutTimings, PayoutWorkflow, payout_workflow_id};
use crate::payout_contract::{CandidatesInput, PayoutCandidates, RollingReserve};
use crate::policies;
use payments_domain::{Currency, SellerAccount};
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ChildWorkflowOptions, ContinueAsNewOptions, ParentClosePolicy, StartChildWorkflowExecutionFailedCause,
    WorkflowContext, WorkflowContextView, WorkflowIdReusePolicy, WorkflowResult,
};
use temporalio_workflow::common::error::ChildWorkflowStartError;

/// Most children one run starts (one page of candidates).
pub const PAYOUT_CYCLE_PAGE_MAX: u32 = 500;

/// How often payouts run; names the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutInterval {
    /// Period `YYYY-MM`.
    Monthly,
    /// Period `YYYY-Www` (ISO week).
    Weekly,
    /// Period `YYYY-MM-DD`.
    Daily,
}

impl PayoutInterval {
    /// Parses `monthly`, `weekly` or `daily`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "monthly" => Some(PayoutInterval::Monthly),
            "weekly" => Some(PayoutInterval::Weekly),
            "daily" => Some(PayoutInterval::Daily),
            _ => None,
        }
    }

    /// The period containing `unix_secs` (UTC).
    pub fn period(self, unix_secs: i64) -> String {
        let days = unix_secs.div_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        match self {
            PayoutInterval::Monthly => format!("{y:04}-{m:02}"),
            PayoutInterval::Daily => format!("{y:04}-{m:02}-{d:02}"),
            PayoutInterval::Weekly => {
                // ISO 8601: the week belongs to the year of its Thursday.
                let weekday = (days + 3).rem_euclid(7); // 0 = Monday (1970-01-01 was a Thursday)
                let thursday = days - weekday + 3;
                let (ty, _, _) = civil_from_days(thursday);
                let jan1 = days_from_civil(ty, 1, 1);
                format!("{ty:04}-W{:02}", (thursday - jan1) / 7 + 1)
            }
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The cycle's input: what the schedule (or the operator) asks, and the cursor between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutCycleInput {
    /// Names the period when `period` is not given.
    pub interval: PayoutInterval,
    /// The period to pay; `None`: the one containing the cycle's start.
    pub period: Option<String>,
    /// Only this seller.
    pub seller: Option<SellerAccount>,
    /// Only this currency.
    pub currency: Option<Currency>,
    /// Children per run (capped at [`PAYOUT_CYCLE_PAGE_MAX`]).
    pub page_size: u32,
    /// Captures younger than this are not payable yet.
    pub payout_delay_ms: i64,
    /// The rolling reserve (none in inputs written before it existed).
    #[serde(default)]
    pub reserve: RollingReserve,
    /// The payouts' waits and attempts.
    pub timings: PayoutTimings,
    /// Where the previous run stopped.
    pub after: Option<(SellerAccount, Currency)>,
    /// Payouts started by earlier runs of this cycle.
    pub started_before: u64,
    /// Payouts that already existed, seen by earlier runs.
    pub existing_before: u64,
}

/// What a cycle did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutCycleResult {
    /// The period.
    pub period: String,
    /// Payout workflows started.
    pub started: u64,
    /// Payout workflows that already existed (the period was run before).
    pub existing: u64,
}

/// One run of the payout cycle.
#[workflow]
pub struct PayoutCycleWorkflow {
    input: PayoutCycleInput,
}

#[workflow_methods]
impl PayoutCycleWorkflow {
    /// State from the input.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: PayoutCycleInput) -> Self {
        PayoutCycleWorkflow { input }
    }

    /// Starts one page of payouts, then continues as new or ends.
    #[run(name = "payout_cycle")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<PayoutCycleResult> {
        let input = ctx.state(|s| s.input.clone());
        let period = match &input.period {
            Some(period) => period.clone(),
            None => {
                let now = ctx.workflow_time().unwrap_or(UNIX_EPOCH);
                let secs = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
                input.interval.period(i64::try_from(secs).unwrap_or(i64::MAX))
            }
        };
        let limit = input.page_size.clamp(1, PAYOUT_CYCLE_PAGE_MAX);
        let page = ctx
            .execute_local_activity(
                PayoutCandidates,
                CandidatesInput {
                    after: input.after.clone(),
                    seller: input.seller.clone(),
                    currency: input.currency,
                    limit,
                },
                policies::store_step(input.timings.store_attempts_max),
            )
            .await
            .map_err(|e| crate::failures::StepError::from(e).into_termination())?;
        let starts = page.iter().map(|(seller, currency)| {
            let mut options = ChildWorkflowOptions::workflow_id(payout_workflow_id(seller, *currency, &period));
            options.parent_close_policy = ParentClosePolicy::Abandon;
            options.id_reuse_policy = WorkflowIdReusePolicy::RejectDuplicate;
            let child = PayoutInput {
                seller: seller.clone(),
                currency: *currency,
                period: period.clone(),
                payout_delay_ms: input.payout_delay_ms,
                reserve: input.reserve,
                timings: input.timings,
            };
            ctx.start_child_workflow(PayoutWorkflow::run, child, options)
        });
        let (mut started, mut existing) = (input.started_before, input.existing_before);
        for outcome in temporalio_sdk::workflows::join_all(starts).await {
            match outcome {
                Ok(_) => started += 1,
                Err(ChildWorkflowStartError::StartFailed {
                    cause: StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists,
                    ..
                }) => existing += 1,
                Err(e) => {
                    return Err(crate::failures::StepError {
                        type_name: Some("PayoutStartFailed".into()),
                        message: e.to_string(),
                        non_retryable: false,
                    }
                    .into_termination());
                }
            }
        }
        if page.len() as u32 == limit {
            let next = PayoutCycleInput {
                period: Some(period.clone()),
                after: page.last().cloned(),
                started_before: started,
                existing_before: existing,
                ..input
            };
            ctx.continue_as_new(next, ContinueAsNewOptions::default())?;
        }
        Ok(PayoutCycleResult { period, started, existing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(y: i64, m: u32, d: u32) -> i64 {
        days_from_civil(y, m, d) * 86_400 + 3_600
    }

    #[test]
    fn periods_follow_the_calendar() {
        assert_eq!(PayoutInterval::Monthly.period(secs(2026, 12, 1)), "2026-12");
        assert_eq!(PayoutInterval::Daily.period(secs(2024, 2, 29)), "2024-02-29");
        assert_eq!(PayoutInterval::Daily.period(0), "1970-01-01");
        // ISO weeks: 2026-12-01 is a Tuesday of week 49; 2021-01-03 (a Sunday) still belongs
        // to 2020's week 53; 2024-12-30 (a Monday) to 2025's week 1.
        assert_eq!(PayoutInterval::Weekly.period(secs(2026, 12, 1)), "2026-W49");
        assert_eq!(PayoutInterval::Weekly.period(secs(2021, 1, 3)), "2020-W53");
        assert_eq!(PayoutInterval::Weekly.period(secs(2024, 12, 30)), "2025-W01");
        assert_eq!(PayoutInterval::Weekly.period(secs(2026, 1, 1)), "2026-W01");
        for days in [-1000, 0, 59, 60, 10_957, 20_000, 50_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
