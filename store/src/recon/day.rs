//! Matching one PSP's day in pages: the day's lines grouped by PSP payment (at most
//! [`RECON_PAGE_KEYS`] payments in memory at once), then what we booked that the PSP should
//! have reported by now (the captures and refunds of the day the settlement window closes).
//! The matcher itself is `payments_recon::match_payment`; this reads both sides for it. Also
//! here: reading one stored line, and the refunds approved fixes made (written and read).

use super::placeholders;
use crate::{Store, StoreError};
use payments_recon::{
    BreakKind, Day, FeeContract, Finding, LineKind, MatchPolicy, OrderState, OurOrder, OurRefund, Payment, Psp,
    SettlementLine, match_payment,
};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{BTreeMap, BTreeSet};

mod drift;
mod expected;

use expected::Expected;

/// Payments (or our captures) read per page: bounds memory and the size of IN lists.
pub const RECON_PAGE_KEYS: usize = 500;

/// Break count of one kind in a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindCount {
    /// The kind.
    pub kind: BreakKind,
    /// Its class (1, 2 or 3).
    pub class: i64,
    /// How many.
    pub count: u64,
}

/// What matching a day found, before the findings are kept as breaks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayReport {
    /// First copies of lines the day has.
    pub lines: u64,
    /// Lines that matched our books exactly.
    pub matched: u64,
    /// Our captures and refunds still inside the settlement window without a line: timing,
    /// not a break yet.
    pub in_window: u64,
    /// The breaks, per kind.
    pub breaks: Vec<KindCount>,
}

/// One payment's lines and our side, while a page is matched.
#[derive(Default)]
struct Group {
    lines: Vec<SettlementLine>,
    orders: Vec<OurOrder>,
    refunds: Vec<OurRefund>,
}

impl Store {
    /// Matches `psp`'s `day`: answers the report and every finding (the caller keeps them as
    /// breaks). Reads in pages; never the whole day at once.
    pub async fn match_settlement_day(
        &self,
        psp: Psp,
        day: Day,
        contract: &FeeContract,
        policy: &MatchPolicy,
    ) -> Result<(DayReport, Vec<Finding>), StoreError> {
        let mut report = DayReport {
            lines: u64::try_from(self.settlement_line_count(psp, day).await?).unwrap_or(0),
            ..DayReport::default()
        };
        let mut findings = self.duplicate_copies(psp, day).await?;
        let mut drift = drift::Drift::default();
        // First the payments the PSP names (an index range per page), then lines without a
        // payment reference, keyed by their order id (or transaction id).
        for named in [true, false] {
            let mut after = String::new();
            loop {
                let keys = self.day_payment_keys(psp, day, named, &after).await?;
                let Some(last) = keys.last() else { break };
                after.clone_from(last);
                let groups = self.load_groups(psp, named, &keys).await?;
                let mut judged = Vec::new();
                for (key, group) in &groups {
                    let payment = Payment { key, lines: &group.lines, orders: &group.orders, refunds: &group.refunds };
                    let verdict = match_payment(payment, day, contract, policy);
                    report.matched += u64::try_from(verdict.matched.len()).unwrap_or(0);
                    judged.extend(drift::judged(group, verdict.findings.is_empty()));
                    findings.extend(verdict.findings);
                }
                self.add_drift(&judged, &mut drift).await?;
            }
        }
        findings.extend(drift.findings(day));
        let window_closes = day.plus_days(-policy.window_days.max(0));
        for expected in [Expected::Captures, Expected::Refunds] {
            findings.extend(self.unreported(psp, window_closes, day, expected, &mut report).await?);
        }
        let mut counts: BTreeMap<BreakKind, u64> = BTreeMap::new();
        for finding in &findings {
            *counts.entry(finding.kind).or_default() += 1;
        }
        report.breaks =
            counts.into_iter().map(|(kind, count)| KindCount { kind, class: kind.class().number(), count }).collect();
        Ok((report, findings))
    }

    /// The next page of the day's payment keys after `after`, in order: payment references
    /// (`named`), or for lines without one their order id, else transaction id.
    async fn day_payment_keys(&self, psp: Psp, day: Day, named: bool, after: &str) -> Result<Vec<String>, StoreError> {
        let sql = if named {
            "SELECT DISTINCT payment_reference FROM recon_line WHERE psp = $1 AND sold_date = $2 \
             AND duplicate_of IS NULL AND payment_reference > $3 ORDER BY payment_reference LIMIT $4"
        } else {
            "SELECT DISTINCT COALESCE(order_id, transaction_id) AS payment_key FROM recon_line \
             WHERE psp = $1 AND sold_date = $2 AND duplicate_of IS NULL AND payment_reference IS NULL \
             AND kind NOT IN ('payout', 'payout_return') \
             AND COALESCE(order_id, transaction_id) > $3 ORDER BY payment_key LIMIT $4"
        };
        let rows = sqlx::query(sql)
            .bind(psp.as_str())
            .bind(day.to_string())
            .bind(after)
            .bind(i64::try_from(RECON_PAGE_KEYS).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
    }

    /// Every line (all days, first copies) and our orders and succeeded refunds of `keys`.
    async fn load_groups(&self, psp: Psp, named: bool, keys: &[String]) -> Result<BTreeMap<String, Group>, StoreError> {
        let list = placeholders(2, keys.len());
        let sql = if named {
            format!(
                "SELECT {LINE_COLUMNS} FROM recon_line WHERE psp = $1 AND duplicate_of IS NULL AND payment_reference IN ({list})"
            )
        } else {
            format!(
                "SELECT {LINE_COLUMNS} FROM recon_line WHERE psp = $1 AND duplicate_of IS NULL AND \
                 payment_reference IS NULL AND kind NOT IN ('payout', 'payout_return') \
                 AND COALESCE(order_id, transaction_id) IN ({list})"
            )
        };
        let mut query = sqlx::query(&sql).bind(psp.as_str());
        for key in keys {
            query = query.bind(key.as_str());
        }
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let mut order_ids: BTreeSet<String> = BTreeSet::new();
        for row in query.fetch_all(self.pool()).await? {
            let line = line_from_row(&row)?;
            let key = line_key(&line);
            order_ids.extend(line.order_id.clone());
            groups.entry(key).or_default().lines.push(line);
        }
        let mut key_of_order_id: BTreeMap<String, String> = BTreeMap::new();
        for (key, group) in &groups {
            for order_id in group.lines.iter().filter_map(|l| l.order_id.clone()) {
                key_of_order_id.entry(order_id).or_insert_with(|| key.clone());
            }
        }
        let orders = self.orders_for(keys, &order_ids.into_iter().collect::<Vec<_>>()).await?;
        let mut by_order: BTreeMap<String, String> = BTreeMap::new();
        for (order, reference, checkout) in orders {
            // A captured order booked under another PSP payment, named by this payment's lines:
            // this payment is a second capture of it.
            let named_by: Vec<String> = groups
                .iter()
                .filter(|(key, group)| {
                    reference.as_deref() != Some(key.as_str())
                        && group.lines.iter().any(|l| {
                            l.order_id.as_deref() == Some(order.order_id.as_str())
                                || l.order_id.as_deref() == Some(checkout.as_str())
                        })
                })
                .map(|(key, _)| key.clone())
                .collect();
            let booked_elsewhere = order.state == OrderState::Captured && reference.is_some();
            let key = reference
                .filter(|r| groups.contains_key(r))
                .or_else(|| key_of_order_id.get(&order.order_id).cloned())
                .or_else(|| key_of_order_id.get(&checkout).cloned());
            if booked_elsewhere {
                for other in named_by {
                    let copy = OurOrder { state: OrderState::CapturedElsewhere, ..order.clone() };
                    groups.entry(other).or_default().orders.push(copy);
                }
            }
            if let Some(key) =
                key.filter(|k| !booked_elsewhere || groups[k].orders.iter().all(|o| o.order_id != order.order_id))
            {
                by_order.insert(order.order_id.clone(), key.clone());
                groups.entry(key).or_default().orders.push(order);
            }
        }
        for refund in self.succeeded_refunds(psp, &by_order.keys().cloned().collect::<Vec<_>>()).await? {
            if let Some(group) = by_order.get(&refund.order_id).and_then(|key| groups.get_mut(key)) {
                group.refunds.push(refund);
            }
        }
        for (reference, refund) in self.fix_refunds(psp, keys).await? {
            if let Some(group) = groups.get_mut(&reference) {
                group.refunds.push(refund);
            }
        }
        Ok(groups)
    }

    /// Our orders whose PSP reference is one of `references`, or whose id or checkout id is one
    /// of `order_ids`, with their reference and checkout id.
    async fn orders_for(
        &self,
        references: &[String],
        order_ids: &[String],
    ) -> Result<Vec<(OurOrder, Option<String>, String)>, StoreError> {
        let mut found: BTreeMap<String, (OurOrder, Option<String>, String)> = BTreeMap::new();
        for (column, values) in
            [("psp_reference", references), ("payment_order_id", order_ids), ("checkout_id", order_ids)]
        {
            for chunk in values.chunks(RECON_PAGE_KEYS) {
                let sql = format!(
                    "SELECT payment_order_id, checkout_id, status, amount_minor, currency, psp_reference \
                     FROM payment_order WHERE {column} IN ({})",
                    placeholders(1, chunk.len())
                );
                let mut query = sqlx::query(&sql);
                for value in chunk {
                    query = query.bind(value.as_str());
                }
                for row in query.fetch_all(self.pool()).await? {
                    let order = order_from_row(&row)?;
                    found.entry(order.0.order_id.clone()).or_insert(order);
                }
            }
        }
        Ok(found.into_values().collect())
    }

    /// The succeeded refunds (and reversals) of `order_ids`, with the PSP day they succeeded.
    async fn succeeded_refunds(&self, psp: Psp, order_ids: &[String]) -> Result<Vec<OurRefund>, StoreError> {
        let mut refunds = Vec::new();
        for chunk in order_ids.chunks(RECON_PAGE_KEYS) {
            let sql = format!(
                "SELECT refund_id, payment_order_id, amount_minor, currency, psp_refund_reference, updated_at_ms \
                 FROM refund WHERE status = 'SUCCEEDED' AND payment_order_id IN ({}) ORDER BY refund_id",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind(id.as_str());
            }
            for row in query.fetch_all(self.pool()).await? {
                refunds.push(OurRefund {
                    refund_id: row.try_get("refund_id")?,
                    order_id: row.try_get("payment_order_id")?,
                    amount_minor: row.try_get("amount_minor")?,
                    currency: row.try_get("currency")?,
                    psp_reference: row.try_get("psp_refund_reference")?,
                    day: psp.day_of_ms(row.try_get("updated_at_ms")?),
                    of_unbooked_capture: false,
                });
            }
        }
        Ok(refunds)
    }

    /// Refunds approved fixes made on the payments `references`, with their payment.
    pub(super) async fn fix_refunds(
        &self,
        psp: Psp,
        references: &[String],
    ) -> Result<Vec<(String, OurRefund)>, StoreError> {
        let mut refunds = Vec::new();
        for chunk in references.chunks(RECON_PAGE_KEYS) {
            let sql = format!(
                "SELECT refund_id, payment_reference, amount_minor, currency, psp_refund_reference, created_at_ms \
                 FROM recon_fix_refund WHERE psp = $1 AND payment_reference IN ({}) ORDER BY refund_id",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(psp.as_str());
            for reference in chunk {
                query = query.bind(reference.as_str());
            }
            for row in query.fetch_all(self.pool()).await? {
                let refund = OurRefund {
                    refund_id: row.try_get("refund_id")?,
                    order_id: String::new(),
                    amount_minor: row.try_get("amount_minor")?,
                    currency: row.try_get("currency")?,
                    psp_reference: row.try_get("psp_refund_reference")?,
                    day: psp.day_of_ms(row.try_get("created_at_ms")?),
                    of_unbooked_capture: true,
                };
                refunds.push((row.try_get("payment_reference")?, refund));
            }
        }
        Ok(refunds)
    }

    /// Copies of a movement inside the report that first had it: duplicated lines.
    async fn duplicate_copies(&self, psp: Psp, day: Day) -> Result<Vec<Finding>, StoreError> {
        let rows = sqlx::query(
            "SELECT copy.line_id, copy.line_no, copy.file_id, copy.transaction_id, copy.order_id, copy.amount_minor, \
             copy.currency FROM recon_line copy JOIN recon_line first ON copy.duplicate_of = first.line_id \
             WHERE copy.psp = $1 AND copy.sold_date = $2 AND copy.file_id = first.file_id ORDER BY copy.line_id",
        )
        .bind(psp.as_str())
        .bind(day.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let transaction_id: String = row.try_get("transaction_id")?;
                let (file_id, line_no): (i64, i64) = (row.try_get("file_id")?, row.try_get("line_no")?);
                Ok(Finding {
                    kind: BreakKind::DuplicateLine,
                    subject: format!("{transaction_id}@{file_id}:{line_no}"),
                    order_id: row.try_get("order_id")?,
                    transaction_ids: vec![transaction_id],
                    amount_minor: row.try_get("amount_minor")?,
                    currency: row.try_get("currency")?,
                    detail: format!("line {line_no} of report {file_id} repeats an earlier line; the copy is ignored"),
                })
            })
            .collect()
    }
}

/// Columns of a settlement line, in [`line_from_row`]'s order.
pub(crate) const LINE_COLUMNS: &str = "line_id, line_no, kind, transaction_id, payment_reference, order_id, \
    refund_reference, amount_minor, fee_minor, net_minor, currency, sold_date, paid_out_date, raw";

pub(crate) fn line_from_row(row: &AnyRow) -> Result<SettlementLine, StoreError> {
    let bad = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("settlement line: {e}"));
    let day = |column: &str| -> Result<Option<Day>, StoreError> {
        row.try_get::<Option<String>, _>(column)?.map(|d| Day::parse(&d).map_err(|e| bad(&e))).transpose()
    };
    Ok(SettlementLine {
        line_no: u32::try_from(row.try_get::<i64, _>("line_no")?).map_err(|e| bad(&e))?,
        kind: LineKind::from_stored(&row.try_get::<String, _>("kind")?),
        transaction_id: row.try_get("transaction_id")?,
        payment_reference: row.try_get("payment_reference")?,
        order_id: row.try_get("order_id")?,
        refund_reference: row.try_get("refund_reference")?,
        amount_minor: row.try_get("amount_minor")?,
        fee_minor: row.try_get("fee_minor")?,
        net_minor: row.try_get("net_minor")?,
        currency: row.try_get("currency")?,
        sold_date: day("sold_date")?.ok_or_else(|| bad(&"no sold date"))?,
        paid_out_date: day("paid_out_date")?,
        raw: row.try_get("raw")?,
    })
}

/// The payment a line belongs to, as [`Store::day_payment_keys`] groups them.
fn line_key(line: &SettlementLine) -> String {
    line.payment_reference.clone().or_else(|| line.order_id.clone()).unwrap_or_else(|| line.transaction_id.clone())
}

fn order_from_row(row: &AnyRow) -> Result<(OurOrder, Option<String>, String), StoreError> {
    let status: String = row.try_get("status")?;
    let state = match status.as_str() {
        "SUCCESS" | "REVERSED" => OrderState::Captured,
        "FAILED" => OrderState::Failed,
        _ => OrderState::Unconfirmed,
    };
    let order = OurOrder {
        order_id: row.try_get("payment_order_id")?,
        state,
        amount_minor: row.try_get("amount_minor")?,
        currency: row.try_get("currency")?,
    };
    Ok((order, row.try_get("psp_reference")?, row.try_get("checkout_id")?))
}

impl Store {
    /// Remembers a refund an approved fix made at the PSP (once per break: the same call again
    /// changes nothing).
    pub async fn record_fix_refund(
        &self,
        break_id: i64,
        psp: Psp,
        payment_reference: &str,
        amount: payments_domain::Money,
        psp_refund_reference: &str,
    ) -> Result<(), StoreError> {
        let refund_id = format!("recon-break-{break_id}");
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM recon_fix_refund WHERE refund_id = $1")
            .bind(&refund_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            sqlx::query(
                "INSERT INTO recon_fix_refund (refund_id, break_id, psp, payment_reference, amount_minor, currency, \
                 psp_refund_reference, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&refund_id)
            .bind(break_id)
            .bind(psp.as_str())
            .bind(payment_reference)
            .bind(amount.amount_minor())
            .bind(amount.currency().code())
            .bind(psp_refund_reference)
            .bind(crate::now_ms())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A settlement line by PSP and transaction id (its first copy).
    pub async fn settlement_line(
        &self,
        psp: Psp,
        transaction_id: &str,
    ) -> Result<Option<payments_recon::SettlementLine>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM recon_line WHERE psp = $1 AND transaction_id = $2 AND duplicate_of IS NULL",
            LINE_COLUMNS
        ))
        .bind(psp.as_str())
        .bind(transaction_id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| line_from_row(&r)).transpose()
    }
}
