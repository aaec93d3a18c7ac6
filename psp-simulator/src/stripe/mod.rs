//! The Stripe dialect: PaymentIntents, refunds and charges under `/v1`.
//!
//! Request flow for a POST: authenticate (middleware) → refuse it if the
//! outage switch has its group down (route layer, `crate::outage`) →
//! validate the `Idempotency-Key` header → decode the form body → hand over
//! to the shared flow (`execution.rs`: per-key lock, replay, attempt count,
//! faults).
//! Execution itself (create/confirm/refund) happens inside one ledger
//! critical section, so an intent can never be captured twice.
//!
//! Files: `cards.rs` (test tokens), `params.rs` (form parsing), `intent.rs`
//! (objects), `confirm.rs` (charging), `resolve.rs` (3-D Secure / review
//! outcomes), `threeds.rs` (challenge page), `cancel.rs` (cancelling an
//! intent that never completed), `refunds.rs` (creating refunds),
//! `refund_reads.rs` (listing and retrieving them), `balance.rs` (balance
//! transactions) with `balance_source.rs` (their expanded sources),
//! `search.rs` (search and its lag), `error.rs` (Stripe's
//! error shapes).

mod balance;
mod balance_source;
mod cancel;
pub mod cards;
pub mod confirm;
pub mod error;
pub mod intent;
pub mod params;
mod refund_reads;
pub mod refunds;
pub mod resolve;
mod search;
pub mod threeds;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use self::confirm::{Confirmation, confirm_in_ledger};
use self::error::{ApiError, json_bytes, json_response, mask_api_key};
use self::intent::PaymentIntent;
use self::params::Params;
use self::search::{SEARCH_URL, search_intents};
use crate::execution::{Executed, Post, PostParts, Reply, Wire, run_post, with_fault};
use crate::faults::TokenKind;
use crate::idempotency::{IDEMPOTENCY_KEY_LEN_MAX, fingerprint};
use crate::ledger::Psp;
use crate::outage::{self, Operation};
use crate::state::{SimState, Stats};

/// Only test-mode secret keys are accepted.
const TEST_SECRET_KEY_PREFIX: &str = "sk_test_";

/// The authenticated caller's API key; idempotency keys are scoped to it.
#[derive(Clone, Debug)]
struct Account(String);

/// Routes of the Stripe dialect, all behind Stripe authentication; payment
/// intents and refunds are also behind the outage switch.
pub fn router(sim: Arc<SimState>) -> Router {
    let charges = Router::new()
        .route("/v1/payment_intents", post(create_intent))
        .route("/v1/payment_intents/{id}/confirm", post(confirm_intent));
    let lookups = Router::new()
        .route(SEARCH_URL, get(search_intents))
        .route("/v1/payment_intents/{id}", get(retrieve_intent))
        .route(refund_reads::LIST_URL, get(refund_reads::list_refunds))
        .route("/v1/refunds/{id}", get(refund_reads::retrieve_refund));
    let refunds = Router::new()
        .route("/v1/payment_intents/{id}/cancel", post(cancel::cancel_intent))
        .route("/v1/refunds", post(create_refund));
    Router::new()
        .merge(outage::guard::<StripeWire>(&sim, Operation::Charge, charges))
        .merge(outage::guard::<StripeWire>(&sim, Operation::Lookup, lookups))
        .merge(outage::guard::<StripeWire>(&sim, Operation::Refund, refunds))
        .route("/v1/charges/{id}", get(retrieve_charge))
        .route("/v1/balance_transactions", get(balance::list_balance_transactions))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&sim), authenticate))
        .with_state(sim)
}

/// Fallback for unknown URLs, answered in Stripe's error format.
pub async fn unrecognized_url(method: Method, uri: Uri) -> Response {
    ApiError::UnrecognizedUrl { method: method.to_string(), path: uri.path().to_owned() }.into_response()
}

/// Counts the request and checks `Authorization: Bearer sk_test_...`.
async fn authenticate(State(sim): State<Arc<SimState>>, mut request: Request, next: Next) -> Response {
    Stats::bump(&sim.stats.requests_total);
    match api_key(request.headers()) {
        Ok(key) => {
            request.extensions_mut().insert(Account(key));
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

fn api_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let Some(header) = headers.get(AUTHORIZATION) else {
        return Err(ApiError::ApiKeyMissing);
    };
    let header = header.to_str().map_err(|_| ApiError::ApiKeyInvalid { masked: "*****".to_owned() })?;
    let (scheme, key) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let key = key.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() {
        return Err(ApiError::ApiKeyMissing);
    }
    if key.len() <= TEST_SECRET_KEY_PREFIX.len() || !key.starts_with(TEST_SECRET_KEY_PREFIX) {
        return Err(ApiError::ApiKeyInvalid { masked: mask_api_key(key) });
    }
    Ok(key.to_owned())
}

/// The `Idempotency-Key` header, if present and acceptable.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(header) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = |message: String| ApiError::InvalidRequest { message };
    let key = header.to_str().map_err(|_| invalid("Idempotency keys must be printable ASCII.".to_owned()))?;
    if key.is_empty() {
        return Err(invalid("Idempotency keys must not be empty.".to_owned()));
    }
    if key.len() > IDEMPOTENCY_KEY_LEN_MAX {
        return Err(invalid(format!(
            "Keys for idempotent requests can only be at most {IDEMPOTENCY_KEY_LEN_MAX} characters long."
        )));
    }
    Ok(Some(key.to_owned()))
}

/// Stripe's error shapes for the shared POST flow.
pub struct StripeWire;

impl Wire for StripeWire {
    fn key_reused(key: &str) -> Reply {
        error_reply(ApiError::IdempotencyMismatch { key: key.to_owned() })
    }

    fn server_error() -> Reply {
        error_reply(ApiError::ServerError)
    }

    fn rate_limited() -> Reply {
        error_reply(ApiError::RateLimited)
    }
}

/// The reply for an error, stored only if it is the idempotent result.
fn error_reply(error: ApiError) -> Reply {
    Reply::new(error.status(), error.body(), error.is_idempotent_result())
}

/// The reply for an execution result.
fn reply<T: Serialize>(result: Result<T, ApiError>) -> Reply {
    match result {
        Ok(object) => Reply::new(StatusCode::OK, json_bytes(&object), true),
        Err(error) => error_reply(error),
    }
}

impl PostParts<Account> {
    /// Decodes the idempotency key and form (in Stripe's order of checks)
    /// and describes the request for the shared flow.
    fn decode(&self) -> Result<(Post, Params), ApiError> {
        let key = idempotency_key(&self.headers)?;
        let params = params::parse_form(&self.body)?;
        let post = Post {
            psp: Psp::Stripe,
            account: self.account.0.clone(),
            key,
            fingerprint: fingerprint("POST", &self.path, &params),
            path: self.path.clone(),
            kill: self.kill.clone(),
            refund: false,
        };
        Ok((post, params))
    }
}

/// `POST /v1/payment_intents`
async fn create_intent(input: PostParts<Account>) -> Response {
    let (post, raw) = match input.decode() {
        Ok(decoded) => decoded,
        Err(error) => return error.into_response(),
    };
    let sim = &input.sim;
    run_post::<StripeWire>(sim, post, |attempt, key| {
        let params = match params::create_params(&raw) {
            Ok(params) => params,
            Err(error) => return Executed::now(error_reply(error)),
        };
        let kind = params
            .payment_method
            .as_ref()
            .filter(|_| params.confirm)
            .map_or(TokenKind::Other, |pm| pm.card.fault_kind());
        let fault = sim.faults.decide(kind, attempt);
        with_fault::<StripeWire>(fault, &sim.faults, || {
            let confirm = params.confirm;
            let return_url = params.return_url.clone();
            let payment_method = params.payment_method.clone();
            let intent = PaymentIntent::new(params);
            let id = intent.id.clone();
            reply(sim.with_ledger(|ledger| {
                ledger.insert_intent(intent.clone());
                if !confirm {
                    return Ok(intent);
                }
                let confirmation = Confirmation { payment_method, return_url, idempotency_key: key };
                confirm_in_ledger(sim, ledger, &id, confirmation)
            }))
        })
    })
    .await
}

/// `POST /v1/payment_intents/{id}/confirm`
async fn confirm_intent(Path(id): Path<String>, input: PostParts<Account>) -> Response {
    let (post, raw) = match input.decode() {
        Ok(decoded) => decoded,
        Err(error) => return error.into_response(),
    };
    let sim = &input.sim;
    run_post::<StripeWire>(sim, post, |attempt, key| {
        let params = match params::confirm_params(&raw) {
            Ok(params) => params,
            Err(error) => return Executed::now(error_reply(error)),
        };
        let kind = match &params.payment_method {
            Some(pm) => pm.card.fault_kind(),
            None => stored_card_kind(sim, &id),
        };
        let fault = sim.faults.decide(kind, attempt);
        with_fault::<StripeWire>(fault, &sim.faults, || {
            let confirmation = Confirmation {
                payment_method: params.payment_method,
                return_url: params.return_url,
                idempotency_key: key,
            };
            reply(sim.with_ledger(|ledger| confirm_in_ledger(sim, ledger, &id, confirmation)))
        })
    })
    .await
}

/// Fault kind of the payment method already attached to intent `id`.
fn stored_card_kind(sim: &SimState, id: &str) -> TokenKind {
    sim.with_ledger(|ledger| {
        ledger
            .intent(id)
            .and_then(|intent| intent.payment_method.as_deref())
            .and_then(cards::TestCard::from_token)
            .map_or(TokenKind::Other, cards::TestCard::fault_kind)
    })
}

/// `POST /v1/refunds`
async fn create_refund(input: PostParts<Account>) -> Response {
    let (mut post, raw) = match input.decode() {
        Ok(decoded) => decoded,
        Err(error) => return error.into_response(),
    };
    post.refund = true;
    let sim = &input.sim;
    run_post::<StripeWire>(sim, post, |_attempt, key| {
        let result = refunds::refund_params(&raw)
            .and_then(|params| sim.with_ledger(|ledger| refunds::refund_in_ledger(sim, ledger, params, key)));
        Executed::now(reply(result))
    })
    .await
}

/// `GET /v1/charges/{id}`
async fn retrieve_charge(State(sim): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    match sim.with_ledger(|ledger| ledger.charges.get(&id).cloned()) {
        Some(charge) => json_response(StatusCode::OK, json_bytes(&charge)),
        None => ApiError::NoSuchCharge { id }.into_response(),
    }
}

/// `GET /v1/payment_intents/{id}`
async fn retrieve_intent(State(sim): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let found = sim.with_ledger(|ledger| ledger.intent(&id).cloned());
    match found {
        Some(intent) => json_response(StatusCode::OK, json_bytes(&intent)),
        None => ApiError::NoSuchPaymentIntent { id }.into_response(),
    }
}
