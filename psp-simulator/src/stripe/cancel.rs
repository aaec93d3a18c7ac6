//! `POST /v1/payment_intents/{id}/cancel`: cancelling an intent that never
//! completed.
//!
//! Allowed, as with Stripe, from `requires_payment_method`,
//! `requires_confirmation`, `requires_action`, `processing` (the
//! simulator's manual review) and `requires_capture` (never reached: the
//! simulator only captures automatically). The intent becomes `canceled`
//! with `canceled_at` and the optional `cancellation_reason`, and a
//! `payment_intent.canceled` event is sent. Nothing is captured afterwards:
//! a pending 3-D Secure challenge or review can no longer approve it, and
//! `confirm` refuses it. A `succeeded` or already `canceled` intent answers
//! 400 `payment_intent_unexpected_state` (stored under the idempotency key
//! like any executed request).

use axum::extract::Path;
use axum::response::{IntoResponse, Response};

use super::confirm::{EVENT_CANCELED, event};
use super::error::ApiError;
use super::intent::{IntentStatus, PaymentIntent};
use super::params::{Params, Split, invalid};
use super::{Account, StripeWire, error_reply, reply};
use crate::clock::unix_now;
use crate::execution::{Executed, PostParts, run_post};
use crate::ledger::Ledger;
use crate::state::SimState;

/// `cancellation_reason` values Stripe accepts on this endpoint.
const CANCELLATION_REASONS: [&str; 4] = ["duplicate", "fraudulent", "requested_by_customer", "abandoned"];

/// Validates the parameters: only an optional `cancellation_reason`.
fn cancellation_reason(params: &Params) -> Result<Option<String>, ApiError> {
    let mut split = Split::new(params, &["cancellation_reason"], false)?;
    let reason = split.non_empty("cancellation_reason")?;
    if let Some(reason) = &reason
        && !CANCELLATION_REASONS.contains(&reason.as_str())
    {
        return Err(invalid(
            "cancellation_reason".to_owned(),
            format!("Invalid cancellation_reason: must be one of {}", CANCELLATION_REASONS.join(", ")),
        ));
    }
    Ok(reason)
}

/// `POST /v1/payment_intents/{id}/cancel`
pub(super) async fn cancel_intent(Path(id): Path<String>, input: PostParts<Account>) -> Response {
    let (post, raw) = match input.decode() {
        Ok(decoded) => decoded,
        Err(error) => return error.into_response(),
    };
    let sim = &input.sim;
    run_post::<StripeWire>(sim, post, |_attempt, _key| {
        let reason = match cancellation_reason(&raw) {
            Ok(reason) => reason,
            Err(error) => return Executed::now(error_reply(error)),
        };
        Executed::now(reply(sim.with_ledger(|ledger| cancel_in_ledger(sim, ledger, &id, reason))))
    })
    .await
}

/// Cancels intent `id` as one ledger transition and announces it.
fn cancel_in_ledger(
    sim: &SimState,
    ledger: &mut Ledger,
    id: &str,
    reason: Option<String>,
) -> Result<PaymentIntent, ApiError> {
    let intent = ledger.intent_mut(id).ok_or_else(|| ApiError::NoSuchPaymentIntent { id: id.to_owned() })?;
    if matches!(intent.status, IntentStatus::Succeeded | IntentStatus::Canceled) {
        let status = intent.status.as_str();
        return Err(ApiError::UnexpectedState {
            message: format!(
                "You cannot cancel this PaymentIntent because it has a status of {status}. \
                 Only a PaymentIntent with one of the following statuses may be canceled: \
                 requires_payment_method, requires_capture, requires_confirmation, \
                 requires_action, processing."
            ),
            intent: Box::new(intent.clone()),
        });
    }
    intent.status = IntentStatus::Canceled;
    intent.canceled_at = Some(unix_now());
    intent.cancellation_reason = reason;
    intent.amount_capturable = 0;
    intent.next_action = None;
    intent.pending_idempotency_key = None;
    let canceled = intent.clone();
    sim.webhooks.send_stripe(vec![event(EVENT_CANCELED, &canceled)]);
    Ok(canceled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::params::parse_form;

    /// Only Stripe's reasons are accepted; no reason is fine; other
    /// parameters are unknown.
    #[test]
    fn validates_cancellation_reason() {
        let reason = |body: &str| cancellation_reason(&parse_form(body.as_bytes()).unwrap());
        assert_eq!(reason("").unwrap(), None);
        assert_eq!(reason("cancellation_reason=abandoned").unwrap().as_deref(), Some("abandoned"));
        assert!(matches!(reason("cancellation_reason=bored"), Err(ApiError::ParameterInvalid { .. })));
        assert!(matches!(reason("amount=5"), Err(ApiError::ParameterUnknown { .. })));
    }
}
