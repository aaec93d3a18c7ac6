//! Refund outcomes. Completing a refund books it in the same transaction as its status change:
//! a customer refund (kind `refund`) books its ledger reversal (`{refund_id}:ledger`, ledger
//! kind `refund`) and its wallet debit (`{refund_id}:wallet`); a reversal (kind `reversal`)
//! books back exactly what the order's capture had booked (the ledger reversal, ledger kind
//! `reversal`, only if the pay-in was posted; the wallet debit only if the credit was applied)
//! and moves the order SUCCESS -> REVERSED. Either way `verify()` stays consistent. Failing a
//! refund frees its amount again.

use crate::ledger::{
    Direction, EntryDraft, PSP_CLEARING_ACCOUNT, TransactionDraft, post_in_tx, seller_payable_account,
};
use crate::orders::{Transition, apply_transition, load_order};
use crate::records::OrderRecord;
use crate::refunds::{
    RefundId, RefundKind, RefundRecord, RefundStatus, load_locked, load_refund, refund_ledger_key, refund_wallet_key,
    update_status,
};
use crate::{Store, StoreError, now_ms};
use payments_domain::PaymentOrderStatus;
use sqlx::{Any, Transaction};

/// Ledger kind of a customer refund's reversal transaction.
pub const REFUND_LEDGER_KIND: &str = "refund";
/// Ledger kind of a reversal's transaction (the saga's compensation), so reports can tell
/// compensations from customer refunds.
pub const REVERSAL_LEDGER_KIND: &str = "reversal";

impl Store {
    /// Marks a REQUESTED refund SUCCEEDED and, in the same transaction, books it:
    /// - a customer refund ([`RefundKind::Refund`]): its ledger reversal (`{refund_id}:ledger`,
    ///   ledger kind `refund`: debit the seller's payable account, credit PSP clearing) and its
    ///   wallet debit (`{refund_id}:wallet`);
    /// - a reversal ([`RefundKind::Reversal`]): the same ledger transaction with ledger kind
    ///   `reversal`, only if the order's pay-in was posted (`ledger_updated`), the wallet debit
    ///   only if the order's credit was applied (`wallet_updated`), and the order's move
    ///   SUCCESS -> REVERSED with its history row (`reversed: {reason}`).
    ///
    /// Refused ([`StoreError::Precondition`], nothing written) when a wallet debit is due and
    /// the seller's wallet holds less than the refund, when the refund FAILED, or when a
    /// reversal's order is no longer SUCCESS. Completing a SUCCEEDED refund again answers it
    /// unchanged and books nothing.
    pub async fn complete_refund(
        &self,
        refund_id: &RefundId,
        psp_refund_reference: &str,
    ) -> Result<RefundRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let refund = load_locked(&mut tx, refund_id).await?;
        match refund.status {
            RefundStatus::Succeeded => {
                tx.rollback().await?;
                return Ok(refund);
            }
            RefundStatus::Failed => {
                return Err(StoreError::Precondition(format!("refund {refund_id} FAILED and cannot succeed")));
            }
            RefundStatus::Requested => {}
        }
        let order = load_order(&mut tx, &refund.payment_order_id).await?;
        let now = now_ms();
        update_status(&mut tx, refund_id, RefundStatus::Succeeded, Some(psp_refund_reference), None, now).await?;
        match refund.kind {
            RefundKind::Refund => {
                post_ledger_reversal(&mut tx, &refund, &order, REFUND_LEDGER_KIND).await?;
                debit_wallet(&mut tx, &refund, &order, now).await?;
            }
            RefundKind::Reversal => book_reversal(&mut tx, &refund, &order, now).await?,
        }
        let record =
            load_refund(&mut tx, refund_id).await?.ok_or_else(|| StoreError::NotFound(refund_id.to_string()))?;
        tx.commit().await?;
        Ok(record)
    }

    /// Marks a REQUESTED refund FAILED with the PSP's (or our) code, which makes its amount
    /// refundable again. Failing a FAILED refund again answers it unchanged; a SUCCEEDED refund
    /// cannot fail ([`StoreError::Precondition`]). A failed reversal leaves its order SUCCESS.
    pub async fn fail_refund(&self, refund_id: &RefundId, code: &str) -> Result<RefundRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let refund = load_locked(&mut tx, refund_id).await?;
        match refund.status {
            RefundStatus::Failed => {
                tx.rollback().await?;
                return Ok(refund);
            }
            RefundStatus::Succeeded => {
                return Err(StoreError::Precondition(format!("refund {refund_id} SUCCEEDED and cannot fail")));
            }
            RefundStatus::Requested => {}
        }
        update_status(&mut tx, refund_id, RefundStatus::Failed, None, Some(code), now_ms()).await?;
        let record =
            load_refund(&mut tx, refund_id).await?.ok_or_else(|| StoreError::NotFound(refund_id.to_string()))?;
        tx.commit().await?;
        Ok(record)
    }
}

/// The reversal's bookings and the order's move to REVERSED, in the caller's transaction (which
/// holds the order's lock, so the booking flags cannot change underneath).
async fn book_reversal(
    tx: &mut Transaction<'static, Any>,
    refund: &RefundRecord,
    order: &OrderRecord,
    now: i64,
) -> Result<(), StoreError> {
    if order.status != PaymentOrderStatus::Success {
        return Err(StoreError::Precondition(format!(
            "reversal {}: payment order {} is {}, not SUCCESS",
            refund.refund_id, order.payment_order_id, order.status
        )));
    }
    // Give back exactly what the capture booked: then wallet and ledger both net to what they
    // held before the capture, whichever of the two steps had failed.
    if order.ledger_updated {
        post_ledger_reversal(tx, refund, order, REVERSAL_LEDGER_KIND).await?;
    }
    if order.wallet_updated {
        debit_wallet(tx, refund, order, now).await?;
    }
    let t = Transition::to(PaymentOrderStatus::Reversed, format!("reversed: {}", refund.reason));
    apply_transition(tx, &order.payment_order_id, PaymentOrderStatus::Success, &t, now).await
}

/// `{refund_id}:ledger`: debit the seller's payable account, credit PSP clearing.
async fn post_ledger_reversal(
    tx: &mut Transaction<'static, Any>,
    refund: &RefundRecord,
    order: &OrderRecord,
    kind: &str,
) -> Result<(), StoreError> {
    let amount = refund.amount;
    let draft = TransactionDraft {
        id: refund_ledger_key(&refund.refund_id),
        kind: kind.into(),
        payment_order_id: Some(refund.payment_order_id.clone()),
        entries: vec![
            EntryDraft { account: seller_payable_account(&order.seller_account), direction: Direction::Debit, amount },
            EntryDraft { account: PSP_CLEARING_ACCOUNT.into(), direction: Direction::Credit, amount },
        ],
    };
    post_in_tx(tx, &draft).await?;
    Ok(())
}

/// `{refund_id}:wallet`: the movement row and the balance change; refused when the wallet holds
/// less than the refund (the caller's transaction is then dropped: nothing booked).
async fn debit_wallet(
    tx: &mut Transaction<'static, Any>,
    refund: &RefundRecord,
    order: &OrderRecord,
    now: i64,
) -> Result<(), StoreError> {
    let (amount, seller) = (refund.amount, &order.seller_account);
    sqlx::query(
        "INSERT INTO wallet_movement (idempotency_key, payment_order_id, seller_account, currency, \
         amount_minor, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(refund_wallet_key(&refund.refund_id))
    .bind(refund.payment_order_id.as_str())
    .bind(seller.as_str())
    .bind(amount.currency().code())
    .bind(-amount.amount_minor())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    // The guard is in the UPDATE itself, so no interleaving can take the balance below zero.
    let debited = sqlx::query(
        "UPDATE wallet SET balance_minor = balance_minor - $1, updated_at_ms = $2 \
         WHERE seller_account = $3 AND currency = $4 AND balance_minor >= $1",
    )
    .bind(amount.amount_minor())
    .bind(now)
    .bind(seller.as_str())
    .bind(amount.currency().code())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if debited != 1 {
        return Err(StoreError::Precondition(format!(
            "refund {}: wallet of {seller} holds less than {amount}; nothing booked",
            refund.refund_id
        )));
    }
    Ok(())
}
