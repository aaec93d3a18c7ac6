//! Refunds of captured payment orders: their ids, kinds, statuses and records, and the reads.
//! Two kinds share one table and one amount limit: a customer's refund of a booked order, and
//! the saga's reversal (compensation) of a capture it could not book. The request (which
//! reserves part of the captured amount) is in `refund_requests.rs`; the completion (bookings in
//! the same transaction as the status change) and the failure (which frees the amount again)
//! in `refund_bookings.rs`.
//!
//! Every write first locks the order's row (a no-op UPDATE, which takes the row lock on
//! PostgreSQL; SQLite's `BEGIN IMMEDIATE` already serializes writers), so concurrent refunds of
//! one order are checked against each other and can never exceed what was captured.

use crate::orders::lock_order;
use crate::records::corrupt;
use crate::{Store, StoreError};
use payments_domain::{Currency, Money, PaymentOrderId};
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

/// Id of an order's reversal (the saga's compensation; at most one per order).
pub fn reversal_refund_id(order: &PaymentOrderId) -> RefundId {
    // An order id is at most 64 visible ASCII characters, so this always fits.
    RefundId(format!("{order}:reversal"))
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

/// Whose refund it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundKind {
    /// A customer's (or operator's) refund of a captured order booked in wallet and ledger.
    Refund,
    /// The saga's compensation of a capture whose wallet credit or ledger post failed
    /// permanently: returns everything still refundable and moves the order to REVERSED.
    Reversal,
}

impl RefundKind {
    /// The stored form (`refund.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            RefundKind::Refund => "refund",
            RefundKind::Reversal => "reversal",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "refund" => Some(RefundKind::Refund),
            "reversal" => Some(RefundKind::Reversal),
            _ => None,
        }
    }
}

impl fmt::Display for RefundKind {
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
    /// Customer refund or the saga's reversal.
    pub kind: RefundKind,
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
    /// The Idempotency-Key of the request that created it, if it had one.
    pub client_key: Option<String>,
    /// Its workflow is known to exist; false: the start may have been lost.
    pub workflow_started: bool,
}

pub(crate) const REFUND_COLUMNS: &str = "refund_id, payment_order_id, kind, amount_minor, currency, reason, status, \
    psp_refund_reference, failure_code, created_at_ms, updated_at_ms, client_key, \
    CASE WHEN workflow_started_at_ms IS NULL THEN 0 ELSE 1 END AS workflow_started";

impl RefundRecord {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let id: String = row.try_get("refund_id")?;
        let what = format!("refund {id}");
        let currency: String = row.try_get("currency")?;
        let currency = Currency::parse(&currency).map_err(|e| corrupt(&what, e))?;
        let status: String = row.try_get("status")?;
        let kind: String = row.try_get("kind")?;
        Ok(RefundRecord {
            payment_order_id: PaymentOrderId::parse(row.try_get::<String, _>("payment_order_id")?)
                .map_err(|e| corrupt(&what, e))?,
            kind: RefundKind::parse(&kind).ok_or_else(|| corrupt(&what, format!("kind {kind}")))?,
            amount: Money::positive_from_minor(row.try_get("amount_minor")?, currency)
                .map_err(|e| corrupt(&what, e))?,
            reason: row.try_get("reason")?,
            status: RefundStatus::parse(&status).ok_or_else(|| corrupt(&what, format!("status {status}")))?,
            psp_refund_reference: row.try_get("psp_refund_reference")?,
            failure_code: row.try_get("failure_code")?,
            created_at_ms: row.try_get("created_at_ms")?,
            updated_at_ms: row.try_get("updated_at_ms")?,
            client_key: row.try_get("client_key")?,
            workflow_started: crate::records::flag(row, "workflow_started")?,
            refund_id: RefundId::parse(id.clone()).map_err(|e| corrupt(&what, e))?,
        })
    }
}

impl Store {
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

/// Reads a refund, locks its order, and reads the refund again: the second read sees whatever
/// a concurrent writer committed before we got the lock.
pub(crate) async fn load_locked(tx: &mut Transaction<'static, Any>, id: &RefundId) -> Result<RefundRecord, StoreError> {
    let first = load_refund(tx, id).await?.ok_or_else(|| StoreError::NotFound(format!("refund {id}")))?;
    lock_order(tx, &first.payment_order_id).await?;
    load_refund(tx, id).await?.ok_or_else(|| StoreError::NotFound(format!("refund {id}")))
}

pub(crate) async fn load_refund(
    tx: &mut Transaction<'static, Any>,
    id: &RefundId,
) -> Result<Option<RefundRecord>, StoreError> {
    let row = sqlx::query(&format!("SELECT {REFUND_COLUMNS} FROM refund WHERE refund_id = $1"))
        .bind(id.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(RefundRecord::from_row).transpose()
}

/// Compare-and-set from REQUESTED (the order lock makes a lost race impossible; the guard keeps
/// it that way if the locking ever changes).
pub(crate) async fn update_status(
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
