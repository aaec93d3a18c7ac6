//! Finishing payments that wait on someone: a 3-D Secure challenge (the
//! customer) or a manual review (the PSP's risk team, i.e. a test).
//!
//! A chaotic review (`pm_card_sim_review_webhook_chaos`) announces its
//! resolution badly on purpose: the final event first, then the
//! "processing" event it held back, and each of them twice — the delivery
//! pattern a webhook receiver must survive.

use serde_json::json;

use super::cards::{CardOutcome, Decline, TestCard};
use super::confirm::{EVENT_FAILED, EVENT_PROCESSING, EVENT_SUCCEEDED, capture, event};
use super::error::ApiError;
use super::intent::{IntentStatus, PaymentIntent, object_id};
use crate::state::{SimState, Stats};

/// A decision on a waiting payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Authentication passed / review approved: capture.
    Approve,
    /// Authentication failed / review rejected: back to
    /// `requires_payment_method`.
    Reject,
}

/// Why a resolution was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// No payment with that id.
    NotFound,
    /// The payment is not waiting for this kind of resolution.
    NotWaiting,
    /// The payment was canceled: it can never be captured.
    Canceled,
}

/// Completes the 3-D Secure challenge of intent `id`.
pub fn resolve_3ds(sim: &SimState, id: &str, verdict: Verdict) -> Result<PaymentIntent, ResolveError> {
    sim.with_ledger(|ledger| {
        let intent = ledger.intent_mut(id).ok_or(ResolveError::NotFound)?;
        if intent.status == IntentStatus::Canceled {
            return Err(ResolveError::Canceled);
        }
        if intent.status != IntentStatus::RequiresAction {
            return Err(ResolveError::NotWaiting);
        }
        let resolved = match verdict {
            Verdict::Approve => capture(sim, ledger, id, None).ok_or(ResolveError::NotFound)?,
            Verdict::Reject => {
                intent.status = IntentStatus::RequiresPaymentMethod;
                intent.next_action = None;
                intent.pending_idempotency_key = None;
                intent.last_payment_error = Some(json!({
                    "type": "invalid_request_error",
                    "code": "payment_intent_authentication_failure",
                    "message": "The provided PaymentMethod has failed authentication. You can \
                                provide payment_method_data or a new PaymentMethod to attempt \
                                to fulfill this PaymentIntent again.",
                    "doc_url": "https://stripe.com/docs/error-codes/payment-intent-authentication-failure",
                    "payment_method": { "id": intent.payment_method, "object": "payment_method", "type": "card" },
                }));
                intent.payment_method = None;
                intent.clone()
            }
        };
        let kind = final_event_kind(&resolved);
        sim.webhooks.send_stripe(vec![event(kind, &resolved)]);
        Ok(resolved)
    })
}

/// Resolves the manual review of intent `id`.
pub fn resolve_review(sim: &SimState, id: &str, verdict: Verdict) -> Result<PaymentIntent, ResolveError> {
    sim.with_ledger(|ledger| {
        let intent = ledger.intent_mut(id).ok_or(ResolveError::NotFound)?;
        if intent.status == IntentStatus::Canceled {
            return Err(ResolveError::Canceled);
        }
        if intent.status != IntentStatus::Processing {
            return Err(ResolveError::NotWaiting);
        }
        let processing = intent.clone();
        let card = intent.payment_method.as_deref().and_then(TestCard::from_token);
        let chaos = card.is_some_and(|card| card.outcome() == CardOutcome::Review { webhook_chaos: true });
        let resolved = match verdict {
            Verdict::Approve => capture(sim, ledger, id, None).ok_or(ResolveError::NotFound)?,
            Verdict::Reject => {
                let decline = Decline {
                    decline_code: "fraudulent",
                    message: "Your card was declined.",
                    charge: object_id("ch"),
                    payment_method: intent.payment_method.clone().unwrap_or_default(),
                    card: card.unwrap_or(TestCard::Review),
                };
                intent.status = IntentStatus::RequiresPaymentMethod;
                intent.latest_charge = Some(decline.charge.clone());
                intent.last_payment_error = Some(decline.last_payment_error());
                intent.payment_method = None;
                intent.pending_idempotency_key = None;
                Stats::bump(&sim.stats.declines_total);
                intent.clone()
            }
        };
        let last = event(final_event_kind(&resolved), &resolved);
        let events = if chaos {
            let held = event(EVENT_PROCESSING, &processing);
            vec![last.clone(), held.clone(), last, held]
        } else {
            vec![last]
        };
        sim.webhooks.send_stripe(events);
        Ok(resolved)
    })
}

fn final_event_kind(intent: &PaymentIntent) -> &'static str {
    if intent.status == IntentStatus::Succeeded { EVENT_SUCCEEDED } else { EVENT_FAILED }
}

/// The error answering an attempt to complete the 3-D Secure challenge
/// (`action` = "authentication") or the review (`action` = "review") of
/// canceled intent `id`: Stripe's 400 `payment_intent_unexpected_state`.
pub fn canceled_error(sim: &SimState, id: &str, action: &str) -> Option<ApiError> {
    let intent = sim.with_ledger(|ledger| ledger.intent(id).cloned())?;
    Some(ApiError::UnexpectedState {
        message: format!(
            "This PaymentIntent's {action} cannot be completed because it has a status of \
             canceled."
        ),
        intent: Box::new(intent),
    })
}
