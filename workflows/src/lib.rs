//! Deterministic orchestration of payments on Temporal.
//!
//! Layout: `contract.rs` (the activity contracts: names, inputs, outputs, shared with the
//! `activities` crate which implements them), `policies.rs` (every retry policy and timeout in
//! one place), `checkout.rs` (the checkout saga: risk check, then per payment order mark
//! EXECUTING, charge at the PSP, record the outcome, credit the wallet, post the ledger),
//! `charge.rs` (charging one order until the PSP's answer is known: lost answers, status
//! queries, pending payments awaited through webhook signals with a deadline), `hosted.rs` (the
//! hosted-page flow: wait for the buyer, confirm one payment for all orders), `messages.rs`
//! (signals, the confirm update, the phase query, search attributes, wait limits), `waits.rs`
//! (waiting for state with a deadline on durable timers).
//!
//! Nothing here does I/O or reads a clock: the crate cannot even name sqlx, reqwest or tonic.

mod charge;
pub mod checkout;
pub mod contract;
mod hosted;
pub mod messages;
pub mod policies;
mod waits;

pub use checkout::{CheckoutInput, CheckoutResult, CheckoutWorkflow, OrderResult};
