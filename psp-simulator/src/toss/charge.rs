//! Charging a stored Toss payment per its test card: approve (capture),
//! reject (`ABORTED`), or hold in manual review (`IN_PROGRESS`). Shared by
//! the billing charge, the hosted-flow confirmation and review resolution.

use std::sync::Arc;

use super::error::TossError;
use super::payment::{CURRENCY_KRW, Payment, PaymentStatus, TossCard};
use super::review::{self, Verdict};
use crate::ledger::{Capture, Ledger, Psp};
use crate::state::{SimState, Stats};

/// Charges the stored payment `payment_key` as one ledger transition and
/// announces the new status.
pub fn charge(
    sim: &Arc<SimState>,
    ledger: &mut Ledger,
    payment_key: &str,
    idempotency_key: Option<&str>,
) -> Result<Payment, TossError> {
    let payment = ledger.toss.get_mut(payment_key).ok_or_else(TossError::not_found_payment_session)?;
    // Confirmed: the session no longer waits (nor expires).
    payment.confirm_deadline_ms = None;
    let card = payment.test_card;
    if let Some(error) = card.rejection() {
        payment.abort(&error);
        payment.attach_card("READY");
        Stats::bump(&sim.stats.declines_total);
        sim.webhooks.send_toss(vec![payment.to_value()]);
        return Err(error.executed());
    }
    if let TossCard::Review { webhook_chaos } = card {
        payment.status = PaymentStatus::InProgress;
        payment.pending_idempotency_key = idempotency_key.map(str::to_owned);
        let waiting = payment.clone();
        // A chaotic review holds this event back (see `review.rs`).
        if !webhook_chaos {
            sim.webhooks.send_toss(vec![waiting.to_value()]);
        }
        schedule_auto_approval(sim, payment_key);
        return Ok(waiting);
    }
    let approved =
        capture(sim, ledger, payment_key, idempotency_key).ok_or_else(TossError::not_found_payment_session)?;
    sim.webhooks.send_toss(vec![approved.to_value()]);
    Ok(approved)
}

/// Approves payment `payment_key` and records the capture; the caller
/// announces it. `None` if the payment is unknown.
pub fn capture(
    sim: &SimState,
    ledger: &mut Ledger,
    payment_key: &str,
    idempotency_key: Option<&str>,
) -> Option<Payment> {
    let payment = ledger.toss.get_mut(payment_key)?;
    let transaction_key = payment.approve();
    let key = idempotency_key.map(str::to_owned).or_else(|| payment.pending_idempotency_key.take());
    let approved = payment.clone();
    ledger.record_capture(Capture {
        psp: Psp::Toss,
        payment_intent_id: approved.payment_key.clone(),
        payment_order_id: Some(approved.order_id.clone()),
        transaction_id: transaction_key,
        amount: approved.total_amount,
        currency: CURRENCY_KRW.to_owned(),
        idempotency_key: key,
        created: approved.approved_unix.unwrap_or_default(),
        balance_transaction: None,
    });
    Stats::bump(&sim.stats.captures_total);
    Some(approved)
}

/// Starts the configured auto-approval timer for a review.
fn schedule_auto_approval(sim: &Arc<SimState>, payment_key: &str) {
    let Some(delay) = sim.review_auto_resolve else {
        return;
    };
    let sim = Arc::clone(sim);
    let payment_key = payment_key.to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if let Err(error) = review::resolve_review(&sim, &payment_key, Verdict::Approve) {
            tracing::debug!(%payment_key, ?error, "review auto-approval skipped");
        }
    });
}
