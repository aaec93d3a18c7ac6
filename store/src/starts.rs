//! The transactional outbox of workflow starts. A checkout or refund is committed first and
//! its workflow started afterwards, so a start can be lost (the gateway dies in between,
//! Temporal is unreachable). Each row records once its workflow is known to exist
//! (`workflow_started_at_ms`); the gateway's start sweep walks the rows without it, oldest
//! first, in bounded batches by keyset (`created_at_ms`, id), so every such row is reached in
//! every round however many there are, and none is ever skipped for its age.

use crate::checkouts::load_checkout;
use crate::records::CheckoutRecord;
use crate::refunds::{REFUND_COLUMNS, RefundId, RefundRecord};
use crate::{Store, StoreError, now_ms};
use payments_domain::CheckoutId;
use sqlx::Row;

/// Largest batch the sweep may ask for at once.
pub const START_BATCH_MAX: i64 = 500;

/// Where a sweep round stands: the last row it saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartCursor {
    /// The last row's creation time.
    pub created_at_ms: i64,
    /// The last row's id.
    pub id: String,
}

impl Store {
    /// Records that the checkout's workflow exists (or that it needs none). Idempotent.
    pub async fn mark_checkout_started(&self, id: &CheckoutId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE payment_event SET workflow_started_at_ms = $1 \
             WHERE checkout_id = $2 AND workflow_started_at_ms IS NULL",
        )
        .bind(now_ms())
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Up to `limit` (at most [`START_BATCH_MAX`]) checkouts created at or before
    /// `created_before_ms` whose workflow is not known to exist, oldest first, after `after`.
    pub async fn unstarted_checkouts(
        &self,
        created_before_ms: i64,
        after: Option<&StartCursor>,
        limit: i64,
    ) -> Result<Vec<CheckoutRecord>, StoreError> {
        let (after_ms, after_id) = after.map_or((i64::MIN, String::new()), |c| (c.created_at_ms, c.id.clone()));
        let ids = sqlx::query(
            "SELECT checkout_id FROM payment_event WHERE workflow_started_at_ms IS NULL \
             AND created_at_ms <= $1 AND (created_at_ms > $2 OR (created_at_ms = $2 AND checkout_id > $3)) \
             ORDER BY created_at_ms, checkout_id LIMIT $4",
        )
        .bind(created_before_ms)
        .bind(after_ms)
        .bind(after_id)
        .bind(limit.clamp(1, START_BATCH_MAX))
        .fetch_all(&self.pool)
        .await?;
        let mut records = Vec::with_capacity(ids.len());
        for row in ids {
            let id: String = row.try_get("checkout_id")?;
            let id = CheckoutId::parse(id.clone()).map_err(|e| StoreError::Corrupt(format!("checkout {id}: {e}")))?;
            let mut tx = self.pool.begin().await?;
            let record = load_checkout(&mut tx, &id).await?;
            tx.commit().await?;
            records.extend(record);
        }
        Ok(records)
    }

    /// Records that the refund's workflow exists. Idempotent.
    pub async fn mark_refund_started(&self, id: &RefundId) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE refund SET workflow_started_at_ms = $1 WHERE refund_id = $2 AND workflow_started_at_ms IS NULL",
        )
        .bind(now_ms())
        .bind(id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Up to `limit` (at most [`START_BATCH_MAX`]) customer refunds created at or before
    /// `created_before_ms` whose workflow is not known to exist, oldest first, after `after`.
    /// (A reversal runs inside its checkout's workflow and never needs a start.)
    pub async fn unstarted_refunds(
        &self,
        created_before_ms: i64,
        after: Option<&StartCursor>,
        limit: i64,
    ) -> Result<Vec<RefundRecord>, StoreError> {
        let (after_ms, after_id) = after.map_or((i64::MIN, String::new()), |c| (c.created_at_ms, c.id.clone()));
        sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refund WHERE workflow_started_at_ms IS NULL AND kind = 'refund' \
             AND created_at_ms <= $1 AND (created_at_ms > $2 OR (created_at_ms = $2 AND refund_id > $3)) \
             ORDER BY created_at_ms, refund_id LIMIT $4"
        ))
        .bind(created_before_ms)
        .bind(after_ms)
        .bind(after_id)
        .bind(limit.clamp(1, START_BATCH_MAX))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(RefundRecord::from_row)
        .collect()
    }
}
