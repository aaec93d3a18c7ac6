//! Dead letters: saga steps that failed permanently, parked for an operator. A dead letter is
//! OPEN while it waits, RETRYING once an operator asked the workflow to try the step again,
//! and RESOLVED when the retry succeeded ([`Store::close_dead_letter_retried`]) or an operator
//! settled it by hand ([`Store::resolve_dead_letter`]). A retry that fails again re-opens it.
//!
//! Every change is a compare-and-set on the status read in the same write transaction, so two
//! writers never both apply a change from the same state (the loser gets a retryable error).

use crate::{Store, StoreError, now_ms};
use payments_domain::CheckoutId;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::fmt;

/// Longest dead letter id, workflow id, subject or step, in bytes.
pub const DEAD_LETTER_ID_LEN_MAX: usize = 512;
/// Longest reason or last error kept, in bytes; longer texts are cut (an error chain must never
/// keep its dead letter from being recorded).
pub const DEAD_LETTER_TEXT_BYTES_MAX: usize = 4096;
/// Longest operator name, in bytes.
pub const DEAD_LETTER_OPERATOR_LEN_MAX: usize = 128;
/// Most rows [`Store::dead_letters`] returns in one call.
pub const DEAD_LETTERS_LIMIT_MAX: i64 = 1000;
/// `resolved_by` of a dead letter closed because the workflow's retry succeeded.
pub const DEAD_LETTER_WORKFLOW_OPERATOR: &str = "workflow";

/// Where a dead letter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeadLetterStatus {
    /// Waiting for an operator.
    Open,
    /// An operator asked the workflow to retry the step.
    Retrying,
    /// Retried successfully or settled by hand; `resolved_by` and `resolution` say how.
    Resolved,
}

impl DeadLetterStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterStatus::Open => "OPEN",
            DeadLetterStatus::Retrying => "RETRYING",
            DeadLetterStatus::Resolved => "RESOLVED",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "OPEN" => Some(DeadLetterStatus::Open),
            "RETRYING" => Some(DeadLetterStatus::Retrying),
            "RESOLVED" => Some(DeadLetterStatus::Resolved),
            _ => None,
        }
    }
}

impl fmt::Display for DeadLetterStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure to park, from the workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterDraft {
    /// Business key of the failure, e.g. `{workflow_id}:{step}:{subject}`: 1 to
    /// [`DEAD_LETTER_ID_LEN_MAX`] visible ASCII characters.
    pub dead_letter_id: String,
    /// The workflow that gave up.
    pub workflow_id: String,
    /// Its checkout, if it has one.
    pub checkout_id: Option<CheckoutId>,
    /// What failed, e.g. a payment order id.
    pub subject: String,
    /// Which step, e.g. `credit_wallet`.
    pub step: String,
    /// Why the saga gave up (e.g. `non-retryable: StoreWalletBlocked`).
    pub reason: String,
    /// The last error, as text.
    pub last_error: String,
    /// Attempts this occurrence made (zero or more).
    pub attempts: i64,
}

/// One dead letter, validated on read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterRecord {
    /// Business key.
    pub dead_letter_id: String,
    /// The workflow that gave up (from the first occurrence).
    pub workflow_id: String,
    /// Its checkout, if any.
    pub checkout_id: Option<CheckoutId>,
    /// What failed.
    pub subject: String,
    /// Which step.
    pub step: String,
    /// Why, from the latest occurrence.
    pub reason: String,
    /// The latest error.
    pub last_error: String,
    /// Attempts of every occurrence together.
    pub attempts: i64,
    /// Where it is.
    pub status: DeadLetterStatus,
    /// Who resolved it (an operator, or `workflow`); set exactly when RESOLVED.
    pub resolved_by: Option<String>,
    /// How it was resolved; set exactly when RESOLVED.
    pub resolution: Option<String>,
    /// First occurrence.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

const COLUMNS: &str = "dead_letter_id, workflow_id, checkout_id, subject, step, reason, last_error, attempts, \
    status, resolved_by, resolution, created_at_ms, updated_at_ms";

impl DeadLetterRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let id: String = row.try_get("dead_letter_id")?;
        let bad = |detail: String| StoreError::Corrupt(format!("dead letter {id}: {detail}"));
        let status: String = row.try_get("status")?;
        let status = DeadLetterStatus::parse(&status).ok_or_else(|| bad(format!("status {status}")))?;
        let checkout_id: Option<String> = row.try_get("checkout_id")?;
        let record = DeadLetterRecord {
            workflow_id: row.try_get("workflow_id")?,
            checkout_id: checkout_id.map(CheckoutId::parse).transpose().map_err(|e| bad(e.to_string()))?,
            subject: row.try_get("subject")?,
            step: row.try_get("step")?,
            reason: row.try_get("reason")?,
            last_error: row.try_get("last_error")?,
            attempts: row.try_get("attempts")?,
            status,
            resolved_by: row.try_get("resolved_by")?,
            resolution: row.try_get("resolution")?,
            created_at_ms: row.try_get("created_at_ms")?,
            updated_at_ms: row.try_get("updated_at_ms")?,
            dead_letter_id: id.clone(),
        };
        check_id("dead letter id", &record.dead_letter_id).map_err(|e| bad(e.to_string()))?;
        if record.workflow_id.is_empty() || record.subject.is_empty() || record.step.is_empty() {
            return Err(bad("empty workflow id, subject or step".into()));
        }
        if record.attempts < 0 {
            return Err(bad(format!("attempts {}", record.attempts)));
        }
        let resolved = record.resolved_by.is_some() && record.resolution.is_some();
        if resolved != (status == DeadLetterStatus::Resolved) {
            return Err(bad(format!("status {status} with resolved_by {:?}", record.resolved_by)));
        }
        Ok(record)
    }
}

impl Store {
    /// Parks a failure: a new dead letter is stored OPEN. An existing one that is RETRYING or
    /// RESOLVED is re-opened (the retried step failed again): attempts = stored + the draft's,
    /// reason and last error from the draft, resolution cleared; workflow, checkout, subject and
    /// step stay those of the first occurrence. One that is OPEN already is answered unchanged,
    /// so a retried activity that records the same occurrence twice does not count its attempts
    /// twice. Invalid drafts are [`StoreError::Precondition`].
    pub async fn open_dead_letter(&self, draft: &DeadLetterDraft) -> Result<DeadLetterRecord, StoreError> {
        check_draft(draft)?;
        let reason = cut(&draft.reason);
        let last_error = cut(&draft.last_error);
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let inserted = sqlx::query(&format!(
            "INSERT INTO dead_letter ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'OPEN', NULL, NULL, $9, $9) \
             ON CONFLICT (dead_letter_id) DO NOTHING"
        ))
        .bind(draft.dead_letter_id.as_str())
        .bind(draft.workflow_id.as_str())
        .bind(draft.checkout_id.as_ref().map(|c| c.as_str().to_owned()))
        .bind(draft.subject.as_str())
        .bind(draft.step.as_str())
        .bind(reason)
        .bind(last_error)
        .bind(draft.attempts)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let current = load_existing(&mut tx, &draft.dead_letter_id).await?;
        if inserted || current.status == DeadLetterStatus::Open {
            tx.commit().await?;
            if inserted {
                tracing::warn!(id = %current.dead_letter_id, step = %current.step, subject = %current.subject,
                    reason = %current.reason, "dead letter opened");
            }
            return Ok(current);
        }
        let attempts = current.attempts.checked_add(draft.attempts).ok_or_else(|| {
            StoreError::Precondition(format!("dead letter {}: attempts overflow", current.dead_letter_id))
        })?;
        let updated = sqlx::query(
            "UPDATE dead_letter SET status = 'OPEN', attempts = $1, reason = $2, last_error = $3, \
             resolved_by = NULL, resolution = NULL, updated_at_ms = $4 WHERE dead_letter_id = $5 AND status = $6",
        )
        .bind(attempts)
        .bind(reason)
        .bind(last_error)
        .bind(now)
        .bind(current.dead_letter_id.as_str())
        .bind(current.status.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        changed_concurrently(updated, &current.dead_letter_id)?;
        let record = load_existing(&mut tx, &draft.dead_letter_id).await?;
        tx.commit().await?;
        tracing::warn!(id = %record.dead_letter_id, attempts, "dead letter re-opened");
        Ok(record)
    }

    /// One dead letter.
    pub async fn dead_letter(&self, id: &str) -> Result<Option<DeadLetterRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM dead_letter WHERE dead_letter_id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(DeadLetterRecord::from_row).transpose()
    }

    /// Dead letters, oldest first, all or those in `status`: at most `limit` (1 or more; more
    /// than [`DEAD_LETTERS_LIMIT_MAX`] is capped to it).
    pub async fn dead_letters(
        &self,
        status: Option<DeadLetterStatus>,
        limit: i64,
    ) -> Result<Vec<DeadLetterRecord>, StoreError> {
        if limit < 1 {
            return Err(StoreError::Precondition(format!("dead letter limit {limit}: must be at least 1")));
        }
        let limit = limit.min(DEAD_LETTERS_LIMIT_MAX);
        let rows = match status {
            Some(status) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM dead_letter WHERE status = $1 \
                     ORDER BY created_at_ms, dead_letter_id LIMIT $2"
                ))
                .bind(status.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM dead_letter ORDER BY created_at_ms, dead_letter_id LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(DeadLetterRecord::from_row).collect()
    }

    /// OPEN -> RETRYING: `operator` asked the workflow to retry the step (logged; the table
    /// keeps only who resolved). RETRYING or RESOLVED is answered unchanged; a missing id is
    /// [`StoreError::NotFound`].
    pub async fn mark_dead_letter_retrying(&self, id: &str, operator: &str) -> Result<DeadLetterRecord, StoreError> {
        check_operator(operator)?;
        let record = self.change(id, DeadLetterStatus::Retrying, None).await?;
        tracing::info!(id, operator, status = %record.status, "dead letter retry requested");
        Ok(record)
    }

    /// OPEN or RETRYING -> RESOLVED by `operator` with `resolution` (1 to
    /// [`DEAD_LETTER_TEXT_BYTES_MAX`] bytes). RESOLVED is answered unchanged; a missing id is
    /// [`StoreError::NotFound`].
    pub async fn resolve_dead_letter(
        &self,
        id: &str,
        operator: &str,
        resolution: &str,
    ) -> Result<DeadLetterRecord, StoreError> {
        check_operator(operator)?;
        if resolution.trim().is_empty() || resolution.len() > DEAD_LETTER_TEXT_BYTES_MAX {
            return Err(StoreError::Precondition(format!(
                "resolution must be 1 to {DEAD_LETTER_TEXT_BYTES_MAX} bytes"
            )));
        }
        self.change(id, DeadLetterStatus::Resolved, Some((operator, resolution))).await
    }

    /// The workflow's retry of the step succeeded: a dead letter that is not RESOLVED becomes
    /// RESOLVED by `workflow` ("retry succeeded"); a RESOLVED one is answered unchanged. `None`
    /// when there is no such dead letter (the step never failed permanently).
    pub async fn close_dead_letter_retried(&self, id: &str) -> Result<Option<DeadLetterRecord>, StoreError> {
        match self
            .change(id, DeadLetterStatus::Resolved, Some((DEAD_LETTER_WORKFLOW_OPERATOR, "retry succeeded")))
            .await
        {
            Ok(record) => Ok(Some(record)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Moves a dead letter forward to `to` (RETRYING from OPEN; RESOLVED from OPEN or RETRYING,
    /// with who and how). A dead letter at `to` or beyond is answered unchanged.
    async fn change(
        &self,
        id: &str,
        to: DeadLetterStatus,
        resolved: Option<(&str, &str)>,
    ) -> Result<DeadLetterRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let current = load(&mut tx, id).await?.ok_or_else(|| StoreError::NotFound(format!("dead letter {id}")))?;
        let forward = match to {
            DeadLetterStatus::Retrying => current.status == DeadLetterStatus::Open,
            DeadLetterStatus::Resolved => current.status != DeadLetterStatus::Resolved,
            DeadLetterStatus::Open => false,
        };
        if !forward {
            tx.rollback().await?;
            return Ok(current);
        }
        let updated = sqlx::query(
            "UPDATE dead_letter SET status = $1, resolved_by = $2, resolution = $3, updated_at_ms = $4 \
             WHERE dead_letter_id = $5 AND status = $6",
        )
        .bind(to.as_str())
        .bind(resolved.map(|(by, _)| by))
        .bind(resolved.map(|(_, how)| how))
        .bind(now_ms())
        .bind(id)
        .bind(current.status.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        changed_concurrently(updated, id)?;
        let record = load_existing(&mut tx, id).await?;
        tx.commit().await?;
        Ok(record)
    }
}

async fn load(tx: &mut Transaction<'static, Any>, id: &str) -> Result<Option<DeadLetterRecord>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM dead_letter WHERE dead_letter_id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(DeadLetterRecord::from_row).transpose()
}

async fn load_existing(tx: &mut Transaction<'static, Any>, id: &str) -> Result<DeadLetterRecord, StoreError> {
    load(tx, id).await?.ok_or_else(|| StoreError::NotFound(format!("dead letter {id}")))
}

/// A compare-and-set that matched no row lost a race: retryable, the caller sees the new state.
fn changed_concurrently(updated: u64, id: &str) -> Result<(), StoreError> {
    if updated != 1 {
        return Err(StoreError::Database(sqlx::Error::Protocol(format!("dead letter {id} changed concurrently"))));
    }
    Ok(())
}

fn check_id(what: &str, s: &str) -> Result<(), StoreError> {
    if s.is_empty() || s.len() > DEAD_LETTER_ID_LEN_MAX || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(StoreError::Precondition(format!(
            "{what} must be 1 to {DEAD_LETTER_ID_LEN_MAX} visible ASCII characters"
        )));
    }
    Ok(())
}

fn check_draft(draft: &DeadLetterDraft) -> Result<(), StoreError> {
    check_id("dead letter id", &draft.dead_letter_id)?;
    for (what, value) in [("workflow id", &draft.workflow_id), ("subject", &draft.subject), ("step", &draft.step)] {
        if value.trim().is_empty() || value.len() > DEAD_LETTER_ID_LEN_MAX {
            return Err(StoreError::Precondition(format!(
                "dead letter {what} must be 1 to {DEAD_LETTER_ID_LEN_MAX} bytes"
            )));
        }
    }
    if draft.attempts < 0 {
        return Err(StoreError::Precondition(format!("dead letter attempts {} < 0", draft.attempts)));
    }
    Ok(())
}

fn check_operator(operator: &str) -> Result<(), StoreError> {
    if operator.trim().is_empty() || operator.len() > DEAD_LETTER_OPERATOR_LEN_MAX {
        return Err(StoreError::Precondition(format!("operator must be 1 to {DEAD_LETTER_OPERATOR_LEN_MAX} bytes")));
    }
    Ok(())
}

/// At most [`DEAD_LETTER_TEXT_BYTES_MAX`] bytes, cut at a character boundary.
fn cut(text: &str) -> &str {
    if text.len() <= DEAD_LETTER_TEXT_BYTES_MAX {
        return text;
    }
    let mut end = DEAD_LETTER_TEXT_BYTES_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long texts are cut to the limit without splitting a character.
    #[test]
    fn cut_respects_the_limit_and_characters() {
        let ascii = "x".repeat(DEAD_LETTER_TEXT_BYTES_MAX + 10);
        assert_eq!(cut(&ascii).len(), DEAD_LETTER_TEXT_BYTES_MAX);
        let wide = "é".repeat(DEAD_LETTER_TEXT_BYTES_MAX); // two bytes each
        let c = cut(&wide);
        assert!(c.len() <= DEAD_LETTER_TEXT_BYTES_MAX && c.len() >= DEAD_LETTER_TEXT_BYTES_MAX - 1);
        assert_eq!(cut("short"), "short");
    }
}
