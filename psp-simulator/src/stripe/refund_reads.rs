//! `GET /v1/refunds` and `GET /v1/refunds/{id}`: reading refunds back.
//!
//! A platform whose `POST /v1/refunds` got no answer finds out whether the
//! refund happened by listing the intent's refunds and looking for the
//! `metadata` it sent (e.g. `metadata[refund_id]`); each refund object
//! carries the metadata given at its creation.
//!
//! The list is Stripe's `list` object, newest first, optionally only the
//! refunds of one intent (`payment_intent`), paged with `limit` (1 to 100,
//! default 10) and `starting_after` (the id of the last refund of the
//! previous page). Stripe's other list parameters (`charge`, `created`,
//! `ending_before`, `expand`) are not simulated and are refused as unknown
//! parameters, as any unknown parameter is.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{ApiError, json_bytes, json_response};
use super::params::{LIST_LIMIT_DEFAULT, Params, parse_form, parse_limit};
use super::refunds::Refund;
use crate::state::SimState;

/// The list endpoint, also the `url` of its lists.
pub const LIST_URL: &str = "/v1/refunds";

/// Validated parameters of `GET /v1/refunds`.
#[derive(Debug, PartialEq, Eq)]
struct ListQuery {
    /// Only this intent's refunds.
    payment_intent: Option<String>,
    limit: usize,
    /// Only refunds older than this one.
    starting_after: Option<String>,
}

fn list_query(params: &Params) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery { payment_intent: None, limit: LIST_LIMIT_DEFAULT, starting_after: None };
    for (name, value) in params {
        match name.as_str() {
            "payment_intent" => query.payment_intent = Some(value.clone()),
            "limit" => query.limit = parse_limit(value)?,
            "starting_after" => query.starting_after = Some(value.clone()),
            _ => return Err(ApiError::ParameterUnknown { param: name.clone() }),
        }
    }
    Ok(query)
}

/// Stripe's `list` object of refunds.
#[derive(Serialize)]
struct RefundList {
    object: &'static str,
    url: &'static str,
    has_more: bool,
    data: Vec<Refund>,
}

/// One page of `newest_first` per `query`. The cursor is looked up among
/// all refunds, so it may name a refund of another intent: the page then
/// holds the matching refunds created before it, as with Stripe's cursors.
fn page(newest_first: Vec<Refund>, query: &ListQuery) -> Result<RefundList, ApiError> {
    let start = match &query.starting_after {
        Some(id) => match newest_first.iter().position(|refund| &refund.id == id) {
            Some(index) => index + 1,
            None => return Err(ApiError::NoSuchRefundCursor { id: id.clone() }),
        },
        None => 0,
    };
    let mut matching = newest_first
        .into_iter()
        .skip(start)
        .filter(|refund| query.payment_intent.as_ref().is_none_or(|intent| &refund.payment_intent == intent));
    let data: Vec<Refund> = matching.by_ref().take(query.limit).collect();
    let has_more = matching.next().is_some();
    Ok(RefundList { object: "list", url: LIST_URL, has_more, data })
}

/// `GET /v1/refunds[?payment_intent=pi_...&limit=N&starting_after=re_...]`
pub async fn list_refunds(State(sim): State<Arc<SimState>>, RawQuery(raw): RawQuery) -> Response {
    let query = match parse_form(raw.unwrap_or_default().as_bytes()).and_then(|params| list_query(&params)) {
        Ok(query) => query,
        Err(error) => return error.into_response(),
    };
    match page(sim.with_ledger(|ledger| ledger.stripe_refunds_newest_first()), &query) {
        Ok(list) => json_response(StatusCode::OK, json_bytes(&list)),
        Err(error) => error.into_response(),
    }
}

/// `GET /v1/refunds/{id}`
pub async fn retrieve_refund(State(sim): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    match sim.with_ledger(|ledger| ledger.stripe_refund(&id).cloned()) {
        Some(refund) => json_response(StatusCode::OK, json_bytes(&refund)),
        None => ApiError::NoSuchRefund { id }.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn query(text: &str) -> Result<ListQuery, ApiError> {
        list_query(&parse_form(text.as_bytes()).expect("test query is valid form encoding"))
    }

    /// Refunds `re_4` (newest) to `re_1`, alternately of `pi_a` and `pi_b`.
    fn refunds() -> Vec<Refund> {
        (1..=4)
            .rev()
            .map(|n| Refund {
                id: format!("re_{n}"),
                object: "refund",
                amount: 100,
                balance_transaction: format!("txn_{n}"),
                charge: "ch_1".to_owned(),
                created: 1_700_000_000 + n,
                currency: "usd".to_owned(),
                metadata: BTreeMap::new(),
                payment_intent: if n % 2 == 0 { "pi_b" } else { "pi_a" }.to_owned(),
                reason: None,
                status: "succeeded",
            })
            .collect()
    }

    fn ids(list: &RefundList) -> Vec<&str> {
        list.data.iter().map(|refund| refund.id.as_str()).collect()
    }

    /// Defaults, the three known parameters, bounded `limit`, unknown
    /// parameters refused.
    #[test]
    fn parses_list_parameters() {
        let defaults = query("").unwrap();
        assert_eq!(defaults, ListQuery { payment_intent: None, limit: 10, starting_after: None });
        let full = query("payment_intent=pi_a&limit=2&starting_after=re_3").unwrap();
        assert_eq!(full.payment_intent.as_deref(), Some("pi_a"));
        assert_eq!((full.limit, full.starting_after.as_deref()), (2, Some("re_3")));
        for bad in ["limit=0", "limit=101", "limit=two"] {
            assert!(matches!(query(bad), Err(ApiError::ParameterInvalid { .. })), "{bad}");
        }
        assert!(matches!(query("charge=ch_1"), Err(ApiError::ParameterUnknown { .. })));
    }

    /// Pages follow the cursor, the filter applies after it, `has_more`
    /// says whether a matching refund is left, and an unknown cursor is
    /// refused.
    #[test]
    fn pages_newest_first() {
        let first = page(refunds(), &query("limit=3").unwrap()).unwrap();
        assert_eq!((ids(&first), first.has_more), (vec!["re_4", "re_3", "re_2"], true));
        let rest = page(refunds(), &query("limit=3&starting_after=re_2").unwrap()).unwrap();
        assert_eq!((ids(&rest), rest.has_more), (vec!["re_1"], false));
        let only_a = page(refunds(), &query("payment_intent=pi_a&limit=1").unwrap()).unwrap();
        assert_eq!((ids(&only_a), only_a.has_more), (vec!["re_3"], true));
        let a_after_b = page(refunds(), &query("payment_intent=pi_a&starting_after=re_2").unwrap()).unwrap();
        assert_eq!((ids(&a_after_b), a_after_b.has_more), (vec!["re_1"], false));
        let exact = page(refunds(), &query("payment_intent=pi_b&limit=2").unwrap()).unwrap();
        assert_eq!((ids(&exact), exact.has_more), (vec!["re_4", "re_2"], false));
        let unknown = page(refunds(), &query("starting_after=re_9").unwrap());
        assert!(matches!(unknown, Err(ApiError::NoSuchRefundCursor { .. })));
    }
}
