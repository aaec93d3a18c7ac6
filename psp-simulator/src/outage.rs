//! The outage switch: `POST /_sim/outage` takes whole groups of PSP
//! operations down ("temporarily unavailable") until it is switched off, so
//! integration tests can watch the platform ride out a PSP outage and then
//! recover.
//!
//! There are three groups ([`Operation`]): charges (create, confirm,
//! capture), lookups (GETs of a payment or a refund) and refunds (refunds
//! and cancels).
//! Each dialect wraps the routes of a group once with [`guard`]. While the
//! group is down the guard answers the dialect's own simulated server error
//! — the very reply of the `ServerError` fault (Stripe 503 `api_error`, Toss
//! 500 `FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING`), which the adapters
//! retry — and the handler never runs. Admin endpoints, webhooks, hosted
//! pages and settlement reports are never guarded.
//!
//! Refusing before the handler means refusing before the idempotency store:
//! a refused request takes no key lock, stores nothing, replays nothing (a
//! PSP that is down does not answer from its cache either) and is not an
//! attempt, so fault tokens and fault rates, which count attempts per key,
//! behave after the outage exactly as if it never happened. Authentication
//! runs first: a refused request still counts in `/_sim/stats`, and a bad
//! key is still a 401.
//!
//! Refused POSTs are logged for `/_sim/requests` with the status they got
//! (`"503"` / `"500"`), as a `ServerError` fault is. Refused GETs are not:
//! that log holds POSTs only.
//!
//! A fourth switch, `refund_answers_lost`, models a PSP that refunds but
//! whose answer never comes back: refunds of both dialects (Stripe
//! `POST /v1/refunds`, Toss `POST /v1/payments/{paymentKey}/cancel`)
//! execute and are stored under their idempotency key as usual, and then
//! the connection is closed without a response, as with the
//! `LostResponse` fault — the fresh answer and, while the switch stays on,
//! every replay of it (`execution.rs` applies it; logged as `"dropped"`).
//! Requests that execute nothing (invalid parameters, an unknown payment,
//! a key reused for another request) are still answered. Stripe's intent
//! cancel moves no money and keeps its answers. `refunds` (down) takes
//! precedence: a refused refund never executes.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::execution::{Wire, respond};
use crate::request_log::{LoggedRequest, Outcome};
use crate::state::{SimState, lock};

/// A group of PSP operations that an outage takes down together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Creating, confirming or capturing a payment.
    Charge,
    /// Reading a payment (retrieve, search, lookup by order) or a Stripe
    /// refund (list, retrieve).
    Lookup,
    /// Refunding or cancelling a payment.
    Refund,
}

/// Which groups are down, and whether refund answers are lost: the body of
/// `POST /_sim/outage` and the answer of `GET /_sim/outage`,
/// `{"charges": bool, "lookups": bool, "refunds": bool,
/// "refund_answers_lost": bool}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutageSetting {
    /// Charges, confirms and captures are refused.
    pub charges: bool,
    /// Payment and refund lookups are refused.
    pub lookups: bool,
    /// Refunds and cancels are refused.
    pub refunds: bool,
    /// Refunds execute but their answers are lost (see the module docs).
    pub refund_answers_lost: bool,
}

impl OutageSetting {
    /// Parses a whole setting from JSON. Missing fields are `false` (the body
    /// replaces the setting); unknown fields are refused, so a typo such as
    /// `"charge"` cannot silently leave the PSP up.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|error| format!("invalid outage setting: {error}"))
    }

    /// Whether `operation` is down.
    pub fn covers(self, operation: Operation) -> bool {
        match operation {
            Operation::Charge => self.charges,
            Operation::Lookup => self.lookups,
            Operation::Refund => self.refunds,
        }
    }
}

/// The current setting, shared by every request; everything is up at start.
#[derive(Default)]
pub struct Outage {
    setting: Mutex<OutageSetting>,
}

impl Outage {
    /// The current setting.
    pub fn get(&self) -> OutageSetting {
        *lock(&self.setting)
    }

    /// Replaces the whole setting.
    pub fn set(&self, setting: OutageSetting) {
        *lock(&self.setting) = setting;
    }
}

/// What the guard of one route group needs.
#[derive(Clone)]
struct Guard {
    sim: Arc<SimState>,
    operation: Operation,
}

/// `routes`, refused in dialect `W`'s words while `operation` is down.
pub fn guard<W: Wire + 'static>(
    sim: &Arc<SimState>,
    operation: Operation,
    routes: Router<Arc<SimState>>,
) -> Router<Arc<SimState>> {
    let guard = Guard { sim: Arc::clone(sim), operation };
    routes.route_layer(middleware::from_fn_with_state(guard, refuse_while_down::<W>))
}

/// Passes the request on, or answers `W`'s server error if its group is down.
async fn refuse_while_down<W: Wire>(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if !guard.sim.outage.get().covers(guard.operation) {
        return next.run(request).await;
    }
    // Echoed like any answer to a keyed request; unvalidated, as the request
    // never reaches the dialect's checks.
    let key = request.headers().get("idempotency-key").and_then(|value| value.to_str().ok()).map(str::to_owned);
    let reply = W::server_error();
    if request.method() == Method::POST {
        guard.sim.requests.push(LoggedRequest {
            received_at_ms: now_ms(),
            method: Method::POST.to_string(),
            path: request.uri().path().to_owned(),
            outcome: Outcome::Status(reply.status.as_u16()),
            idempotency_key: key.clone(),
        });
    }
    respond(reply, key.as_deref(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Missing fields are `false`, unknown fields and non-objects are
    /// refused, and each flag covers exactly its group.
    #[test]
    fn parse_and_cover() {
        let setting = OutageSetting::parse(br#"{"lookups": true}"#).unwrap();
        let lookups = OutageSetting { charges: false, lookups: true, refunds: false, refund_answers_lost: false };
        assert_eq!(setting, lookups);
        assert!(setting.covers(Operation::Lookup));
        assert!(!setting.covers(Operation::Charge));
        assert!(!setting.covers(Operation::Refund));
        assert_eq!(OutageSetting::parse(b"{}").unwrap(), OutageSetting::default());
        let lost = OutageSetting::parse(br#"{"refund_answers_lost": true}"#).unwrap();
        assert!(lost.refund_answers_lost);
        // Losing answers is not an outage of any group: refunds still run.
        assert!(!lost.covers(Operation::Refund));
        assert!(OutageSetting::parse(br#"{"charge": true}"#).is_err());
        assert!(OutageSetting::parse(br#"{"charges": "yes"}"#).is_err());
        assert!(OutageSetting::parse(b"").is_err());
    }
}
