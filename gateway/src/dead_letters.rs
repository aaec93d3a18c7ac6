//! Operators' side of dead letters (saga steps parked for an operator): listing them from the
//! store, and retrying or resolving one through its workflow's `dead_letter` update (both the
//! checkout and the refund workflow have it, with the same name and argument).
//!
//! Actions are idempotent: a RESOLVED dead letter is answered unchanged, and an action the
//! workflow's validator refuses (already acted on, no longer open there) answers the stored
//! row as it is.

use crate::error::ApiError;
use crate::service::{PaymentsService, is_finished};
use payments_store::{
    DEAD_LETTER_ID_LEN_MAX, DEAD_LETTER_OPERATOR_LEN_MAX, DEAD_LETTER_TEXT_BYTES_MAX, DEAD_LETTERS_LIMIT_MAX,
    DeadLetterRecord, DeadLetterStatus,
};
use payments_workflows::messages::{DeadLetterAction, DeadLetterVerb};
use payments_workflows::{CheckoutWorkflow, RefundWorkflow};
use std::time::Duration;
use temporalio_client::WorkflowExecuteUpdateOptions;
use temporalio_client::errors::WorkflowUpdateError;

/// Dead letters listed when the caller gives no limit.
pub const DEAD_LETTERS_LIMIT_DEFAULT: u32 = 100;
/// How long a resolve waits for the workflow to close the row (it does so with a local
/// activity right after taking the update; a live worker needs milliseconds).
pub const RESOLVE_WAIT_MS: u64 = 5_000;
/// Pause between reads of the row while waiting for a resolve.
pub const RESOLVE_POLL_MS: u64 = 100;
/// Bound on delivering an action: a workflow answers its update only while a worker runs;
/// without one the call would hang until Temporal's own deadline.
pub const DEAD_LETTER_UPDATE_TIMEOUT_MS: u64 = 10_000;

/// Workflow id prefixes of the workflows that park on dead letters.
const CHECKOUT_WORKFLOW_PREFIX: &str = "checkout-";
const REFUND_WORKFLOW_PREFIX: &str = "refund-";

/// The status filter: empty = every status; else OPEN, RETRYING or RESOLVED (any case).
pub fn parse_status(status: &str) -> Result<Option<DeadLetterStatus>, ApiError> {
    let status = status.trim();
    if status.is_empty() {
        return Ok(None);
    }
    [DeadLetterStatus::Open, DeadLetterStatus::Retrying, DeadLetterStatus::Resolved]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(status))
        .map(Some)
        .ok_or_else(|| ApiError::invalid("parameter_invalid", "status", "must be OPEN, RETRYING or RESOLVED"))
}

/// The row limit: 0 = [`DEAD_LETTERS_LIMIT_DEFAULT`]; more than [`DEAD_LETTERS_LIMIT_MAX`] is
/// refused.
pub fn parse_limit(limit: u32) -> Result<i64, ApiError> {
    match i64::from(limit) {
        0 => Ok(i64::from(DEAD_LETTERS_LIMIT_DEFAULT)),
        n if n > DEAD_LETTERS_LIMIT_MAX => {
            Err(ApiError::invalid("parameter_invalid", "limit", format!("must be at most {DEAD_LETTERS_LIMIT_MAX}")))
        }
        n => Ok(n),
    }
}

/// A dead letter id: 1 to [`DEAD_LETTER_ID_LEN_MAX`] bytes.
pub fn check_id(id: &str) -> Result<(), ApiError> {
    if id.trim().is_empty() || id.len() > DEAD_LETTER_ID_LEN_MAX {
        return Err(ApiError::invalid(
            "parameter_invalid",
            "dead_letter_id",
            format!("must be 1 to {DEAD_LETTER_ID_LEN_MAX} bytes"),
        ));
    }
    Ok(())
}

/// An action's id, operator and reason: all required, within the store's limits.
pub fn check_action(id: &str, operator: &str, reason: &str) -> Result<(), ApiError> {
    check_id(id)?;
    for (param, value, max) in
        [("operator", operator, DEAD_LETTER_OPERATOR_LEN_MAX), ("reason", reason, DEAD_LETTER_TEXT_BYTES_MAX)]
    {
        if value.trim().is_empty() {
            return Err(ApiError::invalid("parameter_invalid", param, "is required"));
        }
        if value.len() > max {
            return Err(ApiError::invalid("parameter_invalid", param, format!("must be at most {max} bytes")));
        }
        crate::error::refuse_card_number(param, value)?;
    }
    Ok(())
}

impl PaymentsService {
    /// Dead letters, oldest first, all or those in `status`, at most `limit` (see [`parse_limit`]).
    pub async fn dead_letters(
        &self,
        status: Option<DeadLetterStatus>,
        limit: i64,
    ) -> Result<Vec<DeadLetterRecord>, ApiError> {
        Ok(self.store().dead_letters(status, limit).await?)
    }

    /// One dead letter; NotFound when there is none.
    pub async fn dead_letter(&self, id: &str) -> Result<DeadLetterRecord, ApiError> {
        self.store().dead_letter(id).await?.ok_or_else(|| ApiError::NotFound(format!("dead letter {id}")))
    }

    /// An operator retries or resolves a dead letter; answers the row afterwards. A retry is
    /// recorded (RETRYING) before the workflow hears of it, so the row never shows OPEN for a
    /// step that is running again. A resolve is recorded by the workflow itself once it took
    /// the action; this waits up to [`RESOLVE_WAIT_MS`] for that.
    pub async fn act_on_dead_letter(
        &self,
        id: &str,
        verb: DeadLetterVerb,
        operator: &str,
        reason: &str,
    ) -> Result<DeadLetterRecord, ApiError> {
        check_action(id, operator, reason)?;
        let row = self.dead_letter(id).await?;
        if row.status == DeadLetterStatus::Resolved {
            return Ok(row);
        }
        if verb == DeadLetterVerb::Retry {
            self.store().mark_dead_letter_retrying(id, operator).await?;
        }
        let action = DeadLetterAction {
            dead_letter_id: id.to_owned(),
            verb,
            operator: operator.to_owned(),
            reason: reason.to_owned(),
        };
        let delivery = self.deliver(&row.workflow_id, action);
        let delivered = tokio::time::timeout(Duration::from_millis(DEAD_LETTER_UPDATE_TIMEOUT_MS), delivery)
            .await
            .map_err(|_| {
                ApiError::Unavailable(format!(
                    "workflow {} did not take the action within {DEAD_LETTER_UPDATE_TIMEOUT_MS} ms (is a worker \
                     running?); repeating it is safe",
                    row.workflow_id
                ))
            })?;
        match delivered {
            Ok(_) => {}
            Err(WorkflowUpdateError::Failed(f)) => {
                // Already acted on, or not (or no longer) parked there: the row is the answer.
                tracing::info!(id, verb = ?verb, refusal = %f.message, "dead letter action refused by its workflow");
                return self.dead_letter(id).await;
            }
            Err(e) if is_finished(&e) => return self.after_workflow_finished(&row, verb, operator, reason).await,
            Err(e) => {
                return Err(ApiError::Internal(anyhow::anyhow!(
                    "dead letter {id}: {verb:?} not delivered to workflow {}: {e}",
                    row.workflow_id
                )));
            }
        }
        tracing::info!(id, verb = ?verb, operator, "dead letter action delivered");
        match verb {
            DeadLetterVerb::Retry => self.dead_letter(id).await,
            DeadLetterVerb::Resolve => self.await_resolved(id).await,
        }
    }

    /// Sends the `dead_letter` update to the workflow that parked the letter, typed by its id.
    async fn deliver(&self, workflow_id: &str, action: DeadLetterAction) -> Result<String, WorkflowUpdateError> {
        let options = WorkflowExecuteUpdateOptions::default();
        if workflow_id.starts_with(CHECKOUT_WORKFLOW_PREFIX) {
            let handle = self.temporal().get_workflow_handle::<CheckoutWorkflow>(workflow_id);
            handle.execute_update(CheckoutWorkflow::dead_letter, action, options).await
        } else if workflow_id.starts_with(REFUND_WORKFLOW_PREFIX) {
            let handle = self.temporal().get_workflow_handle::<RefundWorkflow>(workflow_id);
            handle.execute_update(RefundWorkflow::dead_letter, action, options).await
        } else {
            Err(WorkflowUpdateError::Other(format!("no known workflow type has the id {workflow_id}").into()))
        }
    }

    /// The workflow is gone (completed, terminated or never existed), so nobody else will ever
    /// act on the row: a resolve is recorded here; a retry has nothing left to run and answers
    /// the row (RETRYING, as recorded above; resolving it closes it).
    async fn after_workflow_finished(
        &self,
        row: &DeadLetterRecord,
        verb: DeadLetterVerb,
        operator: &str,
        reason: &str,
    ) -> Result<DeadLetterRecord, ApiError> {
        let id = row.dead_letter_id.as_str();
        tracing::warn!(id, workflow_id = %row.workflow_id, verb = ?verb, "dead letter's workflow has finished");
        match verb {
            DeadLetterVerb::Resolve => Ok(self.store().resolve_dead_letter(id, operator, reason).await?),
            DeadLetterVerb::Retry => self.dead_letter(id).await,
        }
    }

    /// Reads the row until it is RESOLVED or [`RESOLVE_WAIT_MS`] passed; answers the last read.
    async fn await_resolved(&self, id: &str) -> Result<DeadLetterRecord, ApiError> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(RESOLVE_WAIT_MS);
        loop {
            let row = self.dead_letter(id).await?;
            if row.status == DeadLetterStatus::Resolved || tokio::time::Instant::now() >= deadline {
                return Ok(row);
            }
            tokio::time::sleep(Duration::from_millis(RESOLVE_POLL_MS)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(e: ApiError) -> String {
        match e {
            ApiError::InvalidRequest { param, .. } => param,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    /// Empty means every status; the three statuses parse in any case; others are refused.
    #[test]
    fn status_filter() {
        assert_eq!(parse_status("").unwrap(), None);
        assert_eq!(parse_status("OPEN").unwrap(), Some(DeadLetterStatus::Open));
        assert_eq!(parse_status("retrying").unwrap(), Some(DeadLetterStatus::Retrying));
        assert_eq!(parse_status(" Resolved ").unwrap(), Some(DeadLetterStatus::Resolved));
        assert_eq!(param(parse_status("CLOSED").unwrap_err()), "status");
    }

    /// 0 means the default; up to the store's maximum is accepted; beyond it is refused.
    #[test]
    fn limits() {
        assert_eq!(parse_limit(0).unwrap(), i64::from(DEAD_LETTERS_LIMIT_DEFAULT));
        assert_eq!(parse_limit(1).unwrap(), 1);
        assert_eq!(parse_limit(1000).unwrap(), DEAD_LETTERS_LIMIT_MAX);
        assert_eq!(param(parse_limit(1001).unwrap_err()), "limit");
    }

    /// Id, operator and reason are required and bounded.
    #[test]
    fn actions() {
        assert!(check_action("po-1:psp.refund", "alice", "PSP is back").is_ok());
        assert_eq!(param(check_action("", "alice", "r").unwrap_err()), "dead_letter_id");
        assert_eq!(
            param(check_action(&"x".repeat(DEAD_LETTER_ID_LEN_MAX + 1), "a", "r").unwrap_err()),
            "dead_letter_id"
        );
        assert_eq!(param(check_action("d", " ", "r").unwrap_err()), "operator");
        assert_eq!(
            param(check_action("d", &"o".repeat(DEAD_LETTER_OPERATOR_LEN_MAX + 1), "r").unwrap_err()),
            "operator"
        );
        assert_eq!(param(check_action("d", "alice", "").unwrap_err()), "reason");
        assert_eq!(
            param(check_action("d", "alice", &"r".repeat(DEAD_LETTER_TEXT_BYTES_MAX + 1)).unwrap_err()),
            "reason"
        );
    }
}
