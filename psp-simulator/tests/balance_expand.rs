//! Black-box tests of Stripe's balance transactions as a reconciliation
//! reads them: `expand[]=data.source` (the Charge or Refund object in place
//! of its id), the `type` filter, and paging with both.

mod common;

use common::{Sim, json};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A succeeded USD intent of `amount` with `metadata[payment_order_id]`
/// and one more metadata key; answers the intent.
async fn paid(sim: &Sim, amount: u64, payment_order_id: &str) -> Value {
    let form = format!(
        "amount={amount}&currency=usd&confirm=true&payment_method=pm_card_visa\
         &metadata%5Bpayment_order_id%5D={payment_order_id}&metadata%5Bcart%5D=c-1"
    );
    let response = sim.post("/v1/payment_intents", &form, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await
}

/// The `data` of a balance-transaction list at `query`.
async fn list(sim: &Sim, query: &str) -> Value {
    let response = sim.get(&format!("/v1/balance_transactions{query}")).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    json(response).await
}

/// With `expand[]=data.source` a charge's source is the Charge (its
/// metadata, intent and balance transaction) and a refund's the Refund
/// (positive amount, its charge and metadata); without it, the ids. The
/// percent-encoded parameter name works the same.
#[tokio::test]
async fn expands_charge_and_refund_sources() {
    let sim = Sim::start().await;
    let intent = paid(&sim, 10_000, "po_exp").await;
    let intent_id = intent["id"].as_str().unwrap();
    let form = format!("payment_intent={intent_id}&amount=2500&metadata%5Brefund_id%5D=rf_1");
    let refund = json(sim.post("/v1/refunds", &form, None).await).await;

    let plain = list(&sim, "").await;
    assert_eq!(plain["data"][0]["source"], refund["id"]);
    assert_eq!(plain["data"][1]["source"], intent["latest_charge"]);

    for query in ["?expand[]=data.source", "?expand%5B%5D=data.source"] {
        let expanded = list(&sim, query).await;
        let (refund_txn, charge_txn) = (&expanded["data"][0], &expanded["data"][1]);
        let charge = &charge_txn["source"];
        assert_eq!(charge["object"], "charge");
        assert_eq!(charge["id"], intent["latest_charge"]);
        assert_eq!((&charge["amount"], &charge["amount_captured"]), (&json!(10_000), &json!(10_000)));
        assert_eq!(charge["currency"], "usd");
        assert_eq!(charge["payment_intent"], intent_id);
        assert_eq!(charge["metadata"], json!({"payment_order_id": "po_exp", "cart": "c-1"}));
        assert_eq!(charge["status"], "succeeded");
        assert_eq!(charge["balance_transaction"], charge_txn["id"]);
        assert!(charge["created"].is_u64());
        let source = &refund_txn["source"];
        assert_eq!(source["object"], "refund");
        assert_eq!(source["id"], refund["id"]);
        assert_eq!((&source["amount"], &refund_txn["amount"]), (&json!(2_500), &json!(-2_500)));
        assert_eq!(source["payment_intent"], intent_id);
        assert_eq!(source["charge"], intent["latest_charge"]);
        assert_eq!(source["status"], "succeeded");
        assert_eq!(source["balance_transaction"], refund_txn["id"]);
        assert_eq!(source["metadata"], json!({"refund_id": "rf_1"}));
    }
}

/// An intent without metadata expands to a charge with `metadata: {}`.
#[tokio::test]
async fn charge_without_metadata_expands_to_empty_metadata() {
    let sim = Sim::start().await;
    let form = "amount=500&currency=usd&confirm=true&payment_method=pm_card_visa";
    assert_eq!(sim.post("/v1/payment_intents", form, None).await.status(), StatusCode::OK);
    let expanded = list(&sim, "?expand[]=data.source").await;
    assert_eq!(expanded["data"][0]["source"]["metadata"], json!({}));
}

/// `type=charge` / `type=refund` filter, combine with `created` and paging
/// with expansion; `has_more` and `starting_after` work as without it.
#[tokio::test]
async fn type_filter_and_paging_with_expansion() {
    let sim = Sim::start().await;
    let mut orders = Vec::new();
    for n in 0..3 {
        let intent = paid(&sim, 1_000 + n, &format!("po_page_{n}")).await;
        let id = intent["id"].as_str().unwrap().to_owned();
        sim.post("/v1/refunds", &format!("payment_intent={id}&amount=100"), None).await;
        orders.push(format!("po_page_{n}"));
    }
    let charges = list(&sim, "?type=charge&expand[]=data.source").await;
    let charge_data = charges["data"].as_array().unwrap();
    assert_eq!(charge_data.len(), 3);
    assert!(charge_data.iter().all(|txn| txn["type"] == "charge" && txn["source"]["object"] == "charge"));
    let refunds = list(&sim, "?type=refund").await;
    assert!(refunds["data"].as_array().unwrap().iter().all(|txn| txn["type"] == "refund"));
    assert_eq!(list(&sim, "?type=payout").await["data"], json!([]));

    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = list(&sim, &format!("?type=charge&expand[]=data.source&limit=2{cursor}")).await;
        for txn in page["data"].as_array().unwrap() {
            seen.push(txn["source"]["metadata"]["payment_order_id"].as_str().unwrap().to_owned());
        }
        if page["has_more"] == false {
            break;
        }
        let last = page["data"].as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_owned();
        cursor = format!("&starting_after={last}");
    }
    orders.reverse();
    assert_eq!(seen, orders, "newest first, each charge once");
}

/// Expanding anything but `data.source` is Stripe's 400
/// `invalid_request_error` naming the property, `param: "expand"`.
#[tokio::test]
async fn refuses_other_expansions() {
    let sim = Sim::start().await;
    for (query, property) in [("expand[]=source", "source"), ("expand%5B%5D=data.customer", "data.customer")] {
        let response = sim.get(&format!("/v1/balance_transactions?{query}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let error = &json(response).await["error"];
        assert_eq!(error["type"], "invalid_request_error");
        assert_eq!(error["param"], "expand");
        assert_eq!(error["message"], format!("This property cannot be expanded ({property})."));
    }
}
