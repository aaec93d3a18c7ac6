//! `idempotency-key` metadata on the gRPC calls that create something, with the REST API's
//! rules and the same store: the first answer (the encoded response message) is replayed,
//! another request under the key is refused (INVALID_ARGUMENT), a request still running under
//! it answers ABORTED, and failures are not remembered.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::idempotency::{IDEMPOTENCY_KEY_HEADER, STORED_RESPONSE_BYTES_MAX, now_ms, parse_key, request_hash};
use base64::Engine;
use payments_store::{IdempotencyClaim, Store};
use std::future::Future;
use tonic::{Request, Response, Status};

/// Status stored for a successful gRPC answer (the REST API stores HTTP statuses).
const GRPC_OK_STATUS: u16 = 200;

/// Runs `call` under the request's `idempotency-key`, if any, and hands it the key (the call
/// stores it with what it creates, bound to it). `endpoint` names the method.
pub async fn idempotent<Req, Resp, F>(
    store: &Store,
    endpoint: &str,
    request: Request<Req>,
    call: impl FnOnce(Request<Req>, Option<String>) -> F,
) -> Result<Response<Resp>, Status>
where
    Req: prost::Message,
    Resp: prost::Message + Default,
    F: Future<Output = Result<Response<Resp>, Status>>,
{
    let values: Vec<&[u8]> = request.metadata().get_all(IDEMPOTENCY_KEY_HEADER).iter().map(|v| v.as_bytes()).collect();
    let Some(key) = parse_key(&values)? else {
        return call(request, None).await;
    };
    // Scoped to the caller the auth layer put in the request (see `auth.rs`).
    let caller = request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("idempotent gRPC call without an authenticated caller")))?;
    let key = caller.scoped_key(&key);
    let hash = request_hash(endpoint, &request.get_ref().encode_to_vec());
    match store.claim_idempotency_key(&key, endpoint, &hash, now_ms()).await.map_err(ApiError::from)? {
        IdempotencyClaim::New => {}
        IdempotencyClaim::Replay { body, .. } => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored gRPC answer unreadable: {e}")))?;
            let message = Resp::decode(bytes.as_slice())
                .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored gRPC answer undecodable: {e}")))?;
            let mut response = Response::new(message);
            response.metadata_mut().insert("idempotent-replayed", tonic::metadata::MetadataValue::from_static("true"));
            return Ok(response);
        }
        IdempotencyClaim::InProgress => {
            return Err(Status::aborted("idempotency_key_in_use: a request with this key is still being processed"));
        }
        IdempotencyClaim::Mismatch => {
            return Err(Status::invalid_argument(
                "idempotency_key_reused: this key was already used for a different request; use a new key",
            ));
        }
    }
    let result = call(request, Some(key.clone())).await;
    let stored = match &result {
        Ok(response) => {
            let body = base64::engine::general_purpose::STANDARD.encode(response.get_ref().encode_to_vec());
            if body.len() <= STORED_RESPONSE_BYTES_MAX {
                store.finish_idempotency_key(&key, GRPC_OK_STATUS, &body).await.is_ok()
            } else {
                false
            }
        }
        // Failures are not remembered: a corrected retry with the same key runs anew.
        Err(_) => false,
    };
    if !stored && let Err(e) = store.release_idempotency_key(&key).await {
        tracing::warn!(error = %e, "idempotency key not released; it frees itself when stale");
    }
    result
}
