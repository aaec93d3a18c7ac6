//! The start sweep: the relay of the transactional outbox of workflow starts. A checkout or a
//! refund is stored before its workflow is started, so a start can be lost (Temporal
//! unreachable, the gateway dying in between); each row records once its workflow is known to
//! exist. Every `START_SWEEP_SECS` the gateway walks the rows without that record, oldest
//! first, in batches of [`START_SWEEP_BATCH`] by keyset, to the end -- no age window, so no row
//! is ever skipped, and rows that fail to start do not starve the ones after them -- and
//! starts each one's workflow as the API would have ([`PaymentsService::ensure_started`],
//! [`PaymentsService::ensure_refund_started`]). Starting is idempotent: a workflow that exists
//! answers "already started", and a checkout whose orders are all final and booked gets none.
//! Rows younger than the interval are left to the request that is starting them now.

use crate::idempotency::now_ms;
use crate::service::PaymentsService;
use payments_store::StartCursor;
use std::future::Future;
use std::time::Duration;

/// Rows read per batch.
pub const START_SWEEP_BATCH: i64 = 100;
/// Consecutive failed starts after which a round stops early (Temporal is down; the next round
/// starts over).
pub const START_SWEEP_FAILURES_MAX: u32 = 3;
/// Rows left unstarted this long are logged as errors on every round until started.
pub const START_SWEEP_STALE_MS: i64 = 3_600_000;

/// Runs rounds every `interval` until `stop` resolves.
pub async fn sweep_loop(service: PaymentsService, interval: Duration, stop: impl Future<Output = ()>) {
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = every.tick() => {
                let started = sweep_round(&service, interval).await;
                if started > 0 {
                    tracing::info!(started, "start sweep: workflows started for stored rows whose start was lost");
                }
            }
        }
    }
}

/// One round over checkouts, then refunds, created at least `min_age` ago; answers how many
/// rows it got started (or found needing no workflow).
pub async fn sweep_round(service: &PaymentsService, min_age: Duration) -> usize {
    let now = now_ms();
    let before = now - i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX);
    sweep_checkouts(service, now, before).await + sweep_refunds(service, now, before).await
}

async fn sweep_checkouts(service: &PaymentsService, now: i64, before: i64) -> usize {
    let (mut cursor, mut started, mut failures) = (None::<StartCursor>, 0, 0);
    loop {
        let batch = match service.store().unstarted_checkouts(before, cursor.as_ref(), START_SWEEP_BATCH).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "start sweep: listing checkouts failed; the next round retries");
                return started;
            }
        };
        for record in &batch {
            if now - record.created_at_ms > START_SWEEP_STALE_MS {
                tracing::error!(checkout_id = %record.checkout_id, created_at_ms = record.created_at_ms, "start sweep: checkout still without its workflow");
            }
            match service.ensure_started(record).await {
                Ok(()) => (started, failures) = (started + 1, 0),
                Err(e) => {
                    failures += 1;
                    tracing::warn!(checkout_id = %record.checkout_id, error = format!("{e:#}"), "start sweep: start failed; the next round retries");
                    if failures >= START_SWEEP_FAILURES_MAX {
                        return started;
                    }
                }
            }
        }
        match batch.last() {
            Some(last) if batch.len() as i64 == START_SWEEP_BATCH => {
                cursor = Some(StartCursor { created_at_ms: last.created_at_ms, id: last.checkout_id.to_string() });
            }
            _ => return started,
        }
    }
}

async fn sweep_refunds(service: &PaymentsService, now: i64, before: i64) -> usize {
    let (mut cursor, mut started, mut failures) = (None::<StartCursor>, 0, 0);
    loop {
        let batch = match service.store().unstarted_refunds(before, cursor.as_ref(), START_SWEEP_BATCH).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "start sweep: listing refunds failed; the next round retries");
                return started;
            }
        };
        for refund in &batch {
            if now - refund.created_at_ms > START_SWEEP_STALE_MS {
                tracing::error!(refund_id = %refund.refund_id, created_at_ms = refund.created_at_ms, "start sweep: refund still without its workflow");
            }
            let result = match service.order(&refund.payment_order_id).await {
                Ok(order) => service.ensure_refund_started(refund, &order).await,
                Err(e) => Err(anyhow::anyhow!("order unreadable: {e}")),
            };
            match result {
                Ok(()) => (started, failures) = (started + 1, 0),
                Err(e) => {
                    failures += 1;
                    tracing::warn!(refund_id = %refund.refund_id, error = format!("{e:#}"), "start sweep: start failed; the next round retries");
                    if failures >= START_SWEEP_FAILURES_MAX {
                        return started;
                    }
                }
            }
        }
        match batch.last() {
            Some(last) if batch.len() as i64 == START_SWEEP_BATCH => {
                cursor = Some(StartCursor { created_at_ms: last.created_at_ms, id: last.refund_id.to_string() });
            }
            _ => return started,
        }
    }
}
