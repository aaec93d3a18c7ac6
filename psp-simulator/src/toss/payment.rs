//! Toss's `Payment` object (API version 2022-11-16) and the cards behind
//! billing keys and hosted payment sessions.
//!
//! Amounts are integers in won (KRW has no minor unit). `suppliedAmount`
//! and `vat` follow the balance: VAT is one eleventh of the amount (Korea's
//! 10% VAT included in the price), rounded half up, as in Toss's examples
//! (15 000 → 13 636 + 1 364).

use serde::Serialize;
use serde_json::Value;

use super::error::TossError;
use super::session::ReturnUrls;
use crate::clock::{iso_kst, unix_now};
use crate::faults::{TokenFault, TokenKind};
use crate::state::random_alnum;

/// Toss API version the objects follow.
pub const TOSS_API_VERSION: &str = "2022-11-16";
/// The simulator's merchant id.
pub const MID: &str = "tosspayments_sim";
/// Toss's card payments are always in won.
pub const CURRENCY_KRW: &str = "KRW";
/// Characters of a generated `paymentKey`.
const PAYMENT_KEY_LEN: usize = 50;
/// Characters of a generated `transactionKey`.
const TRANSACTION_KEY_LEN: usize = 32;
/// Digits of a card approval number.
const APPROVE_NO_LEN: usize = 8;
/// Divisor that extracts the VAT included in a price (10% VAT).
const VAT_DIVISOR: u64 = 11;

/// A new random `paymentKey`.
pub fn payment_key() -> String {
    random_alnum(PAYMENT_KEY_LEN)
}

/// A new random `transactionKey` (uppercase hex-like, as Toss's).
pub fn transaction_key() -> String {
    random_alnum(TRANSACTION_KEY_LEN).to_ascii_uppercase()
}

/// `Payment.status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    /// Created; not yet authenticated by the buyer (hosted window), or a
    /// `/_sim/toss/payment-sessions` session waiting for its confirm.
    Ready,
    /// Authenticated in the hosted window and waiting for the confirm, or
    /// confirmed and held in the simulator's manual review.
    InProgress,
    /// Approved: money moved.
    Done,
    /// Fully canceled.
    Canceled,
    /// Partly canceled.
    PartialCanceled,
    /// Approval failed.
    Aborted,
    /// Not confirmed in time (see `SimConfig::payment_session_ttl_ms`).
    Expired,
}

/// The test card behind a billing key or payment session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TossCard {
    Success,
    Decline,
    InsufficientFunds,
    Faulty(TokenFault),
    Review { webhook_chaos: bool },
}

impl TossCard {
    /// The card behind a test billing key.
    pub fn from_billing_key(key: &str) -> Option<Self> {
        Some(match key {
            "billing_success" => Self::Success,
            "billing_decline" => Self::Decline,
            "billing_insufficient_funds" => Self::InsufficientFunds,
            "billing_sim_server_error_twice" => Self::Faulty(TokenFault::ServerErrorTwice),
            "billing_sim_rate_limited" => Self::Faulty(TokenFault::RateLimited),
            "billing_sim_slow" => Self::Faulty(TokenFault::Slow),
            "billing_sim_lost_response" => Self::Faulty(TokenFault::LostResponse),
            "billing_sim_review" => Self::Review { webhook_chaos: false },
            "billing_sim_review_webhook_chaos" => Self::Review { webhook_chaos: true },
            _ => return None,
        })
    }

    /// The card of a hosted payment session (`card` of the admin call).
    pub fn from_session_card(name: &str) -> Option<Self> {
        match name {
            "success" => Some(Self::Success),
            "decline" => Some(Self::Decline),
            "insufficient_funds" => Some(Self::InsufficientFunds),
            "review" => Some(Self::Review { webhook_chaos: false }),
            _ => None,
        }
    }

    /// How faults apply when this card is charged.
    pub fn fault_kind(self) -> TokenKind {
        match self {
            Self::Success => TokenKind::NormalSuccess,
            Self::Faulty(fault) => TokenKind::Fault(fault),
            _ => TokenKind::Other,
        }
    }

    /// The issuer's refusal, if this card is declined.
    pub fn rejection(self) -> Option<TossError> {
        match self {
            Self::Decline => Some(TossError::reject_card_company()),
            Self::InsufficientFunds => Some(TossError::reject_card_payment()),
            _ => None,
        }
    }
}

/// `Payment.card`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub amount: u64,
    pub issuer_code: &'static str,
    pub acquirer_code: &'static str,
    pub number: &'static str,
    pub installment_plan_months: u32,
    pub approve_no: String,
    pub use_card_point: bool,
    pub card_type: &'static str,
    pub owner_type: &'static str,
    pub acquire_status: &'static str,
    pub is_interest_free: bool,
    pub interest_payer: Option<String>,
}

/// One entry of `Payment.cancels`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancel {
    pub transaction_key: String,
    pub cancel_reason: String,
    pub tax_exemption_amount: u64,
    pub canceled_at: String,
    pub transfer_discount_amount: u64,
    pub easy_pay_discount_amount: u64,
    pub receipt_key: Option<String>,
    pub cancel_amount: u64,
    pub tax_free_amount: u64,
    pub refundable_amount: u64,
    pub cancel_status: &'static str,
    pub cancel_request_id: Option<String>,
}

/// Toss's `Payment` object.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub m_id: &'static str,
    pub version: &'static str,
    pub payment_key: String,
    pub last_transaction_key: Option<String>,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub order_id: String,
    pub order_name: String,
    pub currency: &'static str,
    pub method: &'static str,
    pub total_amount: u64,
    pub balance_amount: u64,
    pub supplied_amount: u64,
    pub vat: u64,
    pub tax_free_amount: u64,
    pub tax_exemption_amount: u64,
    pub status: PaymentStatus,
    pub requested_at: String,
    pub approved_at: Option<String>,
    pub use_escrow: bool,
    pub culture_expense: bool,
    pub is_partial_cancelable: bool,
    pub card: Option<Card>,
    pub virtual_account: Option<Value>,
    pub transfer: Option<Value>,
    pub mobile_phone: Option<Value>,
    pub gift_certificate: Option<Value>,
    pub cash_receipt: Option<Value>,
    pub cash_receipts: Option<Value>,
    pub discount: Option<Value>,
    pub cancels: Option<Vec<Cancel>>,
    pub secret: Option<String>,
    pub easy_pay: Option<Value>,
    pub receipt: Option<Value>,
    pub checkout: Option<Value>,
    pub country: &'static str,
    pub failure: Option<Value>,
    /// The card that will be (or was) charged.
    #[serde(skip)]
    pub test_card: TossCard,
    /// Unix seconds of approval, for settlement dates.
    #[serde(skip)]
    pub approved_unix: Option<u64>,
    /// `Idempotency-Key` of the request waiting on a review.
    #[serde(skip)]
    pub pending_idempotency_key: Option<String>,
    /// Unix milliseconds by which the confirm must arrive; set while the
    /// payment is authenticated and waiting for it (see `session.rs`).
    #[serde(skip)]
    pub confirm_deadline_ms: Option<u64>,
    /// Where the hosted payment window sends the buyer back to.
    #[serde(skip)]
    pub window: Option<ReturnUrls>,
}

/// What a new payment is for.
pub struct NewPayment {
    /// `BILLING` or `NORMAL`.
    pub kind: &'static str,
    pub order_id: String,
    pub order_name: String,
    pub amount: u64,
    pub test_card: TossCard,
}

impl Payment {
    /// A payment that has not been approved yet (`READY`).
    pub fn new(new: NewPayment) -> Self {
        let (supplied_amount, vat) = split_vat(new.amount);
        Self {
            m_id: MID,
            version: TOSS_API_VERSION,
            payment_key: payment_key(),
            last_transaction_key: None,
            kind: new.kind,
            order_id: new.order_id,
            order_name: new.order_name,
            currency: CURRENCY_KRW,
            method: "카드",
            total_amount: new.amount,
            balance_amount: new.amount,
            supplied_amount,
            vat,
            tax_free_amount: 0,
            tax_exemption_amount: 0,
            status: PaymentStatus::Ready,
            requested_at: iso_kst(unix_now()),
            approved_at: None,
            use_escrow: false,
            culture_expense: false,
            is_partial_cancelable: true,
            card: None,
            virtual_account: None,
            transfer: None,
            mobile_phone: None,
            gift_certificate: None,
            cash_receipt: None,
            cash_receipts: None,
            discount: None,
            cancels: None,
            secret: None,
            easy_pay: None,
            receipt: None,
            checkout: None,
            country: "KR",
            failure: None,
            test_card: new.test_card,
            approved_unix: None,
            pending_idempotency_key: None,
            confirm_deadline_ms: None,
            window: None,
        }
    }

    /// Whether the payment is authenticated and waiting for its confirm.
    pub fn awaiting_confirm(&self) -> bool {
        self.confirm_deadline_ms.is_some() && matches!(self.status, PaymentStatus::Ready | PaymentStatus::InProgress)
    }

    /// Attaches the card details Toss reports once a card was charged.
    pub fn attach_card(&mut self, acquire_status: &'static str) {
        self.card = Some(Card {
            amount: self.total_amount,
            issuer_code: "41",
            acquirer_code: "41",
            number: "43301234****123*",
            installment_plan_months: 0,
            approve_no: random_digits(APPROVE_NO_LEN),
            use_card_point: false,
            card_type: "신용",
            owner_type: "개인",
            acquire_status,
            is_interest_free: false,
            interest_payer: None,
        });
    }

    /// Marks the payment approved; returns the approval's transaction key.
    pub fn approve(&mut self) -> String {
        let now = unix_now();
        let key = transaction_key();
        self.status = PaymentStatus::Done;
        self.approved_at = Some(iso_kst(now));
        self.approved_unix = Some(now);
        self.last_transaction_key = Some(key.clone());
        self.failure = None;
        self.confirm_deadline_ms = None;
        self.attach_card("READY");
        key
    }

    /// Marks the approval failed with `error`.
    pub fn abort(&mut self, error: &TossError) {
        self.status = PaymentStatus::Aborted;
        self.last_transaction_key = Some(transaction_key());
        self.failure = Some(error.failure());
        self.confirm_deadline_ms = None;
    }

    /// Recomputes `suppliedAmount` and `vat` from the balance.
    pub fn refresh_vat(&mut self) {
        (self.supplied_amount, self.vat) = split_vat(self.balance_amount);
    }

    /// The payment as JSON (for webhooks).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `(supplied, vat)` of a VAT-inclusive amount.
pub fn split_vat(amount: u64) -> (u64, u64) {
    // Round half up: (2a + d) / 2d.
    let vat = (2 * amount + VAT_DIVISOR) / (2 * VAT_DIVISOR);
    (amount - vat, vat)
}

fn random_digits(len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// VAT matches Toss's documented example and rounds half up.
    #[test]
    fn splits_vat() {
        assert_eq!(split_vat(15_000), (13_636, 1_364));
        assert_eq!(split_vat(11), (10, 1));
        assert_eq!(split_vat(0), (0, 0));
    }

    /// Billing keys and session cards resolve; unknown ones do not.
    #[test]
    fn cards_resolve() {
        assert_eq!(TossCard::from_billing_key("billing_sim_slow"), Some(TossCard::Faulty(TokenFault::Slow)));
        assert_eq!(TossCard::from_billing_key("billing_nope"), None);
        assert_eq!(
            TossCard::from_session_card("decline").and_then(TossCard::rejection),
            Some(TossError::reject_card_company())
        );
    }
}
