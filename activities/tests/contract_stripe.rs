//! The Stripe adapter against the simulator speaking Stripe's wire format.

mod common;

use common::{captures, charge, lookup_input, start_sim};
use payments_activities::psp::stripe::StripeClient;
use payments_activities::psp::{PspClient, PspError, PspLookup, RefundOutcome, RefundRequest, SecretKey};
use payments_domain::{Currency, Money};
use payments_workflows::contract::{ChargeOutcome, PendingReason, RefundLookup};
use std::time::Duration;

fn client(url: &str, timeout_ms: u64) -> StripeClient {
    StripeClient::new(url, SecretKey::new("sk_test_contract"), Duration::from_millis(timeout_ms)).unwrap()
}

/// Capture, idempotent repeat, lookup by order id and by reference, partial refunds up to
/// the captured amount and a refused over-refund.
#[tokio::test]
async fn charge_lookup_refund() {
    let sim = start_sim(psp_simulator::SimConfig::new()).await;
    let stripe = client(&sim.url, 5_000);
    let c = charge("pm_card_visa", "20.00", "USD");
    let ChargeOutcome::Captured { psp_reference } = stripe.charge(&c, &c.payment_token).await.unwrap() else {
        panic!("not captured")
    };
    assert_eq!(
        stripe.charge(&c, &c.payment_token).await.unwrap(),
        ChargeOutcome::Captured { psp_reference: psp_reference.clone() }
    );
    assert_eq!(captures(&sim, &c.payment_order_id).await, 1);
    let found = ChargeOutcome::Captured { psp_reference: psp_reference.clone() };
    assert_eq!(common::found(stripe.lookup(&lookup_input(&c, None)).await.unwrap(), &c), found);
    assert_eq!(common::found(stripe.lookup(&lookup_input(&c, Some(psp_reference.clone()))).await.unwrap(), &c), found);
    let other = charge("pm_card_visa", "1.00", "USD");
    // Stripe finds an intent by our order id through its search, which may lag: a miss.
    assert_eq!(stripe.lookup(&lookup_input(&other, None)).await.unwrap(), PspLookup::SearchMiss);

    let usd = Currency::parse("USD").unwrap();
    let refund = |n: u32, amount: &str| RefundRequest {
        refund_id: format!("{}:refund:{n}", c.payment_order_id),
        payment_order_id: c.payment_order_id.clone(),
        psp_reference: psp_reference.clone(),
        amount: Money::parse(amount, usd).unwrap(),
        reason: "customer changed their mind".into(),
    };
    assert!(matches!(stripe.refund(&refund(1, "15.00")).await.unwrap(), RefundOutcome::Refunded { .. }));
    assert!(matches!(stripe.refund(&refund(1, "15.00")).await.unwrap(), RefundOutcome::Refunded { .. }), "replay");
    assert!(matches!(stripe.refund(&refund(2, "5.01")).await.unwrap(), RefundOutcome::Refused { .. }));
    assert!(matches!(stripe.refund(&refund(3, "5.00")).await.unwrap(), RefundOutcome::Refunded { .. }));
}

/// Declines are outcomes carrying Stripe's decline code; bad credentials are an error.
#[tokio::test]
async fn declines_and_auth() {
    let sim = start_sim(psp_simulator::SimConfig::new()).await;
    let stripe = client(&sim.url, 5_000);
    let c = charge("pm_card_chargeDeclinedInsufficientFunds", "5.00", "USD");
    assert!(
        matches!(stripe.charge(&c, &c.payment_token).await.unwrap(), ChargeOutcome::Declined { code, .. } if code == "insufficient_funds")
    );
    assert!(matches!(common::found(stripe.lookup(&lookup_input(&c, None)).await.unwrap(), &c),
        ChargeOutcome::Declined { code, .. } if code == "insufficient_funds"));
    let bad = StripeClient::new(&sim.url, SecretKey::new("sk_live_wrong"), Duration::from_secs(5)).unwrap();
    assert!(matches!(
        bad.charge(&charge("pm_card_visa", "1.00", "USD"), "pm_card_visa").await,
        Err(PspError::Authentication(_))
    ));
    assert!(matches!(
        stripe.charge(&charge("pm_card_unknown", "1.00", "USD"), "pm_card_unknown").await,
        Err(PspError::InvalidRequest(_))
    ));
}

/// A lost response and a response slower than our timeout are `OutcomeUnknown`, never a
/// failure; a lookup then finds the capture.
#[tokio::test]
async fn lost_and_late_answers_are_unknown() {
    let mut config = psp_simulator::SimConfig::new();
    config.slow_response_ms = 2_000;
    let sim = start_sim(config).await;
    let stripe = client(&sim.url, 500);
    for token in ["pm_card_sim_lost_response", "pm_card_sim_slow"] {
        let c = charge(token, "7.00", "USD");
        assert!(matches!(stripe.charge(&c, &c.payment_token).await, Err(PspError::OutcomeUnknown(_))), "{token}");
        assert!(
            matches!(
                common::found(stripe.lookup(&lookup_input(&c, None)).await.unwrap(), &c),
                ChargeOutcome::Captured { .. }
            ),
            "{token}"
        );
        assert_eq!(captures(&sim, &c.payment_order_id).await, 1, "{token}");
    }
}

/// 3-D Secure leaves the payment pending with the challenge URL; once the buyer completes
/// the challenge a lookup finds it captured.
#[tokio::test]
async fn three_d_secure_is_pending_until_completed() {
    let sim = start_sim(psp_simulator::SimConfig::new()).await;
    let stripe = client(&sim.url, 5_000);
    let c = charge("pm_card_threeDSecure2Required", "30.00", "USD");
    let ChargeOutcome::Pending { psp_reference, reason: PendingReason::ActionRequired { url: Some(url) } } =
        stripe.charge(&c, &c.payment_token).await.unwrap()
    else {
        panic!("expected requires_action")
    };
    assert!(url.contains(&psp_reference));
    let resp = reqwest::Client::new()
        .post(format!("{}/_sim/3ds/{psp_reference}", sim.url))
        .json(&serde_json::json!({"result": "approve"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert!(matches!(
        common::found(stripe.lookup(&lookup_input(&c, Some(psp_reference))).await.unwrap(), &c),
        ChargeOutcome::Captured { .. }
    ));
}

/// A refund is found again by our refund id (in `metadata[refund_id]`), through the intent's
/// refund list, even when its answer was lost; another id finds nothing.
#[tokio::test]
async fn refunds_are_found_by_our_refund_id() {
    let sim = start_sim(psp_simulator::SimConfig::new()).await;
    let stripe = client(&sim.url, 5_000);
    let c = charge("pm_card_visa", "20.00", "USD");
    let ChargeOutcome::Captured { psp_reference } = stripe.charge(&c, &c.payment_token).await.unwrap() else {
        panic!("not captured")
    };
    let refund = |n: u32| RefundRequest {
        refund_id: format!("{}:refund:{n}", c.payment_order_id),
        payment_order_id: c.payment_order_id.clone(),
        psp_reference: psp_reference.clone(),
        amount: Money::parse("5.00", Currency::parse("USD").unwrap()).unwrap(),
        reason: "damaged".into(),
    };
    assert_eq!(stripe.find_refund(&refund(1)).await.unwrap(), RefundLookup::NotFound);
    common::set_outage(&sim, serde_json::json!({"refund_answers_lost": true})).await;
    assert!(matches!(stripe.refund(&refund(1)).await, Err(PspError::OutcomeUnknown(_))), "answer lost");
    common::set_outage(&sim, serde_json::json!({})).await;
    assert!(matches!(
        stripe.find_refund(&refund(1)).await.unwrap(),
        RefundLookup::Found(RefundOutcome::Refunded { .. })
    ));
    assert_eq!(stripe.find_refund(&refund(2)).await.unwrap(), RefundLookup::NotFound);
}

/// Looking an intent up by our order id goes through the Search API, which may lag behind
/// writes: right after the capture the search misses (a miss, not "no such payment") while the
/// intent is there by id.
#[tokio::test]
async fn a_lagging_search_misses_and_says_so() {
    let mut config = psp_simulator::SimConfig::new();
    config.stripe_search_lag_ms = 60_000;
    let sim = start_sim(config).await;
    let stripe = client(&sim.url, 5_000);
    let c = charge("pm_card_visa", "3.00", "USD");
    let ChargeOutcome::Captured { psp_reference } = stripe.charge(&c, &c.payment_token).await.unwrap() else {
        panic!("not captured")
    };
    assert_eq!(stripe.lookup(&lookup_input(&c, None)).await.unwrap(), PspLookup::SearchMiss);
    assert!(matches!(
        common::found(stripe.lookup(&lookup_input(&c, Some(psp_reference))).await.unwrap(), &c),
        ChargeOutcome::Captured { .. }
    ));
}
