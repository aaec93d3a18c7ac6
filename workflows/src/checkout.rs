//! The checkout saga: one workflow per checkout (id `checkout-{checkout_id}`).
//!
//! risk check -> for every payment order, concurrently: EXECUTING -> charge at the PSP (the
//! order id is the idempotency key) -> SUCCESS or FAILED -> credit the seller's wallet -> post
//! the ledger -> the checkout is done when every order is final. Every step is idempotent, so a
//! replay after a worker crash repeats calls without repeating effects.

use crate::contract::{
    AssessRisk, ChargeInput, CompleteCheckout, CreditWallet, PostLedger, RiskDecision, RiskInput,
    RiskOrder, StatusChange, TransitionOrder,
};
use crate::policies;
use payments_domain::{BuyerId, CheckoutId, NewPaymentOrder, PaymentOrderId, PaymentOrderStatus};
use serde::{Deserialize, Serialize};
use temporalio_common::error::IncomingError;
use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::workflows::join_all;
use temporalio_sdk::{ActivityExecutionError, WorkflowContext, WorkflowResult};

/// The workflow's input: everything needed to charge, nothing more (no buyer details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutInput {
    /// Checkout.
    pub checkout_id: CheckoutId,
    /// Buyer (for the risk check).
    pub buyer_id: BuyerId,
    /// PSP payment-method token.
    pub payment_token: String,
    /// Orders in request order.
    pub orders: Vec<NewPaymentOrder>,
}

/// How one order ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderResult {
    /// Order.
    pub payment_order_id: PaymentOrderId,
    /// Final (or UNKNOWN) status.
    pub status: PaymentOrderStatus,
    /// Failure code when not SUCCESS.
    pub failure_code: Option<String>,
}

/// The workflow's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutResult {
    /// Checkout.
    pub checkout_id: CheckoutId,
    /// Every order is final and booked.
    pub is_payment_done: bool,
    /// Per order.
    pub orders: Vec<OrderResult>,
}

/// The checkout saga.
#[workflow]
#[derive(Default)]
pub struct CheckoutWorkflow;

#[workflow_methods]
impl CheckoutWorkflow {
    /// Runs the checkout to the end.
    #[run(name = "checkout")]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: CheckoutInput,
    ) -> WorkflowResult<CheckoutResult> {
        let risk = RiskInput {
            checkout_id: input.checkout_id.clone(),
            buyer_id: input.buyer_id.clone(),
            orders: input
                .orders
                .iter()
                .map(|o| RiskOrder {
                    payment_order_id: o.payment_order_id.clone(),
                    seller_account: o.seller_account.clone(),
                    amount: o.amount,
                })
                .collect(),
        };
        let decision = ctx
            .execute_local_activity(AssessRisk, risk, policies::risk())
            .await?;
        let orders = match decision {
            RiskDecision::Approve => {
                let runs = input
                    .orders
                    .iter()
                    .map(|order| run_order(ctx, &input, order));
                join_all(runs)
                    .await
                    .into_iter()
                    .collect::<WorkflowResult<Vec<_>>>()?
            }
            RiskDecision::Decline { code, message } => {
                let runs = input
                    .orders
                    .iter()
                    .map(|order| decline_order(ctx, order, &code, &message));
                join_all(runs)
                    .await
                    .into_iter()
                    .collect::<WorkflowResult<Vec<_>>>()?
            }
        };
        let is_payment_done = ctx
            .execute_local_activity(
                CompleteCheckout,
                input.checkout_id.clone(),
                policies::store_step(),
            )
            .await?;
        Ok(CheckoutResult {
            checkout_id: input.checkout_id,
            is_payment_done,
            orders,
        })
    }
}

pub(crate) async fn transition(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    change: StatusChange,
) -> WorkflowResult<PaymentOrderStatus> {
    Ok(ctx
        .execute_local_activity(TransitionOrder, change, policies::store_step())
        .await?)
}

/// The risk check refused the checkout: the order fails before any money moves.
async fn decline_order(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    order: &NewPaymentOrder,
    code: &str,
    message: &str,
) -> WorkflowResult<OrderResult> {
    let mut change = StatusChange::new(
        order.payment_order_id.clone(),
        PaymentOrderStatus::Failed,
        "risk check declined",
    );
    change.failure_code = Some(format!("risk_{code}"));
    change.failure_message = Some(message.to_owned());
    let status = transition(ctx, change.clone()).await?;
    Ok(OrderResult {
        payment_order_id: order.payment_order_id.clone(),
        status,
        failure_code: change.failure_code,
    })
}

/// One order: charge until the outcome is known, record it, then book (wallet, ledger) when
/// captured.
async fn run_order(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    input: &CheckoutInput,
    order: &NewPaymentOrder,
) -> WorkflowResult<OrderResult> {
    let id = order.payment_order_id.clone();
    transition(
        ctx,
        StatusChange::new(
            id.clone(),
            PaymentOrderStatus::Executing,
            "charging at the PSP",
        ),
    )
    .await?;
    let charge = ChargeInput {
        payment_order_id: id.clone(),
        checkout_id: input.checkout_id.clone(),
        buyer_id: input.buyer_id.clone(),
        payment_token: input.payment_token.clone(),
        amount: order.amount,
    };
    let change = crate::charge::charge_order(ctx, &charge).await?;
    let failure_code = change.failure_code.clone();
    let status = transition(ctx, change).await?;
    if status == PaymentOrderStatus::Success {
        ctx.execute_local_activity(CreditWallet, id.clone(), policies::store_step())
            .await?;
        ctx.execute_local_activity(PostLedger, id.clone(), policies::store_step())
            .await?;
    }
    Ok(OrderResult {
        payment_order_id: id,
        status,
        failure_code,
    })
}

/// The application failure type and message behind an activity error. A regular activity's
/// failure wraps the application failure as its cause; a local activity's failure *is* the
/// application failure (the SDK does not wrap it), so both shapes are read.
pub(crate) fn failure_details(err: &ActivityExecutionError) -> (Option<String>, String) {
    let ActivityExecutionError::Failed(f) = err else {
        return (None, err.to_string());
    };
    if let Some(cause) = f.cause() {
        let type_name = match cause {
            IncomingError::Application(app) => app.type_name().map(str::to_owned),
            IncomingError::Timeout(_) => Some("Timeout".to_owned()),
            _ => None,
        };
        return (type_name, cause.failure().message.clone());
    }
    let failure = f.failure();
    let type_name = match &failure.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(info)) if !info.r#type.is_empty() => {
            Some(info.r#type.clone())
        }
        Some(FailureInfo::TimeoutFailureInfo(_)) => Some("Timeout".to_owned()),
        _ => None,
    };
    (type_name, failure.message.clone())
}
