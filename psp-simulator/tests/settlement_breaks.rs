//! Black-box tests of settlement breaks (`/_sim/settlements/breaks`): the
//! admin endpoints, and each kind of break showing identically in the CSV
//! download and the PSP's own settlement API.

mod common;

use common::{DAY_SECS, Sim, confirmed_body, csv_rows, date_plus, json, utc_date};
use reqwest::StatusCode;
use serde_json::{Value, json};

const BREAKS: &str = "/_sim/settlements/breaks";

/// One reported line, comparable across views: transaction id, payment
/// reference, type, amount, fee, net, currency, sold and paid-out dates.
type Line = (String, String, String, i64, i64, i64, String, String, String);

fn csv_line(row: &[String]) -> Line {
    let number = |i: usize| row[i].parse::<i64>().expect("an integer column");
    let text = |i: usize| row[i].clone();
    (text(1), text(2), text(4), number(5), number(6), number(7), text(8), text(9), text(10))
}

/// Every CSV line of `psp` sold on `first_day` or the two days after.
async fn csv_lines(sim: &Sim, psp: &str, first_day: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    for offset in 0..3 {
        lines.extend(csv_rows(sim, psp, &date_plus(first_day, offset)).await.iter().map(|row| csv_line(row)));
    }
    lines.sort();
    lines
}

/// Every Stripe balance transaction (expanded, paged), as lines.
async fn balance_lines(sim: &Sim) -> (Vec<Line>, Vec<Value>) {
    let (mut lines, mut items, mut cursor) = (Vec::new(), Vec::new(), String::new());
    loop {
        let page = json(sim.get(&format!("/v1/balance_transactions?expand[]=data.source&limit=3{cursor}")).await).await;
        for txn in page["data"].as_array().unwrap() {
            let text = |value: &Value| value.as_str().unwrap().to_owned();
            let int = |key: &str| txn[key].as_i64().unwrap();
            lines.push((
                text(&txn["id"]),
                text(&txn["source"]["payment_intent"]),
                text(&txn["type"]),
                int("amount"),
                int("fee"),
                int("net"),
                text(&txn["currency"]),
                utc_date(txn["created"].as_u64().unwrap()),
                utc_date(txn["available_on"].as_u64().unwrap()),
            ));
            items.push(txn.clone());
        }
        if page["has_more"] == false {
            break;
        }
        cursor = format!("&starting_after={}", lines.last().unwrap().0);
    }
    lines.sort();
    (lines, items)
}

/// A Toss settlement item as a line, checking that its fee split and
/// pay-out agree with its amount and fee.
fn settlement_line(item: &Value) -> Line {
    let text = |key: &str| item[key].as_str().unwrap().to_owned();
    let int = |value: &Value| value.as_i64().unwrap();
    let kind = if item["cancel"].is_null() { "charge" } else { "refund" };
    let (amount, fee, net) = (int(&item["amount"]), int(&item["fees"][0]["fee"]), int(&item["payOutAmount"]));
    assert_eq!(int(&item["supplyAmount"]) + int(&item["vat"]), fee, "{item}");
    assert_eq!(net, amount - fee, "{item}");
    let (sold, paid_out) = (text("soldDate"), text("paidOutDate"));
    (text("transactionKey"), text("paymentKey"), kind.to_owned(), amount, fee, net, text("currency"), sold, paid_out)
}

/// The CSV lines of `order_id` among `rows`.
fn by_order<'a>(rows: &'a [(Line, String)], order_id: &str) -> Vec<&'a Line> {
    rows.iter().filter(|(_, order)| order == order_id).map(|(line, _)| line).collect()
}

/// POSTs `breaks` for `psp`, expecting 200.
async fn set_breaks(sim: &Sim, psp: &str, breaks: Value) -> Value {
    let response = sim.post_admin(BREAKS, &json!({"psp": psp, "breaks": breaks})).await;
    assert_eq!(response.status(), StatusCode::OK);
    json(response).await
}

/// GET answers both lists; a POST replaces its PSP's list only and answers
/// the whole configuration; malformed bodies are 400 `{"error"}`; DELETE
/// clears one PSP or both.
#[tokio::test]
async fn admin_endpoints_configure_breaks() {
    let sim = Sim::start().await;
    assert_eq!(json(sim.get(BREAKS).await).await, json!({"stripe": [], "toss": []}));
    let drop = json!([{"kind": "drop", "target": {"order_id": "po_1"}}]);
    let dup = json!([{"kind": "duplicate", "target": {"pick": {"seed": 1, "index": 0}}}]);
    set_breaks(&sim, "stripe", drop.clone()).await;
    set_breaks(&sim, "toss", dup.clone()).await;
    let replaced = set_breaks(&sim, "stripe", dup.clone()).await;
    assert_eq!(replaced, json!({"stripe": dup, "toss": dup}));
    assert_eq!(json(sim.get(BREAKS).await).await, replaced);

    let target = json!({"payment_reference": "pi_1"});
    for body in [
        json!({"psp": "paypal", "breaks": []}),
        json!({"psp": "stripe"}),
        json!({"psp": "stripe", "breaks": [{"kind": "explode", "target": target}]}),
        json!({"psp": "stripe", "breaks": [{"kind": "fee", "target": target}]}),
        json!({"psp": "stripe", "breaks": [
            {"kind": "foreign", "amount_minor": 1, "currency": "usd", "date": "2026-13-01"}
        ]}),
        json!({"psp": "stripe", "breaks": [{"kind": "drop", "target": {}}]}),
    ] {
        let response = sim.post_admin(BREAKS, &body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        assert!(json(response).await["error"].is_string(), "{body}");
    }
    assert_eq!(json(sim.get(BREAKS).await).await, replaced, "refused bodies change nothing");

    let delete = |query: &'static str| sim.client.delete(format!("{}{BREAKS}{query}", sim.base)).send();
    let cleared = delete("?psp=toss").await.unwrap();
    assert_eq!(json(cleared).await, json!({"stripe": dup, "toss": []}));
    assert_eq!(delete("?psp=paypal").await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(delete("").await.unwrap()).await, json!({"stripe": [], "toss": []}));
}

/// Stripe: every kind of break (drop, amount, fee, currency, duplicate,
/// next day, a refund-targeted fee, a foreign line) shows in the CSV and
/// the balance transactions alike, as it should.
#[tokio::test]
async fn stripe_breaks_show_identically_in_csv_and_balance_transactions() {
    let sim = Sim::start().await;
    let mut intents = Vec::new();
    for order in ["po_drop", "po_amount", "po_fee", "po_cur", "po_dup", "po_late"] {
        intents.push(json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", order), None).await).await);
    }
    let id = |n: usize| intents[n]["id"].as_str().unwrap().to_owned();
    sim.post("/v1/refunds", &format!("payment_intent={}&amount=1000", id(1)), None).await;
    let (before, items) = balance_lines(&sim).await;
    assert_eq!(before.len(), 7);
    let fee_txn = items.iter().find(|txn| txn["source"]["id"] == intents[2]["latest_charge"]).unwrap()["id"].clone();
    let day = utc_date(intents[0]["created"].as_u64().unwrap());
    set_breaks(
        &sim,
        "stripe",
        json!([
            {"kind": "drop", "target": {"order_id": "po_drop"}},
            {"kind": "amount", "target": {"payment_reference": id(1)}, "delta_minor": 100},
            {"kind": "fee", "target": {"transaction_id": fee_txn}, "delta_minor": -35},
            {"kind": "currency", "target": {"order_id": "po_cur"}, "currency": "EUR"},
            {"kind": "duplicate", "target": {"order_id": "po_dup"}},
            {"kind": "next_day", "target": {"order_id": "po_late"}},
            {"kind": "fee", "target": {"order_id": "po_amount", "entry_kind": "refund"}, "delta_minor": 5},
            {"kind": "foreign", "amount_minor": 777, "currency": "USD", "date": day, "seed": 9, "order_id": "po_ghost"},
        ]),
    )
    .await;

    let csv = csv_lines(&sim, "stripe", &day).await;
    let (balance, items) = balance_lines(&sim).await;
    assert_eq!(csv, balance, "the CSV and the balance transactions report the same lines");
    let mut rows = Vec::new();
    for offset in 0..3 {
        for row in csv_rows(&sim, "stripe", &date_plus(&day, offset)).await {
            rows.push((csv_line(&row), row[3].clone()));
        }
    }
    assert!(by_order(&rows, "po_drop").is_empty());
    let amount: Vec<_> = by_order(&rows, "po_amount").iter().map(|l| (l.2.clone(), l.3, l.4, l.5)).collect();
    assert!(amount.contains(&("charge".to_owned(), 15_100, 435, 14_665)), "{amount:?}");
    assert!(amount.contains(&("refund".to_owned(), -1_000, 5, -1_005)), "{amount:?}");
    assert_eq!((by_order(&rows, "po_fee")[0].4, by_order(&rows, "po_fee")[0].5), (400, 14_600));
    assert_eq!(by_order(&rows, "po_cur")[0].6, "eur");
    let dup = by_order(&rows, "po_dup");
    assert_eq!((dup.len(), dup[0]), (2, dup[1]));
    let late_created = intents[5]["created"].as_u64().unwrap();
    assert_eq!(by_order(&rows, "po_late")[0].7, utc_date(late_created + DAY_SECS));
    let ghost = by_order(&rows, "po_ghost");
    assert_eq!((ghost[0].3, ghost[0].4, ghost[0].5, ghost[0].7.as_str()), (777, 53, 724, day.as_str()));
    let foreign = items.iter().find(|txn| txn["id"] == ghost[0].0.as_str()).unwrap();
    assert!(foreign["source"]["id"].as_str().unwrap().starts_with("ch_"));
    assert!(foreign["source"]["payment_intent"].as_str().unwrap().starts_with("pi_"));
    assert_eq!(foreign["source"]["metadata"], json!({"payment_order_id": "po_ghost"}));
}

/// Toss: the same kinds show in the CSV and `GET /v1/settlements` alike,
/// with `supplyAmount + vat = fee` and `payOutAmount = amount - fee`.
#[tokio::test]
async fn toss_breaks_show_identically_in_csv_and_settlements() {
    let sim = Sim::start().await;
    let mut payments = Vec::new();
    for order in ["order-drop", "order-amount", "order-fee", "order-cur", "order-dup", "order-late"] {
        let body = json!({"customerKey": "c", "amount": 15000, "orderId": order, "orderName": "n"});
        payments.push(json(sim.toss_post("/v1/billing/billing_success", &body, None).await).await);
    }
    let key = |n: usize| payments[n]["paymentKey"].as_str().unwrap().to_owned();
    let cancel = json!({"cancelReason": "partial", "cancelAmount": 5000});
    sim.toss_post(&format!("/v1/payments/{}/cancel", key(1)), &cancel, None).await;
    let day = payments[0]["approvedAt"].as_str().unwrap()[..10].to_owned();
    set_breaks(
        &sim,
        "toss",
        json!([
            {"kind": "drop", "target": {"payment_reference": key(0)}},
            {"kind": "amount", "target": {"order_id": "order-amount"}, "delta_minor": -500},
            {"kind": "fee", "target": {"transaction_id": payments[2]["lastTransactionKey"]}, "delta_minor": 20},
            {"kind": "currency", "target": {"order_id": "order-cur"}, "currency": "usd"},
            {"kind": "duplicate", "target": {"order_id": "order-dup"}},
            {"kind": "next_day", "target": {"order_id": "order-late"}},
            {"kind": "amount", "target": {"order_id": "order-amount", "entry_kind": "refund"}, "delta_minor": -1},
            {"kind": "foreign", "amount_minor": 20000, "currency": "KRW", "date": day},
        ]),
    )
    .await;

    let csv = csv_lines(&sim, "toss", &day).await;
    let path = format!("/v1/settlements?startDate={day}&endDate={}", date_plus(&day, 2));
    let items: Vec<Value> = json(sim.toss_get(&path).await).await.as_array().unwrap().clone();
    let mut settlements: Vec<Line> = items.iter().map(settlement_line).collect();
    settlements.sort();
    assert_eq!(csv, settlements, "the CSV and the settlements API report the same lines");

    let of_order = |order: &str| items.iter().filter(|item| item["orderId"] == order).cloned().collect::<Vec<_>>();
    assert!(of_order("order-drop").is_empty());
    let amount = of_order("order-amount");
    assert_eq!((&amount[0]["amount"], &amount[0]["payOutAmount"]), (&json!(14_500), &json!(14_020)));
    assert_eq!((&amount[1]["amount"], &amount[1]["cancel"]["cancelAmount"]), (&json!(-5_001), &json!(5_001)));
    assert_eq!(of_order("order-fee")[0]["fees"], json!([{"type": "BASE", "fee": 500}]));
    assert_eq!(of_order("order-cur")[0]["currency"], "USD");
    assert_eq!(of_order("order-dup").len(), 2);
    assert_eq!(of_order("order-late")[0]["soldDate"], date_plus(&day, 1));
    let foreign: Vec<&Value> = items.iter().filter(|item| item["amount"] == 20_000).collect();
    assert_eq!((foreign.len(), &foreign[0]["fees"][0]["fee"], &foreign[0]["soldDate"]), (1, &json!(640), &json!(day)));
    assert_eq!(foreign[0]["paymentKey"].as_str().unwrap().len(), 50);
}

/// A pick is reproducible (the same line after clearing and posting it
/// again); a target naming a payment not yet made applies once it is.
#[tokio::test]
async fn picks_are_reproducible_and_targets_may_come_later() {
    let sim = Sim::start().await;
    for n in 0..4 {
        sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", &format!("po_pick_{n}")), None).await;
    }
    let pick = json!([{"kind": "drop", "target": {"pick": {"seed": 2024, "index": 1}}}]);
    let mut dropped = Vec::new();
    for _ in 0..2 {
        set_breaks(&sim, "stripe", pick.clone()).await;
        let (kept, _) = balance_lines(&sim).await;
        assert_eq!(kept.len(), 3);
        dropped.push(kept);
        sim.client.delete(format!("{}{BREAKS}", sim.base)).send().await.unwrap();
    }
    assert_eq!(dropped[0], dropped[1]);

    set_breaks(&sim, "stripe", json!([{"kind": "drop", "target": {"order_id": "po_future"}}])).await;
    let later = json(sim.post("/v1/payment_intents", &confirmed_body("pm_card_visa", "po_future"), None).await).await;
    let (lines, _) = balance_lines(&sim).await;
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|line| line.1 != later["id"].as_str().unwrap()));
    let day = utc_date(later["created"].as_u64().unwrap());
    assert!(csv_rows(&sim, "stripe", &day).await.iter().all(|row| row[3] != "po_future"));
}
