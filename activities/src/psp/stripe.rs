//! Stripe adapter: PaymentIntents created and confirmed in one call with a payment-method
//! token (`POST /v1/payment_intents`, form-encoded, `Authorization: Bearer`, `Idempotency-Key`).
//! The base URL is configurable: `https://api.stripe.com` in production, the simulator locally.

use super::{PspClient, PspError, PspFuture, SecretKey};
use payments_workflows::contract::{ChargeInput, ChargeOutcome};
use reqwest::StatusCode;
use serde::Deserialize;
use std::time::Duration;

/// Per-request timeout. Shorter than the charge activity's 30 s start-to-close so the activity
/// sees a classified timeout (retried with the same key) rather than being killed mid-call.
pub const REQUEST_TIMEOUT_MS: u64 = 20_000;
/// Connect timeout: a PSP that does not accept a connection in 5 s is down for this attempt.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;

/// Stripe API client.
#[derive(Debug, Clone)]
pub struct StripeClient {
    base_url: String,
    secret_key: SecretKey,
    http: reqwest::Client,
}

impl StripeClient {
    /// A client for `base_url` (no trailing slash needed).
    pub fn new(base_url: &str, secret_key: SecretKey) -> Result<Self, PspError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS))
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .build()
            .map_err(|e| PspError::InvalidRequest(format!("http client: {e}")))?;
        Ok(StripeClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            secret_key,
            http,
        })
    }

    async fn create_and_confirm(&self, input: &ChargeInput) -> Result<ChargeOutcome, PspError> {
        // Stripe amounts are integers in the currency's smallest unit (zero-decimal currencies
        // such as KRW and JPY send the whole amount), which is exactly our minor units.
        let form = [
            ("amount", input.amount.amount_minor().to_string()),
            (
                "currency",
                input.amount.currency().code().to_ascii_lowercase(),
            ),
            ("payment_method", input.payment_token.clone()),
            ("confirm", "true".to_owned()),
            (
                "metadata[payment_order_id]",
                input.payment_order_id.to_string(),
            ),
            ("metadata[checkout_id]", input.checkout_id.to_string()),
        ];
        let response = self
            .http
            .post(format!("{}/v1/payment_intents", self.base_url))
            .bearer_auth(self.secret_key.expose())
            .header("Idempotency-Key", input.payment_order_id.as_str())
            .form(&form)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.text().await.map_err(|e| unavailable(&e))?;
        classify(status, retry_after, &body)
    }
}

impl PspClient for StripeClient {
    fn charge<'a>(&'a self, input: &'a ChargeInput) -> PspFuture<'a, ChargeOutcome> {
        Box::pin(self.create_and_confirm(input))
    }
}

/// Connection errors and timeouts: the request may or may not have reached Stripe, so the
/// charge is retried with the same idempotency key, never treated as failed.
fn unavailable(e: &reqwest::Error) -> PspError {
    PspError::Unavailable {
        message: format!("request failed: {e}"),
        retry_after: None,
    }
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    status: String,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: StripeError,
}

#[derive(Debug, Deserialize)]
struct StripeError {
    #[serde(rename = "type")]
    kind: String,
    code: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
    payment_intent: Option<PaymentIntent>,
}

/// Maps one Stripe response to an outcome or a classified error.
fn classify(
    status: StatusCode,
    retry_after: Option<std::time::Duration>,
    body: &str,
) -> Result<ChargeOutcome, PspError> {
    if status.is_success() {
        let pi: PaymentIntent = serde_json::from_str(body).map_err(|e| PspError::Unavailable {
            message: format!("unreadable PaymentIntent: {e}"),
            retry_after: None,
        })?;
        return match pi.status.as_str() {
            "succeeded" => Ok(ChargeOutcome::Captured {
                psp_reference: pi.id,
            }),
            // Not final yet (3-D Secure, processing): retried for now; waiting on a webhook
            // signal replaces this when those flows land.
            other => Err(PspError::Unavailable {
                message: format!("PaymentIntent {} is {other}, not final", pi.id),
                retry_after: None,
            }),
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
        || status == StatusCode::CONFLICT
    {
        return Err(PspError::Unavailable {
            message: format!("HTTP {status}"),
            retry_after,
        });
    }
    let err = serde_json::from_str::<ErrorBody>(body)
        .map_err(|_| PspError::Unavailable {
            message: format!("HTTP {status} with unreadable body"),
            retry_after,
        })?
        .error;
    let message = err.message.clone().unwrap_or_default();
    match (status, err.kind.as_str()) {
        (StatusCode::PAYMENT_REQUIRED, "card_error") => Ok(ChargeOutcome::Declined {
            code: err
                .decline_code
                .or(err.code)
                .unwrap_or_else(|| "card_declined".to_owned()),
            message,
            psp_reference: err.payment_intent.map(|pi| pi.id),
        }),
        (_, "idempotency_error") => Err(PspError::IdempotencyMismatch(message)),
        (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => {
            Err(PspError::Authentication(message))
        }
        _ => Err(PspError::InvalidRequest(format!(
            "HTTP {status} {}: {message}",
            err.code.unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_stripe_responses() {
        let ok = r#"{"id":"pi_1","object":"payment_intent","status":"succeeded"}"#;
        assert_eq!(
            classify(StatusCode::OK, None, ok),
            Ok(ChargeOutcome::Captured {
                psp_reference: "pi_1".into()
            })
        );
        let declined = r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds",
            "message":"Your card has insufficient funds.","payment_intent":{"id":"pi_2","status":"requires_payment_method"}}}"#;
        assert!(
            matches!(classify(StatusCode::PAYMENT_REQUIRED, None, declined),
            Ok(ChargeOutcome::Declined { code, psp_reference: Some(p), .. }) if code == "insufficient_funds" && p == "pi_2")
        );
        let limited = classify(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(3)),
            "",
        );
        assert_eq!(
            limited,
            Err(PspError::Unavailable {
                message: "HTTP 429 Too Many Requests".into(),
                retry_after: Some(Duration::from_secs(3))
            })
        );
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None, "<html>"),
            Err(PspError::Unavailable { .. })
        ));
        let idem =
            r#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests..."}}"#;
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, None, idem),
            Err(PspError::IdempotencyMismatch(_))
        ));
        let auth = r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****"}}"#;
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, None, auth),
            Err(PspError::Authentication(_))
        ));
        let missing = r#"{"error":{"type":"invalid_request_error","code":"resource_missing","param":"payment_method","message":"No such PaymentMethod"}}"#;
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, None, missing),
            Err(PspError::InvalidRequest(_))
        ));
    }
}
