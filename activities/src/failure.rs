//! Classifying errors once, as Temporal application failures. A type name lets the workflow
//! and the retry policy tell faults apart; `non_retryable` stops retries for errors that a
//! retry cannot fix.

use std::time::Duration;
use temporalio_common::error::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;

/// A retryable failure; `next_retry_delay` overrides the backoff (e.g. a PSP's Retry-After).
pub fn retryable(type_name: &str, message: impl Into<String>, next_retry_delay: Option<Duration>) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(message.into())
            .type_name(type_name.to_owned())
            .maybe_next_retry_delay(next_retry_delay)
            .build(),
    )
}

/// A failure no retry can fix.
pub fn non_retryable(type_name: &str, message: impl Into<String>) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(message.into()).type_name(type_name.to_owned()).non_retryable(true).build(),
    )
}

/// Store errors: database faults are retried, facts about the data are not.
pub fn from_store(err: payments_store::StoreError) -> ActivityError {
    if err.is_retryable() {
        tracing::warn!(error = %err, "store step failed; will retry");
        retryable(err.type_name(), err.to_string(), None)
    } else {
        tracing::error!(error = %err, "store step failed permanently");
        non_retryable(err.type_name(), err.to_string())
    }
}
