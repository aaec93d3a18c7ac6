//! Settling one PSP payment: a charge (direct flow) or a confirmation (hosted flow), until the
//! PSP's answer is known.
//!
//! - Captured / declined: final.
//! - The answer was lost (timeout, dropped connection) or the PSP stayed unreachable through
//!   every retry: the orders are UNKNOWN (money may have moved) and the PSP is asked what
//!   became of the payment. Only when the PSP has no such payment is the request sent again,
//!   with the same idempotency key. Never guessed as FAILED.
//! - Pending (3-D Secure, PSP review): the workflow waits for the PSP's webhook (a signal,
//!   only a hint: the PSP is asked each time) until the deadline; then the payment is
//!   cancelled at the PSP so it can never be captured later, and its final state read.

use crate::checkout::{CheckoutWorkflow, set_phase, transition};
use crate::contract::{
    CancelPending, ChargeInput, ChargeOrder, ChargeOutcome, ConfirmInput, ConfirmPayment, LookupInput, LookupPayment,
    PaymentLookup, StatusChange,
};
use crate::failures::StepError;
use crate::messages::{CheckoutPhase, ConfirmResult};
use crate::policies::{self, failure_types};
use crate::waits::{Deadline, wait_until};
use payments_domain::{PaymentOrderId, PaymentOrderStatus};
use std::time::Duration;
use temporalio_sdk::{ActivityExecutionError, WorkflowContext, WorkflowResult};

type Ctx = WorkflowContext<CheckoutWorkflow>;

/// The request that moves the money.
#[derive(Debug, Clone)]
pub(crate) enum PaymentRequest {
    /// Charge a token (direct flow).
    Charge(ChargeInput),
    /// Confirm a hosted payment.
    Confirm(ConfirmInput),
}

/// How a payment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Captured or declined.
    Final(ChargeOutcome),
    /// The PSP refused the request itself (invalid, bad credentials): nothing charged.
    Refused { code: Option<String>, message: String },
    /// Still unknown (only while settling inline; the janitor then takes over).
    Unknown(String),
    /// The janitor found that the PSP has no payment for the order: nothing was charged.
    NoPayment,
}

fn attempts_max(ctx: &Ctx) -> u32 {
    ctx.state(|s| s.input.waits.psp_attempts_max)
}

async fn attempt(ctx: &Ctx, request: &PaymentRequest) -> Result<ChargeOutcome, ActivityExecutionError> {
    let policy = policies::psp_charge(attempts_max(ctx));
    match request {
        PaymentRequest::Charge(c) => ctx.execute_local_activity(ChargeOrder, c.clone(), policy).await,
        PaymentRequest::Confirm(c) => ctx.execute_local_activity(ConfirmPayment, c.clone(), policy).await,
    }
}

/// Sends the request until the payment is settled; `orders` are marked UNKNOWN on the way
/// when the outcome is in doubt, and then the janitor asks the PSP on its schedule until it
/// gives a final answer. `lookup` finds the payment at the PSP.
pub(crate) async fn settle_payment(
    ctx: &Ctx,
    orders: &[PaymentOrderId],
    request: PaymentRequest,
    lookup: LookupInput,
) -> WorkflowResult<Settled> {
    match settle_inline(ctx, orders, request, &lookup).await? {
        Settled::Unknown(reason) => janitor(ctx, orders, &lookup, &reason).await,
        settled => Ok(settled),
    }
}

async fn settle_inline(
    ctx: &Ctx,
    orders: &[PaymentOrderId],
    request: PaymentRequest,
    lookup: &LookupInput,
) -> WorkflowResult<Settled> {
    for _round in 0..policies::CHARGE_ROUNDS_MAX {
        let err = match attempt(ctx, &request).await {
            Ok(outcome) => return follow(ctx, lookup, outcome).await,
            Err(err) => StepError::from(err),
        };
        let StepError { type_name, message, .. } = err;
        if matches!(
            type_name.as_deref(),
            Some(failure_types::PSP_INVALID_REQUEST) | Some(failure_types::PSP_AUTHENTICATION)
        ) {
            return Ok(Settled::Refused { code: type_name, message });
        }
        let reason = format!("PSP outcome unknown ({}): {message}", type_name.as_deref().unwrap_or("error"));
        for id in orders {
            transition(ctx, unknown(id, &reason)).await?;
        }
        match query(ctx, lookup).await {
            Some(PaymentLookup::Found(outcome)) => return follow(ctx, lookup, outcome).await,
            // The PSP never saw it: sending again with the same key is safe.
            Some(PaymentLookup::NotFound) => continue,
            None => return Ok(Settled::Unknown("PSP unreachable for status queries".into())),
        }
    }
    Ok(Settled::Unknown("PSP outcome still unknown after every round".into()))
}

/// The UNKNOWN janitor: the orders stay UNKNOWN (money may have moved) while the PSP is asked
/// on the configured schedule (default 5 min, 1 h, then daily; a webhook about the checkout
/// asks at once) until it gives a final answer: captured or declined settle the orders as
/// usual; "no such payment" -- asked minutes after the last request, when nothing of ours can
/// still be in flight -- means nothing was charged. Never guessed, never given up.
async fn janitor(ctx: &Ctx, orders: &[PaymentOrderId], lookup: &LookupInput, reason: &str) -> WorkflowResult<Settled> {
    for id in orders {
        transition(ctx, unknown(id, reason)).await?;
    }
    let limits = ctx.state(|s| s.input.waits);
    let mut round = 0usize;
    loop {
        set_phase(ctx, CheckoutPhase::Unknown);
        // A webhook about the checkout, or a cancel arriving now, asks the PSP at once.
        let (seen, cancelled) = ctx.state(|s| (s.psp_hints, s.cancel.is_some()));
        let deadline = Deadline::after(ctx, Duration::from_secs(limits.unknown_recheck(round)));
        wait_until(ctx, deadline, move |s| s.psp_hints > seen || s.cancel.is_some() != cancelled).await;
        match query(ctx, lookup).await {
            Some(PaymentLookup::NotFound) => return Ok(Settled::NoPayment),
            Some(PaymentLookup::Found(outcome)) => match follow(ctx, lookup, outcome).await? {
                Settled::Unknown(_) => {}
                settled => return Ok(settled),
            },
            // The PSP could not be asked: next round.
            None => {}
        }
        round += 1;
    }
}

/// Status query; `None` when the PSP could not be asked (retries exhausted).
async fn query(ctx: &Ctx, input: &LookupInput) -> Option<PaymentLookup> {
    let policy = policies::psp_lookup(attempts_max(ctx));
    ctx.execute_local_activity(LookupPayment, input.clone(), policy).await.ok()
}

fn is_pending(o: &ChargeOutcome) -> bool {
    matches!(o, ChargeOutcome::Pending { .. })
}

/// Follows a pending payment until the PSP's final answer or the deadline.
async fn follow(ctx: &Ctx, lookup: &LookupInput, outcome: ChargeOutcome) -> WorkflowResult<Settled> {
    let ChargeOutcome::Pending { psp_reference, .. } = outcome else {
        return Ok(Settled::Final(outcome));
    };
    set_phase(ctx, CheckoutPhase::AwaitingPsp);
    ctx.state_mut(|s| {
        // A buyer waiting on the hosted result page learns it is being processed.
        if s.confirmation.is_some() && s.confirm_result.is_none() {
            s.confirm_result = Some(ConfirmResult { status: "PENDING".into(), code: None, message: None });
        }
    });
    let by_reference =
        LookupInput { payment_order_id: lookup.payment_order_id.clone(), psp_reference: Some(psp_reference) };
    let limit = Duration::from_secs(ctx.state(|s| s.input.waits.psp_pending_secs));
    let deadline = Deadline::after(ctx, limit);
    loop {
        // Snapshot the hint count before asking the PSP: a webhook that lands while we ask
        // (or landed before) is then never missed, and we never wait for one already here.
        let seen = ctx.state(|s| s.psp_hints);
        if let Some(PaymentLookup::Found(o)) = query(ctx, &by_reference).await
            && !is_pending(&o)
        {
            set_phase(ctx, CheckoutPhase::Charging);
            return Ok(Settled::Final(o));
        }
        // A cancel ends the wait: the payment is cancelled at the PSP below.
        if !wait_until(ctx, deadline, move |s| s.psp_hints > seen || s.cancel.is_some()).await
            || ctx.state(|s| s.cancel.is_some())
        {
            break;
        }
    }
    // Deadline: cancel at the PSP so a late approval can never capture, then take its answer
    // (captured if the approval won the race).
    let policy = policies::psp_lookup(attempts_max(ctx));
    match ctx.execute_local_activity(CancelPending, by_reference, policy).await {
        Ok(o) if !is_pending(&o) => Ok(Settled::Final(o)),
        _ => Ok(Settled::Unknown("pending at the PSP past the deadline and not cancellable".into())),
    }
}

fn unknown(id: &PaymentOrderId, reason: &str) -> StatusChange {
    let mut c = StatusChange::new(id.clone(), PaymentOrderStatus::Unknown, reason);
    c.failure_code = Some("psp_outcome_unknown".to_owned());
    c.failure_message = Some(reason.to_owned());
    c
}

/// The status change that records a settled payment on one of its orders.
pub(crate) fn change_for(id: &PaymentOrderId, settled: &Settled) -> StatusChange {
    match settled.clone() {
        Settled::Final(ChargeOutcome::Captured { psp_reference }) => {
            let mut c = StatusChange::new(id.clone(), PaymentOrderStatus::Success, "captured by the PSP");
            c.psp_reference = Some(psp_reference);
            c
        }
        Settled::Final(ChargeOutcome::Declined { code, message, psp_reference }) => {
            let mut c = StatusChange::new(id.clone(), PaymentOrderStatus::Failed, "declined by the PSP");
            c.psp_reference = psp_reference;
            c.failure_code = Some(code);
            c.failure_message = Some(message);
            c
        }
        Settled::Final(ChargeOutcome::Pending { .. }) => unknown(id, "pending at the PSP"),
        Settled::Refused { code, message } => {
            let mut c = StatusChange::new(id.clone(), PaymentOrderStatus::Failed, "PSP refused the request");
            c.failure_code = code;
            c.failure_message = Some(message);
            c
        }
        Settled::Unknown(reason) => unknown(id, &reason),
        Settled::NoPayment => {
            let reason = "the PSP has no payment for this order: nothing was charged";
            let mut c = StatusChange::new(id.clone(), PaymentOrderStatus::Failed, reason);
            c.failure_code = Some("psp_no_payment".to_owned());
            c.failure_message = Some(reason.to_owned());
            c
        }
    }
}
