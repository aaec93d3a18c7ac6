//! The Toss payouts v2 objects (sellers, payouts), their store, and Toss's v2 envelope,
//! errors and list pages.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::{PayoutRecord, Payouts, jwe};
use crate::execution::{Reply, Wire};
use crate::state::random_alnum;

/// `version` of every answer and event.
pub const VERSION: &str = "2022-11-16";
/// Items of one payout request, at most.
pub const ITEMS_MAX: usize = 100;
/// Longest `refPayoutId`, `refSellerId`, name and other free texts.
pub const TEXT_LEN_MAX: usize = 100;
/// Longest `transactionDescription`, in characters.
pub const DESCRIPTION_CHARS_MAX: usize = 7;
/// Largest payout, in won.
pub const AMOUNT_MAX: u64 = 1_000_000_000;
/// List page sizes.
pub const LIST_LIMIT_DEFAULT: usize = 10;
/// See [`LIST_LIMIT_DEFAULT`].
pub const LIST_LIMIT_MAX: usize = 10_000;
/// Random characters of generated ids.
pub const ID_RANDOM_LEN: usize = 20;

/// The caller's secret key.
#[derive(Clone, Debug)]
pub struct TossAccount(pub String);

/// A registered seller.
#[derive(Clone, Debug)]
pub struct Seller {
    pub id: String,
    pub ref_seller_id: String,
    pub status: &'static str,
    pub body: Value,
}

impl Seller {
    pub fn json(&self) -> Value {
        let mut body = self.body.clone();
        body["id"] = json!(self.id);
        body["refSellerId"] = json!(self.ref_seller_id);
        body["status"] = json!(self.status);
        body
    }
}

/// A payout's failure: Toss's `error{code, message}`.
pub type Failure = (&'static str, &'static str);

/// A payout.
#[derive(Clone, Debug)]
pub struct Payout {
    pub id: String,
    pub reference: String,
    pub destination: String,
    pub amount: u64,
    pub description: String,
    pub status: &'static str,
    pub error: Option<Failure>,
    pub requested_at: String,
    pub payout_date: String,
    pub metadata: Value,
    pub created_at_ms: u64,
    pub seq: u64,
}

impl Payout {
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "refPayoutId": self.reference,
            "destination": self.destination,
            "scheduleType": "EXPRESS",
            "payoutDate": self.payout_date,
            "amount": {"currency": "KRW", "value": self.amount},
            "transactionDescription": self.description,
            "requestedAt": self.requested_at,
            "status": self.status,
            "error": self.error.map(|(code, message)| json!({"code": code, "message": message})),
            "metadata": self.metadata,
        })
    }
}

/// Toss's sellers and payouts.
#[derive(Default)]
pub struct TossBook {
    pub sellers: HashMap<String, Seller>,
    /// Seller ids, oldest first.
    pub seller_order: Vec<String>,
    /// Payouts, oldest first.
    pub payouts: Vec<Payout>,
}

impl TossBook {
    /// Every payout for `/_sim/payouts`.
    pub fn records(&self) -> Vec<PayoutRecord> {
        self.payouts
            .iter()
            .map(|p| PayoutRecord {
                provider: "toss_payouts",
                id: p.id.clone(),
                reference: Some(p.reference.clone()),
                destination: p.destination.clone(),
                amount: p.amount,
                currency: "KRW".to_owned(),
                status: p.status.to_owned(),
                failure_code: p.error.map(|(code, _)| code.to_owned()),
                created_at_ms: p.created_at_ms,
                seq: p.seq,
            })
            .collect()
    }

    pub fn payout_mut(&mut self, id: &str) -> Option<&mut Payout> {
        self.payouts.iter_mut().find(|p| p.id == id)
    }
}

/// A refusal in Toss's envelope.
pub struct TossError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

pub fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> TossError {
    TossError { status, code, message: message.into() }
}

pub fn invalid(message: impl Into<String>) -> TossError {
    error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
}

pub fn envelope(entity_type: Option<&str>, body: Value, error: Value) -> Value {
    let trace: String = random_alnum(32).to_ascii_lowercase();
    json!({"version": VERSION, "traceId": trace, "entityType": entity_type, "entityBody": body, "error": error})
}

impl TossError {
    /// The plain reply (never stored: nothing was made).
    pub fn reply(&self) -> Reply {
        let body = envelope(None, Value::Null, json!({"code": self.code, "message": self.message}));
        Reply::new(self.status, body.to_string().into(), false)
    }
}

impl IntoResponse for TossError {
    fn into_response(self) -> Response {
        let reply = self.reply();
        (reply.status, [(axum::http::header::CONTENT_TYPE, "application/json")], reply.body).into_response()
    }
}

/// A success, encrypted when the request was, stored for replay.
pub fn ok(payouts: &Payouts, encrypt: bool, entity_type: &str, body: Value) -> Reply {
    let text = envelope(Some(entity_type), body, Value::Null).to_string();
    let text = if encrypt { jwe::encrypt(&payouts.security_key, text.as_bytes()) } else { text };
    Reply::new(StatusCode::OK, text.into(), true)
}

/// Toss's error shapes for the shared POST flow.
pub struct TossPayoutWire;

impl Wire for TossPayoutWire {
    fn key_reused(_key: &str) -> Reply {
        invalid("같은 멱등키(Idempotency-Key)로 다른 요청을 보낼 수 없습니다.").reply()
    }
    fn server_error() -> Reply {
        error(StatusCode::INTERNAL_SERVER_ERROR, "FAILED_INTERNAL_SYSTEM_PROCESSING", "일시적인 오류가 발생했습니다.")
            .reply()
    }
    fn rate_limited() -> Reply {
        error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "요청이 너무 많습니다. 잠시 후 다시 시도해주세요.")
            .reply()
    }
}

pub fn text(object: &Value, name: &str, len_max: usize) -> Result<String, TossError> {
    match object.get(name).and_then(Value::as_str) {
        Some(t) if !t.is_empty() && t.chars().count() <= len_max => Ok(t.to_owned()),
        Some(t) if !t.is_empty() => Err(invalid(format!("{name}은(는) 최대 {len_max}자입니다."))),
        _ => Err(invalid(format!("필수 파라미터 {name}이(가) 누락되었습니다."))),
    }
}

pub fn mask(number: &str) -> String {
    let n = number.chars().count();
    number.chars().enumerate().map(|(i, c)| if i + 4 < n { '*' } else { c }).collect()
}

pub fn plain(body: Value) -> Response {
    (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// One page of `items` (oldest first in storage, newest first on the wire).
pub fn page(items: Vec<(String, Value)>, query: &HashMap<String, String>) -> Result<Value, TossError> {
    let limit = match query.get("limit") {
        None => LIST_LIMIT_DEFAULT,
        Some(l) => l
            .parse()
            .ok()
            .filter(|l| (1..=LIST_LIMIT_MAX).contains(l))
            .ok_or_else(|| invalid("limit이 올바르지 않습니다."))?,
    };
    let mut newest_first = items.into_iter().rev().peekable();
    if let Some(after) = query.get("startingAfter") {
        if !newest_first.clone().any(|(id, _)| &id == after) {
            return Err(invalid("startingAfter가 올바르지 않습니다."));
        }
        for (id, _) in newest_first.by_ref() {
            if &id == after {
                break;
            }
        }
    }
    let chosen: Vec<(String, Value)> = newest_first.by_ref().take(limit).collect();
    let has_next = newest_first.peek().is_some();
    let last = chosen.last().map(|(id, _)| id.clone());
    Ok(
        json!({"items": chosen.into_iter().map(|(_, v)| v).collect::<Vec<_>>(), "hasNext": has_next, "lastCursor": last}),
    )
}
