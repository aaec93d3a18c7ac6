//! Deterministic orchestration of payments on Temporal.
//!
//! Layout: `contract.rs` (the activity contracts: names, inputs, outputs, shared with the
//! `activities` crate which implements them), `policies.rs` (every retry policy and timeout in
//! one place), `checkout.rs` (the checkout saga: risk check, then per payment order mark
//! EXECUTING, charge at the PSP, record the outcome, credit the wallet, post the ledger),
//! `charge.rs` (charging one order until the PSP's answer is known: lost answers, status
//! queries, pending payments).
//!
//! Nothing here does I/O or reads a clock: the crate cannot even name sqlx, reqwest or tonic.

mod charge;
pub mod checkout;
pub mod contract;
pub mod policies;

pub use checkout::{CheckoutInput, CheckoutResult, CheckoutWorkflow, OrderResult};
