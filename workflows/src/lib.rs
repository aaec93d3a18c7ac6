//! Deterministic orchestration of payments on Temporal.
//!
//! Layout: `contract.rs` (the activity contracts: names, inputs, outputs, shared with the
//! `activities` crate which implements them), `policies.rs` (every retry policy and timeout in
//! one place), `checkout.rs` (the checkout saga: risk check, then per payment order mark
//! EXECUTING, charge at the PSP, record the outcome, credit the wallet, post the ledger),
//! `charge.rs` (charging one order until the PSP's answer is known: lost answers, status
//! queries checked against our order, pending payments awaited through webhook signals with a
//! deadline), `resume.rs` (a checkout whose earlier workflow ended: every order decided from its
//! stored status), `persist.rs` (database steps that wait out outages), `versions.rs` (the patch
//! ids of changes existing histories must replay around), `hosted.rs` (the
//! hosted-page flow: wait for the buyer, confirm one payment for all orders), `messages.rs`
//! (signals, the confirm update, the phase query, search attributes, wait limits), `waits.rs`
//! (waiting for state with a deadline on durable timers), `refund.rs` (the refund workflow and
//! the PSP-refund-and-booking part the checkout's compensation shares), `dead_letter.rs` (steps
//! that failed past their retries park their workflow until an operator retries or resolves
//! them), `payout.rs` / `payout_cycle.rs` / `payout_contract.rs` (pay-out: one workflow per
//! seller, currency and period, the cycle that pages through sellers and starts them, and their
//! activity contracts), `failures.rs` (reading activity failures), `cancel.rs` (cancelling a checkout: the
//! saga unwinds through the compensations registered before each charge), `booking.rs` (booking
//! a settled order: ledger, wallet, and the compensation of a rejected booking), `recon.rs` /
//! `recon_contract.rs` (reconciliation: one PSP's settlement day, the nightly run the Schedule
//! starts, and their activity contracts), `recon_fix.rs` (an approved fix of a break, run
//! through the refund and PSP activities).
//!
//! Nothing here does I/O or reads a clock: the crate cannot even name sqlx, reqwest or tonic.

mod booking;
mod cancel;
mod charge;
pub mod checkout;
pub mod contract;
pub mod dead_letter;
mod failures;
mod hosted;
pub mod messages;
pub mod payout;
pub mod payout_contract;
pub mod payout_cycle;
mod persist;
pub mod policies;
pub mod recon;
pub mod recon_contract;
pub mod recon_fix;
pub mod refund;
mod resume;
mod versions;
mod waits;

pub use checkout::{CheckoutInput, CheckoutPayment, CheckoutResult, CheckoutWorkflow, OrderResult};
pub use payout::{PayoutInput, PayoutResult, PayoutTimings, PayoutWorkflow};
pub use payout_cycle::{PayoutCycleInput, PayoutCycleResult, PayoutCycleWorkflow, PayoutInterval};
pub use recon::{ReconInput, ReconNightlyInput, ReconNightlyWorkflow, ReconWorkflow};
pub use recon_fix::ReconFixWorkflow;
pub use refund::{RefundInput, RefundResult, RefundWorkflow};
