//! `GET /v1/balance_transactions`: Stripe's ledger of captures (`charge`)
//! and refunds (`refund`) with their fees, newest first, filtered by
//! `created[gte|gt|lte|lt]` and `type` (`charge`, `refund`; any other
//! Stripe type matches nothing here), paged with `limit` / `starting_after`.
//!
//! `expand[]=data.source` (also `expand[0]=...`, any index) answers each
//! `source` as the expanded Charge or Refund object instead of its id (see
//! `balance_source.rs`); expanding anything else is Stripe's 400
//! `invalid_request_error` "This property cannot be expanded (...)." with
//! `param: "expand"`.
//!
//! `available_on` is midnight UTC of the paid-out date; `status` is
//! `available` from then on and `pending` before.
//!
//! The items are the reported lines (`settlement::reported_entries`), so
//! the configured settlement breaks show here as in the CSV. A line
//! duplicated by a break repeats its id; so that `starting_after` (which
//! resumes after the *last* line with that id) neither loses nor repeats a
//! copy, a page never ends between a line and its copies — such a page
//! holds up to one more item per copy than `limit`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::balance_source::expanded_source;
use super::error::{ApiError, json_bytes, json_response};
use super::params::{LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, Params, parse_form};
use crate::clock::unix_now;
use crate::ledger::Psp;
use crate::settlement::{Entry, reported_entries};
use crate::state::SimState;

const LIST_URL: &str = "/v1/balance_transactions";
/// The one expansion the list supports.
const EXPAND_SOURCE: &str = "data.source";

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
    /// The `ch_...` / `re_...` id, or the object when expanded.
    source: Value,
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
    fn from_entry(entry: Entry, now: u64, source: Value) -> Self {
        let available_on = entry.paid_out_date.midnight_unix(0);
        let available = i64::try_from(now).is_ok_and(|now| now >= available_on);
        let fee_details = (entry.fee_minor != 0)
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
            source,
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
    /// Only transactions of this `type`.
    kind: Option<String>,
    /// Whether `source` is expanded.
    expand_source: bool,
}

fn list_query(params: &Params) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery {
        created_from: 0,
        created_until: u64::MAX,
        limit: LIST_LIMIT_DEFAULT,
        starting_after: None,
        kind: None,
        expand_source: false,
    };
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
            "created[gt]" => query.created_from = query.created_from.max(integer()?.saturating_add(1)),
            "created[lt]" => query.created_until = query.created_until.min(integer()?),
            "created[lte]" => query.created_until = query.created_until.min(integer()?.saturating_add(1)),
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
            "type" if value.is_empty() => {
                return Err(ApiError::ParameterInvalid {
                    param: "type".to_owned(),
                    code: Some("parameter_invalid_empty"),
                    message: "You passed an empty string for 'type'.".to_owned(),
                });
            }
            "type" => query.kind = Some(value.clone()),
            _ if is_expand(name) && value == EXPAND_SOURCE => query.expand_source = true,
            _ if is_expand(name) => {
                return Err(ApiError::ParameterInvalid {
                    param: "expand".to_owned(),
                    code: None,
                    message: format!("This property cannot be expanded ({value})."),
                });
            }
            _ => {
                return Err(ApiError::ParameterUnknown { param: name.clone() });
            }
        }
    }
    Ok(query)
}

/// `expand[]` or `expand[<index>]`.
fn is_expand(name: &str) -> bool {
    name.strip_prefix("expand[")
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|index| index.bytes().all(|b| b.is_ascii_digit()))
}

/// Stripe's `list` object.
#[derive(Serialize)]
struct List {
    object: &'static str,
    data: Vec<BalanceTransaction>,
    has_more: bool,
    url: &'static str,
}

/// One page of `newest_first` (already filtered): the entries after the
/// last one with the cursor's id, `limit` of them plus any copies of the
/// last, and whether more follow.
fn page(newest_first: Vec<Entry>, query: &ListQuery) -> Result<(Vec<Entry>, bool), ApiError> {
    let start = match &query.starting_after {
        Some(id) => match newest_first.iter().rposition(|entry| &entry.transaction_id == id) {
            Some(index) => index + 1,
            None => return Err(ApiError::NoSuchBalanceTransaction { id: id.clone() }),
        },
        None => 0,
    };
    let mut rest = newest_first.into_iter().skip(start).peekable();
    let mut data: Vec<Entry> = rest.by_ref().take(query.limit).collect();
    if let Some(last_id) = data.last().map(|entry| entry.transaction_id.clone()) {
        while let Some(copy) = rest.next_if(|entry| entry.transaction_id == last_id) {
            data.push(copy);
        }
    }
    let has_more = rest.peek().is_some();
    Ok((data, has_more))
}

/// `GET /v1/balance_transactions`
pub async fn list_balance_transactions(State(sim): State<Arc<SimState>>, RawQuery(raw): RawQuery) -> Response {
    let query = match parse_form(raw.unwrap_or_default().as_bytes()).and_then(|p| list_query(&p)) {
        Ok(query) => query,
        Err(error) => return error.into_response(),
    };
    let mut matching: Vec<Entry> = reported_entries(&sim, Psp::Stripe)
        .into_iter()
        .filter(|entry| (query.created_from..query.created_until).contains(&entry.created))
        .filter(|entry| query.kind.as_deref().is_none_or(|kind| kind == entry.kind.as_str()))
        .collect();
    matching.reverse();
    let (entries, has_more) = match page(matching, &query) {
        Ok(page) => page,
        Err(error) => return error.into_response(),
    };
    let now = unix_now();
    let data = sim.with_ledger(|ledger| {
        entries
            .into_iter()
            .map(|entry| {
                let source = if query.expand_source {
                    expanded_source(ledger, &entry)
                } else {
                    Value::String(entry.source.clone())
                };
                BalanceTransaction::from_entry(entry, now, source)
            })
            .collect()
    });
    let list = List { object: "list", data, has_more, url: LIST_URL };
    json_response(StatusCode::OK, json_bytes(&list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Date;
    use crate::settlement::EntryKind;

    fn query(text: &str) -> Result<ListQuery, ApiError> {
        list_query(&parse_form(text.as_bytes()).expect("test query is valid form encoding"))
    }

    fn entry(id: &str) -> Entry {
        let date = Date::from_days(0);
        Entry {
            psp: Psp::Stripe,
            kind: EntryKind::Charge,
            transaction_id: id.to_owned(),
            source: "ch_1".to_owned(),
            payment_reference: "pi_1".to_owned(),
            order_id: None,
            amount_minor: 100,
            fee_minor: 33,
            net_minor: 67,
            currency: "usd".to_owned(),
            created: 0,
            sold_date: date,
            paid_out_date: date,
            reason: None,
        }
    }

    fn ids(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|entry| entry.transaction_id.as_str()).collect()
    }

    /// `expand[]` / `expand[0]` (also percent-encoded) take only
    /// `data.source`; `type` filters; anything else is refused as Stripe
    /// refuses it.
    #[test]
    fn parses_expand_and_type() {
        for text in ["expand[]=data.source", "expand%5B%5D=data.source", "expand[0]=data.source"] {
            assert!(query(text).unwrap().expand_source, "{text}");
        }
        assert!(!query("").unwrap().expand_source);
        assert_eq!(query("type=refund").unwrap().kind.as_deref(), Some("refund"));
        let ApiError::ParameterInvalid { param, code, message } = query("expand[]=data.customer").err().unwrap() else {
            panic!("an invalid parameter");
        };
        assert_eq!(
            (param.as_str(), code, message.as_str()),
            ("expand", None, "This property cannot be expanded (data.customer).")
        );
        assert!(matches!(query("type="), Err(ApiError::ParameterInvalid { .. })));
        assert!(matches!(query("expand=data.source"), Err(ApiError::ParameterUnknown { .. })));
        assert!(matches!(query("expand[x]=data.source"), Err(ApiError::ParameterUnknown { .. })));
    }

    /// A page never ends between a duplicated line and its copy, and the
    /// cursor resumes after the last copy: limit 1 walks every line once.
    #[test]
    fn pages_keep_duplicates_together() {
        let lines = || vec![entry("txn_3"), entry("txn_2"), entry("txn_2"), entry("txn_1")];
        let one = query("limit=1").unwrap();
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let paged = ListQuery { starting_after: cursor.clone(), ..query("limit=1").unwrap() };
            let (data, has_more) = page(lines(), &paged).unwrap();
            seen.extend(ids(&data).into_iter().map(str::to_owned));
            cursor = data.last().map(|entry| entry.transaction_id.clone());
            if !has_more {
                break;
            }
        }
        assert_eq!(seen, ["txn_3", "txn_2", "txn_2", "txn_1"]);
        let (first, more) = page(lines(), &ListQuery { starting_after: Some("txn_3".to_owned()), ..one }).unwrap();
        assert_eq!((ids(&first), more), (vec!["txn_2", "txn_2"], true));
        let unknown = ListQuery { starting_after: Some("txn_9".to_owned()), ..query("").unwrap() };
        assert!(matches!(page(lines(), &unknown), Err(ApiError::NoSuchBalanceTransaction { .. })));
    }
}
