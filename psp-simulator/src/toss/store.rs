//! Toss payments held by the ledger, by `paymentKey` and by `orderId`.

use std::collections::HashMap;

use super::payment::{Payment, PaymentStatus};

/// Toss payments of one simulator instance.
#[derive(Default)]
pub struct TossStore {
    payments: HashMap<String, Payment>,
    /// `orderId` → the most recent `paymentKey` for it.
    by_order: HashMap<String, String>,
}

impl TossStore {
    /// Stores `payment`, making it the current payment of its order.
    pub fn insert(&mut self, payment: Payment) {
        self.by_order.insert(payment.order_id.clone(), payment.payment_key.clone());
        self.payments.insert(payment.payment_key.clone(), payment);
    }

    /// The payment with `payment_key`.
    pub fn get(&self, payment_key: &str) -> Option<&Payment> {
        self.payments.get(payment_key)
    }

    /// Mutable access to the payment with `payment_key`.
    pub fn get_mut(&mut self, payment_key: &str) -> Option<&mut Payment> {
        self.payments.get_mut(payment_key)
    }

    /// The current payment of `order_id`.
    pub fn by_order(&self, order_id: &str) -> Option<&Payment> {
        self.by_order.get(order_id).and_then(|key| self.payments.get(key))
    }

    /// The `paymentKey` of the current payment of `order_id`.
    pub fn key_of_order(&self, order_id: &str) -> Option<String> {
        self.by_order.get(order_id).cloned()
    }

    /// Whether `order_id` already has a payment that blocks a new one: one
    /// that is waiting, in progress, approved or canceled. A failed
    /// (`ABORTED`) or `EXPIRED` attempt leaves the order free to retry, as
    /// with Toss.
    pub fn order_taken(&self, order_id: &str) -> bool {
        self.by_order(order_id)
            .is_some_and(|payment| !matches!(payment.status, PaymentStatus::Aborted | PaymentStatus::Expired))
    }
}
