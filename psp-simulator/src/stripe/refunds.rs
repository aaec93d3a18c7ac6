//! `POST /v1/refunds`: refunding all or part of a succeeded intent's charge.
//!
//! The charge keeps Stripe's bookkeeping (`amount_refunded`, `refunded`);
//! asking for more than is left is refused with `amount_too_large`, or
//! `charge_already_refunded` once nothing is left. Each refund is recorded
//! in the ledger for `/_sim/refunds` and the settlement reports, kept as
//! the refund object for `GET /v1/refunds` (`refund_reads.rs`), and
//! announced with a `charge.refunded` event. While the outage switch's
//! `refund_answers_lost` is on, the refund executes but its answer is lost
//! (`crate::outage`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::error::ApiError;
use super::intent::{IntentStatus, object_id};
use super::params::{Params, Split, invalid, parse_amount};
use crate::clock::unix_now;
use crate::ledger::{Ledger, Psp, RefundRecord};
use crate::state::{SimState, Stats};
use crate::webhooks::StripeEvent;

/// Event announcing a refunded charge.
pub const EVENT_CHARGE_REFUNDED: &str = "charge.refunded";

/// Refund reasons Stripe accepts.
pub const REFUND_REASONS: [&str; 3] = ["duplicate", "fraudulent", "requested_by_customer"];

/// Validated parameters of `POST /v1/refunds`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundParams {
    pub payment_intent: String,
    /// Minor units; `None` refunds whatever is left.
    pub amount: Option<u64>,
    pub reason: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// Validates the parameters of `POST /v1/refunds`.
pub fn refund_params(params: &Params) -> Result<RefundParams, ApiError> {
    let mut split = Split::new(params, &["payment_intent", "amount", "reason"], true)?;
    let payment_intent = split.required("payment_intent")?;
    let amount = split.non_empty("amount")?.map(|value| parse_amount(&value)).transpose()?;
    let reason = split.non_empty("reason")?;
    if let Some(reason) = &reason
        && !REFUND_REASONS.contains(&reason.as_str())
    {
        return Err(invalid(
            "reason".to_owned(),
            format!("Invalid reason: must be one of {}", REFUND_REASONS.join(", ")),
        ));
    }
    Ok(RefundParams { payment_intent, amount, reason, metadata: split.metadata })
}

/// Stripe's `refund` object.
#[derive(Clone, Debug, Serialize)]
pub struct Refund {
    pub id: String,
    pub object: &'static str,
    pub amount: u64,
    pub balance_transaction: String,
    pub charge: String,
    pub created: u64,
    pub currency: String,
    pub metadata: BTreeMap<String, String>,
    pub payment_intent: String,
    pub reason: Option<String>,
    pub status: &'static str,
}

/// Refunds per `params` as one ledger transition.
pub fn refund_in_ledger(
    sim: &SimState,
    ledger: &mut Ledger,
    params: RefundParams,
    idempotency_key: Option<&str>,
) -> Result<Refund, ApiError> {
    let (charge_id, payment_order_id) = refundable_charge(ledger, &params.payment_intent)?;
    let charge = ledger.charges.get_mut(&charge_id).ok_or_else(|| ApiError::NoSuchCharge { id: charge_id.clone() })?;
    let remaining = charge.refundable();
    if remaining == 0 {
        return Err(ApiError::RefundRejected {
            code: "charge_already_refunded",
            message: format!("Charge {charge_id} has already been refunded."),
            param: None,
        });
    }
    let amount = params.amount.unwrap_or(remaining);
    if amount > remaining {
        return Err(ApiError::RefundRejected {
            code: "amount_too_large",
            message: format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})"),
            param: Some("amount"),
        });
    }
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded == charge.amount_captured;
    let charge_value = charge.to_value();
    let refund = Refund {
        id: object_id("re"),
        object: "refund",
        amount,
        balance_transaction: object_id("txn"),
        charge: charge_id,
        created: unix_now(),
        currency: charge.currency.clone(),
        metadata: params.metadata,
        payment_intent: params.payment_intent,
        reason: params.reason,
        status: "succeeded",
    };
    ledger.record_refund(record(&refund, payment_order_id, idempotency_key));
    ledger.insert_stripe_refund(refund.clone());
    Stats::bump(&sim.stats.refunds_total);
    sim.webhooks.send_stripe(vec![StripeEvent { kind: EVENT_CHARGE_REFUNDED, object: charge_value }]);
    Ok(refund)
}

/// The succeeded charge of intent `id` and the intent's payment order id.
fn refundable_charge(ledger: &Ledger, id: &str) -> Result<(String, Option<String>), ApiError> {
    let intent = ledger.intent(id).ok_or_else(|| ApiError::NoSuchPaymentIntent { id: id.to_owned() })?;
    let charge_id =
        intent.latest_charge.clone().filter(|_| intent.status == IntentStatus::Succeeded).ok_or_else(|| {
            ApiError::RefundRejected {
                code: "payment_intent_unexpected_state",
                message: format!("This PaymentIntent ({id}) does not have a successful charge to refund."),
                param: Some("payment_intent"),
            }
        })?;
    Ok((charge_id, intent.payment_order_id()))
}

/// The ledger's dialect-neutral record of `refund`.
fn record(refund: &Refund, payment_order_id: Option<String>, idempotency_key: Option<&str>) -> RefundRecord {
    RefundRecord {
        psp: Psp::Stripe,
        id: refund.id.clone(),
        payment_intent_id: refund.payment_intent.clone(),
        payment_order_id,
        amount: refund.amount,
        currency: refund.currency.clone(),
        reason: refund.reason.clone(),
        idempotency_key: idempotency_key.map(str::to_owned),
        created: refund.created,
        balance_transaction: Some(refund.balance_transaction.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::params::parse_form;

    fn form(body: &str) -> Params {
        parse_form(body.as_bytes()).expect("test body is valid form encoding")
    }

    /// Refund parameters: intent required, amount optional, reason checked.
    #[test]
    fn validates_refund_params() {
        let full = refund_params(&form("payment_intent=pi_1&amount=50&reason=duplicate&metadata[payment_order_id]=po"))
            .unwrap();
        assert_eq!(full.amount, Some(50));
        assert_eq!(full.metadata["payment_order_id"], "po");
        assert_eq!(refund_params(&form("payment_intent=pi_1")).unwrap().amount, None);
        assert!(matches!(refund_params(&form("amount=5")), Err(ApiError::ParameterMissing { .. })));
        assert!(refund_params(&form("payment_intent=pi_1&reason=bored")).is_err());
        assert!(refund_params(&form("payment_intent=pi_1&amount=0")).is_err());
    }
}
