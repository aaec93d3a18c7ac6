//! Toss Payments adapter (API v1). The direct checkout flow charges a billing key
//! (`POST /v1/billing/{billingKey}`: the payment token is the billing key, the buyer is the
//! customer key); the hosted flow confirms a payment the buyer approved on Toss's page
//! (`POST /v1/payments/confirm`). Status queries use `GET /v1/payments/{paymentKey}` or
//! `GET /v1/payments/orders/{orderId}`; refunds are cancels
//! (`POST /v1/payments/{paymentKey}/cancel`; our refund id ends the `cancelReason`, which is
//! how a refund whose answer was lost is found again in the payment's `cancels`).
//! `Authorization: Basic base64("<secretKey>:")`, `Idempotency-Key` on every POST, JSON bodies,
//! errors `{code, message}`; every id in a path (billing key, payment key, order id) is one
//! escaped segment.

use super::http::{self, Answer};
use super::{PspClient, PspError, PspFuture, PspLookup, PspPayment, RefundOutcome, RefundRequest, SecretKey};
use payments_domain::Money;
use payments_workflows::contract::{
    ChargeInput, ChargeOutcome, ConfirmInput, LookupInput, PendingReason, RefundLookup,
};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

/// Longest `cancelReason` Toss accepts, in characters.
pub const CANCEL_REASON_CHARS_MAX: usize = 200;

/// Toss card payments settle in won only.
pub const CURRENCY: &str = "KRW";
/// Toss `orderId`: 6 to 64 characters of letters, digits, `-` and `_`.
pub const ORDER_ID_LEN_MIN: usize = 6;
/// See [`ORDER_ID_LEN_MIN`].
pub const ORDER_ID_LEN_MAX: usize = 64;

/// Toss Payments API client.
#[derive(Debug, Clone)]
pub struct TossClient {
    base_url: Url,
    secret_key: SecretKey,
    http: reqwest::Client,
}

/// A Toss `Payment` object, as far as we read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    /// Toss's payment id.
    pub payment_key: String,
    /// Our order id.
    pub order_id: String,
    /// READY, IN_PROGRESS, WAITING_FOR_DEPOSIT, DONE, CANCELED, PARTIAL_CANCELED, ABORTED, EXPIRED.
    pub status: String,
    /// Amount charged (absent from some webhook payloads).
    pub total_amount: Option<i64>,
    /// Amount not refunded.
    pub balance_amount: Option<i64>,
    /// Refunds, newest last.
    pub cancels: Option<Vec<Cancel>>,
    /// Failure of the last approval attempt, when ABORTED.
    pub failure: Option<Failure>,
    /// When the payment was approved (captured); absent for one never approved.
    pub approved_at: Option<String>,
    /// ISO currency (card payments: KRW; absent from some older answers).
    pub currency: Option<String>,
}

impl Payment {
    /// The payment as a payment of ours to check.
    fn payment(&self) -> PspPayment {
        PspPayment {
            outcome: payment_outcome(self),
            order_id: Some(self.order_id.clone()),
            amount_minor: self.total_amount,
            // Toss card payments settle in won only; older answers omit the field.
            currency: Some(self.currency.clone().unwrap_or_else(|| CURRENCY.to_owned())),
        }
    }
}

/// One entry of `cancels`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cancel {
    /// Amount refunded by this cancel.
    pub cancel_amount: i64,
    /// Transaction key of this cancel.
    pub transaction_key: Option<String>,
    /// The reason sent (ours ends with the refund id, see [`cancel_reason`]).
    pub cancel_reason: Option<String>,
    /// DONE, or not yet / not at all.
    pub cancel_status: Option<String>,
}

/// The `cancelReason` of a refund: the reason, cut to fit, then ` [{refund_id}]` -- the only
/// field of a cancel that Toss gives back, so a refund whose answer was lost can be found.
pub fn cancel_reason(reason: &str, refund_id: &str) -> String {
    let marker = format!(" [{refund_id}]");
    let room = CANCEL_REASON_CHARS_MAX.saturating_sub(marker.chars().count());
    let cut: String = reason.chars().take(room).collect();
    format!("{cut}{marker}")
}

/// `failure` of a Payment.
#[derive(Debug, Clone, Deserialize)]
pub struct Failure {
    /// Error code.
    pub code: Option<String>,
    /// Message.
    pub message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    code: String,
    message: Option<String>,
}

impl TossClient {
    /// A client for `base_url` (`https://api.tosspayments.com` in production).
    pub fn new(base_url: &str, secret_key: SecretKey, request_timeout: Duration) -> Result<Self, PspError> {
        Ok(TossClient { base_url: http::base_url(base_url)?, secret_key, http: http::client(request_timeout)? })
    }

    fn post(
        &self,
        path: &[&str],
        idempotency_key: &str,
        body: serde_json::Value,
    ) -> Result<reqwest::RequestBuilder, PspError> {
        Ok(self
            .http
            .post(http::url(&self.base_url, path)?)
            .basic_auth(self.secret_key.expose(), Some(""))
            .header("Idempotency-Key", idempotency_key)
            .json(&body))
    }

    fn get(&self, path: &[&str]) -> Result<reqwest::RequestBuilder, PspError> {
        Ok(self.http.get(http::url(&self.base_url, path)?).basic_auth(self.secret_key.expose(), Some("")))
    }

    async fn charge_billing_key(&self, input: &ChargeInput, billing_key: &str) -> Result<ChargeOutcome, PspError> {
        check_order(input.payment_order_id.as_str(), input.amount)?;
        let body = json!({
            "customerKey": input.buyer_id.as_str(),
            "amount": input.amount.amount_minor(),
            "orderId": input.payment_order_id.as_str(),
            "orderName": format!("Checkout {}", input.checkout_id),
        });
        // The billing key is a path segment: it never appears in our messages (see
        // `http::transport_error`; the activity scrubs the PSP's texts).
        let request = self.post(&["v1", "billing", billing_key], input.payment_order_id.as_str(), body)?;
        payment_answer(&http::send(request).await?)
    }

    /// Confirms a payment the buyer approved on Toss's page (hosted flow). The amount is ours,
    /// never the redirect's: Toss refuses a confirm whose amount differs from the session's.
    /// Toss matches idempotency keys on key + URL only, so the key is the order id.
    pub async fn confirm_payment(
        &self,
        payment_key: &str,
        order_id: &str,
        amount: Money,
    ) -> Result<ChargeOutcome, PspError> {
        check_order(order_id, amount)?;
        let body = json!({"paymentKey": payment_key, "orderId": order_id, "amount": amount.amount_minor()});
        let answer = http::send(self.post(&["v1", "payments", "confirm"], order_id, body)?).await?;
        payment_answer(&answer)
    }

    async fn cancel_unapproved(&self, input: &LookupInput) -> Result<PspPayment, PspError> {
        let key = match &input.psp_reference {
            Some(key) => key.clone(),
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
        let body = json!({"cancelReason": "payment not completed in time"});
        let path = ["v1", "payments", key.as_str(), "cancel"];
        let answer = http::send(self.post(&path, &format!("{key}-expire"), body)?).await?;
        if answer.status.is_success() {
            let payment: Payment = parse_ok(&answer)?;
            return Ok(payment.payment());
        }
        // Not cancellable any more (approved or aborted meanwhile): its state is the answer.
        let answer = http::send(self.get(&["v1", "payments", &key])?).await?;
        let payment: Payment = parse_ok(&answer)?;
        Ok(payment.payment())
    }

    /// By payment key when known, else by our order id (the checkout id for a hosted payment):
    /// both are consistent reads, so a 404 is final.
    async fn find(&self, input: &LookupInput) -> Result<PspLookup, PspError> {
        let order = input.expected.as_ref().map_or(input.payment_order_id.as_str(), |e| e.psp_order_id.as_str());
        let request = match &input.psp_reference {
            Some(key) => self.get(&["v1", "payments", key])?,
            None => self.get(&["v1", "payments", "orders", order])?,
        };
        let answer = http::send(request).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(PspLookup::NotFound);
        }
        let payment: Payment = parse_ok(&answer)?;
        Ok(PspLookup::Found(payment.payment()))
    }

    /// Our refund among the payment's cancels, by the refund id ending its `cancelReason`.
    async fn find_cancel(&self, request: &RefundRequest) -> Result<RefundLookup, PspError> {
        let answer = http::send(self.get(&["v1", "payments", &request.psp_reference])?).await?;
        let payment: Payment = parse_ok(&answer)?;
        let marker = format!("[{}]", request.refund_id);
        let ours = payment
            .cancels
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.cancel_reason.as_deref().is_some_and(|r| r.ends_with(&marker)));
        Ok(match ours {
            None => RefundLookup::NotFound,
            Some(c) if c.cancel_status.as_deref().is_some_and(|s| s == "ABORTED" || s == "FAILED") => {
                RefundLookup::Found(RefundOutcome::Refused {
                    code: c.cancel_status.unwrap_or_default(),
                    message: format!("cancel of {} did not complete", request.psp_reference),
                })
            }
            Some(c) => RefundLookup::Found(RefundOutcome::Refunded {
                psp_refund_reference: c.transaction_key.unwrap_or_else(|| payment.payment_key.clone()),
            }),
        })
    }

    async fn cancel(&self, request: &RefundRequest) -> Result<RefundOutcome, PspError> {
        let reason = cancel_reason(&request.reason, &request.refund_id);
        let body = json!({"cancelReason": reason, "cancelAmount": request.amount.amount_minor()});
        let path = ["v1", "payments", request.psp_reference.as_str(), "cancel"];
        let answer = http::send(self.post(&path, &request.refund_id, body)?).await?;
        if !answer.status.is_success() {
            let (code, message) = classify_error(&answer)?;
            return Ok(RefundOutcome::Refused { code, message });
        }
        let payment: Payment = parse_ok(&answer)?;
        let reference = payment
            .cancels
            .as_ref()
            .and_then(|c| c.last())
            .and_then(|c| c.transaction_key.clone())
            .unwrap_or_else(|| payment.payment_key.clone());
        Ok(RefundOutcome::Refunded { psp_refund_reference: reference })
    }
}

impl PspClient for TossClient {
    fn charge<'a>(&'a self, input: &'a ChargeInput, token: &'a str) -> PspFuture<'a, ChargeOutcome> {
        Box::pin(self.charge_billing_key(input, token))
    }
    fn lookup<'a>(&'a self, input: &'a LookupInput) -> PspFuture<'a, PspLookup> {
        Box::pin(self.find(input))
    }
    fn refund<'a>(&'a self, request: &'a RefundRequest) -> PspFuture<'a, RefundOutcome> {
        Box::pin(self.cancel(request))
    }
    fn find_refund<'a>(&'a self, request: &'a RefundRequest) -> PspFuture<'a, RefundLookup> {
        Box::pin(self.find_cancel(request))
    }
    fn confirm<'a>(&'a self, input: &'a ConfirmInput) -> PspFuture<'a, ChargeOutcome> {
        Box::pin(self.confirm_payment(&input.payment_key, input.checkout_id.as_str(), input.amount))
    }
    fn cancel_pending<'a>(&'a self, input: &'a LookupInput) -> PspFuture<'a, PspPayment> {
        Box::pin(self.cancel_unapproved(input))
    }
}

/// Refuses, before any call, what Toss would refuse: non-KRW amounts and order ids outside
/// Toss's format.
fn check_order(order_id: &str, amount: Money) -> Result<(), PspError> {
    if amount.currency().code() != CURRENCY {
        return Err(PspError::InvalidRequest(format!(
            "Toss Payments charges {CURRENCY} only, not {}",
            amount.currency()
        )));
    }
    let id = order_id;
    if id.len() < ORDER_ID_LEN_MIN
        || id.len() > ORDER_ID_LEN_MAX
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(PspError::InvalidRequest(format!(
            "orderId {id:?} must be {ORDER_ID_LEN_MIN}-{ORDER_ID_LEN_MAX} letters, digits, '-' or '_'"
        )));
    }
    Ok(())
}

/// The outcome a Payment's status stands for.
pub fn payment_outcome(p: &Payment) -> ChargeOutcome {
    match p.status.as_str() {
        // A later cancel is a refund, recorded apart: the charge itself was captured.
        "DONE" | "CANCELED" | "PARTIAL_CANCELED" => ChargeOutcome::Captured { psp_reference: p.payment_key.clone() },
        "ABORTED" | "EXPIRED" => ChargeOutcome::Declined {
            code: p.failure.as_ref().and_then(|f| f.code.clone()).unwrap_or_else(|| p.status.clone()),
            message: p.failure.as_ref().and_then(|f| f.message.clone()).unwrap_or_default(),
            psp_reference: Some(p.payment_key.clone()),
        },
        // READY, IN_PROGRESS, WAITING_FOR_DEPOSIT: not final yet.
        _ => ChargeOutcome::Pending { psp_reference: p.payment_key.clone(), reason: PendingReason::Processing },
    }
}

fn parse_ok<T: serde::de::DeserializeOwned>(answer: &Answer) -> Result<T, PspError> {
    if !answer.status.is_success() {
        let (code, message) = classify_error(answer)?;
        return Err(PspError::InvalidRequest(format!("{code}: {message}")));
    }
    serde_json::from_str(&answer.body).map_err(|e| PspError::OutcomeUnknown(format!("unreadable answer: {e}")))
}

/// Issuer and card refusals: the payment was declined, a final outcome.
fn is_decline(code: &str) -> bool {
    code.starts_with("REJECT_")
        || code.starts_with("EXCEED_")
        || code.starts_with("INVALID_CARD")
        || code.starts_with("NOT_ENOUGH_")
        || matches!(code, "INVALID_STOPPED_CARD" | "NOT_AVAILABLE_PAYMENT" | "RESTRICTED_CARD" | "INVALID_PASSWORD")
}

/// Maps an error answer: transient faults and request errors become [`PspError`]s; a business
/// refusal comes back as `(code, message)`.
fn classify_error(answer: &Answer) -> Result<(String, String), PspError> {
    let parsed = serde_json::from_str::<ErrorBody>(&answer.body).ok();
    let (code, message) = match parsed {
        Some(e) => (e.code, e.message.unwrap_or_default()),
        None if http::is_transient(answer.status) => (String::new(), String::new()),
        None => {
            return Err(PspError::OutcomeUnknown(format!("HTTP {} with an unreadable body", answer.status)));
        }
    };
    // Toss asks for these to be retried with the same Idempotency-Key (409: the first request
    // with the key is still running).
    let transient_code = matches!(
        code.as_str(),
        "PROVIDER_ERROR"
            | "CARD_PROCESSING_ERROR"
            | "IDEMPOTENT_REQUEST_PROCESSING"
            | "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING"
            | "FAILED_INTERNAL_SYSTEM_PROCESSING"
            | "UNKNOWN_PAYMENT_ERROR"
    );
    if http::is_transient(answer.status) || transient_code {
        return Err(PspError::Unavailable {
            message: format!("HTTP {} {code}: {message}", answer.status),
            retry_after: answer.retry_after,
        });
    }
    match code.as_str() {
        "UNAUTHORIZED_KEY" | "INVALID_API_KEY" | "INCORRECT_BASIC_AUTH_FORMAT" => {
            Err(PspError::Authentication(message))
        }
        // The order was processed already (the same request again after Toss forgot its key,
        // or a payment for our order id exists): only a status query can tell how it ended.
        "ALREADY_PROCESSED_PAYMENT" | "DUPLICATED_ORDER_ID" => {
            Err(PspError::OutcomeUnknown(format!("{code}: {message}")))
        }
        _ => Ok((code, message)),
    }
}

/// Maps a charge or confirm answer (status, Retry-After, body) to an outcome or a classified
/// error: the adapter's whole reading of Toss, exposed for fixture tests.
pub fn charge_answer(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Result<ChargeOutcome, PspError> {
    payment_answer(&Answer { status, retry_after, body: body.to_owned() })
}

/// Maps the answer to a charge or confirm: a Payment, a decline, or an error.
fn payment_answer(answer: &Answer) -> Result<ChargeOutcome, PspError> {
    if answer.status.is_success() {
        let payment: Payment = parse_ok(answer)?;
        return Ok(payment_outcome(&payment));
    }
    let (code, message) = classify_error(answer)?;
    if is_decline(&code) {
        return Ok(ChargeOutcome::Declined { code, message, psp_reference: None });
    }
    Err(PspError::InvalidRequest(format!("HTTP {} {code}: {message}", answer.status)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer { status: StatusCode::from_u16(status).unwrap(), retry_after: None, body: body.to_owned() }
    }

    #[test]
    fn classifies_toss_answers() {
        let done = r#"{"paymentKey":"pk_1","orderId":"order-1","status":"DONE","totalAmount":15000}"#;
        assert_eq!(payment_answer(&answer(200, done)), Ok(ChargeOutcome::Captured { psp_reference: "pk_1".into() }));
        let reject = r#"{"code":"REJECT_CARD_PAYMENT","message":"한도초과 혹은 잔액부족으로 결제에 실패했습니다."}"#;
        assert!(
            matches!(payment_answer(&answer(403, reject)), Ok(ChargeOutcome::Declined { code, .. }) if code == "REJECT_CARD_PAYMENT")
        );
        let internal = r#"{"code":"FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING","message":"..."}"#;
        assert!(matches!(payment_answer(&answer(500, internal)), Err(PspError::Unavailable { .. })));
        let provider = r#"{"code":"PROVIDER_ERROR","message":"..."}"#;
        assert!(matches!(payment_answer(&answer(400, provider)), Err(PspError::Unavailable { .. })));
        let auth = r#"{"code":"UNAUTHORIZED_KEY","message":"..."}"#;
        assert!(matches!(payment_answer(&answer(401, auth)), Err(PspError::Authentication(_))));
        let already = r#"{"code":"ALREADY_PROCESSED_PAYMENT","message":"..."}"#;
        assert!(matches!(payment_answer(&answer(400, already)), Err(PspError::OutcomeUnknown(_))));
        let duplicated = r#"{"code":"DUPLICATED_ORDER_ID","message":"..."}"#;
        assert!(matches!(payment_answer(&answer(400, duplicated)), Err(PspError::OutcomeUnknown(_))));
        let session = r#"{"code":"NOT_FOUND_PAYMENT_SESSION","message":"..."}"#;
        assert!(matches!(payment_answer(&answer(404, session)), Err(PspError::InvalidRequest(_))));
        assert!(matches!(payment_answer(&answer(429, "")), Err(PspError::Unavailable { .. })));
        let in_flight = r#"{"code":"IDEMPOTENT_REQUEST_PROCESSING","message":"이전 멱등 요청이 처리중입니다."}"#;
        assert!(matches!(payment_answer(&answer(409, in_flight)), Err(PspError::Unavailable { .. })));
    }

    /// Our refund id always ends the cancel reason, which never exceeds Toss's 200 characters.
    #[test]
    fn cancel_reasons_carry_the_refund_id() {
        assert_eq!(cancel_reason("one item returned", "po-1:refund:2"), "one item returned [po-1:refund:2]");
        let long = cancel_reason(&"반품".repeat(300), "po-1:refund:2");
        assert_eq!(long.chars().count(), CANCEL_REASON_CHARS_MAX);
        assert!(long.ends_with(" [po-1:refund:2]"));
    }

    #[test]
    fn refuses_what_toss_would_refuse_before_calling() {
        let usd = Money::parse("10.00", payments_domain::Currency::parse("USD").unwrap()).unwrap();
        let krw = Money::parse("1000", payments_domain::Currency::parse("KRW").unwrap()).unwrap();
        assert!(check_order("order-1", usd).is_err());
        assert!(check_order("o.1", krw).is_err());
        assert!(check_order("order-1", krw).is_ok());
    }
}
