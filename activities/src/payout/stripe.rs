//! Stripe Connect adapter: a seller is a custom connected account with its bank account as
//! external account (`POST /v1/accounts`); a payout is a transfer from the platform to the
//! account (`POST /v1/transfers`, `transfer_group` = our reference) followed by a payout from
//! the account to its bank (`POST /v1/payouts` with `Stripe-Account`). Form-encoded requests,
//! `Authorization: Bearer`, an `Idempotency-Key` on every POST (`seller-{seller}`,
//! `{reference}:transfer`, `{reference}:payout`); every id in a path is one escaped segment.
//!
//! Idempotency keys live 24 hours at Stripe, so they are not the only guard: before a
//! transfer the adapter looks for one already made under the reference
//! (`GET /v1/transfers?transfer_group=`), and a payout refused for want of balance is looked
//! for among the account's payouts (`GET /v1/payouts`, matched on `metadata[payout_reference]`;
//! Stripe cannot filter lists by metadata, so the match is ours).

use super::{
    PayoutOrder, PayoutProvider, PayoutProviderKind, ProviderEvent, ProviderPayout, ProviderPayoutStatus,
    ProviderSeller, ProviderSellerStatus, STATEMENT_PAGES_MAX, SellerRegistration, statement_item,
};
use crate::psp::http::{self, Answer};
use crate::psp::stripe::ErrorBody;
use crate::psp::{PspError, PspFuture, SecretKey};
use payments_domain::{Currency, Money, SellerAccount};
use payments_recon::{Day, Psp, StatementPayout};
use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::time::Duration;

/// The metadata key our payout reference travels under (payouts and transfers).
pub const PAYOUT_REFERENCE_KEY: &str = "payout_reference";
/// The metadata key our seller id travels under (accounts).
pub const SELLER_ACCOUNT_KEY: &str = "seller_account";
/// The header naming the connected account a request acts on.
pub const STRIPE_ACCOUNT_HEADER: &str = "Stripe-Account";
/// Payouts asked for per page of the list (Stripe's maximum).
const PAYOUT_PAGE_LIMIT: u32 = 100;
/// Pages of an account's payouts read before giving up (10,000 payouts).
const PAYOUT_PAGES_MAX: usize = 100;

/// Stripe Connect client.
#[derive(Debug, Clone)]
pub struct StripeConnectClient {
    base_url: Url,
    secret_key: SecretKey,
    http: reqwest::Client,
}

/// A connected account, as far as we read it.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    /// `acct_...`.
    pub id: String,
    /// Whether Stripe pays out to its bank account.
    #[serde(default)]
    pub payouts_enabled: bool,
    /// What Stripe still needs to know.
    pub requirements: Option<Requirements>,
    /// Our seller id under `seller_account`.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// `requirements` of an account.
#[derive(Debug, Clone, Deserialize)]
pub struct Requirements {
    /// Information due now.
    #[serde(default)]
    pub currently_due: Vec<String>,
}

/// A Payout object, as far as we read it.
#[derive(Debug, Clone, Deserialize)]
pub struct Payout {
    /// `po_...`.
    pub id: String,
    /// Minor units.
    pub amount: i64,
    /// Lower-case ISO currency.
    pub currency: String,
    /// `pending`, `in_transit`, `paid`, `failed`, `canceled`.
    pub status: String,
    /// e.g. `account_closed`.
    pub failure_code: Option<String>,
    /// Human-readable failure.
    pub failure_message: Option<String>,
    /// Our reference under `payout_reference`.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// When it was created (Unix seconds).
    #[serde(default)]
    pub created: i64,
    /// The balance transaction that gave the money back, once it failed or was canceled.
    #[serde(default)]
    pub failure_balance_transaction: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Transfer {
    id: String,
    amount: i64,
    currency: String,
    destination: Option<String>,
}

#[derive(Debug, Deserialize)]
struct List<T> {
    data: Vec<T>,
    #[serde(default)]
    has_more: bool,
}

impl StripeConnectClient {
    /// A client for `base_url` (`https://api.stripe.com` in production).
    pub fn new(base_url: &str, secret_key: SecretKey, request_timeout: Duration) -> Result<Self, PspError> {
        Ok(StripeConnectClient {
            base_url: http::base_url(base_url)?,
            secret_key,
            http: http::client(request_timeout)?,
        })
    }

    fn post(
        &self,
        path: &[&str],
        account: Option<&str>,
        idempotency_key: &str,
        form: &[(&str, String)],
    ) -> Result<reqwest::RequestBuilder, PspError> {
        let request = self
            .http
            .post(http::url(&self.base_url, path)?)
            .bearer_auth(self.secret_key.expose())
            .header("Idempotency-Key", idempotency_key)
            .form(form);
        Ok(on_account(request, account))
    }

    fn get(&self, path: &[&str], account: Option<&str>) -> Result<reqwest::RequestBuilder, PspError> {
        Ok(on_account(self.http.get(http::url(&self.base_url, path)?).bearer_auth(self.secret_key.expose()), account))
    }

    async fn register(&self, registration: &SellerRegistration) -> Result<ProviderSeller, PspError> {
        let country = registration.country.trim().to_ascii_uppercase();
        let currency = payout_currency(&country)
            .ok_or_else(|| PspError::InvalidRequest(format!("no payout currency known for country {country:?}")))?;
        let bank = &registration.bank_account;
        let form = [
            ("type", "custom".to_owned()),
            ("country", country.clone()),
            ("email", registration.email.clone()),
            ("capabilities[transfers][requested]", "true".to_owned()),
            ("external_account[object]", "bank_account".to_owned()),
            ("external_account[country]", country),
            ("external_account[currency]", currency.to_owned()),
            ("external_account[routing_number]", bank.bank_code.clone()),
            ("external_account[account_number]", bank.account_number.clone()),
            ("external_account[account_holder_name]", bank.holder_name.clone()),
            ("metadata[seller_account]", registration.seller.to_string()),
        ];
        let key = format!("seller-{}", registration.seller);
        let answer = http::send(self.post(&["v1", "accounts"], None, &key, &form)?).await?;
        parse_ok::<Account>(&answer)?.provider_seller()
    }

    async fn account(&self, id: &str) -> Result<ProviderSeller, PspError> {
        let answer = http::send(self.get(&["v1", "accounts", id], None)?).await?;
        parse_ok::<Account>(&answer)?.provider_seller()
    }

    /// The transfer already made under `reference`, if any; one for another amount or account
    /// is a reuse of the reference for a different payout.
    async fn existing_transfer(&self, order: &PayoutOrder) -> Result<Option<Transfer>, PspError> {
        let query = [("transfer_group", order.reference.clone()), ("limit", "10".to_owned())];
        let answer = http::send(self.get(&["v1", "transfers"], None)?.query(&query)).await?;
        let Some(transfer) = parse_ok::<List<Transfer>>(&answer)?.data.into_iter().next() else {
            return Ok(None);
        };
        let same = transfer.amount == order.amount.amount_minor()
            && transfer.currency.eq_ignore_ascii_case(order.amount.currency().code())
            && transfer.destination.as_deref() == Some(order.destination.as_str());
        if !same {
            return Err(PspError::IdempotencyMismatch(format!(
                "transfer group {} already holds {} ({} {} to {:?})",
                order.reference, transfer.id, transfer.amount, transfer.currency, transfer.destination
            )));
        }
        Ok(Some(transfer))
    }

    async fn payout(&self, order: &PayoutOrder) -> Result<ProviderPayout, PspError> {
        order.check()?;
        let amount = order.amount.amount_minor().to_string();
        let currency = order.amount.currency().code().to_ascii_lowercase();
        if self.existing_transfer(order).await?.is_none() {
            let form = [
                ("amount", amount.clone()),
                ("currency", currency.clone()),
                ("destination", order.destination.clone()),
                ("transfer_group", order.reference.clone()),
                ("metadata[payout_reference]", order.reference.clone()),
            ];
            let key = format!("{}:transfer", order.reference);
            let answer = http::send(self.post(&["v1", "transfers"], None, &key, &form)?).await?;
            parse_ok::<Transfer>(&answer)?;
        }
        let form = [
            ("amount", amount),
            ("currency", currency),
            ("description", order.description.clone()),
            ("metadata[payout_reference]", order.reference.clone()),
        ];
        let key = format!("{}:payout", order.reference);
        let answer = http::send(self.post(&["v1", "payouts"], Some(&order.destination), &key, &form)?).await?;
        match parse_ok::<Payout>(&answer) {
            Ok(payout) => payout.provider_payout(&order.reference).map_err(PspError::OutcomeUnknown),
            // The transferred money is gone from the account: paid out already, if under our
            // reference (its key forgotten); a payout found counts, none found is a refusal.
            Err(PspError::InvalidRequest(message)) if message.contains("balance_insufficient") => {
                match self.find(order).await? {
                    Some(found) => Ok(found),
                    None => Err(PspError::InvalidRequest(message)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Our payout among the connected account's payouts (newest first), by metadata.
    async fn find(&self, order: &PayoutOrder) -> Result<Option<ProviderPayout>, PspError> {
        let mut after: Option<String> = None;
        for _ in 0..PAYOUT_PAGES_MAX {
            let mut query = vec![("limit", PAYOUT_PAGE_LIMIT.to_string())];
            if let Some(after) = &after {
                query.push(("starting_after", after.clone()));
            }
            let request = self.get(&["v1", "payouts"], Some(&order.destination))?.query(&query);
            let list: List<Payout> = parse_ok(&http::send(request).await?)?;
            after = list.data.last().map(|p| p.id.clone());
            let ours = list
                .data
                .into_iter()
                .find(|p| p.metadata.get(PAYOUT_REFERENCE_KEY).map(String::as_str) == Some(order.reference.as_str()));
            if let Some(payout) = ours {
                return payout.provider_payout(&order.reference).map(Some).map_err(PspError::OutcomeUnknown);
            }
            if !list.has_more || after.is_none() {
                return Ok(None);
            }
        }
        Err(PspError::Unavailable {
            message: format!("more than {} payouts on {}", PAYOUT_PAGES_MAX * 100, order.destination),
            retry_after: None,
        })
    }

    /// The payouts of each account in `destinations` created on or after `from` (UTC),
    /// newest first; a payout without our reference is listed under its own id.
    async fn list_statement(&self, destinations: &[String], from: Day) -> Result<Vec<StatementPayout>, PspError> {
        let from_secs = Psp::Stripe.day_start_ms(from) / 1000;
        let mut items = Vec::new();
        for account in destinations {
            let mut after: Option<String> = None;
            let mut pages = 0;
            loop {
                pages += 1;
                if pages > STATEMENT_PAGES_MAX {
                    return Err(PspError::Unavailable {
                        message: format!("more than {} payouts on {account}", STATEMENT_PAGES_MAX * 100),
                        retry_after: None,
                    });
                }
                let mut query = vec![("limit", PAYOUT_PAGE_LIMIT.to_string()), ("created[gte]", from_secs.to_string())];
                if let Some(after) = &after {
                    query.push(("starting_after", after.clone()));
                }
                let request = self.get(&["v1", "payouts"], Some(account))?.query(&query);
                let list: List<serde_json::Value> = parse_ok(&http::send(request).await?)?;
                after = list.data.last().and_then(|p| p["id"].as_str().map(str::to_owned));
                let mut older = false;
                for raw in list.data {
                    let unreadable = |e: String| PspError::InvalidRequest(format!("payout statement item: {e}"));
                    let payout: Payout = serde_json::from_value(raw.clone()).map_err(|e| unreadable(e.to_string()))?;
                    if payout.created < from_secs {
                        older = true;
                        continue;
                    }
                    let day = Psp::Stripe.day_of_ms(payout.created.saturating_mul(1000));
                    let return_id = payout.failure_balance_transaction.clone();
                    let id = payout.id.clone();
                    let listed = payout.provider_payout(&id).map_err(unreadable)?;
                    items.push(statement_item(listed, day, return_id, raw.to_string()));
                }
                if older || !list.has_more || after.is_none() {
                    break;
                }
            }
        }
        Ok(items)
    }

    async fn cancel(&self, order: &PayoutOrder, id: &str) -> Result<ProviderPayout, PspError> {
        let path = ["v1", "payouts", id, "cancel"];
        let answer = http::send(self.post(&path, Some(&order.destination), &format!("{id}:cancel"), &[])?).await?;
        let payout = match parse_ok::<Payout>(&answer) {
            Ok(payout) => payout,
            // Not pending any more: its state is the answer.
            Err(PspError::InvalidRequest(_)) => {
                let answer = http::send(self.get(&["v1", "payouts", id], Some(&order.destination))?).await?;
                parse_ok::<Payout>(&answer)?
            }
            Err(e) => return Err(e),
        };
        if payout.metadata.get(PAYOUT_REFERENCE_KEY) != Some(&order.reference) {
            return Err(PspError::InvalidRequest(format!("payout {id} is not {}", order.reference)));
        }
        payout.provider_payout(&order.reference).map_err(PspError::OutcomeUnknown)
    }
}

fn on_account(request: reqwest::RequestBuilder, account: Option<&str>) -> reqwest::RequestBuilder {
    match account {
        Some(account) => request.header(STRIPE_ACCOUNT_HEADER, account),
        None => request,
    }
}

/// The currency a bank account in `country` is paid in (the countries our sellers are in).
pub fn payout_currency(country: &str) -> Option<&'static str> {
    Some(match country {
        "US" => "usd",
        "KR" => "krw",
        "JP" => "jpy",
        "GB" => "gbp",
        "CA" => "cad",
        "AU" => "aud",
        "SG" => "sgd",
        "DE" | "FR" | "NL" | "IE" | "ES" | "IT" | "BE" | "AT" | "FI" | "PT" => "eur",
        _ => return None,
    })
}

impl Account {
    fn provider_seller(self) -> Result<ProviderSeller, PspError> {
        let seller = self.metadata.get(SELLER_ACCOUNT_KEY).cloned().unwrap_or_default();
        let seller = SellerAccount::parse(seller)
            .map_err(|e| PspError::OutcomeUnknown(format!("account {} has no seller_account: {e}", self.id)))?;
        let status = account_status(self.payouts_enabled, self.requirements.as_ref());
        Ok(ProviderSeller { provider_ref: self.id, seller, status })
    }
}

/// `payouts_enabled` → approved; otherwise requirements due → KYC required, else approval
/// pending.
pub fn account_status(payouts_enabled: bool, requirements: Option<&Requirements>) -> ProviderSellerStatus {
    if payouts_enabled {
        ProviderSellerStatus::Approved
    } else if requirements.is_some_and(|r| !r.currently_due.is_empty()) {
        ProviderSellerStatus::KycRequired
    } else {
        ProviderSellerStatus::ApprovalRequired
    }
}

impl Payout {
    /// The payout in our vocabulary, `reference` standing in when the metadata lacks it.
    pub fn provider_payout(self, reference: &str) -> Result<ProviderPayout, String> {
        let currency = Currency::parse(&self.currency.to_ascii_uppercase()).map_err(|e| e.to_string())?;
        let amount = Money::positive_from_minor(self.amount, currency).map_err(|e| e.to_string())?;
        let status = payout_status(&self.status).ok_or_else(|| format!("unknown payout status {:?}", self.status))?;
        let reference = self.metadata.get(PAYOUT_REFERENCE_KEY).cloned().unwrap_or_else(|| reference.to_owned());
        Ok(ProviderPayout {
            provider_payout_id: self.id,
            reference,
            status,
            amount,
            failure_code: self.failure_code,
            failure_message: self.failure_message,
        })
    }
}

/// Stripe's payout status in our vocabulary.
pub fn payout_status(status: &str) -> Option<ProviderPayoutStatus> {
    Some(match status {
        "pending" => ProviderPayoutStatus::Requested,
        "in_transit" => ProviderPayoutStatus::InTransit,
        "paid" => ProviderPayoutStatus::Paid,
        "failed" => ProviderPayoutStatus::Failed,
        "canceled" => ProviderPayoutStatus::Canceled,
        _ => return None,
    })
}

fn parse_ok<T: DeserializeOwned>(answer: &Answer) -> Result<T, PspError> {
    if !answer.status.is_success() {
        return Err(classify_error(answer));
    }
    // A 2xx we cannot read may still mean Stripe acted: unknown, not failed.
    serde_json::from_str(&answer.body).map_err(|e| PspError::OutcomeUnknown(format!("unreadable answer: {e}")))
}

/// Maps a non-2xx answer. Refusals carry Stripe's code in the message (`balance_insufficient`,
/// `payouts_not_allowed`, `insufficient_capabilities_for_transfer`, ...).
fn classify_error(answer: &Answer) -> PspError {
    if answer.status == StatusCode::INTERNAL_SERVER_ERROR {
        // Saved under the idempotency key and replayed: the request may have had effects.
        return PspError::OutcomeUnknown(format!("HTTP 500 from Stripe: {}", answer.body.trim()));
    }
    if http::is_transient(answer.status) {
        return PspError::Unavailable { message: format!("HTTP {}", answer.status), retry_after: answer.retry_after };
    }
    let Ok(ErrorBody { error }) = serde_json::from_str::<ErrorBody>(&answer.body) else {
        return PspError::OutcomeUnknown(format!("HTTP {} with an unreadable body", answer.status));
    };
    let message = format!(
        "HTTP {} {}: {}",
        answer.status,
        error.code.as_deref().unwrap_or(&error.kind),
        error.message.unwrap_or_default()
    );
    match (answer.status, error.kind.as_str()) {
        (StatusCode::CONFLICT, "idempotency_error") => {
            PspError::Unavailable { message, retry_after: answer.retry_after }
        }
        (_, "idempotency_error") => PspError::IdempotencyMismatch(message),
        (StatusCode::UNAUTHORIZED, _) => PspError::Authentication(message),
        _ => PspError::InvalidRequest(message),
    }
}

impl PayoutProvider for StripeConnectClient {
    fn kind(&self) -> PayoutProviderKind {
        PayoutProviderKind::StripeConnect
    }
    fn register_seller<'a>(&'a self, registration: &'a SellerRegistration) -> PspFuture<'a, ProviderSeller> {
        Box::pin(self.register(registration))
    }
    fn seller<'a>(&'a self, provider_ref: &'a str) -> PspFuture<'a, ProviderSeller> {
        Box::pin(self.account(provider_ref))
    }
    fn create_payout<'a>(&'a self, order: &'a PayoutOrder) -> PspFuture<'a, ProviderPayout> {
        Box::pin(self.payout(order))
    }
    fn find_payout<'a>(&'a self, order: &'a PayoutOrder) -> PspFuture<'a, Option<ProviderPayout>> {
        Box::pin(self.find(order))
    }
    fn cancel_payout<'a>(
        &'a self,
        order: &'a PayoutOrder,
        provider_payout_id: &'a str,
    ) -> PspFuture<'a, ProviderPayout> {
        Box::pin(self.cancel(order, provider_payout_id))
    }
    fn statement<'a>(&'a self, destinations: &'a [String], from: Day) -> PspFuture<'a, Vec<StatementPayout>> {
        Box::pin(self.list_statement(destinations, from))
    }
}

/// A Stripe event (its `Stripe-Signature` already verified): `payout.created|updated|paid|
/// failed|canceled` of a connected account → [`ProviderEvent::Payout`], `account.updated` →
/// [`ProviderEvent::Seller`], anything else → [`ProviderEvent::Other`]. Connect events name
/// the account in `account`; a payout event without one is the platform's own payout, not a
/// seller's, and is [`ProviderEvent::Other`].
pub fn parse_event(body: &str) -> Result<ProviderEvent, String> {
    #[derive(Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: String,
        account: Option<String>,
        data: Data,
    }
    #[derive(Deserialize)]
    struct Data {
        object: serde_json::Value,
    }
    let event: Event = serde_json::from_str(body).map_err(|e| format!("not a Stripe event: {e}"))?;
    match event.kind.as_str() {
        "payout.created" | "payout.updated" | "payout.paid" | "payout.failed" | "payout.canceled"
            if event.account.is_some() =>
        {
            let payout: Payout =
                serde_json::from_value(event.data.object).map_err(|e| format!("{}: {e}", event.kind))?;
            Ok(ProviderEvent::Payout(payout.provider_payout("")?))
        }
        "account.updated" => {
            let account: Account =
                serde_json::from_value(event.data.object).map_err(|e| format!("account.updated: {e}"))?;
            account.provider_seller().map(ProviderEvent::Seller).map_err(|e| e.to_string())
        }
        other => Ok(ProviderEvent::Other { event_type: other.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: Some(Duration::from_secs(1)),
            body: body.into(),
        }
    }

    /// Connect events map to our events, with minor units per currency.
    #[test]
    fn parses_events() {
        let failed = r#"{"id":"evt_1","object":"event","type":"payout.failed","account":"acct_1","data":{"object":
            {"id":"po_1","object":"payout","amount":2500,"currency":"usd","status":"failed","failure_code":"account_closed",
             "failure_message":"The bank account has been closed","metadata":{"payout_reference":"payout-s1-USD-2024-09"}}}}"#;
        let ProviderEvent::Payout(p) = parse_event(failed).unwrap() else { panic!("not a payout") };
        assert_eq!((p.status, p.failure_code.as_deref()), (ProviderPayoutStatus::Failed, Some("account_closed")));
        assert_eq!(p.amount.to_decimal_string(), "25.00");
        assert_eq!(p.reference, "payout-s1-USD-2024-09");
        let platform = failed.replace(r#""account":"acct_1","#, "");
        assert_eq!(parse_event(&platform).unwrap(), ProviderEvent::Other { event_type: "payout.failed".into() });
        let account = r#"{"type":"account.updated","account":"acct_1","data":{"object":{"id":"acct_1","payouts_enabled":false,
            "requirements":{"currently_due":["individual.id_number"]},"metadata":{"seller_account":"seller-bob"}}}}"#;
        let ProviderEvent::Seller(s) = parse_event(account).unwrap() else { panic!("not a seller") };
        assert_eq!((s.status, s.provider_ref.as_str()), (ProviderSellerStatus::KycRequired, "acct_1"));
        assert!(parse_event("{}").is_err());
    }

    /// Errors: 500 is unknown, 429/503 retry, key misuse and refusals do not.
    #[test]
    fn classifies_errors() {
        assert!(matches!(classify_error(&answer(500, "{}")), PspError::OutcomeUnknown(_)));
        assert!(matches!(classify_error(&answer(429, "")), PspError::Unavailable { retry_after: Some(_), .. }));
        assert!(matches!(classify_error(&answer(503, "")), PspError::Unavailable { .. }));
        let idem = r#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests..."}}"#;
        assert!(matches!(classify_error(&answer(400, idem)), PspError::IdempotencyMismatch(_)));
        assert!(matches!(classify_error(&answer(409, idem)), PspError::Unavailable { .. }));
        let balance = r#"{"error":{"type":"invalid_request_error","code":"balance_insufficient","message":"..."}}"#;
        assert!(
            matches!(classify_error(&answer(400, balance)), PspError::InvalidRequest(m) if m.contains("balance_insufficient"))
        );
        assert!(matches!(
            classify_error(&answer(401, r#"{"error":{"type":"invalid_request_error"}}"#)),
            PspError::Authentication(_)
        ));
    }

    /// Account states follow `payouts_enabled` and what is due.
    #[test]
    fn account_states() {
        let due = Requirements { currently_due: vec!["external_account".into()] };
        assert_eq!(account_status(true, Some(&due)), ProviderSellerStatus::Approved);
        assert_eq!(account_status(false, Some(&due)), ProviderSellerStatus::KycRequired);
        assert_eq!(account_status(false, None), ProviderSellerStatus::ApprovalRequired);
    }
}
