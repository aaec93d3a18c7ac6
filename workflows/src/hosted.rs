//! The hosted flow (seed 003, Toss Payments): the buyer pays on the PSP's page; the gateway
//! hands the redirect's `paymentKey` to the workflow (update `confirm_payment`); the workflow
//! confirms that one payment for the whole checkout with *its own* amount, and every order
//! follows its outcome. A buyer who never comes back lets the checkout expire.

use crate::cancel::{cancellation, register_compensation};
use crate::charge::{PaymentRequest, Sends, change_for, settle_payment};
use crate::checkout::{CheckoutInput, CheckoutWorkflow, OrderResult, fail_all, record_and_book, set_phase, transition};
use crate::contract::{ConfirmInput, ExpectedPayment, LookupInput, StatusChange};
use crate::messages::{CheckoutPhase, ConfirmResult};
use crate::waits::{Deadline, wait_until};
use payments_domain::PaymentOrderStatus;
use std::time::Duration;
use temporalio_sdk::workflows::join_all;
use temporalio_sdk::{WorkflowContext, WorkflowResult};

/// Waits for the buyer's payment, confirms it, records and books every order.
pub(crate) async fn run_hosted(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    input: &CheckoutInput,
) -> WorkflowResult<Vec<OrderResult>> {
    set_phase(ctx, CheckoutPhase::AwaitingPayment);
    let deadline = Deadline::after(ctx, Duration::from_secs(input.waits.hosted_payment_secs));
    let paid_or_cancelled = wait_until(ctx, deadline, |s| s.confirmation.is_some() || s.cancel.is_some()).await;
    if let Some((code, message)) = cancellation(ctx)
        && ctx.state(|s| s.confirmation.is_none())
    {
        return fail_all(ctx, input, &code, &message, "not charged").await;
    }
    if !paid_or_cancelled {
        // The PSP expires an unconfirmed payment on its own: nothing was or will be captured.
        return fail_all(
            ctx,
            input,
            "payment_expired",
            "the buyer did not complete the payment in time",
            "hosted payment expired",
        )
        .await;
    }
    // The confirmation arrived as an update, in a speculative workflow task; completing that
    // task before any local activity runs lets the server accept the update (local activities
    // inside a speculative task make it fail the update).
    ctx.timer(Duration::from_millis(1)).await;
    let Some(request) = ctx.state(|s| s.confirmation.clone()) else {
        unreachable!("waited for the confirmation above");
    };
    let Some(total) = payments_domain::checkout::total_of(input.orders.iter().map(|o| o.amount)) else {
        unreachable!("hosted checkouts have one currency (checked at creation)");
    };
    set_phase(ctx, CheckoutPhase::Charging);
    let ids: Vec<_> = input.orders.iter().map(|o| o.payment_order_id.clone()).collect();
    let executing = ids.iter().map(|id| {
        transition(ctx, StatusChange::new(id.clone(), PaymentOrderStatus::Executing, "confirming the hosted payment"))
    });
    join_all(executing).await.into_iter().collect::<WorkflowResult<Vec<_>>>()?;
    for id in &ids {
        register_compensation(ctx, id);
    }
    let confirm = ConfirmInput {
        checkout_id: input.checkout_id.clone(),
        payment_key: request.payment_key.clone(),
        amount: total,
        first_sent_at_ms: None,
    };
    // The key came through the buyer's browser: whatever the PSP finds under it counts only if
    // it is this checkout's payment (order id = checkout id) of exactly its total.
    let lookup = LookupInput {
        payment_order_id: ids[0].clone(),
        psp_reference: Some(request.payment_key),
        expected: Some(ExpectedPayment { psp_order_id: input.checkout_id.to_string(), amount: total }),
        first_sent_at_ms: None,
        last_sent_at_ms: None,
    };
    let settled = settle_payment(ctx, &ids, PaymentRequest::Confirm(confirm), lookup, Sends::default()).await?;
    let changes: Vec<_> = ids.iter().map(|id| change_for(id, &settled)).collect();
    ctx.state_mut(|s| {
        let first = &changes[0];
        s.confirm_result = Some(ConfirmResult {
            status: first.to.as_str().to_owned(),
            code: first.failure_code.clone(),
            message: first.failure_message.clone(),
        });
    });
    let runs = changes.into_iter().map(|c| record_and_book(ctx, c));
    join_all(runs).await.into_iter().collect()
}
