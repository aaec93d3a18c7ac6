//! Toss payouts v2 wire types: the `Seller` and `Payout` objects, the v2 envelope, list
//! pages, their mapping to our vocabulary, and the webhook parser.

use super::super::{ProviderEvent, ProviderPayout, ProviderPayoutStatus, ProviderSeller, ProviderSellerStatus};
use crate::psp::PspError;
use payments_domain::{Currency, Money, SellerAccount};
use serde::Deserialize;
use serde_json::Value;

/// A Toss `Seller`, as far as we read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seller {
    /// Toss's seller id: the payout destination.
    pub id: String,
    /// Our seller id.
    pub ref_seller_id: String,
    /// `APPROVAL_REQUIRED`, `PARTIALLY_APPROVED`, `KYC_REQUIRED`, `APPROVED`.
    pub status: String,
}

/// `amount` of a payout or balance: a currency and a whole number of won (Toss has been seen
/// to send the value as a string, so both are read).
#[derive(Debug, Clone, Deserialize)]
pub struct Amount {
    /// `KRW`.
    pub currency: String,
    /// Won.
    #[serde(deserialize_with = "integer_or_string")]
    pub value: i64,
}

/// A Toss `Payout`, as far as we read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payout {
    /// Toss's payout id.
    pub id: String,
    /// Our reference.
    pub ref_payout_id: String,
    /// The seller id paid.
    pub destination: String,
    /// Amount.
    pub amount: Amount,
    /// `REQUESTED`, `IN_PROGRESS`, `COMPLETED`, `FAILED`, `CANCELED`.
    pub status: String,
    /// Why it failed.
    pub error: Option<ErrorBody>,
    /// The day it is paid (`YYYY-MM-DD`, Korean time).
    #[serde(default)]
    pub payout_date: Option<String>,
}

/// Toss's `error{code, message}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    /// Error code.
    pub code: String,
    /// Message.
    pub message: Option<String>,
}

/// The balance payouts are made from (`GET /v2/balances`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance {
    /// Sales not yet payable (settled within the next two days).
    pub pending: Money,
    /// Payable now.
    pub available: Money,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Envelope {
    pub(super) entity_body: Option<Value>,
    pub(super) error: Option<ErrorBody>,
    /// Toss's v1 error shape (`{code, message}`), in case an endpoint still answers it.
    pub(super) code: Option<String>,
    pub(super) message: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Items<T> {
    pub(super) items: Vec<T>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Page<T> {
    pub(super) items: Vec<T>,
    #[serde(default)]
    pub(super) has_next: bool,
    pub(super) last_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BalanceBody {
    pub(super) pending_amount: Amount,
    pub(super) available_amount: Amount,
}

fn integer_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().ok_or_else(|| serde::de::Error::custom("amount is not an integer")),
        Value::String(s) => s.trim().parse().map_err(serde::de::Error::custom),
        _ => Err(serde::de::Error::custom("amount is neither a number nor a string")),
    }
}

/// Items of a list, by their id (the list cursor).
pub(super) trait HasId {
    fn id(&self) -> &str;
}

impl HasId for Payout {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for Seller {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Seller {
    pub(super) fn provider_seller(self) -> Result<ProviderSeller, PspError> {
        let seller = SellerAccount::parse(self.ref_seller_id.clone())
            .map_err(|e| PspError::OutcomeUnknown(format!("refSellerId {:?}: {e}", self.ref_seller_id)))?;
        Ok(ProviderSeller { provider_ref: self.id, seller, status: seller_status(&self.status) })
    }
}

impl Payout {
    /// The payout in our vocabulary; an amount or status we cannot read is an error.
    pub fn provider_payout(self) -> Result<ProviderPayout, String> {
        let currency = Currency::parse(&self.amount.currency).map_err(|e| e.to_string())?;
        let amount = Money::positive_from_minor(self.amount.value, currency).map_err(|e| e.to_string())?;
        let status = payout_status(&self.status).ok_or_else(|| format!("unknown payout status {:?}", self.status))?;
        Ok(ProviderPayout {
            provider_payout_id: self.id,
            reference: self.ref_payout_id,
            status,
            amount,
            failure_code: self.error.as_ref().map(|e| e.code.clone()),
            failure_message: self.error.and_then(|e| e.message),
        })
    }
}

/// Toss's seller status in our vocabulary; an unknown one is not payable.
pub fn seller_status(status: &str) -> ProviderSellerStatus {
    match status {
        "PARTIALLY_APPROVED" => ProviderSellerStatus::PartiallyApproved,
        "APPROVED" => ProviderSellerStatus::Approved,
        "KYC_REQUIRED" => ProviderSellerStatus::KycRequired,
        _ => ProviderSellerStatus::ApprovalRequired,
    }
}

/// Toss's payout status in our vocabulary.
pub fn payout_status(status: &str) -> Option<ProviderPayoutStatus> {
    Some(match status {
        "REQUESTED" => ProviderPayoutStatus::Requested,
        "IN_PROGRESS" => ProviderPayoutStatus::InTransit,
        "COMPLETED" => ProviderPayoutStatus::Paid,
        "FAILED" => ProviderPayoutStatus::Failed,
        "CANCELED" => ProviderPayoutStatus::Canceled,
        _ => return None,
    })
}

/// A Toss payouts webhook (its signature already verified, see the gateway's
/// `verify_toss_signature`): `{eventType, createdAt, version, eventId, entityType,
/// entityBody}`, plain JSON. `payout.changed` carries a Payout, `seller.changed` a Seller;
/// other event types are [`ProviderEvent::Other`].
pub fn parse_webhook(body: &str) -> Result<ProviderEvent, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Event {
        event_type: String,
        entity_body: Option<Value>,
    }
    let event: Event = serde_json::from_str(body).map_err(|e| format!("not a Toss event: {e}"))?;
    let entity = || event.entity_body.clone().ok_or_else(|| format!("{} without entityBody", event.event_type));
    match event.event_type.as_str() {
        "payout.changed" => {
            let payout: Payout = serde_json::from_value(entity()?).map_err(|e| format!("payout.changed: {e}"))?;
            Ok(ProviderEvent::Payout(payout.provider_payout()?))
        }
        "seller.changed" => {
            let seller: Seller = serde_json::from_value(entity()?).map_err(|e| format!("seller.changed: {e}"))?;
            seller.provider_seller().map(ProviderEvent::Seller).map_err(|e| e.to_string())
        }
        other => Ok(ProviderEvent::Other { event_type: other.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Webhooks map to our events; statuses, error codes and string amounts are read.
    #[test]
    fn parses_webhooks() {
        let payout = r#"{"eventType":"payout.changed","createdAt":"2024-09-05T12:19:21+09:00","version":"2022-11-16",
            "eventId":"e1","entityType":"payout","entityBody":{"id":"FPA_1","refPayoutId":"payout-s1-KRW-2024-09",
            "destination":"seller_1","scheduleType":"EXPRESS","amount":{"currency":"KRW","value":"50000"},
            "status":"FAILED","error":{"code":"ACCOUNT_CLOSED","message":"closed"}}}"#;
        let ProviderEvent::Payout(p) = parse_webhook(payout).unwrap() else { panic!("not a payout") };
        assert_eq!(p.status, ProviderPayoutStatus::Failed);
        assert_eq!(p.amount.amount_minor(), 50_000);
        assert_eq!(p.failure_code.as_deref(), Some("ACCOUNT_CLOSED"));
        assert_eq!(p.reference, "payout-s1-KRW-2024-09");
        let seller = r#"{"eventType":"seller.changed","entityType":"seller",
            "entityBody":{"id":"seller_1","refSellerId":"seller-alice","status":"PARTIALLY_APPROVED"}}"#;
        let ProviderEvent::Seller(s) = parse_webhook(seller).unwrap() else { panic!("not a seller") };
        assert!(s.status.is_payable());
        assert_eq!(s.seller.as_str(), "seller-alice");
        let other = r#"{"eventType":"PAYMENT_STATUS_CHANGED","data":{}}"#;
        assert_eq!(parse_webhook(other).unwrap(), ProviderEvent::Other { event_type: "PAYMENT_STATUS_CHANGED".into() });
        assert!(parse_webhook("eyJhbGciOiJkaXIifQ..a.b.c").is_err());
        let unknown = payout.replace("\"FAILED\"", "\"SOMETHING\"");
        assert!(parse_webhook(&unknown).is_err());
    }
}
