//! Settlement breaks: what the PSP's settlement reports get wrong, on
//! purpose, so a reconciliation engine can be tested against every kind of
//! break. The configuration lives here; applying it is `inject.rs`.
//!
//! # Admin
//!
//! * `POST /_sim/settlements/breaks` with `{"psp": "stripe"|"toss",
//!   "breaks": [<break>, ...]}` replaces that PSP's list (an empty list
//!   clears it) and answers the whole configuration. Read as JSON whatever
//!   the `Content-Type`, so a bare `curl -d` works. A break is
//!   `{"kind": K, "target": T, ...}`:
//!   * `{"kind": "drop", "target": T}`: the line is not reported;
//!   * `{"kind": "amount", "target": T, "delta_minor": ±N}`: its amount
//!     changes by N (net = amount − fee; Toss `payOutAmount` follows);
//!   * `{"kind": "fee", "target": T, "delta_minor": ±N}`: its fee changes
//!     by N (net = amount − fee; Toss `supplyAmount` / `vat` follow);
//!   * `{"kind": "currency", "target": T, "currency": "EUR"}`: its currency
//!     (written in the PSP's case: `eur` at Stripe, `EUR` at Toss);
//!   * `{"kind": "duplicate", "target": T}`: reported twice, identical;
//!   * `{"kind": "next_day", "target": T}`: sold and paid-out dates one day
//!     later (Stripe `created` +86 400 s);
//!   * `{"kind": "foreign", "amount_minor": N, "currency": "KRW", "date":
//!     "YYYY-MM-DD", "seed"?: u64, "order_id"?: "..."}`: an extra charge
//!     line, sold on `date`, for a payment that never existed, with ids
//!     derived from `seed` and the break's position in the list and the
//!     PSP's fee. It takes no target.
//!
//!   A target `T` is one of `{"payment_reference": "pi_...|paymentKey"}`,
//!   `{"order_id": "..."}` (Stripe `metadata[payment_order_id]`, Toss
//!   `orderId`) or `{"transaction_id": "txn_...|transactionKey"}`, each
//!   with an optional `"entry_kind": "charge"|"refund"` (default `charge`;
//!   for `transaction_id` the default is either kind, as the id alone names
//!   one line), or `{"pick": {"seed": u64, "index": n}}` with an optional
//!   `entry_kind` (default: all lines): the n-th line of a seeded shuffle of
//!   the PSP's lines (of that kind) sorted by transaction id. A target
//!   matching nothing is no error — the payment may come later — and
//!   changes nothing; one matching several lines (a payment's refunds)
//!   changes them all. Anything else (unknown kind or field, missing field,
//!   a zero or oversized delta, a bad date or currency, an unknown PSP) is
//!   a 400 `{"error": "..."}`.
//! * `GET /_sim/settlements/breaks`: `{"stripe": [<break>...], "toss":
//!   [<break>...]}`, each break as it was posted.
//! * `DELETE /_sim/settlements/breaks[?psp=stripe|toss]`: clears one PSP's
//!   list, or both; answers the configuration left.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::EntryKind;
use crate::admin::admin_error;
use crate::clock::{Date, KST_OFFSET_SECS};
use crate::ledger::Psp;
use crate::state::{SimState, lock};

/// Most breaks one PSP's list may hold.
pub const BREAKS_PER_PSP_MAX: usize = 1_000;
/// Largest `delta_minor`, either sign: far beyond any simulated amount, far
/// below overflow.
pub const DELTA_MINOR_MAX: i64 = 1_000_000_000_000;
/// Largest `amount_minor` of a foreign line.
pub const FOREIGN_AMOUNT_MINOR_MAX: u64 = 1_000_000_000_000;
/// Longest id a target or a foreign line names.
pub const REPORT_ID_LEN_MAX: usize = 200;

/// A non-empty id of at most [`REPORT_ID_LEN_MAX`] printable characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ReportId(String);

impl TryFrom<String> for ReportId {
    type Error = String;

    fn try_from(id: String) -> Result<Self, String> {
        let printable = !id.is_empty() && id.chars().all(|c| !c.is_control());
        if !printable || id.chars().count() > REPORT_ID_LEN_MAX {
            return Err(format!("ids must be 1 to {REPORT_ID_LEN_MAX} printable characters, not {id:?}"));
        }
        Ok(Self(id))
    }
}

impl From<ReportId> for String {
    fn from(id: ReportId) -> Self {
        id.0
    }
}

impl ReportId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A signed change in minor units: non-zero, at most [`DELTA_MINOR_MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct DeltaMinor(i64);

impl TryFrom<i64> for DeltaMinor {
    type Error = String;

    fn try_from(delta: i64) -> Result<Self, String> {
        if delta == 0 || delta.unsigned_abs() > DELTA_MINOR_MAX.unsigned_abs() {
            return Err(format!("delta_minor must be non-zero and at most {DELTA_MINOR_MAX} either way"));
        }
        Ok(Self(delta))
    }
}

impl From<DeltaMinor> for i64 {
    fn from(delta: DeltaMinor) -> Self {
        delta.0
    }
}

impl DeltaMinor {
    /// The change.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// Three ASCII letters, kept upper-case (each view writes its PSP's case).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CurrencyCode(String);

impl TryFrom<String> for CurrencyCode {
    type Error = String;

    fn try_from(code: String) -> Result<Self, String> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!("currency must be three letters, not {code:?}"));
        }
        Ok(Self(code.to_ascii_uppercase()))
    }
}

impl From<CurrencyCode> for String {
    fn from(code: CurrencyCode) -> Self {
        code.0
    }
}

impl CurrencyCode {
    /// The code as `psp` writes it: lower-case at Stripe, upper at Toss.
    pub fn for_psp(&self, psp: Psp) -> String {
        match psp {
            Psp::Stripe => self.0.to_ascii_lowercase(),
            Psp::Toss => self.0.clone(),
        }
    }
}

/// A `YYYY-MM-DD` sold date late enough that its noon is after 1970
/// everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SoldDate(pub Date);

impl TryFrom<String> for SoldDate {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        match Date::parse(&text) {
            Some(date) if date.midnight_unix(KST_OFFSET_SECS) >= 0 => Ok(Self(date)),
            _ => Err(format!("date must be YYYY-MM-DD from 1970-01-02 on, not {text:?}")),
        }
    }
}

impl From<SoldDate> for String {
    fn from(date: SoldDate) -> Self {
        date.0.to_string()
    }
}

/// A foreign line's amount: 1 to [`FOREIGN_AMOUNT_MINOR_MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct ForeignAmount(u64);

impl TryFrom<u64> for ForeignAmount {
    type Error = String;

    fn try_from(amount: u64) -> Result<Self, String> {
        if !(1..=FOREIGN_AMOUNT_MINOR_MAX).contains(&amount) {
            return Err(format!("amount_minor must be 1 to {FOREIGN_AMOUNT_MINOR_MAX}"));
        }
        Ok(Self(amount))
    }
}

impl From<ForeignAmount> for u64 {
    fn from(amount: ForeignAmount) -> Self {
        amount.0
    }
}

impl ForeignAmount {
    /// Minor units.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A seeded pick among a PSP's lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pick {
    pub seed: u64,
    pub index: u64,
}

/// How a target names its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    PaymentReference(ReportId),
    OrderId(ReportId),
    TransactionId(ReportId),
    Pick(Pick),
}

/// The lines a break changes, as posted (`{"<selector>": ..,
/// "entry_kind"?: ..}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawTarget", into = "RawTarget")]
pub struct Target {
    pub selector: Selector,
    /// As posted; see [`Target::accepts`] for the defaults.
    pub entry_kind: Option<EntryKind>,
}

impl Target {
    /// Whether a line of `kind` may match: the given kind, else any kind
    /// for `transaction_id` and `pick`, else charges.
    pub fn accepts(&self, kind: EntryKind) -> bool {
        match (self.entry_kind, &self.selector) {
            (Some(wanted), _) => wanted == kind,
            (None, Selector::TransactionId(_) | Selector::Pick(_)) => true,
            (None, _) => kind == EntryKind::Charge,
        }
    }
}

/// The wire shape of a [`Target`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payment_reference: Option<ReportId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order_id: Option<ReportId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transaction_id: Option<ReportId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pick: Option<Pick>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entry_kind: Option<EntryKind>,
}

impl TryFrom<RawTarget> for Target {
    type Error = String;

    fn try_from(raw: RawTarget) -> Result<Self, String> {
        let selectors = [
            raw.payment_reference.map(Selector::PaymentReference),
            raw.order_id.map(Selector::OrderId),
            raw.transaction_id.map(Selector::TransactionId),
            raw.pick.map(Selector::Pick),
        ];
        let mut given = selectors.into_iter().flatten();
        match (given.next(), given.next()) {
            (Some(selector), None) => Ok(Self { selector, entry_kind: raw.entry_kind }),
            _ => Err("a target names exactly one of payment_reference, order_id, transaction_id, pick".to_owned()),
        }
    }
}

impl From<Target> for RawTarget {
    fn from(target: Target) -> Self {
        let mut raw = RawTarget { entry_kind: target.entry_kind, ..RawTarget::default() };
        match target.selector {
            Selector::PaymentReference(id) => raw.payment_reference = Some(id),
            Selector::OrderId(id) => raw.order_id = Some(id),
            Selector::TransactionId(id) => raw.transaction_id = Some(id),
            Selector::Pick(pick) => raw.pick = Some(pick),
        }
        raw
    }
}

/// One break (see the module docs), serialized as posted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Break {
    Drop {
        target: Target,
    },
    Amount {
        target: Target,
        delta_minor: DeltaMinor,
    },
    Fee {
        target: Target,
        delta_minor: DeltaMinor,
    },
    Currency {
        target: Target,
        currency: CurrencyCode,
    },
    Duplicate {
        target: Target,
    },
    NextDay {
        target: Target,
    },
    Foreign {
        amount_minor: ForeignAmount,
        currency: CurrencyCode,
        date: SoldDate,
        #[serde(default)]
        seed: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order_id: Option<ReportId>,
    },
}

/// Body of `POST /_sim/settlements/breaks`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BreaksRequest {
    psp: Psp,
    breaks: Vec<Break>,
}

/// Every PSP's breaks: the answer of the admin endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BreakConfig {
    pub stripe: Vec<Break>,
    pub toss: Vec<Break>,
}

impl BreakConfig {
    fn list_mut(&mut self, psp: Psp) -> &mut Vec<Break> {
        match psp {
            Psp::Stripe => &mut self.stripe,
            Psp::Toss => &mut self.toss,
        }
    }
}

/// The configured breaks of one simulator instance.
#[derive(Default)]
pub struct BreakStore {
    config: Mutex<BreakConfig>,
}

impl BreakStore {
    /// The breaks of `psp`, in posted order.
    pub fn of(&self, psp: Psp) -> Vec<Break> {
        lock(&self.config).list_mut(psp).clone()
    }

    /// Every PSP's breaks.
    pub fn config(&self) -> BreakConfig {
        lock(&self.config).clone()
    }

    /// Replaces the breaks of `psp`.
    pub fn set(&self, psp: Psp, breaks: Vec<Break>) -> BreakConfig {
        let mut config = lock(&self.config);
        *config.list_mut(psp) = breaks;
        config.clone()
    }

    /// Clears the breaks of `psp`, or of every PSP.
    pub fn clear(&self, psp: Option<Psp>) -> BreakConfig {
        let mut config = lock(&self.config);
        match psp {
            Some(psp) => config.list_mut(psp).clear(),
            None => *config = BreakConfig::default(),
        }
        config.clone()
    }
}

/// Parses and bounds a `POST /_sim/settlements/breaks` body.
fn parse_request(body: &[u8]) -> Result<(Psp, Vec<Break>), String> {
    let request: BreaksRequest =
        serde_json::from_slice(body).map_err(|error| format!("invalid settlement breaks: {error}"))?;
    if request.breaks.len() > BREAKS_PER_PSP_MAX {
        return Err(format!("at most {BREAKS_PER_PSP_MAX} breaks per psp"));
    }
    Ok((request.psp, request.breaks))
}

/// `GET /_sim/settlements/breaks`
pub async fn get_breaks(State(sim): State<Arc<SimState>>) -> Json<BreakConfig> {
    Json(sim.settlement_breaks.config())
}

/// `POST /_sim/settlements/breaks`
pub async fn set_breaks(State(sim): State<Arc<SimState>>, body: Bytes) -> Response {
    match parse_request(&body) {
        Ok((psp, breaks)) => {
            tracing::info!(?psp, count = breaks.len(), "settlement breaks set");
            Json(sim.settlement_breaks.set(psp, breaks)).into_response()
        }
        Err(message) => admin_error(StatusCode::BAD_REQUEST, &message),
    }
}

/// Query of `DELETE /_sim/settlements/breaks`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearQuery {
    psp: Option<Psp>,
}

/// `DELETE /_sim/settlements/breaks[?psp=stripe|toss]`
pub async fn clear_breaks(State(sim): State<Arc<SimState>>, RawQuery(raw): RawQuery) -> Response {
    match serde_urlencoded::from_str::<ClearQuery>(raw.as_deref().unwrap_or_default()) {
        Ok(query) => Json(sim.settlement_breaks.clear(query.psp)).into_response(),
        Err(error) => admin_error(StatusCode::BAD_REQUEST, &format!("invalid query: {error}")),
    }
}

#[cfg(test)]
mod tests;
