//! Toss Payments' error shape: `{"code": "...", "message": "..."}` with
//! Toss's HTTP status for each code.
//!
//! Codes and statuses follow Toss's published error-code table. Two are the
//! simulator's own where Toss documents none: `TOO_MANY_REQUESTS` for the
//! simulated 429, and `INVALID_REQUEST` for an idempotency key reused with
//! a different request (Toss itself keys replays on key, URL and method
//! only; the simulator is stricter so such client bugs surface in tests).

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::execution::Reply;
use crate::stripe::error::{json_bytes, json_response};

/// An error answered in Toss's wire format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TossError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Whether this is the idempotent result of a request that started
    /// executing (stored for replay), as opposed to a validation failure.
    pub stored: bool,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

impl TossError {
    fn new(status: StatusCode, code: &'static str, message: &str) -> Self {
        Self { status, code, message: message.to_owned(), stored: false }
    }

    /// The same error, marked as the idempotent result of an execution.
    pub fn executed(mut self) -> Self {
        self.stored = true;
        self
    }

    /// `401 UNAUTHORIZED_KEY`: missing, malformed or non-test secret key.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.")
    }

    /// `400 INVALID_REQUEST` with a specific explanation.
    pub fn invalid_request(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }

    /// `400 INVALID_IDEMPOTENCY_KEY`: empty or overlong key.
    pub fn invalid_idempotency_key(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_IDEMPOTENCY_KEY", message)
    }

    /// `404 NOT_FOUND_PAYMENT`.
    pub fn not_found_payment() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다.")
    }

    /// `404 NOT_FOUND_PAYMENT_SESSION`: no payment awaiting confirmation.
    pub fn not_found_payment_session() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND_PAYMENT_SESSION",
            "결제 시간이 만료되어 결제 진행 데이터가 존재하지 않습니다.",
        )
    }

    /// `404 NOT_FOUND_BILLING`: unknown billing key.
    pub fn not_found_billing() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND_BILLING", "존재하지 않는 빌링 결제 인증 정보 입니다.")
    }

    /// `400 ALREADY_PROCESSED_PAYMENT`.
    pub fn already_processed() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ALREADY_PROCESSED_PAYMENT", "이미 처리된 결제 입니다.")
    }

    /// `400 DUPLICATED_ORDER_ID`: the order was already paid or canceled.
    pub fn duplicated_order_id() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "DUPLICATED_ORDER_ID",
            "이미 승인 및 취소가 진행된 중복된 주문번호 입니다. 다른 주문번호로 진행해주세요.",
        )
    }

    /// `403 REJECT_CARD_COMPANY`: the issuer declined.
    pub fn reject_card_company() -> Self {
        Self::new(StatusCode::FORBIDDEN, "REJECT_CARD_COMPANY", "결제 승인이 거절되었습니다.")
    }

    /// `403 REJECT_CARD_PAYMENT`: over the limit or insufficient balance.
    pub fn reject_card_payment() -> Self {
        Self::new(StatusCode::FORBIDDEN, "REJECT_CARD_PAYMENT", "한도초과 혹은 잔액부족으로 결제에 실패했습니다.")
    }

    /// `403 FDS_ERROR`: rejected by fraud screening (a rejected review).
    pub fn fds_error() -> Self {
        Self::new(StatusCode::FORBIDDEN, "FDS_ERROR", "[토스페이먼츠] 위험거래가 감지되어 결제가 제한됩니다.")
    }

    /// `500 FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING` (simulated fault).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
            "결제가 완료되지 않았어요. 다시 시도해주세요.",
        )
    }

    /// `429 TOO_MANY_REQUESTS` (simulated fault).
    pub fn too_many_requests() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "요청이 너무 많습니다. 잠시 후 다시 시도해주세요.",
        )
    }

    /// `400 ALREADY_CANCELED_PAYMENT`.
    pub fn already_canceled() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ALREADY_CANCELED_PAYMENT", "이미 취소된 결제 입니다.")
    }

    /// `403 NOT_CANCELABLE_AMOUNT`: more than the balance.
    pub fn not_cancelable_amount() -> Self {
        Self::new(StatusCode::FORBIDDEN, "NOT_CANCELABLE_AMOUNT", "취소 할 수 없는 금액 입니다.")
    }

    /// `403 NOT_CANCELABLE_PAYMENT`: not in a cancelable state.
    pub fn not_cancelable_payment() -> Self {
        Self::new(StatusCode::FORBIDDEN, "NOT_CANCELABLE_PAYMENT", "취소 할 수 없는 결제 입니다.")
    }

    /// The JSON body.
    pub fn body(&self) -> Bytes {
        json_bytes(&Body { code: self.code, message: &self.message })
    }

    /// The reply for the shared POST flow.
    pub fn reply(&self) -> Reply {
        Reply::new(self.status, self.body(), self.stored)
    }

    /// The `failure` object Toss embeds in a failed Payment.
    pub fn failure(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code, "message": self.message })
    }
}

impl IntoResponse for TossError {
    fn into_response(self) -> Response {
        json_response(self.status, self.body())
    }
}
