//! The PSPs' merchant dashboards, as far as tests need them: a refund an
//! operator makes by hand, outside the platform's API calls, which the
//! platform only learns about from the webhook, the refund reads and the
//! settlement reports — the "refund we did not make" a reconciliation must
//! explain.
//!
//! # Admin
//!
//! * `POST /_sim/dashboard/refunds` with `{"psp": "stripe"|"toss",
//!   "payment_reference": "pi_...|paymentKey", "amount_minor": N,
//!   "reason"?: "..."}` refunds `amount_minor` (positive) of a captured
//!   payment through the dialect's own refund path (`stripe/refunds.rs`,
//!   `toss/cancel.rs`): the charge's or payment's refundable remainder
//!   shrinks, the refund is recorded for `/_sim/refunds` (without an
//!   idempotency key) and the settlement reports, readable through
//!   Stripe's `GET /v1/refunds` or the Toss payment's `cancels`, counted in
//!   `/_sim/stats`, and announced with the webhook the API refund sends
//!   (Stripe `charge.refunded`, Toss `PAYMENT_STATUS_CHANGED`). The outage
//!   switch does not apply (the dashboard is not the API). Stripe's
//!   `reason` is one of its refund reasons (`duplicate`, `fraudulent`,
//!   `requested_by_customer`) or absent; Toss's is the `cancelReason`
//!   (default [`TOSS_DASHBOARD_CANCEL_REASON`]). Answers 200 with the
//!   PSP's object: the Stripe `refund`, or the Toss `Payment` with its new
//!   `cancels` entry. An unknown payment is 404; more than the refundable
//!   remainder, a payment that captured nothing, an already fully refunded
//!   one or a malformed body is 400; both as `{"error": "<message>"}`, the
//!   message in the PSP's own words where it has them.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use crate::admin::admin_error;
use crate::ledger::Psp;
use crate::state::SimState;
use crate::stripe::error::json_bytes;
use crate::stripe::refunds::{REFUND_REASONS, RefundParams, refund_in_ledger};
use crate::toss::body::CANCEL_REASON_LEN_MAX;
use crate::toss::cancel::dashboard_cancel;

/// `cancelReason` of a Toss dashboard refund given no `reason`.
pub const TOSS_DASHBOARD_CANCEL_REASON: &str = "dashboard refund";
/// Longest `payment_reference` accepted (longer than any PSP's id).
const PAYMENT_REFERENCE_LEN_MAX: usize = 200;

/// The dashboard route.
pub fn router(sim: Arc<SimState>) -> Router {
    Router::new().route("/_sim/dashboard/refunds", post(refund)).with_state(sim)
}

/// Body of `POST /_sim/dashboard/refunds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DashboardRefund {
    psp: Psp,
    payment_reference: String,
    amount_minor: u64,
    reason: Option<String>,
}

/// Parses and validates a dashboard refund. Read as JSON whatever the
/// `Content-Type`, so a bare `curl -d` works.
fn parse(body: &[u8]) -> Result<DashboardRefund, String> {
    let request: DashboardRefund =
        serde_json::from_slice(body).map_err(|error| format!("invalid dashboard refund: {error}"))?;
    let reference_len = request.payment_reference.chars().count();
    if reference_len == 0 || reference_len > PAYMENT_REFERENCE_LEN_MAX {
        return Err(format!("payment_reference must be 1 to {PAYMENT_REFERENCE_LEN_MAX} characters"));
    }
    if request.amount_minor == 0 {
        return Err("amount_minor must be positive".to_owned());
    }
    match (request.psp, request.reason.as_deref()) {
        (Psp::Stripe, Some(reason)) if !REFUND_REASONS.contains(&reason) => {
            Err(format!("a Stripe refund reason is one of {}", REFUND_REASONS.join(", ")))
        }
        (Psp::Toss, Some(reason)) if reason.is_empty() || reason.chars().count() > CANCEL_REASON_LEN_MAX => {
            Err(format!("a Toss cancelReason is 1 to {CANCEL_REASON_LEN_MAX} characters"))
        }
        _ => Ok(request),
    }
}

/// `POST /_sim/dashboard/refunds`
async fn refund(State(sim): State<Arc<SimState>>, body: Bytes) -> Response {
    let request = match parse(&body) {
        Ok(request) => request,
        Err(message) => return admin_error(StatusCode::BAD_REQUEST, &message),
    };
    tracing::info!(?request, "dashboard refund");
    let DashboardRefund { psp, payment_reference, amount_minor, reason } = request;
    let answered = match psp {
        Psp::Stripe => {
            let params = RefundParams {
                payment_intent: payment_reference,
                amount: Some(amount_minor),
                reason,
                metadata: BTreeMap::new(),
            };
            sim.with_ledger(|ledger| refund_in_ledger(&sim, ledger, params, None))
                .map(|refund| json_bytes(&refund))
                .map_err(|error| (error.status(), error.to_string()))
        }
        Psp::Toss => {
            let reason = reason.unwrap_or_else(|| TOSS_DASHBOARD_CANCEL_REASON.to_owned());
            dashboard_cancel(&sim, &payment_reference, amount_minor, reason)
                .map(|payment| json_bytes(&payment))
                .map_err(|error| (error.status, error.message))
        }
    };
    match answered {
        Ok(object) => ([(header::CONTENT_TYPE, "application/json")], object).into_response(),
        // Not found stays 404; every other refusal is the caller's 400 here
        // (Toss says 403 for some, but this is not Toss's API).
        Err((status, message)) if status == StatusCode::NOT_FOUND => admin_error(status, &message),
        Err((_, message)) => admin_error(StatusCode::BAD_REQUEST, &message),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(body: serde_json::Value) -> Result<DashboardRefund, String> {
        parse(body.to_string().as_bytes())
    }

    /// Both PSPs parse; amounts must be positive; each PSP's reason rules
    /// apply; unknown fields and PSPs are refused.
    #[test]
    fn validates_dashboard_refunds() {
        let stripe = parsed(json!({"psp": "stripe", "payment_reference": "pi_1", "amount_minor": 5})).unwrap();
        assert_eq!((stripe.psp, stripe.amount_minor, stripe.reason), (Psp::Stripe, 5, None));
        let toss = parsed(json!({"psp": "toss", "payment_reference": "k", "amount_minor": 1, "reason": "고객 요청"}));
        assert_eq!(toss.unwrap().reason.as_deref(), Some("고객 요청"));
        let refused = [
            (json!({"psp": "stripe", "payment_reference": "pi_1", "amount_minor": 0}), "positive"),
            (json!({"psp": "stripe", "payment_reference": "pi_1", "amount_minor": -1}), "invalid"),
            (json!({"psp": "stripe", "payment_reference": "", "amount_minor": 1}), "payment_reference"),
            (json!({"psp": "stripe", "payment_reference": "pi_1", "amount_minor": 1, "reason": "bored"}), "one of"),
            (json!({"psp": "toss", "payment_reference": "k", "amount_minor": 1, "reason": ""}), "cancelReason"),
            (json!({"psp": "paypal", "payment_reference": "k", "amount_minor": 1}), "unknown variant"),
            (json!({"psp": "toss", "payment_reference": "k", "amount_minor": 1, "extra": 1}), "unknown field"),
            (json!({"psp": "toss", "amount_minor": 1}), "missing field"),
        ];
        for (body, expected) in refused {
            let error = parsed(body.clone()).unwrap_err();
            assert!(error.contains(expected), "{body}: {error:?} should say {expected:?}");
        }
    }
}
