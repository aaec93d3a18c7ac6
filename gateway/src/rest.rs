//! REST JSON API of the seeds: `POST /v1/payments`, `GET /v1/payments/{payment_order_id}`,
//! `GET /v1/checkouts/{checkout_id}`, `GET /v1/sellers/{seller_account}/balance`, plus the probes `GET /healthz` and `GET /livez`
//! (`probes.rs`), the refund routes (`refunds.rs`) and the operators' reconciliation routes
//! under `/v1/admin/recon` (`recon_rest.rs`).
//! Every POST honours `Idempotency-Key`.

use crate::auth::{Access, Caller, RouteTable};
use crate::error::ApiError;
use crate::idempotency;
use crate::probes;
use crate::refunds::{self, parse_order_id};
use crate::service::{Created, PaymentsService};
use crate::views::{checkout_json, order_json};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Json, middleware};
use payments_domain::checkout::{draft_from_json, hosted_draft_from_json};
use payments_domain::{CheckoutId, NewCheckout};
use payments_store::{ApiScope, Store};
use serde_json::Value;
use std::convert::Infallible;
use tower_http::limit::RequestBodyLimitLayer;

/// Largest request body accepted. A 100-order checkout is well under 32 KiB.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;

/// The REST routes (and, through `refunds::routes` and `recon_rest::routes`, the refund and
/// reconciliation routes), each with its access decision and the JSON body limit.
pub fn routes(table: RouteTable, service: PaymentsService, public_url: String) -> RouteTable {
    let store = service.store();
    let state = Rest { service: service.clone(), public_url };
    let table = table
        .add(Method::POST, "/v1/payments", PAYMENTS, json_post(post(create_payment), store).with_state(state.clone()))
        .add(
            Method::POST,
            "/v1/checkouts",
            PAYMENTS,
            json_post(post(create_hosted_checkout), store).with_state(state.clone()),
        )
        .add(Method::GET, "/v1/payments/{payment_order_id}", PAYMENTS, get(get_payment).with_state(state.clone()))
        .add(Method::GET, "/v1/checkouts/{checkout_id}", PAYMENTS, get(get_checkout).with_state(state))
        .add(
            Method::GET,
            "/v1/sellers/{seller_account}/balance",
            PAYMENTS,
            get(get_balance).with_state(service.clone()),
        )
        .add(Method::GET, "/healthz", Access::Public, get(probes::readiness).with_state(service.clone()))
        .add(Method::GET, "/livez", Access::Public, get(probes::liveness));
    let table = refunds::routes(table, service.clone());
    crate::recon_rest::routes(table, service)
}

/// A mutating JSON route: Stripe's Idempotency-Key rules (`idempotency.rs`), the body limit
/// (413: from the declared Content-Length before anything is read, else while reading) and
/// `application/json` only (415), outermost first: content type, limit, key.
pub(crate) fn json_post<S: Clone + Send + Sync + 'static>(route: MethodRouter<S>, store: &Store) -> MethodRouter<S> {
    route
        .layer::<_, Infallible>(middleware::from_fn_with_state(store.clone(), idempotency::layer))
        .layer::<_, Infallible>(DefaultBodyLimit::max(REQUEST_BODY_BYTES_MAX))
        .layer(RequestBodyLimitLayer::new(REQUEST_BODY_BYTES_MAX))
        .layer(middleware::from_fn(require_json))
}

/// Refuses a request body that is not declared `application/json` (a charset parameter is
/// fine) with 415, before anything else reads it: a browser can send `text/plain` or a form
/// cross-site without a CORS preflight, never `application/json`.
pub(crate) async fn require_json(request: Request, next: Next) -> Response {
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if json {
        return next.run(request).await;
    }
    let body = serde_json::json!({"error": {"type": "invalid_request_error", "code": "content_type_unsupported",
        "param": "Content-Type", "message": "send the body as application/json"}});
    (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(body)).into_response()
}

/// `GET /v1/sellers/{seller_account}/balance`: the seller's balances, one per currency
/// (`paymentsctl balance show`, gRPC `GetSellerBalance`).
async fn get_balance(
    State(service): State<PaymentsService>,
    Path(seller_account): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let balances = service.payouts()?.balances(&seller_account).await?;
    let list: Vec<Value> = balances
        .balances
        .iter()
        .map(|b| {
            serde_json::json!({"currency": b.currency, "total": b.total, "pending": b.pending, "reserved": b.reserved,
                "available": b.available, "in_transit": b.in_transit})
        })
        .collect();
    Ok(Json(serde_json::json!({"seller_account": balances.seller_account, "balances": list})))
}

/// Integrations' scope: create, read and refund payments.
pub(crate) const PAYMENTS: Access = Access::Scope(ApiScope::Payments);
/// Operators' scope: the AdminService and its REST twins (`recon_rest.rs`).
pub(crate) const ADMIN: Access = Access::Scope(ApiScope::Admin);

#[derive(Clone)]
struct Rest {
    service: PaymentsService,
    public_url: String,
}

/// The one currency the hosted page's PSP (Toss Payments) charges.
pub const HOSTED_CURRENCY: &str = "KRW";

/// `POST /v1/checkouts`: a hosted checkout. The server computes the amount from the orders;
/// the answer carries the page to send the buyer to.
async fn create_hosted_checkout(
    State(rest): State<Rest>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = idempotency::key_of(&headers, &caller)?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid("body_malformed", "body", format!("is not valid JSON: {e}")))?;
    let checkout = NewCheckout::parse(hosted_draft_from_json(&value)?)?;
    let total = hosted_total(&checkout)?;
    let (created, record) = rest.service.create(checkout, key.as_deref()).await?;
    let status = match created {
        Created::New => StatusCode::CREATED,
        Created::Existing => StatusCode::OK,
    };
    let mut answer = checkout_json(&record);
    answer["checkout_url"] = Value::String(checkout_url(&rest.public_url, record.checkout_id.as_str()));
    answer["amount"] = Value::String(total.to_decimal_string());
    answer["currency"] = Value::String(total.currency().code().to_owned());
    Ok((status, Json(answer)))
}

/// The hosted checkout's total, refused unless it is in the hosted PSP's currency.
pub fn hosted_total(checkout: &NewCheckout) -> Result<payments_domain::Money, ApiError> {
    match checkout.total() {
        Some(t) if t.currency().code() == HOSTED_CURRENCY => Ok(t),
        _ => Err(ApiError::invalid(
            "parameter_invalid",
            "payment_orders",
            format!("hosted checkouts are paid through Toss Payments, in {HOSTED_CURRENCY} only"),
        )),
    }
}

/// Where to send the buyer of a hosted checkout.
pub fn checkout_url(public_url: &str, checkout_id: &str) -> String {
    format!("{}/checkout/{checkout_id}", public_url.trim_end_matches('/'))
}

async fn create_payment(
    State(Rest { service, .. }): State<Rest>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = idempotency::key_of(&headers, &caller)?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid("body_malformed", "body", format!("is not valid JSON: {e}")))?;
    let checkout = NewCheckout::parse(draft_from_json(&value)?)?;
    let (created, record) = service.create(checkout, key.as_deref()).await?;
    let status = match created {
        Created::New => StatusCode::ACCEPTED,
        Created::Existing => StatusCode::OK,
    };
    Ok((status, Json(checkout_json(&record))))
}

async fn get_payment(
    State(Rest { service, .. }): State<Rest>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(order_json(&service.order(&parse_order_id(id)?).await?)))
}

async fn get_checkout(
    State(Rest { service, .. }): State<Rest>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = CheckoutId::parse(id).map_err(|e| ApiError::invalid("parameter_invalid", "checkout_id", e.to_string()))?;
    Ok(Json(checkout_json(&service.checkout(&id).await?)))
}
