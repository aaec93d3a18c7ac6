//! Charging one payment order until the PSP's answer is known.
//!
//! - Captured / declined: final.
//! - The answer was lost (timeout, dropped connection) or the PSP stayed unreachable through
//!   every retry: the order is UNKNOWN (money may have moved) and the PSP is asked what became
//!   of it. Only when the PSP has no payment for the order is the charge sent again, with the
//!   same idempotency key. Never guessed as FAILED.
//! - Pending (3-D Secure, review): polled with durable timers until final or the deadline.

use crate::checkout::{CheckoutWorkflow, failure_details};
use crate::contract::{
    ChargeInput, ChargeOrder, ChargeOutcome, LookupInput, LookupPayment, PaymentLookup,
    StatusChange,
};
use crate::policies::{self, failure_types};
use payments_domain::{PaymentOrderId, PaymentOrderStatus};
use std::time::Duration;
use temporalio_sdk::{WorkflowContext, WorkflowResult};

type Ctx = WorkflowContext<CheckoutWorkflow>;

/// Charges the order and answers the status change that records the outcome. Marks the
/// order UNKNOWN on the way when the outcome is in doubt.
pub(crate) async fn charge_order(ctx: &Ctx, charge: &ChargeInput) -> WorkflowResult<StatusChange> {
    let id = &charge.payment_order_id;
    for _round in 0..policies::CHARGE_ROUNDS_MAX {
        let err = match ctx
            .execute_local_activity(ChargeOrder, charge.clone(), policies::psp_charge())
            .await
        {
            Ok(outcome) => return settle(ctx, id, outcome).await,
            Err(err) => err,
        };
        let (type_name, message) = failure_details(&err);
        if matches!(
            type_name.as_deref(),
            Some(failure_types::PSP_INVALID_REQUEST) | Some(failure_types::PSP_AUTHENTICATION)
        ) {
            // Refused before any processing: no money moved.
            let mut c = StatusChange::new(
                id.clone(),
                PaymentOrderStatus::Failed,
                "PSP refused the request",
            );
            c.failure_code = type_name;
            c.failure_message = Some(message);
            return Ok(c);
        }
        let reason = format!(
            "PSP outcome unknown ({}): {message}",
            type_name.as_deref().unwrap_or("error")
        );
        crate::checkout::transition(ctx, unknown(id, &reason)).await?;
        match lookup(ctx, id, None).await {
            Some(PaymentLookup::Found(outcome)) => return settle(ctx, id, outcome).await,
            // The PSP never saw it: charging again with the same key is safe.
            Some(PaymentLookup::NotFound) => continue,
            None => return Ok(unknown(id, "PSP unreachable for status queries")),
        }
    }
    Ok(unknown(
        id,
        "PSP outcome still unknown after every charge round",
    ))
}

fn unknown(id: &PaymentOrderId, reason: &str) -> StatusChange {
    let mut c = StatusChange::new(id.clone(), PaymentOrderStatus::Unknown, reason);
    c.failure_code = Some("psp_outcome_unknown".to_owned());
    c.failure_message = Some(reason.to_owned());
    c
}

/// Status query; `None` when the PSP could not be asked (retries exhausted).
async fn lookup(
    ctx: &Ctx,
    id: &PaymentOrderId,
    psp_reference: Option<String>,
) -> Option<PaymentLookup> {
    let input = LookupInput {
        payment_order_id: id.clone(),
        psp_reference,
    };
    ctx.execute_local_activity(LookupPayment, input, policies::psp_lookup())
        .await
        .ok()
}

/// Turns an outcome into its status change; waits out a pending one.
async fn settle(
    ctx: &Ctx,
    id: &PaymentOrderId,
    outcome: ChargeOutcome,
) -> WorkflowResult<StatusChange> {
    let outcome = match outcome {
        ChargeOutcome::Pending { psp_reference, .. } => {
            match await_pending(ctx, id, psp_reference).await {
                Some(final_outcome) => final_outcome,
                None => return Ok(unknown(id, "pending at the PSP past the deadline")),
            }
        }
        other => other,
    };
    Ok(match outcome {
        ChargeOutcome::Captured { psp_reference } => {
            let mut c = StatusChange::new(
                id.clone(),
                PaymentOrderStatus::Success,
                "captured by the PSP",
            );
            c.psp_reference = Some(psp_reference);
            c
        }
        ChargeOutcome::Declined {
            code,
            message,
            psp_reference,
        } => {
            let mut c = StatusChange::new(
                id.clone(),
                PaymentOrderStatus::Failed,
                "declined by the PSP",
            );
            c.psp_reference = psp_reference;
            c.failure_code = Some(code);
            c.failure_message = Some(message);
            c
        }
        ChargeOutcome::Pending { .. } => unreachable!("pending outcomes are awaited above"),
    })
}

/// Polls a pending payment with doubling durable timers until it is final, or `None` at the
/// deadline.
async fn await_pending(
    ctx: &Ctx,
    id: &PaymentOrderId,
    psp_reference: String,
) -> Option<ChargeOutcome> {
    let mut interval = policies::PENDING_POLL_FIRST;
    let mut waited = Duration::ZERO;
    while waited < policies::PENDING_DEADLINE {
        ctx.timer(interval).await;
        waited += interval;
        if let Some(PaymentLookup::Found(outcome)) =
            lookup(ctx, id, Some(psp_reference.clone())).await
            && !matches!(outcome, ChargeOutcome::Pending { .. })
        {
            return Some(outcome);
        }
        interval = (interval * 2).min(policies::PENDING_POLL_MAX);
    }
    None
}
