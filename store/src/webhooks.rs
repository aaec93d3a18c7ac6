//! Durable deduplication of PSP webhooks: each (psp, event id) is recorded once, before the
//! PSP is told 2xx; whether the workflow was signaled is tracked so a redelivery of an event
//! that was recorded but not yet delivered to the workflow tries again.

use crate::{Store, StoreError, is_unique_violation, now_ms};
use sqlx::Row;

/// Longest stored webhook payload; PSP events are a few KiB.
pub const WEBHOOK_PAYLOAD_BYTES_MAX: usize = 256 * 1024;

/// What recording an event found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookRecord {
    /// First delivery: recorded now.
    New,
    /// Seen before, but the workflow was not told yet.
    Pending,
    /// Seen before and fully handled: nothing to do.
    Done,
}

/// One webhook to record.
#[derive(Debug, Clone)]
pub struct WebhookEvent<'a> {
    /// `stripe` or `toss`.
    pub psp: &'a str,
    /// The PSP's event id (or a key derived from the event for PSPs without one).
    pub event_id: &'a str,
    /// Event type.
    pub event_type: &'a str,
    /// The checkout it concerns, when known.
    pub checkout_id: Option<&'a str>,
    /// Raw body.
    pub payload: &'a str,
}

impl Store {
    /// Records a webhook once per (psp, event id).
    pub async fn record_webhook(&self, e: &WebhookEvent<'_>) -> Result<WebhookRecord, StoreError> {
        if e.payload.len() > WEBHOOK_PAYLOAD_BYTES_MAX {
            return Err(StoreError::Precondition(format!("webhook payload over {WEBHOOK_PAYLOAD_BYTES_MAX} bytes")));
        }
        let inserted = sqlx::query(
            "INSERT INTO webhook_event (psp, event_id, event_type, checkout_id, payload, received_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(e.psp.to_owned())
        .bind(e.event_id.to_owned())
        .bind(e.event_type.to_owned())
        .bind(e.checkout_id.map(str::to_owned))
        .bind(e.payload.to_owned())
        .bind(now_ms())
        .execute(&self.pool)
        .await;
        match inserted {
            Ok(_) => Ok(WebhookRecord::New),
            Err(err) if is_unique_violation(&err) => {
                let row = sqlx::query("SELECT signaled_at_ms FROM webhook_event WHERE psp = $1 AND event_id = $2")
                    .bind(e.psp.to_owned())
                    .bind(e.event_id.to_owned())
                    .fetch_one(&self.pool)
                    .await?;
                let signaled: Option<i64> = row.try_get("signaled_at_ms")?;
                Ok(if signaled.is_some() { WebhookRecord::Done } else { WebhookRecord::Pending })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Deletes webhook events received before `before_ms` (their PSP no longer redelivers
    /// them); answers how many.
    pub async fn purge_webhook_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM webhook_event WHERE received_at_ms < $1")
            .bind(before_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }

    /// Marks a recorded webhook handled, with what became of it (signaled, workflow finished,
    /// unknown checkout...).
    pub async fn finish_webhook(&self, psp: &str, event_id: &str, outcome: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE webhook_event SET signaled_at_ms = $1, outcome = $2 WHERE psp = $3 AND event_id = $4")
            .bind(now_ms())
            .bind(outcome.to_owned())
            .bind(psp.to_owned())
            .bind(event_id.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many times an event id was recorded (always 0 or 1), and its outcome.
    pub async fn webhook_outcome(&self, psp: &str, event_id: &str) -> Result<Option<Option<String>>, StoreError> {
        let row = sqlx::query("SELECT outcome FROM webhook_event WHERE psp = $1 AND event_id = $2")
            .bind(psp.to_owned())
            .bind(event_id.to_owned())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<Option<String>, _>("outcome")).transpose().map_err(Into::into)
    }
}
