//! What both APIs do: store a checkout, start its workflow, read state back, and pass
//! messages to running checkouts (hosted-payment confirmations, review decisions, operators'
//! cancellations, PSP events). The gateway never moves money itself; the workflow does.

use crate::error::{ApiError, refuse_card_number};
use crate::refunds::REFUND_REASON_CHARS_MAX;
use payments_domain::{CheckoutId, NewCheckout, NewPaymentOrder, PaymentOrderId};
use payments_store::{CheckoutRecord, CreateOutcome, DEAD_LETTER_OPERATOR_LEN_MAX, OrderRecord, PaymentFlow, Store};
use payments_workflows::messages::{
    CHECKOUT_ID_ATTRIBUTE, CancelRequest, CheckoutPhase, ConfirmRequest, ConfirmResult, PAYMENT_STATUS_ATTRIBUTE,
    PspEventHint, ReviewDecision, WaitLimits,
};
use payments_workflows::{CheckoutInput, CheckoutPayment, CheckoutWorkflow};
use temporalio_client::errors::{WorkflowInteractionError, WorkflowStartError, WorkflowUpdateError};
use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowIdReusePolicy, WorkflowQueryOptions, WorkflowSignalOptions,
    WorkflowStartOptions,
};
use temporalio_common::search_attributes::SearchAttributes;

/// Bound on asking a workflow its phase (webhook bridge): a live worker answers in
/// milliseconds.
pub const PHASE_QUERY_TIMEOUT_MS: u64 = 2_000;
/// Bound on delivering an operator's cancellation: a workflow answers its update only while a
/// worker runs; without one the call would hang until Temporal's own deadline.
pub const CANCEL_UPDATE_TIMEOUT_MS: u64 = 10_000;
/// Longest operator name on a cancellation, in bytes (the store's limit for operators).
pub const CANCEL_OPERATOR_LEN_MAX: usize = DEAD_LETTER_OPERATOR_LEN_MAX;
/// Longest cancellation reason, in characters: it becomes the reason of the refunds that give
/// back what was captured, so it is held to theirs.
pub const CANCEL_REASON_CHARS_MAX: usize = REFUND_REASON_CHARS_MAX;

/// Shared state of the gateway's handlers.
#[derive(Clone)]
pub struct PaymentsService {
    store: Store,
    temporal: Client,
    task_queue: String,
    waits: WaitLimits,
    payouts: Option<crate::payouts::PayoutDesk>,
    /// Settlement imports running at once (`recon.rs`).
    recon_imports: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Whether a create call stored something new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// New checkout (or the same request again under the Idempotency-Key that created it).
    New,
    /// The same checkout again: nothing new stored or charged.
    Existing,
}

/// Why a hosted confirmation was not handed to the workflow, or what it came to.
#[derive(Debug)]
pub enum ConfirmOutcome {
    /// The workflow confirmed (or tried to) and answered.
    Answered(ConfirmResult),
    /// Refused before any PSP call (amount mismatch, not awaiting payment...).
    Refused(String),
    /// The checkout had already finished; its stored state is the answer.
    Finished(CheckoutRecord),
}

impl PaymentsService {
    /// A service over this store and Temporal client.
    pub fn new(store: Store, temporal: Client, task_queue: String, waits: WaitLimits) -> Self {
        PaymentsService {
            store,
            temporal,
            task_queue,
            waits,
            payouts: None,
            recon_imports: crate::recon::import_slots(),
        }
    }

    /// The same service with the pay-out calls.
    pub fn with_payouts(mut self, desk: crate::payouts::PayoutDesk) -> Self {
        self.payouts = Some(desk);
        self
    }

    /// The pay-out calls.
    pub fn payouts(&self) -> Result<&crate::payouts::PayoutDesk, ApiError> {
        self.payouts.as_ref().ok_or_else(|| ApiError::Unavailable("pay-out is not configured on this gateway".into()))
    }

    /// The slots of settlement imports running at once.
    pub(crate) fn recon_imports(&self) -> &std::sync::Arc<tokio::sync::Semaphore> {
        &self.recon_imports
    }

    /// The store (for the webhook bridge).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The Temporal client (refunds and dead letters start and update workflows).
    pub(crate) fn temporal(&self) -> &Client {
        &self.temporal
    }

    /// The task queue every workflow the gateway starts runs on.
    pub(crate) fn task_queue(&self) -> &str {
        &self.task_queue
    }

    /// The limits given to every new workflow.
    pub(crate) fn waits(&self) -> WaitLimits {
        self.waits
    }

    /// Stores the checkout (one transaction, bound to the request's Idempotency-Key
    /// `client_key` if any) and then starts its workflow. The answer does not depend on the
    /// start: once stored, the checkout is started, by this call or, if the start is lost
    /// (Temporal unreachable, the gateway dies), by the start sweep (`start_sweep.rs`). A
    /// checkout that exists already is answered as `Existing` -- or `New` when it was created
    /// under this very key, so a retry gets the first answer -- and its workflow is started if it
    /// needs one (see [`PaymentsService::ensure_started`]).
    pub async fn create(
        &self,
        checkout: NewCheckout,
        client_key: Option<&str>,
    ) -> Result<(Created, CheckoutRecord), ApiError> {
        let outcome = self.store.create_checkout(&checkout, client_key).await?;
        let created = match &outcome {
            CreateOutcome::Created(_) => Created::New,
            CreateOutcome::Existing(r) if client_key.is_some() && r.client_key.as_deref() == client_key => Created::New,
            CreateOutcome::Existing(_) => Created::Existing,
        };
        let id = checkout.checkout_id.clone();
        if let Err(e) = self.ensure_started(outcome.record()).await {
            tracing::warn!(checkout_id = %id, error = format!("{e:#}"), "checkout stored; its workflow start failed (the start sweep repeats it)");
        }
        // Read back after the start: the answer shows the freshest state we have.
        let record = self.checkout(&id).await?;
        Ok((created, record))
    }

    /// Makes sure a stored checkout has the workflow it needs, deciding from its stored state:
    /// none when every order is final and booked (a finished checkout is never charged again,
    /// even after Temporal deleted its history); a fresh run when every order is NOT_STARTED;
    /// else a resuming run (`resume`), which asks the PSP before it sends anything. Workflow id
    /// `checkout-{checkout_id}`: while a run exists, "already started" is the answer; a run that
    /// failed or was terminated may be followed by a resuming one, a completed run never.
    /// Records the start, so the start sweep leaves the checkout alone.
    pub async fn ensure_started(&self, record: &CheckoutRecord) -> anyhow::Result<()> {
        let id = &record.checkout_id;
        if record.is_settled() {
            if !record.workflow_started {
                self.store.mark_checkout_started(id).await?;
            }
            return Ok(());
        }
        let input = CheckoutInput {
            checkout_id: id.clone(),
            buyer_id: record.buyer_id.clone(),
            payment: match record.flow {
                PaymentFlow::Direct => CheckoutPayment::Sealed,
                PaymentFlow::Hosted => CheckoutPayment::Hosted,
            },
            orders: record
                .orders
                .iter()
                .map(|o| NewPaymentOrder {
                    payment_order_id: o.payment_order_id.clone(),
                    seller_account: o.seller_account.clone(),
                    amount: o.amount,
                })
                .collect(),
            waits: self.waits,
            resume: !record.is_untouched(),
        };
        // Operators find checkouts in the Temporal UI by these.
        let attributes = SearchAttributes::new([
            CHECKOUT_ID_ATTRIBUTE.value_set(id.to_string()),
            PAYMENT_STATUS_ATTRIBUTE.value_set(CheckoutPhase::RiskCheck.as_str().to_owned()),
        ]);
        let options = WorkflowStartOptions::new(self.task_queue.clone(), id.workflow_id())
            .id_reuse_policy(WorkflowIdReusePolicy::AllowDuplicateFailedOnly)
            .search_attributes(attributes)
            .build();
        match self.temporal.start_workflow(CheckoutWorkflow::run, input, options).await {
            Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => {}
            Err(e) => anyhow::bail!("starting the workflow of checkout {id}: {e}"),
        }
        self.store.mark_checkout_started(id).await?;
        Ok(())
    }

    /// One payment order.
    pub async fn order(&self, id: &PaymentOrderId) -> Result<OrderRecord, ApiError> {
        self.store.order(id).await?.ok_or_else(|| ApiError::NotFound(format!("payment order {id}")))
    }

    /// One checkout with its orders.
    pub async fn checkout(&self, id: &CheckoutId) -> Result<CheckoutRecord, ApiError> {
        self.store.checkout(id).await?.ok_or_else(|| ApiError::NotFound(format!("checkout {id}")))
    }

    /// Hands a hosted payment's confirmation to the checkout's workflow and waits for its
    /// answer. The workflow validates again (amount, state) before calling the PSP.
    pub async fn confirm_hosted(&self, id: &CheckoutId, request: ConfirmRequest) -> Result<ConfirmOutcome, ApiError> {
        let handle = self.temporal.get_workflow_handle::<CheckoutWorkflow>(id.workflow_id());
        match handle
            .execute_update(CheckoutWorkflow::confirm_payment, request, WorkflowExecuteUpdateOptions::default())
            .await
        {
            Ok(result) => Ok(ConfirmOutcome::Answered(result)),
            Err(e) if is_finished(&e) => Ok(ConfirmOutcome::Finished(self.checkout(id).await?)),
            Err(WorkflowUpdateError::Failed(f)) => Ok(ConfirmOutcome::Refused(f.message.clone())),
            Err(e) => Err(ApiError::Internal(anyhow::anyhow!("confirming checkout {id}: {e}"))),
        }
    }

    /// Delivers an operator's review decision; answers the phase the checkout was in. The
    /// workflow's validator refuses it unless the checkout is awaiting review.
    pub async fn decide_review(&self, id: &CheckoutId, decision: ReviewDecision) -> Result<CheckoutPhase, ApiError> {
        let record = self.checkout(id).await?;
        let not_awaiting = |detail: String| {
            ApiError::invalid(
                "not_awaiting_review",
                "checkout_id",
                format!("checkout {id} is not awaiting review ({detail})"),
            )
        };
        if record.is_payment_done {
            return Err(not_awaiting("it is done".into()));
        }
        let handle = self.temporal.get_workflow_handle::<CheckoutWorkflow>(id.workflow_id());
        match handle
            .execute_update(CheckoutWorkflow::review_decision, decision, WorkflowExecuteUpdateOptions::default())
            .await
        {
            Ok(phase) => Ok(phase),
            Err(WorkflowUpdateError::Failed(f)) => Err(not_awaiting(f.message.clone())),
            Err(e) if is_finished(&e) => Err(not_awaiting("it has finished".into())),
            Err(e) => Err(ApiError::Internal(anyhow::anyhow!("deciding review of checkout {id}: {e}"))),
        }
    }

    /// Delivers an operator's cancellation (operator and reason trimmed, see
    /// [`check_cancel`]); answers the phase the checkout was in. The workflow's validator
    /// refuses it once the checkout is done or already cancelled; that, like a done or finished
    /// checkout, answers `not_cancellable`. Waits at most [`CANCEL_UPDATE_TIMEOUT_MS`] for the
    /// workflow (Unavailable after that).
    pub async fn cancel_checkout(&self, id: &CheckoutId, request: CancelRequest) -> Result<CheckoutPhase, ApiError> {
        let request = check_cancel(request)?;
        let record = self.checkout(id).await?;
        let not_cancellable = |detail: String| {
            ApiError::invalid("not_cancellable", "checkout_id", format!("checkout {id} cannot be cancelled ({detail})"))
        };
        if record.is_payment_done {
            return Err(not_cancellable("it is done".into()));
        }
        let handle = self.temporal.get_workflow_handle::<CheckoutWorkflow>(id.workflow_id());
        let update =
            handle.execute_update(CheckoutWorkflow::cancel_checkout, request, WorkflowExecuteUpdateOptions::default());
        let answer = tokio::time::timeout(std::time::Duration::from_millis(CANCEL_UPDATE_TIMEOUT_MS), update)
            .await
            .map_err(|_| {
                ApiError::Unavailable(format!(
                    "the workflow of checkout {id} did not take the cancellation within {CANCEL_UPDATE_TIMEOUT_MS} ms \
                     (is a worker running?); repeating it is safe (if it was taken meanwhile, the repeat is \
                     refused as already cancelled)"
                ))
            })?;
        match answer {
            Ok(phase) => Ok(phase),
            Err(WorkflowUpdateError::Failed(f)) => Err(not_cancellable(f.message.clone())),
            Err(e) if is_finished(&e) => Err(not_cancellable("it has finished".into())),
            Err(e) => Err(ApiError::Internal(anyhow::anyhow!("cancelling checkout {id}: {e}"))),
        }
    }

    /// The checkout's phase, from its workflow; `None` when it cannot be asked (finished, or
    /// no worker answering).
    pub async fn phase(&self, id: &CheckoutId) -> Option<CheckoutPhase> {
        let handle = self.temporal.get_workflow_handle::<CheckoutWorkflow>(id.workflow_id());
        // A query needs a worker to answer; without one it would hang until Temporal's own
        // timeout. Callers treat "could not ask" as "assume it may be waiting".
        let query = handle.query(CheckoutWorkflow::phase, (), WorkflowQueryOptions::default());
        tokio::time::timeout(std::time::Duration::from_millis(PHASE_QUERY_TIMEOUT_MS), query).await.ok()?.ok()
    }

    /// Tells a checkout's workflow the PSP reported a change. `Ok(false)` when the workflow
    /// has already finished (nothing left to tell).
    pub async fn signal_psp_event(
        &self,
        id: &CheckoutId,
        hint: PspEventHint,
    ) -> Result<bool, WorkflowInteractionError> {
        let handle = self.temporal.get_workflow_handle::<CheckoutWorkflow>(id.workflow_id());
        match handle.signal(CheckoutWorkflow::psp_event, hint, WorkflowSignalOptions::default()).await {
            Ok(()) => Ok(true),
            Err(e) if is_not_running(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A cancellation's operator and reason, trimmed: both required, the operator at most
/// [`CANCEL_OPERATOR_LEN_MAX`] bytes, the reason at most [`CANCEL_REASON_CHARS_MAX`] characters.
pub fn check_cancel(request: CancelRequest) -> Result<CancelRequest, ApiError> {
    let (operator, reason) = (request.operator.trim(), request.reason.trim());
    for (param, value) in [("operator", operator), ("reason", reason)] {
        if value.is_empty() {
            return Err(ApiError::invalid("parameter_invalid", param, "is required"));
        }
        refuse_card_number(param, value)?;
    }
    if operator.len() > CANCEL_OPERATOR_LEN_MAX {
        let message = format!("must be at most {CANCEL_OPERATOR_LEN_MAX} bytes");
        return Err(ApiError::invalid("parameter_invalid", "operator", message));
    }
    if reason.chars().count() > CANCEL_REASON_CHARS_MAX {
        let message = format!("must be at most {CANCEL_REASON_CHARS_MAX} characters");
        return Err(ApiError::invalid("parameter_invalid", "reason", message));
    }
    Ok(CancelRequest { operator: operator.to_owned(), reason: reason.to_owned() })
}

/// A signal to a workflow that has completed answers NotFound ("workflow execution already
/// completed").
pub(crate) fn is_not_running(e: &WorkflowInteractionError) -> bool {
    match e {
        WorkflowInteractionError::NotFound(_) => true,
        WorkflowInteractionError::Rpc(s) => s.message().contains("already completed"),
        _ => false,
    }
}

/// The workflow an update was sent to has completed (or never existed).
pub(crate) fn is_finished(e: &WorkflowUpdateError) -> bool {
    match e {
        WorkflowUpdateError::NotFound(_) => true,
        WorkflowUpdateError::Rpc(s) => s.message().contains("already completed"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancel(operator: &str, reason: &str) -> Result<CancelRequest, ApiError> {
        check_cancel(CancelRequest { operator: operator.into(), reason: reason.into() })
    }

    fn param(e: ApiError) -> String {
        match e {
            ApiError::InvalidRequest { param, .. } => param,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    /// Operator and reason are trimmed, required and bounded (the reason in characters, as
    /// refunds count theirs).
    #[test]
    fn cancellations_are_checked() {
        let ok = cancel(" alice ", " buyer asked ").unwrap();
        assert_eq!((ok.operator.as_str(), ok.reason.as_str()), ("alice", "buyer asked"));
        assert_eq!(param(cancel("  ", "r").unwrap_err()), "operator");
        assert_eq!(param(cancel("alice", "\t").unwrap_err()), "reason");
        assert!(cancel(&"o".repeat(CANCEL_OPERATOR_LEN_MAX), "r").is_ok());
        assert_eq!(param(cancel(&"o".repeat(CANCEL_OPERATOR_LEN_MAX + 1), "r").unwrap_err()), "operator");
        assert!(cancel("alice", &"é".repeat(CANCEL_REASON_CHARS_MAX)).is_ok());
        assert_eq!(param(cancel("alice", &"r".repeat(CANCEL_REASON_CHARS_MAX + 1)).unwrap_err()), "reason");
    }
}
