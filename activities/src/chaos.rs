//! Opt-in crash points for failure testing. With `PAYMENTS_CHAOS_ABORT_AFTER=<point>` the
//! worker process aborts right after that step succeeded and before the workflow recorded it:
//! the worst moments for exactly-once. Tests kill a worker there, start a new one and prove it
//! finishes with every side effect made once. Unset (the default) they do nothing.
//!
//! Points: `psp.charge` (a capture made), `psp.confirm` (a hosted payment confirmed),
//! `psp.refund` (a refund made), `psp.reversal` (a compensation's refund made), `ledger.post`
//! (an order's pay-in posted to the ledger, its wallet not yet credited), `payout.send` (a
//! payout accepted by its provider, not yet recorded).

/// Environment variable naming the point after which to abort.
pub const ABORT_AFTER_ENV: &str = "PAYMENTS_CHAOS_ABORT_AFTER";

/// Aborts the process if the chaos setting names `point`.
pub fn maybe_abort_after(point: &str) {
    if std::env::var(ABORT_AFTER_ENV).is_ok_and(|v| v == point) {
        tracing::error!(point, "{ABORT_AFTER_ENV} set: aborting the worker on purpose");
        std::process::abort();
    }
}
