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
    /// Attempts of one PSP call (charge, status query, refund) before the workflow stops
    /// retrying it: a charge then leaves its order UNKNOWN for the janitor, a refund becomes a
    /// dead letter. Backoff doubles from 0.5 s up to 60 s between attempts.
    #[serde(default = "default_psp_attempts_max")]
    pub psp_attempts_max: u32,
    /// The UNKNOWN janitor's schedule: an order whose PSP outcome stayed unknown is asked about
    /// after the first delay, then the second, then every third, until the PSP gives a final
    /// answer (or a webhook about the checkout arrives, which asks at once).
    #[serde(default = "default_unknown_recheck_secs")]
    pub unknown_recheck_secs: [u64; 3],
    /// Attempts of one run of a database step (status, wallet, ledger, refund, dead-letter
    /// records) before the workflow waits on a durable timer and runs it again: backoff doubles
    /// from 0.1 s up to 30 s between attempts. A database outage of any length only delays a
    /// step; it never ends a workflow that may hold captured money.
    #[serde(default = "default_store_attempts_max")]
    pub store_attempts_max: u32,
}

fn default_store_attempts_max() -> u32 {
    WaitLimits::DEFAULT.store_attempts_max
}

fn default_psp_attempts_max() -> u32 {
    WaitLimits::DEFAULT.psp_attempts_max
}

fn default_unknown_recheck_secs() -> [u64; 3] {
    WaitLimits::DEFAULT.unknown_recheck_secs
}

impl WaitLimits {
    /// Production defaults: 15 min for 3-D Secure / PSP review answers (Stripe's and Toss's
    /// authentication windows are shorter), 24 h for an operator, 30 min for a buyer on the
    /// hosted page (Toss expires an unconfirmed payment after 10 min); 10 attempts per PSP call
    /// (about 3 minutes of backoff); the janitor asks after 5 min, 1 h, then daily; 30
    /// attempts per run of a database step (about 12 minutes, a failover's worth).
    pub const DEFAULT: WaitLimits = WaitLimits {
        psp_pending_secs: 15 * 60,
        review_secs: 24 * 3600,
        hosted_payment_secs: 30 * 60,
        psp_attempts_max: 10,
        unknown_recheck_secs: [5 * 60, 3600, 24 * 3600],
        store_attempts_max: 30,
    };

    /// The janitor's delay before its `round`-th status query (0-based).
    pub fn unknown_recheck(&self, round: usize) -> u64 {
        self.unknown_recheck_secs[round.min(self.unknown_recheck_secs.len() - 1)]
    }
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
    /// Some order's PSP outcome is unknown; the janitor asks the PSP on its schedule.
    Unknown,
    /// A step failed past its retries (or with an error nothing classifies): waiting for an
    /// operator (`paymentsctl dlq retry|resolve`).
    DeadLetter,
    /// A captured order is being given back (compensation: refund at the PSP, ledger reversal).
    Compensating,
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
            CheckoutPhase::DeadLetter => "DEAD_LETTER",
            CheckoutPhase::Compensating => "COMPENSATING",
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

/// Longest Toss `paymentKey`, in characters (Toss documents at most 200).
pub const PAYMENT_KEY_LEN_MAX: usize = 200;

impl ConfirmRequest {
    /// Whether `key` has the shape of a Toss `paymentKey`: 1 to [`PAYMENT_KEY_LEN_MAX`] ASCII
    /// letters, digits, `-` and `_`. The key comes through the buyer's browser: anything else
    /// (`orders/<another checkout>`, `..`, spaces) is refused before it reaches a PSP URL.
    pub fn is_valid_payment_key(key: &str) -> bool {
        (1..=PAYMENT_KEY_LEN_MAX).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
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

/// What an operator does with a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeadLetterVerb {
    /// Run the failed step again (fresh retries, same idempotency keys).
    Retry,
    /// Close it: the operator settled the matter by hand; the step is not run again.
    Resolve,
}

/// An operator's action on one of a workflow's open dead letters (update `dead_letter`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterAction {
    /// The dead letter (`{subject}:{step}`).
    pub dead_letter_id: String,
    /// Retry or resolve.
    pub verb: DeadLetterVerb,
    /// Who.
    pub operator: String,
    /// Why (for a resolve: what was done by hand).
    pub reason: String,
}

/// An operator (or the merchant through an operator) cancels a checkout: orders not charged
/// yet end FAILED `checkout_cancelled`; whatever a charge turns out to have captured -- even one
/// whose outcome is still unknown -- is given back (the compensation registered before the
/// charge). Update `cancel_checkout`, refused once the checkout is done or already cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    /// Who.
    pub operator: String,
    /// Why, for the orders' history and the refunds.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The janitor waits the first delay, then the second, then repeats the third forever.
    #[test]
    fn janitor_schedule_repeats_its_last_delay() {
        let limits = WaitLimits { unknown_recheck_secs: [300, 3600, 86400], ..WaitLimits::DEFAULT };
        let delays: Vec<_> = (0..5).map(|round| limits.unknown_recheck(round)).collect();
        assert_eq!(delays, vec![300, 3600, 86400, 86400, 86400]);
    }

    /// Payment keys are Toss-shaped or refused.
    #[test]
    fn payment_keys_are_checked() {
        for good in ["5zJ4xY7m0kODnyRpQWGrN2xqGlNvLrKwv1M9ENjbeoPaZdL6", "WxdQtiCTz74W3Im2a_vqD", "a-b"] {
            assert!(ConfirmRequest::is_valid_payment_key(good), "{good}");
        }
        let too_long = "k".repeat(PAYMENT_KEY_LEN_MAX + 1);
        for bad in ["", "orders/chk-1", "..", "a b", "pk?x=1", "키", too_long.as_str()] {
            assert!(!ConfirmRequest::is_valid_payment_key(bad), "{bad}");
        }
    }

    /// Histories written before the limits had these fields still decode, with the defaults.
    #[test]
    fn old_wait_limits_decode_with_defaults() {
        let old = r#"{"psp_pending_secs":900,"review_secs":86400,"hosted_payment_secs":1800}"#;
        let limits: WaitLimits = serde_json::from_str(old).unwrap();
        assert_eq!(limits, WaitLimits::DEFAULT);
    }
}
