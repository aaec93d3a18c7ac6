//! Workflow changes that alter the commands of a path an existing history may have taken are
//! made behind a patch: `ctx.patched(id)` answers false while a history written before the
//! change replays (it takes the old path) and true in new executions (which record the patch).
//! Every patch id the workflows use is here, with what it changed.

/// A database step whose run spent its attempts on faults waits and runs again (`persist.rs`);
/// before, it failed the workflow (or, for booking steps, parked a dead letter).
pub(crate) const STORE_STEPS_RIDE_OUT_OUTAGES: &str = "store-steps-ride-out-outages";

/// An operator's retry or resolve of a PSP refund's dead letter first asks the PSP whether it
/// made the refund (`refund.rs`); before, a retry re-sent it and a resolve failed it unasked.
pub(crate) const REFUND_ASKS_PSP_FIRST: &str = "refund-asks-psp-first";
