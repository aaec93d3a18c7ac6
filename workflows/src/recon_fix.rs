//! `recon_fix` (id `recon-fix-{break_id}`): an operator approved a class-2 break's suggested
//! fix; it runs through the same activities as refunds and pay-in, never by editing tables:
//!
//! - a refund the PSP made in its dashboard is recorded against the order (a refund row,
//!   idempotent per break) and booked by the refund path's own completion (`refund.complete`);
//! - a capture the buyer should not have paid (we told them the payment failed, or the PSP
//!   captured twice) is refunded at the PSP (`psp.refund`, keyed `recon-break-{id}`), and the
//!   refund remembered so the next runs pair the PSP's refund line with it;
//! - an order the PSP has not reported is looked up at the PSP (`psp.lookup`); the answer is
//!   written on the break for the operator.
//!
//! The break becomes HEALING with what was done; the next run of its day heals it when the
//! books and the PSP agree. One workflow per break (the id), so an approval is done once.

use crate::contract::{CompleteRefund, LookupPayment, RefundOutcome, RefundPayment};
use crate::policies;
use crate::recon_contract::{
    FixPlan, FixRefund, FixRequest, HealingMark, MarkHealing, PlanFix, RecordFixRefund, RecordPspRefund,
};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{WorkflowContext, WorkflowContextView, WorkflowResult};

/// PSP attempts of a fix (the refund is keyed, so retries never refund twice).
const FIX_PSP_ATTEMPTS_MAX: u32 = 10;

/// One approved fix.
#[workflow]
pub struct ReconFixWorkflow {
    input: FixRequest,
}

#[workflow_methods]
impl ReconFixWorkflow {
    /// State from the input.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: FixRequest) -> Self {
        ReconFixWorkflow { input }
    }

    /// Plans the fix, runs it, marks the break HEALING; answers what was done.
    #[run(name = "recon_fix")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<String> {
        let request = ctx.state(|s| s.input.clone());
        let store = policies::store_step(policies::STORE_ATTEMPTS_MAX);
        let plan = ctx.execute_local_activity(PlanFix, request.clone(), store.clone()).await?;
        let done = match plan {
            FixPlan::RecordPspRefund(record) => {
                let complete = ctx.execute_local_activity(RecordPspRefund, record, store.clone()).await?;
                let refund_id = complete.refund_id.clone();
                ctx.execute_local_activity(CompleteRefund, complete, store.clone()).await?;
                format!("recorded the PSP's refund as {refund_id} (approved by {})", request.operator)
            }
            FixPlan::RefundCapture { request: refund, psp } => {
                let outcome = ctx
                    .execute_local_activity(RefundPayment, refund.clone(), policies::psp_refund(FIX_PSP_ATTEMPTS_MAX))
                    .await?;
                match outcome {
                    RefundOutcome::Refunded { psp_refund_reference } => {
                        let fix = FixRefund {
                            break_id: request.break_id,
                            psp,
                            payment_reference: refund.psp_reference.clone(),
                            amount: refund.amount,
                            psp_refund_reference: psp_refund_reference.clone(),
                        };
                        ctx.execute_local_activity(RecordFixRefund, fix, store.clone()).await?;
                        format!(
                            "refunded {} at the PSP as {psp_refund_reference} (approved by {})",
                            refund.amount, request.operator
                        )
                    }
                    other => format!("the PSP did not refund: {other:?}; the break stays for a person"),
                }
            }
            FixPlan::LookUp(lookup) => {
                let found = ctx
                    .execute_local_activity(LookupPayment, lookup, policies::psp_lookup(FIX_PSP_ATTEMPTS_MAX))
                    .await?;
                format!("asked the PSP (approved by {}): {found:?}", request.operator)
            }
        };
        let mark = HealingMark { break_id: request.break_id, action: done.clone() };
        ctx.execute_local_activity(MarkHealing, mark, store).await?;
        Ok(done)
    }
}
