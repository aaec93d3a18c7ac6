//! Shared state of one simulator instance: the ledger, the idempotency
//! store, fault injection, the outage switch, settlement breaks, logs and
//! counters.
//!
//! The ledger lives behind one `std::sync::Mutex` that is only ever held for
//! short, non-`await`ing critical sections. Holding it across a whole
//! check-and-transition (e.g. "is this intent confirmable? then capture it")
//! is what makes a double capture impossible even without idempotency keys.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::SimConfig;
use crate::config::PUBLIC_BASE_URL_FALLBACK;
use crate::faults::FaultInjector;
use crate::idempotency::{IdempotencyStore, KeyTtls};
use crate::ledger::Ledger;
use crate::outage::Outage;
use crate::request_log::RequestLog;
use crate::settlement::breaks::BreakStore;
use crate::webhooks::Webhooks;

/// Shared state of one simulator instance.
pub struct SimState {
    ledger: Mutex<Ledger>,
    /// Idempotency records of every dialect, keyed by (API key, key).
    pub idempotency: IdempotencyStore,
    /// Counters reported by `/_sim/stats`.
    pub stats: Stats,
    /// Which requests fail, and how.
    pub faults: FaultInjector,
    /// POST requests and their outcomes, for `/_sim/requests`.
    pub requests: RequestLog,
    /// Which PSP operations are down (`/_sim/outage`).
    pub outage: Outage,
    /// What the settlement reports get wrong (`/_sim/settlements/breaks`).
    pub settlement_breaks: BreakStore,
    /// Outgoing webhook deliveries.
    pub webhooks: Webhooks,
    /// Base URL for links handed to clients (no trailing slash).
    pub public_base_url: String,
    /// Delay after which a manual review approves itself, if configured.
    pub review_auto_resolve: Option<Duration>,
    /// How long an authenticated Toss payment waits for its confirm.
    pub payment_session_ttl: Duration,
    /// How long a new PaymentIntent stays invisible to Stripe search, in
    /// milliseconds (compared with creation times in Unix milliseconds).
    pub stripe_search_lag_ms: u64,
}

impl SimState {
    /// Empty state configured by `config`.
    pub fn new(config: &SimConfig) -> Self {
        let base = config.public_base_url.as_deref().unwrap_or(PUBLIC_BASE_URL_FALLBACK);
        Self {
            ledger: Mutex::new(Ledger::default()),
            idempotency: IdempotencyStore::new(
                config.idempotency_keys_max,
                KeyTtls {
                    stripe_ms: config.stripe_idempotency_key_ttl_ms,
                    toss_ms: config.toss_idempotency_key_ttl_ms,
                },
            ),
            stats: Stats::default(),
            faults: FaultInjector::new(config),
            requests: RequestLog::default(),
            outage: Outage::default(),
            settlement_breaks: BreakStore::default(),
            webhooks: Webhooks::new(config),
            public_base_url: base.trim_end_matches('/').to_owned(),
            review_auto_resolve: config.review_auto_resolve_ms.map(Duration::from_millis),
            payment_session_ttl: Duration::from_millis(config.payment_session_ttl_ms),
            stripe_search_lag_ms: config.stripe_search_lag_ms,
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
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Request and outcome counters.
#[derive(Default)]
pub struct Stats {
    /// Requests received on the PSP APIs (`/v1/...`), whatever their outcome.
    pub requests_total: AtomicU64,
    /// Successful captures (money moved).
    pub captures_total: AtomicU64,
    /// Card declines returned.
    pub declines_total: AtomicU64,
    /// Responses replayed from an idempotency record.
    pub idempotent_replays_total: AtomicU64,
    /// Refunds / cancellations (money moved back).
    pub refunds_total: AtomicU64,
}

impl Stats {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// `len` random ASCII alphanumerics, for PSP-like object ids.
pub fn random_alnum(len: usize) -> String {
    rand::rng().sample_iter(Alphanumeric).take(len).map(char::from).collect()
}
