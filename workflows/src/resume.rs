//! Resuming a checkout whose earlier workflow ended before the checkout did: its history was
//! deleted (namespace retention), it was terminated, or it failed. The gateway starts such a
//! workflow with `resume` set (and none at all when every order is final and booked). Nothing
//! here assumes a step did not run yet: each order is decided from its stored status.
//!
//! - NOT_STARTED: no charge was ever sent: charged as usual.
//! - EXECUTING, UNKNOWN: a charge may have been sent, perhaps long ago (the PSP may have
//!   forgotten its idempotency key, so a resend could charge twice): the PSP is asked first
//!   (`charge::settle_asking_first`); a resend happens only when the PSP has no such payment or
//!   still holds the key.
//! - SUCCESS: booked where it is not yet (ledger, wallet).
//! - FAILED, REVERSED: final; nothing to do.
//!
//! Every order NOT_STARTED is a fresh checkout (its start was lost): the normal path runs,
//! risk check included.

use crate::booking::{Booked, book, record_and_book};
use crate::cancel::register_compensation;
use crate::charge::{PaymentRequest, Sends, change_for, now_ms, settle_asking_first};
use crate::checkout::{
    CheckoutInput, CheckoutPayment, CheckoutWorkflow, OrderResult, charge_input, charge_order, order_lookup, set_phase,
    transition,
};
use crate::contract::{ExpectedPayment, LookupInput, ReadOrders, StatusChange, StoredOrder};
use crate::messages::CheckoutPhase;
use crate::persist::persist_always;
use payments_domain::{NewPaymentOrder, PaymentOrderStatus as S};
use temporalio_sdk::workflows::join_all;
use temporalio_sdk::{WorkflowContext, WorkflowResult};

type Ctx = WorkflowContext<CheckoutWorkflow>;

/// Decides every order from its stored state; `None` when every order is NOT_STARTED (the
/// caller then runs the checkout as new).
pub(crate) async fn resume(ctx: &Ctx, input: &CheckoutInput) -> WorkflowResult<Option<Vec<OrderResult>>> {
    let stored = persist_always(ctx, ReadOrders, input.checkout_id.clone()).await?;
    if stored.iter().all(|o| o.status == S::NotStarted) {
        return Ok(None);
    }
    set_phase(ctx, CheckoutPhase::Charging);
    if input.payment == CheckoutPayment::Hosted {
        return Ok(Some(resume_hosted(ctx, input, &stored).await?));
    }
    let token = input.payment.charge_token();
    let runs = input.orders.iter().filter_map(|order| {
        let state = stored.iter().find(|s| s.payment_order_id == order.payment_order_id)?;
        Some(resume_order(ctx, input, token, order, state))
    });
    Ok(Some(join_all(runs).await.into_iter().collect::<WorkflowResult<Vec<_>>>()?))
}

/// One order of a direct checkout, from its stored state.
pub(crate) async fn resume_order(
    ctx: &Ctx,
    input: &CheckoutInput,
    token: &str,
    order: &NewPaymentOrder,
    stored: &StoredOrder,
) -> WorkflowResult<OrderResult> {
    let id = order.payment_order_id.clone();
    match stored.status {
        S::NotStarted => {
            transition(ctx, StatusChange::new(id.clone(), S::Executing, "charging at the PSP")).await?;
            charge_order(ctx, input, token, order).await
        }
        S::Executing | S::Unknown => {
            register_compensation(ctx, &id);
            let request = PaymentRequest::Charge(charge_input(input, token, order));
            let lookup = order_lookup(order, stored.psp_reference.clone());
            let sends = earlier_sends(ctx, std::slice::from_ref(stored));
            let settled = settle_asking_first(ctx, std::slice::from_ref(&id), Some(request), lookup, sends).await?;
            record_and_book(ctx, change_for(&id, &settled)).await
        }
        S::Success => booked_as_stored(ctx, stored).await,
        S::Failed | S::Reversed => {
            Ok(OrderResult { payment_order_id: id, status: stored.status, failure_code: stored.failure_code.clone() })
        }
    }
}

/// A hosted checkout: its one payment (the PSP's order id is the checkout id) is looked up,
/// never confirmed again: the buyer who came back with its key is long gone. No such payment
/// means nothing was paid.
async fn resume_hosted(ctx: &Ctx, input: &CheckoutInput, stored: &[StoredOrder]) -> WorkflowResult<Vec<OrderResult>> {
    let open: Vec<&StoredOrder> =
        stored.iter().filter(|o| matches!(o.status, S::NotStarted | S::Executing | S::Unknown)).collect();
    let mut changes = Vec::new();
    if !open.is_empty() {
        for o in &open {
            if o.status == S::NotStarted {
                let moved = StatusChange::new(o.payment_order_id.clone(), S::Executing, "resuming the hosted payment");
                transition(ctx, moved).await?;
            }
            register_compensation(ctx, &o.payment_order_id);
        }
        let ids: Vec<_> = open.iter().map(|o| o.payment_order_id.clone()).collect();
        let total = payments_domain::checkout::total_of(input.orders.iter().map(|o| o.amount));
        let lookup = LookupInput {
            payment_order_id: ids[0].clone(),
            psp_reference: stored.iter().find_map(|o| o.psp_reference.clone()),
            expected: total.map(|amount| ExpectedPayment { psp_order_id: input.checkout_id.to_string(), amount }),
            first_sent_at_ms: None,
            last_sent_at_ms: None,
        };
        let sends = earlier_sends(ctx, stored);
        let settled = settle_asking_first(ctx, &ids, None, lookup, sends).await?;
        changes = ids.iter().map(|id| change_for(id, &settled)).collect();
    }
    let runs = stored.iter().map(|o| {
        let change = changes.iter().find(|c| c.payment_order_id == o.payment_order_id).cloned();
        async move {
            match change {
                Some(change) => record_and_book(ctx, change).await,
                None if o.status == S::Success => booked_as_stored(ctx, o).await,
                None => Ok(OrderResult {
                    payment_order_id: o.payment_order_id.clone(),
                    status: o.status,
                    failure_code: o.failure_code.clone(),
                }),
            }
        }
    });
    join_all(runs).await.into_iter().collect()
}

/// A captured order, booked where it is not yet.
async fn booked_as_stored(ctx: &Ctx, stored: &StoredOrder) -> WorkflowResult<OrderResult> {
    let booked = Booked { ledger: stored.ledger_updated, wallet: stored.wallet_updated };
    let status = book(ctx, &stored.payment_order_id, booked).await?;
    Ok(OrderResult { payment_order_id: stored.payment_order_id.clone(), status, failure_code: None })
}

/// What is known of an earlier run's requests: none before the first EXECUTING (stored), and
/// none after now (that run is over).
fn earlier_sends(ctx: &Ctx, orders: &[StoredOrder]) -> Sends {
    Sends { first: orders.iter().filter_map(|o| o.executing_since_ms).min(), last: now_ms(ctx) }
}
