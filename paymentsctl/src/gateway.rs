//! A small client of the gateway's REST API (`POST /v1/payments`, `GET /v1/checkouts/{id}`,
//! `GET /v1/payments/{id}`, refunds, `GET /healthz`). Bodies stay `serde_json::Value`: amounts are
//! decimal strings and are never turned into numbers.

use anyhow::{Context, anyhow, bail};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use std::time::Duration;

/// Timeout of every request to the gateway.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP answer: status and JSON body (`Value::Null` when the body is empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Parsed body.
    pub body: Value,
}

impl Answer {
    /// The gateway's error (`{"error":{"type","code","message","param"}}`) as one line, or the
    /// raw body when it has another shape.
    pub fn error_summary(&self) -> String {
        describe_error(&self.body)
    }
}

/// `code: message (param p)` from a gateway error body; the body itself when it has no
/// `error` object.
pub fn describe_error(body: &Value) -> String {
    let Some(err) = body.get("error") else {
        return if body.is_null() { "no error details".to_owned() } else { body.to_string() };
    };
    let field = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("");
    let mut out = match (field("code"), field("message")) {
        ("", "") => err.to_string(),
        ("", m) => m.to_owned(),
        (c, "") => c.to_owned(),
        (c, m) => format!("{c}: {m}"),
    };
    if !field("param").is_empty() {
        out.push_str(&format!(" (param {})", field("param")));
    }
    out
}

/// The gateway at one base URL.
#[derive(Debug, Clone)]
pub struct Gateway {
    base: Url,
    http: reqwest::Client,
}

impl Gateway {
    /// A client of the gateway at `base` (e.g. `http://127.0.0.1:8080`) sending `api_key` as
    /// `Authorization: Bearer` (marked sensitive, so never logged).
    pub fn new(base: &str, api_key: Option<&str>) -> anyhow::Result<Gateway> {
        let base = Url::parse(base).with_context(|| format!("gateway URL {base:?} is not a URL"))?;
        if base.cannot_be_a_base() {
            bail!("gateway URL {base} cannot be a base URL");
        }
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = api_key {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| anyhow!("the API key holds characters that cannot be sent"))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .default_headers(headers)
            .build()
            .context("building the HTTP client")?;
        Ok(Gateway { base, http })
    }

    /// The URL of `segments` under the base, each segment percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Fails unless `GET /healthz` answers 2xx.
    pub async fn check_health(&self) -> anyhow::Result<()> {
        let url = self.url(&["healthz"]);
        let resp =
            self.http.get(url.clone()).send().await.with_context(|| format!("gateway is not reachable at {url}"))?;
        if !resp.status().is_success() {
            bail!("gateway at {url} is not healthy: HTTP {}", resp.status());
        }
        Ok(())
    }

    /// `POST /v1/payments` with `body`.
    pub async fn create_payment(&self, body: &Value) -> anyhow::Result<Answer> {
        let url = self.url(&["v1", "payments"]);
        let resp = self.http.post(url.clone()).json(body).send().await;
        read(resp, &url).await
    }

    /// `POST /v1/checkouts` (a hosted checkout).
    pub async fn create_hosted_checkout(&self, body: &Value) -> anyhow::Result<Answer> {
        let url = self.url(&["v1", "checkouts"]);
        let resp = self.http.post(url.clone()).json(body).send().await;
        read(resp, &url).await
    }

    /// `GET /v1/checkouts/{checkout_id}`.
    pub async fn checkout(&self, checkout_id: &str) -> anyhow::Result<Answer> {
        self.get(&["v1", "checkouts", checkout_id]).await
    }

    /// `GET /v1/payments/{payment_order_id}`.
    pub async fn payment_order(&self, payment_order_id: &str) -> anyhow::Result<Answer> {
        self.get(&["v1", "payments", payment_order_id]).await
    }

    /// `POST /v1/payments/{payment_order_id}/refunds` with `body`, under `idempotency_key` if
    /// given (the same key again replays the first answer instead of refunding twice).
    pub async fn create_refund(
        &self,
        payment_order_id: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let url = self.url(&["v1", "payments", payment_order_id, "refunds"]);
        let mut request = self.http.post(url.clone()).json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        read(request.send().await, &url).await
    }

    /// `GET /v1/payments/{payment_order_id}/refunds`.
    pub async fn refunds(&self, payment_order_id: &str) -> anyhow::Result<Answer> {
        self.get(&["v1", "payments", payment_order_id, "refunds"]).await
    }

    /// `GET /v1/refunds/{refund_id}`.
    pub async fn refund(&self, refund_id: &str) -> anyhow::Result<Answer> {
        self.get(&["v1", "refunds", refund_id]).await
    }

    /// `GET` of any JSON route.
    pub async fn get_json(&self, segments: &[&str]) -> anyhow::Result<Answer> {
        self.get(segments).await
    }

    async fn get(&self, segments: &[&str]) -> anyhow::Result<Answer> {
        let url = self.url(segments);
        let resp = self.http.get(url.clone()).send().await;
        read(resp, &url).await
    }
}

async fn read(resp: reqwest::Result<reqwest::Response>, url: &Url) -> anyhow::Result<Answer> {
    let resp = resp.with_context(|| format!("request to {url} failed"))?;
    let status = resp.status();
    let bytes = resp.bytes().await.with_context(|| format!("reading the answer of {url}"))?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    Ok(Answer { status, body })
}

/// Turns a GET answer into its body: 404 becomes "`what` not found", any other non-2xx an
/// error with the gateway's explanation.
pub fn found(answer: Answer, what: &str) -> anyhow::Result<Value> {
    match answer.status {
        s if s.is_success() => Ok(answer.body),
        StatusCode::NOT_FOUND => Err(anyhow!("{what} not found")),
        s => Err(anyhow!("{what}: gateway answered HTTP {s}: {}", answer.error_summary())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_are_joined_and_encoded() {
        let g = Gateway::new("http://127.0.0.1:8080/", None).unwrap();
        assert_eq!(g.url(&["v1", "checkouts", "a/b c"]).as_str(), "http://127.0.0.1:8080/v1/checkouts/a%2Fb%20c");
        let g = Gateway::new("http://host/api", None).unwrap();
        assert_eq!(g.url(&["healthz"]).as_str(), "http://host/api/healthz");
    }

    #[test]
    fn error_bodies_are_summarized() {
        let body = json!({"error": {"type": "invalid_request_error", "code": "parameter_invalid",
            "message": "must not be empty", "param": "checkout_id"}});
        assert_eq!(describe_error(&body), "parameter_invalid: must not be empty (param checkout_id)");
        assert_eq!(describe_error(&Value::Null), "no error details");
        assert_eq!(describe_error(&json!("oops")), "\"oops\"");
    }

    #[test]
    fn not_found_is_reported_plainly() {
        let answer = Answer {
            status: StatusCode::NOT_FOUND,
            body: json!({"error": {"code": "resource_missing", "message": "x not found"}}),
        };
        let err = found(answer, "checkout x").unwrap_err();
        assert_eq!(err.to_string(), "checkout x not found");
    }
}
