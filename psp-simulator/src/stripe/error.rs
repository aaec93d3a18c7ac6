//! Stripe's error envelope: `{"error":{"type":...,"code":...,"message":...}}`.
//!
//! Each variant knows its HTTP status, its Stripe `type`/`code`, and whether
//! Stripe would store it as the idempotent result of the request (only
//! requests that started executing are stored; validation failures are not,
//! so a client may fix its parameters and retry with the same key).

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::cards::Decline;
use super::intent::PaymentIntent;

const TYPE_INVALID_REQUEST: &str = "invalid_request_error";
const TYPE_CARD: &str = "card_error";
const TYPE_IDEMPOTENCY: &str = "idempotency_error";
const TYPE_API: &str = "api_error";

/// An error answered in Stripe's wire format.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization` header, or an empty Bearer token.
    #[error(
        "You did not provide an API key. You need to provide your API key in the \
         Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
    )]
    ApiKeyMissing,
    /// A key that is not an `sk_test_` key; `masked` never holds the full key.
    #[error("Invalid API Key provided: {masked}")]
    ApiKeyInvalid { masked: String },
    /// A parameter the endpoint does not know.
    #[error("Received unknown parameter: {param}")]
    ParameterUnknown { param: String },
    /// A required parameter is absent.
    #[error("Missing required param: {param}.")]
    ParameterMissing { param: String },
    /// A parameter is present but its value is unacceptable.
    #[error("{message}")]
    ParameterInvalid { param: String, code: Option<&'static str>, message: String },
    /// The request as a whole is malformed (body, headers, query grammar).
    #[error("{message}")]
    InvalidRequest { message: String },
    /// `payment_method` names no known test payment method.
    #[error("No such PaymentMethod: '{token}'")]
    NoSuchPaymentMethod { token: String },
    /// No payment intent has this id.
    #[error("No such payment_intent: '{id}'")]
    NoSuchPaymentIntent { id: String },
    /// No balance transaction has this id (a bad `starting_after`).
    #[error("No such balance transaction: '{id}'")]
    NoSuchBalanceTransaction { id: String },
    /// No refund has this id.
    #[error("No such refund: '{id}'")]
    NoSuchRefund { id: String },
    /// No refund has this id, given as a list cursor (`starting_after`).
    #[error("No such refund: '{id}'")]
    NoSuchRefundCursor { id: String },
    /// No charge has this id.
    #[error("No such charge: '{id}'")]
    NoSuchCharge { id: String },
    /// No route matches the URL.
    #[error("Unrecognized request URL ({method}: {path}).")]
    UnrecognizedUrl { method: String, path: String },
    /// The card was declined; the intent was stored and is returned inside.
    #[error("{}", decline.message)]
    CardDeclined { decline: Box<Decline>, intent: Box<PaymentIntent> },
    /// The intent's status forbids the operation.
    #[error("{message}")]
    UnexpectedState { message: String, intent: Box<PaymentIntent> },
    /// An idempotency key was reused for a different request.
    #[error(
        "Keys for idempotent requests can only be used with the same parameters they were \
         first used with. Try using a key other than '{key}' if you meant to execute a \
         different request."
    )]
    IdempotencyMismatch { key: String },
    /// A simulated internal error (fault injection).
    #[error("An unknown error occurred")]
    ServerError,
    /// A simulated rate limit (fault injection), in Stripe's 429 shape.
    #[error(
        "Too many requests hit the API too quickly. We recommend an exponential backoff of \
         your requests."
    )]
    RateLimited,
    /// A refund the charge cannot take (nothing or not enough left, or no
    /// successful charge).
    #[error("{message}")]
    RefundRejected { code: &'static str, message: String, param: Option<&'static str> },
}

impl ApiError {
    /// HTTP status Stripe uses for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::ApiKeyMissing | Self::ApiKeyInvalid { .. } => StatusCode::UNAUTHORIZED,
            Self::CardDeclined { .. } => StatusCode::PAYMENT_REQUIRED,
            // Served as the edge's 503, which Stripe does not save under the idempotency key
            // (a 500 from the API layer is saved and replayed): the same key may be retried.
            Self::ServerError => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::NoSuchPaymentIntent { .. }
            | Self::NoSuchCharge { .. }
            | Self::NoSuchRefund { .. }
            | Self::UnrecognizedUrl { .. } => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Whether Stripe stores this as the idempotent result: only errors
    /// raised after the request started executing.
    pub fn is_idempotent_result(&self) -> bool {
        matches!(self, Self::CardDeclined { .. } | Self::UnexpectedState { .. } | Self::RefundRejected { .. })
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::CardDeclined { .. } => TYPE_CARD,
            Self::IdempotencyMismatch { .. } => TYPE_IDEMPOTENCY,
            Self::ServerError => TYPE_API,
            _ => TYPE_INVALID_REQUEST,
        }
    }

    fn code(&self) -> Option<&'static str> {
        match self {
            Self::ParameterUnknown { .. } => Some("parameter_unknown"),
            Self::ParameterMissing { .. } => Some("parameter_missing"),
            Self::ParameterInvalid { code, .. } => *code,
            Self::NoSuchPaymentMethod { .. }
            | Self::NoSuchPaymentIntent { .. }
            | Self::NoSuchCharge { .. }
            | Self::NoSuchBalanceTransaction { .. }
            | Self::NoSuchRefund { .. }
            | Self::NoSuchRefundCursor { .. } => Some("resource_missing"),
            Self::CardDeclined { .. } => Some("card_declined"),
            Self::UnexpectedState { .. } => Some("payment_intent_unexpected_state"),
            Self::RateLimited => Some("rate_limit"),
            Self::RefundRejected { code, .. } => Some(code),
            _ => None,
        }
    }

    fn param(&self) -> Option<&str> {
        match self {
            Self::ParameterUnknown { param }
            | Self::ParameterMissing { param }
            | Self::ParameterInvalid { param, .. } => Some(param),
            Self::NoSuchPaymentMethod { .. } => Some("payment_method"),
            Self::NoSuchPaymentIntent { .. } => Some("intent"),
            Self::NoSuchCharge { .. } => Some("charge"),
            Self::NoSuchRefund { .. } => Some("id"),
            Self::NoSuchBalanceTransaction { .. } | Self::NoSuchRefundCursor { .. } => Some("starting_after"),
            Self::RefundRejected { param, .. } => *param,
            _ => None,
        }
    }

    /// The JSON body, as bytes (stored verbatim for idempotent replay).
    pub fn body(&self) -> Bytes {
        let code = self.code();
        let decline = match self {
            Self::CardDeclined { decline, .. } => Some(decline.as_ref()),
            _ => None,
        };
        let intent = match self {
            Self::CardDeclined { intent, .. } | Self::UnexpectedState { intent, .. } => Some(intent.as_ref()),
            _ => None,
        };
        let object = ErrorObject {
            kind: self.kind(),
            code,
            decline_code: decline.map(|d| d.decline_code),
            message: self.to_string(),
            param: self.param(),
            charge: decline.map(|d| d.charge.as_str()),
            doc_url: code.map(|c| format!("https://stripe.com/docs/error-codes/{}", c.replace('_', "-"))),
            payment_intent: intent,
            payment_method: decline.map(Decline::payment_method_object),
        };
        json_bytes(&ErrorEnvelope { error: object })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status(), self.body())
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decline_code: Option<&'static str>,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    charge: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    doc_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_intent: Option<&'a PaymentIntent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_method: Option<serde_json::Value>,
}

/// Serializes `value`; our types always serialize, but if one ever did not
/// the client still gets a well-formed Stripe `api_error`.
pub fn json_bytes<T: Serialize>(value: &T) -> Bytes {
    match serde_json::to_vec(value) {
        Ok(bytes) => Bytes::from(bytes),
        Err(error) => {
            tracing::error!(%error, "response serialization failed");
            Bytes::from_static(br#"{"error":{"type":"api_error","message":"An unknown error occurred."}}"#)
        }
    }
}

/// A JSON response with the given status and pre-serialized body.
pub fn json_response(status: StatusCode, body: Bytes) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Masks an API key the way Stripe does in error messages: the first 8
/// characters, `*****`, the last 4. Short keys are masked entirely so the
/// visible parts can never add up to the whole key.
pub fn mask_api_key(key: &str) -> String {
    const SHOWN_PREFIX: usize = 8;
    const SHOWN_SUFFIX: usize = 4;
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= SHOWN_PREFIX + SHOWN_SUFFIX {
        return "*****".to_owned();
    }
    let prefix: String = chars[..SHOWN_PREFIX].iter().collect();
    let suffix: String = chars[chars.len() - SHOWN_SUFFIX..].iter().collect();
    format!("{prefix}*****{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long keys show only their ends; short keys show nothing.
    #[test]
    fn masks_api_keys() {
        assert_eq!(mask_api_key("sk_live_abcdefghijklmnop1234"), "sk_live_*****1234");
        assert_eq!(mask_api_key("sk_live_1234"), "*****");
        assert_eq!(mask_api_key(""), "*****");
    }

    /// Simulated faults use Stripe's shapes for 500 and 429.
    #[test]
    fn fault_bodies() {
        let server: serde_json::Value = serde_json::from_slice(&ApiError::ServerError.body()).unwrap();
        assert_eq!(server, serde_json::json!({"error": {"type": "api_error", "message": "An unknown error occurred"}}));
        let limited: serde_json::Value = serde_json::from_slice(&ApiError::RateLimited.body()).unwrap();
        assert_eq!(limited["error"]["type"], "invalid_request_error");
        assert_eq!(limited["error"]["code"], "rate_limit");
        assert_eq!(ApiError::RateLimited.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    /// Error bodies use Stripe's envelope and omit absent fields.
    #[test]
    fn unknown_parameter_body() {
        let error = ApiError::ParameterUnknown { param: "foo".to_owned() };
        let body: serde_json::Value = serde_json::from_slice(&error.body()).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "parameter_unknown");
        assert_eq!(body["error"]["param"], "foo");
        assert_eq!(body["error"]["message"], "Received unknown parameter: foo");
        assert!(body["error"].get("decline_code").is_none());
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
    }
}
