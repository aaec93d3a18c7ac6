//! The REST twins of the reconciliation AdminService calls (`recon.rs`), under the `admin`
//! scope, JSON in and out (the report and a break's evidence as JSON objects):
//!
//! - `POST /v1/admin/recon/runs` `{"psp","day","wait"?}`: 202 with the run while it runs, 200
//!   once it ended;
//! - `GET /v1/admin/recon/runs/{psp}/{day}`;
//! - `GET /v1/admin/recon/breaks?status=&class=&psp=&day=&after_id=&limit=`:
//!   `{"breaks": [...], "next_after_id"}`;
//! - `GET /v1/admin/recon/breaks/{break_id}`;
//! - `POST /v1/admin/recon/breaks/{break_id}/resolve` `{"note"}`, `.../accept`
//!   `{"note","days"}`, `.../approve` (`{}`);
//! - `POST /v1/admin/recon/imports?psp=&name=` with the settlement file as a `text/csv` body
//!   (at most [`RECON_IMPORT_BYTES_MAX`]): 201 when stored, 200 when it was imported before.
//!
//! The JSON POSTs honour `Idempotency-Key` like every JSON POST (`rest::json_post`); an import
//! needs none: the same file is stored once, whatever the retries.

use crate::auth::{Caller, RouteTable};
use crate::error::ApiError;
use crate::idempotency::now_ms;
use crate::recon::{self, RECON_IMPORT_BYTES_MAX};
use crate::rest::{ADMIN, json_post};
use crate::service::PaymentsService;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Json};
use futures::StreamExt;
use payments_proto::payments_v1 as pb;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use tower_http::limit::RequestBodyLimitLayer;

/// The filters `GET /v1/admin/recon/breaks` takes.
const BREAK_FILTERS: [&str; 6] = ["status", "class", "psp", "day", "after_id", "limit"];

/// The reconciliation routes, each behind the `admin` scope.
pub fn routes(table: RouteTable, service: PaymentsService) -> RouteTable {
    let store = service.store().clone();
    let json = |route: MethodRouter<PaymentsService>| json_post(route, &store).with_state(service.clone());
    let read = |route: MethodRouter<PaymentsService>| route.with_state(service.clone());
    table
        .add(Method::POST, "/v1/admin/recon/runs", ADMIN, json(post(run)))
        .add(Method::GET, "/v1/admin/recon/runs/{psp}/{day}", ADMIN, read(get(get_run)))
        .add(Method::GET, "/v1/admin/recon/breaks", ADMIN, read(get(list_breaks)))
        .add(Method::GET, "/v1/admin/recon/breaks/{break_id}", ADMIN, read(get(get_break)))
        .add(Method::POST, "/v1/admin/recon/breaks/{break_id}/resolve", ADMIN, json(post(resolve)))
        .add(Method::POST, "/v1/admin/recon/breaks/{break_id}/accept", ADMIN, json(post(accept)))
        .add(Method::POST, "/v1/admin/recon/breaks/{break_id}/approve", ADMIN, json(post(approve)))
        .add(Method::POST, "/v1/admin/recon/imports", ADMIN, csv_post(post(import)).with_state(service))
}

/// The import route: `text/csv` only (415), at most [`RECON_IMPORT_BYTES_MAX`] (413 from the
/// declared Content-Length before anything is read, else while reading).
fn csv_post(route: MethodRouter<PaymentsService>) -> MethodRouter<PaymentsService> {
    route.layer(RequestBodyLimitLayer::new(RECON_IMPORT_BYTES_MAX)).layer(middleware::from_fn(require_csv))
}

async fn require_csv(request: Request, next: Next) -> Response {
    let csv = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("text/csv"));
    if csv {
        return next.run(request).await;
    }
    let body = json!({"error": {"type": "invalid_request_error", "code": "content_type_unsupported",
        "param": "Content-Type", "message": "send the settlement file as text/csv"}});
    (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(body)).into_response()
}

fn body_json(body: &Bytes) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("body_malformed", "body", format!("is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("body_malformed", "body", "must be a JSON object"));
    }
    Ok(value)
}

/// A string field of a JSON body; `""` when absent.
fn text<'a>(body: &'a Value, field: &str) -> Result<&'a str, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(ApiError::invalid("parameter_invalid", field, "must be a string")),
    }
}

fn break_id(text: &str) -> Result<i64, ApiError> {
    let id = text.parse().map_err(|_| ApiError::invalid("parameter_invalid", "break_id", "must be a break id"))?;
    recon::check_break_id(id)
}

/// The REST view of a run: the report as a JSON object (null before a run completed).
pub fn run_json(r: &pb::ReconciliationRun) -> Value {
    let report = serde_json::from_str::<Value>(&r.report_json).unwrap_or(Value::Null);
    let opt = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    json!({
        "run_id": r.run_id, "psp": r.psp, "day": r.day, "status": r.status, "attempts": r.attempts,
        "report": report, "error": opt(&r.error), "started_at_ms": r.started_at_ms,
        "finished_at_ms": if r.finished_at_ms == 0 { Value::Null } else { json!(r.finished_at_ms) },
    })
}

/// The REST view of a break: the evidence as a JSON object.
pub fn break_json(b: &pb::ReconBreak) -> Value {
    let opt = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    json!({
        "break_id": b.break_id, "fingerprint": b.fingerprint, "psp": b.psp, "day": b.day,
        "last_seen_day": b.last_seen_day, "kind": b.kind, "class": b.class, "status": b.status,
        "subject": b.subject, "order_id": opt(&b.order_id), "amount": opt(&b.amount),
        "amount_minor": b.amount_minor, "currency": b.currency,
        "evidence": serde_json::from_str::<Value>(&b.evidence_json).unwrap_or(Value::Null),
        "suggested_fix": opt(&b.suggested_fix), "resolution": opt(&b.resolution), "resolved_by": opt(&b.resolved_by),
        "accepted_until_ms": if b.accepted_until_ms == 0 { Value::Null } else { json!(b.accepted_until_ms) },
        "reopened": b.reopened, "created_at_ms": b.created_at_ms, "updated_at_ms": b.updated_at_ms,
    })
}

/// `POST /v1/admin/recon/runs`.
async fn run(
    State(service): State<PaymentsService>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body_json(&body)?;
    let psp = recon::parse_psp(text(&body, "psp")?)?;
    let day = recon::parse_day(text(&body, "day")?, now_ms())?;
    let wait = match body.get("wait") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(wait)) => *wait,
        Some(_) => return Err(ApiError::invalid("parameter_invalid", "wait", "must be true or false")),
    };
    let run = service.run_reconciliation(psp, day, wait).await?;
    tracing::info!(run_id = %run.run_id, status = %run.status, by = %caller.key_id, "reconciliation run asked for");
    let status = if run.status == "RUNNING" { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, Json(run_json(&run))))
}

/// `GET /v1/admin/recon/runs/{psp}/{day}`.
async fn get_run(
    State(service): State<PaymentsService>,
    Path((psp, day)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (psp, day) = (recon::parse_psp(&psp)?, recon::parse_day(&day, now_ms())?);
    Ok(Json(run_json(&service.reconciliation_run(psp, day).await?)))
}

/// `GET /v1/admin/recon/breaks`: unknown filters are refused, as Stripe refuses unknown
/// parameters.
async fn list_breaks(
    State(service): State<PaymentsService>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    if let Some(unknown) = query.keys().find(|k| !BREAK_FILTERS.contains(&k.as_str())) {
        return Err(ApiError::invalid("parameter_unknown", unknown.as_str(), "is not a filter of this list"));
    }
    let field = |name: &str| query.get(name).map(String::as_str).unwrap_or("").trim();
    fn number<T: std::str::FromStr + Default>(name: &str, text: &str) -> Result<T, ApiError> {
        if text.is_empty() {
            return Ok(T::default());
        }
        text.parse().map_err(|_| ApiError::invalid("parameter_invalid", name, "must be a whole number"))
    }
    let filter = recon::breaks_filter(
        field("status"),
        number("class", field("class"))?,
        field("psp"),
        field("day"),
        number("after_id", field("after_id"))?,
        number("limit", field("limit"))?,
    )?;
    let (breaks, next_after_id) = service.recon_breaks(&filter).await?;
    let breaks: Vec<Value> = breaks.iter().map(|b| break_json(&recon::break_pb(b))).collect();
    Ok(Json(json!({"breaks": breaks, "next_after_id": next_after_id})))
}

/// `GET /v1/admin/recon/breaks/{break_id}`.
async fn get_break(State(service): State<PaymentsService>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let record = service.recon_break(break_id(&id)?).await?;
    Ok(Json(break_json(&recon::break_pb(&record))))
}

/// `POST /v1/admin/recon/breaks/{break_id}/resolve`.
async fn resolve(
    State(service): State<PaymentsService>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (id, body) = (break_id(&id)?, body_json(&body)?);
    let record = service.resolve_recon_break(id, text(&body, "note")?, &caller.name).await?;
    Ok(Json(break_json(&recon::break_pb(&record))))
}

/// `POST /v1/admin/recon/breaks/{break_id}/accept`.
async fn accept(
    State(service): State<PaymentsService>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (id, body) = (break_id(&id)?, body_json(&body)?);
    let days = match body.get("days") {
        Some(Value::Number(n)) => n.as_u64().and_then(|d| u32::try_from(d).ok()).unwrap_or(0),
        _ => 0,
    };
    let record = service.accept_recon_break(id, text(&body, "note")?, days, &caller.name).await?;
    Ok(Json(break_json(&recon::break_pb(&record))))
}

/// `POST /v1/admin/recon/breaks/{break_id}/approve`.
async fn approve(
    State(service): State<PaymentsService>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = service.approve_recon_break(break_id(&id)?, &caller.name).await?;
    Ok(Json(break_json(&recon::break_pb(&record))))
}

/// `POST /v1/admin/recon/imports?psp=&name=`: the body is read only once an import slot is
/// free.
async fn import(
    State(service): State<PaymentsService>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<BTreeMap<String, String>>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let psp = recon::parse_psp(query.get("psp").map(String::as_str).unwrap_or(""))?;
    let name = recon::check_report_name(query.get("name").map(String::as_str).unwrap_or(""))?.to_owned();
    let _slot = service.recon_import_slot()?;
    // Spooled to disk as it arrives (the body limit layer bounds it).
    let mut spool = recon::csv_spool(psp)?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            let message = format!("could not be read whole (at most {RECON_IMPORT_BYTES_MAX} bytes)");
            ApiError::invalid("report_invalid", "content", message)
        })?;
        spool.write(&chunk).map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    }
    let outcome = service.import_settlement_csv(&name, spool).await?;
    tracing::info!(%psp, file_id = outcome.file_id, by = %caller.key_id, "settlement file imported over REST");
    let status = if outcome.already_imported { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(import_json(&recon::import_pb(&outcome)))))
}

/// The REST view of an import.
pub fn import_json(i: &pb::SettlementImport) -> Value {
    json!({"file_id": i.file_id, "lines_stored": i.lines_stored, "repeated": i.repeated,
        "already_imported": i.already_imported, "sha256": i.sha256})
}
