//! A simulator on port 0 for adapter contract tests.

use payments_domain::{BuyerId, CheckoutId, Currency, Money, PaymentOrderId};
use payments_workflows::contract::ChargeInput;
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
    PaymentOrderId::parse(format!("order-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)))
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
    }
}

pub async fn get_json(url: String) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

pub async fn captures(sim: &Sim, order: &PaymentOrderId) -> usize {
    let body = get_json(format!("{}/_sim/captures?payment_order_id={order}", sim.url)).await;
    body["captures"].as_array().map_or(0, Vec::len)
}
