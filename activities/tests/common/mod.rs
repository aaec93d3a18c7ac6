//! A simulator on port 0 for adapter contract tests.

use payments_activities::psp::PspLookup;
use payments_domain::{BuyerId, CheckoutId, Currency, Money, PaymentOrderId};
use payments_workflows::contract::{ChargeInput, ChargeOutcome, LookupInput};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running simulator; dropping it stops the server.
pub struct Sim {
    pub url: String,
    _stop: oneshot::Sender<()>,
}

pub async fn start_sim(config: psp_simulator::SimConfig) -> Sim {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        psp_simulator::run(listener, config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Sim { url, _stop: tx }
}

/// A process-unique order id in Toss's format.
pub fn order_id() -> PaymentOrderId {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    // Letters between the numbers: an id is never mistaken for a card number.
    PaymentOrderId::parse(format!("order-p{}n{nanos}c{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)))
        .unwrap()
}

pub fn charge(token: &str, amount: &str, currency: &str) -> ChargeInput {
    let currency = Currency::parse(currency).unwrap();
    ChargeInput {
        payment_order_id: order_id(),
        checkout_id: CheckoutId::parse("checkout-1").unwrap(),
        buyer_id: BuyerId::parse("buyer-1").unwrap(),
        payment_token: token.to_owned(),
        amount: Money::parse(amount, currency).unwrap(),
        first_sent_at_ms: None,
    }
}

/// A lookup of `c`'s payment (by reference when given), unchecked.
pub fn lookup_input(c: &ChargeInput, reference: Option<String>) -> LookupInput {
    LookupInput {
        payment_order_id: c.payment_order_id.clone(),
        psp_reference: reference,
        expected: None,
        first_sent_at_ms: None,
        last_sent_at_ms: None,
    }
}

/// The outcome of the payment a lookup found, after checking that the PSP describes it as
/// `c`'s: our order id, amount and currency.
pub fn found(raw: PspLookup, c: &ChargeInput) -> ChargeOutcome {
    let PspLookup::Found(payment) = raw else { panic!("no payment found: {raw:?}") };
    assert_eq!(payment.order_id.as_deref(), Some(c.payment_order_id.as_str()));
    assert_eq!(payment.amount_minor, Some(c.amount.amount_minor()));
    assert!(payment.currency.unwrap_or_default().eq_ignore_ascii_case(c.amount.currency().code()));
    payment.outcome
}

pub async fn get_json(url: String) -> serde_json::Value {
    json_of(reqwest::Client::new().get(url)).await
}

/// Sends a request to the simulator; answers its JSON body.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.expect("request to the simulator").json().await.expect("a JSON answer")
}

pub async fn captures(sim: &Sim, order: &PaymentOrderId) -> usize {
    let body = get_json(format!("{}/_sim/captures?payment_order_id={order}", sim.url)).await;
    body["captures"].as_array().map_or(0, Vec::len)
}

/// Sets the simulator's outage switch (`{"charges"?, "lookups"?, "refunds"?,
/// "refund_answers_lost"?}`).
pub async fn set_outage(sim: &Sim, setting: serde_json::Value) {
    let resp = reqwest::Client::new().post(format!("{}/_sim/outage", sim.url)).json(&setting).send().await.unwrap();
    assert!(resp.status().is_success());
}
