//! The Toss Payments dialect (API v1, version 2022-11-16): billing-key
//! charges, hosted-flow confirmation, lookups and cancellation, sharing the
//! simulator's ledger, idempotency store and fault injection with Stripe.
//!
//! Authentication is `Authorization: Basic base64("<secretKey>:")` with a
//! test secret key (`test_sk_...` or `test_gsk_...`). Bodies are JSON;
//! errors are `{"code","message"}` (see `error.rs`). Money is integer won.
//!
//! Files: `payment.rs` (the Payment object, test cards), `store.rs`,
//! `body.rs` (JSON validation), `charge.rs` (approve/reject/review),
//! `billing.rs`, `session.rs` (authentication, confirm deadline, expiry),
//! `confirm.rs` (admin payment sessions + confirm), `cancel.rs`,
//! `review.rs`, `settlements.rs`, `payouts.rs` (admin-triggered payout
//! webhooks), `error.rs`.

mod billing;
pub mod body;
pub mod cancel;
pub mod charge;
mod confirm;
pub mod error;
pub mod payment;
mod payouts;
pub mod review;
pub mod session;
mod settlements;
pub mod store;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use self::error::TossError;
use crate::execution::{Post, PostParts, Reply, Wire};
use crate::idempotency::{TOSS_IDEMPOTENCY_KEY_LEN_MAX, fingerprint};
use crate::ledger::Psp;
use crate::outage::{self, Operation};
use crate::state::{SimState, Stats};
use crate::stripe::error::{json_bytes, json_response};

/// Prefixes of Toss test secret keys (API keys and widget keys).
const TEST_SECRET_KEY_PREFIXES: [&str; 2] = ["test_sk_", "test_gsk_"];

/// The authenticated caller's secret key; idempotency keys are scoped to it.
#[derive(Clone, Debug)]
pub struct TossAccount(pub String);

/// Routes of the Toss dialect: the API behind Toss authentication, payments
/// also behind the outage switch; the admin helpers under `/_sim/toss`.
pub fn router(sim: Arc<SimState>) -> Router {
    let charges = Router::new()
        .route("/v1/billing/{billing_key}", post(billing::charge_billing))
        .route("/v1/payments/confirm", post(confirm::confirm_payment));
    let lookups = Router::new()
        .route("/v1/payments/orders/{order_id}", get(get_by_order))
        .route("/v1/payments/{payment_key}", get(get_payment));
    let refunds = Router::new().route("/v1/payments/{payment_key}/cancel", post(cancel::cancel_payment));
    Router::new()
        .merge(outage::guard::<TossWire>(&sim, Operation::Charge, charges))
        .merge(outage::guard::<TossWire>(&sim, Operation::Lookup, lookups))
        .merge(outage::guard::<TossWire>(&sim, Operation::Refund, refunds))
        .route("/v1/settlements", get(settlements::list_settlements))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&sim), authenticate))
        .route("/_sim/toss/payment-sessions", post(confirm::create_session))
        .route("/_sim/toss/payouts", post(payouts::create_payout))
        .with_state(sim)
}

/// Toss's error shapes for the shared POST flow.
pub struct TossWire;

impl Wire for TossWire {
    fn key_reused(_key: &str) -> Reply {
        TossError::invalid_request("같은 멱등키(Idempotency-Key)로 다른 요청을 보낼 수 없습니다.").reply()
    }

    fn server_error() -> Reply {
        TossError::internal().reply()
    }

    fn rate_limited() -> Reply {
        TossError::too_many_requests().reply()
    }
}

/// The reply for an execution result.
pub fn reply(result: Result<payment::Payment, TossError>) -> Reply {
    match result {
        Ok(payment) => Reply::new(StatusCode::OK, json_bytes(&payment), true),
        Err(error) => error.reply(),
    }
}

/// Counts the request and checks Basic authentication with a test key.
async fn authenticate(State(sim): State<Arc<SimState>>, mut request: Request, next: Next) -> Response {
    Stats::bump(&sim.stats.requests_total);
    match secret_key(request.headers()) {
        Some(key) => {
            request.extensions_mut().insert(TossAccount(key));
            next.run(request).await
        }
        None => TossError::unauthorized().into_response(),
    }
}

/// The secret key of `Authorization: Basic base64("<key>:")`, if it is a
/// well-formed test key.
fn secret_key(headers: &HeaderMap) -> Option<String> {
    let header = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let key = decoded.strip_suffix(':')?;
    TEST_SECRET_KEY_PREFIXES
        .iter()
        .any(|prefix| key.len() > prefix.len() && key.starts_with(prefix))
        .then(|| key.to_owned())
}

/// The `Idempotency-Key` header, if present and acceptable.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, TossError> {
    let Some(header) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match header.to_str() {
        Ok(key) if !key.is_empty() && key.chars().count() <= TOSS_IDEMPOTENCY_KEY_LEN_MAX => Ok(Some(key.to_owned())),
        _ => Err(TossError::invalid_idempotency_key(&format!(
            "멱등키는 {TOSS_IDEMPOTENCY_KEY_LEN_MAX}자 이하의 ASCII 문자열이어야 합니다."
        ))),
    }
}

impl PostParts<TossAccount> {
    /// Decodes the idempotency key and JSON body and describes the request
    /// for the shared flow.
    pub fn decode(&self) -> Result<(Post, body::Object), TossError> {
        let key = idempotency_key(&self.headers)?;
        let object = body::parse(&self.body)?;
        let post = Post {
            psp: Psp::Toss,
            account: self.account.0.clone(),
            key,
            fingerprint: fingerprint("POST", &self.path, &body::canonical_pairs(&object)),
            path: self.path.clone(),
            kill: self.kill.clone(),
            refund: false,
        };
        Ok((post, object))
    }
}

/// `GET /v1/payments/{paymentKey}`
async fn get_payment(State(sim): State<Arc<SimState>>, Path(key): Path<String>) -> Response {
    let found = sim.with_ledger(|ledger| {
        session::expire_if_overdue(&sim, ledger, &key);
        ledger.toss.get(&key).cloned()
    });
    match found {
        Some(payment) => json_response(StatusCode::OK, json_bytes(&payment)),
        None => TossError::not_found_payment().into_response(),
    }
}

/// `GET /v1/payments/orders/{orderId}`: the order's current payment.
async fn get_by_order(State(sim): State<Arc<SimState>>, Path(order_id): Path<String>) -> Response {
    let found = sim.with_ledger(|ledger| {
        session::expire_order_if_overdue(&sim, ledger, &order_id);
        ledger.toss.by_order(&order_id).cloned()
    });
    match found {
        Some(payment) => json_response(StatusCode::OK, json_bytes(&payment)),
        None => TossError::not_found_payment().into_response(),
    }
}
