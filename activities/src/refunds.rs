//! Refund and dead-letter activities over the store. Each call is idempotent (refund ids and
//! dead-letter ids are keys), so retries and replays are harmless.

use crate::failure::{from_store, non_retryable};
use payments_domain::{PaymentOrderId, PaymentOrderStatus};
use payments_store::{DeadLetterDraft, OrderRecord, RefundId, Store};
use payments_workflows::contract::{
    CloseDeadLetter, CompleteRefund, CompleteRefundInput, DeadLetterClose, DeadLetterOpen, FailRefund, FailRefundInput,
    OpenDeadLetter, RefundRequest, RequestReversal, ReversalInput,
};
use payments_workflows::policies::failure_types;
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// Store-backed refund and dead-letter activities; hold only the store.
pub struct RefundActivities {
    store: Store,
}

impl RefundActivities {
    /// Activities over this store.
    pub fn new(store: Store) -> Self {
        RefundActivities { store }
    }
}

impl RefundActivities {
    async fn order(&self, id: &PaymentOrderId) -> Result<OrderRecord, ActivityError> {
        self.store
            .order(id)
            .await
            .map_err(from_store)?
            .ok_or_else(|| non_retryable(failure_types::STORE_NOT_FOUND, format!("payment order {id} vanished")))
    }
}

fn refund_id(id: &str) -> Result<RefundId, ActivityError> {
    RefundId::parse(id).map_err(|e| non_retryable(failure_types::STORE_PRECONDITION, e.to_string()))
}

#[activities]
impl RefundActivities {
    /// Registers the compensation refund of a captured order and answers the PSP request.
    #[activity(definition = RequestReversal)]
    pub async fn request_reversal(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: ReversalInput,
    ) -> Result<RefundRequest, ActivityError> {
        let refund = self.store.request_reversal(&input.payment_order_id, &input.reason).await.map_err(from_store)?;
        let order = self.order(&input.payment_order_id).await?;
        let psp_reference = order.psp_reference.ok_or_else(|| {
            non_retryable(
                failure_types::STORE_PRECONDITION,
                format!("order {} has no PSP reference", order.payment_order_id),
            )
        })?;
        tracing::warn!(payment_order_id = %input.payment_order_id, refund_id = %refund.refund_id, reason = %input.reason, "reversal registered");
        Ok(RefundRequest {
            refund_id: refund.refund_id.to_string(),
            payment_order_id: refund.payment_order_id,
            psp_reference,
            amount: refund.amount,
            reason: refund.reason,
        })
    }

    /// Marks a refund SUCCEEDED and books it; answers the order's status afterwards.
    #[activity(definition = CompleteRefund)]
    pub async fn complete_refund(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CompleteRefundInput,
    ) -> Result<PaymentOrderStatus, ActivityError> {
        let id = refund_id(&input.refund_id)?;
        let refund = self.store.complete_refund(&id, &input.psp_refund_reference).await.map_err(from_store)?;
        let order = self.order(&refund.payment_order_id).await?;
        tracing::info!(refund_id = %id, order_status = %order.status, "refund booked");
        Ok(order.status)
    }

    /// Marks a refund FAILED.
    #[activity(definition = FailRefund)]
    pub async fn fail_refund(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: FailRefundInput,
    ) -> Result<(), ActivityError> {
        let id = refund_id(&input.refund_id)?;
        self.store.fail_refund(&id, &input.code).await.map_err(from_store)?;
        tracing::info!(refund_id = %id, code = %input.code, "refund failed");
        Ok(())
    }

    /// Opens (or re-opens) a dead letter.
    #[activity(definition = OpenDeadLetter)]
    pub async fn open_dead_letter(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: DeadLetterOpen,
    ) -> Result<(), ActivityError> {
        let draft = DeadLetterDraft {
            dead_letter_id: input.dead_letter_id,
            workflow_id: input.workflow_id,
            checkout_id: input.checkout_id,
            subject: input.subject,
            step: input.step,
            reason: input.reason,
            last_error: input.last_error,
            attempts: i64::from(input.attempts),
        };
        let record = self.store.open_dead_letter(&draft).await.map_err(from_store)?;
        tracing::error!(dead_letter_id = %record.dead_letter_id, reason = %record.reason, last_error = %record.last_error, attempts = record.attempts, "dead letter");
        Ok(())
    }

    /// Closes a dead letter (retried successfully, or resolved by an operator).
    #[activity(definition = CloseDeadLetter)]
    pub async fn close_dead_letter(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: DeadLetterClose,
    ) -> Result<(), ActivityError> {
        match input.resolved {
            None => {
                self.store.close_dead_letter_retried(&input.dead_letter_id).await.map_err(from_store)?;
            }
            Some(note) => {
                self.store
                    .resolve_dead_letter(&input.dead_letter_id, &note.operator, &note.reason)
                    .await
                    .map_err(from_store)?;
            }
        }
        tracing::info!(dead_letter_id = %input.dead_letter_id, "dead letter closed");
        Ok(())
    }
}
