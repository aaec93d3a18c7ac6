//! The simulator's in-memory ledger: payment intents, captures and counters.
//!
//! Everything lives behind one `std::sync::Mutex` that is only ever held for
//! short, non-`await`ing critical sections. Holding it across a whole
//! check-and-transition (e.g. "is this intent confirmable? then capture it")
//! is what makes a double capture impossible even without idempotency keys.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use rand::distr::Alphanumeric;
use serde::Serialize;

use crate::SimConfig;
use crate::idempotency::IdempotencyStore;

/// Metadata key under which the platform stores its business key.
pub const PAYMENT_ORDER_ID_METADATA_KEY: &str = "payment_order_id";

/// Shared state of one simulator instance.
pub struct SimState {
    ledger: Mutex<Ledger>,
    /// Stripe idempotency records, keyed by (API key, `Idempotency-Key`).
    pub idempotency: IdempotencyStore,
    /// Counters reported by `/_sim/stats`.
    pub stats: Stats,
}

impl SimState {
    /// Empty state sized according to `config`.
    pub fn new(config: &SimConfig) -> Self {
        Self {
            ledger: Mutex::new(Ledger::default()),
            idempotency: IdempotencyStore::new(config.idempotency_keys_max),
            stats: Stats::default(),
        }
    }

    /// Runs `f` with exclusive access to the ledger. `f` must not block.
    pub fn with_ledger<R>(&self, f: impl FnOnce(&mut Ledger) -> R) -> R {
        f(&mut lock(&self.ledger))
    }
}

/// Locks `mutex`, recovering from poisoning: ledger updates are single
/// assignments/pushes, so a panicking holder cannot leave a torn state and
/// one panic should not take the whole simulator down.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Request and outcome counters.
#[derive(Default)]
pub struct Stats {
    /// Requests received on the PSP API (`/v1/...`), whatever their outcome.
    pub requests_total: AtomicU64,
    /// Successful captures (money moved).
    pub captures_total: AtomicU64,
    /// Card declines returned.
    pub declines_total: AtomicU64,
    /// Responses replayed from an idempotency record.
    pub idempotent_replays_total: AtomicU64,
}

impl Stats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Lifecycle state of a payment intent (Stripe's `status` values; only the
/// ones the simulator can currently reach).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// No usable payment method yet (never given, or the last one declined).
    RequiresPaymentMethod,
    /// Has a payment method, waiting for `confirm`.
    RequiresConfirmation,
    /// Captured: money moved.
    Succeeded,
}

/// A payment intent, serialized exactly as Stripe's `payment_intent` object.
#[derive(Clone, Debug, Serialize)]
pub struct PaymentIntent {
    pub id: String,
    pub object: &'static str,
    pub amount: u64,
    pub amount_capturable: u64,
    pub amount_received: u64,
    pub capture_method: &'static str,
    pub client_secret: String,
    pub confirmation_method: &'static str,
    pub created: u64,
    pub currency: String,
    pub description: Option<String>,
    pub last_payment_error: Option<serde_json::Value>,
    pub latest_charge: Option<String>,
    pub livemode: bool,
    pub metadata: BTreeMap<String, String>,
    pub payment_method: Option<String>,
    pub payment_method_types: Vec<&'static str>,
    pub status: IntentStatus,
}

/// One capture: a record that money moved.
#[derive(Clone, Debug, Serialize)]
pub struct Capture {
    pub payment_intent_id: String,
    /// `metadata[payment_order_id]` of the intent, if it had one.
    pub payment_order_id: Option<String>,
    pub amount: u64,
    pub currency: String,
    /// The `Idempotency-Key` of the request that captured, if any.
    pub idempotency_key: Option<String>,
    /// Unix seconds.
    pub created: u64,
}

/// Payment intents (in creation order) and captures.
#[derive(Default)]
pub struct Ledger {
    intents: HashMap<String, PaymentIntent>,
    /// Intent ids in creation order, so search results are deterministic.
    intent_order: Vec<String>,
    captures: Vec<Capture>,
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

    /// Intents whose `metadata[key] == value`, newest first (Stripe's search
    /// order).
    pub fn search_metadata(&self, key: &str, value: &str) -> Vec<PaymentIntent> {
        self.intent_order
            .iter()
            .rev()
            .filter_map(|id| self.intents.get(id))
            .filter(|intent| intent.metadata.get(key).is_some_and(|v| v == value))
            .cloned()
            .collect()
    }

    /// Records that `intent` was captured.
    pub fn record_capture(&mut self, intent: &PaymentIntent, idempotency_key: Option<&str>) {
        self.captures.push(Capture {
            payment_intent_id: intent.id.clone(),
            payment_order_id: intent.metadata.get(PAYMENT_ORDER_ID_METADATA_KEY).cloned(),
            amount: intent.amount_received,
            currency: intent.currency.clone(),
            idempotency_key: idempotency_key.map(str::to_owned),
            created: unix_now(),
        });
    }

    /// Captures in creation order, optionally only those of one payment order.
    pub fn captures(&self, payment_order_id: Option<&str>) -> Vec<Capture> {
        self.captures
            .iter()
            .filter(|capture| {
                payment_order_id
                    .is_none_or(|wanted| capture.payment_order_id.as_deref() == Some(wanted))
            })
            .cloned()
            .collect()
    }
}

/// Current time in Unix seconds (Stripe's `created` unit).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// `len` random ASCII alphanumerics, for Stripe-like object ids.
pub fn random_alnum(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}
