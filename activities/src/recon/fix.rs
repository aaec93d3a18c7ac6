//! The activities of an approved fix (`recon_fix`): planning it from the break and the PSP's
//! lines, recording a PSP refund against an order (then booked by the refund path's own
//! completion), and remembering a refund a fix made of a capture our books never had.

use crate::failure::{from_store, non_retryable};
use payments_domain::{Currency, Money, PaymentOrderId, PaymentOrderStatus};
use payments_recon::{BreakKind, SettlementLine};
use payments_store::{BreakRecord, BreakStatus, PaymentFlow, Store, StoreError};
use payments_workflows::contract::{CompleteRefundInput, ExpectedPayment, LookupInput, RefundRequest};
use payments_workflows::recon_contract::{
    FixPlan, FixRefund, FixRequest, PlanFix, PspRefundRecord, RecordFixRefund, RecordPspRefund,
};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// Failure type of a fix that cannot be planned (not approvable, data missing).
pub const FIX_REFUSED: &str = "ReconFixRefused";

/// The fix activities.
pub struct ReconFixActivities {
    store: Store,
}

impl ReconFixActivities {
    /// Activities over `store`.
    pub fn new(store: Store) -> Self {
        ReconFixActivities { store }
    }

    async fn line(&self, record: &BreakRecord, transaction_id: &str) -> Result<SettlementLine, ActivityError> {
        self.store
            .settlement_line(record.psp, transaction_id)
            .await
            .map_err(from_store)?
            .ok_or_else(|| refused(format!("break {}: line {transaction_id} is not stored", record.break_id)))
    }
}

fn refused(message: String) -> ActivityError {
    non_retryable(FIX_REFUSED, message)
}

fn money(line: &SettlementLine) -> Result<Money, ActivityError> {
    let currency = Currency::parse(&line.currency).map_err(|e| refused(e.to_string()))?;
    Money::positive_from_minor(line.amount_minor.abs(), currency).map_err(|e| refused(e.to_string()))
}

fn order_id(record: &BreakRecord) -> Result<PaymentOrderId, ActivityError> {
    record
        .order_id
        .as_deref()
        .and_then(|id| PaymentOrderId::parse(id).ok())
        .ok_or_else(|| refused(format!("break {} names no payment order of ours", record.break_id)))
}

#[activities]
impl ReconFixActivities {
    /// What approving the break does; refused unless it is open (or accepted) with a fix.
    #[activity(definition = PlanFix)]
    pub async fn plan(self: Arc<Self>, _ctx: ActivityContext, input: FixRequest) -> Result<FixPlan, ActivityError> {
        let record = self
            .store
            .recon_break(input.break_id)
            .await
            .map_err(from_store)?
            .ok_or_else(|| refused(format!("no break {}", input.break_id)))?;
        if !matches!(record.status, BreakStatus::Open | BreakStatus::Accepted) || record.suggested_fix.is_none() {
            return Err(refused(format!(
                "break {} ({}, {}) has no fix to approve",
                record.break_id,
                record.kind,
                record.status.as_str()
            )));
        }
        let first_line = record.evidence["transaction_ids"][0].as_str().map(str::to_owned);
        match record.kind {
            BreakKind::RefundMissingInBooks => {
                let line = self.line(&record, &record.subject).await?;
                let payment_reference =
                    line.payment_reference.clone().ok_or_else(|| refused("the refund line names no payment".into()))?;
                Ok(FixPlan::RecordPspRefund(PspRefundRecord {
                    break_id: record.break_id,
                    payment_reference,
                    amount: money(&line)?,
                    psp_refund_reference: line.refund_reference.clone().unwrap_or(line.transaction_id.clone()),
                }))
            }
            BreakKind::CapturedButFailed | BreakKind::DuplicateCapture => {
                let transaction_id =
                    if record.kind == BreakKind::DuplicateCapture { Some(record.subject.clone()) } else { first_line };
                let line = self.line(&record, transaction_id.as_deref().unwrap_or_default()).await?;
                let psp_reference = line
                    .payment_reference
                    .clone()
                    .ok_or_else(|| refused("the capture line names no payment".into()))?;
                let request = RefundRequest {
                    refund_id: format!("recon-break-{}", record.break_id),
                    payment_order_id: order_id(&record)?,
                    psp_reference,
                    amount: money(&line)?,
                    reason: format!("reconciliation: {}", record.kind),
                };
                Ok(FixPlan::RefundCapture { request, psp: record.psp })
            }
            BreakKind::MissingAtPsp => {
                let id = order_id(&record)?;
                let order = self
                    .store
                    .order(&id)
                    .await
                    .map_err(from_store)?
                    .ok_or_else(|| refused(format!("no order {id}")))?;
                let checkout = self.store.checkout(&order.checkout_id).await.map_err(from_store)?;
                let hosted = checkout.is_some_and(|c| c.flow == PaymentFlow::Hosted);
                let psp_order_id = if hosted { order.checkout_id.to_string() } else { id.to_string() };
                Ok(FixPlan::LookUp(LookupInput {
                    payment_order_id: id,
                    psp_reference: order.psp_reference,
                    expected: Some(ExpectedPayment { psp_order_id, amount: order.amount }),
                    first_sent_at_ms: None,
                    last_sent_at_ms: None,
                }))
            }
            other => Err(refused(format!("break {}: no fix for {other}", record.break_id))),
        }
    }

    /// Records the PSP's refund against the first order of the payment it fits (a refund row
    /// keyed by the break, so a retry finds it); its completion books it.
    #[activity(definition = RecordPspRefund)]
    pub async fn record_psp_refund(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: PspRefundRecord,
    ) -> Result<CompleteRefundInput, ActivityError> {
        let key = format!("recon-break-{}", input.break_id);
        for order in self.store.orders_by_psp_reference(&input.payment_reference).await.map_err(from_store)? {
            if order.status != PaymentOrderStatus::Success {
                continue;
            }
            let reason = "refunded in the PSP's dashboard (reconciliation)";
            match self.store.request_next_refund(&order.payment_order_id, Some(input.amount), reason, Some(&key)).await
            {
                Ok((refund, _)) => {
                    return Ok(CompleteRefundInput {
                        refund_id: refund.refund_id.to_string(),
                        psp_refund_reference: input.psp_refund_reference,
                    });
                }
                Err(StoreError::RefundTooLarge { .. } | StoreError::ClientKeyTaken(_)) => continue,
                Err(e) => return Err(from_store(e)),
            }
        }
        Err(refused(format!("no order of payment {} can take a refund of {}", input.payment_reference, input.amount)))
    }

    /// Remembers a refund a fix made of a capture our books never had.
    #[activity(definition = RecordFixRefund)]
    pub async fn record_fix_refund(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: FixRefund,
    ) -> Result<(), ActivityError> {
        self.store
            .record_fix_refund(
                input.break_id,
                input.psp,
                &input.payment_reference,
                input.amount,
                &input.psp_refund_reference,
            )
            .await
            .map_err(from_store)
    }
}
