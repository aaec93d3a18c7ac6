//! `POST /v1/billing/{billingKey}`: the server-to-server charge of a stored
//! card (Toss's "자동결제 승인"). The platform's direct checkout uses billing
//! keys as its card token; the test keys are listed in `payment.rs`.
//!
//! Checks in Toss's order: body fields → billing key → currency → order
//! already paid. Then the shared flow applies faults by attempt and the
//! charge runs as one ledger transition.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};

use super::body::{self, ORDER_NAME_LEN_MAX, Object};
use super::charge::charge;
use super::error::TossError;
use super::payment::{NewPayment, Payment, TossCard};
use super::{TossAccount, TossWire, reply};
use crate::execution::{Executed, PostParts, run_post, with_fault};

/// Longest `customerKey` Toss accepts.
const CUSTOMER_KEY_LEN_MAX: usize = 300;

/// A validated billing charge.
struct BillingCharge {
    card: TossCard,
    order_id: String,
    order_name: String,
    amount: u64,
}

/// Validates the body and resolves the billing key.
fn billing_charge(billing_key: &str, object: &Object) -> Result<BillingCharge, TossError> {
    body::required_string(object, "customerKey", CUSTOMER_KEY_LEN_MAX)?;
    let amount = body::required_amount(object, "amount")?;
    let order_id = body::order_id(object)?;
    let order_name = body::required_string(object, "orderName", ORDER_NAME_LEN_MAX)?;
    let card = TossCard::from_billing_key(billing_key).ok_or_else(TossError::not_found_billing)?;
    body::krw_only(object)?;
    Ok(BillingCharge { card, order_id, order_name, amount })
}

/// `POST /v1/billing/{billingKey}`
pub async fn charge_billing(Path(billing_key): Path<String>, input: PostParts<TossAccount>) -> Response {
    let (post, object) = match input.decode() {
        Ok(decoded) => decoded,
        Err(error) => return error.into_response(),
    };
    let sim = &input.sim;
    run_post::<TossWire>(sim, post, |attempt, key| {
        let request = match billing_charge(&billing_key, &object) {
            Ok(request) => request,
            Err(error) => return Executed::now(error.reply()),
        };
        let fault = sim.faults.decide(request.card.fault_kind(), attempt);
        with_fault::<TossWire>(fault, &sim.faults, || {
            reply(sim.with_ledger(|ledger| {
                if ledger.toss.order_taken(&request.order_id) {
                    return Err(TossError::duplicated_order_id().executed());
                }
                let payment = Payment::new(NewPayment {
                    kind: "BILLING",
                    order_id: request.order_id,
                    order_name: request.order_name,
                    amount: request.amount,
                    test_card: request.card,
                });
                let payment_key = payment.payment_key.clone();
                ledger.toss.insert(payment);
                charge(sim, ledger, &payment_key, key)
            }))
        })
    })
    .await
}
