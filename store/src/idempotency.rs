//! Durable Idempotency-Key records of the REST API (Stripe's rules): the first request with a
//! key claims it (`in_progress`), its final answer is stored (`done`) and replayed to every
//! retry with the same request; the same key with another request is refused. Records older
//! than [`IDEMPOTENCY_KEY_TTL_MS`] count as absent and are purged.
//!
//! The claim is one `INSERT ... ON CONFLICT DO NOTHING` backed by the primary key, so two
//! concurrent requests with one key can never both win, on either backend.

use crate::{Store, StoreError};
use sqlx::Row;

/// How long a key is kept and honoured: 24 hours, as at Stripe. Older keys may be reused.
pub const IDEMPOTENCY_KEY_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// How long an in-progress claim holds its key. A request that takes longer has died with its
/// gateway (requests are bounded by seconds of database and Temporal calls); its key becomes
/// claimable again instead of answering 409 until it expires. Re-running it is safe: the
/// checkout itself is idempotent by checkout_id.
pub const IDEMPOTENCY_CLAIM_STALE_MS: i64 = 60 * 1000;

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// The key was free (or expired): it is now claimed by this request, which must finish or
    /// release it.
    New,
    /// The same request finished before: answer with this status and body.
    Replay {
        /// The stored HTTP status.
        status: u16,
        /// The stored response body, byte for byte.
        body: String,
    },
    /// The same request is still being handled by someone else.
    InProgress,
    /// The key belongs to a different endpoint or request body.
    Mismatch,
}

/// Lifecycle of a stored key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdempotencyState {
    /// Claimed; the first request is running.
    InProgress,
    /// The first request finished; its answer is stored.
    Done,
}

impl IdempotencyState {
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "in_progress" => Ok(IdempotencyState::InProgress),
            "done" => Ok(IdempotencyState::Done),
            other => Err(StoreError::Corrupt(format!("idempotency_key.state {other:?}"))),
        }
    }
}

/// One stored key, as read back (for tools and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The client's key.
    pub key: String,
    /// `METHOD path` of the first request.
    pub endpoint: String,
    /// Hex SHA-256 of the first request.
    pub request_hash: String,
    /// Whether the first request finished.
    pub state: IdempotencyState,
    /// Stored status, once done.
    pub response_status: Option<u16>,
    /// Stored body, once done.
    pub response_body: Option<String>,
    /// When the key was claimed.
    pub created_at_ms: i64,
}

const SELECT_RECORD: &str = "SELECT key, endpoint, request_hash, state, \
    CAST(response_status AS BIGINT) AS response_status, response_body, created_at_ms \
    FROM idempotency_key WHERE key = $1";

fn record_from_row(row: &sqlx::any::AnyRow) -> Result<IdempotencyRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let status: Option<i64> = row.try_get("response_status")?;
    let response_status = status
        .map(|s| u16::try_from(s).map_err(|_| StoreError::Corrupt(format!("idempotency_key.response_status {s}"))))
        .transpose()?;
    Ok(IdempotencyRecord {
        key: row.try_get("key")?,
        endpoint: row.try_get("endpoint")?,
        request_hash: row.try_get("request_hash")?,
        state: IdempotencyState::parse(&state)?,
        response_status,
        response_body: row.try_get("response_body")?,
        created_at_ms: row.try_get("created_at_ms")?,
    })
}

impl Store {
    /// Claims `key` for a request to `endpoint` whose hash is `request_hash`, at `now_ms`.
    /// A key claimed more than [`IDEMPOTENCY_KEY_TTL_MS`] before `now_ms` counts as absent and
    /// is taken over.
    pub async fn claim_idempotency_key(
        &self,
        key: &str,
        endpoint: &str,
        request_hash: &str,
        now_ms: i64,
    ) -> Result<IdempotencyClaim, StoreError> {
        // Expired first: only rows older than the TTL go, so a fresh claim by a concurrent
        // request is never removed and the insert below stays the single arbiter.
        sqlx::query(
            "DELETE FROM idempotency_key WHERE key = $1 AND (created_at_ms < $2 \
             OR (state = 'in_progress' AND created_at_ms < $3))",
        )
        .bind(key.to_owned())
        .bind(now_ms.saturating_sub(IDEMPOTENCY_KEY_TTL_MS))
        .bind(now_ms.saturating_sub(IDEMPOTENCY_CLAIM_STALE_MS))
        .execute(&self.pool)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_key (key, endpoint, request_hash, state, created_at_ms) \
             VALUES ($1, $2, $3, 'in_progress', $4) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key.to_owned())
        .bind(endpoint.to_owned())
        .bind(request_hash.to_owned())
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(IdempotencyClaim::New);
        }
        let Some(existing) = self.idempotency_record(key).await? else {
            // Released or purged between our insert and this read: the holder gave it up, so
            // the client may retry; answering "in progress" tells it exactly that.
            return Ok(IdempotencyClaim::InProgress);
        };
        if existing.endpoint != endpoint || existing.request_hash != request_hash {
            return Ok(IdempotencyClaim::Mismatch);
        }
        match (existing.state, existing.response_status, existing.response_body) {
            (IdempotencyState::Done, Some(status), Some(body)) => Ok(IdempotencyClaim::Replay { status, body }),
            (IdempotencyState::Done, _, _) => {
                Err(StoreError::Corrupt(format!("idempotency key {key} is done without a stored answer")))
            }
            (IdempotencyState::InProgress, _, _) => Ok(IdempotencyClaim::InProgress),
        }
    }

    /// Stores the final answer of a claimed key; retries with the same request replay it.
    pub async fn finish_idempotency_key(&self, key: &str, status: u16, body: &str) -> Result<(), StoreError> {
        let updated = sqlx::query(
            "UPDATE idempotency_key SET state = 'done', response_status = $1, response_body = $2 \
             WHERE key = $3 AND state = 'in_progress'",
        )
        .bind(i64::from(status))
        .bind(body.to_owned())
        .bind(key.to_owned())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated != 1 {
            return Err(StoreError::Precondition(format!("idempotency key {key} is not claimed")));
        }
        Ok(())
    }

    /// Gives a claimed key up without storing an answer (the request failed in a way a retry
    /// may fix). A finished key is left alone.
    pub async fn release_idempotency_key(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM idempotency_key WHERE key = $1 AND state = 'in_progress'")
            .bind(key.to_owned())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes every key claimed before `before_ms`; answers how many went.
    pub async fn purge_idempotency_keys(&self, before_ms: i64) -> Result<u64, StoreError> {
        let deleted = sqlx::query("DELETE FROM idempotency_key WHERE created_at_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted)
    }

    /// The stored record of a key, if any (expired ones included until purged).
    pub async fn idempotency_record(&self, key: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let row = sqlx::query(SELECT_RECORD).bind(key.to_owned()).fetch_optional(&self.pool).await?;
        row.as_ref().map(record_from_row).transpose()
    }
}
