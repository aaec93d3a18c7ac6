//! Resolving a Toss payment held in manual review (`IN_PROGRESS` after its
//! confirm): approval captures it (`DONE`), rejection aborts it with
//! `FDS_ERROR`. An authenticated payment still waiting for its confirm is
//! not in review, and a canceled one is refused (`ResolveError::Canceled`).
//!
//! A chaotic review (`billing_sim_review_webhook_chaos`) announces its
//! resolution badly on purpose: the final status first, then the held-back
//! `IN_PROGRESS`, each twice.

use super::charge::capture;
use super::error::TossError;
use super::payment::{Payment, PaymentStatus, TossCard};
use crate::state::{SimState, Stats};
pub use crate::stripe::resolve::{ResolveError, Verdict};

/// Resolves the review of payment `payment_key`.
pub fn resolve_review(sim: &SimState, payment_key: &str, verdict: Verdict) -> Result<Payment, ResolveError> {
    sim.with_ledger(|ledger| {
        let payment = ledger.toss.get_mut(payment_key).ok_or(ResolveError::NotFound)?;
        if payment.status == PaymentStatus::Canceled {
            return Err(ResolveError::Canceled);
        }
        // An authenticated payment waiting for its confirm is not in review.
        if payment.status != PaymentStatus::InProgress || payment.awaiting_confirm() {
            return Err(ResolveError::NotWaiting);
        }
        let in_progress = payment.clone();
        let chaos = payment.test_card == TossCard::Review { webhook_chaos: true };
        let resolved = match verdict {
            Verdict::Approve => capture(sim, ledger, payment_key, None).ok_or(ResolveError::NotFound)?,
            Verdict::Reject => {
                payment.abort(&TossError::fds_error());
                payment.attach_card("READY");
                payment.pending_idempotency_key = None;
                Stats::bump(&sim.stats.declines_total);
                payment.clone()
            }
        };
        let events = if chaos {
            let (last, held) = (resolved.to_value(), in_progress.to_value());
            vec![last.clone(), held.clone(), last, held]
        } else {
            vec![resolved.to_value()]
        };
        sim.webhooks.send_toss(events);
        Ok(resolved)
    })
}
