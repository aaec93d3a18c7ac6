//! Probes: `GET /livez` (liveness: the process answers; restart it when this fails) and
//! `GET /healthz` (readiness: the database and Temporal both answer within
//! [`READINESS_TIMEOUT`]; take the instance out of the load balancer while this fails). Both
//! public, and neither shows more than `ok` or the failing dependency's name and a short reason.

use crate::service::PaymentsService;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use temporalio_common::protos::temporal::api::workflowservice::v1::GetSystemInfoRequest;

/// How long each dependency gets to answer a readiness probe.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /livez`.
pub async fn liveness() -> &'static str {
    "ok"
}

/// `GET /healthz`: 200 `{"status":"ready","database":"ok","temporal":"ok"}`, or 503 with
/// `not_ready` and what failed.
pub async fn readiness(State(service): State<PaymentsService>) -> (StatusCode, Json<Value>) {
    let (database, temporal) = tokio::join!(database(&service), temporal(&service));
    let ready = database.is_ok() && temporal.is_ok();
    let show = |r: Result<(), String>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => e,
    };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "database": show(database),
        "temporal": show(temporal),
    });
    (status, Json(body))
}

async fn database(service: &PaymentsService) -> Result<(), String> {
    match tokio::time::timeout(READINESS_TIMEOUT, service.store().ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database");
            Err("unavailable".into())
        }
        Err(_) => Err("timed out".into()),
    }
}

async fn temporal(service: &PaymentsService) -> Result<(), String> {
    let mut client = service.temporal().connection().workflow_service();
    let call = client.get_system_info(tonic::Request::new(GetSystemInfoRequest::default()));
    match tokio::time::timeout(READINESS_TIMEOUT, call).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(status)) => {
            tracing::warn!(code = ?status.code(), "readiness: temporal");
            Err("unavailable".into())
        }
        Err(_) => Err("timed out".into()),
    }
}
