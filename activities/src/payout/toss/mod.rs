//! Toss Payments payouts v2 (지급대행) adapter.
//!
//! * `POST /v2/sellers` registers a seller (`refSellerId` = our seller id, `INDIVIDUAL`);
//!   `GET /v2/sellers/{id}` reads one; `GET /v2/sellers?limit&startingAfter` lists them.
//! * `POST /v2/payouts` sends an array of payout items (`refPayoutId` = our reference,
//!   `destination` = the seller id, `EXPRESS`, `amount{currency:"KRW",value}`,
//!   `transactionDescription` of at most 7 characters); `GET /v2/payouts?limit&startingAfter`
//!   lists payouts newest first (how a payout whose answer was lost is found again, by
//!   `refPayoutId`); `GET /v2/payouts/{id}` reads one; `POST /v2/payouts/{id}/cancel` (no body)
//!   cancels one still `REQUESTED`. `GET /v2/balances` answers the payable balance.
//!
//! Every POST with a body is encrypted (`TossPayments-api-security-mode: ENCRYPTION`,
//! `Content-Type: text/plain`, a JWE under the security key, see [`super::jwe`]) and its answer
//! comes back encrypted with the same key; answers that are plain JSON (GETs, the body-less
//! cancel, errors raised before decryption) are read as they are. Answers use Toss's v2
//! envelope `{version, traceId, entityType, entityBody, error{code,message}}`.
//!
//! A `refPayoutId` is never paid twice: Toss refuses a reused one, and the adapter then answers
//! the payout Toss already holds under it (found in the payout list), never assuming it.
//! `Authorization: Basic base64("<secretKey>:")`; every id in a path is one escaped segment.

mod wire;

pub use self::wire::{Amount, Balance, ErrorBody, Payout, Seller, parse_webhook, payout_status, seller_status};
use self::wire::{BalanceBody, Envelope, HasId, Items, Page};
use super::jwe::{self, Header, SecurityKey};
use super::{
    PayoutOrder, PayoutProvider, PayoutProviderKind, ProviderPayout, ProviderSeller, STATEMENT_PAGES_MAX,
    SellerRegistration, statement_item,
};
use crate::psp::http::{self, Answer};
use crate::psp::{PspError, PspFuture, SecretKey};
use payments_domain::{Currency, Money};
use payments_recon::{Day, StatementPayout};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::Duration;

/// Toss pays out in won only.
pub const CURRENCY: &str = "KRW";
/// Longest `transactionDescription` (the text on the seller's bank statement), in characters.
pub const TRANSACTION_DESCRIPTION_CHARS_MAX: usize = 7;
/// The description sent when the order has none (Toss requires one): "settlement".
pub const TRANSACTION_DESCRIPTION_DEFAULT: &str = "정산";
/// The security-mode header and its value.
pub const SECURITY_MODE_HEADER: &str = "TossPayments-api-security-mode";
/// See [`SECURITY_MODE_HEADER`].
pub const SECURITY_MODE_ENCRYPTION: &str = "ENCRYPTION";
/// Toss's refusal of a payout to a seller not yet identified (or due for KYC).
pub const FORBIDDEN_SELLER_PAYOUT: &str = "FORBIDDEN_SELLER_PAYOUT";
/// Items asked for per page of a list.
const LIST_PAGE_LIMIT: u32 = 100;
/// Pages read before giving up on a search (10,000 payouts or sellers).
const LIST_PAGES_MAX: usize = 100;

/// Toss Payments payouts v2 client.
#[derive(Debug, Clone)]
pub struct TossPayoutClient {
    base_url: Url,
    secret_key: SecretKey,
    security_key: SecurityKey,
    http: reqwest::Client,
}

impl TossPayoutClient {
    /// A client for `base_url` (`https://api.tosspayments.com` in production) with the API
    /// secret key and the 64-hex-character security key.
    pub fn new(
        base_url: &str,
        secret_key: SecretKey,
        security_key: &SecretKey,
        request_timeout: Duration,
    ) -> Result<Self, PspError> {
        let security_key =
            SecurityKey::from_hex(security_key.expose()).map_err(|e| PspError::InvalidRequest(e.to_string()))?;
        Ok(TossPayoutClient {
            base_url: http::base_url(base_url)?,
            secret_key,
            security_key,
            http: http::client(request_timeout)?,
        })
    }

    /// An encrypted POST of `body`; Toss keys replays on `Idempotency-Key`.
    fn post_encrypted(
        &self,
        path: &[&str],
        idempotency_key: &str,
        body: &Value,
    ) -> Result<reqwest::RequestBuilder, PspError> {
        let token = jwe::encrypt(&self.security_key, &Header::now(), body.to_string().as_bytes());
        Ok(self
            .http
            .post(http::url(&self.base_url, path)?)
            .basic_auth(self.secret_key.expose(), Some(""))
            .header(SECURITY_MODE_HEADER, SECURITY_MODE_ENCRYPTION)
            .header(reqwest::header::CONTENT_TYPE, "text/plain")
            .header("Idempotency-Key", idempotency_key)
            .body(token))
    }

    fn get(&self, path: &[&str]) -> Result<reqwest::RequestBuilder, PspError> {
        Ok(self.http.get(http::url(&self.base_url, path)?).basic_auth(self.secret_key.expose(), Some("")))
    }

    /// Sends and reads the answer: its status and envelope (decrypted when encrypted), with
    /// transient faults and credential refusals already turned into errors.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<(StatusCode, Envelope), PspError> {
        let answer = http::send(request).await?;
        let envelope = self.open(&answer);
        let envelope = match envelope {
            Ok(envelope) => envelope,
            Err(_) if http::is_transient(answer.status) => {
                return Err(PspError::Unavailable {
                    message: format!("HTTP {} from Toss", answer.status),
                    retry_after: answer.retry_after,
                });
            }
            // A 2xx we cannot read may still mean Toss acted: unknown, not failed.
            Err(e) if answer.status.is_success() => return Err(PspError::OutcomeUnknown(e)),
            Err(e) => return Err(PspError::InvalidRequest(format!("HTTP {}: {e}", answer.status))),
        };
        if let Some(error) = &envelope.error {
            classify(answer.status, answer.retry_after, error)?;
        } else if http::is_transient(answer.status) {
            return Err(PspError::Unavailable {
                message: format!("HTTP {}", answer.status),
                retry_after: answer.retry_after,
            });
        }
        Ok((answer.status, envelope))
    }

    /// The envelope of an answer, decrypting it first when it is a JWE.
    fn open(&self, answer: &Answer) -> Result<Envelope, String> {
        let body = answer.body.trim();
        let plain = if body.starts_with('{') {
            body.as_bytes().to_vec()
        } else {
            jwe::decrypt(&self.security_key, body).map_err(|e| format!("undecryptable answer: {e}"))?.1
        };
        let mut envelope: Envelope = serde_json::from_slice(&plain).map_err(|e| format!("unreadable answer: {e}"))?;
        if envelope.error.is_none()
            && let Some(code) = envelope.code.take()
        {
            envelope.error = Some(ErrorBody { code, message: envelope.message.take() });
        }
        if envelope.error.is_none() && !answer.status.is_success() {
            envelope.error = Some(ErrorBody { code: format!("HTTP_{}", answer.status.as_u16()), message: None });
        }
        Ok(envelope)
    }

    async fn register(&self, registration: &SellerRegistration) -> Result<ProviderSeller, PspError> {
        let seller = registration.seller.as_str();
        let account = &registration.bank_account;
        let body = json!({
            "refSellerId": seller,
            "businessType": "INDIVIDUAL",
            "individual": {"name": registration.name, "email": registration.email},
            "account": {
                "bankCode": account.bank_code,
                "accountNumber": account.account_number,
                "holderName": account.holder_name,
            },
        });
        let request = self.post_encrypted(&["v2", "sellers"], &format!("seller-{seller}"), &body)?;
        let (status, envelope) = self.call(request).await?;
        match envelope.error {
            None => body_of::<Seller>(status, envelope.entity_body)?.provider_seller(),
            // `refSellerId` can be used once: registered before (its answer lost, or the key
            // forgotten). The seller Toss holds under it is the answer.
            Some(e) if is_duplicate(&e.code) => match self.find_seller(seller).await? {
                Some(found) => found.provider_seller(),
                None => Err(PspError::OutcomeUnknown(format!("{}: but no seller {seller} is listed", e.code))),
            },
            Some(e) => Err(refusal(status, &e)),
        }
    }

    async fn find_seller(&self, seller: &str) -> Result<Option<Seller>, PspError> {
        self.scan(&["v2", "sellers"], |s: &Seller| s.ref_seller_id == seller).await
    }

    async fn get_seller(&self, provider_ref: &str) -> Result<ProviderSeller, PspError> {
        let (status, envelope) = self.call(self.get(&["v2", "sellers", provider_ref])?).await?;
        match envelope.error {
            None => body_of::<Seller>(status, envelope.entity_body)?.provider_seller(),
            Some(e) => Err(refusal(status, &e)),
        }
    }

    async fn payout(&self, order: &PayoutOrder) -> Result<ProviderPayout, PspError> {
        check_order(order)?;
        let item = json!({
            "refPayoutId": order.reference,
            "destination": order.destination,
            "scheduleType": "EXPRESS",
            "amount": {"currency": CURRENCY, "value": order.amount.amount_minor()},
            "transactionDescription": transaction_description(&order.description),
        });
        let request = self.post_encrypted(&["v2", "payouts"], &order.reference, &json!([item]))?;
        let (status, envelope) = self.call(request).await?;
        match envelope.error {
            None => {
                let items = body_of::<Items<Payout>>(status, envelope.entity_body)?.items;
                let ours = items.into_iter().find(|p| p.ref_payout_id == order.reference).ok_or_else(|| {
                    PspError::OutcomeUnknown(format!("Toss answered without payout {}", order.reference))
                })?;
                same_order(&ours, order)?;
                ours.provider_payout().map_err(PspError::OutcomeUnknown)
            }
            // The reference was used before: Toss made no second payout. Answer the first one
            // as Toss describes it, once the list shows it; it must be this very order.
            Some(e) if is_duplicate(&e.code) => match self.find(&order.reference).await? {
                Some(found) => {
                    same_order(&found, order)?;
                    found.provider_payout().map_err(PspError::OutcomeUnknown)
                }
                None => {
                    Err(PspError::OutcomeUnknown(format!("{}: but no payout {} is listed", e.code, order.reference)))
                }
            },
            Some(e) => Err(refusal(status, &e)),
        }
    }

    async fn find(&self, reference: &str) -> Result<Option<Payout>, PspError> {
        self.scan(&["v2", "payouts"], |p: &Payout| p.ref_payout_id == reference).await
    }

    /// Reads a list page by page (`limit`, `startingAfter`) until `wanted` matches an item.
    async fn scan<T: DeserializeOwned + HasId>(
        &self,
        path: &[&str],
        wanted: impl Fn(&T) -> bool,
    ) -> Result<Option<T>, PspError> {
        let mut cursor: Option<String> = None;
        for _ in 0..LIST_PAGES_MAX {
            let mut query = vec![("limit", LIST_PAGE_LIMIT.to_string())];
            if let Some(after) = &cursor {
                query.push(("startingAfter", after.clone()));
            }
            let (status, envelope) = self.call(self.get(path)?.query(&query)).await?;
            if let Some(e) = envelope.error {
                return Err(refusal(status, &e));
            }
            let page = body_of::<Page<T>>(status, envelope.entity_body)?;
            let next = page.last_cursor.clone().or_else(|| page.items.last().map(|i| i.id().to_owned()));
            if let Some(found) = page.items.into_iter().find(|item| wanted(item)) {
                return Ok(Some(found));
            }
            if !page.has_next || next.is_none() || next == cursor {
                return Ok(None);
            }
            cursor = next;
        }
        Err(PspError::Unavailable {
            message: format!("more than {} items listed", LIST_PAGES_MAX * LIST_PAGE_LIMIT as usize),
            retry_after: None,
        })
    }

    /// `GET /v2/payouts`, newest first, until a payout dated before `from`.
    async fn list_statement(&self, from: Day) -> Result<Vec<StatementPayout>, PspError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..STATEMENT_PAGES_MAX {
            let mut query = vec![("limit", LIST_PAGE_LIMIT.to_string())];
            if let Some(after) = &cursor {
                query.push(("startingAfter", after.clone()));
            }
            let (status, envelope) = self.call(self.get(&["v2", "payouts"])?.query(&query)).await?;
            if let Some(e) = envelope.error {
                return Err(refusal(status, &e));
            }
            let page = body_of::<Page<Value>>(status, envelope.entity_body)?;
            let next = page
                .last_cursor
                .clone()
                .or_else(|| page.items.last().and_then(|i| i["id"].as_str().map(str::to_owned)));
            let mut older = false;
            for raw in page.items {
                let unreadable = |e: String| PspError::InvalidRequest(format!("payout statement item: {e}"));
                let payout: Payout = serde_json::from_value(raw.clone()).map_err(|e| unreadable(e.to_string()))?;
                let day = payout
                    .payout_date
                    .as_deref()
                    .and_then(|d| Day::parse(d).ok())
                    .ok_or_else(|| unreadable(format!("payout {} has no payoutDate", payout.id)))?;
                if day < from {
                    older = true;
                    continue;
                }
                items.push(statement_item(payout.provider_payout().map_err(unreadable)?, day, None, raw.to_string()));
            }
            if older || !page.has_next || next.is_none() || next == cursor {
                return Ok(items);
            }
            cursor = next;
        }
        Err(PspError::Unavailable {
            message: format!("more than {} payouts listed", STATEMENT_PAGES_MAX * LIST_PAGE_LIMIT as usize),
            retry_after: None,
        })
    }

    async fn cancel(&self, order: &PayoutOrder, id: &str) -> Result<ProviderPayout, PspError> {
        let request = self
            .http
            .post(http::url(&self.base_url, &["v2", "payouts", id, "cancel"])?)
            .basic_auth(self.secret_key.expose(), Some(""))
            .header("Idempotency-Key", format!("{}:cancel", order.reference));
        let (status, envelope) = self.call(request).await?;
        let payout = match envelope.error {
            None => body_of::<Payout>(status, envelope.entity_body)?,
            // Not cancellable any more (sent, paid, failed): its state is the answer.
            Some(_) => {
                let (status, envelope) = self.call(self.get(&["v2", "payouts", id])?).await?;
                match envelope.error {
                    None => body_of::<Payout>(status, envelope.entity_body)?,
                    Some(e) => return Err(refusal(status, &e)),
                }
            }
        };
        if payout.ref_payout_id != order.reference {
            return Err(PspError::InvalidRequest(format!("payout {id} is not {}", order.reference)));
        }
        payout.provider_payout().map_err(PspError::OutcomeUnknown)
    }

    /// The balance payouts are made from (`GET /v2/balances`).
    pub async fn balance(&self) -> Result<Balance, PspError> {
        let (status, envelope) = self.call(self.get(&["v2", "balances"])?).await?;
        if let Some(e) = envelope.error {
            return Err(refusal(status, &e));
        }
        let body = body_of::<BalanceBody>(status, envelope.entity_body)?;
        let money = |a: &Amount| -> Result<Money, PspError> {
            let currency = Currency::parse(&a.currency).map_err(|e| PspError::OutcomeUnknown(e.to_string()))?;
            Ok(Money::from_minor(a.value, currency))
        };
        Ok(Balance { pending: money(&body.pending_amount)?, available: money(&body.available_amount)? })
    }
}

/// The description cut to Toss's seven characters (a default when empty).
pub fn transaction_description(description: &str) -> String {
    let cut: String = description.trim().chars().take(TRANSACTION_DESCRIPTION_CHARS_MAX).collect();
    if cut.is_empty() { TRANSACTION_DESCRIPTION_DEFAULT.to_owned() } else { cut }
}

/// Refuses, before any call, what Toss would refuse: a currency other than won.
fn check_order(order: &PayoutOrder) -> Result<(), PspError> {
    order.check()?;
    if order.amount.currency().code() != CURRENCY {
        return Err(PspError::InvalidRequest(format!(
            "Toss pays out {CURRENCY} only, not {}",
            order.amount.currency()
        )));
    }
    Ok(())
}

/// A payout Toss holds under our reference must be the order we sent.
fn same_order(payout: &Payout, order: &PayoutOrder) -> Result<(), PspError> {
    let same = payout.destination == order.destination
        && payout.amount.value == order.amount.amount_minor()
        && payout.amount.currency == CURRENCY;
    if same {
        return Ok(());
    }
    Err(PspError::IdempotencyMismatch(format!(
        "refPayoutId {} already pays {} {} to {}",
        order.reference, payout.amount.value, payout.amount.currency, payout.destination
    )))
}

/// Whether an error code says the `refPayoutId` / `refSellerId` was used before. Toss
/// documents no code for it; its v1 naming (`DUPLICATED_ORDER_ID`) and `ALREADY_EXIST_*` are
/// both accepted.
fn is_duplicate(code: &str) -> bool {
    code.starts_with("DUPLICATED_") || code.starts_with("ALREADY_EXIST")
}

/// The entity body of a successful answer, read as `T`.
fn body_of<T: DeserializeOwned>(status: StatusCode, body: Option<Value>) -> Result<T, PspError> {
    let body = body.ok_or_else(|| PspError::OutcomeUnknown(format!("HTTP {status} without entityBody")))?;
    serde_json::from_value(body).map_err(|e| PspError::OutcomeUnknown(format!("unreadable entityBody: {e}")))
}

/// Turns an error answer into a [`PspError`] when it is a fault, a credential refusal or a
/// request still in flight; otherwise lets the caller decide.
fn classify(status: StatusCode, retry_after: Option<Duration>, error: &ErrorBody) -> Result<(), PspError> {
    let message = format!("HTTP {status} {}: {}", error.code, error.message.as_deref().unwrap_or_default());
    let transient_code = matches!(
        error.code.as_str(),
        "PROVIDER_ERROR" | "IDEMPOTENT_REQUEST_PROCESSING" | "FAILED_INTERNAL_SYSTEM_PROCESSING" | "TOO_MANY_REQUESTS"
    );
    if http::is_transient(status) || transient_code {
        return Err(PspError::Unavailable { message, retry_after });
    }
    if matches!(error.code.as_str(), "UNAUTHORIZED_KEY" | "INVALID_API_KEY" | "INCORRECT_BASIC_AUTH_FORMAT") {
        return Err(PspError::Authentication(message));
    }
    Ok(())
}

/// A business refusal (`FORBIDDEN_SELLER_PAYOUT`, invalid fields, unknown ids).
fn refusal(status: StatusCode, error: &ErrorBody) -> PspError {
    PspError::InvalidRequest(format!("HTTP {status} {}: {}", error.code, error.message.as_deref().unwrap_or_default()))
}

impl PayoutProvider for TossPayoutClient {
    fn kind(&self) -> PayoutProviderKind {
        PayoutProviderKind::TossPayouts
    }
    fn register_seller<'a>(&'a self, registration: &'a SellerRegistration) -> PspFuture<'a, ProviderSeller> {
        Box::pin(self.register(registration))
    }
    fn seller<'a>(&'a self, provider_ref: &'a str) -> PspFuture<'a, ProviderSeller> {
        Box::pin(self.get_seller(provider_ref))
    }
    fn create_payout<'a>(&'a self, order: &'a PayoutOrder) -> PspFuture<'a, ProviderPayout> {
        Box::pin(self.payout(order))
    }
    fn find_payout<'a>(&'a self, order: &'a PayoutOrder) -> PspFuture<'a, Option<ProviderPayout>> {
        Box::pin(async move {
            match self.find(&order.reference).await? {
                Some(payout) => payout.provider_payout().map(Some).map_err(PspError::OutcomeUnknown),
                None => Ok(None),
            }
        })
    }
    fn cancel_payout<'a>(
        &'a self,
        order: &'a PayoutOrder,
        provider_payout_id: &'a str,
    ) -> PspFuture<'a, ProviderPayout> {
        Box::pin(self.cancel(order, provider_payout_id))
    }
    fn statement<'a>(&'a self, _destinations: &'a [String], from: Day) -> PspFuture<'a, Vec<StatementPayout>> {
        Box::pin(self.list_statement(from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Errors: faults retry, credentials and refusals do not.
    #[test]
    fn classifies_errors() {
        let e = |code: &str| ErrorBody { code: code.into(), message: None };
        let retry = Some(Duration::from_secs(2));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, retry, &e("TOO_MANY_REQUESTS")),
            Err(PspError::Unavailable { retry_after: Some(_), .. })
        ));
        assert!(matches!(
            classify(StatusCode::INTERNAL_SERVER_ERROR, None, &e("X")),
            Err(PspError::Unavailable { .. })
        ));
        assert!(matches!(
            classify(StatusCode::CONFLICT, None, &e("IDEMPOTENT_REQUEST_PROCESSING")),
            Err(PspError::Unavailable { .. })
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, None, &e("UNAUTHORIZED_KEY")),
            Err(PspError::Authentication(_))
        ));
        assert_eq!(classify(StatusCode::FORBIDDEN, None, &e(FORBIDDEN_SELLER_PAYOUT)), Ok(()));
        assert!(is_duplicate("DUPLICATED_REF_PAYOUT_ID") && is_duplicate("ALREADY_EXIST_REF_SELLER_ID"));
        assert!(!is_duplicate(FORBIDDEN_SELLER_PAYOUT));
    }

    /// Descriptions fit Toss's seven characters.
    #[test]
    fn descriptions_fit() {
        assert_eq!(transaction_description("마켓정산금지급입니다"), "마켓정산금지급");
        assert_eq!(transaction_description("  "), TRANSACTION_DESCRIPTION_DEFAULT);
        assert_eq!(transaction_description("payout"), "payout");
    }
}
