//! What both APIs do: store a checkout, start its workflow, read state back. The gateway
//! never moves money itself; the workflow does.

use crate::error::ApiError;
use payments_domain::{CheckoutId, NewCheckout, PaymentOrderId};
use payments_store::{CheckoutRecord, CreateOutcome, OrderRecord, Store};
use payments_workflows::{CheckoutInput, CheckoutWorkflow};
use temporalio_client::errors::WorkflowStartError;
use temporalio_client::{Client, WorkflowIdReusePolicy, WorkflowStartOptions};

/// Shared state of the gateway's handlers.
#[derive(Clone)]
pub struct PaymentsService {
    store: Store,
    temporal: Client,
    task_queue: String,
}

/// Whether a create call stored something new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// New checkout, workflow started.
    New,
    /// The same checkout again: nothing new stored or charged.
    Existing,
}

impl PaymentsService {
    /// A service over this store and Temporal client.
    pub fn new(store: Store, temporal: Client, task_queue: String) -> Self {
        PaymentsService {
            store,
            temporal,
            task_queue,
        }
    }

    /// Stores the checkout (one transaction) and then starts its workflow. For a checkout that
    /// exists already the start is attempted again: if an earlier gateway stored it and died
    /// before starting the workflow, this repairs it; otherwise Temporal answers "already
    /// started" and nothing happens (workflow ids are never reused: RejectDuplicate).
    pub async fn create(
        &self,
        checkout: NewCheckout,
    ) -> Result<(Created, CheckoutRecord), ApiError> {
        let outcome = self.store.create_checkout(&checkout).await?;
        let created = match outcome {
            CreateOutcome::Created(_) => Created::New,
            CreateOutcome::Existing(_) => Created::Existing,
        };
        let input = CheckoutInput {
            checkout_id: checkout.checkout_id.clone(),
            buyer_id: checkout.buyer_id,
            payment_token: checkout.payment_token,
            orders: checkout.orders,
        };
        let options =
            WorkflowStartOptions::new(self.task_queue.clone(), checkout.checkout_id.workflow_id())
                .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
                .build();
        match self
            .temporal
            .start_workflow(CheckoutWorkflow::run, input, options)
            .await
        {
            Ok(_) | Err(WorkflowStartError::AlreadyStarted { .. }) => {}
            Err(e) => {
                return Err(ApiError::Internal(anyhow::anyhow!(
                    "checkout {} stored but its workflow did not start (a retry of the same request starts it): {e}",
                    checkout.checkout_id
                )));
            }
        }
        // Read back after the start: the answer shows the freshest state we have.
        let record = self.checkout(&checkout.checkout_id).await?;
        Ok((created, record))
    }

    /// One payment order.
    pub async fn order(&self, id: &PaymentOrderId) -> Result<OrderRecord, ApiError> {
        self.store
            .order(id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("payment order {id}")))
    }

    /// One checkout with its orders.
    pub async fn checkout(&self, id: &CheckoutId) -> Result<CheckoutRecord, ApiError> {
        self.store
            .checkout(id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("checkout {id}")))
    }
}
