//! The money ledger shared by every dialect: Stripe intents, charges and
//! refund objects, Toss payments, and the dialect-neutral records of
//! captures and refunds that the admin endpoints and settlement reports
//! read.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::stripe::intent::{Charge, PaymentIntent};
use crate::stripe::refunds::Refund;
use crate::toss::store::TossStore;

/// Metadata key under which the platform stores its business key.
pub const PAYMENT_ORDER_ID_METADATA_KEY: &str = "payment_order_id";

/// Which PSP dialect a record belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Psp {
    Stripe,
    Toss,
}

/// One capture: a record that money moved.
#[derive(Clone, Debug, Serialize)]
pub struct Capture {
    pub psp: Psp,
    /// The PSP's payment reference: a Stripe `pi_...` id or a Toss
    /// `paymentKey`.
    pub payment_intent_id: String,
    /// The platform's order id: Stripe `metadata[payment_order_id]` (if
    /// any) or the Toss `orderId`.
    pub payment_order_id: Option<String>,
    /// The transaction that moved the money: a Stripe `ch_...` charge or a
    /// Toss `transactionKey`.
    pub transaction_id: String,
    /// Minor units of `currency`.
    pub amount: u64,
    pub currency: String,
    /// The `Idempotency-Key` of the request that captured, if any.
    pub idempotency_key: Option<String>,
    /// Unix seconds.
    pub created: u64,
    /// Stripe `txn_...` balance transaction (Stripe captures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_transaction: Option<String>,
}

/// One refund (Stripe) or cancellation (Toss): money moved back.
#[derive(Clone, Debug, Serialize)]
pub struct RefundRecord {
    pub psp: Psp,
    /// Stripe `re_...` id or the Toss cancel's `transactionKey`.
    pub id: String,
    /// As in [`Capture::payment_intent_id`].
    pub payment_intent_id: String,
    /// As in [`Capture::payment_order_id`].
    pub payment_order_id: Option<String>,
    /// Minor units of `currency`, positive.
    pub amount: u64,
    pub currency: String,
    /// Stripe `reason` or Toss `cancelReason`.
    pub reason: Option<String>,
    pub idempotency_key: Option<String>,
    /// Unix seconds.
    pub created: u64,
    /// Stripe `txn_...` balance transaction (Stripe refunds only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_transaction: Option<String>,
}

/// Everything the simulator knows about money.
#[derive(Default)]
pub struct Ledger {
    intents: HashMap<String, PaymentIntent>,
    /// Intent ids in creation order, so search results are deterministic.
    intent_order: Vec<String>,
    /// Stripe charges by `ch_...` id.
    pub charges: HashMap<String, Charge>,
    /// Stripe refund objects by `re_...` id, as answered at creation.
    stripe_refunds: HashMap<String, Refund>,
    /// Stripe refund ids in creation order, so lists are deterministic.
    stripe_refund_order: Vec<String>,
    /// Toss payments.
    pub toss: TossStore,
    captures: Vec<Capture>,
    refunds: Vec<RefundRecord>,
}

impl Ledger {
    /// Stores a new intent.
    pub fn insert_intent(&mut self, intent: PaymentIntent) {
        self.intent_order.push(intent.id.clone());
        self.intents.insert(intent.id.clone(), intent);
    }

    /// The intent with `id`, if any.
    pub fn intent(&self, id: &str) -> Option<&PaymentIntent> {
        self.intents.get(id)
    }

    /// Mutable access to the intent with `id`, if any.
    pub fn intent_mut(&mut self, id: &str) -> Option<&mut PaymentIntent> {
        self.intents.get_mut(id)
    }

    /// Intents whose `metadata[key] == value` that were created at or before
    /// `indexed_until_ms` (Unix milliseconds; later ones are not in the
    /// search index yet), newest first (Stripe's search order).
    pub fn search_metadata(&self, key: &str, value: &str, indexed_until_ms: u64) -> Vec<PaymentIntent> {
        self.intent_order
            .iter()
            .rev()
            .filter_map(|id| self.intents.get(id))
            .filter(|intent| intent.created_ms <= indexed_until_ms)
            .filter(|intent| intent.metadata.get(key).is_some_and(|v| v == value))
            .cloned()
            .collect()
    }

    /// Stores a new Stripe refund object.
    pub fn insert_stripe_refund(&mut self, refund: Refund) {
        self.stripe_refund_order.push(refund.id.clone());
        self.stripe_refunds.insert(refund.id.clone(), refund);
    }

    /// The Stripe refund with `id`, if any.
    pub fn stripe_refund(&self, id: &str) -> Option<&Refund> {
        self.stripe_refunds.get(id)
    }

    /// Every Stripe refund, newest first (Stripe's list order).
    pub fn stripe_refunds_newest_first(&self) -> Vec<Refund> {
        self.stripe_refund_order.iter().rev().filter_map(|id| self.stripe_refunds.get(id)).cloned().collect()
    }

    /// Records that money moved.
    pub fn record_capture(&mut self, capture: Capture) {
        self.captures.push(capture);
    }

    /// Records that money moved back.
    pub fn record_refund(&mut self, refund: RefundRecord) {
        self.refunds.push(refund);
    }

    /// Captures in creation order, optionally only those of one order.
    pub fn captures(&self, payment_order_id: Option<&str>) -> Vec<Capture> {
        self.captures
            .iter()
            .filter(|capture| matches_order(capture.payment_order_id.as_deref(), payment_order_id))
            .cloned()
            .collect()
    }

    /// Refunds in creation order, optionally only those of one order.
    pub fn refunds(&self, payment_order_id: Option<&str>) -> Vec<RefundRecord> {
        self.refunds
            .iter()
            .filter(|refund| matches_order(refund.payment_order_id.as_deref(), payment_order_id))
            .cloned()
            .collect()
    }
}

fn matches_order(actual: Option<&str>, wanted: Option<&str>) -> bool {
    wanted.is_none_or(|wanted| actual == Some(wanted))
}
