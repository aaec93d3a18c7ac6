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
//! `Idempotent-Replayed: true`; keys expire after the PSP's own TTL — 24
//! hours at Stripe, 15 days at Toss — and `POST /_sim/idempotency/expire`
//! expires them at once, so tests can show what a resend does after the
//! PSP forgot its key).
//!
//! Money is never a float: every amount is an integer in the currency's minor
//! unit, exactly as Stripe does (cents for `usd`; `krw` and `jpy` are
//! zero-decimal, so `amount=1000` with `currency=krw` is ₩1000).
//!
//! It also speaks a subset of **Toss Payments' v1 API** on the same port and
//! ledger: Basic `test_sk_...` authentication, JSON bodies, the `Payment`
//! object, billing-key charges (`POST /v1/billing/{billingKey}`), the hosted
//! confirm flow with its 10-minute session deadline, cancellation and
//! settlements, with `{"code","message"}` errors. For browser tests it hosts
//! Toss's **payment window** ([`hosted`]): a stand-in for the JS SDK v1
//! (`/js/v1/tosspayments.js`), a pay page with test cards and a 3-D Secure
//! challenge, redirecting to the merchant's `successUrl` / `failUrl`.
//!
//! Every successful capture ("money moved") and refund is recorded so that
//! tests and operators can assert, through the admin endpoints, that a
//! payment order was charged exactly once — the property the platform's
//! retry and idempotency machinery exists to guarantee. To exercise that
//! machinery the simulator injects faults on request: 500s, 429s with
//! `Retry-After`, slow answers and responses lost after the capture
//! (scripted by test tokens such as `pm_card_sim_lost_response` /
//! `billing_sim_lost_response`, or random at configured rates), plus 3-D
//! Secure challenges, manual reviews, signed webhooks (optionally duplicated
//! and reordered), a Stripe search index that lags behind writes
//! (`stripe_search_lag_ms`) and settlement reports. An outage switch
//! (`POST /_sim/outage`) makes charges, lookups and/or refunds of both
//! dialects answer the PSP's retryable server error until it is switched
//! off, or lets refunds execute while their answers are lost
//! (`refund_answers_lost`).
//!
//! For reconciliation tests the settlement reports can be made wrong on
//! purpose and refunds can appear that the platform never asked for:
//!
//! * `POST /_sim/settlements/breaks` (`{"psp", "breaks": [...]}`), `GET`
//!   and `DELETE` on the same path: seeded, reproducible settlement breaks
//!   — a line dropped, its amount, fee or currency changed, duplicated,
//!   reported a day late, or a foreign line for a payment that never
//!   existed — applied identically to the CSV download, Toss settlements
//!   and Stripe balance transactions (`settlement/breaks.rs`).
//! * `POST /_sim/dashboard/refunds` (`{"psp", "payment_reference",
//!   "amount_minor", "reason"?}`): a refund made "in the PSP's dashboard",
//!   through the dialect's own refund path, webhook included
//!   (`dashboard.rs`).
//!
//! Stripe's balance transactions also take `type` and
//! `expand[]=data.source` as real Stripe does.
//!
//! # Layout
//!
//! * `lib.rs` — [`router`] and [`run`]: wiring only.
//! * `config.rs` — [`SimConfig`], defaults and validation.
//! * `server.rs` — the accept loop (one task per connection, graceful
//!   shutdown); `drop_conn.rs` — closing a connection unanswered.
//! * `state.rs` — shared state; `ledger.rs` — intents, charges, captures
//!   and refunds of every dialect.
//! * `idempotency.rs` — the bounded per-key store (records, attempt counts,
//!   per-dialect key expiry and the per-key lock that serializes concurrent
//!   requests).
//! * `execution.rs` — the life of a PSP POST shared by every dialect:
//!   replay, attempt counting, faults, storing, delivery.
//! * `faults.rs` — which request fails and how (tokens and seeded rates).
//! * `outage.rs` — the runtime outage switch (`/_sim/outage`): charges,
//!   lookups and/or refunds answer the PSP's retryable server error until
//!   switched back, one route layer per group and dialect; and refunds
//!   whose answers are lost (applied in `execution.rs`).
//! * `request_log.rs` — POSTs and their outcomes for `/_sim/requests`.
//! * `clock.rs` — Unix time, civil dates, ISO-8601 with `+09:00`.
//! * `webhooks.rs` — outgoing events with retries and a delivery log;
//!   `signing.rs` — the PSPs' webhook signatures (public helpers).
//! * `stripe/` — the Stripe dialect (see its module docs), including
//!   cancelling intents (`stripe/cancel.rs`), reading refunds back
//!   (`stripe/refund_reads.rs`) and the lagging search (`stripe/search.rs`).
//! * `toss/` — the Toss Payments dialect (see its module docs); payment
//!   sessions, their deadline and expiry are `toss/session.rs`.
//! * `hosted/` — the Toss payment window (JS SDK stand-in, pay page, 3-D
//!   Secure challenge, redirects) and the element ids browser tests use.
//! * `settlement/` — fees, sold/paid-out dates and the per-day CSV;
//!   served as Stripe balance transactions (`stripe/balance.rs`, expanded
//!   sources in `stripe/balance_source.rs`) and Toss settlements
//!   (`toss/settlements.rs`); settlement breaks (`settlement/breaks.rs`)
//!   and how they apply (`settlement/inject.rs`).
//! * `dashboard.rs` — refunds made in a PSP's dashboard
//!   (`/_sim/dashboard/refunds`).
//! * `payouts/` — pay-outs to sellers: Toss payouts v2 (JWE bodies) and Stripe
//!   Connect accounts, transfers and payouts, with per-seller scenarios
//!   (`/_sim/payouts/scenario`) and the payout audit (`/_sim/payouts`).
//! * `admin.rs` — simulator-only endpoints (`/_sim/...`, `/healthz`).
//! * `main.rs` — the thin `psp-simulator` binary.

mod admin;
mod clock;
mod config;
mod dashboard;
mod drop_conn;
mod execution;
mod faults;
pub mod hosted;
mod idempotency;
mod ledger;
mod outage;
mod payouts;
mod request_log;
mod server;
mod settlement;
mod signing;
mod state;
mod stripe;
mod toss;
mod webhooks;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;

pub use config::{
    ConfigError, IDEMPOTENCY_KEYS_MAX_DEFAULT, PAYMENT_SESSION_TTL_MS_DEFAULT, PUBLIC_BASE_URL_FALLBACK,
    RATE_LIMIT_RETRY_AFTER_SECS_DEFAULT, SLOW_RESPONSE_MS_DEFAULT, STRIPE_IDEMPOTENCY_KEY_TTL_MS_DEFAULT,
    STRIPE_SEARCH_LAG_MS_DEFAULT, STRIPE_WEBHOOK_SECRET_DEFAULT, SimConfig, TOSS_IDEMPOTENCY_KEY_TTL_MS_DEFAULT,
    TOSS_WEBHOOK_SECRET_DEFAULT, WEBHOOK_ATTEMPTS_MAX_DEFAULT, WEBHOOK_INITIAL_BACKOFF_MS_DEFAULT,
};
pub use config::{PAYOUT_KYC_DELAY_MS_DEFAULT, PAYOUT_STEP_MS_DEFAULT, TOSS_SECURITY_KEY_TEST};
pub use idempotency::{IDEMPOTENCY_KEY_LEN_MAX, TOSS_IDEMPOTENCY_KEY_LEN_MAX};
pub use payouts::jwe as toss_payout_jwe;
pub use signing::{stripe_signature_header, toss_payout_signature};
use state::SimState;

/// Length of the random part of a `Request-Id` (`req_<this many alnum>`).
const REQUEST_ID_RANDOM_LEN: usize = 14;

/// Builds the complete HTTP application: the PSP APIs under `/v1`, the
/// 3-D Secure pages, the Toss payment window, the admin endpoints, and a
/// `Request-Id` header on every response.
///
/// Everything works when this router is served by any server except the
/// lost-response fault, which needs [`run`] to close connections (it then
/// degrades to an empty 502).
pub fn router(config: SimConfig) -> Router {
    let sim = Arc::new(SimState::new(&config));
    Router::new()
        .merge(stripe::router(Arc::clone(&sim)))
        .merge(stripe::threeds::router(Arc::clone(&sim)))
        .merge(toss::router(Arc::clone(&sim)))
        .merge(hosted::router(Arc::clone(&sim)))
        .merge(settlement::router(Arc::clone(&sim)))
        .merge(dashboard::router(Arc::clone(&sim)))
        .merge(payouts::router(Arc::clone(&sim), &config))
        .merge(admin::router(sim))
        .fallback(stripe::unrecognized_url)
        .layer(middleware::from_fn(request_id))
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then finishes
/// in-flight requests and returns.
///
/// If `config.public_base_url` is unset it is derived from the bound
/// address (an unspecified address such as `0.0.0.0` becomes `127.0.0.1`).
/// An invalid configuration (see [`SimConfig::validate`]) is an
/// `InvalidInput` error.
pub async fn run(
    listener: TcpListener,
    mut config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    config.validate().map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "psp-simulator listening");
    if config.public_base_url.is_none() {
        let mut public = addr;
        if public.ip().is_unspecified() {
            public.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        config.public_base_url = Some(format!("http://{public}"));
    }
    server::serve(listener, router(config), shutdown).await
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
