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
use crate::order_fees::{PLATFORM_REVENUE_ACCOUNT, RefundSplit, refund_split};
use crate::orders::{Transition, apply_transition, load_order, lock_order};
use crate::records::OrderRecord;
use crate::refunds::{
    RefundId, RefundKind, RefundRecord, RefundStatus, load_locked, load_refund, refund_ledger_key, refund_wallet_key,
    update_status,
};
use crate::{Store, StoreError, now_ms};
use payments_domain::{Money, PaymentOrderStatus};
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
    /// The seller gives back the refund less the platform fee share it returns (proportional
    /// and cumulative: `payments_domain::fees`); the seller's wallet may go below zero (a
    /// refund after a payout, carried to the next one).
    ///
    /// Refused ([`StoreError::Precondition`], nothing written) when the refund FAILED, or when a
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
        // The fee share depends on the order's other refunds: serialize with their completions.
        lock_order(&mut tx, &refund.payment_order_id).await?;
        let order = load_order(&mut tx, &refund.payment_order_id).await?;
        let split = refund_split(&mut tx, &order, &refund.refund_id, refund.amount).await?;
        let now = now_ms();
        update_status(&mut tx, refund_id, RefundStatus::Succeeded, Some(psp_refund_reference), None, now).await?;
        match refund.kind {
            RefundKind::Refund => {
                post_ledger_reversal(&mut tx, &refund, &order, split, REFUND_LEDGER_KIND).await?;
                debit_wallet(&mut tx, &refund, &order, split, now).await?;
            }
            RefundKind::Reversal => book_reversal(&mut tx, &refund, &order, split, now).await?,
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
    split: RefundSplit,
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
        post_ledger_reversal(tx, refund, order, split, REVERSAL_LEDGER_KIND).await?;
    }
    if order.wallet_updated {
        debit_wallet(tx, refund, order, split, now).await?;
    }
    let t = Transition::to(PaymentOrderStatus::Reversed, format!("reversed: {}", refund.reason));
    apply_transition(tx, &order.payment_order_id, PaymentOrderStatus::Success, &t, now).await
}

/// `{refund_id}:ledger`: credit PSP clearing with the refund, debit the seller's payable
/// account with the seller's part and the platform's revenue with the fee share it gives back
/// (a zero leg is left out).
async fn post_ledger_reversal(
    tx: &mut Transaction<'static, Any>,
    refund: &RefundRecord,
    order: &OrderRecord,
    split: RefundSplit,
    kind: &str,
) -> Result<(), StoreError> {
    let amount = refund.amount;
    let part = |minor: i64| Money::from_minor(minor, amount.currency());
    let mut entries = Vec::with_capacity(3);
    if split.seller_minor > 0 {
        entries.push(EntryDraft {
            account: seller_payable_account(&order.seller_account),
            direction: Direction::Debit,
            amount: part(split.seller_minor),
        });
    }
    if split.fee_minor > 0 {
        entries.push(EntryDraft {
            account: PLATFORM_REVENUE_ACCOUNT.into(),
            direction: Direction::Debit,
            amount: part(split.fee_minor),
        });
    }
    entries.push(EntryDraft { account: PSP_CLEARING_ACCOUNT.into(), direction: Direction::Credit, amount });
    let draft = TransactionDraft {
        id: refund_ledger_key(&refund.refund_id),
        kind: kind.into(),
        payment_order_id: Some(refund.payment_order_id.clone()),
        entries,
    };
    post_in_tx(tx, &draft).await?;
    Ok(())
}

/// `{refund_id}:wallet`: the movement row and the balance change of the seller's part of the
/// refund. The balance may go below zero: a refund after the seller was paid out is carried
/// as a negative balance and netted against the next payout (the buyer's refund is never held
/// up by the seller's balance). No movement when the seller's part is zero.
async fn debit_wallet(
    tx: &mut Transaction<'static, Any>,
    refund: &RefundRecord,
    order: &OrderRecord,
    split: RefundSplit,
    now: i64,
) -> Result<(), StoreError> {
    if split.seller_minor == 0 {
        return Ok(());
    }
    let (amount, seller) = (Money::from_minor(split.seller_minor, refund.amount.currency()), &order.seller_account);
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
    let debited = sqlx::query(
        "UPDATE wallet SET balance_minor = balance_minor - $1, updated_at_ms = $2 \
         WHERE seller_account = $3 AND currency = $4",
    )
    .bind(amount.amount_minor())
    .bind(now)
    .bind(seller.as_str())
    .bind(amount.currency().code())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if debited != 1 {
        return Err(StoreError::Corrupt(format!(
            "refund {}: {seller} has no {} wallet although the order was credited",
            refund.refund_id,
            amount.currency()
        )));
    }
    Ok(())
}
