//! Breaks injected into the payout providers' statements: what `GET /v2/payouts` (Toss) and
//! `GET /v1/payouts` (Stripe Connect) list, never what was paid (`/_sim/payouts` and each
//! payout's own `GET` stay true), as the settlement reports' breaks alter a report and not the
//! simulator's ledger. Reconciliation reads the lists.
//!
//! `POST /_sim/payouts/statement` with `{"breaks": [...]}` replaces them; `DELETE` clears them.
//! Each break:
//! - `{"kind": "drop", "reference": R}`: the lists leave payout `R` out;
//! - `{"kind": "amount", "reference": R, "delta_minor": N}`: they show its amount plus `N`;
//! - `{"kind": "status", "reference": R, "status": S}`: they show it with status `S`, in the
//!   dialect's words (Toss `FAILED`, Stripe `failed`...);
//! - `{"kind": "foreign", "provider": "toss_payouts" | "stripe_connect", "destination": D?,
//!   "reference": R, "amount_minor": N, "currency": C, "seed": K}`: they list a payout nobody
//!   asked for (Stripe: on account `D`'s list), its id derived from `K`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use super::Payouts;
use crate::admin::admin_error;

/// Most breaks held at once.
const BREAKS_MAX: usize = 100;

/// One break of the statements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StatementBreak {
    /// Leave the payout out.
    Drop {
        /// Our reference.
        reference: String,
    },
    /// Show another amount.
    Amount {
        /// Our reference.
        reference: String,
        /// Added to the amount, minor units.
        delta_minor: i64,
    },
    /// Show another status.
    Status {
        /// Our reference.
        reference: String,
        /// The dialect's status word.
        status: String,
    },
    /// List a payout nobody asked for.
    Foreign {
        /// `toss_payouts` or `stripe_connect`.
        provider: String,
        /// Stripe: the connected account whose list shows it.
        #[serde(default)]
        destination: Option<String>,
        /// The reference it carries.
        reference: String,
        /// Minor units.
        amount_minor: u64,
        /// ISO code.
        currency: String,
        /// Its id's seed.
        #[serde(default)]
        seed: u64,
    },
}

impl StatementBreak {
    /// The reference of a payout this break alters (not a foreign one).
    fn target(&self) -> Option<&str> {
        match self {
            StatementBreak::Drop { reference }
            | StatementBreak::Amount { reference, .. }
            | StatementBreak::Status { reference, .. } => Some(reference),
            StatementBreak::Foreign { .. } => None,
        }
    }
}

/// A listed item with the breaks applied: `None` when dropped. `reference` is the item's
/// reference; `amount` and `status` point into the item.
pub fn alter(breaks: &[StatementBreak], reference: Option<&str>, mut item: Value, amount: &[&str]) -> Option<Value> {
    for b in breaks.iter().filter(|b| reference.is_some() && b.target() == reference) {
        match b {
            StatementBreak::Drop { .. } => return None,
            StatementBreak::Amount { delta_minor, .. } => {
                let mut slot = &mut item;
                for key in amount {
                    slot = &mut slot[*key];
                }
                let value = slot.as_i64().or_else(|| slot.as_str().and_then(|s| s.parse().ok())).unwrap_or(0);
                *slot = Value::from(value.saturating_add(*delta_minor));
            }
            StatementBreak::Status { status, .. } => item["status"] = Value::from(status.clone()),
            StatementBreak::Foreign { .. } => {}
        }
    }
    Some(item)
}

/// `POST /_sim/payouts/statement`.
pub async fn set_breaks(State(payouts): State<Arc<Payouts>>, body: Bytes) -> Response {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        breaks: Vec<StatementBreak>,
    }
    let body: Body = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(error) => return admin_error(StatusCode::BAD_REQUEST, &format!("invalid statement breaks: {error}")),
    };
    if body.breaks.len() > BREAKS_MAX {
        return admin_error(StatusCode::BAD_REQUEST, &format!("at most {BREAKS_MAX} breaks"));
    }
    for b in &body.breaks {
        if let StatementBreak::Foreign { provider, destination, currency, .. } = b {
            let known = match provider.as_str() {
                "toss_payouts" => currency == "KRW",
                "stripe_connect" => destination.is_some() && currency.len() == 3,
                _ => false,
            };
            if !known {
                let message = "a foreign payout is toss_payouts in KRW, or stripe_connect with a destination";
                return admin_error(StatusCode::BAD_REQUEST, message);
            }
        }
    }
    tracing::info!(breaks = body.breaks.len(), "payout statement breaks set");
    payouts.with_book(|book| book.statement_breaks.clone_from(&body.breaks));
    Json(serde_json::json!({ "breaks": body.breaks })).into_response()
}

/// `DELETE /_sim/payouts/statement`.
pub async fn clear_breaks(State(payouts): State<Arc<Payouts>>) -> Response {
    payouts.with_book(|book| book.statement_breaks.clear());
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Drops, amounts and statuses alter only the payout they name.
    #[test]
    fn breaks_alter_their_payout_only() {
        let breaks = vec![
            StatementBreak::Amount { reference: "a".into(), delta_minor: 100 },
            StatementBreak::Status { reference: "a".into(), status: "FAILED".into() },
            StatementBreak::Drop { reference: "b".into() },
        ];
        let item = json!({"amount": {"value": 5000}, "status": "COMPLETED"});
        let altered = alter(&breaks, Some("a"), item.clone(), &["amount", "value"]).unwrap();
        assert_eq!(altered, json!({"amount": {"value": 5100}, "status": "FAILED"}));
        assert_eq!(alter(&breaks, Some("b"), item.clone(), &["amount", "value"]), None);
        assert_eq!(alter(&breaks, Some("c"), item.clone(), &["amount", "value"]), Some(item.clone()));
        assert_eq!(alter(&breaks, None, item.clone(), &["amount", "value"]), Some(item));
        let stripe = alter(&breaks, Some("a"), json!({"amount": 5000}), &["amount"]).unwrap();
        assert_eq!(stripe["amount"], 5100);
    }
}
