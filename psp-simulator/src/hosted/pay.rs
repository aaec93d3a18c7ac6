//! The payment window's handlers: the pay page and its form, the 3-D
//! Secure challenge, and the `303 See Other` redirects back to the merchant.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use reqwest::Url;

use super::request::{Fields, HostedCard, PayRequest, decode};
use super::{FAIL_CODE_AUTHENTICATION, FAIL_CODE_CANCELED, FAIL_CODE_DUPLICATED_ORDER, THREE_DS_PATH_PREFIX, pages};
use crate::state::SimState;
use crate::toss::payment::{NewPayment, Payment, PaymentStatus};
use crate::toss::session::{self, ReturnUrls};

/// `paymentType` Toss appends to `successUrl` for a one-off payment.
const PAYMENT_TYPE_NORMAL: &str = "NORMAL";
/// Message sent with [`FAIL_CODE_CANCELED`] (Toss's).
const MESSAGE_CANCELED: &str = "사용자에 의해 결제가 취소되었습니다.";
/// Message sent with [`FAIL_CODE_AUTHENTICATION`] (Toss's).
const MESSAGE_AUTHENTICATION: &str = "결제 진행 중 승인에 실패하여 결제가 중단되었습니다.";
/// Message sent with [`FAIL_CODE_DUPLICATED_ORDER`] (Toss's).
const MESSAGE_DUPLICATED_ORDER: &str =
    "이미 승인 및 취소가 진행된 중복된 주문번호 입니다. 다른 주문번호로 진행해주세요.";

/// `GET /v1/pay?clientKey=..&method=..&amount=..&orderId=..&orderName=..
/// &successUrl=..&failUrl=..[&customerName=..]`
pub(super) async fn pay_page(RawQuery(query): RawQuery) -> Response {
    match decode(query.unwrap_or_default().as_bytes()).and_then(|f| PayRequest::from_fields(&f)) {
        Ok(request) => pages::pay_page(&request),
        Err(message) => pages::error(StatusCode::BAD_REQUEST, &message),
    }
}

/// `POST /v1/pay`: the pay page's form (`action=pay|cancel`, `card=...`).
pub(super) async fn pay_submit(State(sim): State<Arc<SimState>>, body: Bytes) -> Response {
    let (fields, request) = match decode(&body).and_then(|fields| {
        let request = PayRequest::from_fields(&fields)?;
        Ok((fields, request))
    }) {
        Ok(decoded) => decoded,
        Err(message) => return pages::error(StatusCode::BAD_REQUEST, &message),
    };
    match fields.get("action").map(String::as_str) {
        None | Some("pay") => pay(&sim, &fields, request),
        Some("cancel") => fail_redirect(&request.urls, FAIL_CODE_CANCELED, MESSAGE_CANCELED, &request.order_id),
        Some(_) => pages::error(StatusCode::BAD_REQUEST, "action must be pay or cancel"),
    }
}

/// Opens the payment and authenticates it (or starts the challenge).
fn pay(sim: &Arc<SimState>, fields: &Fields, request: PayRequest) -> Response {
    let Some(card) = HostedCard::from_value(fields.get("card").map(String::as_str)) else {
        return pages::error(StatusCode::BAD_REQUEST, "unknown test card");
    };
    let new = NewPayment {
        kind: "NORMAL",
        order_id: request.order_id.clone(),
        order_name: request.order_name.clone(),
        amount: request.amount,
        test_card: card.test_card(),
    };
    let urls = request.urls.clone();
    let opened = sim.with_ledger(|ledger| {
        let payment = session::open(ledger, new, Some(urls)).ok()?;
        if card == HostedCard::ThreeDs {
            return Some(payment);
        }
        session::authenticate(sim, ledger, &payment.payment_key)
    });
    match opened {
        None => fail_redirect(&request.urls, FAIL_CODE_DUPLICATED_ORDER, MESSAGE_DUPLICATED_ORDER, &request.order_id),
        Some(payment) if card == HostedCard::ThreeDs => {
            see_other(format!("{THREE_DS_PATH_PREFIX}{}", payment.payment_key))
        }
        Some(payment) => success_redirect(&payment),
    }
}

/// Whether `payment` is a window payment waiting for its 3-D Secure
/// challenge.
fn challengeable(payment: &Payment) -> bool {
    payment.status == PaymentStatus::Ready && payment.window.is_some() && payment.confirm_deadline_ms.is_none()
}

/// Why a challenge cannot go on: the status and message of the error page.
type ChallengeRefusal = (StatusCode, &'static str);

/// The payment `payment_key` if it waits for its challenge.
fn challenged(sim: &SimState, payment_key: &str) -> Result<Payment, ChallengeRefusal> {
    match sim.with_ledger(|ledger| ledger.toss.get(payment_key).cloned()) {
        None => Err((StatusCode::NOT_FOUND, "unknown payment")),
        Some(payment) if challengeable(&payment) => Ok(payment),
        Some(_) => Err((StatusCode::CONFLICT, "this payment is not waiting for authentication")),
    }
}

/// `GET /v1/pay/3ds/{paymentKey}`: the challenge page.
pub(super) async fn challenge_page(State(sim): State<Arc<SimState>>, Path(payment_key): Path<String>) -> Response {
    match challenged(&sim, &payment_key) {
        Ok(payment) => pages::challenge_page(&payment),
        Err((status, message)) => pages::error(status, message),
    }
}

/// `POST /v1/pay/3ds/{paymentKey}` with `result=authenticate|fail`.
pub(super) async fn challenge_submit(
    State(sim): State<Arc<SimState>>,
    Path(payment_key): Path<String>,
    body: Bytes,
) -> Response {
    let passed = match decode(&body).map(|fields| fields.get("result").cloned()) {
        Ok(Some(result)) if result == "authenticate" => true,
        Ok(Some(result)) if result == "fail" => false,
        _ => {
            return pages::error(StatusCode::BAD_REQUEST, "result must be authenticate or fail");
        }
    };
    let finished = sim.with_ledger(|ledger| {
        let payment = ledger.toss.get_mut(&payment_key).filter(|payment| challengeable(payment))?;
        if passed {
            return session::authenticate(&sim, ledger, &payment_key);
        }
        session::give_up(payment, FAIL_CODE_AUTHENTICATION, MESSAGE_AUTHENTICATION);
        Some(payment.clone())
    });
    let Some(payment) = finished else {
        // Reports why: unknown, or no longer waiting.
        let (status, message) = challenged(&sim, &payment_key)
            .err()
            .unwrap_or((StatusCode::CONFLICT, "this payment is not waiting for authentication"));
        return pages::error(status, message);
    };
    match (&payment.window, passed) {
        (_, true) => success_redirect(&payment),
        (Some(urls), false) => fail_redirect(urls, FAIL_CODE_AUTHENTICATION, MESSAGE_AUTHENTICATION, &payment.order_id),
        (None, false) => pages::error(StatusCode::CONFLICT, MESSAGE_AUTHENTICATION),
    }
}

/// `303 See Other` to the merchant's `successUrl` for `payment`.
fn success_redirect(payment: &Payment) -> Response {
    let Some(urls) = &payment.window else {
        return pages::error(StatusCode::INTERNAL_SERVER_ERROR, "payment has no window");
    };
    let amount = payment.total_amount.to_string();
    redirect_with(
        &urls.success_url,
        &[
            ("paymentType", PAYMENT_TYPE_NORMAL),
            ("orderId", &payment.order_id),
            ("paymentKey", &payment.payment_key),
            ("amount", &amount),
        ],
    )
}

/// `303 See Other` to the merchant's `failUrl` with Toss's error fields.
fn fail_redirect(urls: &ReturnUrls, code: &str, message: &str, order_id: &str) -> Response {
    redirect_with(&urls.fail_url, &[("code", code), ("message", message), ("orderId", order_id)])
}

/// `303 See Other` to `base` with `pairs` appended to its query.
fn redirect_with(base: &str, pairs: &[(&str, &str)]) -> Response {
    // Return URLs were validated as absolute URLs when the window opened.
    let Ok(mut url) = Url::parse(base) else {
        return pages::error(StatusCode::BAD_REQUEST, "invalid return URL");
    };
    url.query_pairs_mut().extend_pairs(pairs);
    see_other(url.into())
}

/// `303 See Other` to `location`.
fn see_other(location: String) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}
