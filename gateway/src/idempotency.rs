//! Stripe's `Idempotency-Key` rules for the REST API's mutating calls, as an axum middleware
//! on `POST /v1/payments`, `POST /v1/checkouts` and `POST /v1/payments/{id}/refunds`. The
//! handlers also store the key with what they create (checkout, refund), bound to it, so a
//! retry finds what its first attempt created even when this layer's record of the answer is
//! gone (a 5xx it forgot, a dropped connection, a stale claim taken over).
//!
//! Without the header a request passes through untouched. With it, the key is claimed in the
//! database before the handler runs; a retry of the same request (same `METHOD path` and body)
//! replays the stored answer with `Idempotent-Replayed: true`, a retry while the first is still
//! running gets 409, and the key reused for another request gets 400. Validation failures (400)
//! and our own faults (5xx) are not stored: the claim is released so a corrected or later retry
//! runs anew. Keys are honoured for [`IDEMPOTENCY_KEY_TTL_MS`] and purged hourly.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::rest::REQUEST_BODY_BYTES_MAX;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use payments_store::{IDEMPOTENCY_KEY_TTL_MS, IdempotencyClaim, Store};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The request header carrying the client's key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// The response header marking a replayed answer.
pub const IDEMPOTENT_REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest key accepted, in characters (Stripe's limit).
pub const IDEMPOTENCY_KEY_CHARS_MAX: usize = 255;
/// How often the gateway deletes expired keys.
pub const IDEMPOTENCY_PURGE_INTERVAL_SECS: u64 = 60 * 60;
/// Largest response body stored for replay; our answers are a few KiB, so a bigger one is a bug
/// and is answered without being stored.
pub const STORED_RESPONSE_BYTES_MAX: usize = 1024 * 1024;

/// The middleware. Apply it with `axum::middleware::from_fn_with_state(store, idempotency::layer)`.
pub async fn layer(State(store): State<Store>, request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Caller>().cloned() else {
        // Every idempotent route is guarded; a route without a caller is our bug.
        return ApiError::Internal(anyhow::anyhow!("idempotent route without an authenticated caller")).into_response();
    };
    let key = match key_of(request.headers(), &caller) {
        Ok(None) => return next.run(request).await,
        Ok(Some(key)) => key,
        Err(e) => return e.into_response(),
    };
    let endpoint = format!("{} {}", request.method(), request.uri().path());
    let (parts, body) = request.into_parts();
    // The handler's own limit would refuse a bigger body with 413; refuse it the same way here,
    // before anything is claimed.
    let Ok(bytes) = to_bytes(body, REQUEST_BODY_BYTES_MAX).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let hash = request_hash(&endpoint, &bytes);
    match store.claim_idempotency_key(&key, &endpoint, &hash, now_ms()).await {
        Ok(IdempotencyClaim::New) => {}
        Ok(IdempotencyClaim::Replay { status, body }) => return replay(status, body),
        Ok(IdempotencyClaim::InProgress) => {
            return ApiError::idempotency(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "a request with this idempotency key is still being processed; retry later",
            )
            .into_response();
        }
        Ok(IdempotencyClaim::Mismatch) => {
            return ApiError::idempotency(
                StatusCode::BAD_REQUEST,
                "idempotency_key_reused",
                "this idempotency key was already used for a different request (endpoint or body); \
                 use a new key for a new request",
            )
            .into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    // The handler and the bookkeeping run in their own task: a client that hangs up must not
    // leave the key claimed (and every retry answered 409) until it expires.
    let request = Request::from_parts(parts, Body::from(bytes));
    let task = tokio::spawn(async move {
        let response = next.run(request).await;
        settle(&store, &key, response).await
    });
    match task.await {
        Ok(response) => response,
        Err(e) => ApiError::Internal(anyhow::anyhow!("idempotent request task failed: {e}")).into_response(),
    }
}

/// Stores the handler's answer under the key, or releases the key when the answer must not be
/// replayed; answers the response to send.
async fn settle(store: &Store, key: &str, response: Response) -> Response {
    let status = response.status();
    if status == StatusCode::BAD_REQUEST || status.is_server_error() {
        release(store, key).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, STORED_RESPONSE_BYTES_MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            release(store, key).await;
            return ApiError::Internal(anyhow::anyhow!("reading the response to store: {e}")).into_response();
        }
    };
    match std::str::from_utf8(&bytes) {
        Ok(text) => {
            if let Err(e) = store.finish_idempotency_key(key, status.as_u16(), text).await {
                // The answer is still right for this client; only its replay is lost.
                tracing::error!(key, error = %e, "storing an idempotent answer failed");
                release(store, key).await;
            }
        }
        Err(_) => {
            tracing::error!(key, "answer is not UTF-8; not stored for replay");
            release(store, key).await;
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

async fn release(store: &Store, key: &str) {
    if let Err(e) = store.release_idempotency_key(key).await {
        // The claim then lapses after the TTL; until then retries get 409.
        tracing::error!(key, error = %e, "releasing an idempotency key failed");
    }
}

/// The stored answer, exactly, marked as replayed. Every answer of these endpoints is JSON.
fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(IDEMPOTENT_REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// The key of a request's headers, scoped to its caller (see [`Caller::scoped_key`]): `None`
/// without the header; refused unless it is one header of 1 to [`IDEMPOTENCY_KEY_CHARS_MAX`]
/// visible ASCII characters. Handlers store it with what they create: the key stays bound to
/// it even when the middleware's record of the answer is lost.
pub fn key_of(headers: &axum::http::HeaderMap, caller: &Caller) -> Result<Option<String>, ApiError> {
    let values: Vec<&[u8]> = headers.get_all(IDEMPOTENCY_KEY_HEADER).iter().map(|v| v.as_bytes()).collect();
    Ok(parse_key(&values)?.map(|key| caller.scoped_key(&key)))
}

/// Validates the key from the values of its header (or gRPC metadata entry): `None` when
/// absent, an error when repeated, empty, too long or not visible ASCII.
pub fn parse_key(values: &[&[u8]]) -> Result<Option<String>, ApiError> {
    let invalid = |message: &str| {
        ApiError::idempotency(
            StatusCode::BAD_REQUEST,
            "idempotency_key_invalid",
            format!("{message}; it must be 1 to {IDEMPOTENCY_KEY_CHARS_MAX} visible ASCII characters"),
        )
    };
    let bytes = match values {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err(invalid("is given more than once")),
    };
    if bytes.is_empty() {
        return Err(invalid("is empty"));
    }
    if bytes.len() > IDEMPOTENCY_KEY_CHARS_MAX {
        return Err(invalid("is too long"));
    }
    if !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(invalid("has characters that are not visible ASCII"));
    }
    // All visible ASCII, so this cannot fail; no unwrap on request data all the same.
    let key = String::from_utf8(bytes.to_vec()).map_err(|_| invalid("is not ASCII"))?;
    // Keys are stored and logged: never card data.
    if payments_domain::card::contains_card_number(&key) {
        return Err(invalid("looks like it holds a card number"));
    }
    Ok(Some(key))
}

/// Hex SHA-256 of the endpoint and the raw body: the same key with anything else is refused.
pub fn request_hash(endpoint: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(endpoint.as_bytes());
    // A separator no method or path contains, so endpoint and body cannot run into each other.
    hasher.update(b"\n");
    hasher.update(body);
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Deletes expired keys at startup and every [`IDEMPOTENCY_PURGE_INTERVAL_SECS`] until `stop`.
pub async fn purge_loop(store: Store, stop: impl Future<Output = ()>) {
    every(Duration::from_secs(IDEMPOTENCY_PURGE_INTERVAL_SECS), stop, || async {
        match store.purge_idempotency_keys(now_ms() - IDEMPOTENCY_KEY_TTL_MS).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired idempotency keys purged"),
            // Harmless until the next round: expired keys are ignored on claim anyway.
            Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
        }
    })
    .await;
}

/// Runs `round` at once and then every `interval` (a late round delays the next, never doubles
/// up) until `stop` resolves.
pub(crate) async fn every<F, Fut>(interval: Duration, stop: impl Future<Output = ()>, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticks.tick() => round().await,
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key(value: &[u8]) -> Request {
        let mut request = Request::new(Body::empty());
        if let Ok(v) = HeaderValue::from_bytes(value) {
            request.headers_mut().insert(IDEMPOTENCY_KEY_HEADER, v);
        }
        request
    }

    fn idempotency_key(request: &Request) -> Result<Option<String>, ApiError> {
        let values: Vec<&[u8]> =
            request.headers().get_all(IDEMPOTENCY_KEY_HEADER).iter().map(|v| v.as_bytes()).collect();
        parse_key(&values)
    }

    /// The stored key is the client's, prefixed by the caller's lineage.
    #[test]
    fn keys_are_scoped_to_the_caller() {
        let caller = Caller { key_id: "key_b".into(), lineage: "key_a".into(), name: "ops".into() };
        assert_eq!(key_of(with_key(b"k-1").headers(), &caller).unwrap().as_deref(), Some("key_a/k-1"));
        assert_eq!(key_of(Request::new(Body::empty()).headers(), &caller).unwrap(), None);
    }

    /// Keys of 1..=255 visible ASCII characters are accepted; empty, too long, spaced or
    /// non-ASCII keys are refused; no header means no key.
    #[test]
    fn key_syntax() {
        assert_eq!(idempotency_key(&Request::new(Body::empty())).unwrap(), None);
        assert_eq!(idempotency_key(&with_key(b"k-1_~!")).unwrap().as_deref(), Some("k-1_~!"));
        assert!(idempotency_key(&with_key(&[b'a'; IDEMPOTENCY_KEY_CHARS_MAX])).is_ok());
        assert!(idempotency_key(&with_key(&[b'a'; IDEMPOTENCY_KEY_CHARS_MAX + 1])).is_err());
        assert!(idempotency_key(&with_key(b"")).is_err());
        assert!(idempotency_key(&with_key(b"a b")).is_err());
        assert!(idempotency_key(&with_key("ключ".as_bytes())).is_err());
    }

    /// The hash is hex SHA-256 and depends on both endpoint and body.
    #[test]
    fn hash_covers_endpoint_and_body() {
        let h = request_hash("POST /v1/payments", b"{}");
        assert_eq!(h.len(), 64);
        assert_ne!(h, request_hash("POST /v1/checkouts", b"{}"));
        assert_ne!(h, request_hash("POST /v1/payments", b"{ }"));
        assert_eq!(h, request_hash("POST /v1/payments", b"{}"));
    }
}
