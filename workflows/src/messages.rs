//! What flows into and out of a running checkout besides its input: signals (PSP events,
//! review decisions), the hosted-payment confirmation update, the phase query, the search
//! attributes operators filter on in the Temporal UI, and the wait limits.

use payments_domain::PaymentOrderId;
use serde::{Deserialize, Serialize};
use temporalio_common::search_attributes::SearchAttributeKey;

/// Search attribute with the checkout id (set when the workflow starts).
pub const CHECKOUT_ID_ATTRIBUTE: SearchAttributeKey<String> = SearchAttributeKey::keyword("CheckoutId");
/// Search attribute with the checkout's phase ([`CheckoutPhase::as_str`]), kept current.
pub const PAYMENT_STATUS_ATTRIBUTE: SearchAttributeKey<String> = SearchAttributeKey::keyword("PaymentStatus");

/// How long a checkout waits for people and PSPs before deciding on its own. Chosen by the
/// gateway per checkout (configuration), recorded in the workflow input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitLimits {
    /// A pending PSP payment (3-D Secure, PSP review): at the limit the PSP is asked, and a
    /// payment still pending is cancelled there.
    pub psp_pending_secs: u64,
    /// An operator's review decision: at the limit the checkout is rejected.
    pub review_secs: u64,
    /// A hosted checkout waiting for the buyer to pay: at the limit it expires.
    pub hosted_payment_secs: u64,
}

impl WaitLimits {
    /// Production defaults: 15 min for 3-D Secure / PSP review answers (Stripe's and Toss's
    /// authentication windows are shorter), 24 h for an operator, 30 min for a buyer on the
    /// hosted page (Toss expires an unconfirmed payment after 10 min).
    pub const DEFAULT: WaitLimits =
        WaitLimits { psp_pending_secs: 15 * 60, review_secs: 24 * 3600, hosted_payment_secs: 30 * 60 };
}

/// Where a checkout stands; mirrored into the `PaymentStatus` search attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckoutPhase {
    /// Risk rules running.
    RiskCheck,
    /// Waiting for an operator's decision.
    AwaitingReview,
    /// Hosted checkout waiting for the buyer to pay on the PSP's page.
    AwaitingPayment,
    /// Charging or confirming at the PSP.
    Charging,
    /// Waiting for the PSP (3-D Secure, PSP review).
    AwaitingPsp,
    /// Every order final and booked.
    Done,
    /// Some order's PSP outcome is unknown; reconciliation will settle it.
    Unknown,
}

impl CheckoutPhase {
    /// The search attribute value.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckoutPhase::RiskCheck => "RISK_CHECK",
            CheckoutPhase::AwaitingReview => "AWAITING_REVIEW",
            CheckoutPhase::AwaitingPayment => "AWAITING_PAYMENT",
            CheckoutPhase::Charging => "CHARGING",
            CheckoutPhase::AwaitingPsp => "AWAITING_PSP",
            CheckoutPhase::Done => "DONE",
            CheckoutPhase::Unknown => "UNKNOWN",
        }
    }
}

/// A PSP told us something changed (a webhook). A hint only: the workflow asks the PSP for the
/// payment's state, so a forged, stale, duplicated or reordered event cannot move money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PspEventHint {
    /// The PSP's event id (for the history).
    pub event_id: String,
    /// The order concerned, when the event names it.
    pub payment_order_id: Option<PaymentOrderId>,
    /// The PSP's payment id.
    pub psp_reference: Option<String>,
}

/// An operator's decision on a checkout held for review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDecision {
    /// Approve (charge) or reject.
    pub approve: bool,
    /// Why, for the history.
    pub reason: String,
    /// Who decided.
    pub operator: String,
}

/// The buyer came back from the hosted page: confirm this payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmRequest {
    /// The PSP's payment id from the redirect.
    pub payment_key: String,
    /// The amount from the redirect, minor units; must equal the checkout's total.
    pub amount_minor: i64,
}

/// What the confirmation came to, for the buyer's result page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmResult {
    /// SUCCESS, FAILED, PENDING (the PSP is still deciding) or UNKNOWN.
    pub status: String,
    /// Failure code, when not SUCCESS.
    pub code: Option<String>,
    /// Failure text.
    pub message: Option<String>,
}
