//! The gateway's REST calls tests make through a stack (with its `payments` key): posting
//! checkouts, reading back, waiting for a checkout to be done, the hosted success URL.

use crate::stack::{CHECKOUT_TIMEOUT_SECS, Stack};
use crate::temporal::unique;
use payments_domain::CheckoutId;
use payments_store::CheckoutRecord;
use serde_json::Value;
use std::time::Duration;

impl Stack {
    /// POSTs a raw body to `/v1/payments`; answers status and JSON body.
    pub async fn post_payment_raw(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/payments", self.rest_url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST /v1/payments");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// POSTs a JSON checkout.
    pub async fn post_payment(&self, body: &Value) -> (u16, Value) {
        self.post_payment_raw(body.to_string()).await
    }

    /// GETs a path of the gateway; answers status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(format!("{}{path}", self.rest_url)).send().await.expect("GET");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the checkout is done: every order final and every captured one booked.
    pub async fn wait_done(&self, checkout_id: &str) -> CheckoutRecord {
        let id = CheckoutId::parse(checkout_id).expect("checkout id");
        self.poll_until(
            &format!("checkout {checkout_id} to be done"),
            Duration::from_secs(CHECKOUT_TIMEOUT_SECS),
            || {
                let (store, id) = (self.store.clone(), id.clone());
                async move { store.checkout(&id).await.ok().flatten().filter(|c| c.is_payment_done) }
            },
        )
        .await
    }

    /// Posts a one-order checkout paid with `token`; answers the checkout id and the order id.
    pub async fn post_one_order(&self, token: &str, amount: &str, currency: &str) -> (String, String) {
        let id = unique("chk");
        let po = format!("{id}-1");
        let body = serde_json::json!({
            "checkout_id": id,
            "buyer_info": {"buyer_id": "buyer-1"},
            "credit_card_info": {"token": token},
            "payment_orders": [{"seller_account": "seller-a", "amount": amount, "currency": currency, "payment_order_id": po}],
        });
        let (status, answer) = self.post_payment(&body).await;
        assert_eq!(status, 202, "{answer}");
        (id, po)
    }

    /// Creates hosted checkout `id` (201): two KRW orders, `{id}-1` of 12000 to seller-a and
    /// `{id}-2` of 8000 to seller-b, 20000 in all; answers the order ids.
    pub async fn create_hosted_two_sellers(&self, id: &str) -> (String, String) {
        let (po1, po2) = (format!("{id}-1"), format!("{id}-2"));
        let body = serde_json::json!({
            "checkout_id": id,
            "buyer_info": {"buyer_id": "buyer-1"},
            "payment_orders": [
                {"seller_account": "seller-a", "amount": "12000", "currency": "KRW", "payment_order_id": po1},
                {"seller_account": "seller-b", "amount": "8000", "currency": "KRW", "payment_order_id": po2}
            ]
        });
        let resp = self.http.post(format!("{}/v1/checkouts", self.rest_url)).json(&body).send().await.expect("POST");
        assert_eq!(resp.status().as_u16(), 201, "create hosted checkout {id}");
        (po1, po2)
    }

    /// Our success page as Toss redirects the buyer to it after paying `amount` of `checkout`.
    pub fn hosted_success_url(&self, checkout: &str, payment_key: &str, amount: i64) -> String {
        format!(
            "{}/checkout/{checkout}/success?paymentKey={payment_key}&orderId={checkout}&amount={amount}",
            self.rest_url
        )
    }
}
