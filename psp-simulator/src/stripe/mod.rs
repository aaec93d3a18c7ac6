//! The Stripe dialect: PaymentIntents endpoints under `/v1`.
//!
//! Request flow for a POST: authenticate (middleware) → validate the
//! `Idempotency-Key` header → decode the form body → take the per-key lock
//! and either replay the stored response or execute and store it. Execution
//! itself (create/confirm) happens inside one ledger critical section, so an
//! intent can never be captured twice.

mod cards;
mod error;
mod params;
mod search;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, RawQuery, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

use self::cards::{CardOutcome, Decline, TestCard};
use self::error::{ApiError, json_bytes, json_response, mask_api_key};
use self::params::{CreateParams, Params, PaymentMethodParam};
use self::search::{SearchRequest, page_cursor};
use crate::idempotency::{IDEMPOTENCY_KEY_LEN_MAX, StoredResponse, fingerprint};
use crate::state::{IntentStatus, Ledger, PaymentIntent, SimState, Stats, random_alnum, unix_now};

/// Only test-mode secret keys are accepted.
const TEST_SECRET_KEY_PREFIX: &str = "sk_test_";
/// Random characters in a `pi_...` / `ch_...` id (Stripe uses 24).
const OBJECT_ID_RANDOM_LEN: usize = 24;
/// Random characters in the secret part of a `client_secret`.
const CLIENT_SECRET_RANDOM_LEN: usize = 25;
const SEARCH_URL: &str = "/v1/payment_intents/search";

/// The authenticated caller's API key; idempotency keys are scoped to it.
#[derive(Clone, Debug)]
struct Account(String);

/// Routes of the Stripe dialect, all behind Stripe authentication.
pub fn router(sim: Arc<SimState>) -> Router {
    Router::new()
        .route("/v1/payment_intents", post(create_intent))
        .route(SEARCH_URL, get(search_intents))
        .route("/v1/payment_intents/{id}", get(retrieve_intent))
        .route("/v1/payment_intents/{id}/confirm", post(confirm_intent))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&sim),
            authenticate,
        ))
        .with_state(sim)
}

/// Fallback for unknown URLs, answered in Stripe's error format.
pub async fn unrecognized_url(method: Method, uri: Uri) -> Response {
    ApiError::UnrecognizedUrl {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
    .into_response()
}

/// Counts the request and checks `Authorization: Bearer sk_test_...`.
async fn authenticate(
    State(sim): State<Arc<SimState>>,
    mut request: Request,
    next: Next,
) -> Response {
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
    let header = header.to_str().map_err(|_| ApiError::ApiKeyInvalid {
        masked: "*****".to_owned(),
    })?;
    let (scheme, key) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let key = key.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() {
        return Err(ApiError::ApiKeyMissing);
    }
    if key.len() <= TEST_SECRET_KEY_PREFIX.len() || !key.starts_with(TEST_SECRET_KEY_PREFIX) {
        return Err(ApiError::ApiKeyInvalid {
            masked: mask_api_key(key),
        });
    }
    Ok(key.to_owned())
}

/// The `Idempotency-Key` header, if present and acceptable.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(header) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = |message: String| ApiError::InvalidRequest { message };
    let key = header
        .to_str()
        .map_err(|_| invalid("Idempotency keys must be printable ASCII.".to_owned()))?;
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

/// A response about to be sent, with whether it is the idempotent result.
struct Reply {
    status: StatusCode,
    body: Bytes,
    store: bool,
}

impl Reply {
    fn from_result(result: Result<PaymentIntent, ApiError>) -> Self {
        match result {
            Ok(intent) => Self {
                status: StatusCode::OK,
                body: json_bytes(&intent),
                store: true,
            },
            Err(error) => Self {
                status: error.status(),
                body: error.body(),
                store: error.is_idempotent_result(),
            },
        }
    }
}

/// Runs `execute` at most once per idempotency key: replays the stored
/// response for a repeated request, rejects a key reused for a different
/// request, and otherwise executes and stores the result. Requests sharing
/// a key are serialized by the key's lock (see `idempotency.rs`).
async fn idempotent(
    sim: &SimState,
    account: &Account,
    key: Option<String>,
    request_fingerprint: String,
    execute: impl FnOnce(Option<&str>) -> Result<PaymentIntent, ApiError>,
) -> Response {
    let Some(key) = key else {
        let reply = Reply::from_result(execute(None));
        return json_response(reply.status, reply.body);
    };
    let mut slot = sim.idempotency.lock(&account.0, &key).await;
    let (status, body, replayed) = match slot.as_ref() {
        Some(stored) if stored.fingerprint != request_fingerprint => {
            return ApiError::IdempotencyMismatch { key }.into_response();
        }
        Some(stored) => {
            Stats::bump(&sim.stats.idempotent_replays_total);
            (stored.status, stored.body.clone(), true)
        }
        None => {
            let reply = Reply::from_result(execute(Some(&key)));
            if reply.store {
                *slot = Some(StoredResponse {
                    fingerprint: request_fingerprint,
                    status: reply.status,
                    body: reply.body.clone(),
                });
            }
            (reply.status, reply.body, false)
        }
    };
    drop(slot);
    let mut response = json_response(status, body);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&key) {
        headers.insert("idempotency-key", value);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Decodes the pieces every POST needs, in Stripe's order of checks.
fn read_post(headers: &HeaderMap, body: &Bytes) -> Result<(Option<String>, Params), ApiError> {
    let key = idempotency_key(headers)?;
    let params = params::parse_form(body)?;
    Ok((key, params))
}

/// `POST /v1/payment_intents`
async fn create_intent(
    State(sim): State<Arc<SimState>>,
    Extension(account): Extension<Account>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (key, params) = match read_post(&headers, &body) {
        Ok(read) => read,
        Err(error) => return error.into_response(),
    };
    let request_fingerprint = fingerprint("POST", "/v1/payment_intents", &params);
    idempotent(&sim, &account, key, request_fingerprint, |key| {
        let params = params::create_params(&params)?;
        let confirm_with = params.payment_method.clone().filter(|_| params.confirm);
        let intent = new_intent(params);
        let id = intent.id.clone();
        sim.with_ledger(|ledger| {
            ledger.insert_intent(intent.clone());
            match confirm_with {
                Some(payment_method) => {
                    confirm_in_ledger(&sim, ledger, &id, Some(payment_method), key)
                }
                None => Ok(intent),
            }
        })
    })
    .await
}

/// `POST /v1/payment_intents/{id}/confirm`
async fn confirm_intent(
    State(sim): State<Arc<SimState>>,
    Extension(account): Extension<Account>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (key, params) = match read_post(&headers, &body) {
        Ok(read) => read,
        Err(error) => return error.into_response(),
    };
    let path = format!("/v1/payment_intents/{id}/confirm");
    let request_fingerprint = fingerprint("POST", &path, &params);
    idempotent(&sim, &account, key, request_fingerprint, |key| {
        let params = params::confirm_params(&params)?;
        sim.with_ledger(|ledger| confirm_in_ledger(&sim, ledger, &id, params.payment_method, key))
    })
    .await
}

/// `GET /v1/payment_intents/{id}`
async fn retrieve_intent(State(sim): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    let found = sim.with_ledger(|ledger| ledger.intent(&id).cloned());
    match found {
        Some(intent) => json_response(StatusCode::OK, json_bytes(&intent)),
        None => ApiError::NoSuchPaymentIntent { id }.into_response(),
    }
}

/// Stripe's `search_result` list object.
#[derive(Serialize)]
struct SearchResult {
    object: &'static str,
    data: Vec<PaymentIntent>,
    has_more: bool,
    next_page: Option<String>,
    url: &'static str,
}

/// `GET /v1/payment_intents/search?query=metadata['k']:'v'`
async fn search_intents(State(sim): State<Arc<SimState>>, RawQuery(query): RawQuery) -> Response {
    let request = match params::parse_form(query.unwrap_or_default().as_bytes())
        .and_then(|params| SearchRequest::from_params(&params))
    {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    let matches = sim.with_ledger(|ledger| {
        ledger.search_metadata(&request.metadata_key, &request.metadata_value)
    });
    let end = request.offset.saturating_add(request.limit);
    let has_more = matches.len() > end;
    let data = matches
        .into_iter()
        .skip(request.offset)
        .take(request.limit)
        .collect();
    let result = SearchResult {
        object: "search_result",
        data,
        has_more,
        next_page: has_more.then(|| page_cursor(end)),
        url: SEARCH_URL,
    };
    json_response(StatusCode::OK, json_bytes(&result))
}

/// A fresh, unconfirmed intent built from create parameters.
fn new_intent(params: CreateParams) -> PaymentIntent {
    let id = format!("pi_{}", random_alnum(OBJECT_ID_RANDOM_LEN));
    let status = if params.payment_method.is_some() {
        IntentStatus::RequiresConfirmation
    } else {
        IntentStatus::RequiresPaymentMethod
    };
    PaymentIntent {
        client_secret: format!("{id}_secret_{}", random_alnum(CLIENT_SECRET_RANDOM_LEN)),
        id,
        object: "payment_intent",
        amount: params.amount,
        amount_capturable: 0,
        amount_received: 0,
        capture_method: "automatic",
        confirmation_method: "automatic",
        created: unix_now(),
        currency: params.currency,
        description: params.description,
        last_payment_error: None,
        latest_charge: None,
        livemode: false,
        metadata: params.metadata,
        payment_method: params.payment_method.map(|pm| pm.token),
        payment_method_types: vec!["card"],
        status,
    }
}

/// Confirms intent `id` — charging its payment method (or `payment_method`,
/// which replaces it) — as one ledger transition. On approval the amount is
/// captured and recorded; on decline the intent goes back to
/// `requires_payment_method` and the error carries it.
fn confirm_in_ledger(
    sim: &SimState,
    ledger: &mut Ledger,
    id: &str,
    payment_method: Option<PaymentMethodParam>,
    idempotency_key: Option<&str>,
) -> Result<PaymentIntent, ApiError> {
    let intent = ledger
        .intent_mut(id)
        .ok_or_else(|| ApiError::NoSuchPaymentIntent { id: id.to_owned() })?;
    let (token, card) = card_to_charge(intent, payment_method)?;
    let charge = format!("ch_{}", random_alnum(OBJECT_ID_RANDOM_LEN));
    intent.latest_charge = Some(charge.clone());
    match card.outcome() {
        CardOutcome::Approved => {
            intent.status = IntentStatus::Succeeded;
            intent.amount_received = intent.amount;
            intent.last_payment_error = None;
            let captured = intent.clone();
            ledger.record_capture(&captured, idempotency_key);
            Stats::bump(&sim.stats.captures_total);
            Ok(captured)
        }
        CardOutcome::Declined {
            decline_code,
            message,
        } => {
            let decline = Decline {
                decline_code,
                message,
                charge,
                payment_method: token,
                card,
            };
            // Stripe detaches a failed payment method from the intent and
            // reports it inside `last_payment_error` instead.
            intent.status = IntentStatus::RequiresPaymentMethod;
            intent.payment_method = None;
            intent.last_payment_error = Some(decline.last_payment_error());
            Stats::bump(&sim.stats.declines_total);
            Err(ApiError::CardDeclined {
                decline: Box::new(decline),
                intent: Box::new(intent.clone()),
            })
        }
    }
}

/// Checks that `intent` may be confirmed, attaches `payment_method` if given,
/// and returns the token and card to charge.
fn card_to_charge(
    intent: &mut PaymentIntent,
    payment_method: Option<PaymentMethodParam>,
) -> Result<(String, TestCard), ApiError> {
    if intent.status == IntentStatus::Succeeded {
        return Err(ApiError::UnexpectedState {
            message: "You cannot confirm this PaymentIntent because it has a status of succeeded. \
                      Only a PaymentIntent with one of the following statuses may be confirmed: \
                      requires_confirmation, requires_payment_method."
                .to_owned(),
            intent: Box::new(intent.clone()),
        });
    }
    if let Some(payment_method) = payment_method {
        intent.payment_method = Some(payment_method.token);
    }
    // Stored tokens were validated when given, so they always resolve.
    intent
        .payment_method
        .clone()
        .and_then(|token| TestCard::from_token(&token).map(|card| (token, card)))
        .ok_or_else(|| ApiError::UnexpectedState {
            message: "You cannot confirm this PaymentIntent because it's missing a payment \
                      method. To confirm a payment with this PaymentIntent, provide a \
                      payment_method."
                .to_owned(),
            intent: Box::new(intent.clone()),
        })
}
