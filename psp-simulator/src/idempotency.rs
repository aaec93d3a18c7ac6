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
//! Keys expire as at the real PSPs: a key whose first use is at least its
//! dialect's TTL old ([`KeyTtls`]: Stripe 24 hours, Toss 15 days by default)
//! counts as absent, so the next request with it executes as a brand-new
//! key (attempt 1, nothing to replay, no key-reuse check). Expiry is lazy —
//! noticed when the key is used again, or forced for tests with
//! [`IdempotencyStore::expire`] (`POST /_sim/idempotency/expire`).
//!
//! The store is bounded to `keys_max` keys; the oldest key is forgotten first.
//! A key whose lock is held or awaited is never evicted nor expired, because
//! dropping it would let a concurrent request with the same key run a second
//! time.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::StatusCode;
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::clock::now_ms;
use crate::ledger::Psp;
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

/// How long each dialect remembers an idempotency key, counted from the
/// key's first use, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyTtls {
    /// Stripe keys (Stripe removes keys once they are at least 24 hours old).
    pub stripe_ms: u64,
    /// Toss keys (Toss keeps them 15 days).
    pub toss_ms: u64,
}

impl KeyTtls {
    fn of(self, psp: Psp) -> u64 {
        match psp {
            Psp::Stripe => self.stripe_ms,
            Psp::Toss => self.toss_ms,
        }
    }
}

/// Keys are scoped per API key, as Stripe scopes them per account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ScopedKey {
    account: String,
    key: String,
}

/// One remembered key.
struct Remembered {
    slot: Slot,
    /// Unix milliseconds from which the key counts as absent: its first use
    /// plus its dialect's TTL.
    expires_at_ms: u64,
}

impl Remembered {
    /// Whether no request holds or awaits this key: the map's reference is
    /// the only one. New references are only created under the store lock,
    /// so while that is held this cannot change from true to false.
    fn idle(&self) -> bool {
        Arc::strong_count(&self.slot) == 1
    }
}

#[derive(Default)]
struct Slots {
    by_key: HashMap<ScopedKey, Remembered>,
    /// Keys in first-use order, oldest first, for eviction. Holds exactly
    /// the keys of `by_key`.
    order: VecDeque<ScopedKey>,
}

impl Slots {
    /// Forgets `scoped` entirely.
    fn forget(&mut self, scoped: &ScopedKey) {
        self.by_key.remove(scoped);
        // Keys are forgotten when expired, and expired keys are the oldest,
        // so the search from the front is short.
        if let Some(index) = self.order.iter().position(|candidate| candidate == scoped) {
            self.order.remove(index);
        }
    }
}

/// The bounded idempotency store.
pub struct IdempotencyStore {
    keys_max: usize,
    ttls: KeyTtls,
    slots: Mutex<Slots>,
}

impl IdempotencyStore {
    /// An empty store remembering at most `keys_max` keys (at least one),
    /// each for its dialect's TTL.
    pub fn new(keys_max: usize, ttls: KeyTtls) -> Self {
        Self { keys_max: keys_max.max(1), ttls, slots: Mutex::new(Slots::default()) }
    }

    /// Waits until no other request holds `key` (scoped to `account`, a
    /// caller of dialect `psp`), then returns its record for reading and
    /// writing — a fresh one if the key is new or has expired.
    pub async fn lock(&self, psp: Psp, account: &str, key: &str) -> SlotGuard {
        let scoped = ScopedKey { account: account.to_owned(), key: key.to_owned() };
        // Clone the Arc under the store lock, then release the store lock
        // before awaiting the per-key lock.
        let slot = self.slot(scoped, self.ttls.of(psp), now_ms());
        slot.lock_owned().await
    }

    /// Forgets now, as if their TTL had passed, every idle key named `key`
    /// (in every account), or every idle key if `key` is `None`. Answers
    /// how many were forgotten. Keys in use are kept: expiring them would
    /// let a concurrent request with the same key execute a second time.
    pub fn expire(&self, key: Option<&str>) -> usize {
        let mut slots = lock(&self.slots);
        let Slots { by_key, order } = &mut *slots;
        let before = by_key.len();
        by_key.retain(|scoped, remembered| !(key.is_none_or(|key| scoped.key == key) && remembered.idle()));
        let expired = before - by_key.len();
        if expired > 0 {
            order.retain(|scoped| by_key.contains_key(scoped));
        }
        expired
    }

    /// Number of keys currently remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.slots).by_key.len()
    }

    /// The slot of `scoped` at `now_ms`, created with `ttl_ms` to live if
    /// the key is new or its previous life has ended.
    fn slot(&self, scoped: ScopedKey, ttl_ms: u64, now_ms: u64) -> Slot {
        let mut slots = lock(&self.slots);
        if let Some(remembered) = slots.by_key.get(&scoped) {
            // A key in use outlives its TTL until it is idle again, so the
            // requests queued on it replay instead of executing twice.
            if now_ms < remembered.expires_at_ms || !remembered.idle() {
                return Arc::clone(&remembered.slot);
            }
            slots.forget(&scoped);
        }
        if slots.by_key.len() >= self.keys_max {
            evict_oldest_idle(&mut slots);
        }
        let slot = Slot::default();
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        slots.by_key.insert(scoped.clone(), Remembered { slot: Arc::clone(&slot), expires_at_ms });
        slots.order.push_back(scoped);
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
        if slots.by_key.get(&candidate).is_none_or(Remembered::idle) {
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

    /// TTLs for the store tests: short for Stripe, long for Toss.
    const TTLS: KeyTtls = KeyTtls { stripe_ms: 100, toss_ms: 1_000 };

    fn scoped(account: &str, key: &str) -> ScopedKey {
        ScopedKey { account: account.to_owned(), key: key.to_owned() }
    }

    /// Marks the record of `slot` as used, so a later lookup can tell a
    /// remembered record from a fresh one.
    fn use_slot(slot: &Slot) {
        slot.try_lock().expect("slot is idle").attempts = 1;
    }

    fn attempts(slot: &Slot) -> u32 {
        slot.try_lock().expect("slot is idle").attempts
    }

    /// The store never remembers more than its bound of idle keys, and the
    /// oldest key goes first.
    #[tokio::test]
    async fn evicts_oldest_idle_key() {
        let store = IdempotencyStore::new(2, TTLS);
        for key in ["k1", "k2", "k3"] {
            drop(store.lock(Psp::Stripe, "acct", key).await);
        }
        assert_eq!(store.len(), 2);
        let slots = lock(&store.slots);
        let remaining: Vec<&str> = slots.order.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(remaining, ["k2", "k3"]);
    }

    /// A key whose lock is held survives eviction pressure.
    #[tokio::test]
    async fn never_evicts_a_held_key() {
        let store = IdempotencyStore::new(1, TTLS);
        let held = store.lock(Psp::Stripe, "acct", "busy").await;
        drop(store.lock(Psp::Stripe, "acct", "other").await);
        let slots = lock(&store.slots);
        assert!(slots.by_key.contains_key(&scoped("acct", "busy")));
        drop(slots);
        drop(held);
    }

    /// A key is remembered until its TTL has passed since its first use
    /// (later uses do not extend it), then it starts afresh.
    #[test]
    fn expires_a_key_its_ttl_after_first_use() {
        let store = IdempotencyStore::new(10, TTLS);
        use_slot(&store.slot(scoped("acct", "k"), TTLS.stripe_ms, 0));
        assert_eq!(attempts(&store.slot(scoped("acct", "k"), TTLS.stripe_ms, 99)), 1);
        assert_eq!(attempts(&store.slot(scoped("acct", "k"), TTLS.stripe_ms, 100)), 0);
        assert_eq!(store.len(), 1);
        let slots = lock(&store.slots);
        assert_eq!(slots.order.len(), 1, "the expired key left the eviction order");
        assert_eq!(slots.by_key[&scoped("acct", "k")].expires_at_ms, 200);
    }

    /// Each dialect's keys live for that dialect's TTL.
    #[tokio::test]
    async fn ttl_follows_the_dialect() {
        let store = IdempotencyStore::new(10, TTLS);
        let before_ms = now_ms();
        drop(store.lock(Psp::Stripe, "sk_test_a", "k").await);
        drop(store.lock(Psp::Toss, "test_sk_a", "k").await);
        let after_ms = now_ms();
        let slots = lock(&store.slots);
        for (account, ttl_ms) in [("sk_test_a", TTLS.stripe_ms), ("test_sk_a", TTLS.toss_ms)] {
            let expires_at_ms = slots.by_key[&scoped(account, "k")].expires_at_ms;
            assert!((before_ms + ttl_ms..=after_ms + ttl_ms).contains(&expires_at_ms), "{account}");
        }
    }

    /// A key in use is neither expired by its TTL nor by `expire`: the
    /// requests waiting on it must replay, not execute again.
    #[test]
    fn never_expires_a_key_in_use() {
        let store = IdempotencyStore::new(10, TTLS);
        let first = store.slot(scoped("acct", "busy"), TTLS.stripe_ms, 0);
        use_slot(&first);
        let held = Arc::clone(&first).try_lock_owned().expect("slot is idle");
        let later = store.slot(scoped("acct", "busy"), TTLS.stripe_ms, 1_000_000);
        assert!(Arc::ptr_eq(&first, &later));
        drop(later);
        assert_eq!(store.expire(None), 0);
        drop(held);
        drop(first);
        assert_eq!(store.expire(Some("busy")), 1);
        assert_eq!(store.len(), 0);
    }

    /// `expire` forgets one key in every account, or every key, and keeps
    /// the eviction order in step with the map.
    #[test]
    fn expire_by_key_or_all() {
        let store = IdempotencyStore::new(10, TTLS);
        for (account, key) in [("a", "k"), ("b", "k"), ("a", "other"), ("b", "third")] {
            drop(store.slot(scoped(account, key), TTLS.toss_ms, 0));
        }
        assert_eq!(store.expire(Some("k")), 2);
        assert_eq!(store.expire(Some("k")), 0);
        let remaining: Vec<String> = lock(&store.slots).order.iter().map(|k| k.key.clone()).collect();
        assert_eq!(remaining, ["other", "third"]);
        assert_eq!(store.expire(None), 2);
        assert!(lock(&store.slots).order.is_empty());
    }
}
