//! `GET /v1/payment_intents/search`: the subset of Stripe's search query
//! language the platform needs to find an intent by its business key after a
//! lost response — a single metadata equality clause,
//! `metadata['<key>']:'<value>'` (single or double quotes, as Stripe allows).
//!
//! Like Stripe's, the search index is eventually consistent: an intent
//! appears in results only once `SimConfig::stripe_search_lag_ms` has
//! passed since its creation (default 0: at once), while
//! `GET /v1/payment_intents/{id}` sees it immediately. Stripe warns against
//! search in read-after-write flows (new data is normally searchable within
//! a minute, later during outages); a lag lets tests show what a lookup
//! that relies on search misses. Once indexed, an intent is shown as it is
//! now (Stripe may briefly show older field values; the simulator does
//! not).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error::{ApiError, json_bytes, json_response};
use super::intent::PaymentIntent;
use super::params::{self, LIST_LIMIT_DEFAULT, Params, parse_limit};
use crate::clock::now_ms;
use crate::state::SimState;

/// The search endpoint, also the `url` of its results.
pub const SEARCH_URL: &str = "/v1/payment_intents/search";

/// Prefix of our opaque `page` cursors; the rest is an offset.
const PAGE_CURSOR_PREFIX: &str = "page_";

/// A parsed search request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchRequest {
    pub metadata_key: String,
    pub metadata_value: String,
    pub limit: usize,
    /// Index of the first result to return (decoded from `page`).
    pub offset: usize,
}

impl SearchRequest {
    /// Validates the query-string parameters of a search.
    pub fn from_params(params: &Params) -> Result<Self, ApiError> {
        let mut query = None;
        let mut limit = LIST_LIMIT_DEFAULT;
        let mut offset = 0;
        for (name, value) in params {
            match name.as_str() {
                "query" => query = Some(value.as_str()),
                "limit" => limit = parse_limit(value)?,
                "page" => offset = parse_page(value)?,
                _ => {
                    return Err(ApiError::ParameterUnknown { param: name.clone() });
                }
            }
        }
        let query = query.ok_or_else(|| ApiError::ParameterMissing { param: "query".to_owned() })?;
        let (metadata_key, metadata_value) = parse_query(query)?;
        Ok(Self { metadata_key, metadata_value, limit, offset })
    }
}

/// The `next_page` cursor for results continuing at `offset`.
pub fn page_cursor(offset: usize) -> String {
    format!("{PAGE_CURSOR_PREFIX}{offset}")
}

fn parse_page(value: &str) -> Result<usize, ApiError> {
    value.strip_prefix(PAGE_CURSOR_PREFIX).and_then(|offset| offset.parse().ok()).ok_or_else(|| {
        ApiError::ParameterInvalid {
            param: "page".to_owned(),
            code: None,
            message: format!("Invalid page cursor: {value}"),
        }
    })
}

/// Parses `metadata['<key>']:'<value>'` into `(key, value)`.
fn parse_query(query: &str) -> Result<(String, String), ApiError> {
    let unsupported = || ApiError::ParameterInvalid {
        param: "query".to_owned(),
        code: None,
        message: format!(
            "Unsupported search query: {query}. The simulator supports exactly one clause of \
             the form metadata['<key>']:'<value>'."
        ),
    };
    let rest = query.trim().strip_prefix("metadata[").ok_or_else(unsupported)?;
    let (key, rest) = quoted(rest).ok_or_else(unsupported)?;
    let rest = rest.strip_prefix("]:").ok_or_else(unsupported)?;
    let (value, rest) = quoted(rest).ok_or_else(unsupported)?;
    if key.is_empty() || !rest.is_empty() {
        return Err(unsupported());
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Splits `'text'rest` (or `"text"rest`) into `(text, rest)`.
fn quoted(input: &str) -> Option<(&str, &str)> {
    let quote = input.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = &input[quote.len_utf8()..];
    let end = body.find(quote)?;
    Some((&body[..end], &body[end + quote.len_utf8()..]))
}

/// Stripe's `search_result` list object.
#[derive(Serialize)]
struct SearchResult {
    object: &'static str,
    data: Vec<PaymentIntent>,
    has_more: bool,
    next_page: Option<String>,
    url: &'static str,
}

/// `GET /v1/payment_intents/search?query=metadata['k']:'v'`
pub async fn search_intents(State(sim): State<Arc<SimState>>, RawQuery(query): RawQuery) -> Response {
    let request = match params::parse_form(query.unwrap_or_default().as_bytes())
        .and_then(|params| SearchRequest::from_params(&params))
    {
        Ok(request) => request,
        Err(error) => return error.into_response(),
    };
    // Only intents old enough to have reached the (lagging) search index.
    let indexed_until_ms = now_ms().saturating_sub(sim.stripe_search_lag_ms);
    let matches = sim
        .with_ledger(|ledger| ledger.search_metadata(&request.metadata_key, &request.metadata_value, indexed_until_ms));
    let end = request.offset.saturating_add(request.limit);
    let has_more = matches.len() > end;
    let data = matches.into_iter().skip(request.offset).take(request.limit).collect();
    let result = SearchResult {
        object: "search_result",
        data,
        has_more,
        next_page: has_more.then(|| page_cursor(end)),
        url: SEARCH_URL,
    };
    json_response(StatusCode::OK, json_bytes(&result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(items: &[(&str, &str)]) -> Params {
        items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Both quote styles parse; defaults apply.
    #[test]
    fn parses_metadata_clause() {
        for query in ["metadata['payment_order_id']:'po_1'", " metadata[\"payment_order_id\"]:\"po_1\" "] {
            let request = SearchRequest::from_params(&params(&[("query", query)])).unwrap();
            assert_eq!(request.metadata_key, "payment_order_id");
            assert_eq!(request.metadata_value, "po_1");
            assert_eq!(request.limit, LIST_LIMIT_DEFAULT);
            assert_eq!(request.offset, 0);
        }
    }

    /// Anything beyond one metadata clause is rejected.
    #[test]
    fn rejects_other_queries() {
        for query in [
            "status:'succeeded'",
            "metadata['a']:'b' AND status:'succeeded'",
            "metadata['a']:'b",
            "metadata[a]:'b'",
            "metadata['']:'b'",
            "",
        ] {
            let result = SearchRequest::from_params(&params(&[("query", query)]));
            assert!(matches!(result, Err(ApiError::ParameterInvalid { .. })), "{query}");
        }
        assert!(SearchRequest::from_params(&params(&[])).is_err());
        assert!(SearchRequest::from_params(&params(&[("query", "metadata['a']:'b'"), ("x", "1")])).is_err());
    }

    /// `limit` is bounded and `page` round-trips through our cursor.
    #[test]
    fn parses_paging() {
        let q = ("query", "metadata['a']:'b'");
        let request = SearchRequest::from_params(&params(&[q, ("limit", "2"), ("page", &page_cursor(4))])).unwrap();
        assert_eq!((request.limit, request.offset), (2, 4));
        assert!(SearchRequest::from_params(&params(&[q, ("limit", "0")])).is_err());
        assert!(SearchRequest::from_params(&params(&[q, ("limit", "101")])).is_err());
        assert!(SearchRequest::from_params(&params(&[q, ("page", "bogus")])).is_err());
    }
}
