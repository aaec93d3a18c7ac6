//! Giving money back: the `refund` workflow (one per refund, id `refund-{refund_id}`, started
//! by the gateway after the store reserved the amount) and the PSP-and-booking part it shares
//! with the checkout's compensation.
//!
//! PSP refund (the refund id is the PSP's idempotency key, so a lost answer is simply sent
//! again) -> refunded: book it (ledger reversal and wallet debit in one transaction); refused:
//! the refund FAILED (its amount is refundable again). A PSP that stays unreachable past the
//! retries, or an error nothing classifies, parks the refund as a dead letter.

use crate::contract::{
    CompleteRefund, CompleteRefundInput, FailRefund, FailRefundInput, FindRefund, RefundLookup, RefundOutcome,
    RefundPayment, RefundRequest,
};
use crate::dead_letter::{DeadLetterHost, DeadLetters, Step, guarded, guarded_checked};
use crate::failures::StepError;
use crate::messages::{DeadLetterAction, WaitLimits};
use crate::persist::persist;
use crate::policies::{self, failure_types};
use payments_domain::{CheckoutId, PaymentOrderStatus};
use serde::{Deserialize, Serialize};
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

/// The `PaymentStatus` of a refund workflow that is not parked on a dead letter.
pub const REFUNDING_STATUS: &str = "REFUNDING";

/// The refund workflow's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundInput {
    /// The stored (REQUESTED) refund.
    pub refund: RefundRequest,
    /// The order's checkout.
    pub checkout_id: CheckoutId,
    /// Attempts per PSP call.
    pub limits: WaitLimits,
}

/// How a refund ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundResult {
    /// The refund.
    pub refund_id: String,
    /// SUCCEEDED, FAILED, or REQUESTED (refunded at the PSP, booking resolved by an operator).
    pub status: String,
    /// The PSP's refund id, when refunded.
    pub psp_refund_reference: Option<String>,
    /// Why it failed.
    pub failure_code: Option<String>,
    /// The order's status afterwards, when booked (REVERSED after a compensation).
    pub order_status: Option<PaymentOrderStatus>,
}

/// One refund of a captured order.
#[workflow]
pub struct RefundWorkflow {
    input: RefundInput,
    dead_letters: DeadLetters,
}

impl DeadLetterHost for RefundWorkflow {
    fn dead_letters(&self) -> &DeadLetters {
        &self.dead_letters
    }
    fn dead_letters_mut(&mut self) -> &mut DeadLetters {
        &mut self.dead_letters
    }
    fn status_value(&self) -> &'static str {
        REFUNDING_STATUS
    }
    fn store_attempts_max(&self) -> u32 {
        self.input.limits.store_attempts_max
    }
}

#[workflow_methods]
impl RefundWorkflow {
    /// State from the input.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: RefundInput) -> Self {
        RefundWorkflow { input, dead_letters: DeadLetters::default() }
    }

    /// Refunds at the PSP and books the refund.
    #[run(name = "refund")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<RefundResult> {
        let input = ctx.state(|s| s.input.clone());
        refund_and_book(ctx, &input.refund, Some(input.checkout_id), input.limits.psp_attempts_max, false).await
    }

    /// Refuses an action for a dead letter this refund is not parked on.
    #[update_validator(dead_letter)]
    fn validate_dead_letter(
        &self,
        _ctx: &WorkflowContextView,
        action: &DeadLetterAction,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.dead_letters.validate(action)?)
    }

    /// An operator retries or resolves the dead letter this refund is parked on.
    #[update(name = "dead_letter")]
    pub fn dead_letter(&mut self, _ctx: &mut SyncWorkflowContext<Self>, action: DeadLetterAction) -> String {
        let verb = format!("{:?}", action.verb);
        self.dead_letters.accept(action);
        verb
    }
}

/// Refunds `refund` at the PSP and books it. A compensation (`compensating`) must give the
/// money back: a PSP refusal is then a dead letter too, never a silent FAILED. A refund parked
/// as a dead letter (the PSP unreachable, or its answers lost, past every retry) is asked about
/// at the PSP -- by its id, which travels with it -- before an operator's retry or resolve is
/// acted on: a refund the PSP made is booked, never sent again and never failed.
pub(crate) async fn refund_and_book<W: DeadLetterHost>(
    ctx: &WorkflowContext<W>,
    refund: &RefundRequest,
    checkout_id: Option<CheckoutId>,
    attempts_max: u32,
    compensating: bool,
) -> WorkflowResult<RefundResult> {
    let store_attempts_max = ctx.state(|s| s.store_attempts_max());
    let step = |name, attempts_max| Step {
        subject: refund.refund_id.clone(),
        step: name,
        checkout_id: checkout_id.clone(),
        attempts_max,
    };
    // A refusal of a compensation is parked, whether the refund call or the check saw it.
    let judge = |outcome: RefundOutcome| match outcome {
        RefundOutcome::Refused { code, message } if compensating => Err(StepError::decided(
            failure_types::PSP_REFUND_REFUSED,
            format!("the PSP refused to give back a captured payment: {code}: {message}"),
        )),
        outcome => Ok(outcome),
    };
    let send = || async {
        let outcome = ctx
            .execute_local_activity(RefundPayment, refund.clone(), policies::psp_refund(attempts_max))
            .await
            .map_err(StepError::from)?;
        judge(outcome)
    };
    let check = || async {
        let found = ctx
            .execute_local_activity(FindRefund, refund.clone(), policies::psp_lookup(attempts_max))
            .await
            .map_err(StepError::from)?;
        match found {
            RefundLookup::Found(outcome) => judge(outcome).map(Some),
            RefundLookup::NotFound => Ok(None),
        }
    };
    let at_psp = guarded_checked(ctx, &step("psp.refund", attempts_max), send, Some(check)).await?;
    let mut result = RefundResult {
        refund_id: refund.refund_id.clone(),
        status: "FAILED".into(),
        psp_refund_reference: None,
        failure_code: None,
        order_status: None,
    };
    let code = match at_psp {
        Some(RefundOutcome::Refunded { psp_refund_reference }) => {
            let complete = CompleteRefundInput {
                refund_id: refund.refund_id.clone(),
                psp_refund_reference: psp_refund_reference.clone(),
            };
            let booked = guarded(ctx, &step("refund.complete", store_attempts_max), || {
                persist(ctx, CompleteRefund, complete.clone())
            })
            .await?;
            result.psp_refund_reference = Some(psp_refund_reference);
            result.status = if booked.is_some() { "SUCCEEDED" } else { "REQUESTED" }.into();
            result.order_status = booked;
            return Ok(result);
        }
        Some(RefundOutcome::Refused { code, .. }) => code,
        // The operator resolved it and the PSP confirmed it made no such refund.
        None => "resolved_by_operator".to_owned(),
    };
    let fail = FailRefundInput { refund_id: refund.refund_id.clone(), code: code.clone() };
    guarded(ctx, &step("refund.fail", store_attempts_max), || persist(ctx, FailRefund, fail.clone())).await?;
    result.failure_code = Some(code);
    Ok(result)
}
