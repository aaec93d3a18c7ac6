//! REST JSON API of the seeds: `POST /v1/payments`, `GET /v1/payments/{payment_order_id}`,
//! `GET /v1/checkouts/{checkout_id}`, plus `GET /healthz`.

use crate::error::ApiError;
use crate::service::{Created, PaymentsService};
use crate::views::{checkout_json, order_json};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use payments_domain::checkout::draft_from_json;
use payments_domain::{CheckoutId, NewCheckout, PaymentOrderId};
use serde_json::Value;

/// Largest request body accepted. A 100-order checkout is well under 32 KiB.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;

/// The REST routes.
pub fn router(service: PaymentsService) -> Router {
    Router::new()
        .route("/v1/payments", post(create_payment))
        .route("/v1/payments/{payment_order_id}", get(get_payment))
        .route("/v1/checkouts/{checkout_id}", get(get_checkout))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .with_state(service)
}

async fn create_payment(
    State(service): State<PaymentsService>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid("body_malformed", "body", format!("is not valid JSON: {e}"))
    })?;
    let checkout = NewCheckout::parse(draft_from_json(&value)?)?;
    let (created, record) = service.create(checkout).await?;
    let status = match created {
        Created::New => StatusCode::ACCEPTED,
        Created::Existing => StatusCode::OK,
    };
    Ok((status, Json(checkout_json(&record))))
}

async fn get_payment(
    State(service): State<PaymentsService>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = PaymentOrderId::parse(id)
        .map_err(|e| ApiError::invalid("parameter_invalid", "payment_order_id", e.to_string()))?;
    Ok(Json(order_json(&service.order(&id).await?)))
}

async fn get_checkout(
    State(service): State<PaymentsService>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = CheckoutId::parse(id)
        .map_err(|e| ApiError::invalid("parameter_invalid", "checkout_id", e.to_string()))?;
    Ok(Json(checkout_json(&service.checkout(&id).await?)))
}
