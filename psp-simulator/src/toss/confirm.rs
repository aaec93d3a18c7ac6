//! The hosted (payment-window) flow: the buyer authenticates a payment —
//! in the simulator's payment window (`crate::hosted`) or, for API-only
//! tests, through `POST /_sim/toss/payment-sessions` — and the merchant
//! server confirms it with `POST /v1/payments/confirm {paymentKey, orderId,
//! amount}` (Toss's "결제 승인") before the session expires (`session.rs`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::body::{self, ORDER_NAME_LEN_MAX, Object};
use super::charge::charge;
use super::error::TossError;
use super::payment::{NewPayment, TossCard};
use super::{TossAccount, TossWire, reply, session};
use crate::admin::admin_error;
use crate::execution::{Executed, PostParts, run_post, with_fault};
use crate::faults::TokenKind;
use crate::state::SimState;

/// Longest `paymentKey` Toss accepts.
const PAYMENT_KEY_LEN_MAX: usize = 200;
/// `orderName` of sessions created without one.
const DEFAULT_ORDER_NAME: &str = "simulated order";

/// `POST /_sim/toss/payment-sessions` with `{orderId, amount, card?,
/// orderName?}` (`card`: `success` (default), `decline`,
/// `insufficient_funds`, `review`): an authenticated payment that stays
/// `READY` until confirmed or expired; answers `{"paymentKey": ...}`.
pub async fn create_session(State(sim): State<Arc<SimState>>, body: Bytes) -> Response {
    let new = match session_request(&body) {
        Ok(new) => new,
        Err(message) => return admin_error(StatusCode::BAD_REQUEST, &message),
    };
    let created = sim.with_ledger(|ledger| {
        let payment = session::open(ledger, new, None).ok()?;
        session::authenticate(&sim, ledger, &payment.payment_key)
    });
    match created {
        Some(payment) => Json(json!({ "paymentKey": payment.payment_key })).into_response(),
        None => admin_error(StatusCode::CONFLICT, "orderId already has a payment"),
    }
}

fn session_request(body: &Bytes) -> Result<NewPayment, String> {
    let object = body::parse(body).map_err(|error| error.message)?;
    let order_id = body::order_id(&object).map_err(|error| error.message)?;
    let amount = body::required_amount(&object, "amount").map_err(|error| error.message)?;
    let card_name = object.get("card").and_then(|card| card.as_str()).unwrap_or("success");
    let test_card = TossCard::from_session_card(card_name).ok_or_else(|| format!("unknown card {card_name:?}"))?;
    let order_name = match object.get("orderName") {
        None => DEFAULT_ORDER_NAME.to_owned(),
        Some(_) => body::required_string(&object, "orderName", ORDER_NAME_LEN_MAX).map_err(|error| error.message)?,
    };
    Ok(NewPayment { kind: "NORMAL", order_id, order_name, amount, test_card })
}

/// A validated confirmation.
struct Confirmation {
    payment_key: String,
    order_id: String,
    amount: u64,
}

fn confirmation(object: &Object) -> Result<Confirmation, TossError> {
    Ok(Confirmation {
        payment_key: body::required_string(object, "paymentKey", PAYMENT_KEY_LEN_MAX)?,
        order_id: body::order_id(object)?,
        amount: body::required_amount(object, "amount")?,
    })
}

/// `POST /v1/payments/confirm`
pub async fn confirm_payment(input: PostParts<TossAccount>) -> Response {
    let (post, object) = match input.decode() {
        Ok(decoded) => decoded,
        Err(error) => return error.into_response(),
    };
    let sim = &input.sim;
    run_post::<TossWire>(sim, post, |attempt, key| {
        let request = match confirmation(&object) {
            Ok(request) => request,
            Err(error) => return Executed::now(error.reply()),
        };
        let kind = sim.with_ledger(|ledger| {
            ledger
                .toss
                .get(&request.payment_key)
                .filter(|payment| payment.awaiting_confirm())
                .map_or(TokenKind::Other, |payment| payment.test_card.fault_kind())
        });
        let fault = sim.faults.decide(kind, attempt);
        with_fault::<TossWire>(fault, &sim.faults, || {
            reply(sim.with_ledger(|ledger| {
                let total_amount = session::check_confirmable(sim, ledger, &request.payment_key, &request.order_id)?;
                if total_amount != request.amount {
                    return Err(TossError::invalid_request("결제 금액이 결제 요청 금액과 일치하지 않습니다."));
                }
                charge(sim, ledger, &request.payment_key, key)
            }))
        })
    })
    .await
}
