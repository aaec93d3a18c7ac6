//! What the PSP simulator saw, asked through its admin API (`/_sim/...`) or its PSP API with
//! the stack's test keys: the oracle a test checks the platform against.

use crate::stack::Stack;
use serde_json::Value;
use std::time::Duration;

/// The stack's Stripe test secret key.
pub const STRIPE_TEST_KEY: &str = "sk_test_testkit";
/// The stack's Toss test secret key.
pub const TOSS_TEST_KEY: &str = "test_sk_testkit";

impl Stack {
    /// The PSP's id for an order's payment (Stripe PaymentIntent via the Search API, Toss
    /// `paymentKey` via the order lookup), read from the simulator once the charge reached it.
    pub async fn psp_payment_id(&self, provider: &str, po: &str) -> String {
        self.poll_until("the payment to reach the PSP", Duration::from_secs(30), || async {
            let request = match provider {
                "stripe" => self
                    .http
                    .get(format!("{}/v1/payment_intents/search", self.sim_url))
                    .query(&[("query", format!("metadata['payment_order_id']:'{po}'"))])
                    .bearer_auth(STRIPE_TEST_KEY),
                _ => self
                    .http
                    .get(format!("{}/v1/payments/orders/{po}", self.sim_url))
                    .basic_auth(TOSS_TEST_KEY, Some("")),
            };
            let body: Value = request.send().await.ok()?.json().await.ok()?;
            let id = if provider == "stripe" { body["data"][0]["id"].as_str() } else { body["paymentKey"].as_str() };
            id.map(str::to_owned)
        })
        .await
    }

    /// Every payout the simulator's payout providers made (Toss payouts and Stripe Connect),
    /// optionally only those with our `reference`: the "money left" records.
    pub async fn sim_payouts(&self, reference: Option<&str>) -> Vec<Value> {
        let mut request = self.http.get(format!("{}/_sim/payouts", self.sim_url));
        if let Some(reference) = reference {
            request = request.query(&[("reference", reference)]);
        }
        list(request, "payouts").await
    }

    /// Takes the simulator's PSP down or brings it back (`/_sim/outage`): charges, lookups and
    /// refunds each answer the PSP's retryable server error while down.
    pub async fn psp_outage(&self, charges: bool, lookups: bool, refunds: bool) {
        self.sim_outage(serde_json::json!({ "charges": charges, "lookups": lookups, "refunds": refunds })).await;
    }

    /// Sets the simulator's whole outage switch from `setting` (`charges`, `lookups`,
    /// `refunds`, `refund_answers_lost`; missing ones off).
    pub async fn sim_outage(&self, setting: Value) {
        let resp = self.http.post(format!("{}/_sim/outage", self.sim_url)).json(&setting).send().await;
        let resp = resp.expect("POST /_sim/outage");
        assert!(resp.status().is_success(), "outage switch: {}", resp.status());
    }

    /// Replaces a seller's scenario at the payout providers (`{"seller": s, "paid_then_failed":
    /// true}`, `{"seller": s}` for a well-behaved one).
    pub async fn payout_scenario(&self, scenario: Value) {
        let resp = self.http.post(format!("{}/_sim/payouts/scenario", self.sim_url)).json(&scenario).send().await;
        let resp = resp.expect("sim payout scenario");
        assert!(resp.status().is_success(), "scenario {scenario}: {}", resp.status());
    }

    /// The simulator's request log for one idempotency key (arrival times and outcomes).
    pub async fn sim_requests(&self, idempotency_key: &str) -> Vec<Value> {
        let url = format!("{}/_sim/requests?idempotency_key={idempotency_key}", self.sim_url);
        list(self.http.get(url), "requests").await
    }

    /// The simulator's captures for one order (the "money moved" records).
    pub async fn captures(&self, payment_order_id: &str) -> Vec<Value> {
        let url = format!("{}/_sim/captures?payment_order_id={payment_order_id}", self.sim_url);
        list(self.http.get(url), "captures").await
    }

    /// The simulator's refunds (and cancellations) of one order.
    pub async fn sim_refunds(&self, payment_order_id: &str) -> Vec<Value> {
        let url = format!("{}/_sim/refunds?payment_order_id={payment_order_id}", self.sim_url);
        list(self.http.get(url), "refunds").await
    }

    /// A Toss payment the buyer authenticated for a hosted `checkout` (not confirmed yet), as
    /// the PSP's payment window leaves it; answers its `paymentKey`.
    pub async fn toss_payment_session(&self, checkout: &str, amount: i64) -> String {
        let session: Value = self
            .http
            .post(format!("{}/_sim/toss/payment-sessions", self.sim_url))
            .json(&serde_json::json!({"orderId": checkout, "amount": amount}))
            .send()
            .await
            .expect("POST payment session")
            .json()
            .await
            .expect("json");
        session["paymentKey"].as_str().expect("paymentKey").to_owned()
    }

    /// Makes the simulator forget every idempotency key now, as a real PSP does after its
    /// key lifetime (Stripe 24 h, Toss 15 days): a resend then executes anew.
    pub async fn expire_psp_keys(&self) {
        let resp = self
            .http
            .post(format!("{}/_sim/idempotency/expire", self.sim_url))
            .send()
            .await
            .expect("POST /_sim/idempotency/expire");
        assert!(resp.status().is_success(), "expire keys: {}", resp.status());
    }

    /// A payment as the PSP shows it: `GET {path}` on the simulator's PSP API with the stack's
    /// test key of the PSP the path belongs to (`/v1/payment_intents/...` Stripe, else Toss).
    /// Fails the test unless the PSP answers 2xx, so a missing payment is never taken for one
    /// in some other state.
    pub async fn psp_payment(&self, path: &str) -> Value {
        let request = self.http.get(format!("{}{path}", self.sim_url));
        let request = match path.starts_with("/v1/payment_intents") {
            true => request.bearer_auth(STRIPE_TEST_KEY),
            false => request.basic_auth(TOSS_TEST_KEY, Some("")),
        };
        let resp = request.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json().await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// The `key` array of a simulator admin answer. Panics on a failed request, an error status or
/// an answer without the array, so a test asserting "nothing at the PSP" cannot pass on a
/// request that failed.
async fn list(request: reqwest::RequestBuilder, key: &str) -> Vec<Value> {
    let response = request.send().await.unwrap_or_else(|e| panic!("simulator {key}: {e}"));
    let status = response.status();
    assert!(status.is_success(), "simulator {key}: {status}");
    let body: Value = response.json().await.unwrap_or_else(|e| panic!("simulator {key}: {e}"));
    body[key].as_array().cloned().unwrap_or_else(|| panic!("simulator {key}: no `{key}` array in {body}"))
}
