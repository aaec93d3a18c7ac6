//! The activities of the payment workflows: all I/O lives here.
//!
//! Layout: `risk.rs` (rules-based risk check: amount limits and blocklists from config),
//! `psp/` (the [`psp::PspClient`] trait, error classification, the rules every PSP call
//! obeys -- key lifetimes, lookups checked against our order, lagging searches, scrubbed
//! secrets -- in `psp/rules.rs`, and the Stripe and Toss Payments adapters),
//! `orders.rs` (order status and stored state, wallet credit, ledger post and checkout
//! completion over the store), `refunds.rs` (refund reservation, booking and failure, and dead letters, over the
//! store), `recon/` (reconciliation: fetching a day's
//! settlement report from Stripe, Toss or a CSV file, matching, settlement booking, run records),
//! `chaos.rs` (an opt-in crash point for failure tests), `failure.rs` (how errors
//! become Temporal failures: retryable or not, with a type name the workflow can match).
//!
//! Each `#[activities]` struct holds only its own dependencies and implements contracts
//! declared in `payments_workflows::contract`.

pub mod chaos;
pub mod failure;
pub mod orders;
pub mod payout;
pub mod psp;
pub mod recon;
pub mod refunds;
pub mod risk;

pub use orders::OrderActivities;
pub use psp::PspActivities;
pub use refunds::RefundActivities;
pub use risk::{RiskActivities, RiskConfig, RiskRules};
