//! Settlement: what each capture and refund is worth after fees, when it
//! was sold and when it is paid out — the data behind Stripe's balance
//! transactions, Toss's settlements API and the per-day CSV download.
//!
//! Sold date = capture (or refund) date: UTC for Stripe, Asia/Seoul for
//! Toss. Paid-out date = sold date + [`PAYOUT_DELAY_DAYS`]. Refunds are
//! negative amounts with zero fee (no fee is given back).
//!
//! [`entries`] is what the ledger says; [`reported_entries`] is what the
//! PSP reports: the same lines after the configured settlement breaks
//! (`breaks.rs`, applied by `inject.rs`). All three views read the latter,
//! so one break shows identically in each.
//!
//! # Admin
//!
//! * `GET /_sim/settlements/{stripe|toss}/{YYYY-MM-DD}.csv`: the day's
//!   reported lines (header [`CSV_HEADER`]).
//! * `GET|POST|DELETE /_sim/settlements/breaks`: the settlement breaks (see
//!   `breaks.rs`).

pub mod breaks;
pub mod fees;
mod inject;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::admin::admin_error;
use crate::clock::{Date, KST_OFFSET_SECS};
use crate::ledger::{Capture, Ledger, Psp, RefundRecord};
use crate::state::SimState;

/// Days between sold date and paid-out date.
pub const PAYOUT_DELAY_DAYS: i64 = 2;
/// Header row of the CSV download.
pub const CSV_HEADER: &str = "psp,transaction_id,payment_reference,order_id,type,amount_minor,\
                              fee_minor,net_minor,currency,sold_date,paid_out_date,refund_id";

/// Whether an entry moved money in or out (`charge` / `refund` on the
/// wire of the admin endpoints).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Charge,
    Refund,
}

impl EntryKind {
    /// `charge` or `refund`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::Refund => "refund",
        }
    }
}

/// One settled capture or refund.
#[derive(Clone, Debug)]
pub struct Entry {
    pub psp: Psp,
    pub kind: EntryKind,
    /// Stripe `txn_...` or Toss `transactionKey`.
    pub transaction_id: String,
    /// Stripe `ch_...` / `re_...`; Toss `transactionKey` again.
    pub source: String,
    /// Stripe `pi_...` or Toss `paymentKey`.
    pub payment_reference: String,
    pub order_id: Option<String>,
    /// Signed minor units: negative for refunds.
    pub amount_minor: i64,
    pub fee_minor: i64,
    pub net_minor: i64,
    pub currency: String,
    /// Unix seconds of the capture or refund.
    pub created: u64,
    pub sold_date: Date,
    pub paid_out_date: Date,
    /// Refund reason (Toss `cancelReason`).
    pub reason: Option<String>,
}

/// Every settled entry of `psp`, oldest first.
pub fn entries(ledger: &Ledger, psp: Psp) -> Vec<Entry> {
    let mut all: Vec<Entry> =
        ledger.captures(None).into_iter().filter(|capture| capture.psp == psp).map(capture_entry).collect();
    all.extend(ledger.refunds(None).into_iter().filter(|refund| refund.psp == psp).map(refund_entry));
    all.sort_by_key(|entry| entry.created);
    all
}

/// Every entry of `psp` as the PSP reports it: [`entries`] after the
/// configured settlement breaks, ordered by `created`.
pub fn reported_entries(sim: &SimState, psp: Psp) -> Vec<Entry> {
    let base = sim.with_ledger(|ledger| entries(ledger, psp));
    inject::apply(psp, base, &sim.settlement_breaks.of(psp))
}

fn capture_entry(capture: Capture) -> Entry {
    let fee = match capture.psp {
        Psp::Stripe => fees::stripe_fee(capture.amount, &capture.currency),
        Psp::Toss => fees::toss_fee(capture.amount).0,
    };
    let (sold_date, paid_out_date) = dates(capture.psp, capture.created);
    Entry {
        psp: capture.psp,
        kind: EntryKind::Charge,
        transaction_id: capture.balance_transaction.unwrap_or_else(|| capture.transaction_id.clone()),
        source: capture.transaction_id,
        payment_reference: capture.payment_intent_id,
        order_id: capture.payment_order_id,
        amount_minor: signed(capture.amount),
        fee_minor: signed(fee),
        net_minor: signed(capture.amount) - signed(fee),
        currency: capture.currency,
        created: capture.created,
        sold_date,
        paid_out_date,
        reason: None,
    }
}

fn refund_entry(refund: RefundRecord) -> Entry {
    let (sold_date, paid_out_date) = dates(refund.psp, refund.created);
    Entry {
        psp: refund.psp,
        kind: EntryKind::Refund,
        transaction_id: refund.balance_transaction.unwrap_or_else(|| refund.id.clone()),
        source: refund.id,
        payment_reference: refund.payment_intent_id,
        order_id: refund.payment_order_id,
        amount_minor: -signed(refund.amount),
        fee_minor: 0,
        net_minor: -signed(refund.amount),
        currency: refund.currency,
        created: refund.created,
        sold_date,
        paid_out_date,
        reason: refund.reason,
    }
}

/// Sold and paid-out dates of something that happened at `created`.
fn dates(psp: Psp, created: u64) -> (Date, Date) {
    let offset = match psp {
        Psp::Stripe => 0,
        Psp::Toss => KST_OFFSET_SECS,
    };
    let sold = Date::from_unix(i64::try_from(created).unwrap_or(i64::MAX), offset);
    (sold, sold.plus_days(PAYOUT_DELAY_DAYS))
}

/// Minor units as a signed amount (ours never come near `i64::MAX`).
fn signed(minor: u64) -> i64 {
    i64::try_from(minor).unwrap_or(i64::MAX)
}

/// The CSV download and settlement-break routes.
pub fn router(sim: Arc<SimState>) -> Router {
    Router::new()
        .route(
            "/_sim/settlements/breaks",
            get(breaks::get_breaks).post(breaks::set_breaks).delete(breaks::clear_breaks),
        )
        .route("/_sim/settlements/{psp}/{file}", get(csv))
        .with_state(sim)
}

/// `GET /_sim/settlements/{stripe|toss}/{YYYY-MM-DD}.csv`: one row per
/// reported line (see [`reported_entries`]) sold that day.
async fn csv(State(sim): State<Arc<SimState>>, Path((psp, file)): Path<(String, String)>) -> Response {
    let psp = match psp.as_str() {
        "stripe" => Psp::Stripe,
        "toss" => Psp::Toss,
        _ => return admin_error(StatusCode::NOT_FOUND, "psp must be stripe or toss"),
    };
    let Some(date) = file.strip_suffix(".csv").and_then(Date::parse) else {
        return admin_error(StatusCode::NOT_FOUND, "expected /{psp}/YYYY-MM-DD.csv");
    };
    let rows = reported_entries(&sim, psp);
    let mut out = format!("{CSV_HEADER}\n");
    for entry in rows.iter().filter(|entry| entry.sold_date == date) {
        let fields = [
            psp_name(entry.psp).to_owned(),
            entry.transaction_id.clone(),
            entry.payment_reference.clone(),
            entry.order_id.clone().unwrap_or_default(),
            entry.kind.as_str().to_owned(),
            entry.amount_minor.to_string(),
            entry.fee_minor.to_string(),
            entry.net_minor.to_string(),
            entry.currency.clone(),
            entry.sold_date.to_string(),
            entry.paid_out_date.to_string(),
            // A refund's own PSP id (Stripe `re_...`, Toss the cancel's transaction key).
            if entry.kind == EntryKind::Refund { entry.source.clone() } else { String::new() },
        ];
        let quoted: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
        out.push_str(&quoted.join(","));
        out.push('\n');
    }
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response()
}

fn psp_name(psp: Psp) -> &'static str {
    match psp {
        Psp::Stripe => "stripe",
        Psp::Toss => "toss",
    }
}

/// Quotes a CSV field when it contains a separator, quote or line break.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}
