//! The rules every PSP call obeys whatever the PSP, decided from facts the adapters report:
//!
//! - A request is re-sent under its idempotency key only while the PSP surely still holds the
//!   key from the request's first use: Stripe removes keys once they are 24 hours old, Toss
//!   keeps them 15 days. After that a resend is a new request, and a second charge if the
//!   first one went through. ([`KeyRules::too_late_to_send`])
//! - A payment a lookup finds counts only when it is ours: our order id, amount and currency.
//!   Anything else is a mismatch, never a capture. ([`KeyRules::judge`])
//! - A search that may lag (Stripe's Search API is eventually consistent: usually seconds,
//!   longer during incidents) proves nothing by a miss until the configured lag has passed
//!   since our last request; until then the request may be re-sent while the key lives.
//! - Secrets never leave the adapter: a payment token is scrubbed from every message.

use payments_workflows::contract::{ChargeOutcome, ExpectedPayment, LookupInput, PaymentLookup};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Stripe keeps idempotency keys at least 24 hours.
pub const STRIPE_KEY_TTL_SECS: u64 = 24 * 3600;
/// Toss Payments keeps idempotency keys 15 days.
pub const TOSS_KEY_TTL_SECS: u64 = 15 * 24 * 3600;
/// How far Stripe's search may lag behind a write before a miss counts: Stripe documents data
/// as searchable within a minute normally, later during incidents; an hour covers those.
pub const STRIPE_SEARCH_LAG_SECS: u64 = 3600;
/// Margin kept from a key's lifetime (clock skew between us and the PSP, time between the
/// workflow stamping a request and sending it): a tenth of it, at most ten minutes.
pub const KEY_TTL_MARGIN_MAX_SECS: u64 = 600;
/// Stands in for a payment token in every message that would have shown it.
pub const TOKEN_PLACEHOLDER: &str = "[payment token]";

/// A PSP's lookup answer as the PSP gave it, before [`KeyRules::judge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PspLookup {
    /// No such payment, from a consistent read (by id, by order id at Toss).
    NotFound,
    /// A search found nothing; the search may lag behind writes.
    SearchMiss,
    /// The payment.
    Found(PspPayment),
}

/// A payment as the PSP describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PspPayment {
    /// What it came to.
    pub outcome: ChargeOutcome,
    /// Our order id as the PSP holds it (Stripe `metadata[payment_order_id]`, Toss `orderId`).
    pub order_id: Option<String>,
    /// Amount in minor units (the original amount, refunds aside).
    pub amount_minor: Option<i64>,
    /// ISO currency code, any case.
    pub currency: Option<String>,
}

/// A PSP's idempotency-key lifetime and search lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRules {
    /// How long the PSP keeps an idempotency key.
    pub key_ttl: Duration,
    /// How long its search may lag behind a write.
    pub search_lag: Duration,
}

impl KeyRules {
    /// The lifetime we rely on: the PSP's, less a margin.
    pub fn usable_key_ttl_ms(&self) -> i64 {
        let ttl = self.key_ttl.as_millis();
        let margin = (ttl / 10).min(u128::from(KEY_TTL_MARGIN_MAX_SECS) * 1000);
        i64::try_from(ttl - margin).unwrap_or(i64::MAX)
    }

    /// Whether the key first used at `first_sent_at_ms` is surely still held at `now_ms`.
    pub fn key_alive(&self, first_sent_at_ms: Option<i64>, now_ms: i64) -> bool {
        first_sent_at_ms.is_some_and(|first| now_ms.saturating_sub(first) < self.usable_key_ttl_ms())
    }

    /// `Some(why)` when a request whose key was first used at `first_sent_at_ms` must not be
    /// sent now: the PSP may have forgotten the key. (`None` first use: histories from before
    /// this rule; the workflow stamps every request now.)
    pub fn too_late_to_send(&self, first_sent_at_ms: Option<i64>, now_ms: i64) -> Option<String> {
        let first = first_sent_at_ms?;
        if self.key_alive(Some(first), now_ms) {
            return None;
        }
        let age_secs = now_ms.saturating_sub(first) / 1000;
        Some(format!(
            "not sent: this payment's idempotency key was first used {age_secs} s ago and the PSP may have \
             forgotten it (it keeps keys {} s), so a resend could charge twice; the PSP is asked first",
            self.key_ttl.as_secs()
        ))
    }

    /// What a lookup answer proves, for `input`, at `now_ms`.
    pub fn judge(&self, input: &LookupInput, raw: PspLookup, now_ms: i64) -> PaymentLookup {
        match raw {
            PspLookup::NotFound => PaymentLookup::NotFound,
            PspLookup::Found(payment) => match input.expected.as_ref().and_then(|e| mismatch(e, &payment)) {
                Some(reason) => PaymentLookup::Mismatch { reason },
                None => PaymentLookup::Found(payment.outcome),
            },
            PspLookup::SearchMiss => {
                let lag_ms = i64::try_from(self.search_lag.as_millis()).unwrap_or(i64::MAX);
                let caught_up = input.last_sent_at_ms.is_none_or(|last| now_ms.saturating_sub(last) >= lag_ms);
                if caught_up {
                    PaymentLookup::NotFound
                } else {
                    PaymentLookup::NotVisibleYet { resend_safe: self.key_alive(input.first_sent_at_ms, now_ms) }
                }
            }
        }
    }
}

/// Why `payment` is not the `expected` one, if it is not.
fn mismatch(expected: &ExpectedPayment, payment: &PspPayment) -> Option<String> {
    let want_order = expected.psp_order_id.as_str();
    let want_amount = expected.amount.amount_minor();
    let want_currency = expected.amount.currency().code();
    if payment.order_id.as_deref() != Some(want_order) {
        let found = payment.order_id.as_deref().unwrap_or("none");
        return Some(format!("the PSP's payment is for order {found:?}, not {want_order:?}"));
    }
    if payment.amount_minor != Some(want_amount) {
        let found = payment.amount_minor.map_or("none".to_owned(), |a| a.to_string());
        return Some(format!("the PSP's payment is of {found} minor units, not {want_amount}"));
    }
    if !payment.currency.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(want_currency)) {
        let found = payment.currency.as_deref().unwrap_or("none");
        return Some(format!("the PSP's payment is in {found}, not {want_currency}"));
    }
    None
}

/// `text` with every occurrence of `secret` replaced by [`TOKEN_PLACEHOLDER`].
pub fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() { text.to_owned() } else { text.replace(secret, TOKEN_PLACEHOLDER) }
}

/// A charge outcome with the token scrubbed from the PSP's decline message.
pub fn scrub_outcome(outcome: ChargeOutcome, token: &str) -> ChargeOutcome {
    match outcome {
        ChargeOutcome::Declined { code, message, psp_reference } => {
            ChargeOutcome::Declined { code: scrub(&code, token), message: scrub(&message, token), psp_reference }
        }
        other => other,
    }
}

/// Wall-clock ms since the epoch (activities may read clocks; workflows may not).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use payments_domain::{Currency, Money, PaymentOrderId};

    const HOUR_MS: i64 = 3_600_000;

    fn stripe() -> KeyRules {
        KeyRules {
            key_ttl: Duration::from_secs(STRIPE_KEY_TTL_SECS),
            search_lag: Duration::from_secs(STRIPE_SEARCH_LAG_SECS),
        }
    }

    fn input(first: Option<i64>, last: Option<i64>) -> LookupInput {
        LookupInput {
            payment_order_id: PaymentOrderId::parse("po-1").unwrap(),
            psp_reference: None,
            expected: Some(ExpectedPayment {
                psp_order_id: "po-1".into(),
                amount: Money::parse("10.00", Currency::parse("USD").unwrap()).unwrap(),
            }),
            first_sent_at_ms: first,
            last_sent_at_ms: last,
        }
    }

    fn payment(order: Option<&str>, amount: Option<i64>, currency: Option<&str>) -> PspLookup {
        PspLookup::Found(PspPayment {
            outcome: ChargeOutcome::Captured { psp_reference: "pi_1".into() },
            order_id: order.map(str::to_owned),
            amount_minor: amount,
            currency: currency.map(str::to_owned),
        })
    }

    /// A request is sent while the key is surely held (24 h less 10 min at Stripe), and
    /// refused after; unstamped requests (old histories) are sent.
    #[test]
    fn requests_are_not_resent_once_the_key_may_be_gone() {
        let rules = stripe();
        assert_eq!(rules.usable_key_ttl_ms(), 24 * HOUR_MS - 600_000);
        assert!(rules.too_late_to_send(Some(0), 23 * HOUR_MS).is_none());
        assert!(rules.too_late_to_send(Some(0), 24 * HOUR_MS - 600_000).is_some());
        assert!(rules.too_late_to_send(None, i64::MAX).is_none());
        let short = KeyRules { key_ttl: Duration::from_secs(2), search_lag: Duration::ZERO };
        assert_eq!(short.usable_key_ttl_ms(), 1800, "a tenth of a short lifetime");
    }

    /// Only our own payment counts: order id, amount and currency (any case) must match.
    #[test]
    fn foreign_payments_are_mismatches() {
        let rules = stripe();
        let at = |raw| rules.judge(&input(Some(0), Some(0)), raw, 1);
        assert!(matches!(at(payment(Some("po-1"), Some(1000), Some("usd"))), PaymentLookup::Found(_)));
        for foreign in [
            payment(Some("po-other"), Some(1000), Some("usd")),
            payment(None, Some(1000), Some("usd")),
            payment(Some("po-1"), Some(999), Some("usd")),
            payment(Some("po-1"), None, Some("usd")),
            payment(Some("po-1"), Some(1000), Some("eur")),
        ] {
            assert!(matches!(at(foreign), PaymentLookup::Mismatch { .. }));
        }
        let unchecked = LookupInput { expected: None, ..input(None, None) };
        assert!(matches!(rules.judge(&unchecked, payment(None, None, None), 0), PaymentLookup::Found(_)));
    }

    /// A search miss counts once the lag has passed since the last request; before that the
    /// request may be re-sent only while the key lives.
    #[test]
    fn search_misses_count_only_after_the_lag() {
        let rules = stripe();
        let miss = |first, last, now| rules.judge(&input(first, last), PspLookup::SearchMiss, now);
        assert_eq!(miss(Some(0), Some(0), HOUR_MS), PaymentLookup::NotFound);
        assert_eq!(miss(Some(0), Some(0), HOUR_MS / 2), PaymentLookup::NotVisibleYet { resend_safe: true });
        let late = 24 * HOUR_MS;
        assert_eq!(miss(Some(0), Some(late - 1000), late), PaymentLookup::NotVisibleYet { resend_safe: false });
        assert_eq!(miss(None, None, 0), PaymentLookup::NotFound, "histories from before the rule");
        assert_eq!(rules.judge(&input(None, None), PspLookup::NotFound, 0), PaymentLookup::NotFound);
    }

    /// The token disappears from every message.
    #[test]
    fn tokens_are_scrubbed() {
        assert_eq!(
            scrub("No such PaymentMethod: 'pm_secret'", "pm_secret"),
            "No such PaymentMethod: '[payment token]'"
        );
        assert_eq!(scrub("text", ""), "text");
        let declined =
            ChargeOutcome::Declined { code: "x".into(), message: "card pm_s declined".into(), psp_reference: None };
        assert!(!format!("{:?}", scrub_outcome(declined, "pm_s")).contains("pm_s"));
    }
}
