//! Payment order status transitions and their append-only history.

use crate::records::{HistoryRecord, ORDER_COLUMNS, OrderRecord};
use crate::{Store, StoreError, now_ms};
use payments_domain::{PaymentOrderId, PaymentOrderStatus};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

/// A requested status change with what the PSP told us.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// Target status.
    pub to: PaymentOrderStatus,
    /// Why, for the history (e.g. "psp captured", "card_declined").
    pub reason: String,
    /// The PSP's payment id, when known.
    pub psp_reference: Option<String>,
    /// Decline or failure code, for FAILED.
    pub failure_code: Option<String>,
    /// Failure text, for FAILED.
    pub failure_message: Option<String>,
}

impl Transition {
    /// A transition with only a reason.
    pub fn to(to: PaymentOrderStatus, reason: impl Into<String>) -> Self {
        Transition { to, reason: reason.into(), psp_reference: None, failure_code: None, failure_message: None }
    }
}

impl Store {
    /// Reads one payment order.
    pub async fn order(&self, id: &PaymentOrderId) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM payment_order WHERE payment_order_id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(OrderRecord::from_row).transpose()
    }

    /// The orders the PSP knows under one payment reference (one, or a hosted checkout's
    /// several), by id.
    pub async fn orders_by_psp_reference(&self, reference: &str) -> Result<Vec<OrderRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ORDER_COLUMNS} FROM payment_order WHERE psp_reference = $1 ORDER BY payment_order_id"
        ))
        .bind(reference)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(OrderRecord::from_row).collect()
    }

    /// Moves an order to `t.to` and appends the history row, in one transaction. Repeating a
    /// transition that already happened returns the order unchanged (activities are retried);
    /// a move the lifecycle forbids is [`StoreError::InvalidTransition`]. SUCCESS -> REVERSED is
    /// refused here ([`StoreError::Precondition`]): it happens only in
    /// [`Store::complete_refund`] of the order's reversal, beside the bookings it needs.
    pub async fn transition(&self, id: &PaymentOrderId, t: &Transition) -> Result<OrderRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let current = load_order(&mut tx, id).await?;
        // The same transition again, or a move to EXECUTING that a later status already
        // overtook (a replayed step): a stale retry, answered with the current state.
        let overtaken = t.to == PaymentOrderStatus::Executing && current.status != PaymentOrderStatus::NotStarted;
        if current.status == t.to || overtaken {
            tx.rollback().await?;
            return Ok(current);
        }
        if !current.status.can_transition_to(t.to) {
            return Err(StoreError::InvalidTransition {
                order: id.to_string(),
                from: current.status.to_string(),
                to: t.to.to_string(),
            });
        }
        if t.to == PaymentOrderStatus::Reversed {
            // REVERSED must come with the reversal's bookings: only `complete_refund` of the
            // order's reversal moves it, in the same transaction.
            return Err(StoreError::Precondition(format!(
                "payment order {id}: only the completion of its reversal moves it to REVERSED"
            )));
        }
        apply_transition(&mut tx, id, current.status, t, now_ms()).await?;
        let order = load_order(&mut tx, id).await?;
        tx.commit().await?;
        Ok(order)
    }

    /// The order's status history, oldest first.
    pub async fn history(&self, id: &PaymentOrderId) -> Result<Vec<HistoryRecord>, StoreError> {
        sqlx::query(
            "SELECT from_status, to_status, reason, created_at_ms FROM payment_order_history \
             WHERE payment_order_id = $1 ORDER BY id",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(HistoryRecord::from_row)
        .collect()
    }
}

/// Takes the order's row lock for the rest of the transaction (PostgreSQL; a no-op UPDATE is
/// the portable `SELECT ... FOR UPDATE`). Every refund write, wallet credit and ledger post of
/// an order takes it first, so they serialize with the reversal that ends the order's bookings.
pub(crate) async fn lock_order(tx: &mut Transaction<'static, Any>, id: &PaymentOrderId) -> Result<(), StoreError> {
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

pub(crate) async fn load_order(
    tx: &mut Transaction<'static, Any>,
    id: &PaymentOrderId,
) -> Result<OrderRecord, StoreError> {
    let row = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM payment_order WHERE payment_order_id = $1"))
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("payment order {id}")))?;
    OrderRecord::from_row(&row)
}

/// Compare-and-set of the order's status from `from` to `t.to` (with what the PSP told us) and
/// its history row, in the caller's transaction. The caller has checked the lifecycle.
pub(crate) async fn apply_transition(
    tx: &mut Transaction<'static, Any>,
    id: &PaymentOrderId,
    from: PaymentOrderStatus,
    t: &Transition,
    now: i64,
) -> Result<(), StoreError> {
    debug_assert!(from.can_transition_to(t.to), "{from} -> {}", t.to);
    // Compare-and-set on the old status: under PostgreSQL's READ COMMITTED a concurrent
    // writer could have moved the order since we read it. A capture clears the failure an
    // earlier UNKNOWN recorded: the order did not fail.
    let cleared = t.to == PaymentOrderStatus::Success;
    let (code, message) = if cleared { (None, None) } else { (t.failure_code.clone(), t.failure_message.clone()) };
    let updated = sqlx::query(
        "UPDATE payment_order SET status = $1, psp_reference = COALESCE($2, psp_reference), \
         failure_code = CASE WHEN $8 THEN NULL ELSE COALESCE($3, failure_code) END, \
         failure_message = CASE WHEN $8 THEN NULL ELSE COALESCE($4, failure_message) END, \
         updated_at_ms = $5 WHERE payment_order_id = $6 AND status = $7",
    )
    .bind(t.to.as_str())
    .bind(t.psp_reference.clone())
    .bind(code)
    .bind(message)
    .bind(now)
    .bind(id.as_str())
    .bind(from.as_str())
    .bind(cleared)
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() != 1 {
        // Lost the race: let the caller retry and see the new status.
        return Err(StoreError::Database(sqlx::Error::Protocol(format!("payment order {id} changed concurrently"))));
    }
    append_history(tx, id, Some(from), t.to, &t.reason, now).await
}

pub(crate) async fn append_history(
    tx: &mut Transaction<'static, Any>,
    id: &PaymentOrderId,
    from: Option<PaymentOrderStatus>,
    to: PaymentOrderStatus,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO payment_order_history (payment_order_id, from_status, to_status, reason, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id.as_str())
    .bind(from.map(|s| s.as_str()))
    .bind(to.as_str())
    .bind(reason)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A booking flag of a payment order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OrderFlag {
    /// `wallet_updated`.
    WalletUpdated,
    /// `ledger_updated`.
    LedgerUpdated,
}

/// Sets a booking flag in the caller's transaction, beside the write it records.
pub(crate) async fn set_flag(
    tx: &mut Transaction<'static, Any>,
    id: &PaymentOrderId,
    flag: OrderFlag,
) -> Result<(), StoreError> {
    // Column names cannot be bound parameters; each flag has its own fixed statement.
    let sql = match flag {
        OrderFlag::WalletUpdated => {
            "UPDATE payment_order SET wallet_updated = $1, updated_at_ms = $2 WHERE payment_order_id = $3"
        }
        OrderFlag::LedgerUpdated => {
            "UPDATE payment_order SET ledger_updated = $1, updated_at_ms = $2 WHERE payment_order_id = $3"
        }
    };
    sqlx::query(sql).bind(true).bind(now_ms()).bind(id.as_str()).execute(&mut **tx).await?;
    Ok(())
}
