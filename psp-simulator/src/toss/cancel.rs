//! `POST /v1/payments/{paymentKey}/cancel {cancelReason, cancelAmount?}`:
//! full or partial cancellation (Toss's refund). Each cancellation appends
//! to `cancels[]`, lowers `balanceAmount`, moves the status to
//! `PARTIAL_CANCELED` or `CANCELED`, and is recorded as a refund.
//!
//! A payment that was never approved (`READY`, `IN_PROGRESS`: waiting for
//! its confirm or in manual review) can only be cancelled whole: it becomes
//! `CANCELED` with `balanceAmount` 0 and a `cancels[]` entry of 0 won, and
//! no refund is recorded — nothing was captured. It can no longer be
//! confirmed or approved.
//!
//! While the outage switch's `refund_answers_lost` is on, a cancellation
//! executes but its answer is lost (`crate::outage`).
//!
//! [`dashboard_cancel`] is the same cancellation made by an operator in
//! Toss's merchant dashboard (`/_sim/dashboard/refunds`): no API request,
//! no idempotency key, approved payments only.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};

use super::body::{self, CANCEL_REASON_LEN_MAX, Object};
use super::error::TossError;
use super::payment::{CURRENCY_KRW, Cancel, Payment, PaymentStatus, transaction_key};
use super::{TossAccount, TossWire, reply, session};
use crate::clock::{iso_kst, unix_now};
use crate::execution::{Executed, PostParts, run_post};
use crate::ledger::{Ledger, Psp, RefundRecord};
use crate::state::{SimState, Stats};

/// A validated cancellation.
struct CancelRequest {
    reason: String,
    /// `None` cancels the whole balance.
    amount: Option<u64>,
}

fn cancel_request(object: &Object) -> Result<CancelRequest, TossError> {
    Ok(CancelRequest {
        reason: body::required_string(object, "cancelReason", CANCEL_REASON_LEN_MAX)?,
        amount: body::optional_amount(object, "cancelAmount")?,
    })
}

/// `POST /v1/payments/{paymentKey}/cancel`
pub async fn cancel_payment(Path(payment_key): Path<String>, input: PostParts<TossAccount>) -> Response {
    let (mut post, object) = match input.decode() {
        Ok(decoded) => decoded,
        Err(error) => return error.into_response(),
    };
    // Toss's cancel is its refund API: its answers can be lost.
    post.refund = true;
    let sim = &input.sim;
    run_post::<TossWire>(sim, post, |_attempt, key| {
        let result = cancel_request(&object)
            .and_then(|request| sim.with_ledger(|ledger| cancel_in_ledger(sim, ledger, &payment_key, request, key)));
        Executed::now(reply(result))
    })
    .await
}

/// Cancels `amount` of an approved payment as an operator would in Toss's
/// dashboard: recorded, counted and announced exactly as an API
/// cancellation, without an idempotency key. A payment that was never
/// approved has nothing to refund and is refused with
/// `NOT_CANCELABLE_PAYMENT`.
pub fn dashboard_cancel(sim: &SimState, payment_key: &str, amount: u64, reason: String) -> Result<Payment, TossError> {
    sim.with_ledger(|ledger| {
        session::expire_if_overdue(sim, ledger, payment_key);
        match ledger.toss.get(payment_key).map(|payment| payment.status) {
            None => return Err(TossError::not_found_payment()),
            Some(PaymentStatus::Ready | PaymentStatus::InProgress) => return Err(TossError::not_cancelable_payment()),
            Some(_) => {}
        }
        cancel_in_ledger(sim, ledger, payment_key, CancelRequest { reason, amount: Some(amount) }, None)
    })
}

/// Cancels as one ledger transition.
fn cancel_in_ledger(
    sim: &SimState,
    ledger: &mut Ledger,
    payment_key: &str,
    request: CancelRequest,
    idempotency_key: Option<&str>,
) -> Result<Payment, TossError> {
    session::expire_if_overdue(sim, ledger, payment_key);
    let payment = ledger.toss.get_mut(payment_key).ok_or_else(TossError::not_found_payment)?;
    match payment.status {
        PaymentStatus::Done | PaymentStatus::PartialCanceled => {}
        PaymentStatus::Ready | PaymentStatus::InProgress => {
            return cancel_unapproved(sim, payment, request);
        }
        PaymentStatus::Canceled => return Err(TossError::already_canceled().executed()),
        _ => return Err(TossError::not_cancelable_payment().executed()),
    }
    let amount = request.amount.unwrap_or(payment.balance_amount);
    if amount > payment.balance_amount {
        return Err(TossError::not_cancelable_amount().executed());
    }
    let now = unix_now();
    let cancel_key = transaction_key();
    payment.balance_amount -= amount;
    payment.refresh_vat();
    payment.last_transaction_key = Some(cancel_key.clone());
    payment.status = if payment.balance_amount == 0 { PaymentStatus::Canceled } else { PaymentStatus::PartialCanceled };
    if payment.status == PaymentStatus::Canceled
        && let Some(card) = payment.card.as_mut()
    {
        card.acquire_status = "CANCELED";
    }
    payment.cancels.get_or_insert_with(Vec::new).push(Cancel {
        transaction_key: cancel_key.clone(),
        cancel_reason: request.reason.clone(),
        tax_exemption_amount: 0,
        canceled_at: iso_kst(now),
        transfer_discount_amount: 0,
        easy_pay_discount_amount: 0,
        receipt_key: None,
        cancel_amount: amount,
        tax_free_amount: 0,
        refundable_amount: payment.balance_amount,
        cancel_status: "DONE",
        cancel_request_id: None,
    });
    let canceled = payment.clone();
    ledger.record_refund(RefundRecord {
        psp: Psp::Toss,
        id: cancel_key,
        payment_intent_id: canceled.payment_key.clone(),
        payment_order_id: Some(canceled.order_id.clone()),
        amount,
        currency: CURRENCY_KRW.to_owned(),
        reason: Some(request.reason),
        idempotency_key: idempotency_key.map(str::to_owned),
        created: now,
        balance_transaction: None,
    });
    Stats::bump(&sim.stats.refunds_total);
    sim.webhooks.send_toss(vec![canceled.to_value()]);
    Ok(canceled)
}

/// Cancels a payment that was never approved: nothing moves back.
fn cancel_unapproved(sim: &SimState, payment: &mut Payment, request: CancelRequest) -> Result<Payment, TossError> {
    if request.amount.is_some_and(|amount| amount != payment.total_amount) {
        return Err(TossError::not_cancelable_amount().executed());
    }
    let cancel_key = transaction_key();
    payment.status = PaymentStatus::Canceled;
    payment.balance_amount = 0;
    payment.refresh_vat();
    payment.confirm_deadline_ms = None;
    payment.pending_idempotency_key = None;
    payment.last_transaction_key = Some(cancel_key.clone());
    payment.cancels.get_or_insert_with(Vec::new).push(Cancel {
        transaction_key: cancel_key,
        cancel_reason: request.reason,
        tax_exemption_amount: 0,
        canceled_at: iso_kst(unix_now()),
        transfer_discount_amount: 0,
        easy_pay_discount_amount: 0,
        receipt_key: None,
        cancel_amount: 0,
        tax_free_amount: 0,
        refundable_amount: 0,
        cancel_status: "DONE",
        cancel_request_id: None,
    });
    let canceled = payment.clone();
    sim.webhooks.send_toss(vec![canceled.to_value()]);
    Ok(canceled)
}
