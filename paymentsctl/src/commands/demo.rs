//! `paymentsctl demo`: pays a two-seller checkout (USD and KRW) through the gateway, polls
//! the checkout until it is done, prints the orders and a link to the workflow in the
//! Temporal UI. Exits non-zero when it times out or any order did not succeed.

use crate::cli::Globals;
use crate::commands::{random_alnum, unix_secs};
use crate::gateway::{Gateway, found};
use anyhow::{Context, bail};
use clap::Args;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Pause between two polls of the checkout.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Arguments of `demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Give up waiting for the outcome after this many seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
    /// PSP test token paying the checkout (e.g. `pm_card_chargeDeclined` to see a failure).
    #[arg(long, default_value = "pm_card_visa")]
    pub token: String,
    /// Create a hosted checkout instead (KRW, two sellers) and print the page where a buyer
    /// pays it in a browser; needs the worker on the Toss adapter (`PSP_PROVIDER=toss`).
    #[arg(long)]
    pub hosted: bool,
}

/// The body of a hosted demo checkout: two sellers in KRW, no card data.
pub fn hosted_demo_body(checkout_id: &str) -> Value {
    json!({
        "checkout_id": checkout_id,
        "buyer_info": {"buyer_id": "demo-buyer", "name": "Demo Buyer"},
        "payment_orders": [
            {"seller_account": "seller-alice", "amount": "25000", "currency": "KRW", "payment_order_id": format!("{checkout_id}-1")},
            {"seller_account": "seller-bob", "amount": "32000", "currency": "KRW", "payment_order_id": format!("{checkout_id}-2")}
        ]
    })
}

async fn run_hosted(globals: &Globals, gateway: &Gateway, checkout_id: &str) -> anyhow::Result<()> {
    let answer =
        gateway.create_hosted_checkout(&hosted_demo_body(checkout_id)).await.context("creating the hosted checkout")?;
    if answer.status != StatusCode::CREATED {
        bail!("gateway refused the hosted checkout: HTTP {}: {}", answer.status, answer.error_summary());
    }
    let url = answer.body["checkout_url"].as_str().unwrap_or_default();
    println!("hosted checkout {checkout_id}: {} {}", answer.body["amount"], answer.body["currency"]);
    println!("pay it in a browser: {url}");
    println!("workflow: {}", globals.workflow_link(checkout_id));
    Ok(())
}

/// A fresh demo checkout id: `demo-<unix secs>-<6 random alnum>`.
pub fn demo_checkout_id() -> String {
    format!("demo-{}-{}", unix_secs(), random_alnum(6))
}

/// The `POST /v1/payments` body of the demo: one USD order to `seller-alice`, one KRW order
/// to `seller-bob`, both paid with `token`.
pub fn demo_body(checkout_id: &str, token: &str) -> Value {
    json!({
        "checkout_id": checkout_id,
        "buyer_info": {"buyer_id": "demo-buyer", "name": "Demo Buyer"},
        "credit_card_info": {"token": token},
        "payment_orders": [
            {
                "seller_account": "seller-alice",
                "amount": "25.00",
                "currency": "USD",
                "payment_order_id": format!("{checkout_id}-1"),
            },
            {
                "seller_account": "seller-bob",
                "amount": "32000",
                "currency": "KRW",
                "payment_order_id": format!("{checkout_id}-2"),
            },
        ],
    })
}

fn orders(checkout: &Value) -> &[Value] {
    checkout.get("payment_orders").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("-")
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// Whether polling can stop: the gateway says the payment is done, or every order is final
/// (SUCCESS or FAILED) and every successful order is booked in its wallet and the ledger.
pub fn is_settled(checkout: &Value) -> bool {
    if flag(checkout, "is_payment_done") {
        return true;
    }
    let orders = orders(checkout);
    !orders.is_empty()
        && orders.iter().all(|o| match text(o, "status") {
            "SUCCESS" => flag(o, "wallet_updated") && flag(o, "ledger_updated"),
            "FAILED" => true,
            _ => false,
        })
}

/// The orders of `checkout` as an aligned text table.
pub fn order_table(checkout: &Value) -> String {
    let header = ["ORDER", "SELLER", "AMOUNT", "STATUS", "WALLET", "LEDGER", "PSP REFERENCE"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| (*h).to_owned()).collect()];
    for o in orders(checkout) {
        rows.push(vec![
            text(o, "payment_order_id").to_owned(),
            text(o, "seller_account").to_owned(),
            format!("{} {}", text(o, "amount"), text(o, "currency")),
            text(o, "status").to_owned(),
            flag(o, "wallet_updated").to_string(),
            flag(o, "ledger_updated").to_string(),
            text(o, "psp_reference").to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Orders that did not end in SUCCESS, as `id: STATUS (failure_code: failure_message)`.
pub fn unsuccessful(checkout: &Value) -> Vec<String> {
    orders(checkout)
        .iter()
        .filter(|o| text(o, "status") != "SUCCESS")
        .map(|o| {
            let mut line = format!("{}: {}", text(o, "payment_order_id"), text(o, "status"));
            if let Some(code) = o.get("failure_code").and_then(Value::as_str) {
                line.push_str(&format!(" ({code}: {})", text(o, "failure_message")));
            }
            line
        })
        .collect()
}

/// Polls the checkout every [`POLL_INTERVAL`] until [`is_settled`]; `last` keeps the latest
/// state seen, for reporting when the caller gives up.
async fn poll_until_settled(gateway: &Gateway, checkout_id: &str, last: &mut Option<Value>) -> anyhow::Result<Value> {
    loop {
        let answer = gateway.checkout(checkout_id).await?;
        let checkout = found(answer, &format!("checkout {checkout_id}"))?;
        if is_settled(&checkout) {
            return Ok(checkout);
        }
        *last = Some(checkout);
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Runs `demo`.
pub async fn run(globals: &Globals, args: DemoArgs) -> anyhow::Result<()> {
    let gateway = globals.gateway_client()?;
    let checkout_id = demo_checkout_id();
    if args.hosted {
        return run_hosted(globals, &gateway, &checkout_id).await;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let answer =
        gateway.create_payment(&demo_body(&checkout_id, &args.token)).await.context("submitting the demo checkout")?;
    if answer.status != StatusCode::ACCEPTED {
        bail!("gateway refused the demo checkout: HTTP {} (expected 202): {}", answer.status, answer.error_summary());
    }
    println!("checkout {checkout_id} accepted; waiting for the outcome");
    let link = globals.workflow_link(&checkout_id);
    let mut last = None;
    let polled = tokio::time::timeout_at(deadline.into(), poll_until_settled(&gateway, &checkout_id, &mut last)).await;
    let Ok(checkout) = polled else {
        if let Some(state) = &last {
            eprint!("last state seen:\n{}", order_table(state));
        }
        bail!("checkout {checkout_id} did not finish within {}s; see {link}", args.timeout_secs);
    };
    let checkout = checkout?;
    let elapsed = started.elapsed();
    print!("{}", order_table(&checkout));
    println!("elapsed: {} ms", elapsed.as_millis());
    println!("workflow: {link}");
    let failed = unsuccessful(&checkout);
    if !failed.is_empty() {
        bail!("{} of {} payment orders did not succeed: {}", failed.len(), orders(&checkout).len(), failed.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_body_has_two_sellers_and_string_amounts() {
        let id = "demo-1700000000-abc123";
        let body = demo_body(id, "pm_card_visa");
        assert_eq!(body["checkout_id"], id);
        assert_eq!(body["buyer_info"]["buyer_id"], "demo-buyer");
        assert_eq!(body["buyer_info"]["name"], "Demo Buyer");
        assert_eq!(body["credit_card_info"], json!({"token": "pm_card_visa"}));
        let orders = body["payment_orders"].as_array().unwrap();
        assert_eq!(orders.len(), 2);
        assert_eq!(
            orders[0],
            json!({"seller_account": "seller-alice", "amount": "25.00", "currency": "USD",
                   "payment_order_id": "demo-1700000000-abc123-1"})
        );
        assert_eq!(
            orders[1],
            json!({"seller_account": "seller-bob", "amount": "32000", "currency": "KRW",
                   "payment_order_id": "demo-1700000000-abc123-2"})
        );
        assert!(orders.iter().all(|o| o["amount"].is_string()));
        assert_eq!(body.as_object().unwrap().len(), 4);
    }

    #[test]
    fn demo_body_is_a_valid_checkout() {
        let id = demo_checkout_id();
        assert!(id.starts_with("demo-") && id.len() <= 40, "{id}");
        let body = demo_body(&id, "pm_card_chargeDeclined");
        let draft = payments_domain::checkout::draft_from_json(&body).expect("draft");
        let checkout = payments_domain::NewCheckout::parse(draft).expect("valid checkout");
        assert_eq!(checkout.checkout_id.to_string(), id);
    }

    #[test]
    fn settled_and_table() {
        let order = |status: &str, booked: bool| {
            json!({"payment_order_id": "c-1", "seller_account": "seller-alice",
                   "amount": "25.00", "currency": "USD", "status": status,
                   "wallet_updated": booked, "ledger_updated": booked,
                   "psp_reference": "pi_1", "failure_code": null})
        };
        let c = |orders: Vec<Value>| json!({"is_payment_done": false, "payment_orders": orders});
        assert!(!is_settled(&c(vec![])));
        assert!(!is_settled(&c(vec![order("EXECUTING", false)])));
        assert!(!is_settled(&c(vec![order("SUCCESS", false)])));
        assert!(is_settled(&c(vec![order("SUCCESS", true), order("FAILED", false)])));
        assert!(is_settled(&json!({"is_payment_done": true, "payment_orders": []})));
        let done = c(vec![order("SUCCESS", true), order("FAILED", false)]);
        let table = order_table(&done);
        assert_eq!(table.lines().count(), 3);
        assert!(table.lines().nth(1).unwrap().contains("25.00 USD"));
        assert_eq!(unsuccessful(&done), vec!["c-1: FAILED".to_owned()]);
    }
}
