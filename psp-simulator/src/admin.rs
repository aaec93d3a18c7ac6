//! Simulator-only endpoints for tests and operators (not part of any PSP's
//! API): the capture ledger, counters and a health check. They need no
//! authentication because the simulator only ever holds test data.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::state::{Capture, SimState};

/// Routes under `/_sim` plus `/healthz`.
pub fn router(sim: Arc<SimState>) -> Router {
    Router::new()
        .route("/_sim/captures", get(captures))
        .route("/_sim/stats", get(stats))
        .route("/healthz", get(healthz))
        .with_state(sim)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CapturesQuery {
    payment_order_id: Option<String>,
}

#[derive(Serialize)]
struct CapturesBody {
    captures: Vec<Capture>,
}

/// `GET /_sim/captures[?payment_order_id=X]`: captures in creation order.
async fn captures(
    State(sim): State<Arc<SimState>>,
    Query(query): Query<CapturesQuery>,
) -> Json<CapturesBody> {
    let captures = sim.with_ledger(|ledger| ledger.captures(query.payment_order_id.as_deref()));
    Json(CapturesBody { captures })
}

#[derive(Serialize)]
struct StatsBody {
    requests_total: u64,
    captures_total: u64,
    declines_total: u64,
    idempotent_replays_total: u64,
}

/// `GET /_sim/stats`: request and outcome counters.
async fn stats(State(sim): State<Arc<SimState>>) -> Json<StatsBody> {
    let stats = &sim.stats;
    Json(StatsBody {
        requests_total: stats.requests_total.load(Ordering::Relaxed),
        captures_total: stats.captures_total.load(Ordering::Relaxed),
        declines_total: stats.declines_total.load(Ordering::Relaxed),
        idempotent_replays_total: stats.idempotent_replays_total.load(Ordering::Relaxed),
    })
}

/// `GET /healthz`: liveness.
async fn healthz() -> &'static str {
    "ok"
}
