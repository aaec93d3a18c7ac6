//! Waiting in workflow code: for a state change (a signal or update) with a deadline, using
//! workflow time and durable timers only.

use crate::checkout::CheckoutWorkflow;
use std::time::{Duration, SystemTime};
use temporalio_sdk::WorkflowContext;

type Ctx = WorkflowContext<CheckoutWorkflow>;

/// A point in workflow time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Option<SystemTime>);

impl Deadline {
    /// `limit` from now (workflow time, deterministic on replay).
    pub(crate) fn after(ctx: &Ctx, limit: Duration) -> Self {
        Deadline(ctx.workflow_time().map(|now| now + limit))
    }

    /// Time left; zero once passed.
    pub(crate) fn remaining(&self, ctx: &Ctx) -> Duration {
        match (self.0, ctx.workflow_time()) {
            (Some(at), Some(now)) => at.duration_since(now).unwrap_or(Duration::ZERO),
            _ => Duration::ZERO,
        }
    }
}

/// Waits until `condition` holds or the deadline passes; answers whether it held.
pub(crate) async fn wait_until(
    ctx: &Ctx,
    deadline: Deadline,
    mut condition: impl FnMut(&CheckoutWorkflow) -> bool,
) -> bool {
    if ctx.state(&mut condition) {
        return true;
    }
    let remaining = deadline.remaining(ctx);
    if remaining.is_zero() {
        return false;
    }
    temporalio_sdk::workflows::select! {
        held = ctx.wait_condition(&mut condition) => held.is_ok(),
        _ = ctx.timer(remaining) => ctx.state(&mut condition),
    }
}
