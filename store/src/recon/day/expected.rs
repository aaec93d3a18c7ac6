//! The other direction: what we booked that the PSP should have reported. Every pay-in ledger
//! transaction expects a charge line, every refund or reversal transaction a refund line. Those
//! booked on the day the settlement window closes and still without a line are breaks; those
//! booked later are inside the window (timing), counted but not broken.

use super::{DayReport, RECON_PAGE_KEYS};
use crate::recon::placeholders;
use crate::refund_bookings::{REFUND_LEDGER_KIND, REVERSAL_LEDGER_KIND};
use crate::{Store, StoreError};
use payments_recon::matching::pair_refunds;
use payments_recon::{BreakKind, Day, Finding, LineKind, OurRefund, Psp};
use sqlx::Row;
use std::collections::BTreeSet;

/// One booking of ours found in a page: its ledger transaction and order.
struct Booked {
    order_id: String,
    checkout_id: String,
    psp_reference: Option<String>,
    amount_minor: i64,
    currency: String,
    /// For refunds: the refund id.
    refund_id: Option<String>,
}

/// What a booking of ours expects the PSP to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expected {
    /// A capture (a pay-in ledger transaction): a charge line.
    Captures,
    /// A refund or reversal (its ledger transaction): a refund line it pairs with.
    Refunds,
}

impl Store {
    /// Our bookings of `expected` from `closes` to `day` (the PSP's days) that the PSP has not
    /// reported: breaks when booked on `closes`, timing (counted in `report`) after it.
    pub(super) async fn unreported(
        &self,
        psp: Psp,
        closes: Day,
        day: Day,
        expected: Expected,
        report: &mut DayReport,
    ) -> Result<Vec<Finding>, StoreError> {
        let kinds: &[&str] = match expected {
            Expected::Captures => &[crate::ledger::PAYIN_LEDGER_KIND],
            Expected::Refunds => &[REFUND_LEDGER_KIND, REVERSAL_LEDGER_KIND],
        };
        let window = (psp.day_start_ms(closes), psp.day_start_ms(day.plus_days(1)));
        let mut findings = Vec::new();
        let mut after = (i64::MIN, String::new());
        loop {
            let page = self.booked_page(window, kinds, &after).await?;
            let Some((last, _)) = page.last() else { break };
            after = last.clone();
            let mut missing = Vec::new();
            match expected {
                Expected::Captures => {
                    let items: Vec<&Booked> = page.iter().map(|(_, b)| b).collect();
                    let reported = self.reported_charges(psp, &items).await?;
                    missing.extend(page.iter().filter(|(_, b)| !reported(b)));
                }
                Expected::Refunds => {
                    for entry in &page {
                        if !self.refund_reported(psp, &entry.1).await? {
                            missing.push(entry);
                        }
                    }
                }
            }
            for ((booked_at_ms, _), item) in missing {
                if psp.day_of_ms(*booked_at_ms) == closes {
                    findings.push(unreported_finding(expected, item, closes));
                } else {
                    report.in_window += 1;
                }
            }
        }
        Ok(findings)
    }

    /// A page of ledger transactions of `kinds` booked within `window` (unix ms, end excluded),
    /// after `after` (time, id), with their orders (and, for a refund's `{refund_id}:ledger`, its refund:
    /// the id less its 7-byte `:ledger` suffix, found through the refund's primary key).
    async fn booked_page(
        &self,
        (start, end): (i64, i64),
        kinds: &[&str],
        after: &(i64, String),
    ) -> Result<Vec<((i64, String), Booked)>, StoreError> {
        let sql = format!(
            "SELECT t.id, t.created_at_ms, o.payment_order_id, o.checkout_id, o.psp_reference, o.amount_minor, \
             o.currency, r.refund_id, r.amount_minor AS refund_minor FROM ledger_transaction t \
             JOIN payment_order o ON o.payment_order_id = t.payment_order_id \
             LEFT JOIN refund r ON r.refund_id = SUBSTR(t.id, 1, LENGTH(t.id) - 7) \
             WHERE t.kind IN ({}) AND t.created_at_ms >= $1 AND t.created_at_ms < $2 \
             AND (t.created_at_ms > $3 OR (t.created_at_ms = $3 AND t.id > $4)) \
             ORDER BY t.created_at_ms, t.id LIMIT $5",
            placeholders(6, kinds.len())
        );
        let mut query = sqlx::query(&sql)
            .bind(start)
            .bind(end)
            .bind(after.0)
            .bind(after.1.as_str())
            .bind(i64::try_from(RECON_PAGE_KEYS).unwrap_or(i64::MAX));
        for kind in kinds {
            query = query.bind(*kind);
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                let refund_minor: Option<i64> = row.try_get("refund_minor")?;
                let booked = Booked {
                    order_id: row.try_get("payment_order_id")?,
                    checkout_id: row.try_get("checkout_id")?,
                    psp_reference: row.try_get("psp_reference")?,
                    amount_minor: refund_minor.map_or_else(|| row.try_get("amount_minor"), Ok)?,
                    currency: row.try_get("currency")?,
                    refund_id: row.try_get("refund_id")?,
                };
                Ok(((row.try_get("created_at_ms")?, row.try_get("id")?), booked))
            })
            .collect()
    }

    /// Which of `booked` a charge line reports (by payment reference, order id or, for the
    /// hosted flow, checkout id), as a predicate.
    async fn reported_charges(
        &self,
        psp: Psp,
        booked: &[&Booked],
    ) -> Result<impl Fn(&Booked) -> bool + use<>, StoreError> {
        let references: Vec<String> = booked.iter().filter_map(|b| b.psp_reference.clone()).collect();
        let ids: Vec<String> = booked.iter().flat_map(|b| [b.order_id.clone(), b.checkout_id.clone()]).collect();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for (column, values) in [("payment_reference", &references), ("order_id", &ids)] {
            for chunk in values.chunks(RECON_PAGE_KEYS) {
                let sql = format!(
                    "SELECT {column} FROM recon_line WHERE psp = $1 AND kind = 'charge' AND duplicate_of IS NULL \
                     AND {column} IN ({})",
                    placeholders(2, chunk.len())
                );
                let mut query = sqlx::query(&sql).bind(psp.as_str());
                for value in chunk {
                    query = query.bind(value.as_str());
                }
                for row in query.fetch_all(self.pool()).await? {
                    seen.insert(row.try_get(0)?);
                }
            }
        }
        Ok(move |b: &Booked| {
            b.psp_reference.as_ref().is_some_and(|r| seen.contains(r))
                || seen.contains(&b.order_id)
                || seen.contains(&b.checkout_id)
        })
    }

    /// Whether a refund line pairs with our refund `item`: the refund lines of its payment
    /// against all our succeeded refunds of that payment's orders.
    async fn refund_reported(&self, psp: Psp, item: &Booked) -> Result<bool, StoreError> {
        let Some(reference) = item.psp_reference.as_deref() else { return Ok(false) };
        let lines = sqlx::query(&format!(
            "SELECT {} FROM recon_line WHERE psp = $1 AND payment_reference = $2 AND kind = $3 AND duplicate_of IS NULL",
            super::LINE_COLUMNS
        ))
        .bind(psp.as_str())
        .bind(reference)
        .bind(LineKind::Refund.as_str())
        .fetch_all(self.pool())
        .await?
        .iter()
        .map(super::line_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        let orders: Vec<String> = sqlx::query("SELECT payment_order_id FROM payment_order WHERE psp_reference = $1")
            .bind(reference)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let mut ours: Vec<OurRefund> = self.succeeded_refunds(psp, &orders).await?;
        ours.extend(self.fix_refunds(psp, &[reference.to_owned()]).await?.into_iter().map(|(_, r)| r));
        let (_, unpaired) = pair_refunds(&lines, &ours);
        Ok(!unpaired.contains(&item.refund_id.as_deref().unwrap_or_default()))
    }
}

fn unreported_finding(expected: Expected, item: &Booked, closes: Day) -> Finding {
    let (kind, subject, detail) = match expected {
        Expected::Captures => (
            BreakKind::MissingAtPsp,
            item.order_id.clone(),
            format!(
                "we booked a capture of {} {} on {closes}; the PSP reports none by the end of the settlement window",
                item.amount_minor, item.currency
            ),
        ),
        Expected::Refunds => (
            BreakKind::RefundMissingAtPsp,
            item.refund_id.clone().unwrap_or_default(),
            format!("we refunded {} {} on {closes}; the PSP reports no such refund", item.amount_minor, item.currency),
        ),
    };
    Finding {
        kind,
        subject,
        order_id: Some(item.order_id.clone()),
        transaction_ids: Vec::new(),
        amount_minor: item.amount_minor,
        currency: item.currency.clone(),
        detail,
    }
}

impl Store {
    /// Heals the open `missing_at_psp` and `refund_missing_at_psp` breaks of `psp` whose line
    /// the PSP reported since (a report of a later day, past the window): the run of that
    /// later day matches the line, and the break of the earlier day must not wait for that day
    /// to be run again. Answers how many were healed.
    pub async fn heal_late_lines(&self, psp: Psp) -> Result<u64, StoreError> {
        let rows = sqlx::query(
            "SELECT b.break_id, b.kind, b.subject, o.payment_order_id, o.checkout_id, o.psp_reference, o.amount_minor, \
             o.currency FROM recon_break b JOIN payment_order o ON o.payment_order_id = b.order_id \
             WHERE b.psp = $1 AND b.status IN ('OPEN', 'HEALING') AND b.kind IN ('missing_at_psp', 'refund_missing_at_psp')",
        )
        .bind(psp.as_str())
        .fetch_all(self.pool())
        .await?;
        let mut healed = 0;
        for row in rows {
            let kind: String = row.try_get("kind")?;
            let subject: String = row.try_get("subject")?;
            let mut item = Booked {
                order_id: row.try_get("payment_order_id")?,
                checkout_id: row.try_get("checkout_id")?,
                psp_reference: row.try_get("psp_reference")?,
                amount_minor: row.try_get("amount_minor")?,
                currency: row.try_get("currency")?,
                refund_id: None,
            };
            let reported = if kind == BreakKind::MissingAtPsp.as_str() {
                let seen = self.reported_charges(psp, &[&item]).await?;
                seen(&item)
            } else {
                item.refund_id = Some(subject);
                self.refund_reported(psp, &item).await?
            };
            if reported {
                let action = crate::BreakAction::Healed { action: "the PSP reported it in a later report".into() };
                self.act_on_break(row.try_get("break_id")?, &action, "program").await?;
                healed += 1;
            }
        }
        Ok(healed)
    }
}
