//! What both APIs do: store a checkout, start its workflow, read state back, and pass
//! messages to running checkouts (hosted-payment confirmations, review decisions, PSP
//! events). The gateway never moves money itself; the workflow does.

use crate::error::ApiError;
use payments_domain::{CheckoutId, NewCheckout, PaymentOrderId};
use payments_store::{CheckoutRecord, CreateOutcome, OrderRecord, Store};
use payments_workflows::messages::{
    CHECKOUT_ID_ATTRIBUTE, CheckoutPhase, ConfirmRequest, ConfirmResult, PAYMENT_STATUS_ATTRIBUTE, PspEventHint,
    ReviewDecision, WaitLimits,
};
use payments_workflows::{CheckoutInput, CheckoutWorkflow};
use temporalio_client::errors::{WorkflowInteractionError, WorkflowStartError, WorkflowUpdateError};
use temporalio_client::{
    Client, WorkflowExecuteUpdateOptions, WorkflowIdReusePolicy, WorkflowQueryOptions, WorkflowSignalOptions,
    WorkflowStartOptions,
};
use temporalio_common::search_attributes::SearchAttributes;

/// Bound on asking a workflow its phase (webhook bridge): a live worker answers in
/// milliseconds.
pub const PHASE_QUERY_TIMEOUT_MS: u64 = 2_000;

/// Shared state of the gateway's handlers.
#[derive(Clone)]
pub struct PaymentsService {
    store: Store,
    temporal: Client,
    task_queue: String,
    waits: WaitLimits,
}

/// Whether a create call stored something new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// New checkout, workflow started.
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
        PaymentsService { store, temporal, task_queue, waits }
    }

    /// The store (for the webhook bridge).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores the checkout (one transaction) and then starts its workflow. For a checkout that
    /// exists already the start is attempted again: if an earlier gateway stored it and died
    /// before starting the workflow, this repairs it; otherwise Temporal answers "already
    /// started" and nothing happens (workflow ids are never reused: RejectDuplicate).
    pub async fn create(&self, checkout: NewCheckout) -> Result<(Created, CheckoutRecord), ApiError> {
        let outcome = self.store.create_checkout(&checkout).await?;
        let created = match outcome {
            CreateOutcome::Created(_) => Created::New,
            CreateOutcome::Existing(_) => Created::Existing,
        };
        let id = checkout.checkout_id.clone();
        let input = CheckoutInput {
            checkout_id: checkout.checkout_id,
            buyer_id: checkout.buyer_id,
            payment: checkout.payment,
            orders: checkout.orders,
            waits: self.waits,
        };
        // Operators find checkouts in the Temporal UI by these.
        let attributes = SearchAttributes::new([
            CHECKOUT_ID_ATTRIBUTE.value_set(id.to_string()),
            PAYMENT_STATUS_ATTRIBUTE.value_set(CheckoutPhase::RiskCheck.as_str().to_owned()),
        ]);
        let options = WorkflowStartOptions::new(self.task_queue.clone(), id.workflow_id())
            .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
            .search_attributes(attributes)
            .build();
        match self.temporal.start_workflow(CheckoutWorkflow::run, input, options).await {
            Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => {}
            Err(e) => {
                return Err(ApiError::Internal(anyhow::anyhow!(
                    "checkout {id} stored but its workflow did not start (a retry of the same request starts it): {e}"
                )));
            }
        }
        // Read back after the start: the answer shows the freshest state we have.
        let record = self.checkout(&id).await?;
        Ok((created, record))
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

/// A signal to a workflow that has completed answers NotFound ("workflow execution already
/// completed").
fn is_not_running(e: &WorkflowInteractionError) -> bool {
    match e {
        WorkflowInteractionError::NotFound(_) => true,
        WorkflowInteractionError::Rpc(s) => s.message().contains("already completed"),
        _ => false,
    }
}

fn is_finished(e: &WorkflowUpdateError) -> bool {
    match e {
        WorkflowUpdateError::NotFound(_) => true,
        WorkflowUpdateError::Rpc(s) => s.message().contains("already completed"),
        _ => false,
    }
}
