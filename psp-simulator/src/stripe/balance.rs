//! `GET /v1/balance_transactions`: Stripe's ledger of captures (`charge`)
//! and refunds (`refund`) with their fees, newest first, filtered by
//! `created[gte|gt|lte|lt]` and paged with `limit` / `starting_after`.
//!
//! `available_on` is midnight UTC of the paid-out date; `status` is
//! `available` from then on and `pending` before.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{ApiError, json_bytes, json_response};
use super::params::{LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, Params, parse_form};
use crate::clock::unix_now;
use crate::ledger::Psp;
use crate::settlement::{Entry, entries};
use crate::state::SimState;

const LIST_URL: &str = "/v1/balance_transactions";

/// Stripe's `balance_transaction` object.
#[derive(Serialize)]
struct BalanceTransaction {
    id: String,
    object: &'static str,
    amount: i64,
    available_on: i64,
    created: u64,
    currency: String,
    description: Option<String>,
    fee: i64,
    fee_details: Vec<FeeDetail>,
    net: i64,
    reporting_category: &'static str,
    source: String,
    status: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct FeeDetail {
    amount: i64,
    currency: String,
    description: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
}

impl BalanceTransaction {
    fn from_entry(entry: Entry, now: u64) -> Self {
        let available_on = entry.paid_out_date.midnight_unix(0);
        let available = i64::try_from(now).is_ok_and(|now| now >= available_on);
        let fee_details = (entry.fee_minor > 0)
            .then(|| FeeDetail {
                amount: entry.fee_minor,
                currency: entry.currency.clone(),
                description: "Stripe processing fees",
                kind: "stripe_fee",
            })
            .into_iter()
            .collect();
        Self {
            id: entry.transaction_id,
            object: "balance_transaction",
            amount: entry.amount_minor,
            available_on,
            created: entry.created,
            currency: entry.currency,
            description: None,
            fee: entry.fee_minor,
            fee_details,
            net: entry.net_minor,
            reporting_category: entry.kind.as_str(),
            source: entry.source,
            status: if available { "available" } else { "pending" },
            kind: entry.kind.as_str(),
        }
    }
}

/// Validated list parameters.
struct ListQuery {
    /// Inclusive lower and exclusive upper bound on `created`.
    created_from: u64,
    created_until: u64,
    limit: usize,
    starting_after: Option<String>,
}

fn list_query(params: &Params) -> Result<ListQuery, ApiError> {
    let mut query =
        ListQuery { created_from: 0, created_until: u64::MAX, limit: LIST_LIMIT_DEFAULT, starting_after: None };
    for (name, value) in params {
        let integer = || {
            value.parse::<u64>().map_err(|_| ApiError::ParameterInvalid {
                param: name.clone(),
                code: Some("parameter_invalid_integer"),
                message: format!("Invalid integer: {value}"),
            })
        };
        match name.as_str() {
            "created[gte]" => query.created_from = query.created_from.max(integer()?),
            "created[gt]" => query.created_from = query.created_from.max(integer()? + 1),
            "created[lt]" => query.created_until = query.created_until.min(integer()?),
            "created[lte]" => query.created_until = query.created_until.min(integer()? + 1),
            "limit" => {
                query.limit = usize::try_from(integer()?)
                    .ok()
                    .filter(|limit| (1..=LIST_LIMIT_MAX).contains(limit))
                    .ok_or_else(|| ApiError::ParameterInvalid {
                        param: "limit".to_owned(),
                        code: Some("parameter_invalid_integer"),
                        message: format!("This value must be between 1 and {LIST_LIMIT_MAX}."),
                    })?;
            }
            "starting_after" => query.starting_after = Some(value.clone()),
            _ => {
                return Err(ApiError::ParameterUnknown { param: name.clone() });
            }
        }
    }
    Ok(query)
}

/// Stripe's `list` object.
#[derive(Serialize)]
struct List {
    object: &'static str,
    data: Vec<BalanceTransaction>,
    has_more: bool,
    url: &'static str,
}

/// `GET /v1/balance_transactions`
pub async fn list_balance_transactions(State(sim): State<Arc<SimState>>, RawQuery(raw): RawQuery) -> Response {
    let query = match parse_form(raw.unwrap_or_default().as_bytes()).and_then(|p| list_query(&p)) {
        Ok(query) => query,
        Err(error) => return error.into_response(),
    };
    let mut matching: Vec<Entry> = sim
        .with_ledger(|ledger| entries(ledger, Psp::Stripe))
        .into_iter()
        .filter(|entry| (query.created_from..query.created_until).contains(&entry.created))
        .collect();
    matching.reverse();
    let start = match &query.starting_after {
        Some(id) => match matching.iter().position(|entry| &entry.transaction_id == id) {
            Some(index) => index + 1,
            None => return ApiError::NoSuchBalanceTransaction { id: id.clone() }.into_response(),
        },
        None => 0,
    };
    let now = unix_now();
    let has_more = matching.len() > start + query.limit;
    let data = matching
        .into_iter()
        .skip(start)
        .take(query.limit)
        .map(|entry| BalanceTransaction::from_entry(entry, now))
        .collect();
    let list = List { object: "list", data, has_more, url: LIST_URL };
    json_response(StatusCode::OK, json_bytes(&list))
}
