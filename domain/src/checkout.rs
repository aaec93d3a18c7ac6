//! A checkout request as it arrives (a [`CheckoutDraft`] of plain strings, from REST JSON or
//! gRPC) and its validated form, [`NewCheckout`]. Every rejection names the offending field.

use crate::card::{contains_card_number, json_contains_card_number};
use crate::currency::Currency;
use crate::ids::{BuyerId, CheckoutId, PaymentOrderId, SellerAccount};
use crate::money::Money;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// Most payment orders (sellers) one checkout may hold.
pub const PAYMENT_ORDERS_MAX: usize = 100;
/// Longest PSP payment-method token accepted.
pub const PAYMENT_TOKEN_LEN_MAX: usize = 255;
/// Largest `buyer_info` object, serialized, in bytes.
pub const BUYER_INFO_BYTES_MAX: usize = 4096;

/// The message of every card-number refusal. The ids (`checkout_id`, `payment_order_id`,
/// `seller_account`, `buyer_info.buyer_id`) are refused by their own parsers
/// ([`crate::IdError::CardNumber`]) with the same advice.
const CARD_NUMBER_REFUSED: &str = "looks like it holds a card number; card data must never be sent, use a PSP token";

/// A request field failed validation. `param` is the field's path, e.g.
/// `payment_orders[1].amount`, as in Stripe's error objects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct FieldError {
    /// Path of the offending field.
    pub param: String,
    /// What is wrong with it, for the API caller.
    pub message: String,
}

impl FieldError {
    /// Builds an error for `param`.
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { param: param.into(), message: message.into() }
    }
}

/// A checkout as received, before validation. Empty strings count as missing.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckoutDraft {
    /// The marketplace's checkout id.
    pub checkout_id: String,
    /// Free-form buyer object; must hold a string `buyer_id`.
    pub buyer_info: Map<String, Value>,
    /// The PSP payment-method token (`credit_card_info.token`); `None` for a hosted checkout.
    pub payment_token: Option<String>,
    /// One entry per seller.
    pub payment_orders: Vec<OrderDraft>,
}

/// One payment order as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDraft {
    /// Seller receiving the money.
    pub seller_account: String,
    /// Decimal amount string in major units.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The marketplace's id for this order; unique across all checkouts.
    pub payment_order_id: String,
}

/// How the buyer pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentMethod {
    /// The server charges a PSP token (a Stripe PaymentMethod, a Toss billing key).
    Token(String),
    /// The buyer pays on the PSP's hosted page; the server confirms afterwards (seed 003).
    Hosted,
}

/// A validated checkout, ready to store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCheckout {
    /// Checkout id.
    pub checkout_id: CheckoutId,
    /// Buyer id taken from `buyer_info.buyer_id`.
    pub buyer_id: BuyerId,
    /// The whole buyer object, checked to hold no card number.
    pub buyer_info: Map<String, Value>,
    /// Token or hosted page.
    pub payment: PaymentMethod,
    /// Orders, in request order, with distinct ids.
    pub orders: Vec<NewPaymentOrder>,
}

/// A validated payment order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPaymentOrder {
    /// Order id (PSP idempotency key).
    pub payment_order_id: PaymentOrderId,
    /// Seller.
    pub seller_account: SellerAccount,
    /// Amount to charge.
    pub amount: Money,
}

impl NewCheckout {
    /// Validates a draft. The first problem found is returned, naming its field.
    pub fn parse(draft: CheckoutDraft) -> Result<Self, FieldError> {
        let checkout_id = CheckoutId::parse(required("checkout_id", draft.checkout_id)?)
            .map_err(|e| FieldError::new("checkout_id", e.to_string()))?;
        let buyer_id = parse_buyer_info(&draft.buyer_info)?;
        let payment = match draft.payment_token {
            Some(token) => PaymentMethod::Token(parse_token(token)?),
            None => PaymentMethod::Hosted,
        };
        if draft.payment_orders.is_empty() {
            return Err(FieldError::new("payment_orders", "must hold at least one payment order"));
        }
        if draft.payment_orders.len() > PAYMENT_ORDERS_MAX {
            return Err(FieldError::new(
                "payment_orders",
                format!("must hold at most {PAYMENT_ORDERS_MAX} payment orders"),
            ));
        }
        let mut seen = HashSet::new();
        let mut orders = Vec::with_capacity(draft.payment_orders.len());
        for (i, order) in draft.payment_orders.into_iter().enumerate() {
            let order = parse_order(i, order)?;
            if !seen.insert(order.payment_order_id.clone()) {
                return Err(FieldError::new(
                    format!("payment_orders[{i}].payment_order_id"),
                    format!("{} is repeated in this request", order.payment_order_id),
                ));
            }
            orders.push(order);
        }
        if payment == PaymentMethod::Hosted {
            check_hosted(&checkout_id, &orders)?;
        }
        Ok(NewCheckout { checkout_id, buyer_id, buyer_info: draft.buyer_info, payment, orders })
    }

    /// The sum of the orders, when they share one currency (always true of a hosted
    /// checkout, which the buyer pays in one payment).
    pub fn total(&self) -> Option<Money> {
        total_of(self.orders.iter().map(|o| o.amount))
    }
}

/// The sum of amounts of one currency; `None` for mixed currencies or overflow.
pub fn total_of(mut amounts: impl Iterator<Item = Money>) -> Option<Money> {
    let first = amounts.next()?;
    amounts.try_fold(first, |acc, m| acc.checked_add(m).ok())
}

/// Toss's order id rules (the checkout id is the PSP order id of the one hosted payment) and
/// one currency for the whole checkout.
fn check_hosted(id: &CheckoutId, orders: &[NewPaymentOrder]) -> Result<(), FieldError> {
    let s = id.as_str();
    if s.len() < 6 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(FieldError::new(
            "checkout_id",
            "for a hosted checkout must be 6 to 64 letters, digits, '-' or '_' (the PSP's order id rules)",
        ));
    }
    if total_of(orders.iter().map(|o| o.amount)).is_none() {
        return Err(FieldError::new("payment_orders", "of a hosted checkout must share one currency"));
    }
    Ok(())
}

fn required(param: &str, value: String) -> Result<String, FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(param, "is required"));
    }
    Ok(value)
}

/// Checks the buyer object. The fields we know are checked first so that a card number in
/// them is reported under their own name (`buyer_info.buyer_id`, `buyer_info.email`); then the
/// whole object, keys and values at any depth.
fn parse_buyer_info(info: &Map<String, Value>) -> Result<BuyerId, FieldError> {
    let size = serde_json::to_vec(info).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > BUYER_INFO_BYTES_MAX {
        return Err(FieldError::new("buyer_info", format!("must be at most {BUYER_INFO_BYTES_MAX} bytes")));
    }
    let buyer_id = match info.get("buyer_id") {
        Some(Value::String(s)) if !s.is_empty() => {
            BuyerId::parse(s.clone()).map_err(|e| FieldError::new("buyer_info.buyer_id", e.to_string()))?
        }
        Some(Value::String(_)) | None => return Err(FieldError::new("buyer_info.buyer_id", "is required")),
        Some(_) => return Err(FieldError::new("buyer_info.buyer_id", "must be a string")),
    };
    if let Some(Value::String(email)) = info.get("email")
        && contains_card_number(email)
    {
        return Err(FieldError::new("buyer_info.email", CARD_NUMBER_REFUSED));
    }
    if json_contains_card_number(&Value::Object(info.clone())) {
        return Err(FieldError::new("buyer_info", CARD_NUMBER_REFUSED));
    }
    Ok(buyer_id)
}

fn parse_token(token: String) -> Result<String, FieldError> {
    const PARAM: &str = "credit_card_info.token";
    let token = required(PARAM, token)?;
    if contains_card_number(&token) {
        return Err(FieldError::new(PARAM, CARD_NUMBER_REFUSED));
    }
    if token.len() > PAYMENT_TOKEN_LEN_MAX
        || !token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    {
        return Err(FieldError::new(
            PARAM,
            format!("must be a PSP token of at most {PAYMENT_TOKEN_LEN_MAX} letters, digits, '_' or '-'"),
        ));
    }
    Ok(token)
}

fn parse_order(i: usize, order: OrderDraft) -> Result<NewPaymentOrder, FieldError> {
    let p = |field: &str| format!("payment_orders[{i}].{field}");
    let payment_order_id = PaymentOrderId::parse(required(&p("payment_order_id"), order.payment_order_id)?)
        .map_err(|e| FieldError::new(p("payment_order_id"), e.to_string()))?;
    let seller_account = SellerAccount::parse(required(&p("seller_account"), order.seller_account)?)
        .map_err(|e| FieldError::new(p("seller_account"), e.to_string()))?;
    let currency = Currency::parse(&required(&p("currency"), order.currency)?)
        .map_err(|e| FieldError::new(p("currency"), e.to_string()))?;
    let amount = Money::parse(&required(&p("amount"), order.amount)?, currency)
        .map_err(|e| FieldError::new(p("amount"), e.to_string()))?;
    Ok(NewPaymentOrder { payment_order_id, seller_account, amount })
}

/// Reads the seeds' `POST /v1/payments` JSON body into a draft. Unknown fields and wrong JSON
/// types are rejected with the field's path; card data fields are refused outright.
pub fn draft_from_json(body: &Value) -> Result<CheckoutDraft, FieldError> {
    let obj = as_object("", body)?;
    reject_unknown("", obj, &["checkout_id", "buyer_info", "credit_card_info", "payment_orders"])?;
    let card = as_object("credit_card_info", obj.get("credit_card_info").unwrap_or(&Value::Null))?;
    for key in card.keys() {
        if key != "token" {
            return Err(FieldError::new(
                format!("credit_card_info.{key}"),
                "is not accepted: card data must never be sent, use a PSP token in credit_card_info.token",
            ));
        }
    }
    let orders = match obj.get("payment_orders") {
        Some(Value::Array(items)) => {
            items.iter().enumerate().map(|(i, item)| order_from_json(i, item)).collect::<Result<Vec<_>, _>>()?
        }
        None | Some(Value::Null) => return Err(FieldError::new("payment_orders", "is required")),
        Some(_) => return Err(FieldError::new("payment_orders", "must be an array")),
    };
    Ok(CheckoutDraft {
        checkout_id: string_field("", obj, "checkout_id")?,
        buyer_info: as_object("buyer_info", obj.get("buyer_info").unwrap_or(&Value::Null))?.clone(),
        payment_token: Some(string_field("credit_card_info", card, "token")?),
        payment_orders: orders,
    })
}

fn order_from_json(i: usize, item: &Value) -> Result<OrderDraft, FieldError> {
    let path = format!("payment_orders[{i}]");
    let obj = as_object(&path, item)?;
    reject_unknown(&path, obj, &["seller_account", "amount", "currency", "payment_order_id"])?;
    Ok(OrderDraft {
        seller_account: string_field(&path, obj, "seller_account")?,
        amount: string_field(&path, obj, "amount")?,
        currency: string_field(&path, obj, "currency")?,
        payment_order_id: string_field(&path, obj, "payment_order_id")?,
    })
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") }
}

fn as_object<'a>(path: &str, v: &'a Value) -> Result<&'a Map<String, Value>, FieldError> {
    match v {
        Value::Object(map) => Ok(map),
        Value::Null => Err(FieldError::new(if path.is_empty() { "body" } else { path }, "is required")),
        _ => Err(FieldError::new(if path.is_empty() { "body" } else { path }, "must be a JSON object")),
    }
}

fn reject_unknown(path: &str, obj: &Map<String, Value>, known: &[&str]) -> Result<(), FieldError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(FieldError::new(join(path, k), "is not a known field")),
        None => Ok(()),
    }
}

/// A string field; a JSON number is refused so amounts can never pass through a float.
fn string_field(path: &str, obj: &Map<String, Value>, field: &str) -> Result<String, FieldError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        None | Some(Value::Null) => Err(FieldError::new(join(path, field), "is required")),
        Some(_) => Err(FieldError::new(join(path, field), "must be a string")),
    }
}

/// Reads a hosted checkout (`POST /v1/checkouts`): the seeds' body without
/// `credit_card_info`, since the buyer pays on the PSP's page.
pub fn hosted_draft_from_json(body: &Value) -> Result<CheckoutDraft, FieldError> {
    let obj = as_object("", body)?;
    reject_unknown("", obj, &["checkout_id", "buyer_info", "payment_orders"])?;
    let mut with_card = obj.clone();
    with_card.insert("credit_card_info".into(), serde_json::json!({"token": "hosted"}));
    let mut draft = draft_from_json(&Value::Object(with_card))?;
    draft.payment_token = None;
    Ok(draft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body() -> Value {
        json!({
            "checkout_id": "chk-1",
            "buyer_info": {"buyer_id": "buyer-1", "email": "b@example.com"},
            "credit_card_info": {"token": "pm_card_visa"},
            "payment_orders": [
                {"seller_account": "seller-a", "amount": "10.50", "currency": "USD", "payment_order_id": "po-1"},
                {"seller_account": "seller-b", "amount": "15000", "currency": "KRW", "payment_order_id": "po-2"}
            ]
        })
    }

    fn parse(v: &Value) -> Result<NewCheckout, FieldError> {
        NewCheckout::parse(draft_from_json(v)?)
    }

    #[test]
    fn parses_the_seeds_request() {
        let c = parse(&body()).unwrap();
        assert_eq!(c.orders.len(), 2);
        assert_eq!(c.orders[0].amount.amount_minor(), 1050);
        assert_eq!(c.orders[1].amount.amount_minor(), 15000);
        assert_eq!(c.buyer_id.as_str(), "buyer-1");
    }

    fn param_of(mutate: impl FnOnce(&mut Value)) -> String {
        let mut v = body();
        mutate(&mut v);
        parse(&v).unwrap_err().param
    }

    #[test]
    fn every_rejection_names_its_field() {
        assert_eq!(param_of(|v| v["payment_orders"] = json!([])), "payment_orders");
        assert_eq!(
            param_of(|v| v["payment_orders"][1]["payment_order_id"] = json!("po-1")),
            "payment_orders[1].payment_order_id"
        );
        assert_eq!(param_of(|v| v["payment_orders"][0]["amount"] = json!("10.005")), "payment_orders[0].amount");
        assert_eq!(param_of(|v| v["payment_orders"][1]["amount"] = json!("1.5")), "payment_orders[1].amount");
        assert_eq!(param_of(|v| v["payment_orders"][0]["amount"] = json!(10.5)), "payment_orders[0].amount");
        assert_eq!(param_of(|v| v["payment_orders"][0]["currency"] = json!("XYZ")), "payment_orders[0].currency");
        assert_eq!(
            param_of(|v| {
                v.as_object_mut().unwrap().remove("checkout_id");
            }),
            "checkout_id"
        );
        assert_eq!(
            param_of(|v| v["credit_card_info"] = json!({"token": "4242424242424242"})),
            "credit_card_info.token"
        );
        assert_eq!(
            param_of(|v| v["credit_card_info"]["number"] = json!("4242424242424242")),
            "credit_card_info.number"
        );
        assert_eq!(param_of(|v| v["buyer_info"]["note"] = json!("4111 1111 1111 1111")), "buyer_info");
        assert_eq!(param_of(|v| v["extra"] = json!(1)), "extra");
        assert_eq!(param_of(|v| v["buyer_info"] = json!({})), "buyer_info.buyer_id");
    }

    /// A card number anywhere in an id, the e-mail, the token or the buyer object (keys too) is
    /// refused, naming the field, with the same advice to use a PSP token.
    #[test]
    fn a_card_number_in_any_field_is_refused_naming_it() {
        for (param, path, value) in [
            ("checkout_id", "checkout_id", "chk-4111111111111111"),
            ("payment_orders[1].payment_order_id", "payment_orders/1/payment_order_id", "po-4111111111111111"),
            ("payment_orders[0].seller_account", "payment_orders/0/seller_account", "s-4111.1111.1111.1111"),
            ("buyer_info.buyer_id", "buyer_info/buyer_id", "b-4111111111111111"),
            ("buyer_info.email", "buyer_info/email", "4111111111111111@example.com"),
            ("credit_card_info.token", "credit_card_info/token", "tok_4111111111111111"),
            ("buyer_info", "buyer_info/note", "pan 4111111111111111 exp 12/27"),
            ("buyer_info", "buyer_info/name", "４１１１ １１１１ １１１１ １１１１"),
        ] {
            let mut v = body();
            let field = path.split('/').fold(&mut v, |at, key| match key.parse::<usize>() {
                Ok(i) => &mut at[i],
                Err(_) => &mut at[key],
            });
            *field = json!(value);
            let err = parse(&v).unwrap_err();
            assert_eq!(err.param, param, "{value}");
            assert!(err.message.contains("card number") && err.message.contains("PSP token"), "{err}");
        }
        let mut v = body();
        v["buyer_info"]["4111111111111111"] = json!("a card number as a key");
        assert_eq!(parse(&v).unwrap_err().param, "buyer_info");
    }

    /// Ids and buyer data with digits that are not card numbers still pass.
    #[test]
    fn ordinary_digits_pass() {
        let mut v = body();
        v["checkout_id"] = json!("chk-1001-1");
        v["buyer_info"]["phone"] = json!("010-1234-5678");
        v["buyer_info"]["placed_at"] = json!("2026-11-30T12:34:56.789Z");
        v["buyer_info"]["ref"] = json!("20261130123456789");
        v["payment_orders"][0]["payment_order_id"] = json!("chk-1001-1");
        assert!(parse(&v).is_ok());
    }

    #[test]
    fn hosted_checkouts_follow_the_psp_order_id_rules_and_one_currency() {
        let hosted = |id: &str, cur2: &str| {
            let body = json!({
                "checkout_id": id,
                "buyer_info": {"buyer_id": "b"},
                "payment_orders": [
                    {"seller_account": "s1", "amount": "1000", "currency": "KRW", "payment_order_id": "p1"},
                    {"seller_account": "s2", "amount": "2000", "currency": cur2, "payment_order_id": "p2"}
                ]
            });
            NewCheckout::parse(hosted_draft_from_json(&body)?)
        };
        let ok = hosted("order-123", "KRW").unwrap();
        assert_eq!(ok.payment, PaymentMethod::Hosted);
        assert_eq!(ok.total().unwrap().amount_minor(), 3000);
        assert_eq!(hosted("a.b.c.d", "KRW").unwrap_err().param, "checkout_id");
        assert_eq!(hosted("short", "KRW").unwrap_err().param, "checkout_id");
        assert_eq!(hosted("order-123", "USD").unwrap_err().param, "payment_orders");
    }
}
