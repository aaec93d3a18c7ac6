//! Settling one PSP payment: a charge (direct flow) or a confirmation (hosted flow), until the
//! PSP's answer is known.
//!
//! - Captured / declined: final.
//! - The answer was lost (timeout, dropped connection) or the PSP stayed unreachable through
//!   every retry: the orders are UNKNOWN (money may have moved) and the PSP is asked what
//!   became of the payment. The request is sent again, with the same idempotency key, only
//!   when that cannot charge twice: the PSP has no such payment, or its search cannot tell yet
//!   but still holds our key (it then replays its first answer). Never guessed as FAILED.
//! - A payment the PSP finds under our reference that is not ours (another order, amount or
//!   currency) is never a capture: the lookup parks as a dead letter for an operator.
//! - Pending (3-D Secure, PSP review): the workflow waits for the PSP's webhook (a signal,
//!   only a hint: the PSP is asked each time) until the deadline; then the payment is
//!   cancelled at the PSP so it can never be captured later, and its final state read.

use crate::checkout::{CheckoutWorkflow, set_phase, transition};
use crate::contract::{
    CancelPending, ChargeInput, ChargeOrder, ChargeOutcome, ConfirmInput, ConfirmPayment, LookupInput, LookupPayment,
    PaymentLookup, StatusChange,
};
use crate::dead_letter::{Step, guarded};
use crate::failures::StepError;
use crate::messages::{CheckoutPhase, ConfirmResult};
use crate::policies::{self, failure_types};
use crate::waits::{Deadline, wait_until};
use payments_domain::{PaymentOrderId, PaymentOrderStatus};
use std::cell::RefCell;
use std::time::{Duration, UNIX_EPOCH};
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

impl PaymentRequest {
    /// The same request, stamped with when its key was first used (see [`Sends`]).
    fn stamped(&self, first_sent_at_ms: Option<i64>) -> PaymentRequest {
        match self {
            PaymentRequest::Charge(c) => PaymentRequest::Charge(ChargeInput { first_sent_at_ms, ..c.clone() }),
            PaymentRequest::Confirm(c) => PaymentRequest::Confirm(ConfirmInput { first_sent_at_ms, ..c.clone() }),
        }
    }
}

/// When requests were sent under the payment's idempotency key, in workflow time (ms since
/// the epoch). `first`: at or before the first send whose effect is not ruled out -- while the
/// PSP still holds the key from then, re-sending replays instead of charging again. `last`: at
/// or after the latest send -- a search that may lag trusts a miss only long enough after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sends {
    pub(crate) first: Option<i64>,
    pub(crate) last: Option<i64>,
}

/// Workflow time in ms since the epoch (deterministic on replay).
pub(crate) fn now_ms(ctx: &Ctx) -> Option<i64> {
    let now = ctx.workflow_time()?.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(now.as_millis()).ok()
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
    /// The PSP's payment under our reference was not ours, and an operator resolved the dead
    /// letter: nothing of ours is booked.
    Mismatch(String),
}

fn attempts_max(ctx: &Ctx) -> u32 {
    ctx.state(|s| s.input.waits.psp_attempts_max)
}

/// Sends the request once (with its retry policy), recording when in `sends`.
async fn send(ctx: &Ctx, request: &PaymentRequest, sends: &mut Sends) -> Result<ChargeOutcome, ActivityExecutionError> {
    if sends.first.is_none() {
        sends.first = now_ms(ctx);
    }
    let policy = policies::psp_charge(attempts_max(ctx));
    let result = match request.stamped(sends.first) {
        PaymentRequest::Charge(c) => ctx.execute_local_activity(ChargeOrder, c, policy).await,
        PaymentRequest::Confirm(c) => ctx.execute_local_activity(ConfirmPayment, c, policy).await,
    };
    // Workflow time after the answer: at or after the send, give or take a workflow task
    // heartbeat (seconds), far below any PSP's indexing delay.
    sends.last = now_ms(ctx);
    result
}

/// Sends the request until the payment is settled; `orders` are marked UNKNOWN on the way
/// when the outcome is in doubt, and then the janitor asks the PSP on its schedule until it
/// gives a final answer. `lookup` finds the payment at the PSP.
pub(crate) async fn settle_payment(
    ctx: &Ctx,
    orders: &[PaymentOrderId],
    request: PaymentRequest,
    lookup: LookupInput,
    mut sends: Sends,
) -> WorkflowResult<Settled> {
    match settle_inline(ctx, orders, &request, &lookup, &mut sends).await? {
        Settled::Unknown(reason) => janitor(ctx, orders, Some(&request), &lookup, &mut sends, &reason).await,
        settled => Ok(settled),
    }
}

/// For an order a previous run may have charged: the PSP is asked first, and the request is
/// sent only when that cannot charge twice (`request` is `None` when it must never be sent
/// again, e.g. a hosted payment whose buyer is gone).
pub(crate) async fn settle_asking_first(
    ctx: &Ctx,
    orders: &[PaymentOrderId],
    request: Option<PaymentRequest>,
    lookup: LookupInput,
    mut sends: Sends,
) -> WorkflowResult<Settled> {
    let reason = match ask(ctx, &lookup, &sends).await? {
        Asked::Resolved(reason) => return Ok(Settled::Mismatch(reason)),
        Asked::Lookup(PaymentLookup::Found(outcome)) => match follow(ctx, &lookup, outcome).await? {
            Settled::Unknown(reason) => reason,
            settled => return Ok(settled),
        },
        Asked::Lookup(PaymentLookup::NotFound) => match request {
            // Nothing of ours at the PSP: a fresh request.
            Some(request) => return settle_payment(ctx, orders, request, lookup, Sends::default()).await,
            None => return Ok(Settled::NoPayment),
        },
        Asked::Lookup(PaymentLookup::NotVisibleYet { resend_safe: true }) if request.is_some() => {
            let request = request.unwrap_or_else(|| unreachable!("matched Some"));
            return settle_payment(ctx, orders, request, lookup, sends).await;
        }
        Asked::Lookup(_) => "the PSP's search cannot tell yet whether it has the payment".to_owned(),
        Asked::Unreachable => "PSP unreachable for status queries".to_owned(),
    };
    janitor(ctx, orders, request.as_ref(), &lookup, &mut sends, &reason).await
}

async fn settle_inline(
    ctx: &Ctx,
    orders: &[PaymentOrderId],
    request: &PaymentRequest,
    lookup: &LookupInput,
    sends: &mut Sends,
) -> WorkflowResult<Settled> {
    for _round in 0..policies::CHARGE_ROUNDS_MAX {
        let err = match send(ctx, request, sends).await {
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
        match ask(ctx, lookup, sends).await? {
            Asked::Resolved(reason) => return Ok(Settled::Mismatch(reason)),
            Asked::Lookup(PaymentLookup::Found(outcome)) => return follow(ctx, lookup, outcome).await,
            // The PSP never saw it: sending again is safe, and starts the key's life afresh.
            Asked::Lookup(PaymentLookup::NotFound) => *sends = Sends::default(),
            // The search cannot tell yet, but the PSP still holds our key: a resend replays.
            Asked::Lookup(PaymentLookup::NotVisibleYet { resend_safe: true }) => {}
            Asked::Lookup(_) => {
                return Ok(Settled::Unknown("the PSP's search cannot tell yet whether it has the payment".into()));
            }
            Asked::Unreachable => return Ok(Settled::Unknown("PSP unreachable for status queries".into())),
        }
    }
    Ok(Settled::Unknown("PSP outcome still unknown after every round".into()))
}

/// The UNKNOWN janitor: the orders stay UNKNOWN (money may have moved) while the PSP is asked
/// on the configured schedule (default 5 min, 1 h, then daily; a webhook about the checkout
/// asks at once) until it gives a final answer: captured or declined settle the orders as
/// usual; "no such payment" (a final answer: Stripe's lagging search counts a miss only long
/// after the last request) means nothing was charged. While the PSP still holds our key and
/// its search cannot tell, the request is re-sent with the key (unless the checkout was
/// cancelled): the PSP answers the first request's outcome. Never guessed, never given up.
async fn janitor(
    ctx: &Ctx,
    orders: &[PaymentOrderId],
    request: Option<&PaymentRequest>,
    lookup: &LookupInput,
    sends: &mut Sends,
    reason: &str,
) -> WorkflowResult<Settled> {
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
        round += 1;
        let found = match ask(ctx, lookup, sends).await? {
            Asked::Resolved(reason) => return Ok(Settled::Mismatch(reason)),
            Asked::Lookup(PaymentLookup::NotFound) => return Ok(Settled::NoPayment),
            Asked::Lookup(PaymentLookup::Found(outcome)) => outcome,
            Asked::Lookup(PaymentLookup::NotVisibleYet { resend_safe: true }) => {
                let cancelled = ctx.state(|s| s.cancel.is_some());
                match request {
                    // Cancelled: wait until a miss counts rather than charge to give back.
                    Some(request) if !cancelled => match send(ctx, request, sends).await {
                        Ok(outcome) => outcome,
                        Err(_) => continue,
                    },
                    _ => continue,
                }
            }
            // The search cannot tell yet, or the PSP could not be asked: next round.
            Asked::Lookup(_) | Asked::Unreachable => continue,
        };
        match follow(ctx, lookup, found).await? {
            Settled::Unknown(_) => {}
            settled => return Ok(settled),
        }
    }
}

/// What asking the PSP came to.
enum Asked {
    /// Its answer (never [`PaymentLookup::Mismatch`]: that parks first).
    Lookup(PaymentLookup),
    /// It could not be asked (retries exhausted).
    Unreachable,
    /// A mismatch was parked and an operator resolved it (the reason is the mismatch).
    Resolved(String),
}

/// Status query with `sends` stamped in. A payment that is not ours parks the lookup as a
/// dead letter: an operator's retry asks again; a resolve answers [`Asked::Resolved`].
async fn ask(ctx: &Ctx, input: &LookupInput, sends: &Sends) -> WorkflowResult<Asked> {
    let input = LookupInput { first_sent_at_ms: sends.first, last_sent_at_ms: sends.last, ..input.clone() };
    let step = Step {
        subject: input.payment_order_id.to_string(),
        step: "psp.lookup",
        checkout_id: Some(ctx.state(|s| s.input.checkout_id.clone())),
        attempts_max: attempts_max(ctx),
    };
    let mismatch = RefCell::new(String::new());
    let asked = guarded(ctx, &step, || async {
        match query(ctx, &input).await {
            Some(PaymentLookup::Mismatch { reason }) => {
                mismatch.replace(reason.clone());
                Err(StepError::decided(failure_types::PSP_PAYMENT_MISMATCH, reason))
            }
            other => Ok(other),
        }
    })
    .await?;
    Ok(match asked {
        Some(Some(lookup)) => Asked::Lookup(lookup),
        Some(None) => Asked::Unreachable,
        None => Asked::Resolved(mismatch.into_inner()),
    })
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
    let by_reference = LookupInput { psp_reference: Some(psp_reference), ..lookup.clone() };
    let limit = Duration::from_secs(ctx.state(|s| s.input.waits.psp_pending_secs));
    let deadline = Deadline::after(ctx, limit);
    loop {
        // Snapshot the hint count before asking the PSP: a webhook that lands while we ask
        // (or landed before) is then never missed, and we never wait for one already here.
        let seen = ctx.state(|s| s.psp_hints);
        match query(ctx, &by_reference).await {
            Some(PaymentLookup::Found(o)) if !is_pending(&o) => {
                set_phase(ctx, CheckoutPhase::Charging);
                return Ok(Settled::Final(o));
            }
            // The reference the PSP gave for our request now names someone else's payment.
            Some(PaymentLookup::Mismatch { reason }) => return Ok(Settled::Unknown(reason)),
            _ => {}
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

/// Failure code of an order whose PSP payment was not ours and an operator resolved it.
pub(crate) const MISMATCH_CODE: &str = "psp_payment_mismatch";

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
        Settled::Mismatch(reason) => {
            let why = format!("the PSP's payment is not this order's ({reason}); resolved by an operator");
            let mut c = StatusChange::new(id.clone(), PaymentOrderStatus::Failed, why.clone());
            c.failure_code = Some(MISMATCH_CODE.to_owned());
            c.failure_message = Some(why);
            c
        }
    }
}
