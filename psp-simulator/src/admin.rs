//! Simulator-only endpoints for tests and operators (not part of any PSP's
//! API): the capture and refund ledgers, the request log, the webhook
//! delivery log, manual-review resolution, the outage switch, forced
//! expiry of idempotency keys, counters and a health check. They need no
//! authentication because the simulator only ever holds test data.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ledger::{Capture, RefundRecord};
use crate::outage::OutageSetting;
use crate::request_log::LoggedRequest;
use crate::state::SimState;
use crate::stripe::error::json_bytes;
use crate::stripe::resolve::{self, ResolveError, Verdict};
use crate::toss;
use crate::webhooks::DeliveryRecord;

/// Routes under `/_sim` plus `/healthz`.
pub fn router(sim: Arc<SimState>) -> Router {
    Router::new()
        .route("/_sim/captures", get(captures))
        .route("/_sim/idempotency/expire", post(expire_idempotency_keys))
        .route("/_sim/outage", get(outage).post(set_outage))
        .route("/_sim/refunds", get(refunds))
        .route("/_sim/requests", get(requests))
        .route("/_sim/review/{id}", post(review))
        .route("/_sim/stats", get(stats))
        .route("/_sim/webhooks", get(webhooks))
        .route("/healthz", get(healthz))
        .with_state(sim)
}

/// An admin error: `{"error": "<message>"}` with `status`.
pub fn admin_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderQuery {
    payment_order_id: Option<String>,
}

#[derive(Serialize)]
struct CapturesBody {
    captures: Vec<Capture>,
}

/// `GET /_sim/captures[?payment_order_id=X]`: captures in creation order.
async fn captures(State(sim): State<Arc<SimState>>, Query(query): Query<OrderQuery>) -> Json<CapturesBody> {
    let captures = sim.with_ledger(|ledger| ledger.captures(query.payment_order_id.as_deref()));
    Json(CapturesBody { captures })
}

#[derive(Serialize)]
struct RefundsBody {
    refunds: Vec<RefundRecord>,
}

/// `GET /_sim/refunds[?payment_order_id=X]`: refunds and cancellations in
/// creation order.
async fn refunds(State(sim): State<Arc<SimState>>, Query(query): Query<OrderQuery>) -> Json<RefundsBody> {
    let refunds = sim.with_ledger(|ledger| ledger.refunds(query.payment_order_id.as_deref()));
    Json(RefundsBody { refunds })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestsQuery {
    idempotency_key: Option<String>,
}

#[derive(Serialize)]
struct RequestsBody {
    requests: Vec<LoggedRequest>,
}

/// `GET /_sim/requests[?idempotency_key=K]`: logged POSTs in arrival order.
async fn requests(State(sim): State<Arc<SimState>>, Query(query): Query<RequestsQuery>) -> Json<RequestsBody> {
    Json(RequestsBody { requests: sim.requests.matching(query.idempotency_key.as_deref()) })
}

#[derive(Deserialize)]
struct ReviewBody {
    result: String,
}

/// `POST /_sim/review/{id}` with `{"result":"approve"|"reject"}`: resolves
/// a payment in manual review — a Stripe intent (`pi_...`) or a Toss
/// `paymentKey` — and answers the updated intent or Payment. A canceled
/// payment is refused: Stripe's 400 `payment_intent_unexpected_state` or
/// Toss's 400 `ALREADY_CANCELED_PAYMENT`.
async fn review(State(sim): State<Arc<SimState>>, Path(id): Path<String>, Json(body): Json<ReviewBody>) -> Response {
    let verdict = match body.result.as_str() {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        _ => return admin_error(StatusCode::BAD_REQUEST, "result must be approve or reject"),
    };
    // Stripe ids are `pi_...`; Toss payment keys never contain `_`.
    let stripe = id.starts_with("pi_");
    let resolved = if stripe {
        resolve::resolve_review(&sim, &id, verdict).map(|intent| json_bytes(&intent))
    } else {
        toss::review::resolve_review(&sim, &id, verdict).map(|payment| json_bytes(&payment))
    };
    match resolved {
        Ok(body) => json_ok(body),
        Err(ResolveError::NotFound) => admin_error(StatusCode::NOT_FOUND, "no such payment"),
        Err(ResolveError::NotWaiting) => admin_error(StatusCode::CONFLICT, "payment is not in review"),
        // Canceled payments are refused in their PSP's own words.
        Err(ResolveError::Canceled) if stripe => resolve::canceled_error(&sim, &id, "review")
            .map_or_else(|| admin_error(StatusCode::NOT_FOUND, "no such payment"), IntoResponse::into_response),
        Err(ResolveError::Canceled) => toss::error::TossError::already_canceled().into_response(),
    }
}

fn json_ok(body: axum::body::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /_sim/outage`: which PSP operations are down and whether refund
/// answers are lost, `{"charges": bool, "lookups": bool, "refunds": bool,
/// "refund_answers_lost": bool}`.
async fn outage(State(sim): State<Arc<SimState>>) -> Json<OutageSetting> {
    Json(sim.outage.get())
}

/// `POST /_sim/outage` with `{"charges"?, "lookups"?, "refunds"?,
/// "refund_answers_lost"?}` (booleans, missing ones `false`): replaces the
/// whole setting and answers it. `refund_answers_lost`: refunds execute and
/// are stored, but the connection closes unanswered (see `outage.rs`).
/// Read as JSON whatever the `Content-Type`, so a bare `curl -d` works.
async fn set_outage(State(sim): State<Arc<SimState>>, body: Bytes) -> Response {
    match OutageSetting::parse(&body) {
        Ok(setting) => {
            sim.outage.set(setting);
            tracing::info!(?setting, "outage switch set");
            Json(setting).into_response()
        }
        Err(message) => admin_error(StatusCode::BAD_REQUEST, &message),
    }
}

/// Body of `POST /_sim/idempotency/expire`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpireBody {
    key: Option<String>,
}

/// `POST /_sim/idempotency/expire` with an optional `{"key": "<idempotency
/// key>"}`: forgets that key in every account now — or every key of every
/// account if the body is empty or has no `key` — as if its TTL had passed
/// at the PSP, so the next request with it executes as with a brand-new key
/// (attempt 1, no replay, no key-reuse check). Keys a request holds or
/// waits for right now are kept. Answers `{"expired": <keys forgotten>}`.
async fn expire_idempotency_keys(State(sim): State<Arc<SimState>>, body: Bytes) -> Response {
    let key = match expiry_key(&body) {
        Ok(key) => key,
        Err(message) => return admin_error(StatusCode::BAD_REQUEST, &message),
    };
    let expired = sim.idempotency.expire(key.as_deref());
    tracing::info!(?key, expired, "idempotency keys expired");
    Json(json!({ "expired": expired })).into_response()
}

/// The key named by an expiry request; `None` means every key. Read as
/// JSON whatever the `Content-Type`, so a bare `curl -d` works.
fn expiry_key(body: &[u8]) -> Result<Option<String>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let request: ExpireBody =
        serde_json::from_slice(body).map_err(|error| format!("invalid expiry request: {error}"))?;
    match request.key {
        // No PSP accepts an empty key, so this is a caller's mistake, not
        // a request to expire everything.
        Some(key) if key.is_empty() => Err("key must not be empty".to_owned()),
        key => Ok(key),
    }
}

#[derive(Serialize)]
struct WebhooksBody {
    deliveries: Vec<DeliveryRecord>,
}

/// `GET /_sim/webhooks`: every webhook delivery attempt, oldest first.
async fn webhooks(State(sim): State<Arc<SimState>>) -> Json<WebhooksBody> {
    Json(WebhooksBody { deliveries: sim.webhooks.deliveries() })
}

#[derive(Serialize)]
struct StatsBody {
    requests_total: u64,
    captures_total: u64,
    declines_total: u64,
    idempotent_replays_total: u64,
    refunds_total: u64,
}

/// `GET /_sim/stats`: request and outcome counters.
async fn stats(State(sim): State<Arc<SimState>>) -> Json<StatsBody> {
    let stats = &sim.stats;
    Json(StatsBody {
        requests_total: stats.requests_total.load(Ordering::Relaxed),
        captures_total: stats.captures_total.load(Ordering::Relaxed),
        declines_total: stats.declines_total.load(Ordering::Relaxed),
        idempotent_replays_total: stats.idempotent_replays_total.load(Ordering::Relaxed),
        refunds_total: stats.refunds_total.load(Ordering::Relaxed),
    })
}

/// `GET /healthz`: liveness.
async fn healthz() -> &'static str {
    "ok"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty body or one without `key` means every key; an empty key,
    /// unknown fields and non-JSON are refused.
    #[test]
    fn parses_expiry_requests() {
        assert_eq!(expiry_key(b""), Ok(None));
        assert_eq!(expiry_key(b" \n"), Ok(None));
        assert_eq!(expiry_key(b"{}"), Ok(None));
        assert_eq!(expiry_key(br#"{"key": "k-1"}"#), Ok(Some("k-1".to_owned())));
        assert!(expiry_key(br#"{"key": ""}"#).is_err());
        assert!(expiry_key(br#"{"keys": ["k"]}"#).is_err());
        assert!(expiry_key(b"k-1").is_err());
    }
}
