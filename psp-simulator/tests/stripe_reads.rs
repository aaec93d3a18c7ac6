//! Black-box tests of Stripe's read endpoints as a platform uses them to
//! find what it wrote: search (eventually consistent) and refunds (listed
//! and retrieved, carrying the metadata given at creation).

mod common;

use std::time::{Duration, Instant};

use common::{Sim, confirmed_body, json, poll};
use psp_simulator::SimConfig;
use reqwest::StatusCode;
use serde_json::Value;

/// A search lag no test outlives: what search misses stays missed.
const SEARCH_LAG_MISS_MS: u64 = 3_600_000;
/// A search lag short enough to wait out, long enough to measure on a busy
/// machine as a lower bound.
const SEARCH_LAG_APPEARS_MS: u64 = 2_000;

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

/// With a search lag (one hour) a new intent is missing from search, while
/// retrieving it by id works at once.
#[tokio::test]
async fn lagging_search_misses_a_new_intent() {
    let mut config = SimConfig::new();
    config.stripe_search_lag_ms = SEARCH_LAG_MISS_MS;
    let sim = Sim::start_with(config).await;
    let created = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_lag"), None).await).await;
    let id = created["id"].as_str().unwrap();

    let missed = search_by_order(&sim, "po_lag").await;
    assert_eq!(missed["data"], serde_json::json!([]), "not yet in the search index");
    assert_eq!(missed["has_more"], false);
    let by_id = json(sim.get(&format!("/v1/payment_intents/{id}")).await).await;
    assert_eq!(by_id["status"], "succeeded");
}

/// With a search lag of two seconds a new intent appears in search, but no
/// sooner than the lag after its creation (a lower bound only; the wait
/// for it is bounded by `poll`).
#[tokio::test]
async fn lagging_search_finds_an_intent_after_the_lag() {
    let mut config = SimConfig::new();
    config.stripe_search_lag_ms = SEARCH_LAG_APPEARS_MS;
    let sim = Sim::start_with(config).await;
    // Before the request, so the creation cannot be earlier than this.
    let before_create = Instant::now();
    let created = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_lag"), None).await).await;
    let found = poll("the new intent to become searchable", async || {
        let result = search_by_order(&sim, "po_lag").await;
        (!result["data"].as_array().unwrap().is_empty()).then_some(result)
    })
    .await;
    let searchable_after = before_create.elapsed();
    let lag = Duration::from_millis(SEARCH_LAG_APPEARS_MS);
    assert!(searchable_after >= lag, "searchable {searchable_after:?} after creation, within the {lag:?} lag");
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    assert_eq!(found["data"][0]["id"], created["id"]);
    assert_eq!(found["data"][0]["status"], "succeeded");
}

/// A succeeded intent for `payment_order_id`; answers its id.
async fn paid_intent(sim: &Sim, payment_order_id: &str) -> String {
    let response = sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", payment_order_id), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await["id"].as_str().unwrap().to_owned()
}

/// Refunds `amount` of intent `id` with `metadata[refund_id]`; answers the
/// refund object.
async fn refund(sim: &Sim, id: &str, amount: u64, refund_id: &str) -> Value {
    let form = format!("payment_intent={id}&amount={amount}&metadata%5Brefund_id%5D={refund_id}");
    let response = sim.post("/v1/refunds", &form, Some(refund_id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await
}

/// The ids of a list's `data`.
fn ids(list: &Value) -> Vec<&str> {
    list["data"].as_array().unwrap().iter().map(|refund| refund["id"].as_str().unwrap()).collect()
}

/// Two refunds of one intent and one of another: `GET /v1/refunds` is
/// Stripe's `list`, newest first, each refund with the metadata given at
/// creation; it filters by `payment_intent` and pages with `limit` and
/// `starting_after`; `GET /v1/refunds/{id}` answers the refund as created.
#[tokio::test]
async fn refunds_are_listed_filtered_paged_and_retrieved() {
    let sim = Sim::start().await;
    let intent = paid_intent(&sim, "po_rl").await;
    let other = paid_intent(&sim, "po_rl_other").await;
    let first = refund(&sim, &intent, 5_000, "rf_1").await;
    let second = refund(&sim, &intent, 3_000, "rf_2").await;
    let elsewhere = refund(&sim, &other, 1_000, "rf_other").await;
    let id = |refund: &Value| refund["id"].as_str().unwrap().to_owned();
    let (first_id, second_id, elsewhere_id) = (id(&first), id(&second), id(&elsewhere));

    let all = json(sim.get("/v1/refunds").await).await;
    assert_eq!(all["object"], "list");
    assert_eq!(all["url"], "/v1/refunds");
    assert_eq!(all["has_more"], false);
    assert_eq!(ids(&all), [elsewhere_id.as_str(), &second_id, &first_id]);
    assert_eq!(all["data"][2], first, "listed exactly as answered at creation");

    let of_intent = json(sim.get(&format!("/v1/refunds?payment_intent={intent}")).await).await;
    assert_eq!(ids(&of_intent), [second_id.as_str(), &first_id]);
    assert_eq!(of_intent["data"][0]["metadata"]["refund_id"], "rf_2");
    assert_eq!(of_intent["data"][1]["metadata"]["refund_id"], "rf_1");
    assert_eq!(of_intent["data"][1]["amount"], 5_000);
    assert_eq!(of_intent["data"][1]["payment_intent"], intent.as_str());

    let page_one = json(sim.get(&format!("/v1/refunds?payment_intent={intent}&limit=1")).await).await;
    assert_eq!((ids(&page_one), &page_one["has_more"]), (vec![second_id.as_str()], &Value::Bool(true)));
    let next = format!("/v1/refunds?payment_intent={intent}&limit=1&starting_after={second_id}");
    let page_two = json(sim.get(&next).await).await;
    assert_eq!((ids(&page_two), &page_two["has_more"]), (vec![first_id.as_str()], &Value::Bool(false)));

    let retrieved = json(sim.get(&format!("/v1/refunds/{first_id}")).await).await;
    assert_eq!(retrieved, first);
    assert_eq!(retrieved["object"], "refund");
    assert_eq!(retrieved["metadata"]["refund_id"], "rf_1");
    assert_eq!(retrieved["status"], "succeeded");
}

/// An unknown refund is 404 `resource_missing` in Stripe's error shape;
/// unknown list parameters, a bad `limit` and an unknown cursor are 400;
/// both reads need Stripe authentication.
#[tokio::test]
async fn refund_reads_refuse_what_stripe_refuses() {
    let sim = Sim::start().await;
    let missing = sim.get("/v1/refunds/re_missing").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let error = &json(missing).await["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "resource_missing");
    assert_eq!(error["param"], "id");
    assert_eq!(error["message"], "No such refund: 're_missing'");

    for (path, code) in [
        ("/v1/refunds?charge=ch_1", "parameter_unknown"),
        ("/v1/refunds?limit=101", "parameter_invalid_integer"),
        ("/v1/refunds?starting_after=re_missing", "resource_missing"),
    ] {
        let response = sim.get(path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(json(response).await["error"]["code"], code, "{path}");
    }
    for path in ["/v1/refunds", "/v1/refunds/re_missing"] {
        let anonymous = sim.client.get(format!("{}{path}", sim.base)).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

/// With lookups down both refund reads answer Stripe's 503 `api_error`
/// while refunds themselves still execute; switched back, they answer.
#[tokio::test]
async fn refund_reads_are_lookups_for_the_outage_switch() {
    let sim = Sim::start().await;
    let intent = paid_intent(&sim, "po_rl_out").await;
    let down = sim.post_admin("/_sim/outage", &serde_json::json!({"lookups": true})).await;
    assert_eq!(down.status(), StatusCode::OK);
    let created = refund(&sim, &intent, 2_000, "rf_out").await;
    let retrieve = format!("/v1/refunds/{}", created["id"].as_str().unwrap());
    for path in ["/v1/refunds", retrieve.as_str()] {
        let response = sim.get(path).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(json(response).await["error"]["type"], "api_error");
    }
    sim.post_admin("/_sim/outage", &serde_json::json!({})).await;
    assert_eq!(json(sim.get(&retrieve).await).await, created);
    assert_eq!(ids(&json(sim.get("/v1/refunds").await).await).len(), 1);
}
