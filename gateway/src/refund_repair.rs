//! The refund repair sweep: a refund is stored (its amount reserved) before its workflow is
//! started, so a lost start -- Temporal unreachable, the gateway dying in between -- would
//! leave it REQUESTED forever. Every `REFUND_REPAIR_SECS` the gateway starts the workflow of
//! each customer refund still REQUESTED that is older than that interval (a normal start
//! happens within milliseconds) and younger than [`REFUND_REPAIR_WINDOW_MS`]. Starting is
//! idempotent: the workflow id is `refund-{refund_id}` with id reuse rejected, so a refund
//! whose workflow exists (running, parked on a dead letter, or finished) is never run twice.
//! Older ones are left to reconciliation: by then the PSP's idempotency key may have expired.

use crate::idempotency::now_ms;
use crate::service::PaymentsService;
use std::future::Future;
use std::time::Duration;

/// Refunds older than this are not restarted (Stripe keeps idempotency keys for 24 h; an hour
/// leaves a wide margin), but reported.
pub const REFUND_REPAIR_WINDOW_MS: i64 = 3_600_000;
/// Refunds examined per round.
pub const REFUND_REPAIR_BATCH_MAX: i64 = 100;

/// Runs rounds every `interval` until `stop` resolves.
pub async fn repair_loop(service: PaymentsService, interval: Duration, stop: impl Future<Output = ()>) {
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = every.tick() => repair_round(&service, interval).await,
        }
    }
}

/// One round: starts the workflows of REQUESTED refunds between `min_age` and the window.
pub async fn repair_round(service: &PaymentsService, min_age: Duration) {
    let now = now_ms();
    let min_age_ms = i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX);
    let found =
        service.store().requested_refunds(now - REFUND_REPAIR_WINDOW_MS, now - min_age_ms, REFUND_REPAIR_BATCH_MAX);
    let refunds = match found.await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "refund repair: listing REQUESTED refunds failed; next round retries");
            return;
        }
    };
    for refund in refunds {
        let order = match service.order(&refund.payment_order_id).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(refund_id = %refund.refund_id, error = %e, "refund repair: order unreadable");
                continue;
            }
        };
        match service.start_refund_workflow(&refund, &order).await {
            Ok(()) => {
                tracing::info!(refund_id = %refund.refund_id, "refund repair: workflow started (or already there)")
            }
            Err(e) => {
                tracing::warn!(refund_id = %refund.refund_id, error = %e, "refund repair: start failed; next round retries")
            }
        }
    }
}
