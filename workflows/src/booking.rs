//! Booking a settled order: record its status, then for a capture the ledger pay-in and the
//! seller's wallet credit. A rejected booking gives the capture back (the compensation: a
//! reversal refunded at the PSP and booked, the order REVERSED); a faulty one is a dead letter.

use crate::checkout::{CheckoutWorkflow, OrderResult, set_phase, transition};
use crate::contract::{CreditWallet, PostLedger, RequestReversal, ReversalInput, StatusChange};
use crate::dead_letter::{Step, guarded};
use crate::failures::StepError;
use crate::messages::CheckoutPhase;
use crate::persist::persist;
use crate::policies::failure_types;
use payments_domain::{PaymentOrderId, PaymentOrderStatus};
use temporalio_sdk::{WorkflowContext, WorkflowResult};

/// What of a captured order is booked already (a resumed checkout skips it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Booked {
    /// The ledger pay-in is posted.
    pub(crate) ledger: bool,
    /// The seller's wallet is credited.
    pub(crate) wallet: bool,
}

/// Records a settled change on an order and books it (ledger, then wallet) when captured.
pub(crate) async fn record_and_book(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    change: StatusChange,
) -> WorkflowResult<OrderResult> {
    let id = change.payment_order_id.clone();
    let failure_code = change.failure_code.clone();
    let mut status = transition(ctx, change).await?;
    if status == PaymentOrderStatus::Success {
        status = book(ctx, &id, Booked::default()).await?;
    }
    Ok(OrderResult { payment_order_id: id, status, failure_code })
}

/// Why a booking step's failure is a rejection (compensate: give the money back) rather than a
/// fault (dead letter: an operator retries once the cause is fixed).
fn is_rejection(err: &StepError) -> bool {
    err.is(failure_types::STORE_WALLET_BLOCKED) || err.is(failure_types::STORE_PRECONDITION)
}

/// Books a captured order: the ledger pay-in first (so a compensation always has a posted
/// transaction to reverse), then the seller's wallet, skipping what `booked` says is done. A
/// rejection gives the capture back (compensation); a database outage is waited out; any other
/// failure parks the step as a dead letter. Answers the order's final status.
pub(crate) async fn book(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    id: &PaymentOrderId,
    booked: Booked,
) -> WorkflowResult<PaymentOrderStatus> {
    let (checkout_id, attempts_max) = ctx.state(|s| (s.input.checkout_id.clone(), s.input.waits.store_attempts_max));
    let step =
        |name| Step { subject: id.to_string(), step: name, checkout_id: Some(checkout_id.clone()), attempts_max };
    if !booked.ledger {
        let ledger = guarded(ctx, &step("ledger.post_order"), || async {
            booking(persist(ctx, PostLedger, id.clone()).await.map(|_| ()))
        })
        .await?;
        if let Some(Err(rejected)) = ledger {
            return compensate(ctx, id, &format!("ledger refused the pay-in: {}", rejected.message)).await;
        }
    }
    if !booked.wallet {
        let wallet = guarded(ctx, &step("wallet.credit"), || async {
            booking(persist(ctx, CreditWallet, id.clone()).await.map(|_| ()))
        })
        .await?;
        if let Some(Err(rejected)) = wallet {
            return compensate(ctx, id, &format!("wallet credit refused: {}", rejected.message)).await;
        }
    }
    Ok(PaymentOrderStatus::Success)
}

/// Splits a booking step's failure: `Ok(Err)` a rejection, `Err` a fault (dead letter).
fn booking(result: Result<(), StepError>) -> Result<Result<(), StepError>, StepError> {
    match result {
        Ok(()) => Ok(Ok(())),
        Err(e) if is_rejection(&e) => Ok(Err(e)),
        Err(e) => Err(e),
    }
}

/// The compensation of a captured order whose booking was rejected: register the reversal (a
/// refund of everything captured, `{payment_order_id}:reversal`), refund it at the PSP with
/// that key, and book the reversal; the order ends REVERSED. Other orders of the checkout are
/// not touched (see README, "Failure model": one order's failure never undoes another's).
pub(crate) async fn compensate(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    id: &PaymentOrderId,
    reason: &str,
) -> WorkflowResult<PaymentOrderStatus> {
    set_phase(ctx, CheckoutPhase::Compensating);
    let (checkout_id, attempts_max, store_attempts_max) =
        ctx.state(|s| (s.input.checkout_id.clone(), s.input.waits.psp_attempts_max, s.input.waits.store_attempts_max));
    let step = Step {
        subject: id.to_string(),
        step: "refund.request_reversal",
        checkout_id: Some(checkout_id.clone()),
        attempts_max: store_attempts_max,
    };
    let input = ReversalInput { payment_order_id: id.clone(), reason: reason.to_owned() };
    let request = guarded(ctx, &step, || persist(ctx, RequestReversal, input.clone())).await?;
    let Some(request) = request else {
        // An operator resolved it by hand: the order stays as it is.
        return Ok(PaymentOrderStatus::Success);
    };
    let result = crate::refund::refund_and_book(ctx, &request, Some(checkout_id), attempts_max, true).await?;
    Ok(result.order_status.unwrap_or(PaymentOrderStatus::Success))
}
