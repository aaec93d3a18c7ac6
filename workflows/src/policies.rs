//! Every retry policy and timeout of the workflows, in one place. Activities are local
//! activities: they run inside the worker that runs the workflow task and are recorded as
//! markers, which keeps a checkout to a couple of server round trips (the dev server's CPU is
//! the throughput limit). Each still retries with exponential backoff; backoffs longer than
//! the local retry threshold become durable timers.

use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::LocalActivityOptions;

/// Failure type names that must never be retried (set by the `activities` crate).
pub mod failure_types {
    /// The PSP refused the request as malformed: retrying sends the same bad request.
    pub const PSP_INVALID_REQUEST: &str = "PspInvalidRequest";
    /// Our PSP credentials were refused: an operator must fix the configuration.
    pub const PSP_AUTHENTICATION: &str = "PspAuthentication";
    /// The PSP refused the idempotency key (same key, different request): a bug, not a fault.
    pub const PSP_IDEMPOTENCY: &str = "PspIdempotencyMismatch";
    /// A status transition the lifecycle forbids.
    pub const STORE_INVALID_TRANSITION: &str = "StoreInvalidTransition";
    /// A precondition of a store step does not hold (e.g. crediting an unpaid order).
    pub const STORE_PRECONDITION: &str = "StorePrecondition";
    /// A stored row failed validation.
    pub const STORE_CORRUPT: &str = "StoreCorrupt";
    /// A referenced row does not exist.
    pub const STORE_NOT_FOUND: &str = "StoreNotFound";
}

/// Exponential backoff: `initial_ms`, doubling, capped at `max_interval_ms`, at most
/// `attempts_max` attempts in all.
fn retry(
    initial_ms: u64,
    max_interval_ms: u64,
    attempts_max: u32,
    non_retryable: &[&str],
) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(Duration::from_millis(initial_ms))
        .backoff_coefficient(2.0)
        .maximum_interval(Duration::from_millis(max_interval_ms))
        .maximum_attempts(attempts_max)
        .non_retryable_error_types(non_retryable.iter().copied())
        .build()
}

/// Risk check: pure rules over configuration; a failure is a bug or a config problem, so a few
/// quick attempts are enough before the checkout fails visibly.
pub fn risk() -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(retry(200, 5_000, 5, &[]))
        .build()
}

/// PSP charge: 30 s per attempt (card networks answer within seconds; a slower answer is
/// treated as unknown and retried with the same idempotency key), exponential backoff from
/// 0.5 s to 60 s, 10 attempts (about 5 minutes). Invalid requests and bad credentials are not
/// retried. After the last attempt the order is UNKNOWN, never FAILED: money may have moved.
pub fn psp_charge() -> LocalActivityOptions {
    use failure_types::*;
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(
            500,
            60_000,
            10,
            &[PSP_INVALID_REQUEST, PSP_AUTHENTICATION, PSP_IDEMPOTENCY],
        ))
        .build()
}

/// Database steps (status, wallet, ledger): 10 s per attempt, backoff 0.1 s to 30 s, 30
/// attempts (about 12 minutes) to ride out a database failover. Violated invariants are not
/// retried: they need a human.
pub fn store_step() -> LocalActivityOptions {
    use failure_types::*;
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(retry(
            100,
            30_000,
            30,
            &[
                STORE_INVALID_TRANSITION,
                STORE_PRECONDITION,
                STORE_CORRUPT,
                STORE_NOT_FOUND,
            ],
        ))
        .build()
}
