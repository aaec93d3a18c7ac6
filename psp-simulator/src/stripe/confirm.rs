//! Charging a payment intent: the one ledger transition that turns a
//! confirmation into a capture, a decline, a 3-D Secure challenge or a
//! manual review — plus the capture itself, shared with the later
//! resolution of challenges and reviews (`resolve.rs`).

use std::sync::Arc;

use super::cards::{CardOutcome, Decline, TestCard};
use super::error::ApiError;
use super::intent::{Charge, IntentStatus, PaymentIntent, object_id, redirect_next_action};
use super::params::PaymentMethodParam;
use super::resolve::{self, Verdict};
use crate::ledger::{Capture, Ledger, Psp};
use crate::state::{SimState, Stats};
use crate::webhooks::StripeEvent;

/// Stripe event types the simulator emits for intents.
pub const EVENT_SUCCEEDED: &str = "payment_intent.succeeded";
pub const EVENT_FAILED: &str = "payment_intent.payment_failed";
pub const EVENT_PROCESSING: &str = "payment_intent.processing";
pub const EVENT_REQUIRES_ACTION: &str = "payment_intent.requires_action";
pub const EVENT_CANCELED: &str = "payment_intent.canceled";

/// One confirmation request, already validated.
pub struct Confirmation<'a> {
    pub payment_method: Option<PaymentMethodParam>,
    pub return_url: Option<String>,
    pub idempotency_key: Option<&'a str>,
}

/// Confirms intent `id` — charging its payment method (or the given one,
/// which replaces it) — as one ledger transition.
pub fn confirm_in_ledger(
    sim: &Arc<SimState>,
    ledger: &mut Ledger,
    id: &str,
    confirmation: Confirmation<'_>,
) -> Result<PaymentIntent, ApiError> {
    let intent = ledger.intent_mut(id).ok_or_else(|| ApiError::NoSuchPaymentIntent { id: id.to_owned() })?;
    let (token, card) = card_to_charge(intent, confirmation.payment_method)?;
    if confirmation.return_url.is_some() {
        intent.return_url = confirmation.return_url;
    }
    match card.outcome() {
        CardOutcome::Approved => {
            let captured = capture(sim, ledger, id, confirmation.idempotency_key)
                .ok_or_else(|| ApiError::NoSuchPaymentIntent { id: id.to_owned() })?;
            sim.webhooks.send_stripe(vec![event(EVENT_SUCCEEDED, &captured)]);
            Ok(captured)
        }
        CardOutcome::Declined { decline_code, message } => {
            let decline = Decline { decline_code, message, charge: object_id("ch"), payment_method: token, card };
            Err(decline_intent(sim, intent, decline))
        }
        CardOutcome::RequiresAction => {
            let url = format!("{}/3ds/{id}", sim.public_base_url);
            intent.status = IntentStatus::RequiresAction;
            intent.next_action = Some(redirect_next_action(url, intent.return_url.as_deref()));
            intent.last_payment_error = None;
            intent.pending_idempotency_key = confirmation.idempotency_key.map(str::to_owned);
            let waiting = intent.clone();
            sim.webhooks.send_stripe(vec![event(EVENT_REQUIRES_ACTION, &waiting)]);
            Ok(waiting)
        }
        CardOutcome::Review { webhook_chaos } => {
            let waiting = start_review(sim, intent, confirmation.idempotency_key, webhook_chaos);
            schedule_auto_approval(sim, id);
            Ok(waiting)
        }
    }
}

/// Applies a card decline to `intent`; returns the error to answer.
fn decline_intent(sim: &SimState, intent: &mut PaymentIntent, decline: Decline) -> ApiError {
    intent.latest_charge = Some(decline.charge.clone());
    // Stripe detaches a failed payment method from the intent and reports
    // it inside `last_payment_error` instead.
    intent.status = IntentStatus::RequiresPaymentMethod;
    intent.payment_method = None;
    intent.next_action = None;
    intent.last_payment_error = Some(decline.last_payment_error());
    Stats::bump(&sim.stats.declines_total);
    let failed = intent.clone();
    sim.webhooks.send_stripe(vec![event(EVENT_FAILED, &failed)]);
    ApiError::CardDeclined { decline: Box::new(decline), intent: Box::new(failed) }
}

/// Puts `intent` into manual review (`processing`).
fn start_review(
    sim: &SimState,
    intent: &mut PaymentIntent,
    idempotency_key: Option<&str>,
    webhook_chaos: bool,
) -> PaymentIntent {
    intent.status = IntentStatus::Processing;
    intent.next_action = None;
    intent.last_payment_error = None;
    intent.pending_idempotency_key = idempotency_key.map(str::to_owned);
    let waiting = intent.clone();
    // A chaotic review holds its "processing" event back and sends it
    // after the final one (see `resolve.rs`).
    if !webhook_chaos {
        sim.webhooks.send_stripe(vec![event(EVENT_PROCESSING, &waiting)]);
    }
    waiting
}

/// Captures intent `id`: creates the charge, moves the money and records
/// it. Returns the succeeded intent (`None` if unknown); the caller
/// announces it (resolution may need a particular event order).
pub fn capture(sim: &SimState, ledger: &mut Ledger, id: &str, idempotency_key: Option<&str>) -> Option<PaymentIntent> {
    let charge_id = object_id("ch");
    let balance_transaction = object_id("txn");
    let intent = ledger.intent_mut(id)?;
    intent.status = IntentStatus::Succeeded;
    intent.amount_received = intent.amount;
    intent.last_payment_error = None;
    intent.next_action = None;
    intent.latest_charge = Some(charge_id.clone());
    let key = idempotency_key.map(str::to_owned).or_else(|| intent.pending_idempotency_key.take());
    let captured = intent.clone();
    let charge = Charge::captured(charge_id.clone(), &captured, balance_transaction.clone());
    ledger.record_capture(Capture {
        psp: Psp::Stripe,
        payment_intent_id: captured.id.clone(),
        payment_order_id: captured.payment_order_id(),
        transaction_id: charge_id.clone(),
        amount: captured.amount_received,
        currency: captured.currency.clone(),
        idempotency_key: key,
        created: charge.created,
        balance_transaction: Some(balance_transaction),
    });
    ledger.charges.insert(charge_id, charge);
    Stats::bump(&sim.stats.captures_total);
    Some(captured)
}

/// A webhook event for `intent`.
pub fn event(kind: &'static str, intent: &PaymentIntent) -> StripeEvent {
    StripeEvent { kind, object: intent.to_value() }
}

/// Starts the configured auto-approval timer for a review.
fn schedule_auto_approval(sim: &Arc<SimState>, id: &str) {
    let Some(delay) = sim.review_auto_resolve else {
        return;
    };
    let sim = Arc::clone(sim);
    let id = id.to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        // Already resolved by hand is fine: nothing to do then.
        if let Err(error) = resolve::resolve_review(&sim, &id, Verdict::Approve) {
            tracing::debug!(%id, ?error, "review auto-approval skipped");
        }
    });
}

/// Checks that `intent` may be confirmed, attaches `payment_method` if given,
/// and returns the token and card to charge.
fn card_to_charge(
    intent: &mut PaymentIntent,
    payment_method: Option<PaymentMethodParam>,
) -> Result<(String, TestCard), ApiError> {
    if matches!(intent.status, IntentStatus::Succeeded | IntentStatus::Processing | IntentStatus::Canceled) {
        let status = intent.status.as_str();
        return Err(ApiError::UnexpectedState {
            message: format!(
                "You cannot confirm this PaymentIntent because it has a status of {status}. \
                 Only a PaymentIntent with one of the following statuses may be confirmed: \
                 requires_confirmation, requires_payment_method, requires_action."
            ),
            intent: Box::new(intent.clone()),
        });
    }
    if let Some(payment_method) = payment_method {
        intent.payment_method = Some(payment_method.token);
    }
    // Stored tokens were validated when given, so they always resolve.
    intent.payment_method.clone().and_then(|token| TestCard::from_token(&token).map(|card| (token, card))).ok_or_else(
        || ApiError::UnexpectedState {
            message: "You cannot confirm this PaymentIntent because it's missing a payment \
                      method. To confirm a payment with this PaymentIntent, provide a \
                      payment_method."
                .to_owned(),
            intent: Box::new(intent.clone()),
        },
    )
}
