//! Bounded store of idempotency records, one async lock per key.
//!
//! Concurrency policy: requests that share a key are **serialized** with a
//! per-key async mutex rather than answered with Stripe's 409 "another
//! in-progress request" error. The first request executes while later ones
//! wait; when they get the lock they find the stored response and replay it.
//! Either policy guarantees the property that matters — two requests with one
//! key never both execute — and serializing makes a client's retry-storm
//! observable as replays instead of spurious conflicts.
//!
//! The store is bounded to `keys_max` keys; the oldest key is forgotten first.
//! A key whose lock is held or awaited is never evicted, because dropping it
//! would let a concurrent request with the same key run a second time.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::StatusCode;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::state::lock;

/// Longest `Idempotency-Key` accepted by the Stripe dialect, in bytes
/// (Stripe's limit).
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;
/// Longest `Idempotency-Key` accepted by the Toss dialect, in characters
/// (Toss's documented limit).
pub const TOSS_IDEMPOTENCY_KEY_LEN_MAX: usize = 300;

/// A response remembered for replay.
#[derive(Clone, Debug)]
pub struct StoredResponse {
    /// What the first request asked for; see [`fingerprint`].
    pub fingerprint: String,
    pub status: StatusCode,
    pub body: Bytes,
}

/// Everything remembered about one key.
#[derive(Debug, Default)]
pub struct KeyRecord {
    /// How many requests have used this key so far, including the current
    /// one once it holds the lock. Fault tokens key their behaviour off it
    /// ("fail attempts 1 and 2"), so it counts requests that stored nothing.
    pub attempts: u32,
    /// The response to replay; `None` until one is stored.
    pub stored: Option<StoredResponse>,
}

/// Exclusive access to one key's record.
pub type SlotGuard = OwnedMutexGuard<KeyRecord>;

type Slot = Arc<AsyncMutex<KeyRecord>>;

/// Keys are scoped per API key, as Stripe scopes them per account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ScopedKey {
    account: String,
    key: String,
}

#[derive(Default)]
struct Slots {
    by_key: HashMap<ScopedKey, Slot>,
    /// Keys in first-use order, oldest first, for eviction.
    order: VecDeque<ScopedKey>,
}

/// The bounded idempotency store.
pub struct IdempotencyStore {
    keys_max: usize,
    slots: Mutex<Slots>,
}

impl IdempotencyStore {
    /// An empty store remembering at most `keys_max` keys (at least one).
    pub fn new(keys_max: usize) -> Self {
        Self { keys_max: keys_max.max(1), slots: Mutex::new(Slots::default()) }
    }

    /// Waits until no other request holds `key` (scoped to `account`), then
    /// returns its record for reading and writing.
    pub async fn lock(&self, account: &str, key: &str) -> SlotGuard {
        let scoped = ScopedKey { account: account.to_owned(), key: key.to_owned() };
        // Clone the Arc under the store lock, then release the store lock
        // before awaiting the per-key lock.
        let slot = self.slot(scoped);
        slot.lock_owned().await
    }

    /// Number of keys currently remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.slots).by_key.len()
    }

    fn slot(&self, scoped: ScopedKey) -> Slot {
        let mut slots = lock(&self.slots);
        if let Some(slot) = slots.by_key.get(&scoped) {
            return Arc::clone(slot);
        }
        if slots.by_key.len() >= self.keys_max {
            evict_oldest_idle(&mut slots);
        }
        let slot = Slot::default();
        if let Entry::Vacant(vacant) = slots.by_key.entry(scoped.clone()) {
            vacant.insert(Arc::clone(&slot));
            slots.order.push_back(scoped);
        }
        slot
    }
}

/// Forgets the oldest key nobody is using. If every key is in use the store
/// temporarily exceeds its bound rather than break exclusivity.
fn evict_oldest_idle(slots: &mut Slots) {
    for _ in 0..slots.order.len() {
        let Some(candidate) = slots.order.pop_front() else {
            return;
        };
        // The map's own reference is the only one: no request holds or
        // awaits this key. New references are only created under the store
        // lock we hold, so this cannot race upwards.
        let idle = slots.by_key.get(&candidate).is_none_or(|slot| Arc::strong_count(slot) == 1);
        if idle {
            slots.by_key.remove(&candidate);
            return;
        }
        slots.order.push_back(candidate);
    }
}

/// Canonical description of a request, compared on key reuse: method, path
/// and the parameters sorted (so parameter order does not matter, as with
/// Stripe which compares decoded parameters).
pub fn fingerprint(method: &str, path: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut out = format!("{method} {path}");
    for (name, value) in sorted {
        // Length-prefix each part so no choice of names/values can collide.
        // Writing to a String cannot fail.
        let _ = write!(out, "\n{}:{name}={}:{value}", name.len(), value.len());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// The fingerprint ignores parameter order but not values or endpoint.
    #[test]
    fn fingerprint_is_order_insensitive_only() {
        let a = fingerprint("POST", "/v1/x", &pairs(&[("a", "1"), ("b", "2")]));
        let b = fingerprint("POST", "/v1/x", &pairs(&[("b", "2"), ("a", "1")]));
        let c = fingerprint("POST", "/v1/x", &pairs(&[("a", "1"), ("b", "3")]));
        let d = fingerprint("POST", "/v1/y", &pairs(&[("a", "1"), ("b", "2")]));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    /// The store never remembers more than its bound of idle keys, and the
    /// oldest key goes first.
    #[tokio::test]
    async fn evicts_oldest_idle_key() {
        let store = IdempotencyStore::new(2);
        for key in ["k1", "k2", "k3"] {
            drop(store.lock("acct", key).await);
        }
        assert_eq!(store.len(), 2);
        let slots = lock(&store.slots);
        let remaining: Vec<&str> = slots.order.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(remaining, ["k2", "k3"]);
    }

    /// A key whose lock is held survives eviction pressure.
    #[tokio::test]
    async fn never_evicts_a_held_key() {
        let store = IdempotencyStore::new(1);
        let held = store.lock("acct", "busy").await;
        drop(store.lock("acct", "other").await);
        let slots = lock(&store.slots);
        assert!(slots.by_key.contains_key(&ScopedKey { account: "acct".to_owned(), key: "busy".to_owned() }));
        drop(slots);
        drop(held);
    }
}
