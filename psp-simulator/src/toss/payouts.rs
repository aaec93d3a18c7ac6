//! `POST /_sim/toss/payouts` (admin): simulates a completed Toss payout
//! (지급대행) and emits its signed `payout.changed` webhook, shaped like
//! Toss's: `{eventType, createdAt, version, eventId, entityType: "payout",
//! entityBody: <payout>}`. Answers the payout object.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::body::{self, Object};
use super::payment::{CURRENCY_KRW, TOSS_API_VERSION};
use crate::admin::admin_error;
use crate::clock::{KST_OFFSET_SECS, iso_kst, today, unix_now};
use crate::state::{SimState, random_alnum};

/// Longest `payoutId` / `destination` accepted.
const PAYOUT_FIELD_LEN_MAX: usize = 100;
/// Random characters of generated payout and event ids.
const PAYOUT_ID_RANDOM_LEN: usize = 20;

/// `POST /_sim/toss/payouts` with `{payoutId?, amount, destination}`.
pub async fn create_payout(State(sim): State<Arc<SimState>>, body: Bytes) -> Response {
    let payout = match body::parse(&body).and_then(|object| payout(&object)) {
        Ok(payout) => payout,
        Err(error) => return admin_error(StatusCode::BAD_REQUEST, &error.message),
    };
    let event_id = random_alnum(PAYOUT_ID_RANDOM_LEN);
    let event = json!({
        "eventType": "payout.changed",
        "createdAt": iso_kst(unix_now()),
        "version": TOSS_API_VERSION,
        "eventId": event_id,
        "entityType": "payout",
        "entityBody": payout,
    });
    sim.webhooks.send_toss_payout(event_id, event.to_string());
    Json(payout).into_response()
}

/// The payout entity for a validated request.
fn payout(object: &Object) -> Result<Value, super::error::TossError> {
    let amount = body::required_amount(object, "amount")?;
    let destination = body::required_string(object, "destination", PAYOUT_FIELD_LEN_MAX)?;
    let reference = match object.get("payoutId") {
        None => format!("payout_{}", random_alnum(PAYOUT_ID_RANDOM_LEN)),
        Some(_) => body::required_string(object, "payoutId", PAYOUT_FIELD_LEN_MAX)?,
    };
    let now = unix_now();
    let payout_date = today(KST_OFFSET_SECS);
    Ok(json!({
        "id": format!("FPA_{}", random_alnum(PAYOUT_ID_RANDOM_LEN)),
        "refPayoutId": reference,
        "destination": destination,
        "scheduleType": "EXPRESS",
        "payoutDate": payout_date.to_string(),
        "amount": { "currency": CURRENCY_KRW, "value": amount },
        "transactionDescription": "대금지급",
        "requestedAt": iso_kst(now),
        "status": "COMPLETED",
        "error": null,
        "metadata": null,
    }))
}
