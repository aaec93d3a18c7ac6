//! The checkout saga: one workflow per checkout (id `checkout-{checkout_id}`).
//!
//! risk check (approve / decline / hold for an operator's review) -> direct flow: every
//! payment order charged concurrently with its own token charge; hosted flow: wait for the
//! buyer to pay on the PSP's page, then confirm that one payment for all orders -> each
//! captured order credited to its seller's wallet and posted to the ledger -> done when every
//! order is final. Every step is idempotent, so a replay after a worker crash repeats calls
//! without repeating effects.

pub(crate) use crate::booking::{compensate, record_and_book};
use crate::cancel::{cancellation, register_compensation, unwind};
use crate::charge::{PaymentRequest, Sends, change_for, settle_payment};
use crate::contract::{
    AssessRisk, ChargeInput, CompleteCheckout, ExpectedPayment, LookupInput, ReadOrders, RiskDecision, RiskInput,
    RiskOrder, StatusChange, StoredOrder, TransitionOrder,
};
use crate::dead_letter::{DeadLetterHost, DeadLetters, Step, guarded};
use crate::messages::{
    CancelRequest, CheckoutPhase, ConfirmRequest, ConfirmResult, DeadLetterAction, PAYMENT_STATUS_ATTRIBUTE,
    PspEventHint, ReviewDecision, WaitLimits,
};
use crate::persist::{persist, persist_always};
use crate::policies;
use crate::waits::{Deadline, wait_until};
use payments_domain::{BuyerId, CheckoutId, NewPaymentOrder, PaymentOrderId, PaymentOrderStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::workflows::join_all;
use temporalio_sdk::{SyncWorkflowContext, WorkflowContext, WorkflowContextView, WorkflowResult};

/// The workflow's input: everything needed to charge, nothing more (no buyer details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutInput {
    /// Checkout.
    pub checkout_id: CheckoutId,
    /// Buyer (for the risk check).
    pub buyer_id: BuyerId,
    /// Direct (the token sealed in the database) or hosted page.
    pub payment: CheckoutPayment,
    /// Orders in request order.
    pub orders: Vec<NewPaymentOrder>,
    /// How long to wait for people and PSPs.
    pub waits: WaitLimits,
    /// An earlier workflow of this checkout ended before it did (its history deleted by
    /// retention, or terminated): every order is decided from its stored status, never from
    /// "this step probably did not run yet" (see `resume.rs`).
    #[serde(default)]
    pub resume: bool,
}

/// How the checkout is paid, as its workflow sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckoutPayment {
    /// The server charges the PSP token stored (sealed) with the checkout; the charge activity
    /// opens it, so the token never enters a workflow history.
    Sealed,
    /// The buyer pays on the PSP's hosted page; the server confirms it (seed 003).
    Hosted,
    /// The token itself: only histories written before tokens were sealed carry it.
    Token(String),
}

impl CheckoutPayment {
    /// What a charge request carries as its token: empty (the activity opens the sealed one)
    /// unless an older history carries it.
    pub(crate) fn charge_token(&self) -> &str {
        match self {
            CheckoutPayment::Token(token) => token,
            CheckoutPayment::Sealed | CheckoutPayment::Hosted => "",
        }
    }
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
    pub(crate) dead_letters: DeadLetters,
    /// The cancel request, once accepted.
    pub(crate) cancel: Option<CancelRequest>,
    /// Orders whose charge was (about to be) sent: their compensation, should the saga unwind.
    pub(crate) compensations: BTreeSet<PaymentOrderId>,
}

impl DeadLetterHost for CheckoutWorkflow {
    fn dead_letters(&self) -> &DeadLetters {
        &self.dead_letters
    }
    fn dead_letters_mut(&mut self) -> &mut DeadLetters {
        &mut self.dead_letters
    }
    fn status_value(&self) -> &'static str {
        self.phase.as_str()
    }
    fn store_attempts_max(&self) -> u32 {
        self.input.waits.store_attempts_max
    }
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
            dead_letters: DeadLetters::default(),
            cancel: None,
            compensations: BTreeSet::new(),
        }
    }

    /// Runs the checkout to the end.
    #[run(name = "checkout")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<CheckoutResult> {
        let input = ctx.state(|s| s.input.clone());
        set_phase(ctx, CheckoutPhase::RiskCheck);
        let resumed = if input.resume { crate::resume::resume(ctx, &input).await? } else { None };
        let orders = match resumed {
            Some(orders) => orders,
            None => run_fresh(ctx, &input).await?,
        };
        let orders = unwind(ctx, orders).await?;
        let step = Step {
            subject: input.checkout_id.to_string(),
            step: "checkout.complete",
            checkout_id: Some(input.checkout_id.clone()),
            attempts_max: input.waits.store_attempts_max,
        };
        let completed = guarded(ctx, &step, || persist(ctx, CompleteCheckout, input.checkout_id.clone())).await?;
        // Resolved by an operator: they completed it by hand.
        let is_payment_done = completed.unwrap_or(true);
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

    /// Refuses a cancel once the checkout is done or already cancelled.
    #[update_validator(cancel_checkout)]
    fn validate_cancel(
        &self,
        _ctx: &WorkflowContextView,
        request: &CancelRequest,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if request.operator.trim().is_empty() || request.reason.trim().is_empty() {
            return Err("operator and reason are required".into());
        }
        if self.cancel.is_some() {
            return Err("checkout is already cancelled".into());
        }
        if self.phase == CheckoutPhase::Done {
            return Err("checkout is done".into());
        }
        Ok(())
    }

    /// Cancels the checkout (see `cancel.rs`); answers the phase it was in.
    #[update(name = "cancel_checkout")]
    pub fn cancel_checkout(&mut self, _ctx: &mut SyncWorkflowContext<Self>, request: CancelRequest) -> CheckoutPhase {
        let phase = self.phase;
        self.cancel = Some(request);
        phase
    }

    /// Where the checkout stands (DEAD_LETTER while a step waits for an operator).
    #[query(name = "phase")]
    pub fn phase(&self, _ctx: &WorkflowContextView) -> CheckoutPhase {
        if self.dead_letters.is_empty() { self.phase } else { CheckoutPhase::DeadLetter }
    }

    /// Refuses an action for a dead letter this checkout is not parked on.
    #[update_validator(dead_letter)]
    fn validate_dead_letter(
        &self,
        _ctx: &WorkflowContextView,
        action: &DeadLetterAction,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.dead_letters.validate(action)?)
    }

    /// An operator retries or resolves a dead letter this checkout is parked on.
    #[update(name = "dead_letter")]
    pub fn dead_letter(&mut self, _ctx: &mut SyncWorkflowContext<Self>, action: DeadLetterAction) -> String {
        let verb = format!("{:?}", action.verb);
        self.dead_letters.accept(action);
        verb
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
        if self.input.payment != CheckoutPayment::Hosted {
            return Err("not a hosted checkout".into());
        }
        if self.cancel.is_some() {
            return Err("checkout is cancelled".into());
        }
        if !ConfirmRequest::is_valid_payment_key(&request.payment_key) {
            return Err("not a payment key of the PSP".into());
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

/// A checkout whose orders are all NOT_STARTED: the risk check, then every order charged (or
/// the hosted payment awaited and confirmed).
async fn run_fresh(ctx: &WorkflowContext<CheckoutWorkflow>, input: &CheckoutInput) -> WorkflowResult<Vec<OrderResult>> {
    let refusal = match risk_gate(ctx, input).await? {
        None => cancellation(ctx),
        refused => refused,
    };
    Ok(match refusal {
        None => match &input.payment {
            CheckoutPayment::Hosted => crate::hosted::run_hosted(ctx, input).await?,
            payment => {
                let token = payment.charge_token();
                let runs = input.orders.iter().map(|order| run_order(ctx, input, token, order));
                join_all(runs).await.into_iter().collect::<WorkflowResult<Vec<_>>>()?
            }
        },
        Some((code, message)) => fail_all(ctx, input, &code, &message, "not charged").await?,
    })
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
    match assess(ctx, risk).await? {
        RiskDecision::Approve => Ok(None),
        RiskDecision::Decline { code, message } => Ok(Some((format!("risk_{code}"), message))),
        RiskDecision::Review { code, message } => {
            set_phase(ctx, CheckoutPhase::AwaitingReview);
            let deadline = Deadline::after(ctx, Duration::from_secs(input.waits.review_secs));
            if wait_until(ctx, deadline, |s| s.review.is_some() || s.cancel.is_some()).await {
                // The decision came as an update (a speculative workflow task): complete that
                // task before the local activities of the charge run.
                ctx.timer(Duration::from_millis(1)).await;
            }
            if let Some(cancelled) = cancellation(ctx) {
                return Ok(Some(cancelled));
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

/// The risk check: pure rules over configuration, run before any money moves. It is retried
/// until it answers (a failure is a bug or a configuration problem, fixed by a deploy), never
/// failing the workflow. (Histories from before that rule replay its old policy.)
async fn assess(ctx: &WorkflowContext<CheckoutWorkflow>, risk: RiskInput) -> WorkflowResult<RiskDecision> {
    match ctx.execute_local_activity(AssessRisk, risk.clone(), policies::risk()).await {
        Ok(decision) => Ok(decision),
        Err(e) if !ctx.patched(crate::versions::STORE_STEPS_RIDE_OUT_OUTAGES) => Err(e.into()),
        Err(_) => loop {
            ctx.timer(policies::store_rerun_delay(0)).await;
            if let Ok(decision) = ctx.execute_local_activity(AssessRisk, risk.clone(), policies::risk()).await {
                return Ok(decision);
            }
        },
    }
}

/// Moves an order to a new status (see `persist.rs`: a database outage is waited out). A
/// refusal no retry fixes (an invalid transition, a corrupt row) parks as a dead letter; an
/// operator who resolves it has set the status by hand, so the target status is answered.
pub(crate) async fn transition(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    change: StatusChange,
) -> WorkflowResult<PaymentOrderStatus> {
    let (checkout_id, attempts_max) = ctx.state(|s| (s.input.checkout_id.clone(), s.input.waits.store_attempts_max));
    let step = Step {
        subject: change.payment_order_id.to_string(),
        step: "order.transition",
        checkout_id: Some(checkout_id),
        attempts_max,
    };
    let to = change.to;
    let moved = guarded(ctx, &step, || persist(ctx, TransitionOrder, change.clone())).await?;
    Ok(moved.unwrap_or(to))
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

/// Direct flow, one order: mark it EXECUTING, then charge its token until the outcome is
/// known, record, book. Only an order this run moved from NOT_STARTED is charged blindly; one
/// another run got further is decided from its stored state (`resume.rs`).
async fn run_order(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    input: &CheckoutInput,
    token: &str,
    order: &NewPaymentOrder,
) -> WorkflowResult<OrderResult> {
    let id = order.payment_order_id.clone();
    if let Some((code, message)) = cancellation(ctx) {
        let mut change = StatusChange::new(id.clone(), PaymentOrderStatus::Failed, "not charged");
        change.failure_code = Some(code);
        change.failure_message = Some(message);
        return record_and_book(ctx, change).await;
    }
    set_phase(ctx, CheckoutPhase::Charging);
    let status =
        transition(ctx, StatusChange::new(id.clone(), PaymentOrderStatus::Executing, "charging at the PSP")).await?;
    if status == PaymentOrderStatus::Executing {
        return charge_order(ctx, input, token, order).await;
    }
    // Another run got this order further: never a blind charge.
    let stored = persist_always(ctx, ReadOrders, input.checkout_id.clone()).await?;
    let state = stored.into_iter().find(|o| o.payment_order_id == id).unwrap_or(StoredOrder {
        payment_order_id: id,
        status,
        psp_reference: None,
        wallet_updated: false,
        ledger_updated: false,
        executing_since_ms: None,
        failure_code: None,
    });
    crate::resume::resume_order(ctx, input, token, order, &state).await
}

/// Charges an EXECUTING order with nothing sent before: until the outcome is known, record, book.
pub(crate) async fn charge_order(
    ctx: &WorkflowContext<CheckoutWorkflow>,
    input: &CheckoutInput,
    token: &str,
    order: &NewPaymentOrder,
) -> WorkflowResult<OrderResult> {
    let id = order.payment_order_id.clone();
    register_compensation(ctx, &id);
    let request = PaymentRequest::Charge(charge_input(input, token, order));
    let lookup = order_lookup(order, None);
    let settled = settle_payment(ctx, std::slice::from_ref(&id), request, lookup, Sends::default()).await?;
    record_and_book(ctx, change_for(&id, &settled)).await
}

/// The charge request of one order (its token: see [`CheckoutPayment::charge_token`]).
pub(crate) fn charge_input(input: &CheckoutInput, token: &str, order: &NewPaymentOrder) -> ChargeInput {
    ChargeInput {
        payment_order_id: order.payment_order_id.clone(),
        checkout_id: input.checkout_id.clone(),
        buyer_id: input.buyer_id.clone(),
        payment_token: token.to_owned(),
        amount: order.amount,
        first_sent_at_ms: None,
    }
}

/// How to find one order's payment at the PSP: by our order id, or by its reference when
/// known; it must carry our order id, amount and currency.
pub(crate) fn order_lookup(order: &NewPaymentOrder, psp_reference: Option<String>) -> LookupInput {
    LookupInput {
        payment_order_id: order.payment_order_id.clone(),
        psp_reference,
        expected: Some(ExpectedPayment { psp_order_id: order.payment_order_id.to_string(), amount: order.amount }),
        first_sent_at_ms: None,
        last_sent_at_ms: None,
    }
}
