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
    crate::idempotency::every(interval, stop, || async {
        let started = sweep_round(&service, interval).await;
        if started > 0 {
            tracing::info!(started, "start sweep: workflows started for stored rows whose start was lost");
        }
    })
    .await;
}

/// One round over checkouts, then refunds, created at least `min_age` ago; answers how many
/// rows it got started (or found needing no workflow).
pub async fn sweep_round(service: &PaymentsService, min_age: Duration) -> usize {
    let now = now_ms();
    let before = now - i64::try_from(min_age.as_millis()).unwrap_or(i64::MAX);
    let checkouts = sweep(
        now,
        |cursor| async move { service.store().unstarted_checkouts(before, cursor.as_ref(), START_SWEEP_BATCH).await },
        |c| (c.created_at_ms, c.checkout_id.to_string()),
        |c| async move { service.ensure_started(&c).await },
    )
    .await;
    let refunds = sweep(
        now,
        |cursor| async move { service.store().unstarted_refunds(before, cursor.as_ref(), START_SWEEP_BATCH).await },
        |r| (r.created_at_ms, r.refund_id.to_string()),
        |r| async move {
            let order =
                service.order(&r.payment_order_id).await.map_err(|e| anyhow::anyhow!("order unreadable: {e}"))?;
            service.ensure_refund_started(&r, &order).await
        },
    )
    .await;
    checkouts + refunds
}

/// Walks every row `list` gives, batch after batch by keyset (`key`: creation time and id),
/// and `start`s each; answers how many started. Stops early after
/// [`START_SWEEP_FAILURES_MAX`] failures in a row (the next round starts over).
async fn sweep<T, L, LF, K, S, SF>(now: i64, list: L, key: K, start: S) -> usize
where
    L: Fn(Option<StartCursor>) -> LF,
    LF: Future<Output = Result<Vec<T>, payments_store::StoreError>>,
    K: Fn(&T) -> (i64, String),
    S: Fn(T) -> SF,
    SF: Future<Output = anyhow::Result<()>>,
{
    let (mut cursor, mut started, mut failures) = (None::<StartCursor>, 0, 0);
    loop {
        let batch = match list(cursor.clone()).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "start sweep: listing rows failed; the next round retries");
                return started;
            }
        };
        let full = batch.len() as i64 == START_SWEEP_BATCH;
        let next = batch.last().map(&key);
        for row in batch {
            let (created_at_ms, id) = key(&row);
            if now - created_at_ms > START_SWEEP_STALE_MS {
                tracing::error!(id, created_at_ms, "start sweep: still without its workflow");
            }
            match start(row).await {
                Ok(()) => (started, failures) = (started + 1, 0),
                Err(e) => {
                    failures += 1;
                    tracing::warn!(id, error = format!("{e:#}"), "start sweep: start failed; the next round retries");
                    if failures >= START_SWEEP_FAILURES_MAX {
                        return started;
                    }
                }
            }
        }
        match next {
            Some((created_at_ms, id)) if full => cursor = Some(StartCursor { created_at_ms, id }),
            _ => return started,
        }
    }
}
