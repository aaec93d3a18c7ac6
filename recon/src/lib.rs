//! Reconciliation without I/O: what a settlement line is, how the PSPs' reports are read, the
//! kinds of break and the class rule of each, and the matching of one PSP payment against our
//! books. The store pages through a day and persists what this crate decides; the workflows
//! heal class-1 breaks through the same activities as pay-in, refunds and pay-out.
//!
//! Layout: `line` (settlement lines, PSPs, settlement days in each PSP's zone), `parse` (the
//! daily CSV, Toss `GET /v1/settlements`, Stripe `GET /v1/balance_transactions`), `breaks`
//! (break kinds, their classes and suggested fixes), `matching` (one payment's lines against
//! our orders and refunds; fee contracts and tolerances), `payouts` (payout providers'
//! statements as lines; one payout against ours).

pub mod breaks;
pub mod line;
pub mod matching;
pub mod parse;
pub mod payouts;

pub use breaks::{BreakClass, BreakKind, SuggestedFix};
pub use line::{Day, LineError, LineKind, Psp, SettlementLine};
pub use matching::{
    FeeContract, Finding, MatchPolicy, OrderState, OurOrder, OurRefund, Payment, PaymentVerdict, match_payment,
};
pub use payouts::{OurPayout, StatementPayout, StatementStatus, match_payout, payout_lines};
