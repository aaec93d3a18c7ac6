//! The parameters of the payment window (`requestPayment`'s, carried in the
//! pay page's query string and again in its form) and the test cards.

use std::collections::HashMap;

use reqwest::Url;

use super::{
    CARD_3DS_ID, CARD_DECLINE_ID, CARD_INSUFFICIENT_FUNDS_ID, CARD_REVIEW_ID, CARD_SUCCESS_ID, TEST_CLIENT_KEY_PREFIX,
};
use crate::toss::body::{ORDER_ID_LEN_MAX, ORDER_ID_LEN_MIN, ORDER_NAME_LEN_MAX};
use crate::toss::payment::TossCard;
use crate::toss::session::ReturnUrls;

/// Longest client key accepted.
const CLIENT_KEY_LEN_MAX: usize = 200;
/// Longest `customerName` Toss accepts.
const CUSTOMER_NAME_LEN_MAX: usize = 100;
/// Longest `successUrl` / `failUrl` accepted.
const RETURN_URL_LEN_MAX: usize = 2_048;
/// Largest amount the window accepts, in won.
pub const AMOUNT_MAX: u64 = 9_999_999_999;
/// `method` values meaning a card payment (the only one simulated).
const CARD_METHODS: [&str; 2] = ["카드", "CARD"];

/// Decoded form or query fields; a repeated name keeps its last value.
pub type Fields = HashMap<String, String>;

/// Decodes a form-encoded body or query string.
pub fn decode(raw: &[u8]) -> Result<Fields, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(raw)
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|error| format!("malformed parameters: {error}"))
}

/// A validated `requestPayment` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayRequest {
    pub client_key: String,
    pub method: String,
    pub amount: u64,
    pub order_id: String,
    pub order_name: String,
    pub customer_name: Option<String>,
    pub urls: ReturnUrls,
}

impl PayRequest {
    /// Validates `fields`; the error is a message for the buyer.
    pub fn from_fields(fields: &Fields) -> Result<Self, String> {
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
        let client_key = field("clientKey");
        if !client_key.starts_with(TEST_CLIENT_KEY_PREFIX)
            || client_key.len() <= TEST_CLIENT_KEY_PREFIX.len()
            || client_key.len() > CLIENT_KEY_LEN_MAX
        {
            return Err(format!("clientKey must be a Toss test client key ({TEST_CLIENT_KEY_PREFIX}...)"));
        }
        let method = field("method");
        if !CARD_METHODS.contains(&method) {
            return Err(format!(
                "method must be one of {} (only card payments are simulated)",
                CARD_METHODS.join(", ")
            ));
        }
        let customer_name = match fields.get("customerName") {
            None => None,
            Some(name) => Some(bounded("customerName", name, CUSTOMER_NAME_LEN_MAX)?),
        };
        Ok(Self {
            client_key: client_key.to_owned(),
            method: method.to_owned(),
            amount: amount(field("amount"))?,
            order_id: order_id(field("orderId"))?,
            order_name: bounded("orderName", field("orderName"), ORDER_NAME_LEN_MAX)?,
            customer_name,
            urls: ReturnUrls {
                success_url: return_url("successUrl", field("successUrl"))?,
                fail_url: return_url("failUrl", field("failUrl"))?,
            },
        })
    }

    /// The fields that reproduce this request (the form's hidden inputs).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("clientKey", self.client_key.clone()),
            ("method", self.method.clone()),
            ("amount", self.amount.to_string()),
            ("orderId", self.order_id.clone()),
            ("orderName", self.order_name.clone()),
            ("successUrl", self.urls.success_url.clone()),
            ("failUrl", self.urls.fail_url.clone()),
        ];
        if let Some(name) = &self.customer_name {
            fields.push(("customerName", name.clone()));
        }
        fields
    }
}

/// A positive integer number of won, digits only.
fn amount(text: &str) -> Result<u64, String> {
    let error = || format!("amount must be a positive integer of won (at most {AMOUNT_MAX})");
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error());
    }
    match text.parse::<u64>() {
        Ok(amount) if (1..=AMOUNT_MAX).contains(&amount) => Ok(amount),
        _ => Err(error()),
    }
}

/// Toss's orderId rule: 6–64 characters of letters, digits, `-` and `_`.
fn order_id(text: &str) -> Result<String, String> {
    let well_formed = (ORDER_ID_LEN_MIN..=ORDER_ID_LEN_MAX).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed {
        Ok(text.to_owned())
    } else {
        Err(format!("orderId must be {ORDER_ID_LEN_MIN}-{ORDER_ID_LEN_MAX} characters of A-Z, a-z, 0-9, - and _"))
    }
}

/// A required non-empty text of at most `len_max` characters.
fn bounded(name: &str, text: &str, len_max: usize) -> Result<String, String> {
    let len = text.chars().count();
    if len == 0 || len > len_max {
        return Err(format!("{name} must be 1-{len_max} characters"));
    }
    Ok(text.to_owned())
}

/// An absolute `http` or `https` URL.
fn return_url(name: &str, text: &str) -> Result<String, String> {
    let error = || format!("{name} must be an absolute http(s) URL");
    if text.len() > RETURN_URL_LEN_MAX {
        return Err(format!("{name} must be at most {RETURN_URL_LEN_MAX} characters"));
    }
    let url = Url::parse(text).map_err(|_| error())?;
    let http = matches!(url.scheme(), "http" | "https");
    if !http || url.host_str().is_none_or(str::is_empty) {
        return Err(error());
    }
    Ok(text.to_owned())
}

/// A test card of the pay page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostedCard {
    Success,
    Decline,
    InsufficientFunds,
    ThreeDs,
    Review,
}

/// Every card: the card, its radio button id, form value and label.
pub const HOSTED_CARDS: [(HostedCard, &str, &str, &str); 5] = [
    (HostedCard::Success, CARD_SUCCESS_ID, "success", "승인 (approved)"),
    (HostedCard::Decline, CARD_DECLINE_ID, "decline", "카드사 거절 (declined)"),
    (HostedCard::InsufficientFunds, CARD_INSUFFICIENT_FUNDS_ID, "insufficient_funds", "잔액 부족 (insufficient funds)"),
    (HostedCard::ThreeDs, CARD_3DS_ID, "3ds", "3-D Secure 인증 필요 (challenge)"),
    (HostedCard::Review, CARD_REVIEW_ID, "review", "심사 대기 (manual review)"),
];

impl HostedCard {
    /// The card posted as `card=<value>`; a missing value is the default.
    pub fn from_value(value: Option<&str>) -> Option<Self> {
        let value = value.unwrap_or("success");
        HOSTED_CARDS.iter().find(|(_, _, name, _)| *name == value).map(|(card, ..)| *card)
    }

    /// The card charged on confirm (3-D Secure succeeds once authenticated).
    pub fn test_card(self) -> TossCard {
        match self {
            Self::Success | Self::ThreeDs => TossCard::Success,
            Self::Decline => TossCard::Decline,
            Self::InsufficientFunds => TossCard::InsufficientFunds,
            Self::Review => TossCard::Review { webhook_chaos: false },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn valid() -> Fields {
        fields(&[
            ("clientKey", "test_ck_abc"),
            ("method", "카드"),
            ("amount", "15000"),
            ("orderId", "order_123"),
            ("orderName", "티셔츠"),
            ("successUrl", "http://shop.test/success?x=1"),
            ("failUrl", "https://shop.test/fail"),
        ])
    }

    /// A well-formed request validates and round-trips through its fields.
    #[test]
    fn accepts_valid_request() {
        let request = PayRequest::from_fields(&valid()).unwrap();
        assert_eq!(request.amount, 15_000);
        let again: Fields = request.fields().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        assert_eq!(PayRequest::from_fields(&again).unwrap(), request);
    }

    /// Each rule rejects what it should.
    #[test]
    fn rejects_bad_fields() {
        let cases = [
            ("clientKey", "live_ck_abc"),
            ("clientKey", "test_ck_"),
            ("method", "가상계좌"),
            ("amount", "0"),
            ("amount", "-5"),
            ("amount", "1.5"),
            ("amount", "99999999999999999999"),
            ("orderId", "abc"),
            ("orderId", "order 123"),
            ("orderName", ""),
            ("successUrl", "/relative"),
            ("failUrl", "ftp://shop.test/fail"),
            ("failUrl", "javascript:alert(1)"),
        ];
        for (name, value) in cases {
            let mut bad = valid();
            bad.insert(name.to_owned(), value.to_owned());
            assert!(PayRequest::from_fields(&bad).is_err(), "{name}={value}");
        }
    }

    /// Cards resolve by form value, defaulting to success.
    #[test]
    fn cards_resolve() {
        assert_eq!(HostedCard::from_value(None), Some(HostedCard::Success));
        assert_eq!(HostedCard::from_value(Some("3ds")), Some(HostedCard::ThreeDs));
        assert_eq!(HostedCard::from_value(Some("nope")), None);
        assert_eq!(HostedCard::ThreeDs.test_card(), TossCard::Success);
    }
}
