//! HTTP plumbing shared by the PSP adapters: one client configuration and one classification
//! of transport failures.

use super::PspError;
use std::time::Duration;

/// Default per-request timeout. Shorter than the charge activity's 30 s start-to-close, so the
/// activity sees a classified timeout rather than being cut off mid-call.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 20_000;
/// Connect timeout: a PSP that does not accept a connection in 5 s is down for this attempt.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;

/// A client with our timeouts.
pub fn client(request_timeout: Duration) -> Result<reqwest::Client, PspError> {
    reqwest::Client::builder()
        .timeout(request_timeout)
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .build()
        .map_err(|e| PspError::InvalidRequest(format!("http client: {e}")))
}

/// Classifies a transport failure. A failure to connect means the request never left: retry.
/// Anything after that (timeout, connection dropped, unreadable answer) means the PSP may have
/// acted on it: the outcome is unknown and must be asked for, not assumed.
pub fn transport_error(e: &reqwest::Error) -> PspError {
    if e.is_connect() {
        PspError::Unavailable { message: format!("connect failed: {e}"), retry_after: None }
    } else {
        PspError::OutcomeUnknown(format!("no answer to a sent request: {e}"))
    }
}

/// The `Retry-After` header in seconds, if present.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A response read whole: status, Retry-After, body text.
pub struct Answer {
    /// HTTP status.
    pub status: reqwest::StatusCode,
    /// Retry-After, when sent.
    pub retry_after: Option<Duration>,
    /// Body.
    pub body: String,
}

/// Sends a request and reads the whole answer, classifying transport failures.
pub async fn send(request: reqwest::RequestBuilder) -> Result<Answer, PspError> {
    let response = request.send().await.map_err(|e| transport_error(&e))?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = response.text().await.map_err(|e| transport_error(&e))?;
    Ok(Answer { status, retry_after, body })
}

/// 429 and 5xx: the PSP is overloaded or failing; the same request may be retried with the
/// same idempotency key (after Retry-After when given).
pub fn is_transient(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}
