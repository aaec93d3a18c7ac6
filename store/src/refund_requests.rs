//! Refund requests: a customer's refund under the caller's id or under the order's next
//! numbered id, and the saga's reversal of a capture. All three run under the order's row lock
//! and share one check-and-insert ([`reserve`]): the amount is positive, in the order's
//! currency and at most what is still refundable (captured minus REQUESTED and SUCCEEDED
//! refunds of any kind).

use crate::orders::{load_order, lock_order};
use crate::records::{OrderRecord, corrupt};
use crate::refunds::{REFUND_COLUMNS, RefundId, RefundKind, RefundRecord, load_refund, reversal_refund_id};
use crate::{Store, StoreError, is_unique_violation, now_ms};
use payments_domain::{Money, PaymentOrderId, PaymentOrderStatus};
use sqlx::{Any, Row, Transaction};

/// How many ids past `{payment_order_id}:refund:{count + 1}` [`Store::request_next_refund`]
/// tries when that id is taken (only possible when callers of [`Store::request_refund`] chose
/// such ids themselves).
pub const NEXT_REFUND_ID_PROBES_MAX: i64 = 16;

impl Store {
    /// Requests a refund of a captured and booked order: `amount` (`None` = everything still
    /// refundable) must be positive, in the order's currency and at most the refundable amount
    /// (captured minus REQUESTED and SUCCEEDED refunds), else [`StoreError::RefundTooLarge`]
    /// (or [`StoreError::Precondition`] for a non-positive amount or another currency). Only
    /// SUCCESS orders booked in wallet and ledger are refunded (a REVERSED order was given back
    /// already), and never under the order's reversal id. Stores the refund as REQUESTED. The same `refund_id` again for the same order
    /// and amount (or with `None`) answers the stored refund, whatever its status; with another
    /// order or amount it is refused.
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
            return replay(existing, refund_id, payment_order_id, amount);
        }
        if *refund_id == reversal_refund_id(payment_order_id) {
            return Err(StoreError::Precondition(format!(
                "refund id {refund_id} is reserved for the order's reversal"
            )));
        }
        let order = load_order(&mut tx, payment_order_id).await?;
        check_customer_refundable(&order)?;
        let record = reserve(&mut tx, refund_id, &order, amount, reason, RefundKind::Refund, None).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Like [`Store::request_refund`], with the id chosen here: `{payment_order_id}:refund:{n}`,
    /// `n` = 1 + the number of refunds of the order (any status, any kind), counted under the
    /// order's lock in the same transaction (the next free number if a caller took that id).
    /// Without `client_key` every successful call stores a new refund. With it (the request's
    /// Idempotency-Key) the key is stored with the refund, in the same transaction, and bound
    /// to it: a later call with the same key answers that refund (`.1 == false`, nothing new
    /// stored) whatever became of the first call's answer, provided it asks for the same thing
    /// (same order and reason, and the same amount or none); otherwise it is
    /// [`StoreError::ClientKeyTaken`]. `.1` is true when the refund was stored now.
    pub async fn request_next_refund(
        &self,
        payment_order_id: &PaymentOrderId,
        amount: Option<Money>,
        reason: &str,
        client_key: Option<&str>,
    ) -> Result<(RefundRecord, bool), StoreError> {
        let mut tx = self.begin_write().await?;
        lock_order(&mut tx, payment_order_id).await?;
        if let Some(key) = client_key
            && let Some(existing) = refund_by_client_key(&mut tx, key).await?
        {
            tx.rollback().await?;
            let same = existing.payment_order_id == *payment_order_id
                && existing.reason == reason
                && amount.is_none_or(|a| a == existing.amount);
            return if same { Ok((existing, false)) } else { Err(StoreError::ClientKeyTaken(key.to_owned())) };
        }
        let order = load_order(&mut tx, payment_order_id).await?;
        check_customer_refundable(&order)?;
        let refund_id = next_refund_id(&mut tx, payment_order_id).await?;
        let record = reserve(&mut tx, &refund_id, &order, amount, reason, RefundKind::Refund, client_key).await?;
        tx.commit().await?;
        Ok((record, true))
    }

    /// Requests the reversal of a captured order (the saga's compensation after its wallet
    /// credit or ledger post failed permanently): id `{payment_order_id}:reversal`, kind
    /// [`RefundKind::Reversal`], amount = everything still refundable ([`StoreError::RefundTooLarge`]
    /// when that is zero). The order must be SUCCESS; its booking flags may be anything
    /// ([`Store::complete_refund`] books back exactly what was booked). The same call again
    /// answers the stored reversal, whatever its status.
    pub async fn request_reversal(
        &self,
        payment_order_id: &PaymentOrderId,
        reason: &str,
    ) -> Result<RefundRecord, StoreError> {
        let refund_id = reversal_refund_id(payment_order_id);
        let mut tx = self.begin_write().await?;
        lock_order(&mut tx, payment_order_id).await?;
        if let Some(existing) = load_refund(&mut tx, &refund_id).await? {
            tx.rollback().await?;
            if existing.kind != RefundKind::Reversal || existing.payment_order_id != *payment_order_id {
                return Err(StoreError::Precondition(format!(
                    "refund {refund_id} exists and is not the reversal of payment order {payment_order_id}"
                )));
            }
            return Ok(existing);
        }
        let order = load_order(&mut tx, payment_order_id).await?;
        if order.status != PaymentOrderStatus::Success {
            return Err(StoreError::Precondition(format!(
                "reversal of payment order {payment_order_id} in status {}: only SUCCESS orders are reversed",
                order.status
            )));
        }
        let record = reserve(&mut tx, &refund_id, &order, None, reason, RefundKind::Reversal, None).await?;
        tx.commit().await?;
        Ok(record)
    }
}

/// The answer to a request whose id exists already: the stored refund, if the request asks for
/// the same thing.
fn replay(
    existing: RefundRecord,
    refund_id: &RefundId,
    payment_order_id: &PaymentOrderId,
    amount: Option<Money>,
) -> Result<RefundRecord, StoreError> {
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
    Ok(existing)
}

/// Customer refunds need a capture that reached the seller: SUCCESS, in wallet and ledger.
fn check_customer_refundable(order: &OrderRecord) -> Result<(), StoreError> {
    if order.status != PaymentOrderStatus::Success || !order.ledger_updated || !order.wallet_updated {
        return Err(StoreError::Precondition(format!(
            "refund of payment order {} in status {} (wallet_updated {}, ledger_updated {}): \
             only SUCCESS orders booked in wallet and ledger are refunded",
            order.payment_order_id, order.status, order.wallet_updated, order.ledger_updated
        )));
    }
    Ok(())
}

/// `{payment_order_id}:refund:{n}` with n = 1 + the order's refunds, or the next free number.
async fn next_refund_id(
    tx: &mut Transaction<'static, Any>,
    payment_order_id: &PaymentOrderId,
) -> Result<RefundId, StoreError> {
    let count: i64 = sqlx::query("SELECT COUNT(*) FROM refund WHERE payment_order_id = $1")
        .bind(payment_order_id.as_str())
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    for n in count + 1..=count + 1 + NEXT_REFUND_ID_PROBES_MAX {
        let id = RefundId::parse(format!("{payment_order_id}:refund:{n}"))?;
        if load_refund(tx, &id).await?.is_none() {
            return Ok(id);
        }
    }
    Err(StoreError::Precondition(format!(
        "payment order {payment_order_id}: no free refund id after {} (ids taken by other callers)",
        count + 1 + NEXT_REFUND_ID_PROBES_MAX
    )))
}

/// The refund a client's Idempotency-Key created, if any.
async fn refund_by_client_key(
    tx: &mut Transaction<'static, Any>,
    key: &str,
) -> Result<Option<RefundRecord>, StoreError> {
    let row = sqlx::query(&format!("SELECT {REFUND_COLUMNS} FROM refund WHERE client_key = $1"))
        .bind(key.to_owned())
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(RefundRecord::from_row).transpose()
}

/// Checks `amount` (`None` = the rest) against what the order still has refundable and stores
/// a REQUESTED refund (with the client's key, if any), in the caller's transaction, which holds
/// the order's lock.
async fn reserve(
    tx: &mut Transaction<'static, Any>,
    refund_id: &RefundId,
    order: &OrderRecord,
    amount: Option<Money>,
    reason: &str,
    kind: RefundKind,
    client_key: Option<&str>,
) -> Result<RefundRecord, StoreError> {
    let payment_order_id = &order.payment_order_id;
    let reserved: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM refund \
         WHERE payment_order_id = $1 AND status IN ('REQUESTED', 'SUCCEEDED')",
    )
    .bind(payment_order_id.as_str())
    .fetch_one(&mut **tx)
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
        "INSERT INTO refund (refund_id, payment_order_id, kind, amount_minor, currency, reason, status, \
         created_at_ms, updated_at_ms, client_key) VALUES ($1, $2, $3, $4, $5, $6, 'REQUESTED', $7, $7, $8)",
    )
    .bind(refund_id.as_str())
    .bind(payment_order_id.as_str())
    .bind(kind.as_str())
    .bind(amount.amount_minor())
    .bind(currency.code())
    .bind(reason)
    .bind(now)
    .bind(client_key.map(str::to_owned))
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            // The client's key, used concurrently for a refund of another order (the order
            // lock serializes requests for the same order)...
            if let Some(key) = client_key {
                return Err(StoreError::ClientKeyTaken(key.to_owned()));
            }
            // ...or the same refund id requested concurrently for another order.
            return Err(StoreError::Precondition(format!(
                "refund {refund_id} already exists for another payment order"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    load_refund(tx, refund_id).await?.ok_or_else(|| StoreError::NotFound(refund_id.to_string()))
}
