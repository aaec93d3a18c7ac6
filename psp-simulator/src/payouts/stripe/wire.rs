//! Stripe Connect objects (accounts, payouts), their store, Stripe's error shape, form
//! parameters and list pages.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::PayoutRecord;
use crate::execution::Reply;
use crate::stripe::params::{AMOUNT_MAX, LIST_LIMIT_DEFAULT, Params, parse_limit};

/// Random characters of generated ids.
pub const ID_RANDOM_LEN: usize = 16;
/// Longest free-text parameter.
pub const TEXT_LEN_MAX: usize = 500;
/// What a connected account waiting for identification still has to provide.
pub const VERIFICATION_DUE: &str = "individual.verification.document";

/// The caller's API key.
#[derive(Clone, Debug)]
pub struct ApiKey(pub String);

/// A custom connected account.
#[derive(Clone, Debug)]
pub struct Account {
    pub payouts_enabled: bool,
    pub body: Value,
    /// Available balance per lower-case currency, minor units.
    pub balance: HashMap<String, u64>,
}

impl Account {
    pub fn json(&self) -> Value {
        let mut body = self.body.clone();
        let due: Vec<&str> = if self.payouts_enabled { vec![] } else { vec![VERIFICATION_DUE] };
        body["payouts_enabled"] = json!(self.payouts_enabled);
        body["capabilities"] = json!({"transfers": if self.payouts_enabled { "active" } else { "inactive" }});
        body["requirements"] = json!({
            "currently_due": due, "eventually_due": due, "past_due": [],
            "disabled_reason": if self.payouts_enabled { Value::Null } else { json!("requirements.pending_verification") },
        });
        body
    }
}

/// A payout from a connected account.
#[derive(Clone, Debug)]
pub struct Payout {
    pub account: String,
    pub body: Value,
    pub seq: u64,
    pub created_at_ms: u64,
}

impl Payout {
    pub fn status(&self) -> &str {
        self.body["status"].as_str().unwrap_or_default()
    }
}

/// Connected accounts, transfers and payouts.
#[derive(Default)]
pub struct ConnectBook {
    pub accounts: HashMap<String, Account>,
    /// Transfers, oldest first.
    pub transfers: Vec<Value>,
    /// Payouts, oldest first.
    pub payouts: Vec<Payout>,
}

impl ConnectBook {
    /// Every payout for `/_sim/payouts`.
    pub fn records(&self) -> Vec<PayoutRecord> {
        self.payouts
            .iter()
            .map(|p| PayoutRecord {
                provider: "stripe_connect",
                id: p.body["id"].as_str().unwrap_or_default().to_owned(),
                reference: p.body["metadata"]["payout_reference"].as_str().map(str::to_owned),
                destination: p.account.clone(),
                amount: p.body["amount"].as_u64().unwrap_or_default(),
                currency: p.body["currency"].as_str().unwrap_or_default().to_ascii_uppercase(),
                status: p.status().to_owned(),
                failure_code: p.body["failure_code"].as_str().map(str::to_owned),
                created_at_ms: p.created_at_ms,
                seq: p.seq,
            })
            .collect()
    }

    pub fn payout_mut(&mut self, account: &str, id: &str) -> Option<&mut Payout> {
        self.payouts.iter_mut().find(|p| p.account == account && p.body["id"] == id)
    }
}

/// A Stripe error reply: `{"error": {type, code, message, param}}`, never stored.
pub fn refusal(status: StatusCode, code: Option<&str>, message: &str, param: Option<&str>) -> Reply {
    let body = json!({"error": {"type": "invalid_request_error", "code": code, "message": message, "param": param}});
    Reply::new(status, body.to_string().into(), false)
}

pub fn respond(reply: Reply) -> Response {
    (reply.status, [(axum::http::header::CONTENT_TYPE, "application/json")], reply.body).into_response()
}

pub fn stored(object: &Value) -> Reply {
    Reply::new(StatusCode::OK, object.to_string().into(), true)
}

/// The parameters as a map; one outside `allowed` (or a prefix ending in `[`) is refused.
pub fn known(params: &Params, allowed: &[&str]) -> Result<BTreeMap<String, String>, Reply> {
    let mut map = BTreeMap::new();
    for (name, value) in params {
        let ok = allowed
            .iter()
            .any(|a| if a.ends_with('[') { name.starts_with(a) && name.ends_with(']') } else { name == a });
        if !ok {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                Some("parameter_unknown"),
                &format!("Received unknown parameter: {name}"),
                Some(name),
            ));
        }
        if value.len() > TEXT_LEN_MAX {
            return Err(refusal(
                StatusCode::BAD_REQUEST,
                Some("parameter_invalid"),
                &format!("{name} is too long"),
                Some(name),
            ));
        }
        map.insert(name.clone(), value.clone());
    }
    Ok(map)
}

pub fn required<'a>(map: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, Reply> {
    map.get(name).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| {
        refusal(
            StatusCode::BAD_REQUEST,
            Some("parameter_missing"),
            &format!("Missing required param: {name}."),
            Some(name),
        )
    })
}

pub fn metadata(map: &BTreeMap<String, String>) -> Value {
    let pairs: serde_json::Map<String, Value> = map
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?.to_owned(), json!(v))))
        .collect();
    Value::Object(pairs)
}

pub fn amount_and_currency(map: &BTreeMap<String, String>) -> Result<(u64, String), Reply> {
    let amount = required(map, "amount")?.parse::<u64>().ok().filter(|a| (1..=AMOUNT_MAX).contains(a));
    let amount = amount.ok_or_else(|| {
        refusal(StatusCode::BAD_REQUEST, Some("parameter_invalid_integer"), "Invalid positive integer", Some("amount"))
    })?;
    let currency = required(map, "currency")?.to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(refusal(StatusCode::BAD_REQUEST, None, &format!("Invalid currency: {currency}"), Some("currency")));
    }
    Ok((amount, currency))
}

/// A list page of `items` (oldest first in storage, newest first on the wire).
pub fn list(items: Vec<Value>, query: &HashMap<String, String>, url: &str) -> Response {
    let limit = match query.get("limit").map(|l| parse_limit(l)) {
        None => LIST_LIMIT_DEFAULT,
        Some(Ok(limit)) => limit,
        Some(Err(e)) => return e.into_response(),
    };
    let mut newest_first: Vec<Value> = items.into_iter().rev().collect();
    if let Some(after) = query.get("starting_after") {
        match newest_first.iter().position(|item| item["id"] == after.as_str()) {
            Some(index) => newest_first.drain(..=index).for_each(drop),
            None => {
                let message = format!("No such object: '{after}'");
                return respond(refusal(
                    StatusCode::BAD_REQUEST,
                    Some("resource_missing"),
                    &message,
                    Some("starting_after"),
                ));
            }
        }
    }
    let has_more = newest_first.len() > limit;
    newest_first.truncate(limit);
    respond(stored(&json!({"object": "list", "data": newest_first, "has_more": has_more, "url": url})))
}

pub fn no_account() -> Reply {
    refusal(StatusCode::BAD_REQUEST, None, "The simulator pays out connected accounts only: send Stripe-Account.", None)
}

pub fn no_payout(id: &str) -> Reply {
    refusal(StatusCode::NOT_FOUND, Some("resource_missing"), &format!("No such payout: '{id}'"), Some("id"))
}
