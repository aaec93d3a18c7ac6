//! The adapters read the PSPs' own documented examples (fixtures under `tests/fixtures/`,
//! sources in its README) the way they are meant.

use payments_activities::psp::{PspError, stripe, toss};
use payments_workflows::contract::{ChargeOutcome, PendingReason};
use reqwest::StatusCode;

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
