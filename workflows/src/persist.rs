//! Database steps that ride out outages. A store step runs with its retry policy
//! ([`policies::store_step`]); when a run spends its attempts on faults a retry may fix (the
//! database is down, a failover takes long), the workflow waits a growing, capped delay on a
//! durable timer ([`policies::store_rerun_delay`]) and runs the step again, as often as it
//! takes. An outage of any length only delays the saga; it never ends a workflow that may hold
//! captured money. A failure no retry can fix (a fact about the data: an invalid transition, a
//! corrupt row) is answered to the caller, which parks it as a dead letter for an operator.

use crate::dead_letter::DeadLetterHost;
use crate::failures::StepError;
use crate::{policies, versions};
use temporalio_common::ActivityDefinition;
use temporalio_common::data_converters::TemporalDeserializable;
use temporalio_sdk::{WorkflowContext, WorkflowResult};

/// Runs `activity` until it succeeds or fails with an error no retry can fix (answered).
pub(crate) async fn persist<W, A>(
    ctx: &WorkflowContext<W>,
    activity: A,
    input: A::Input,
) -> Result<A::Output, StepError>
where
    W: DeadLetterHost,
    A: ActivityDefinition + Copy,
    A::Input: Clone,
    A::Output: TemporalDeserializable,
{
    run(ctx, activity, input, false).await
}

/// Runs `activity` until it succeeds, whatever the failure: for the steps that record failures
/// themselves (dead-letter records), which have nowhere else to go, and for steps before any
/// money moved whose failure only a deploy can fix. (`Err` only while replaying a history from
/// before this rule, which failed the workflow there.)
pub(crate) async fn persist_always<W, A>(
    ctx: &WorkflowContext<W>,
    activity: A,
    input: A::Input,
) -> WorkflowResult<A::Output>
where
    W: DeadLetterHost,
    A: ActivityDefinition + Copy,
    A::Input: Clone,
    A::Output: TemporalDeserializable,
{
    run(ctx, activity, input, true).await.map_err(StepError::into_termination)
}

async fn run<W, A>(ctx: &WorkflowContext<W>, activity: A, input: A::Input, always: bool) -> Result<A::Output, StepError>
where
    W: DeadLetterHost,
    A: ActivityDefinition + Copy,
    A::Input: Clone,
    A::Output: TemporalDeserializable,
{
    let attempts_max = ctx.state(|s| s.store_attempts_max());
    let mut round = 0u32;
    loop {
        let err = match ctx.execute_local_activity(activity, input.clone(), policies::store_step(attempts_max)).await {
            Ok(output) => return Ok(output),
            Err(err) => StepError::from(err),
        };
        // Histories from before this rule failed (or parked) here: they replay that path.
        if (err.non_retryable && !always) || !ctx.patched(versions::STORE_STEPS_RIDE_OUT_OUTAGES) {
            return Err(err);
        }
        ctx.timer(policies::store_rerun_delay(round)).await;
        round = round.saturating_add(1);
    }
}
