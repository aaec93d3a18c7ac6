//! The adapters read the PSPs' own documented examples (fixtures under `tests/fixtures/`,
//! sources in its README) the way they are meant.

#[allow(dead_code)] // this binary uses the simulator only
mod common;

use payments_activities::psp::{PspError, RefundOutcome, stripe, toss};
use payments_workflows::contract::{ChargeOutcome, PendingReason};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Stripe: a succeeded PaymentIntent is a capture; `requires_action` is pending with the
/// 3-D Secure URL; a 402 card error is a decline with its decline code and intent id.
#[test]
fn stripe_fixtures() {
    let ok = stripe::charge_answer(StatusCode::OK, None, &fixture("stripe/payment_intent_succeeded.json")).unwrap();
    assert!(matches!(ok, ChargeOutcome::Captured { psp_reference } if psp_reference.starts_with("pi_")));
    let action =
        stripe::charge_answer(StatusCode::OK, None, &fixture("stripe/payment_intent_requires_action.json")).unwrap();
    assert!(
        matches!(action, ChargeOutcome::Pending { reason: PendingReason::ActionRequired { url: Some(_) }, .. }),
        "{action:?}"
    );
    let declined =
        stripe::charge_answer(StatusCode::PAYMENT_REQUIRED, None, &fixture("stripe/error_card_declined.json")).unwrap();
    assert!(
        matches!(declined, ChargeOutcome::Declined { code, psp_reference: Some(_), .. } if code == "generic_decline")
    );
    // A webhook event wraps the same PaymentIntent object.
    let event: serde_json::Value =
        serde_json::from_str(&fixture("stripe/event_payment_intent_succeeded.json")).unwrap();
    let pi: stripe::PaymentIntent = serde_json::from_value(event["data"]["object"].clone()).unwrap();
    assert!(matches!(stripe::intent_outcome(&pi), ChargeOutcome::Captured { .. }));
}

/// Toss: a DONE payment is a capture; a canceled one was captured too (the cancel is a refund);
/// REJECT_CARD_PAYMENT (403) is a decline; the webhook carries a Payment.
#[test]
fn toss_fixtures() {
    let done = toss::charge_answer(StatusCode::OK, None, &fixture("toss/payment_done.json")).unwrap();
    assert!(matches!(done, ChargeOutcome::Captured { .. }));
    let canceled: toss::Payment = serde_json::from_str(&fixture("toss/payment_canceled.json")).unwrap();
    assert!(matches!(toss::payment_outcome(&canceled), ChargeOutcome::Captured { .. }));
    assert!(!canceled.cancels.as_deref().unwrap_or_default().is_empty());
    let rejected =
        toss::charge_answer(StatusCode::FORBIDDEN, None, &fixture("toss/error_reject_card_payment.json")).unwrap();
    assert!(matches!(rejected, ChargeOutcome::Declined { code, .. } if code == "REJECT_CARD_PAYMENT"));
    let hook: serde_json::Value = serde_json::from_str(&fixture("toss/webhook_payment_status_changed.json")).unwrap();
    assert_eq!(hook["eventType"], "PAYMENT_STATUS_CHANGED");
    let payment: toss::Payment = serde_json::from_value(hook["data"].clone()).unwrap();
    assert_eq!(payment.status, "DONE");
    let unauthorized = toss::charge_answer(
        StatusCode::UNAUTHORIZED,
        None,
        r#"{"code":"UNAUTHORIZED_KEY","message":"인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다."}"#,
    );
    assert!(matches!(unauthorized, Err(PspError::Authentication(_))));
}

/// Stripe: the documented Refund object is a refund made under its id; the same object
/// `failed` is a refusal with Stripe's failure reason.
#[test]
fn stripe_refund_fixture() {
    let body = fixture("stripe/refund.json");
    let made = stripe::refund_answer(StatusCode::OK, None, &body).unwrap();
    assert_eq!(made, RefundOutcome::Refunded { psp_refund_reference: "re_1Nispe2eZvKYlo2Cd31jOCgZ".to_owned() });
    let mut failed: Value = serde_json::from_str(&body).unwrap();
    failed["status"] = json!("failed");
    failed["failure_reason"] = json!("expired_or_canceled_card");
    let refused = stripe::refund_answer(StatusCode::OK, None, &failed.to_string()).unwrap();
    assert!(
        matches!(&refused, RefundOutcome::Refused { code, .. } if code == "expired_or_canceled_card"),
        "{refused:?}"
    );
}

/// Toss settlements: the documented Settlement row adds up (payOutAmount = amount - fees,
/// supplyAmount + vat = fees), and the simulator's row for a billing payment carries every
/// documented field with the documented JSON type: what is built against the simulator reads
/// Toss's real answer.
#[tokio::test]
async fn toss_settlement_fixture_matches_the_simulator() {
    let documented: Vec<Value> = serde_json::from_str(&fixture("toss/settlements.json")).unwrap();
    let doc = &documented[0];
    let fees: i64 = doc["fees"].as_array().unwrap().iter().map(|f| f["fee"].as_i64().unwrap()).sum();
    let int = |v: &Value, k: &str| v[k].as_i64().unwrap_or_else(|| panic!("{k} is not an integer: {v}"));
    assert_eq!(int(doc, "payOutAmount"), int(doc, "amount") - fees);
    assert_eq!(int(doc, "supplyAmount") + int(doc, "vat"), fees);

    let sim = common::start_sim(psp_simulator::SimConfig::new()).await;
    let http = reqwest::Client::new();
    let payment = common::json_of(
        http.post(format!("{}/v1/billing/billing_success", sim.url))
            .basic_auth("test_sk_fixtures", Some(""))
            .json(&json!({"customerKey": "c", "amount": 15000, "orderId": "order-fixture", "orderName": "n"})),
    )
    .await;
    let day = &payment["approvedAt"].as_str().expect("approvedAt")[..10];
    let rows = common::json_of(
        http.get(format!("{}/v1/settlements?startDate={day}&endDate={day}", sim.url))
            .basic_auth("test_sk_fixtures", Some("")),
    )
    .await;
    let rows = rows.as_array().expect("a settlement list");
    let row = rows.iter().find(|r| r["orderId"] == "order-fixture").expect("the payment's settlement row");
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    for (field, value) in doc.as_object().unwrap() {
        let ours = row.get(field).unwrap_or_else(|| panic!("the simulator's settlement lacks {field}: {row}"));
        // A documented null (no easy pay, no cancel) may be null or absent of detail either way.
        if !value.is_null() && !ours.is_null() {
            assert_eq!(kind(ours), kind(value), "{field}: simulator {ours}, documented {value}");
        }
    }
    let ours_fees: i64 = row["fees"].as_array().unwrap().iter().map(|f| f["fee"].as_i64().unwrap()).sum();
    assert_eq!(int(row, "payOutAmount"), int(row, "amount") - ours_fees, "{row}");
    assert_eq!(int(row, "supplyAmount") + int(row, "vat"), ours_fees, "{row}");
}

/// Every documented example in `tests/fixtures/` is read by a test of this file.
#[test]
fn every_fixture_is_read() {
    let source = include_str!("fixtures.rs");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for psp in ["stripe", "toss"] {
        for entry in std::fs::read_dir(root.join(psp)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let call = format!("fixture(\"{psp}/{name}\")");
            assert!(source.contains(&call), "tests/fixtures/{psp}/{name} is read by no test");
        }
    }
}
