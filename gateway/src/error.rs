//! The one place where errors become HTTP and gRPC answers. Bodies follow Stripe's error
//! shape (`type`, `code`, `message`, `param`); internal errors are logged in full and shown to
//! the caller only as an opaque message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use payments_domain::FieldError;
use payments_store::StoreError;
use serde_json::json;

/// The `param` of idempotency errors: the header's name, as Stripe spells it.
pub const IDEMPOTENCY_KEY_PARAM: &str = "Idempotency-Key";

/// Codes of [`ApiError::InvalidRequest`] that refuse a well-formed request because of the
/// resource's state: gRPC answers them FAILED_PRECONDITION (REST keeps 400, as Stripe does).
/// `not_cancellable`: a checkout done; the others: a reconciliation break whose state forbids
/// the action, without a fix to approve, approved already, or whose approved fix failed.
const PRECONDITION_CODES: [&str; 5] =
    ["not_cancellable", "break_not_actionable", "no_suggested_fix", "already_approved", "fix_failed"];

/// An API failure.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is invalid; nothing was stored or started.
    #[error("{param}: {message}")]
    InvalidRequest {
        /// Machine-readable reason, e.g. `parameter_invalid`.
        code: &'static str,
        /// The offending field's path.
        param: String,
        /// Explanation for the caller.
        message: String,
    },
    /// The `Idempotency-Key` header is malformed, reused for another request (400) or its
    /// first request is still running (409).
    #[error("Idempotency-Key: {message}")]
    Idempotency {
        /// 400 or 409.
        status: StatusCode,
        /// `idempotency_key_invalid`, `idempotency_key_reused` or `idempotency_key_in_use`.
        code: &'static str,
        /// Explanation for the caller.
        message: String,
    },
    /// No usable API key: missing, malformed, unknown, revoked, expired, or of the other mode.
    #[error("unauthenticated: {message}")]
    Unauthenticated {
        /// `api_key_missing`, `api_key_malformed`, `api_key_invalid` or `api_key_mode_mismatch`.
        code: &'static str,
        /// Explanation for the caller (never the key).
        message: String,
    },
    /// The key is valid but lacks the scope the call needs.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// Too many requests: 429 with `Retry-After` (gRPC RESOURCE_EXHAUSTED).
    #[error("rate limited: {what}; retry after {retry_after_secs} s")]
    RateLimited {
        /// What was limited (`requests with this API key`, ...).
        what: String,
        /// Whole seconds until a retry can pass.
        retry_after_secs: u64,
    },
    /// No such resource.
    #[error("{0} not found")]
    NotFound(String),
    /// Something the gateway depends on did not answer in time (a workflow without a running
    /// worker); retrying later may succeed. The message is for the caller.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Our fault; details are logged, not returned.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    /// A validation failure of one field.
    pub fn invalid(code: &'static str, param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::InvalidRequest { code, param: param.into(), message: message.into() }
    }

    /// A 401 / UNAUTHENTICATED refusal.
    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unauthenticated { code, message: message.into() }
    }

    /// An `Idempotency-Key` failure answered with `status`.
    pub fn idempotency(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Idempotency { status, code, message: message.into() }
    }
}

/// Refuses a free-text field holding a card number (anywhere in it, any digits and
/// separators): card data must never reach our storage, logs or PSP metadata.
pub fn refuse_card_number(param: &str, value: &str) -> Result<(), ApiError> {
    if payments_domain::card::contains_card_number(value) {
        return Err(ApiError::invalid(
            "parameter_invalid",
            param,
            "looks like it holds a card number; card data must never be sent",
        ));
    }
    Ok(())
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::invalid("parameter_invalid", e.param, e.message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::CheckoutMismatch(id) => ApiError::invalid(
                "checkout_id_reused",
                "checkout_id",
                format!("checkout {id} already exists with different payment orders"),
            ),
            StoreError::OrderIdTaken { index, payment_order_id } => ApiError::invalid(
                "payment_order_id_taken",
                format!("payment_orders[{index}].payment_order_id"),
                format!("{payment_order_id} is already used by another checkout"),
            ),
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::RefundTooLarge { refundable } => {
                ApiError::invalid("refund_too_large", "amount", format!("at most {refundable} can still be refunded"))
            }
            // The key's first request created something else; no middleware record was left
            // to say so (a 5xx, a dropped connection), but the store's binding is durable.
            StoreError::ClientKeyTaken(_) => ApiError::idempotency(
                StatusCode::BAD_REQUEST,
                "idempotency_key_reused",
                "this idempotency key was already used for a different request; use a new key for a new request",
            ),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::InvalidRequest { code, param, message } => (
                StatusCode::BAD_REQUEST,
                json!({"error": {"type": "invalid_request_error", "code": code, "param": param,
                    "message": format!("{param}: {message}")}}),
            ),
            ApiError::Idempotency { status, code, message } => (
                *status,
                json!({"error": {"type": "idempotency_error", "code": code, "param": IDEMPOTENCY_KEY_PARAM,
                    "message": message}}),
            ),
            ApiError::Unauthenticated { code, message } => {
                let body = json!({"error": {"type": "invalid_request_error", "code": code, "message": message}});
                let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
                response.headers_mut().insert(
                    axum::http::header::WWW_AUTHENTICATE,
                    axum::http::HeaderValue::from_static("Bearer realm=\"payments\""),
                );
                return response;
            }
            ApiError::RateLimited { what, retry_after_secs } => {
                let body = json!({"error": {"type": "invalid_request_error", "code": "rate_limited",
                    "message": format!("too many {what}; retry after {retry_after_secs} s")}});
                let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(*retry_after_secs));
                return response;
            }
            ApiError::PermissionDenied(message) => (
                StatusCode::FORBIDDEN,
                json!({"error": {"type": "invalid_request_error", "code": "api_key_scope_missing",
                    "message": message}}),
            ),
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
                    "message": format!("{what} not found")}}),
            ),
            ApiError::Unavailable(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": {"type": "api_error", "code": "service_unavailable", "message": message}}),
            ),
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": {"type": "api_error", "message": "internal error; it has been logged"}}),
                )
            }
        };
        (status, axum::Json(body)).into_response()
    }
}

impl From<ApiError> for tonic::Status {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::InvalidRequest { code, param, message } if PRECONDITION_CODES.contains(&code) => {
                tonic::Status::failed_precondition(format!("{param}: {message}"))
            }
            ApiError::InvalidRequest { param, message, .. } => {
                tonic::Status::invalid_argument(format!("{param}: {message}"))
            }
            // REST-only today; mapped for completeness.
            ApiError::Idempotency { status, message, .. } if status == StatusCode::CONFLICT => {
                tonic::Status::aborted(message)
            }
            ApiError::Idempotency { message, .. } => tonic::Status::invalid_argument(message),
            ApiError::Unauthenticated { code, message } => tonic::Status::unauthenticated(format!("{code}: {message}")),
            ApiError::PermissionDenied(message) => tonic::Status::permission_denied(message),
            ApiError::RateLimited { what, retry_after_secs } => {
                let mut status =
                    tonic::Status::resource_exhausted(format!("too many {what}; retry after {retry_after_secs} s"));
                status.metadata_mut().insert("retry-after", retry_after_secs.into());
                status
            }
            ApiError::NotFound(what) => tonic::Status::not_found(format!("{what} not found")),
            ApiError::Unavailable(message) => tonic::Status::unavailable(message),
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                tonic::Status::internal("internal error; it has been logged")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal because of the resource's state is FAILED_PRECONDITION over gRPC; other
    /// validation failures stay INVALID_ARGUMENT. Both name the field.
    #[test]
    fn grpc_codes_of_refusals() {
        let status = tonic::Status::from(ApiError::invalid("not_cancellable", "checkout_id", "it is done"));
        assert_eq!((status.code(), status.message()), (tonic::Code::FailedPrecondition, "checkout_id: it is done"));
        let status = tonic::Status::from(ApiError::invalid("break_not_actionable", "break_id", "it is RESOLVED"));
        assert_eq!((status.code(), status.message()), (tonic::Code::FailedPrecondition, "break_id: it is RESOLVED"));
        let status = tonic::Status::from(ApiError::invalid("not_awaiting_review", "checkout_id", "it is done"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let status = tonic::Status::from(ApiError::invalid("parameter_invalid", "reason", "is required"));
        assert_eq!((status.code(), status.message()), (tonic::Code::InvalidArgument, "reason: is required"));
    }
}
