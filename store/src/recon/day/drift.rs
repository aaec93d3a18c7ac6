//! Clearing-account drift, per currency. The settlement books a day's PSP lines out of
//! `psp_clearing`; our pay-ins put each capture in and our refunds take each refund out. So for
//! every payment the day's run found clean (the PSP's lines and our order and refund rows agree,
//! nothing in flight), the clearing postings of its orders and refunds in the *ledger* must
//! equal the PSP's lines to the minor unit, and the day's clearing account nets to zero once it
//! is settled. A payment whose ledger postings say otherwise (a pay-in or refund booked at
//! another amount than its row, booked twice, or under another currency) is drift no other
//! break explains: one `clearing_drift` break per day and currency (class 3), with the payments
//! concerned as evidence.
//!
//! Payments are judged only when the matcher found nothing else in them today and their
//! captures over every day sum to our orders (their breaks already say what is wrong), every
//! order is captured and its pay-in posted (a booking in flight is not drift), every refund
//! line is paired with one of our refunds and the reverse (a refund inside the window is
//! timing), and no approved fix refunded a capture we never booked.

use super::Group;
use crate::ledger::PSP_CLEARING_ACCOUNT;
use crate::recon::{RECON_PAGE_KEYS, placeholders};
use crate::{Store, StoreError};
use payments_recon::matching::pair_refunds;
use payments_recon::{BreakKind, Day, Finding, LineKind, OrderState};
use sqlx::Row;
use std::collections::BTreeMap;

/// Most transaction ids a drift break names as evidence.
const EVIDENCE_LINES_MAX: usize = 20;

/// A payment judged for drift: its currency, its lines' total, its ledger keys, its lines' ids.
pub(super) struct Judged {
    currency: String,
    psp_total: i64,
    pay_ins: Vec<String>,
    refunds: Vec<String>,
    transaction_ids: Vec<String>,
}

/// Drift found so far, per currency: the difference and the lines concerned.
#[derive(Default)]
pub(super) struct Drift {
    per_currency: BTreeMap<String, (i64, Vec<String>)>,
}

/// The payment as a candidate for the drift check, when the rules above let it be judged.
pub(super) fn judged(group: &Group, clean: bool) -> Option<Judged> {
    let currency = group.orders.first()?.currency.clone();
    let judgeable = clean
        && group.orders.iter().all(|o| o.state == OrderState::Captured && o.currency == currency)
        && group.refunds.iter().all(|r| !r.of_unbooked_capture)
        && group.lines.iter().all(|l| matches!(l.kind, LineKind::Charge | LineKind::Refund) && l.currency == currency);
    if !judgeable {
        return None;
    }
    // The captures agree with our orders over every day (a difference judged on another day
    // is that day's amount break, not drift), and every refund is paired both ways.
    let captured: i64 = group.lines.iter().filter(|l| l.kind == LineKind::Charge).map(|l| l.amount_minor).sum();
    if captured != group.orders.iter().map(|o| o.amount_minor).sum::<i64>() {
        return None;
    }
    let (unpaired_lines, unpaired_refunds) = pair_refunds(&group.lines, &group.refunds);
    if !unpaired_lines.is_empty() || !unpaired_refunds.is_empty() {
        return None;
    }
    Some(Judged {
        currency,
        psp_total: group.lines.iter().map(|l| l.amount_minor).sum(),
        pay_ins: group.orders.iter().map(|o| format!("{}:ledger", o.order_id)).collect(),
        refunds: group.refunds.iter().map(|r| format!("{}:ledger", r.refund_id)).collect(),
        transaction_ids: group.lines.iter().map(|l| l.transaction_id.clone()).collect(),
    })
}

impl Store {
    /// Adds the drift of a page's judged payments: their orders' and refunds' clearing postings
    /// against their lines.
    pub(super) async fn add_drift(&self, judged: &[Judged], drift: &mut Drift) -> Result<(), StoreError> {
        let keys: Vec<&str> =
            judged.iter().flat_map(|j| j.pay_ins.iter().chain(&j.refunds)).map(String::as_str).collect();
        let mut posted: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
        for chunk in keys.chunks(RECON_PAGE_KEYS) {
            // By transaction id only (its index), the account filtered here: with the account
            // in the query a planner may walk every clearing entry instead.
            let sql = format!(
                "SELECT transaction_id, account, currency, direction, amount_minor FROM ledger_entry \
                 WHERE transaction_id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for key in chunk {
                query = query.bind(*key);
            }
            for row in query.fetch_all(self.pool()).await? {
                if row.try_get::<String, _>("account")? != PSP_CLEARING_ACCOUNT {
                    continue;
                }
                let amount: i64 = row.try_get("amount_minor")?;
                let signed = if row.try_get::<String, _>("direction")? == "DEBIT" { amount } else { -amount };
                let id: String = row.try_get("transaction_id")?;
                posted.entry(id).or_default().push((row.try_get("currency")?, signed));
            }
        }
        for payment in judged {
            // A pay-in not posted yet is a booking in flight: judged by a later run.
            if payment.pay_ins.iter().any(|key| !posted.contains_key(key)) {
                continue;
            }
            // Postings in another currency are not in this one's clearing: their absence shows.
            let ledger_total: i64 = payment
                .pay_ins
                .iter()
                .chain(&payment.refunds)
                .flat_map(|key| posted.get(key))
                .flatten()
                .filter(|(currency, _)| *currency == payment.currency)
                .map(|(_, signed)| signed)
                .sum();
            let difference = ledger_total - payment.psp_total;
            if difference != 0 {
                let (total, lines) = drift.per_currency.entry(payment.currency.clone()).or_default();
                *total += difference;
                lines.extend(payment.transaction_ids.iter().cloned());
            }
        }
        Ok(())
    }
}

impl Drift {
    /// One break per currency whose judged payments drifted.
    pub(super) fn findings(self, day: Day) -> Vec<Finding> {
        self.per_currency
            .into_iter()
            .map(|(currency, (difference, mut lines))| {
                let count = lines.len();
                lines.truncate(EVIDENCE_LINES_MAX);
                Finding {
                    kind: BreakKind::ClearingDrift,
                    subject: format!("{day}:{currency}"),
                    order_id: None,
                    transaction_ids: lines,
                    amount_minor: difference,
                    currency: currency.clone(),
                    detail: format!(
                        "the ledger's psp_clearing postings for payments the PSP reported on {day} differ from its \
                         {count} line(s) by {difference} {currency} (ledger minus PSP), though their rows agree"
                    ),
                }
            })
            .collect()
    }
}
