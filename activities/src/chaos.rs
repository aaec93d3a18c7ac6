//! An opt-in crash point for failure testing: with `PAYMENTS_CHAOS_ABORT_AFTER=psp.charge` the
//! worker process aborts right after a successful PSP capture, before the workflow has recorded
//! it, the worst moment for exactly-once. Tests use it to prove that a restarted worker finishes
//! the checkout with one capture, one wallet credit and one ledger transaction. Unset (the
//! default) it does nothing.

/// Environment variable naming the activity after which to abort.
pub const ABORT_AFTER_ENV: &str = "PAYMENTS_CHAOS_ABORT_AFTER";

/// Aborts the process if the chaos setting names `activity`.
pub fn maybe_abort_after(activity: &str) {
    if std::env::var(ABORT_AFTER_ENV).is_ok_and(|v| v == activity) {
        tracing::error!(activity, "{ABORT_AFTER_ENV} set: aborting the worker on purpose");
        std::process::abort();
    }
}
