//! Order status, wallet, ledger and checkout-completion activities over the store. Each call
//! is idempotent (the store enforces it with keys), so retries and replays are harmless.

use crate::failure::from_store;
use payments_domain::{CheckoutId, PaymentOrderId, PaymentOrderStatus};
use payments_store::{PostOutcome, Store, Transition};
use payments_workflows::contract::{
    CompleteCheckout, CreditWallet, PostLedger, ReadOrders, StatusChange, StoredOrder, TransitionOrder, WalletCredited,
};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// Store-backed activities; hold only the store.
pub struct OrderActivities {
    store: Store,
}

impl OrderActivities {
    /// Activities over this store.
    pub fn new(store: Store) -> Self {
        OrderActivities { store }
    }
}

#[activities]
impl OrderActivities {
    /// Moves an order to a new status (idempotent) and records the history row.
    #[activity(definition = TransitionOrder)]
    pub async fn transition(
        self: Arc<Self>,
        _ctx: ActivityContext,
        change: StatusChange,
    ) -> Result<PaymentOrderStatus, ActivityError> {
        let t = Transition {
            to: change.to,
            reason: change.reason,
            psp_reference: change.psp_reference,
            failure_code: change.failure_code,
            failure_message: change.failure_message,
        };
        let order = self.store.transition(&change.payment_order_id, &t).await.map_err(from_store)?;
        tracing::info!(payment_order_id = %order.payment_order_id, status = %order.status, "order status");
        Ok(order.status)
    }

    /// Credits the seller's wallet for a captured order, once.
    #[activity(definition = CreditWallet)]
    pub async fn credit_wallet(
        self: Arc<Self>,
        _ctx: ActivityContext,
        id: PaymentOrderId,
    ) -> Result<WalletCredited, ActivityError> {
        let w = self.store.credit_wallet_for_order(&id).await.map_err(from_store)?;
        tracing::info!(payment_order_id = %id, seller = %w.seller_account, balance = %w.balance, applied_now = w.applied_now, "wallet credited");
        Ok(WalletCredited { balance: w.balance, applied_now: w.applied_now })
    }

    /// Posts the order's pay-in ledger transaction, once. Answers whether it was posted now.
    #[activity(definition = PostLedger)]
    pub async fn post_ledger(
        self: Arc<Self>,
        _ctx: ActivityContext,
        id: PaymentOrderId,
    ) -> Result<bool, ActivityError> {
        let outcome = self.store.post_order_ledger(&id).await.map_err(from_store)?;
        tracing::info!(payment_order_id = %id, ?outcome, "ledger posted");
        crate::chaos::maybe_abort_after("ledger.post");
        Ok(outcome == PostOutcome::Posted)
    }

    /// Every order of a checkout as stored, with when it first became EXECUTING (from its
    /// append-only history): what a resumed checkout decides from.
    #[activity(definition = ReadOrders)]
    pub async fn read_orders(
        self: Arc<Self>,
        _ctx: ActivityContext,
        id: CheckoutId,
    ) -> Result<Vec<StoredOrder>, ActivityError> {
        let checkout = self.store.checkout(&id).await.map_err(from_store)?.ok_or_else(|| {
            crate::failure::non_retryable(
                payments_workflows::policies::failure_types::STORE_NOT_FOUND,
                format!("checkout {id} not found"),
            )
        })?;
        let mut stored = Vec::with_capacity(checkout.orders.len());
        for order in checkout.orders {
            let history = self.store.history(&order.payment_order_id).await.map_err(from_store)?;
            let executing_since_ms =
                history.iter().find(|h| h.to_status == PaymentOrderStatus::Executing).map(|h| h.created_at_ms);
            stored.push(StoredOrder {
                payment_order_id: order.payment_order_id,
                status: order.status,
                psp_reference: order.psp_reference,
                wallet_updated: order.wallet_updated,
                ledger_updated: order.ledger_updated,
                executing_since_ms,
                failure_code: order.failure_code,
            });
        }
        tracing::info!(checkout_id = %id, ?stored, "orders read for a resumed checkout");
        Ok(stored)
    }

    /// Marks the checkout done when every order is final.
    #[activity(definition = CompleteCheckout)]
    pub async fn complete_checkout(
        self: Arc<Self>,
        _ctx: ActivityContext,
        id: CheckoutId,
    ) -> Result<bool, ActivityError> {
        self.store.complete_checkout(&id).await.map_err(from_store)
    }
}
