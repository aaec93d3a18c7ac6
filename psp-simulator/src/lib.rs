//! A local payment-service-provider (PSP) simulator.
//!
//! It speaks a faithful subset of **Stripe's PaymentIntents wire format** so
//! that a real Stripe adapter pointed at it (instead of `api.stripe.com`)
//! behaves as it would against Stripe in test mode: form-encoded requests with
//! bracketed `metadata[...]` keys, Bearer `sk_test_...` authentication,
//! Stripe's test payment-method tokens (`pm_card_visa`,
//! `pm_card_chargeDeclined`, ...), Stripe's error envelope
//! (`{"error":{"type":...,"code":...}}`), `Request-Id` headers and
//! Stripe-style idempotency (`Idempotency-Key`, replay with
//! `Idempotent-Replayed: true`).
//!
//! Money is never a float: every amount is an integer in the currency's minor
//! unit, exactly as Stripe does (cents for `usd`; `krw` and `jpy` are
//! zero-decimal, so `amount=1000` with `currency=krw` is ₩1000).
//!
//! Every successful capture ("money moved") is recorded so that tests and
//! operators can assert, through the admin endpoints, that a payment order was
//! charged exactly once — the property the platform's retry and idempotency
//! machinery exists to guarantee.
//!
//! # Layout
//!
//! * `lib.rs` — [`SimConfig`], [`router`] and [`run`]: wiring only.
//! * `state.rs` — the in-memory ledger: payment intents, captures and
//!   counters, shared by every PSP dialect.
//! * `idempotency.rs` — the bounded per-key idempotency store (records and
//!   the per-key lock that serializes concurrent requests).
//! * `stripe/` — the Stripe dialect: `mod.rs` (routes, auth, handlers),
//!   `params.rs` (form parsing and validation), `cards.rs` (test
//!   payment-method tokens and their outcomes), `error.rs` (Stripe's error
//!   shapes), `search.rs` (the search query grammar).
//! * `admin.rs` — non-Stripe endpoints for tests and operators (`/_sim/...`,
//!   `/healthz`).
//! * `main.rs` — the thin `psp-simulator` binary.
//!
//! Future dialects (Toss Payments) and fault injection (lost responses, 5xx,
//! 429, slow responses, 3-D Secure, webhooks) are meant to slot in as sibling
//! modules that share `state.rs` and `idempotency.rs`.

mod admin;
mod idempotency;
mod state;
mod stripe;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;

pub use idempotency::IDEMPOTENCY_KEY_LEN_MAX;
use state::SimState;

/// Default for [`SimConfig::idempotency_keys_max`].
pub const IDEMPOTENCY_KEYS_MAX_DEFAULT: usize = 1_000_000;

/// Length of the random part of a `Request-Id` (`req_<this many alnum>`).
const REQUEST_ID_RANDOM_LEN: usize = 14;

/// Runtime configuration of the simulator.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SimConfig {
    /// Maximum number of idempotency keys remembered at once. When the limit
    /// is reached the oldest key is forgotten (a later request reusing it
    /// executes again), mirroring Stripe's 24-hour key expiry in a bounded
    /// way. Keys whose request is still executing are never evicted.
    pub idempotency_keys_max: usize,
}

impl SimConfig {
    /// Configuration with sensible defaults
    /// (`idempotency_keys_max` = [`IDEMPOTENCY_KEYS_MAX_DEFAULT`]).
    pub fn new() -> Self {
        Self {
            idempotency_keys_max: IDEMPOTENCY_KEYS_MAX_DEFAULT,
        }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// Builds the complete HTTP application: the Stripe API under `/v1`, the
/// admin endpoints, and a `Request-Id` header on every response.
pub fn router(config: SimConfig) -> Router {
    let sim = Arc::new(SimState::new(&config));
    Router::new()
        .merge(stripe::router(Arc::clone(&sim)))
        .merge(admin::router(sim))
        .fallback(stripe::unrecognized_url)
        .layer(middleware::from_fn(request_id))
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then finishes
/// in-flight requests and returns.
pub async fn run(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "psp-simulator listening");
    }
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Gives every response a fresh `Request-Id: req_...` header (as Stripe does,
/// so adapters can log it) and logs one line per request under that id.
async fn request_id(request: Request, next: Next) -> Response {
    let request_id = format!("req_{}", state::random_alnum(REQUEST_ID_RANDOM_LEN));
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    tracing::info!(
        request_id = %request_id,
        %method,
        %path,
        status = response.status().as_u16(),
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}
