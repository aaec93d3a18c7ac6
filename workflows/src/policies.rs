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
    /// The request reached the PSP (or may have) but no answer came back: a timeout or a
    /// dropped connection. Not retried blindly: the workflow asks the PSP for the outcome.
    pub const PSP_OUTCOME_UNKNOWN: &str = "PspOutcomeUnknown";
    /// A status transition the lifecycle forbids.
    pub const STORE_INVALID_TRANSITION: &str = "StoreInvalidTransition";
    /// A precondition of a store step does not hold (e.g. crediting an unpaid order).
    pub const STORE_PRECONDITION: &str = "StorePrecondition";
    /// A stored row failed validation.
    pub const STORE_CORRUPT: &str = "StoreCorrupt";
    /// A referenced row does not exist.
    pub const STORE_NOT_FOUND: &str = "StoreNotFound";
    /// A refund larger than what is left to refund.
    pub const STORE_REFUND_TOO_LARGE: &str = "StoreRefundTooLarge";
    /// The seller's wallet is blocked by an operator: the captured payment is given back.
    pub const STORE_WALLET_BLOCKED: &str = "StoreWalletBlocked";
    /// The PSP refused to give back a captured payment (the saga's compensation).
    pub const PSP_REFUND_REFUSED: &str = "PspRefundRefused";
    /// The payment the PSP found under our reference is not ours (another order id, amount or
    /// currency): never booked as a capture; an operator looks at it.
    pub const PSP_PAYMENT_MISMATCH: &str = "PspPaymentMismatch";
}

/// Exponential backoff: `initial_ms`, doubling, capped at `max_interval_ms`, at most
/// `attempts_max` attempts in all.
fn retry(initial_ms: u64, max_interval_ms: u64, attempts_max: u32, non_retryable: &[&str]) -> RetryPolicy {
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

/// PSP charge: 30 s per attempt (the adapters time out first, at 20 s), exponential backoff
/// from 0.5 s to 60 s (or the PSP's Retry-After), 10 attempts (about 5 minutes). Retried:
/// connection refused, 429, 5xx, all with the same idempotency key. Not retried: invalid
/// requests, bad credentials, and a request whose answer was lost (timeout, dropped
/// connection): for that one the workflow asks the PSP what happened before anything else.
/// After the last attempt the order is UNKNOWN, never FAILED: money may have moved.
/// `attempts_max` comes from the checkout's [`crate::messages::WaitLimits`].
pub fn psp_charge(attempts_max: u32) -> LocalActivityOptions {
    use failure_types::*;
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(
            500,
            60_000,
            attempts_max,
            &[PSP_INVALID_REQUEST, PSP_AUTHENTICATION, PSP_IDEMPOTENCY, PSP_OUTCOME_UNKNOWN],
        ))
        .build()
}

/// PSP status query: read-only, so retried freely: 30 s per attempt, backoff 0.5 s to 60 s,
/// `attempts_max` attempts. Bad credentials and invalid requests are not retried.
pub fn psp_lookup(attempts_max: u32) -> LocalActivityOptions {
    use failure_types::*;
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(500, 60_000, attempts_max, &[PSP_AUTHENTICATION, PSP_INVALID_REQUEST]))
        .build()
}

/// PSP refund: 30 s per attempt, backoff 0.5 s to 60 s, `attempts_max` attempts. Unlike a
/// charge, a refund whose answer was lost is simply sent again: the refund id is its
/// idempotency key, so the PSP answers the first refund instead of making a second one. Not
/// retried: invalid requests, bad credentials, key misuse. When the attempts run out the refund
/// becomes a dead letter (an operator retries it once the PSP is back).
pub fn psp_refund(attempts_max: u32) -> LocalActivityOptions {
    use failure_types::*;
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(500, 60_000, attempts_max, &[PSP_INVALID_REQUEST, PSP_AUTHENTICATION, PSP_IDEMPOTENCY]))
        .build()
}

/// Payout provider calls (send, status, cancel): 30 s per attempt, backoff 0.5 s to 60 s,
/// `attempts_max` attempts. A send whose answer was lost is looked up and sent again by the
/// activity itself: the payout id is the provider's idempotency key and reference, so the
/// provider answers the first payout instead of making a second. Not retried: bad credentials,
/// key misuse; when the attempts run out the payout parks as a dead letter.
pub fn payout_provider(attempts_max: u32) -> LocalActivityOptions {
    use failure_types::*;
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(30))
        .retry_policy(retry(500, 60_000, attempts_max, &[PSP_INVALID_REQUEST, PSP_AUTHENTICATION, PSP_IDEMPOTENCY]))
        .build()
}

/// How many times a charge whose answer was lost is resolved by a status query and, when the
/// PSP never saw it, sent again with the same idempotency key, before the order is left
/// UNKNOWN for the reconciliation janitor.
pub const CHARGE_ROUNDS_MAX: u32 = 5;

/// Attempts of one run of a database step by default (see [`store_step`]).
pub const STORE_ATTEMPTS_MAX: u32 = 30;

/// Database steps (status, wallet, ledger, refunds, dead-letter records): 10 s per attempt,
/// backoff 0.1 s to 30 s, `attempts_max` attempts per run (30 by default: about 12 minutes,
/// a failover's worth). Violated invariants are not retried: they need a human. When a run's
/// attempts are spent on faults, the workflow waits [`store_rerun_delay`] and runs the step
/// again (`persist.rs`): no outage ends a workflow.
pub fn store_step(attempts_max: u32) -> LocalActivityOptions {
    use failure_types::*;
    LocalActivityOptions::builder()
        .start_to_close_timeout(Duration::from_secs(10))
        .retry_policy(retry(
            100,
            30_000,
            attempts_max.max(1),
            &[
                STORE_INVALID_TRANSITION,
                STORE_PRECONDITION,
                STORE_CORRUPT,
                STORE_NOT_FOUND,
                STORE_REFUND_TOO_LARGE,
                STORE_WALLET_BLOCKED,
            ],
        ))
        .build()
}

/// First wait before a database step whose run spent its attempts on faults runs again.
pub const STORE_RERUN_DELAY_MIN_SECS: u64 = 1;
/// Longest such wait: a recovered database is noticed within five minutes, and a week-long
/// outage costs a few thousand history events, far below Temporal's limits.
pub const STORE_RERUN_DELAY_MAX_SECS: u64 = 300;

/// The wait before the `round`-th re-run (0-based) of a database step: doubling from
/// [`STORE_RERUN_DELAY_MIN_SECS`], capped at [`STORE_RERUN_DELAY_MAX_SECS`].
pub fn store_rerun_delay(round: u32) -> Duration {
    let secs = STORE_RERUN_DELAY_MIN_SECS.saturating_mul(1u64 << round.min(16));
    Duration::from_secs(secs.min(STORE_RERUN_DELAY_MAX_SECS))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Re-runs of a database step wait 1, 2, 4, ... seconds, never more than five minutes.
    #[test]
    fn rerun_delays_double_up_to_the_cap() {
        let delays: Vec<u64> = (0..12).map(|r| store_rerun_delay(r).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(store_rerun_delay(u32::MAX).as_secs(), 300);
    }
}
