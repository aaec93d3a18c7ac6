//! Black-box tests of settlement reports: Stripe balance transactions, Toss
//! settlements and the per-day CSV download, with the documented fees.

mod common;

use common::{Sim, confirmed_body, json};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Seconds in a day.
const DAY_SECS: u64 = 86_400;

/// The UTC calendar date of `unix_secs`, `YYYY-MM-DD` (civil-from-days).
fn utc_date(unix_secs: u64) -> String {
    let days = i64::try_from(unix_secs / DAY_SECS).unwrap() + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Stripe: captures are `charge` transactions with 2.9% + 30 (2.9% only
/// for KRW), refunds are negative `refund` transactions without fee;
/// newest first, filterable by `created` and paged.
#[tokio::test]
async fn stripe_balance_transactions() {
    let sim = Sim::start().await;
    let usd = json(
        sim.post(
            "/v1/payment_intents",
            "amount=10000&currency=usd&confirm=true&payment_method=pm_card_visa\
             &metadata[payment_order_id]=po_usd",
            None,
        )
        .await,
    )
    .await;
    sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_krw"), None).await;
    let usd_id = usd["id"].as_str().unwrap();
    sim.post("/v1/refunds", &format!("payment_intent={usd_id}&amount=4000"), None).await;

    let list = json(sim.get("/v1/balance_transactions").await).await;
    assert_eq!(list["object"], "list");
    assert_eq!(list["url"], "/v1/balance_transactions");
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    let (refund, krw, charge) = (&data[0], &data[1], &data[2]);
    assert_eq!(refund["type"], "refund");
    assert_eq!(refund["amount"], -4000);
    assert_eq!(refund["fee"], 0);
    assert_eq!(refund["net"], -4000);
    assert!(refund["source"].as_str().unwrap().starts_with("re_"));
    assert_eq!(krw["amount"], 15000);
    assert_eq!(krw["fee"], 435);
    assert_eq!(krw["currency"], "krw");
    assert_eq!(charge["object"], "balance_transaction");
    assert_eq!(charge["type"], "charge");
    assert_eq!(charge["fee"], 320);
    assert_eq!(charge["net"], 9680);
    assert_eq!(charge["source"], usd["latest_charge"]);
    assert!(charge["id"].as_str().unwrap().starts_with("txn_"));
    assert_eq!(charge["status"], "pending");
    let created = charge["created"].as_u64().unwrap();
    let midnight = created - created % DAY_SECS;
    assert_eq!(charge["available_on"].as_u64().unwrap(), midnight + 2 * DAY_SECS);
    assert_pagination(&sim, created, &charge["id"]).await;
}

/// `created` filters and `limit` / `starting_after` paging over the three
/// transactions of `stripe_balance_transactions`.
async fn assert_pagination(sim: &Sim, created: u64, oldest_id: &Value) {
    let later = sim.get(&format!("/v1/balance_transactions?created[gte]={}", created + 3_600)).await;
    assert!(json(later).await["data"].as_array().unwrap().is_empty());
    let page = json(sim.get("/v1/balance_transactions?limit=2").await).await;
    assert_eq!(page["has_more"], true);
    let last = page["data"][1]["id"].as_str().unwrap();
    let rest = json(sim.get(&format!("/v1/balance_transactions?limit=2&starting_after={last}")).await).await;
    assert_eq!(rest["has_more"], false);
    assert_eq!(&rest["data"][0]["id"], oldest_id);
    let bad = sim.get("/v1/balance_transactions?limit=0").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

/// Toss: a capture settles with one 3.2% `BASE` fee (VAT split out) and a
/// cancellation as a negative item without fee, by Seoul sold date; the
/// paid-out date is two days later.
#[tokio::test]
async fn toss_settlements() {
    let sim = Sim::start().await;
    let payment = json(
        sim.toss_post(
            "/v1/billing/billing_success",
            &json!({"customerKey": "c", "amount": 15000, "orderId": "order-settle", "orderName": "n"}),
            None,
        )
        .await,
    )
    .await;
    let key = payment["paymentKey"].as_str().unwrap();
    sim.toss_post(
        &format!("/v1/payments/{key}/cancel"),
        &json!({"cancelReason": "partial", "cancelAmount": 5000}),
        None,
    )
    .await;
    let today = &payment["approvedAt"].as_str().unwrap()[..10];
    let path = format!("/v1/settlements?startDate={today}&endDate={today}");
    let response = sim.toss_get(&path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let items: Vec<Value> = json(response).await.as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    let (sale, cancel) = (&items[0], &items[1]);
    assert_eq!(sale["paymentKey"], key);
    assert_eq!(sale["orderId"], "order-settle");
    assert_eq!(sale["amount"], 15000);
    assert_eq!(sale["fees"], json!([{"type": "BASE", "fee": 480}]));
    assert_eq!(sale["supplyAmount"], 436);
    assert_eq!(sale["vat"], 44);
    assert_eq!(sale["payOutAmount"], 14520);
    assert_eq!(sale["soldDate"], today);
    assert_eq!(sale["transactionKey"], payment["lastTransactionKey"]);
    assert_eq!(sale["approvedAt"], payment["approvedAt"]);
    assert!(sale["cancel"].is_null());
    assert_eq!(cancel["amount"], -5000);
    assert_eq!(cancel["fees"][0]["fee"], 0);
    assert_eq!(cancel["payOutAmount"], -5000);
    assert_eq!(cancel["cancel"]["cancelAmount"], 5000);

    let paid_out = sale["paidOutDate"].as_str().unwrap();
    assert_ne!(paid_out, today);
    let by_payout =
        sim.toss_get(&format!("/v1/settlements?startDate={paid_out}&endDate={paid_out}&dateType=paidOutDate")).await;
    assert_eq!(json(by_payout).await.as_array().unwrap().len(), 2);
    let paged = sim.toss_get(&format!("{path}&page=2&size=1")).await;
    assert_eq!(json(paged).await[0]["amount"], -5000);
    for bad in ["/v1/settlements", "/v1/settlements?startDate=2024-13-01&endDate=2024-12-01"] {
        let response = sim.toss_get(bad).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(json(response).await["code"], "INVALID_REQUEST");
    }
}

/// The CSV download has the documented header and one row per capture or
/// refund sold that day, with fee and net; other days are empty.
#[tokio::test]
async fn settlement_csv() {
    let sim = Sim::start().await;
    let intent = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_csv"), None).await).await;
    let id = intent["id"].as_str().unwrap();
    sim.post("/v1/refunds", &format!("payment_intent={id}&amount=1000"), None).await;
    let day = utc_date(intent["created"].as_u64().unwrap());
    let response = sim.get(&format!("/_sim/settlements/stripe/{day}.csv")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "psp,transaction_id,payment_reference,order_id,type,amount_minor,fee_minor,net_minor,\
         currency,sold_date,paid_out_date,refund_id"
    );
    assert_eq!(lines.len(), 3, "{csv}");
    let charge: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(charge[0], "stripe");
    assert!(charge[1].starts_with("txn_"));
    assert_eq!(charge[2], id);
    assert_eq!(charge[3], "po_csv");
    assert_eq!(&charge[4..9], ["charge", "15000", "435", "14565", "krw"]);
    assert_eq!(charge[9], day);
    let refund: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(&refund[4..8], ["refund", "-1000", "0", "-1000"]);
    assert!(refund[11].starts_with("re_"), "a refund carries its own id: {refund:?}");
    assert_eq!(charge[11], "", "a charge has none");

    let empty = sim.get("/_sim/settlements/toss/2001-01-01.csv").await;
    assert_eq!(empty.text().await.unwrap().lines().count(), 1);
    for bad in ["/_sim/settlements/paypal/2001-01-01.csv", "/_sim/settlements/toss/yesterday.csv"] {
        assert_eq!(sim.get(bad).await.status(), StatusCode::NOT_FOUND);
    }
}
