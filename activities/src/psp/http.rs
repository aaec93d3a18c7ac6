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
/// acted on it: the outcome is unknown and must be asked for, not assumed. The message never
/// holds the URL: a path may carry a credential (a Toss billing key), and the text travels to
/// the order's history, Temporal and logs.
pub fn transport_error(e: reqwest::Error) -> PspError {
    let connect = e.is_connect();
    let e = e.without_url();
    if connect {
        PspError::Unavailable { message: format!("connect failed: {e}"), retry_after: None }
    } else {
        PspError::OutcomeUnknown(format!("no answer to a sent request: {e}"))
    }
}

/// `base` with `segments` appended, each percent-encoded as one path segment: an identifier
/// from outside (a `paymentKey` the buyer's browser brought back) can never reach another
/// endpoint (`orders/<someone else's order>`). Empty, `.` and `..` segments, which a URL
/// would drop or resolve, are refused.
pub fn url(base: &reqwest::Url, segments: &[&str]) -> Result<reqwest::Url, PspError> {
    if let Some(bad) = segments.iter().find(|s| matches!(**s, "" | "." | "..")) {
        return Err(PspError::InvalidRequest(format!("{bad:?} is not a valid PSP identifier")));
    }
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    Ok(url)
}

/// Parses a configured base URL (`https://api.stripe.com`, the simulator's address).
pub fn base_url(base: &str) -> Result<reqwest::Url, PspError> {
    let url = reqwest::Url::parse(base.trim_end_matches('/'))
        .map_err(|e| PspError::InvalidRequest(format!("PSP base URL {base:?}: {e}")))?;
    if url.cannot_be_a_base() {
        return Err(PspError::InvalidRequest(format!("PSP base URL {base:?} cannot take a path")));
    }
    Ok(url)
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
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = response.text().await.map_err(transport_error)?;
    Ok(Answer { status, retry_after, body })
}

/// 429 and 5xx: the PSP is overloaded or failing; the same request may be retried with the
/// same idempotency key (after Retry-After when given).
pub fn is_transient(status: reqwest::StatusCode) -> bool {
    status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Identifiers are path segments, never paths: a key holding `/`, `?`, `#` or `..` stays
    /// inside its segment, and a base URL's own path is kept.
    #[test]
    fn segments_are_escaped() {
        let base = base_url("http://psp.test/prefix/").unwrap();
        let at = |segments: &[&str]| url(&base, segments).map(|u| u.to_string());
        assert_eq!(at(&["v1", "payments", "pk_1"]).unwrap(), "http://psp.test/prefix/v1/payments/pk_1");
        assert_eq!(
            at(&["v1", "payments", "orders/chk-other"]).unwrap(),
            "http://psp.test/prefix/v1/payments/orders%2Fchk-other"
        );
        assert_eq!(at(&["v1", "payments", "a?b#c"]).unwrap(), "http://psp.test/prefix/v1/payments/a%3Fb%23c");
        for bad in ["..", ".", ""] {
            assert!(matches!(url(&base, &["v1", "payments", bad]), Err(PspError::InvalidRequest(_))), "{bad:?}");
        }
        assert!(base_url("not a url").is_err());
    }

    /// A transport error names no URL (a Toss billing key is a path segment).
    #[tokio::test]
    async fn transport_errors_hide_the_url() {
        let client = client(Duration::from_millis(200)).unwrap();
        let target = url(&base_url("http://127.0.0.1:9").unwrap(), &["v1", "billing", "billing_secret_123"]).unwrap();
        let err = client.post(target).send().await.unwrap_err();
        let message = transport_error(err).to_string();
        assert!(!message.contains("billing_secret_123") && !message.contains("127.0.0.1"), "{message}");
    }
}
