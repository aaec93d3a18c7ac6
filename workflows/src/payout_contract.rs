//! The pay-out activity contracts (issue 12), implemented in
//! `payments_activities::payout::PayoutActivities`, and the data the payout workflows, the
//! gateway and the activities exchange. Names are explicit, as in [`crate::contract`].

use crate::contract::activity_contract;
use payments_domain::{Currency, Money, SellerAccount};
use serde::{Deserialize, Serialize};
use temporalio_common::search_attributes::SearchAttributeKey;

/// Search attribute with a payout's seller.
pub const SELLER_ID_ATTRIBUTE: SearchAttributeKey<String> = SearchAttributeKey::keyword("SellerId");
/// Search attribute with a payout's status (`RESERVING`, the store's statuses, `SKIPPED`).
pub const PAYOUT_STATUS_ATTRIBUTE: SearchAttributeKey<String> = SearchAttributeKey::keyword("PayoutStatus");

activity_contract!(
    /// Make (or find) the period's payout: book the seller's available balance to payouts in
    /// transit, before any provider call; or say why there is none.
    ReservePayout, "payout.reserve", ReservePayoutInput => Reserved
);
activity_contract!(
    /// Send a RESERVED payout to its provider (the payout id is the provider's idempotency key
    /// and reference; a lost answer is looked up, then sent again); a refusal (seller not
    /// payable) cancels it. Answers the stored payout.
    SendPayout, "payout.send", PayoutState => PayoutState
);
activity_contract!(
    /// Ask the provider about a payout (status query at a deadline) and record what it says.
    CheckPayout, "payout.check", PayoutState => PayoutState
);
activity_contract!(
    /// Record a provider event (a webhook, through the gateway's signal).
    RecordPayoutEvent, "payout.record", PayoutReport => PayoutState
);
activity_contract!(
    /// Settle a PAID payout whose return window passed.
    SettlePayout, "payout.settle", String => PayoutState
);
activity_contract!(
    /// Cancel a payout on an operator's request: at the provider while it is still cancellable,
    /// and book it back when it was canceled.
    CancelPayout, "payout.cancel", PayoutState => PayoutState
);
activity_contract!(
    /// A page of (seller, currency) pairs a payout cycle considers.
    PayoutCandidates, "payout.candidates", CandidatesInput => Vec<(SellerAccount, Currency)>
);

/// Input of [`ReservePayout`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservePayoutInput {
    /// The seller.
    pub seller: SellerAccount,
    /// The currency.
    pub currency: Currency,
    /// The period paid (`2026-12`, `2026-W49`, `2026-12-01`).
    pub period: String,
    /// Captures younger than this are pending, not payable.
    pub payout_delay_ms: i64,
    /// The rolling reserve held after the delay (none in inputs written before it existed).
    #[serde(default)]
    pub reserve: RollingReserve,
}

/// A rolling reserve: `bps` basis points of every capture held from the end of the payout
/// delay until `window_ms` after its capture. Zero `bps`: none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RollingReserve {
    /// Share held, in basis points.
    pub bps: u32,
    /// How long after its capture a capture's share is held.
    pub window_ms: i64,
}

/// Output of [`ReservePayout`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reserved {
    /// The period's payout.
    Payout(PayoutState),
    /// No payout this period, and why.
    Skipped(String),
}

/// A payout as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutState {
    /// `payout-{seller}-{currency}-{period}`.
    pub payout_id: String,
    /// The seller.
    pub seller: SellerAccount,
    /// Amount.
    pub amount: Money,
    /// RESERVED, REQUESTED, IN_TRANSIT, PAID, SETTLED, FAILED or CANCELED.
    pub status: String,
    /// `toss_payouts` or `stripe_connect`.
    pub provider: String,
    /// The provider's seller reference.
    pub destination: String,
    /// The provider's id, once known.
    pub provider_payout_id: Option<String>,
    /// The provider's failure code.
    pub failure_code: Option<String>,
}

impl PayoutState {
    /// Nothing can change any more.
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "SETTLED" | "FAILED" | "CANCELED")
    }
}

/// A provider's report about a payout (a webhook turned into a signal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutReport {
    /// The payout (the provider echoes our reference).
    pub payout_id: String,
    /// REQUESTED, IN_TRANSIT, PAID, FAILED or CANCELED.
    pub status: String,
    /// The provider's id.
    pub provider_payout_id: Option<String>,
    /// The provider's failure code.
    pub failure_code: Option<String>,
    /// The provider's failure text.
    pub failure_message: Option<String>,
}

/// Input of [`PayoutCandidates`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidatesInput {
    /// Start after this pair.
    pub after: Option<(SellerAccount, Currency)>,
    /// Only this seller.
    pub seller: Option<SellerAccount>,
    /// Only this currency.
    pub currency: Option<Currency>,
    /// Page size.
    pub limit: u32,
}
