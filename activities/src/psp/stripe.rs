//! Stripe adapter: PaymentIntents created and confirmed in one call with a payment-method
//! token (`POST /v1/payment_intents`), retrieved by id or found by our order id through the
//! Search API (eventually consistent: a miss is reported as such, see `rules.rs`), refunded
//! with `POST /v1/refunds` (our refund id in `metadata[refund_id]`, found again through the
//! refund list of the intent). Form-encoded requests, `Authorization: Bearer`,
//! `Idempotency-Key`; every id in a path is one escaped segment. The base URL is configurable:
//! `https://api.stripe.com` in production, the simulator locally.

use super::http::{self, Answer};
use super::{PspClient, PspError, PspFuture, PspLookup, PspPayment, RefundOutcome, RefundRequest, SecretKey};
use payments_workflows::contract::{
    ChargeInput, ChargeOutcome, ConfirmInput, LookupInput, PendingReason, RefundLookup,
};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Refunds asked for per page of the refund list (Stripe's maximum).
const REFUND_PAGE_LIMIT: u32 = 100;
/// Pages of an intent's refund list read before giving up (10,000 refunds of one payment).
const REFUND_PAGES_MAX: usize = 100;
/// The metadata key our refund id travels under.
const REFUND_ID_METADATA_KEY: &str = "refund_id";

/// Stripe API client.
#[derive(Debug, Clone)]
pub struct StripeClient {
    base_url: Url,
    secret_key: SecretKey,
    http: reqwest::Client,
}

/// A PaymentIntent, as far as we read it.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    /// `pi_...`.
    pub id: String,
    /// Lifecycle status.
    pub status: String,
    /// Why the last attempt failed (declines, failed authentication).
    pub last_payment_error: Option<LastPaymentError>,
    /// What the buyer must do (3-D Secure).
    pub next_action: Option<serde_json::Value>,
    /// Why it was canceled.
    pub cancellation_reason: Option<String>,
    /// Amount in minor units.
    pub amount: Option<i64>,
    /// Lower-case ISO currency.
    pub currency: Option<String>,
    /// Our `payment_order_id` and `checkout_id`.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl PaymentIntent {
    /// The intent as a payment of ours to check.
    fn payment(&self) -> PspPayment {
        PspPayment {
            outcome: intent_outcome(self),
            order_id: self.metadata.get("payment_order_id").cloned(),
            amount_minor: self.amount,
            currency: self.currency.clone(),
        }
    }
}

/// `last_payment_error` of a PaymentIntent.
#[derive(Debug, Clone, Deserialize)]
pub struct LastPaymentError {
    /// e.g. `card_declined`, `payment_intent_authentication_failure`.
    pub code: Option<String>,
    /// e.g. `insufficient_funds`.
    pub decline_code: Option<String>,
    /// Human-readable text.
    pub message: Option<String>,
}

/// Stripe's error envelope (also read by the Connect payout adapter).
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: StripeError,
}

/// Stripe's error object.
#[derive(Debug, Deserialize)]
pub(crate) struct StripeError {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) code: Option<String>,
    pub(crate) decline_code: Option<String>,
    pub(crate) message: Option<String>,
    payment_intent: Option<PaymentIntent>,
}

#[derive(Debug, Deserialize)]
struct SearchResult {
    data: Vec<PaymentIntent>,
}

#[derive(Debug, Deserialize)]
struct Refund {
    id: String,
    status: String,
    failure_reason: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl Refund {
    fn outcome(self) -> RefundOutcome {
        match self.status.as_str() {
            "failed" | "canceled" => RefundOutcome::Refused {
                code: self.failure_reason.unwrap_or_else(|| self.status.clone()),
                message: format!("refund {} {}", self.id, self.status),
            },
            // succeeded, pending (on its way), requires_action (returned once the buyer acts).
            _ => RefundOutcome::Refunded { psp_refund_reference: self.id },
        }
    }
}

#[derive(Debug, Deserialize)]
struct RefundList {
    data: Vec<Refund>,
    has_more: bool,
}

impl StripeClient {
    /// A client for `base_url` (no trailing slash needed).
    pub fn new(base_url: &str, secret_key: SecretKey, request_timeout: Duration) -> Result<Self, PspError> {
        Ok(StripeClient { base_url: http::base_url(base_url)?, secret_key, http: http::client(request_timeout)? })
    }

    fn post(
        &self,
        path: &[&str],
        idempotency_key: &str,
        form: &[(&str, String)],
    ) -> Result<reqwest::RequestBuilder, PspError> {
        Ok(self
            .http
            .post(http::url(&self.base_url, path)?)
            .bearer_auth(self.secret_key.expose())
            .header("Idempotency-Key", idempotency_key)
            .form(form))
    }

    fn get(&self, path: &[&str]) -> Result<reqwest::RequestBuilder, PspError> {
        Ok(self.http.get(http::url(&self.base_url, path)?).bearer_auth(self.secret_key.expose()))
    }

    async fn create_and_confirm(&self, input: &ChargeInput, token: &str) -> Result<ChargeOutcome, PspError> {
        // Stripe amounts are integers in the currency's smallest unit (zero-decimal currencies
        // such as KRW and JPY send the whole amount): exactly our minor units.
        let form = [
            ("amount", input.amount.amount_minor().to_string()),
            ("currency", input.amount.currency().code().to_ascii_lowercase()),
            ("payment_method", token.to_owned()),
            ("confirm", "true".to_owned()),
            ("metadata[payment_order_id]", input.payment_order_id.to_string()),
            ("metadata[checkout_id]", input.checkout_id.to_string()),
        ];
        let answer = http::send(self.post(&["v1", "payment_intents"], input.payment_order_id.as_str(), &form)?).await?;
        classify_charge(&answer)
    }

    async fn find(&self, input: &LookupInput) -> Result<PspLookup, PspError> {
        if let Some(id) = &input.psp_reference {
            let answer = http::send(self.get(&["v1", "payment_intents", id])?).await?;
            if answer.status == StatusCode::NOT_FOUND {
                return Ok(PspLookup::NotFound);
            }
            let pi: PaymentIntent = parse_ok(&answer)?;
            return Ok(PspLookup::Found(pi.payment()));
        }
        let order = input.expected.as_ref().map_or(input.payment_order_id.as_str(), |e| e.psp_order_id.as_str());
        let query = format!("metadata['payment_order_id']:'{order}'");
        let answer = http::send(self.get(&["v1", "payment_intents", "search"])?.query(&[("query", query)])).await?;
        let result: SearchResult = parse_ok(&answer)?;
        // One key, one intent; should there be more, a captured one wins over the rest.
        let best = result.data.iter().find(|pi| pi.status == "succeeded").or_else(|| result.data.first());
        // Search is eventually consistent: a miss is only a miss (see `rules.rs`).
        Ok(best.map_or(PspLookup::SearchMiss, |pi| PspLookup::Found(pi.payment())))
    }

    /// Finds our refund among the intent's refunds (a list read, consistent, unlike search).
    async fn find_refund_by_id(&self, request: &RefundRequest) -> Result<RefundLookup, PspError> {
        let mut after: Option<String> = None;
        for _page in 0..REFUND_PAGES_MAX {
            let mut query =
                vec![("payment_intent", request.psp_reference.clone()), ("limit", REFUND_PAGE_LIMIT.to_string())];
            if let Some(after) = &after {
                query.push(("starting_after", after.clone()));
            }
            let answer = http::send(self.get(&["v1", "refunds"])?.query(&query)).await?;
            let list: RefundList = parse_ok(&answer)?;
            after = list.data.last().map(|r| r.id.clone());
            let ours = list.data.into_iter().find(|r| {
                r.metadata.get(REFUND_ID_METADATA_KEY).map(String::as_str) == Some(request.refund_id.as_str())
            });
            if let Some(refund) = ours {
                return Ok(RefundLookup::Found(refund.outcome()));
            }
            if !list.has_more || after.is_none() {
                return Ok(RefundLookup::NotFound);
            }
        }
        Err(PspError::Unavailable {
            message: format!("more than {} refunds on {}", REFUND_PAGES_MAX * 100, request.psp_reference),
            retry_after: None,
        })
    }

    async fn create_refund(&self, request: &RefundRequest) -> Result<RefundOutcome, PspError> {
        let form = [
            ("payment_intent", request.psp_reference.clone()),
            ("amount", request.amount.amount_minor().to_string()),
            // Stripe's `reason` is an enum; our free-text reason travels as metadata.
            ("reason", "requested_by_customer".to_owned()),
            ("metadata[reason]", request.reason.clone()),
            ("metadata[payment_order_id]", request.payment_order_id.to_string()),
            // How `find_refund` recognizes it, whatever became of this answer.
            ("metadata[refund_id]", request.refund_id.clone()),
        ];
        let answer = http::send(self.post(&["v1", "refunds"], &request.refund_id, &form)?).await?;
        classify_refund(&answer)
    }
}

/// Maps a create-refund answer (status, Retry-After, body) to an outcome or a classified
/// error, exposed for fixture tests.
pub fn refund_answer(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Result<RefundOutcome, PspError> {
    classify_refund(&Answer { status, retry_after, body: body.to_owned() })
}

/// Maps the answer to a create-refund call: a Refund object, a refusal, or an error.
fn classify_refund(answer: &Answer) -> Result<RefundOutcome, PspError> {
    if answer.status.is_success() {
        let refund: Refund = parse_ok(answer)?;
        return Ok(refund.outcome());
    }
    match classify_error(answer)? {
        StripeFailure::Refused { code, message } => Ok(RefundOutcome::Refused { code, message }),
        StripeFailure::Declined(outcome) => {
            Err(PspError::InvalidRequest(format!("unexpected decline on refund: {outcome:?}")))
        }
    }
}

impl StripeClient {
    async fn cancel_intent(&self, input: &LookupInput) -> Result<PspPayment, PspError> {
        let id = match &input.psp_reference {
            Some(id) => id.clone(),
            None => match self.find(input).await? {
                PspLookup::Found(PspPayment { outcome: ChargeOutcome::Pending { psp_reference, .. }, .. }) => {
                    psp_reference
                }
                PspLookup::Found(payment) => return Ok(payment),
                PspLookup::NotFound | PspLookup::SearchMiss => {
                    return Err(PspError::InvalidRequest("no payment to cancel".into()));
                }
            },
        };
        let form = [("cancellation_reason", "abandoned".to_owned())];
        let path = ["v1", "payment_intents", id.as_str(), "cancel"];
        let answer = http::send(self.post(&path, &format!("{id}:cancel"), &form)?).await?;
        if answer.status.is_success() {
            let pi: PaymentIntent = parse_ok(&answer)?;
            return Ok(pi.payment());
        }
        // Not cancellable any more (it succeeded or failed meanwhile): its state is the answer.
        let answer = http::send(self.get(&["v1", "payment_intents", &id])?).await?;
        let pi: PaymentIntent = parse_ok(&answer)?;
        Ok(pi.payment())
    }
}

impl PspClient for StripeClient {
    fn charge<'a>(&'a self, input: &'a ChargeInput, token: &'a str) -> PspFuture<'a, ChargeOutcome> {
        Box::pin(self.create_and_confirm(input, token))
    }
    fn lookup<'a>(&'a self, input: &'a LookupInput) -> PspFuture<'a, PspLookup> {
        Box::pin(self.find(input))
    }
    fn refund<'a>(&'a self, request: &'a RefundRequest) -> PspFuture<'a, RefundOutcome> {
        Box::pin(self.create_refund(request))
    }
    fn find_refund<'a>(&'a self, request: &'a RefundRequest) -> PspFuture<'a, RefundLookup> {
        Box::pin(self.find_refund_by_id(request))
    }
    fn confirm<'a>(&'a self, _input: &'a ConfirmInput) -> PspFuture<'a, ChargeOutcome> {
        Box::pin(async {
            Err(PspError::InvalidRequest(
                "the hosted-page flow is served by Toss Payments here (PSP_PROVIDER=toss)".into(),
            ))
        })
    }
    fn cancel_pending<'a>(&'a self, input: &'a LookupInput) -> PspFuture<'a, PspPayment> {
        Box::pin(self.cancel_intent(input))
    }
}

fn parse_ok<T: serde::de::DeserializeOwned>(answer: &Answer) -> Result<T, PspError> {
    if !answer.status.is_success() {
        return Err(match classify_error(answer) {
            Err(e) => e,
            Ok(other) => PspError::InvalidRequest(format!("HTTP {}: {other:?}", answer.status)),
        });
    }
    // A 2xx we cannot read may still mean the PSP acted: unknown, not failed.
    serde_json::from_str(&answer.body).map_err(|e| PspError::OutcomeUnknown(format!("unreadable answer: {e}")))
}

/// The outcome a PaymentIntent's status stands for.
pub fn intent_outcome(pi: &PaymentIntent) -> ChargeOutcome {
    let declined = |fallback: &str| {
        let err = pi.last_payment_error.as_ref();
        ChargeOutcome::Declined {
            code: err
                .and_then(|e| e.decline_code.clone().or_else(|| e.code.clone()))
                .or_else(|| pi.cancellation_reason.clone())
                .unwrap_or_else(|| fallback.to_owned()),
            message: err.and_then(|e| e.message.clone()).unwrap_or_default(),
            psp_reference: Some(pi.id.clone()),
        }
    };
    match pi.status.as_str() {
        "succeeded" => ChargeOutcome::Captured { psp_reference: pi.id.clone() },
        "requires_action" => ChargeOutcome::Pending {
            psp_reference: pi.id.clone(),
            reason: PendingReason::ActionRequired {
                url: pi
                    .next_action
                    .as_ref()
                    .and_then(|a| a.pointer("/redirect_to_url/url"))
                    .and_then(|u| u.as_str())
                    .map(str::to_owned),
            },
        },
        // Automatic capture: `requires_capture` only passes by on its way to `succeeded`.
        "processing" | "requires_capture" => {
            ChargeOutcome::Pending { psp_reference: pi.id.clone(), reason: PendingReason::Processing }
        }
        "canceled" => declined("canceled"),
        // requires_payment_method (declined or failed authentication), requires_confirmation
        // (never confirmed): nothing was captured.
        _ => declined("card_declined"),
    }
}

#[derive(Debug)]
enum StripeFailure {
    /// A card error: the outcome is a decline.
    Declined(ChargeOutcome),
    /// A business refusal of the request (e.g. refund larger than what is left).
    Refused { code: String, message: String },
}

/// Maps a non-2xx answer: transient faults and request errors become [`PspError`]s.
fn classify_error(answer: &Answer) -> Result<StripeFailure, PspError> {
    if answer.status == StatusCode::INTERNAL_SERVER_ERROR {
        // Stripe's API layer saves a 500 under the idempotency key and replays it: the request
        // may have had effects, and retrying the same key cannot tell. Ask instead.
        return Err(PspError::OutcomeUnknown(format!("HTTP 500 from Stripe: {}", answer.body.trim())));
    }
    // 429 and the edge's 502/503/504 are not saved under the key: retry it.
    if http::is_transient(answer.status) {
        return Err(PspError::Unavailable {
            message: format!("HTTP {}", answer.status),
            retry_after: answer.retry_after,
        });
    }
    let Ok(ErrorBody { error }) = serde_json::from_str::<ErrorBody>(&answer.body) else {
        return Err(PspError::OutcomeUnknown(format!("HTTP {} with an unreadable body", answer.status)));
    };
    let message = error.message.clone().unwrap_or_default();
    match (answer.status, error.kind.as_str()) {
        (_, "idempotency_error") if answer.status == StatusCode::CONFLICT => {
            // Another request with this key is still running at Stripe: retry later.
            Err(PspError::Unavailable { message, retry_after: answer.retry_after })
        }
        (_, "idempotency_error") => Err(PspError::IdempotencyMismatch(message)),
        (StatusCode::PAYMENT_REQUIRED, "card_error") => Ok(StripeFailure::Declined(ChargeOutcome::Declined {
            code: error.decline_code.or(error.code).unwrap_or_else(|| "card_declined".to_owned()),
            message,
            psp_reference: error.payment_intent.map(|pi| pi.id),
        })),
        (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => Err(PspError::Authentication(message)),
        (StatusCode::BAD_REQUEST, _)
            if matches!(error.code.as_deref(), Some("amount_too_large" | "charge_already_refunded")) =>
        {
            Ok(StripeFailure::Refused { code: error.code.unwrap_or_default(), message })
        }
        _ => Err(PspError::InvalidRequest(format!(
            "HTTP {} {}: {message}",
            answer.status,
            error.code.unwrap_or_default()
        ))),
    }
}

/// Maps a create-and-confirm answer (status, Retry-After, body) to an outcome or a classified
/// error: the adapter's whole reading of Stripe, exposed for fixture tests.
pub fn charge_answer(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Result<ChargeOutcome, PspError> {
    classify_charge(&Answer { status, retry_after, body: body.to_owned() })
}

/// Maps the answer to a create-and-confirm call.
fn classify_charge(answer: &Answer) -> Result<ChargeOutcome, PspError> {
    if answer.status.is_success() {
        let pi: PaymentIntent = parse_ok(answer)?;
        return Ok(intent_outcome(&pi));
    }
    match classify_error(answer)? {
        StripeFailure::Declined(outcome) => Ok(outcome),
        StripeFailure::Refused { code, message } => Err(PspError::InvalidRequest(format!("{code}: {message}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<u64>, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: retry_after.map(Duration::from_secs),
            body: body.to_owned(),
        }
    }

    #[test]
    fn classifies_stripe_responses() {
        let ok = r#"{"id":"pi_1","object":"payment_intent","status":"succeeded"}"#;
        assert_eq!(
            classify_charge(&answer(200, None, ok)),
            Ok(ChargeOutcome::Captured { psp_reference: "pi_1".into() })
        );
        let declined = r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds",
            "message":"Your card has insufficient funds.","payment_intent":{"id":"pi_2","status":"requires_payment_method"}}}"#;
        assert!(matches!(classify_charge(&answer(402, None, declined)),
            Ok(ChargeOutcome::Declined { code, psp_reference: Some(p), .. }) if code == "insufficient_funds" && p == "pi_2"));
        let limited = classify_charge(&answer(429, Some(3), r#"{"error":{"type":"invalid_request_error"}}"#));
        assert_eq!(
            limited,
            Err(PspError::Unavailable {
                message: "HTTP 429 Too Many Requests".into(),
                retry_after: Some(Duration::from_secs(3))
            })
        );
        assert!(matches!(classify_charge(&answer(502, None, "<html>")), Err(PspError::Unavailable { .. })));
        assert!(matches!(classify_charge(&answer(503, None, "")), Err(PspError::Unavailable { .. })));
        let api_error = r#"{"error":{"type":"api_error","message":"An unknown error occurred"}}"#;
        assert!(matches!(classify_charge(&answer(500, None, api_error)), Err(PspError::OutcomeUnknown(_))));
        let idem = r#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests..."}}"#;
        assert!(matches!(classify_charge(&answer(400, None, idem)), Err(PspError::IdempotencyMismatch(_))));
        assert!(matches!(classify_charge(&answer(409, None, idem)), Err(PspError::Unavailable { .. })));
        let auth = r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****"}}"#;
        assert!(matches!(classify_charge(&answer(401, None, auth)), Err(PspError::Authentication(_))));
        let missing = r#"{"error":{"type":"invalid_request_error","code":"resource_missing","param":"payment_method","message":"No such PaymentMethod"}}"#;
        assert!(matches!(classify_charge(&answer(400, None, missing)), Err(PspError::InvalidRequest(_))));
        assert!(matches!(classify_charge(&answer(200, None, "{not json")), Err(PspError::OutcomeUnknown(_))));
    }

    #[test]
    fn pending_statuses_carry_the_challenge_url() {
        let pi: PaymentIntent = serde_json::from_str(
            r#"{"id":"pi_3","status":"requires_action","next_action":{"type":"redirect_to_url",
                "redirect_to_url":{"url":"https://hooks.stripe.com/3d_secure_2/abc","return_url":null}}}"#,
        )
        .unwrap();
        assert_eq!(
            intent_outcome(&pi),
            ChargeOutcome::Pending {
                psp_reference: "pi_3".into(),
                reason: PendingReason::ActionRequired { url: Some("https://hooks.stripe.com/3d_secure_2/abc".into()) }
            }
        );
    }
}
