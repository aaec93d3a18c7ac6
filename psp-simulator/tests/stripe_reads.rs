//! Black-box tests of Stripe's read endpoints as a platform uses them to
//! find what it wrote: search (eventually consistent) and refunds (listed
//! and retrieved, carrying the metadata given at creation).

mod common;

use std::time::{Duration, Instant};

use common::{Sim, confirmed_body, json};
use psp_simulator::SimConfig;
use reqwest::StatusCode;
use serde_json::Value;

/// The search lag of the lag test.
const SEARCH_LAG_MS: u64 = 300;
/// Bound on waiting for an intent to become searchable.
const SEARCHABLE_WAIT_MS_MAX: u64 = 5_000;
/// Pause between polls of the search endpoint.
const POLL_MS: u64 = 20;

/// `GET /v1/payment_intents/search` for `metadata['payment_order_id']`.
async fn search_by_order(sim: &Sim, payment_order_id: &str) -> Value {
    let query = format!("metadata['payment_order_id']:'{payment_order_id}'");
    let response = sim
        .client
        .get(format!("{}/v1/payment_intents/search", sim.base))
        .bearer_auth(common::API_KEY)
        .query(&[("query", query.as_str())])
        .send()
        .await
        .expect("search");
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await
}

/// With a search lag, a new intent is missing from search right after its
/// creation while retrieving it by id works at once; it appears in search
/// once the lag has passed, and not before.
#[tokio::test]
async fn search_lags_behind_retrieve_by_id() {
    let mut config = SimConfig::new();
    config.stripe_search_lag_ms = SEARCH_LAG_MS;
    let sim = Sim::start_with(config).await;
    let lag = Duration::from_millis(SEARCH_LAG_MS);
    let before_create = Instant::now();
    let created = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_lag"), None).await).await;
    let id = created["id"].as_str().unwrap();

    let early = search_by_order(&sim, "po_lag").await;
    assert!(before_create.elapsed() < lag, "too slow to observe the lag; the check below would prove nothing");
    assert_eq!(early["data"], serde_json::json!([]), "not yet in the search index");
    assert_eq!(early["has_more"], false);
    let by_id = json(sim.get(&format!("/v1/payment_intents/{id}")).await).await;
    assert_eq!(by_id["status"], "succeeded");

    let deadline = before_create + Duration::from_millis(SEARCHABLE_WAIT_MS_MAX);
    let found = loop {
        let result = search_by_order(&sim, "po_lag").await;
        if !result["data"].as_array().unwrap().is_empty() {
            break result;
        }
        assert!(Instant::now() < deadline, "never became searchable");
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    };
    assert!(before_create.elapsed() >= lag, "searchable after {:?}", before_create.elapsed());
    assert_eq!(found["data"][0]["id"], id);
    assert_eq!(found["data"][0]["status"], "succeeded");
}
