//! The checkout saga: one workflow per checkout (id `checkout-{checkout_id}`).
//!
//! risk check (approve / decline / hold for an operator's review) -> direct flow: every
//! payment order charged concurrently with its own token charge; hosted flow: wait for the
//! buyer to pay on the PSP's page, then confirm that one payment for all orders -> each
//! captured order credited to its seller's wallet and posted to the ledger -> done when every
//! order is final. Every step is idempotent, so a replay after a worker crash repeats calls
//! without repeating effects.

use crate::charge::{PaymentRequest, change_for, settle_payment};
use crate::contract::{
    AssessRisk, ChargeInput, CompleteCheckout, CreditWallet, LookupInput, PostLedger, RiskDecision, RiskInput,
    RiskOrder, StatusChange, TransitionOrder,
};
use crate::messages::{
    CheckoutPhase, ConfirmRequest, ConfirmResult, PAYMENT_STATUS_ATTRIBUTE, PspEventHint, ReviewDecision, WaitLimits,
};
use crate::policies;
use crate::waits::{Deadline, wait_until};
use payments_domain::{BuyerId, CheckoutId, NewPaymentOrder, PaymentMethod, PaymentOrderId, PaymentOrderStatus};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use temporalio_common::error::IncomingError;
use temporalio_common::protos::temporal::api::failure::v1::failure::FailureInfo;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::workflows::join_all;
use temporalio_sdk::{
    ActivityExecutionError, SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult,
};

/// The workflow's input: everything needed to charge, nothing more (no buyer details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutInput {
    /// Checkout.
    pub checkout_id: CheckoutId,
    /// Buyer (for the risk check).
    pub buyer_id: BuyerId,
    /// Token (direct) or hosted page.
    pub payment: PaymentMethod,
    /// Orders in request order.
    pub orders: Vec<NewPaymentOrder>,
    /// How long to wait for people and PSPs.
    pub waits: WaitLimits,
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

/// The checkout saga and its state (changed by signals and updates).
#[workflow]
pub struct CheckoutWorkflow {
    pub(crate) input: CheckoutInput,
    pub(crate) phase: CheckoutPhase,
    /// PSP webhooks received so far (hints).
    pub(crate) psp_hints: u64,
    pub(crate) review: Option<ReviewDecision>,
    pub(crate) confirmation: Option<ConfirmRequest>,
    pub(crate) confirm_result: Option<ConfirmResult>,
}

#[workflow_methods]
impl CheckoutWorkflow {
    /// State from the input.
    #[init]
    pub fn new(_ctx: &WorkflowContextView, input: CheckoutInput) -> Self {
        CheckoutWorkflow {
            input,
            phase: CheckoutPhase::RiskCheck,
            psp_hints: 0,
            review: None,
            confirmation: None,
            confirm_result: None,
        }
    }

    /// Runs the checkout to the end.
    #[run(name = "checkout")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<CheckoutResult> {
        let input = ctx.state(|s| s.input.clone());
        set_phase(ctx, CheckoutPhase::RiskCheck);
        let orders = match risk_gate(ctx, &input).await? {
            None => match &input.payment {
                PaymentMethod::Token(token) => {
                    let runs = input.orders.iter().map(|order| run_order(ctx, &input, token, order));
                    join_all(runs).await.into_iter().collect::<WorkflowResult<Vec<_>>>()?
                }
                PaymentMethod::Hosted => crate::hosted::run_hosted(ctx, &input).await?,
            },
            Some((code, message)) => fail_all(ctx, &input, &code, &message, "risk check refused").await?,
        };
        let is_payment_done =
            ctx.execute_local_activity(CompleteCheckout, input.checkout_id.clone(), policies::store_step()).await?;
        let settled = orders.iter().all(|o| o.status.is_terminal());
        set_phase(ctx, if settled { CheckoutPhase::Done } else { CheckoutPhase::Unknown });
        ctx.state_mut(|s| {
            if s.confirmation.is_some() && s.confirm_result.is_none() {
                s.confirm_result = Some(summary(&orders));
            }
        });
        // Let a confirm_payment update answer its caller before the workflow completes; a
        // completion with an unfinished update handler fails that update.
        let handlers = ctx.clone();
        ctx.wait_condition(move |_| handlers.all_handlers_finished()).await?;
        Ok(CheckoutResult { checkout_id: input.checkout_id, is_payment_done, orders })
    }

    /// A PSP webhook arrived for this checkout (a hint: the PSP is asked before anything).
    #[signal(name = "psp_event")]
    pub fn psp_event(&mut self, _ctx: &mut SyncWorkflowContext<Self>, _hint: PspEventHint) {
        self.psp_hints += 1;
    }

    /// Refuses a review decision unless the checkout is waiting for one (and none came yet):
    /// a late, repeated or misdirected decision is answered as refused, never silently dropped.
    #[update_validator(review_decision)]
    fn validate_review(
        &self,
        _ctx: &WorkflowContextView,
        _decision: &ReviewDecision,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.phase != CheckoutPhase::AwaitingReview || self.review.is_some() {
            return Err(format!("checkout is not awaiting review (it is {})", self.phase.as_str()).into());
        }
        Ok(())
    }

    /// An operator's decision on a checkout held for review; answers the phase it found.
    #[update(name = "review_decision")]
    pub fn review_decision(&mut self, _ctx: &mut SyncWorkflowContext<Self>, decision: ReviewDecision) -> CheckoutPhase {
        let phase = self.phase;
        self.review = Some(decision);
        phase
    }

    /// Where the checkout stands.
    #[query(name = "phase")]
    pub fn phase(&self, _ctx: &WorkflowContextView) -> CheckoutPhase {
        self.phase
    }

    /// Refuses confirmations that must not reach the PSP: not a hosted checkout, an amount
    /// that is not the checkout's total, another payment already confirming it, or a checkout
    /// that no longer awaits payment (expired, refused, done).
    #[update_validator(confirm_payment)]
    fn validate_confirm(
        &self,
        _ctx: &WorkflowContextView,
        request: &ConfirmRequest,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.input.payment != PaymentMethod::Hosted {
            return Err("not a hosted checkout".into());
        }
        let total = payments_domain::checkout::total_of(self.input.orders.iter().map(|o| o.amount));
        if total.map(|t| t.amount_minor()) != Some(request.amount_minor) {
            return Err("amount does not match the checkout's total".into());
        }
        match &self.confirmation {
            Some(c) if c.payment_key != request.payment_key => {
                Err("another payment already confirms this checkout".into())
            }
            Some(_) => Ok(()),
            None if matches!(
                self.phase,
                CheckoutPhase::RiskCheck | CheckoutPhase::AwaitingReview | CheckoutPhase::AwaitingPayment
            ) =>
            {
                Ok(())
            }
            None => Err(format!("checkout no longer awaits payment ({})", self.phase.as_str()).into()),
        }
    }

    /// The buyer came back from the hosted page: confirm at the PSP and answer the outcome.
    #[update(name = "confirm_payment")]
    pub async fn confirm_payment(ctx: &mut WorkflowContext<Self>, request: ConfirmRequest) -> ConfirmResult {
        ctx.state_mut(|s| {
            if s.confirmation.is_none() {
                s.confirmation = Some(request);
            }
        });
        match ctx.wait_condition(|s| s.confirm_result.is_some()).await {
            Ok(()) => ctx.state(|s| s.confirm_result.clone()).unwrap_or_else(|| unknown_result("no result")),
            Err(_) => unknown_result("checkout cancelled"),
        }
    }
}

fn unknown_result(message: &str) -> ConfirmResult {
    ConfirmResult { status: "UNKNOWN".into(), code: None, message: Some(message.into()) }
}

fn summary(orders: &[OrderResult]) -> ConfirmResult {
    let first = orders.first();
    ConfirmResult {
        status: first.map_or("UNKNOWN", |o| o.status.as_str()).to_owned(),
        code: first.and_then(|o| o.failure_code.clone()),
        message: None,
    }
}

/// Moves to `phase` and mirrors it into the `PaymentStatus` search attribute.
pub(crate) fn set_phase(ctx: &WorkflowContext<CheckoutWorkflow>, phase: CheckoutPhase) {
    if ctx.state(|s| s.phase) != phase || phase == CheckoutPhase::RiskCheck {
        ctx.state_mut(|s| s.phase = phase);
        ctx.upsert_search_attributes([PAYMENT_STATUS_ATTRIBUTE.value_set(phase.as_str().to_owned())]);
    }
}

/// Runs the risk rules; holds for review when they say so. `None` to go ahead, else the
/// refusal's code and message.
async fn risk_gate(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    input: &CheckoutInput,
) -> WorkflowResult<Option<(String, String)>> {
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
    match ctx.execute_local_activity(AssessRisk, risk, policies::risk()).await? {
        RiskDecision::Approve => Ok(None),
        RiskDecision::Decline { code, message } => Ok(Some((format!("risk_{code}"), message))),
        RiskDecision::Review { code, message } => {
            set_phase(ctx, CheckoutPhase::AwaitingReview);
            let deadline = Deadline::after(ctx, Duration::from_secs(input.waits.review_secs));
            if wait_until(ctx, deadline, |s| s.review.is_some()).await {
                // The decision came as an update (a speculative workflow task): complete that
                // task before the local activities of the charge run.
                ctx.timer(Duration::from_millis(1)).await;
            }
            Ok(match ctx.state(|s| s.review.clone()) {
                Some(d) if d.approve => None,
                Some(d) => Some((
                    "risk_review_rejected".into(),
                    format!("{message} ({code}); rejected by {}: {}", d.operator, d.reason),
                )),
                None => Some(("risk_review_expired".into(), format!("{message} ({code}); no decision in time"))),
            })
        }
    }
}

pub(crate) async fn transition(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    change: StatusChange,
) -> WorkflowResult<PaymentOrderStatus> {
    Ok(ctx.execute_local_activity(TransitionOrder, change, policies::store_step()).await?)
}

/// Fails every order with one code before any money moved (risk refusal, expiry).
pub(crate) async fn fail_all(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    input: &CheckoutInput,
    code: &str,
    message: &str,
    reason: &str,
) -> WorkflowResult<Vec<OrderResult>> {
    let runs = input.orders.iter().map(|order| async move {
        let mut change = StatusChange::new(order.payment_order_id.clone(), PaymentOrderStatus::Failed, reason);
        change.failure_code = Some(code.to_owned());
        change.failure_message = Some(message.to_owned());
        let status = transition(ctx, change).await?;
        Ok(OrderResult {
            payment_order_id: order.payment_order_id.clone(),
            status,
            failure_code: Some(code.to_owned()),
        })
    });
    join_all(runs).await.into_iter().collect()
}

/// Records a settled change on an order and books it (wallet, ledger) when captured.
pub(crate) async fn record_and_book(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    change: StatusChange,
) -> WorkflowResult<OrderResult> {
    let id = change.payment_order_id.clone();
    let failure_code = change.failure_code.clone();
    let status = transition(ctx, change).await?;
    if status == PaymentOrderStatus::Success {
        ctx.execute_local_activity(CreditWallet, id.clone(), policies::store_step()).await?;
        ctx.execute_local_activity(PostLedger, id.clone(), policies::store_step()).await?;
    }
    Ok(OrderResult { payment_order_id: id, status, failure_code })
}

/// Direct flow, one order: charge its token until the outcome is known, record, book.
async fn run_order(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    input: &CheckoutInput,
    token: &str,
    order: &NewPaymentOrder,
) -> WorkflowResult<OrderResult> {
    let id = order.payment_order_id.clone();
    set_phase(ctx, CheckoutPhase::Charging);
    transition(ctx, StatusChange::new(id.clone(), PaymentOrderStatus::Executing, "charging at the PSP")).await?;
    let charge = ChargeInput {
        payment_order_id: id.clone(),
        checkout_id: input.checkout_id.clone(),
        buyer_id: input.buyer_id.clone(),
        payment_token: token.to_owned(),
        amount: order.amount,
    };
    let lookup = LookupInput { payment_order_id: id.clone(), psp_reference: None };
    let settled = settle_payment(ctx, std::slice::from_ref(&id), PaymentRequest::Charge(charge), lookup).await?;
    record_and_book(ctx, change_for(&id, &settled)).await
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
        Some(FailureInfo::ApplicationFailureInfo(info)) if !info.r#type.is_empty() => Some(info.r#type.clone()),
        Some(FailureInfo::TimeoutFailureInfo(_)) => Some("Timeout".to_owned()),
        _ => None,
    };
    (type_name, failure.message.clone())
}
