//! Cancelling a checkout (update `cancel_checkout`): the saga unwinds. Orders not charged yet
//! end FAILED `checkout_cancelled`; waits for people and PSPs end early; and every order whose
//! charge was sent -- its compensation was registered *before* the PSP call -- is given back
//! once its outcome is known, even when that outcome was unknown at the time of the cancel (the
//! janitor keeps asking the PSP; a capture it finds is then reversed).

use crate::checkout::{CheckoutWorkflow, OrderResult, compensate};
use crate::messages::CancelRequest;
use payments_domain::{PaymentOrderId, PaymentOrderStatus};
use temporalio_sdk::workflows::join_all;
use temporalio_sdk::{WorkflowContext, WorkflowResult};

type Ctx = WorkflowContext<CheckoutWorkflow>;

/// Failure code of orders a cancel stopped before their charge.
pub(crate) const CANCELLED_CODE: &str = "checkout_cancelled";

/// The failure code and message for orders not charged because of a cancel, if there is one.
pub(crate) fn cancellation(ctx: &Ctx) -> Option<(String, String)> {
    ctx.state(|s| s.cancel.as_ref().map(|c| (CANCELLED_CODE.to_owned(), describe(c))))
}

fn describe(c: &CancelRequest) -> String {
    format!("checkout cancelled by {}: {}", c.operator, c.reason)
}

/// Registers the compensation of an order's charge, before the PSP is called: if the saga
/// unwinds, whatever that charge captured is given back.
pub(crate) fn register_compensation(ctx: &Ctx, id: &PaymentOrderId) {
    ctx.state_mut(|s| s.compensations.insert(id.clone()));
}

/// After every order settled: when the checkout was cancelled, run the registered
/// compensations of captured orders (each ends REVERSED); others are answered unchanged.
pub(crate) async fn unwind(ctx: &Ctx, orders: Vec<OrderResult>) -> WorkflowResult<Vec<OrderResult>> {
    let Some(reason) = ctx.state(|s| s.cancel.as_ref().map(describe)) else {
        return Ok(orders);
    };
    let runs = orders.into_iter().map(|order| {
        let reason = &reason;
        async move {
            let registered = ctx.state(|s| s.compensations.contains(&order.payment_order_id));
            if !registered || order.status != PaymentOrderStatus::Success {
                return Ok(order);
            }
            let status = compensate(ctx, &order.payment_order_id, reason).await?;
            Ok(OrderResult { status, ..order })
        }
    });
    join_all(runs).await.into_iter().collect()
}
