//! Payment sessions: the life of a Toss `NORMAL` payment between its
//! creation in the payment window and the merchant's confirm.
//!
//! * **Open** ([`open`]): a `READY` payment for an order that is free (no
//!   payment, or only a failed or expired one). A window payment the buyer
//!   never authenticated (an abandoned 3-D Secure challenge) is given up in
//!   favour of the new one.
//! * **Authenticate** ([`authenticate`]): the buyer passed the window. The
//!   confirm must now arrive within `payment_session_ttl_ms` (Toss: 10
//!   minutes). A window payment shows `IN_PROGRESS` meanwhile, as Toss's
//!   does; a `/_sim/toss/payment-sessions` session keeps its `READY`.
//! * **Confirm** ([`check_confirmable`]): only an authenticated payment
//!   within its deadline; the charge itself is `charge.rs`.
//! * **Expire** ([`expire_if_overdue`]): past the deadline the payment is
//!   `EXPIRED` (with a `PAYMENT_STATUS_CHANGED` webhook) and a confirm is
//!   `NOT_FOUND_PAYMENT_SESSION`. A timer expires it on time; every lookup
//!   also checks, so the answer never depends on the timer's punctuality.
//! * **Give up** ([`give_up`]): the buyer cancelled or failed
//!   authentication in the window: `ABORTED`, no webhook (Toss sends none
//!   for what happens inside the window).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::error::TossError;
use super::payment::{NewPayment, Payment, PaymentStatus};
use crate::clock::now_ms;
use crate::ledger::Ledger;
use crate::state::SimState;

/// Extra wait of the expiry timer past the deadline, so that the clock
/// read when it fires is surely past it.
const EXPIRY_TIMER_SLACK_MS: u64 = 5;

/// Where the hosted payment window sends the buyer back to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnUrls {
    /// Absolute `successUrl` of `requestPayment`.
    pub success_url: String,
    /// Absolute `failUrl` of `requestPayment`.
    pub fail_url: String,
}

/// Opens a `READY` payment for `new.order_id` (from the hosted window when
/// `window` is set); `DUPLICATED_ORDER_ID` if the order is taken.
pub fn open(ledger: &mut Ledger, new: NewPayment, window: Option<ReturnUrls>) -> Result<Payment, TossError> {
    if let Some(key) = ledger.toss.key_of_order(&new.order_id)
        && let Some(current) = ledger.toss.get_mut(&key)
        && current.status == PaymentStatus::Ready
        && current.window.is_some()
        && current.confirm_deadline_ms.is_none()
    {
        give_up(current, "PAY_PROCESS_CANCELED", "사용자에 의해 결제가 취소되었습니다.");
    }
    if ledger.toss.order_taken(&new.order_id) {
        return Err(TossError::duplicated_order_id());
    }
    let mut payment = Payment::new(new);
    payment.window = window;
    ledger.toss.insert(payment.clone());
    Ok(payment)
}

/// Marks payment `payment_key` authenticated: its confirm deadline starts
/// now. Answers the payment, or `None` if it is not waiting for
/// authentication (unknown, already authenticated, or finished).
pub fn authenticate(sim: &Arc<SimState>, ledger: &mut Ledger, payment_key: &str) -> Option<Payment> {
    let payment = ledger.toss.get_mut(payment_key)?;
    if payment.status != PaymentStatus::Ready || payment.confirm_deadline_ms.is_some() {
        return None;
    }
    let ttl = sim.payment_session_ttl;
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    payment.confirm_deadline_ms = Some(now_ms().saturating_add(ttl_ms));
    if payment.window.is_some() {
        payment.status = PaymentStatus::InProgress;
    }
    schedule_expiry(sim, payment_key, ttl);
    Some(payment.clone())
}

/// Ends a window payment the buyer gave up on (`ABORTED` with `code`).
pub fn give_up(payment: &mut Payment, code: &str, message: &str) {
    payment.status = PaymentStatus::Aborted;
    payment.confirm_deadline_ms = None;
    payment.failure = Some(json!({ "code": code, "message": message }));
}

/// Checks that payment `payment_key` of `order_id` may be confirmed now and
/// answers its amount; expires it first if its deadline has passed.
pub fn check_confirmable(
    sim: &SimState,
    ledger: &mut Ledger,
    payment_key: &str,
    order_id: &str,
) -> Result<u64, TossError> {
    expire_if_overdue(sim, ledger, payment_key);
    let payment = ledger
        .toss
        .get(payment_key)
        .filter(|payment| payment.order_id == order_id)
        .ok_or_else(TossError::not_found_payment_session)?;
    if payment.awaiting_confirm() {
        return Ok(payment.total_amount);
    }
    match payment.status {
        // Not authenticated yet, or too late: there is no session to confirm.
        PaymentStatus::Ready | PaymentStatus::Expired => Err(TossError::not_found_payment_session()),
        _ => Err(TossError::already_processed().executed()),
    }
}

/// Expires payment `payment_key` if its confirm deadline has passed,
/// announcing it with a webhook. Returns whether it expired now.
pub fn expire_if_overdue(sim: &SimState, ledger: &mut Ledger, payment_key: &str) -> bool {
    let Some(payment) = ledger.toss.get_mut(payment_key) else {
        return false;
    };
    let overdue =
        payment.awaiting_confirm() && payment.confirm_deadline_ms.is_some_and(|deadline| now_ms() >= deadline);
    if !overdue {
        return false;
    }
    payment.status = PaymentStatus::Expired;
    payment.confirm_deadline_ms = None;
    sim.webhooks.send_toss(vec![payment.to_value()]);
    true
}

/// [`expire_if_overdue`] for the current payment of `order_id`.
pub fn expire_order_if_overdue(sim: &SimState, ledger: &mut Ledger, order_id: &str) {
    if let Some(key) = ledger.toss.key_of_order(order_id) {
        expire_if_overdue(sim, ledger, &key);
    }
}

/// Expires payment `payment_key` once `ttl` has passed, unless confirmed.
/// The timer does not keep a stopped simulator's state alive.
fn schedule_expiry(sim: &Arc<SimState>, payment_key: &str, ttl: Duration) {
    let sim = Arc::downgrade(sim);
    let payment_key = payment_key.to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(ttl + Duration::from_millis(EXPIRY_TIMER_SLACK_MS)).await;
        let Some(sim) = sim.upgrade() else {
            return;
        };
        if sim.with_ledger(|ledger| expire_if_overdue(&sim, ledger, &payment_key)) {
            tracing::debug!(%payment_key, "payment session expired");
        }
    });
}
