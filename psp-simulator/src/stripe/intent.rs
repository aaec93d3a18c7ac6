//! Stripe's `payment_intent` and `charge` objects as the simulator stores
//! and serializes them.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::params::CreateParams;
use crate::clock::{now_ms, unix_now};
use crate::ledger::PAYMENT_ORDER_ID_METADATA_KEY;
use crate::state::random_alnum;

/// Random characters in a `pi_...` / `ch_...` / `re_...` id (Stripe uses 24).
pub const OBJECT_ID_RANDOM_LEN: usize = 24;
/// Milliseconds in a second.
const MS_PER_SEC: u64 = 1_000;
/// Random characters in the secret part of a `client_secret`.
const CLIENT_SECRET_RANDOM_LEN: usize = 25;

/// A fresh Stripe-style object id: `<prefix>_<24 alphanumerics>`.
pub fn object_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_alnum(OBJECT_ID_RANDOM_LEN))
}

/// Lifecycle state of a payment intent (Stripe's `status` values; only the
/// ones the simulator can reach).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// No usable payment method yet (never given, or the last one failed).
    RequiresPaymentMethod,
    /// Has a payment method, waiting for `confirm`.
    RequiresConfirmation,
    /// Waiting for the customer (3-D Secure challenge).
    RequiresAction,
    /// Waiting for the PSP (manual review).
    Processing,
    /// Captured: money moved.
    Succeeded,
    /// Canceled before any capture; terminal.
    Canceled,
}

impl IntentStatus {
    /// The wire name, e.g. `requires_action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequiresPaymentMethod => "requires_payment_method",
            Self::RequiresConfirmation => "requires_confirmation",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::Succeeded => "succeeded",
            Self::Canceled => "canceled",
        }
    }
}

/// A payment intent, serialized exactly as Stripe's `payment_intent` object.
#[derive(Clone, Debug, Serialize)]
pub struct PaymentIntent {
    pub id: String,
    pub object: &'static str,
    pub amount: u64,
    pub amount_capturable: u64,
    pub amount_received: u64,
    /// Unix seconds of the cancellation, once canceled.
    pub canceled_at: Option<u64>,
    /// Why the intent was canceled (`duplicate`, `fraudulent`,
    /// `requested_by_customer`, `abandoned`), if it was and a reason was
    /// given.
    pub cancellation_reason: Option<String>,
    pub capture_method: &'static str,
    pub client_secret: String,
    pub confirmation_method: &'static str,
    pub created: u64,
    pub currency: String,
    pub description: Option<String>,
    pub last_payment_error: Option<Value>,
    pub latest_charge: Option<String>,
    pub livemode: bool,
    pub metadata: BTreeMap<String, String>,
    pub next_action: Option<Value>,
    pub payment_method: Option<String>,
    pub payment_method_types: Vec<&'static str>,
    pub status: IntentStatus,
    /// `Idempotency-Key` of the confirmation that is waiting (3-D Secure or
    /// review), so the eventual capture is attributed to it.
    #[serde(skip)]
    pub pending_idempotency_key: Option<String>,
    /// `return_url` of the last confirmation, for the 3-D Secure redirect.
    #[serde(skip)]
    pub return_url: Option<String>,
    /// Creation time in Unix milliseconds (`created` is whole seconds), so
    /// a search lag below a second can be honoured.
    #[serde(skip)]
    pub created_ms: u64,
}

impl PaymentIntent {
    /// A fresh, unconfirmed intent built from create parameters.
    pub fn new(params: CreateParams) -> Self {
        let id = object_id("pi");
        let created_ms = now_ms();
        let status = if params.payment_method.is_some() {
            IntentStatus::RequiresConfirmation
        } else {
            IntentStatus::RequiresPaymentMethod
        };
        Self {
            client_secret: format!("{id}_secret_{}", random_alnum(CLIENT_SECRET_RANDOM_LEN)),
            id,
            object: "payment_intent",
            amount: params.amount,
            amount_capturable: 0,
            amount_received: 0,
            canceled_at: None,
            cancellation_reason: None,
            capture_method: "automatic",
            confirmation_method: "automatic",
            created: created_ms / MS_PER_SEC,
            currency: params.currency,
            description: params.description,
            last_payment_error: None,
            latest_charge: None,
            livemode: false,
            metadata: params.metadata,
            next_action: None,
            payment_method: params.payment_method.map(|pm| pm.token),
            payment_method_types: vec!["card"],
            status,
            pending_idempotency_key: None,
            return_url: params.return_url,
            created_ms,
        }
    }

    /// `metadata[payment_order_id]`, the platform's business key.
    pub fn payment_order_id(&self) -> Option<String> {
        self.metadata.get(PAYMENT_ORDER_ID_METADATA_KEY).cloned()
    }

    /// The intent as JSON (for webhooks and embedding).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// A captured charge with refund bookkeeping (a subset of Stripe's
/// `charge` object).
#[derive(Clone, Debug, Serialize)]
pub struct Charge {
    pub id: String,
    pub object: &'static str,
    pub amount: u64,
    pub amount_captured: u64,
    pub amount_refunded: u64,
    pub balance_transaction: Option<String>,
    pub captured: bool,
    pub created: u64,
    pub currency: String,
    pub livemode: bool,
    pub metadata: BTreeMap<String, String>,
    pub paid: bool,
    pub payment_intent: String,
    pub payment_method: Option<String>,
    pub refunded: bool,
    pub status: &'static str,
}

impl Charge {
    /// The succeeded charge that captured `intent`.
    pub fn captured(id: String, intent: &PaymentIntent, balance_transaction: String) -> Self {
        Self {
            id,
            object: "charge",
            amount: intent.amount,
            amount_captured: intent.amount,
            amount_refunded: 0,
            balance_transaction: Some(balance_transaction),
            captured: true,
            created: unix_now(),
            currency: intent.currency.clone(),
            livemode: false,
            metadata: intent.metadata.clone(),
            paid: true,
            payment_intent: intent.id.clone(),
            payment_method: intent.payment_method.clone(),
            refunded: false,
            status: "succeeded",
        }
    }

    /// Minor units that can still be refunded.
    pub fn refundable(&self) -> u64 {
        self.amount_captured.saturating_sub(self.amount_refunded)
    }

    /// The charge as JSON (for webhooks).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Stripe's `next_action` for a 3-D Secure redirect.
pub fn redirect_next_action(url: String, return_url: Option<&str>) -> Value {
    json!({
        "type": "redirect_to_url",
        "redirect_to_url": { "url": url, "return_url": return_url },
    })
}
