//! Refunds of captured payment orders: the request (which reserves part of the captured
//! amount), and its completion (ledger reversal and wallet debit, in the same transaction as the
//! status change) or failure (which frees the amount again).
//!
//! Every operation first locks the order's row (a no-op UPDATE, which takes the row lock on
//! PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serializes writers), so concurrent refunds of
//! one order are checked against each other and can never exceed what was captured.

use crate::ledger::{
    Direction, EntryDraft, PSP_CLEARING_ACCOUNT, TransactionDraft, post_in_tx, seller_payable_account,
};
use crate::orders::load_order;
use crate::records::corrupt;
use crate::{Store, StoreError, is_unique_violation, now_ms};
use payments_domain::{Currency, Money, PaymentOrderId, PaymentOrderStatus};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::fmt;

/// Longest refund id accepted (the order id, at most 64 characters, plus a suffix such as
/// `:refund:{n}` fits easily).
pub const REFUND_ID_LEN_MAX: usize = 128;

/// A refund's business idempotency key, e.g. `{payment_order_id}:refund:{n}`: 1 to
/// [`REFUND_ID_LEN_MAX`] visible ASCII characters (no spaces). It is also the PSP's
/// Idempotency-Key for the refund call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RefundId(String);

impl RefundId {
    /// Validates and wraps a refund id.
    pub fn parse(s: impl Into<String>) -> Result<Self, StoreError> {
        let s = s.into();
        if s.is_empty() || s.len() > REFUND_ID_LEN_MAX || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(StoreError::Precondition(format!(
                "refund id must be 1 to {REFUND_ID_LEN_MAX} visible ASCII characters"
            )));
        }
        Ok(RefundId(s))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RefundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RefundId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RefundId::parse(s).map_err(|e| e.to_string())
    }
}

impl From<RefundId> for String {
    fn from(id: RefundId) -> String {
        id.0
    }
}

/// Idempotency key (and transaction id) of a refund's ledger reversal.
pub fn refund_ledger_key(refund: &RefundId) -> String {
    format!("{refund}:ledger")
}

/// Idempotency key of a refund's wallet debit.
pub fn refund_wallet_key(refund: &RefundId) -> String {
    format!("{refund}:wallet")
}

/// Where a refund is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    /// Stored; its amount is reserved against the order; the PSP has not confirmed it yet.
    Requested,
    /// The PSP refunded it; ledger reversal and wallet debit are booked.
    Succeeded,
    /// The PSP refused it; its amount is refundable again.
    Failed,
}

impl RefundStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Requested => "REQUESTED",
            RefundStatus::Succeeded => "SUCCEEDED",
            RefundStatus::Failed => "FAILED",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "REQUESTED" => Some(RefundStatus::Requested),
            "SUCCEEDED" => Some(RefundStatus::Succeeded),
            "FAILED" => Some(RefundStatus::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One refund, validated on read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    /// Refund id (the business idempotency key).
    pub refund_id: RefundId,
    /// The refunded order.
    pub payment_order_id: PaymentOrderId,
    /// Amount refunded, positive, in the order's currency.
    pub amount: Money,
    /// Why (free text from the caller).
    pub reason: String,
    /// Current status.
    pub status: RefundStatus,
    /// The PSP's id for the refund, once succeeded.
    pub psp_refund_reference: Option<String>,
    /// Why it failed, if it did.
    pub failure_code: Option<String>,
    /// Creation time.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

const REFUND_COLUMNS: &str = "refund_id, payment_order_id, amount_minor, currency, reason, status, \
    psp_refund_reference, failure_code, created_at_ms, updated_at_ms";

impl RefundRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let id: String = row.try_get("refund_id")?;
        let what = format!("refund {id}");
        let currency: String = row.try_get("currency")?;
        let currency = Currency::parse(&currency).map_err(|e| corrupt(&what, e))?;
        let status: String = row.try_get("status")?;
        Ok(RefundRecord {
            payment_order_id: PaymentOrderId::parse(row.try_get::<String, _>("payment_order_id")?)
                .map_err(|e| corrupt(&what, e))?,
            amount: Money::positive_from_minor(row.try_get("amount_minor")?, currency)
                .map_err(|e| corrupt(&what, e))?,
            reason: row.try_get("reason")?,
            status: RefundStatus::parse(&status).ok_or_else(|| corrupt(&what, format!("status {status}")))?,
            psp_refund_reference: row.try_get("psp_refund_reference")?,
            failure_code: row.try_get("failure_code")?,
            created_at_ms: row.try_get("created_at_ms")?,
            updated_at_ms: row.try_get("updated_at_ms")?,
            refund_id: RefundId::parse(id.clone()).map_err(|e| corrupt(&what, e))?,
        })
    }
}

impl Store {
    /// Requests a refund of a captured and booked order: `amount` (`None` = everything still
    /// refundable) must be positive, in the order's currency and at most the refundable amount
    /// (captured minus REQUESTED and SUCCEEDED refunds), else [`StoreError::RefundTooLarge`]
    /// (or [`StoreError::Precondition`] for a non-positive amount or another currency). Stores
    /// the refund as REQUESTED. The same `refund_id` again for the same order and amount (or
    /// with `None`) answers the stored refund, whatever its status; with another order or
    /// amount it is refused.
    pub async fn request_refund(
        &self,
        refund_id: &RefundId,
        payment_order_id: &PaymentOrderId,
        amount: Option<Money>,
        reason: &str,
    ) -> Result<RefundRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        lock_order(&mut tx, payment_order_id).await?;
        if let Some(existing) = load_refund(&mut tx, refund_id).await? {
            tx.rollback().await?;
            if existing.payment_order_id != *payment_order_id {
                return Err(StoreError::Precondition(format!(
                    "refund {refund_id} already exists for payment order {}",
                    existing.payment_order_id
                )));
            }
            if amount.is_some_and(|a| a != existing.amount) {
                return Err(StoreError::Precondition(format!(
                    "refund {refund_id} already exists with amount {}",
                    existing.amount
                )));
            }
            return Ok(existing);
        }
        let order = load_order(&mut tx, payment_order_id).await?;
        if order.status != PaymentOrderStatus::Success || !order.ledger_updated || !order.wallet_updated {
            return Err(StoreError::Precondition(format!(
                "refund of payment order {payment_order_id} in status {} (wallet_updated {}, ledger_updated {}): \
                 only SUCCESS orders booked in wallet and ledger are refunded",
                order.status, order.wallet_updated, order.ledger_updated
            )));
        }
        let reserved: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM refund \
             WHERE payment_order_id = $1 AND status IN ('REQUESTED', 'SUCCEEDED')",
        )
        .bind(payment_order_id.as_str())
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        let currency = order.amount.currency();
        let refundable = order
            .amount
            .checked_sub(Money::from_minor(reserved, currency))
            .map_err(|e| corrupt(&format!("refunds of {payment_order_id}"), e))?;
        if let Some(asked) = amount {
            if asked.currency() != currency {
                return Err(StoreError::Precondition(format!(
                    "refund {refund_id} in {} for payment order {payment_order_id} in {currency}",
                    asked.currency()
                )));
            }
            if asked.amount_minor() <= 0 {
                return Err(StoreError::Precondition(format!("refund {refund_id}: amount must be greater than zero")));
            }
        }
        // `None` asks for the rest; with nothing left that is too large as well.
        let amount = amount.unwrap_or(refundable);
        if amount.amount_minor() > refundable.amount_minor() || amount.amount_minor() <= 0 {
            return Err(StoreError::RefundTooLarge { refundable });
        }
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO refund (refund_id, payment_order_id, amount_minor, currency, reason, status, \
             created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, 'REQUESTED', $6, $6)",
        )
        .bind(refund_id.as_str())
        .bind(payment_order_id.as_str())
        .bind(amount.amount_minor())
        .bind(currency.code())
        .bind(reason)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            // Only possible when the same id is requested concurrently for another order (the
            // order lock serializes requests for the same order).
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Precondition(format!(
                    "refund {refund_id} already exists for another payment order"
                )));
            }
            Err(e) => return Err(e.into()),
        }
        let record =
            load_refund(&mut tx, refund_id).await?.ok_or_else(|| StoreError::NotFound(refund_id.to_string()))?;
        tx.commit().await?;
        Ok(record)
    }

    /// Marks a REQUESTED refund SUCCEEDED and, in the same transaction, books its ledger
    /// reversal (`{refund_id}:ledger`, kind `refund`: debit the seller's payable account,
    /// credit PSP clearing) and its wallet debit (`{refund_id}:wallet`). Refused
    /// ([`StoreError::Precondition`], nothing written) when the seller's wallet holds less than
    /// the refund, or when the refund FAILED. Completing a SUCCEEDED refund again answers it
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
        let seller = order.seller_account;
        let amount = refund.amount;
        let now = now_ms();
        update_status(&mut tx, refund_id, RefundStatus::Succeeded, Some(psp_refund_reference), None, now).await?;
        let draft = TransactionDraft {
            id: refund_ledger_key(refund_id),
            kind: "refund".into(),
            payment_order_id: Some(refund.payment_order_id.clone()),
            entries: vec![
                EntryDraft { account: seller_payable_account(&seller), direction: Direction::Debit, amount },
                EntryDraft { account: PSP_CLEARING_ACCOUNT.into(), direction: Direction::Credit, amount },
            ],
        };
        post_in_tx(&mut tx, &draft).await?;
        sqlx::query(
            "INSERT INTO wallet_movement (idempotency_key, payment_order_id, seller_account, currency, \
             amount_minor, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(refund_wallet_key(refund_id))
        .bind(refund.payment_order_id.as_str())
        .bind(seller.as_str())
        .bind(amount.currency().code())
        .bind(-amount.amount_minor())
        .bind(now)
        .execute(&mut *tx)
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
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if debited != 1 {
            tx.rollback().await?;
            return Err(StoreError::Precondition(format!(
                "refund {refund_id}: wallet of {seller} holds less than {amount}; nothing booked"
            )));
        }
        let record =
            load_refund(&mut tx, refund_id).await?.ok_or_else(|| StoreError::NotFound(refund_id.to_string()))?;
        tx.commit().await?;
        Ok(record)
    }

    /// Marks a REQUESTED refund FAILED with the PSP's (or our) code, which makes its amount
    /// refundable again. Failing a FAILED refund again answers it unchanged; a SUCCEEDED refund
    /// cannot fail ([`StoreError::Precondition`]).
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

    /// One refund.
    pub async fn refund(&self, refund_id: &RefundId) -> Result<Option<RefundRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {REFUND_COLUMNS} FROM refund WHERE refund_id = $1"))
            .bind(refund_id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(RefundRecord::from_row).transpose()
    }

    /// Every refund of an order, oldest first.
    pub async fn refunds(&self, payment_order_id: &PaymentOrderId) -> Result<Vec<RefundRecord>, StoreError> {
        sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refund WHERE payment_order_id = $1 ORDER BY created_at_ms, refund_id"
        ))
        .bind(payment_order_id.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(RefundRecord::from_row)
        .collect()
    }
}

/// Takes the order's row lock for the rest of the transaction (PostgreSQL; a no-op UPDATE is
/// the portable `SELECT ... FOR UPDATE`). Every refund write takes it first.
async fn lock_order(tx: &mut Transaction<'static, Any>, id: &PaymentOrderId) -> Result<(), StoreError> {
    let locked = sqlx::query("UPDATE payment_order SET updated_at_ms = updated_at_ms WHERE payment_order_id = $1")
        .bind(id.as_str())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if locked != 1 {
        return Err(StoreError::NotFound(format!("payment order {id}")));
    }
    Ok(())
}

/// Reads a refund, locks its order, and reads the refund again: the second read sees whatever
/// a concurrent writer committed before we got the lock.
async fn load_locked(tx: &mut Transaction<'static, Any>, id: &RefundId) -> Result<RefundRecord, StoreError> {
    let first = load_refund(tx, id).await?.ok_or_else(|| StoreError::NotFound(format!("refund {id}")))?;
    lock_order(tx, &first.payment_order_id).await?;
    load_refund(tx, id).await?.ok_or_else(|| StoreError::NotFound(format!("refund {id}")))
}

async fn load_refund(tx: &mut Transaction<'static, Any>, id: &RefundId) -> Result<Option<RefundRecord>, StoreError> {
    let row = sqlx::query(&format!("SELECT {REFUND_COLUMNS} FROM refund WHERE refund_id = $1"))
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(RefundRecord::from_row).transpose()
}

/// Compare-and-set from REQUESTED (the order lock makes a lost race impossible; the guard keeps
/// it that way if the locking ever changes).
async fn update_status(
    tx: &mut Transaction<'static, Any>,
    id: &RefundId,
    to: RefundStatus,
    psp_refund_reference: Option<&str>,
    failure_code: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let updated = sqlx::query(
        "UPDATE refund SET status = $1, psp_refund_reference = COALESCE($2, psp_refund_reference), \
         failure_code = COALESCE($3, failure_code), updated_at_ms = $4 WHERE refund_id = $5 AND status = 'REQUESTED'",
    )
    .bind(to.as_str())
    .bind(psp_refund_reference)
    .bind(failure_code)
    .bind(now)
    .bind(id.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if updated != 1 {
        return Err(StoreError::Database(sqlx::Error::Protocol(format!("refund {id} changed concurrently"))));
    }
    Ok(())
}
