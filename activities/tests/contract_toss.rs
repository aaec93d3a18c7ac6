//! The Toss Payments adapter against the simulator speaking Toss's wire format.

mod common;

use common::{captures, charge, lookup_input, start_sim};
use payments_activities::psp::toss::TossClient;
use payments_activities::psp::{PspClient, PspError, PspLookup, RefundOutcome, RefundRequest, SecretKey};
use payments_domain::{Currency, Money};
use payments_workflows::contract::{ChargeOutcome, RefundLookup};
use serde_json::json;
use std::time::Duration;

fn client(url: &str, timeout_ms: u64) -> TossClient {
    TossClient::new(url, SecretKey::new("test_sk_contract"), Duration::from_millis(timeout_ms)).unwrap()
}

/// Billing-key charge, idempotent repeat, lookup by orderId and by paymentKey, partial
/// cancels up to the captured amount and a refused over-cancel.
#[tokio::test]
async fn billing_charge_lookup_cancel() {
    let sim = start_sim(psp_simulator::SimConfig::new()).await;
    let toss = client(&sim.url, 5_000);
    let c = charge("billing_success", "50000", "KRW");
    let ChargeOutcome::Captured { psp_reference } = toss.charge(&c, &c.payment_token).await.unwrap() else {
        panic!("not captured")
    };
    assert_eq!(
        toss.charge(&c, &c.payment_token).await.unwrap(),
        ChargeOutcome::Captured { psp_reference: psp_reference.clone() }
    );
    assert_eq!(captures(&sim, &c.payment_order_id).await, 1);
    let found = ChargeOutcome::Captured { psp_reference: psp_reference.clone() };
    assert_eq!(common::found(toss.lookup(&lookup_input(&c, None)).await.unwrap(), &c), found);
    assert_eq!(common::found(toss.lookup(&lookup_input(&c, Some(psp_reference.clone()))).await.unwrap(), &c), found);
    let other = charge("billing_success", "1000", "KRW");
    // Toss reads by order id: a consistent "no such payment".
    assert_eq!(toss.lookup(&lookup_input(&other, None)).await.unwrap(), PspLookup::NotFound);

    let krw = Currency::parse("KRW").unwrap();
    let cancel = |n: u32, amount: &str| RefundRequest {
        refund_id: format!("{}-refund-{n}", c.payment_order_id),
        payment_order_id: c.payment_order_id.clone(),
        psp_reference: psp_reference.clone(),
        amount: Money::parse(amount, krw).unwrap(),
        reason: "고객 변심".into(),
    };
    assert!(matches!(toss.refund(&cancel(1, "30000")).await.unwrap(), RefundOutcome::Refunded { .. }));
    assert!(matches!(toss.refund(&cancel(2, "20001")).await.unwrap(), RefundOutcome::Refused { .. }));
    assert!(matches!(toss.refund(&cancel(3, "20000")).await.unwrap(), RefundOutcome::Refunded { .. }));
}

/// Declines carry Toss's code; non-KRW and badly formed order ids are refused before any
/// call; bad credentials are an error.
#[tokio::test]
async fn declines_validation_and_auth() {
    let sim = start_sim(psp_simulator::SimConfig::new()).await;
    let toss = client(&sim.url, 5_000);
    let c = charge("billing_decline", "10000", "KRW");
    assert!(
        matches!(toss.charge(&c, &c.payment_token).await.unwrap(), ChargeOutcome::Declined { code, .. } if code == "REJECT_CARD_COMPANY")
    );
    assert!(matches!(
        toss.charge(&charge("billing_success", "10.00", "USD"), "billing_success").await,
        Err(PspError::InvalidRequest(_))
    ));
    let bad = TossClient::new(&sim.url, SecretKey::new("live_sk_wrong"), Duration::from_secs(5)).unwrap();
    assert!(matches!(
        bad.charge(&charge("billing_success", "1000", "KRW"), "billing_success").await,
        Err(PspError::Authentication(_))
    ));
}

/// Lost and late answers are `OutcomeUnknown`; a lookup by orderId then finds the capture.
#[tokio::test]
async fn lost_and_late_answers_are_unknown() {
    let mut config = psp_simulator::SimConfig::new();
    config.slow_response_ms = 2_000;
    let sim = start_sim(config).await;
    let toss = client(&sim.url, 500);
    for token in ["billing_sim_lost_response", "billing_sim_slow"] {
        let c = charge(token, "7000", "KRW");
        assert!(matches!(toss.charge(&c, &c.payment_token).await, Err(PspError::OutcomeUnknown(_))), "{token}");
        assert!(
            matches!(
                common::found(toss.lookup(&lookup_input(&c, None)).await.unwrap(), &c),
                ChargeOutcome::Captured { .. }
            ),
            "{token}"
        );
        assert_eq!(captures(&sim, &c.payment_order_id).await, 1, "{token}");
    }
}

/// Hosted flow: a payment the buyer approved (a simulator payment session) is confirmed with
/// our amount; a wrong amount confirms nothing.
#[tokio::test]
async fn confirm_checks_the_amount() {
    let sim = start_sim(psp_simulator::SimConfig::new()).await;
    let toss = client(&sim.url, 5_000);
    let order = common::order_id();
    let session = common::json_of(
        reqwest::Client::new()
            .post(format!("{}/_sim/toss/payment-sessions", sim.url))
            .json(&json!({"orderId": order.as_str(), "amount": 15000})),
    )
    .await;
    let key = session["paymentKey"].as_str().unwrap().to_owned();
    let krw = Currency::parse("KRW").unwrap();
    let wrong = toss.confirm_payment(&key, order.as_str(), Money::parse("1500", krw).unwrap()).await;
    // Toss refuses a confirmation whose amount differs from the payment's: 400 INVALID_REQUEST,
    // which is our request's fault (no decline of the buyer, nothing to retry).
    assert!(
        matches!(&wrong, Err(PspError::InvalidRequest(m)) if m.contains("HTTP 400 Bad Request INVALID_REQUEST")),
        "{wrong:?}"
    );
    assert_eq!(captures(&sim, &order).await, 0);
    let ok = toss.confirm_payment(&key, order.as_str(), Money::parse("15000", krw).unwrap()).await.unwrap();
    assert_eq!(ok, ChargeOutcome::Captured { psp_reference: key });
    assert_eq!(captures(&sim, &order).await, 1);
}

/// A cancel is found again by our refund id, which ends its `cancelReason`, even when its
/// answer was lost; another id finds nothing.
#[tokio::test]
async fn cancels_are_found_by_our_refund_id() {
    let sim = start_sim(psp_simulator::SimConfig::new()).await;
    let toss = client(&sim.url, 5_000);
    let c = charge("billing_success", "30000", "KRW");
    let ChargeOutcome::Captured { psp_reference } = toss.charge(&c, &c.payment_token).await.unwrap() else {
        panic!("not captured")
    };
    let cancel = |n: u32| RefundRequest {
        refund_id: format!("{}-refund-{n}", c.payment_order_id),
        payment_order_id: c.payment_order_id.clone(),
        psp_reference: psp_reference.clone(),
        amount: Money::parse("10000", Currency::parse("KRW").unwrap()).unwrap(),
        reason: "고객 변심".into(),
    };
    assert_eq!(toss.find_refund(&cancel(1)).await.unwrap(), RefundLookup::NotFound);
    common::set_outage(&sim, json!({"refund_answers_lost": true})).await;
    assert!(matches!(toss.refund(&cancel(1)).await, Err(PspError::OutcomeUnknown(_))), "answer lost");
    common::set_outage(&sim, json!({})).await;
    assert!(matches!(toss.find_refund(&cancel(1)).await.unwrap(), RefundLookup::Found(RefundOutcome::Refunded { .. })));
    assert_eq!(toss.find_refund(&cancel(2)).await.unwrap(), RefundLookup::NotFound);
}

/// A payment key is one path segment: `orders/<order>` names no payment (it would otherwise
/// reach Toss's lookup by order id), and `..` is refused before any call.
#[tokio::test]
async fn payment_keys_never_become_paths() {
    let sim = start_sim(psp_simulator::SimConfig::new()).await;
    let toss = client(&sim.url, 5_000);
    let c = charge("billing_success", "1000", "KRW");
    toss.charge(&c, &c.payment_token).await.unwrap();
    let by = |key: &str| lookup_input(&c, Some(key.to_owned()));
    assert_eq!(toss.lookup(&by(&format!("orders/{}", c.payment_order_id))).await.unwrap(), PspLookup::NotFound);
    assert!(matches!(toss.lookup(&by("..")).await, Err(PspError::InvalidRequest(_))));
}

/// After Toss forgot the key, the same charge again is refused as a duplicate order id: an
/// unknown outcome to ask about, never a failure (the first charge captured).
#[tokio::test]
async fn a_duplicate_order_id_is_an_unknown_outcome() {
    let sim = start_sim(psp_simulator::SimConfig::new()).await;
    let toss = client(&sim.url, 5_000);
    let c = charge("billing_success", "5000", "KRW");
    toss.charge(&c, &c.payment_token).await.unwrap();
    reqwest::Client::new().post(format!("{}/_sim/idempotency/expire", sim.url)).send().await.unwrap();
    assert!(matches!(toss.charge(&c, &c.payment_token).await, Err(PspError::OutcomeUnknown(_))));
    assert_eq!(captures(&sim, &c.payment_order_id).await, 1);
}
