//! Pay-outs to sellers: the Toss Payments payouts v2 API (`toss/`) and Stripe Connect
//! accounts, transfers and payouts (`stripe/`), with the simulator's admin controls.
//!
//! Both dialects share the simulator's POST flow (`execution.rs`): idempotency keys, attempt
//! counting and faults (5xx, 429 with `Retry-After`, slow answers, answers lost after the
//! payout was made). Which fault a payout POST meets is scripted per seller (below) or drawn
//! from the configured fault rates, as for charges; the other POSTs (registration, transfers,
//! cancels) only meet the fault rates.
//!
//! # Admin
//!
//! * `POST /_sim/payouts/scenario` with `{"seller": "<our seller id>", "not_payable"?,
//!   "slow_kyc_ms"?, "paid_then_failed"?, "silent_return"?, "hold"?, "fault"?}` replaces that seller's scenario
//!   (the seller is Toss `refSellerId` / Stripe `metadata[seller_account]`, so a scenario can
//!   be set before registration) and answers it:
//!   * `not_payable`: the seller is never identified (Toss stays `APPROVAL_REQUIRED`, Stripe
//!     `payouts_enabled: false` with requirements due): payouts to it are refused;
//!   * `slow_kyc_ms`: identification takes this long instead of `payout_kyc_delay_ms`
//!     (then Toss `seller.changed` / Stripe `account.updated`);
//!   * `paid_then_failed`: each payout is paid, then fails one step later (the bank returned
//!     it): Stripe `failure_code: account_closed`, Toss `error.code: ACCOUNT_CLOSED`, with both
//!     webhooks;
//!   * `silent_return` (with `paid_then_failed`): the failure's webhook is lost; only the
//!     provider's payout list (`GET /v2/payouts`, `GET /v1/payouts`) shows it;
//!   * `hold`: payouts stay Toss `REQUESTED` / Stripe `pending` (cancellable) until canceled;
//!   * `fault`: `server_error_twice` | `rate_limited` | `slow` | `lost_response`, scripted on
//!     the payout POST by attempt number exactly as the `*_sim_*` payment tokens are.
//! * `POST` / `DELETE /_sim/payouts/statement`: breaks the payout lists show (a payout left
//!   out, another amount or status, a payout nobody asked for), see `statement.rs`.
//! * `GET /_sim/payouts[?reference=R]`: every payout made, oldest first, `{"payouts":
//!   [{provider, id, reference, destination, amount, currency, status, failure_code,
//!   created_at_ms}]}` (`amount` in minor units), to audit "one payout per reference".

mod connect_hooks;
pub mod jwe;
pub mod statement;
mod stripe;
mod toss;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use self::connect_hooks::ConnectHooks;
use self::jwe::SecurityKey;
use crate::SimConfig;
use crate::admin::admin_error;
use crate::config::TOSS_SECURITY_KEY_TEST;
use crate::faults::{TokenFault, TokenKind};
use crate::state::{SimState, lock};

/// Payouts remembered per dialect; beyond it new payouts are refused.
pub const PAYOUTS_MAX: usize = 1_000_000;
/// Sellers / connected accounts remembered per dialect; beyond it registrations are refused.
pub const SELLERS_MAX: usize = 1_000_000;
/// Longest seller id a scenario names.
const SCENARIO_SELLER_LEN_MAX: usize = 100;

/// A fault scripted on a seller's payout POSTs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptedFault {
    /// Attempts 1 and 2 answer the dialect's server error.
    ServerErrorTwice,
    /// Attempt 1 answers 429 with `Retry-After`.
    RateLimited,
    /// Every attempt is answered late.
    Slow,
    /// Attempt 1 makes the payout and loses its answer.
    LostResponse,
}

/// What happens to one seller (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Our seller id.
    pub seller: String,
    /// Never identified: not payable.
    pub not_payable: bool,
    /// Identification delay overriding `payout_kyc_delay_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slow_kyc_ms: Option<u64>,
    /// Paid, then failed (`account_closed`).
    pub paid_then_failed: bool,
    /// With `paid_then_failed`: the failure's webhook is never sent (lost), so only the
    /// provider's payout list tells (reconciliation's case).
    pub silent_return: bool,
    /// Payouts stay requested / pending.
    pub hold: bool,
    /// Fault scripted on payout POSTs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<ScriptedFault>,
}

/// What happens to a payout once it is paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterPaid {
    /// Nothing: it stays paid.
    Stays,
    /// The bank returns it, and a webhook says so.
    Returned,
    /// The bank returns it; the webhook is lost.
    ReturnedSilently,
}

impl Scenario {
    /// What happens to this seller's payouts once they are paid.
    pub fn after_paid(&self) -> AfterPaid {
        match (self.paid_then_failed, self.silent_return) {
            (false, _) => AfterPaid::Stays,
            (true, false) => AfterPaid::Returned,
            (true, true) => AfterPaid::ReturnedSilently,
        }
    }

    /// The fault kind of this seller's payout POSTs.
    pub fn kind(&self) -> TokenKind {
        match self.fault {
            None => TokenKind::NormalSuccess,
            Some(ScriptedFault::ServerErrorTwice) => TokenKind::Fault(TokenFault::ServerErrorTwice),
            Some(ScriptedFault::RateLimited) => TokenKind::Fault(TokenFault::RateLimited),
            Some(ScriptedFault::Slow) => TokenKind::Fault(TokenFault::Slow),
            Some(ScriptedFault::LostResponse) => TokenKind::Fault(TokenFault::LostResponse),
        }
    }
}

/// One payout as `/_sim/payouts` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct PayoutRecord {
    /// `toss_payouts` or `stripe_connect`.
    pub provider: &'static str,
    /// The provider's payout id.
    pub id: String,
    /// Toss `refPayoutId` / Stripe `metadata[payout_reference]`.
    pub reference: Option<String>,
    /// Toss seller id / Stripe `acct_...`.
    pub destination: String,
    /// Minor units.
    pub amount: u64,
    /// Upper-case ISO currency.
    pub currency: String,
    /// The provider's status word.
    pub status: String,
    /// The provider's failure code, once failed.
    pub failure_code: Option<String>,
    /// When it was made, Unix milliseconds.
    pub created_at_ms: u64,
    #[serde(skip)]
    seq: u64,
}

/// Everything the payout dialects hold.
#[derive(Default)]
pub struct Book {
    toss: toss::TossBook,
    stripe: stripe::ConnectBook,
    scenarios: HashMap<String, Scenario>,
    /// Breaks the payout lists show (`statement.rs`).
    statement_breaks: Vec<statement::StatementBreak>,
    /// Creation counter ordering payouts across dialects.
    seq: u64,
}

impl Book {
    /// The scenario of `seller` (the default one if none was set).
    pub fn scenario(&self, seller: &str) -> Scenario {
        self.scenarios
            .get(seller)
            .cloned()
            .unwrap_or_else(|| Scenario { seller: seller.to_owned(), ..Scenario::default() })
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// The payout dialects' shared state.
pub struct Payouts {
    /// The simulator (idempotency store, faults, request log, Toss webhooks).
    pub sim: Arc<SimState>,
    book: Mutex<Book>,
    /// Toss's security key.
    pub security_key: SecurityKey,
    /// Time between two steps of a payout's life.
    pub step: Duration,
    /// Default identification delay of a new seller.
    pub kyc_delay: Duration,
    /// Stripe Connect events.
    connect_hooks: ConnectHooks,
}

impl Payouts {
    /// Runs `f` with exclusive access to the book. `f` must not block.
    pub fn with_book<R>(&self, f: impl FnOnce(&mut Book) -> R) -> R {
        f(&mut lock(&self.book))
    }

    /// How long `scenario`'s seller waits for identification, `None` if never.
    fn kyc_delay_of(&self, scenario: &Scenario) -> Option<Duration> {
        if scenario.not_payable {
            return None;
        }
        Some(scenario.slow_kyc_ms.map_or(self.kyc_delay, Duration::from_millis))
    }
}

/// Routes of both payout dialects and their admin endpoints.
pub fn router(sim: Arc<SimState>, config: &SimConfig) -> Router {
    let security_key = SecurityKey::from_hex(&config.toss_security_key).unwrap_or_else(|| {
        tracing::error!("toss_security_key is not 64 hex characters; using the test key");
        SecurityKey::from_hex(TOSS_SECURITY_KEY_TEST).expect("the test key is valid hex")
    });
    let payouts = Arc::new(Payouts {
        sim,
        book: Mutex::new(Book::default()),
        security_key,
        step: Duration::from_millis(config.payout_step_ms),
        kyc_delay: Duration::from_millis(config.payout_kyc_delay_ms),
        connect_hooks: ConnectHooks::new(config),
    });
    Router::new()
        .merge(toss::routes(&payouts))
        .merge(stripe::routes(&payouts))
        .route("/_sim/payouts", get(list_payouts))
        .route("/_sim/payouts/scenario", post(set_scenario))
        .route("/_sim/payouts/statement", post(statement::set_breaks).delete(statement::clear_breaks))
        .with_state(payouts)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    reference: Option<String>,
}

#[derive(Serialize)]
struct ListBody {
    payouts: Vec<PayoutRecord>,
}

/// `GET /_sim/payouts[?reference=R]`.
async fn list_payouts(State(payouts): State<Arc<Payouts>>, Query(query): Query<ListQuery>) -> Json<ListBody> {
    let mut records = payouts.with_book(|book| {
        let mut records = book.toss.records();
        records.extend(book.stripe.records());
        records
    });
    records.retain(|r| query.reference.as_deref().is_none_or(|wanted| r.reference.as_deref() == Some(wanted)));
    records.sort_by_key(|r| r.seq);
    Json(ListBody { payouts: records })
}

/// `POST /_sim/payouts/scenario`. Read as JSON whatever the `Content-Type`.
async fn set_scenario(State(payouts): State<Arc<Payouts>>, body: Bytes) -> Response {
    let scenario: Scenario = match serde_json::from_slice(&body) {
        Ok(scenario) => scenario,
        Err(error) => return admin_error(StatusCode::BAD_REQUEST, &format!("invalid scenario: {error}")),
    };
    if scenario.seller.is_empty() || scenario.seller.chars().count() > SCENARIO_SELLER_LEN_MAX {
        return admin_error(StatusCode::BAD_REQUEST, "seller must be 1 to 100 characters");
    }
    tracing::info!(?scenario, "payout scenario set");
    payouts.with_book(|book| book.scenarios.insert(scenario.seller.clone(), scenario.clone()));
    Json(scenario).into_response()
}

/// Sleeps one payout step (a zero step still lets the answer go out first).
async fn step(payouts: &Payouts) {
    if payouts.step.is_zero() {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(payouts.step).await;
    }
}
