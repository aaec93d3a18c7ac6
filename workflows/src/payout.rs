//! The `payout` workflow (issue 12): one per seller, currency and period, id
//! `payout-{seller}-{currency}-{period}`, the same string as the provider's idempotency key and
//! reference, so a period can never be paid twice whatever retries, restarts or repeated
//! cycles happen.
//!
//! Order of work: reserve (the store computes the available balance, skips a seller below its
//! minimum, not payable, paused or blocked, and books the amount from the seller's payable
//! account to payouts in transit *before* any provider call); send it to the provider; then
//! wait for the provider's outcome as `payout_event` signals (webhooks through the gateway's
//! bridge), asking the provider at a deadline when none comes; a PAID payout is watched for
//! the provider's return window (banks return payouts after `paid`) and only then settled. A
//! failed or returned payout is booked back to the seller, with the provider's failure code,
//! and pauses the seller's payouts until an operator marks the bank account fixed. An
//! operator's `cancel_payout` signal cancels it at the provider while that is still possible.
//! A step that exhausts its retries parks the payout as a dead letter.

use crate::dead_letter::{DeadLetterHost, DeadLetters, Step, guarded};
use crate::failures::StepError;
use crate::messages::DeadLetterAction;
use crate::payout_contract::{
    CancelPayout, CheckPayout, PAYOUT_STATUS_ATTRIBUTE, PayoutReport, PayoutState, RecordPayoutEvent, ReservePayout,
    ReservePayoutInput, Reserved, RollingReserve, SELLER_ID_ATTRIBUTE, SendPayout, SettlePayout,
};
use crate::persist::persist;
use crate::policies;
use payments_domain::{Currency, Money, SellerAccount};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

/// The `PaymentStatus` a payout shows again after a dead letter is closed.
pub const PAYOUT_PAYMENT_STATUS: &str = "PAYOUT";

/// How long a payout waits and how hard it tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutTimings {
    /// Without a provider event for this long, the provider is asked (a status query).
    pub status_check_secs: u64,
    /// After the provider reports PAID, how long a bank may still return it before it settles.
    pub return_window_secs: u64,
    /// Attempts of one provider call before the payout parks as a dead letter.
    pub provider_attempts_max: u32,
    /// Attempts of one run of a database step (see [`crate::messages::WaitLimits`]).
    pub store_attempts_max: u32,
}

impl PayoutTimings {
    /// Production defaults: ask the provider after 1 h without news; watch a paid payout for
    /// 7 days (Stripe reports failures within 5 business days); 10 provider attempts (about 3
    /// minutes of backoff); 30 database attempts per run.
    pub const DEFAULT: PayoutTimings = PayoutTimings {
        status_check_secs: 3600,
        return_window_secs: 7 * 86_400,
        provider_attempts_max: 10,
        store_attempts_max: policies::STORE_ATTEMPTS_MAX,
    };
}

/// The payout workflow's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutInput {
    /// The seller.
    pub seller: SellerAccount,
    /// The currency.
    pub currency: Currency,
    /// The period paid.
    pub period: String,
    /// Captures younger than this are not payable yet.
    pub payout_delay_ms: i64,
    /// The rolling reserve (none in inputs written before it existed).
    #[serde(default)]
    pub reserve: RollingReserve,
    /// Waits and attempts.
    pub timings: PayoutTimings,
}

/// How a payout ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutResult {
    /// The payout id.
    pub payout_id: String,
    /// SETTLED, FAILED, CANCELED, SKIPPED, or the last status when an operator resolved it.
    pub status: String,
    /// Amount, when a payout was made.
    pub amount: Option<Money>,
    /// Why no payout was made, or the provider's failure code.
    pub reason: Option<String>,
}

/// One payout.
#[workflow]
pub struct PayoutWorkflow {
    input: PayoutInput,
    status: String,
    events: VecDeque<PayoutReport>,
    cancel: Option<String>,
    cancel_done: bool,
    dead_letters: DeadLetters,
}

impl DeadLetterHost for PayoutWorkflow {
    fn dead_letters(&self) -> &DeadLetters {
        &self.dead_letters
    }
    fn dead_letters_mut(&mut self) -> &mut DeadLetters {
        &mut self.dead_letters
    }
    fn status_value(&self) -> &'static str {
        PAYOUT_PAYMENT_STATUS
    }
    fn store_attempts_max(&self) -> u32 {
        self.input.timings.store_attempts_max
    }
}

/// The workflow id (and provider reference) of a payout.
pub fn payout_workflow_id(seller: &SellerAccount, currency: Currency, period: &str) -> String {
    format!("payout-{seller}-{currency}-{period}")
}

type Ctx = WorkflowContext<PayoutWorkflow>;

fn show(ctx: &Ctx, status: &str) {
    ctx.state_mut(|s| s.status = status.to_owned());
    ctx.upsert_search_attributes([PAYOUT_STATUS_ATTRIBUTE.value_set(status.to_owned())]);
}

#[workflow_methods]
impl PayoutWorkflow {
    /// State from the input.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: PayoutInput) -> Self {
        PayoutWorkflow {
            input,
            status: "RESERVING".into(),
            events: VecDeque::new(),
            cancel: None,
            cancel_done: false,
            dead_letters: DeadLetters::default(),
        }
    }

    /// Reserves, sends and follows the payout to its end.
    #[run(name = "payout")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<PayoutResult> {
        let input = ctx.state(|s| s.input.clone());
        let payout_id = payout_workflow_id(&input.seller, input.currency, &input.period);
        ctx.upsert_search_attributes([
            SELLER_ID_ATTRIBUTE.value_set(input.seller.to_string()),
            PAYOUT_STATUS_ATTRIBUTE.value_set("RESERVING".to_owned()),
        ]);
        let t = input.timings;
        let step = |name: &'static str, attempts_max| Step {
            subject: payout_id.clone(),
            step: name,
            checkout_id: None,
            attempts_max,
        };
        let reserve = ReservePayoutInput {
            seller: input.seller.clone(),
            currency: input.currency,
            period: input.period.clone(),
            payout_delay_ms: input.payout_delay_ms,
            reserve: input.reserve,
        };
        let reserved = guarded(ctx, &step("payout.reserve", t.store_attempts_max), || {
            persist(ctx, ReservePayout, reserve.clone())
        })
        .await?;
        let mut state = match reserved {
            Some(Reserved::Payout(state)) => state,
            Some(Reserved::Skipped(reason)) => {
                show(ctx, "SKIPPED");
                return Ok(PayoutResult { payout_id, status: "SKIPPED".into(), amount: None, reason: Some(reason) });
            }
            None => return Ok(resolved(payout_id, None)),
        };
        show(ctx, &state.status);
        if state.status == "RESERVED" && ctx.state(|s| s.cancel.is_none()) {
            let send = || provider_step(ctx, SendPayout, state.clone(), t.provider_attempts_max);
            match guarded(ctx, &step("payout.send", t.provider_attempts_max), send).await? {
                Some(sent) => state = sent,
                None => return Ok(resolved(payout_id, Some(state))),
            }
        }
        while !state.is_final() {
            show(ctx, &state.status);
            let paid = state.status == "PAID";
            let wait = Duration::from_secs(if paid { t.return_window_secs } else { t.status_check_secs });
            let woken = |s: &PayoutWorkflow| !s.events.is_empty() || (s.cancel.is_some() && !s.cancel_done);
            if !ctx.state(woken) {
                temporalio_sdk::workflows::select! {
                    _ = ctx.wait_condition(woken) => {},
                    _ = ctx.timer(wait) => {},
                };
            }
            let event = ctx.state_mut(|s| s.events.pop_front());
            let cancel = ctx.state(|s| s.cancel.is_some() && !s.cancel_done);
            let next = if let Some(event) = event {
                guarded(ctx, &step("payout.record", t.store_attempts_max), || {
                    persist(ctx, RecordPayoutEvent, event.clone())
                })
                .await?
            } else if cancel {
                ctx.state_mut(|s| s.cancel_done = true);
                let cancel = || provider_step(ctx, CancelPayout, state.clone(), t.provider_attempts_max);
                guarded(ctx, &step("payout.cancel", t.provider_attempts_max), cancel).await?
            } else if paid {
                guarded(ctx, &step("payout.settle", t.store_attempts_max), || {
                    persist(ctx, SettlePayout, state.payout_id.clone())
                })
                .await?
            } else {
                let check = || provider_step(ctx, CheckPayout, state.clone(), t.provider_attempts_max);
                guarded(ctx, &step("payout.check", t.provider_attempts_max), check).await?
            };
            match next {
                Some(next) => state = next,
                None => return Ok(resolved(payout_id, Some(state))),
            }
        }
        show(ctx, &state.status);
        Ok(PayoutResult {
            payout_id,
            status: state.status.clone(),
            amount: Some(state.amount),
            reason: state.failure_code.clone(),
        })
    }

    /// A provider event about this payout (the gateway's webhook bridge).
    #[signal(name = "payout_event")]
    pub fn payout_event(&mut self, _ctx: &mut SyncWorkflowContext<Self>, report: PayoutReport) {
        self.events.push_back(report);
    }

    /// An operator asks to cancel the payout (honoured while the provider can still cancel it).
    #[signal(name = "cancel_payout")]
    pub fn cancel_payout(&mut self, _ctx: &mut SyncWorkflowContext<Self>, reason: String) {
        if self.cancel.is_none() {
            self.cancel = Some(reason);
        }
    }

    /// The payout's status as the workflow last saw it.
    #[query(name = "payout_status")]
    pub fn payout_status(&self, _ctx: &WorkflowContextView) -> String {
        self.status.clone()
    }

    /// Refuses an action for a dead letter this payout is not parked on.
    #[update_validator(dead_letter)]
    fn validate_dead_letter(
        &self,
        _ctx: &WorkflowContextView,
        action: &DeadLetterAction,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.dead_letters.validate(action)?)
    }

    /// An operator retries or resolves the dead letter this payout is parked on.
    #[update(name = "dead_letter")]
    pub fn dead_letter(&mut self, _ctx: &mut SyncWorkflowContext<Self>, action: DeadLetterAction) -> String {
        let verb = format!("{:?}", action.verb);
        self.dead_letters.accept(action);
        verb
    }
}

/// A provider call with its retry policy (sending again is safe: the payout id is the
/// provider's idempotency key).
async fn provider_step<A>(
    ctx: &Ctx,
    activity: A,
    state: PayoutState,
    attempts_max: u32,
) -> Result<PayoutState, StepError>
where
    A: temporalio_common::ActivityDefinition<Input = PayoutState, Output = PayoutState> + Copy,
{
    ctx.execute_local_activity(activity, state, policies::payout_provider(attempts_max)).await.map_err(StepError::from)
}

fn resolved(payout_id: String, state: Option<PayoutState>) -> PayoutResult {
    PayoutResult {
        payout_id,
        status: state.as_ref().map_or_else(|| "RESOLVED".to_owned(), |s| s.status.clone()),
        amount: state.map(|s| s.amount),
        reason: Some("resolved by an operator".into()),
    }
}
