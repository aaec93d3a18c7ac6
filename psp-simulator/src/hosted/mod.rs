//! The Toss hosted payment window: the PSP-hosted pages a browser test
//! drives, standing in for `https://js.tosspayments.com/v1/payment` and the
//! card window behind it.
//!
//! 1. The merchant page loads [`SDK_PATH`] with a `<script src>` and calls
//!    `TossPayments(clientKey).requestPayment("카드", {amount, orderId,
//!    orderName, successUrl, failUrl, customerName?})`; the script sends the
//!    browser to [`PAY_PATH`] on the simulator it was loaded from.
//! 2. The pay page (`GET /v1/pay?...`) shows the order and a choice of test
//!    cards ([`CARD_SUCCESS_ID`] checked by default, [`CARD_DECLINE_ID`],
//!    [`CARD_INSUFFICIENT_FUNDS_ID`], [`CARD_3DS_ID`], [`CARD_REVIEW_ID`]),
//!    a pay button ([`PAY_BUTTON_ID`]) and a cancel button
//!    ([`CANCEL_BUTTON_ID`]). Bad parameters (a client key not starting
//!    with [`TEST_CLIENT_KEY_PREFIX`], a non-positive amount, a malformed
//!    orderId, relative or non-http(s) return URLs, ...) give a 400 page
//!    with an [`ERROR_ID`] element.
//! 3. Paying (`POST /v1/pay`) opens a `READY` payment (as
//!    `/_sim/toss/payment-sessions` does), authenticates it and answers
//!    `303 See Other` to `successUrl` with `paymentType=NORMAL`, `orderId`,
//!    `paymentKey` and `amount` appended (its own query kept). The 3-D
//!    Secure card first goes to the challenge page
//!    ([`THREE_DS_PATH_PREFIX`]`{paymentKey}`: [`AUTHENTICATE_BUTTON_ID`] or
//!    [`FAIL_AUTHENTICATION_BUTTON_ID`], the latter ending at `failUrl` with
//!    [`FAIL_CODE_AUTHENTICATION`]). Cancelling goes to `failUrl` with
//!    [`FAIL_CODE_CANCELED`]; an order that already has a payment to
//!    `failUrl` with [`FAIL_CODE_DUPLICATED_ORDER`]. Every `failUrl`
//!    redirect carries `code`, `message` and `orderId`.
//! 4. The merchant server confirms with `POST /v1/payments/confirm` within
//!    `SimConfig::payment_session_ttl_ms`; the card decides the outcome
//!    (`DONE`, `REJECT_CARD_COMPANY`, `REJECT_CARD_PAYMENT`, or
//!    `IN_PROGRESS` until `/_sim/review/{paymentKey}`). See
//!    `toss/session.rs` for the payment's states.
//!
//! CSS selectors are `#` followed by the ids below. Files: `sdk.rs` (the
//! script), `request.rs` (parameters and cards), `pages.rs` (HTML),
//! `pay.rs` (handlers and redirects).

mod pages;
mod pay;
mod request;
mod sdk;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::state::SimState;

/// Path of the JavaScript SDK stand-in.
pub const SDK_PATH: &str = "/js/v1/tosspayments.js";
/// Path of the pay page (GET) and of its form (POST).
pub const PAY_PATH: &str = "/v1/pay";
/// Prefix of the 3-D Secure challenge page; the `paymentKey` follows.
pub const THREE_DS_PATH_PREFIX: &str = "/v1/pay/3ds/";
/// Client keys the pay page accepts start with this (Toss test keys).
pub const TEST_CLIENT_KEY_PREFIX: &str = "test_ck_";

/// Radio button of the card that is approved on confirm (checked by default).
pub const CARD_SUCCESS_ID: &str = "card-success";
/// Radio button of the card the issuer declines (`REJECT_CARD_COMPANY`).
pub const CARD_DECLINE_ID: &str = "card-decline";
/// Radio button of the card without funds (`REJECT_CARD_PAYMENT`).
pub const CARD_INSUFFICIENT_FUNDS_ID: &str = "card-insufficient-funds";
/// Radio button of the card that needs a 3-D Secure challenge.
pub const CARD_3DS_ID: &str = "card-3ds";
/// Radio button of the card whose approval waits in manual review.
pub const CARD_REVIEW_ID: &str = "card-review";
/// The pay page's submit button.
pub const PAY_BUTTON_ID: &str = "pay";
/// The pay page's cancel button (the buyer closes the window).
pub const CANCEL_BUTTON_ID: &str = "cancel";
/// The challenge page's button that passes authentication.
pub const AUTHENTICATE_BUTTON_ID: &str = "authenticate";
/// The challenge page's button that fails authentication.
pub const FAIL_AUTHENTICATION_BUTTON_ID: &str = "fail-authentication";
/// The element holding the message of an error page.
pub const ERROR_ID: &str = "error";
/// The element showing the order name (pay and challenge pages).
pub const ORDER_NAME_ID: &str = "order-name";
/// The element showing the amount; its `data-amount` is the plain number.
pub const AMOUNT_ID: &str = "amount";

/// `failUrl` code when the buyer cancels (closes) the window (Toss's).
pub const FAIL_CODE_CANCELED: &str = "PAY_PROCESS_CANCELED";
/// `failUrl` code when card authentication fails: Toss's documented
/// `failUrl` code for a payment stopped during the window.
pub const FAIL_CODE_AUTHENTICATION: &str = "PAY_PROCESS_ABORTED";
/// `failUrl` code when the order already has a live payment.
pub const FAIL_CODE_DUPLICATED_ORDER: &str = "DUPLICATED_ORDER_ID";

/// Routes of the payment window (no authentication: a browser calls them).
pub fn router(sim: Arc<SimState>) -> Router {
    Router::new()
        .route(SDK_PATH, get(sdk::serve))
        .route(PAY_PATH, get(pay::pay_page).post(pay::pay_submit))
        .route("/v1/pay/3ds/{payment_key}", get(pay::challenge_page).post(pay::challenge_submit))
        .with_state(sim)
}
