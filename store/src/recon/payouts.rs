//! Matching the payouts a provider's statement lists (stored as `payout` / `payout_return`
//! lines under the PSP whose provider pays the sellers: Toss payouts under `toss`, Stripe
//! Connect under `stripe`) against our `payout` rows, in pages; and the payouts we sent that
//! the statement has not listed by the end of the settlement window. The rules are
//! `payments_recon::match_payout`'s.

use super::day::{LINE_COLUMNS, line_from_row};
use super::{RECON_PAGE_KEYS, placeholders};
use crate::{Store, StoreError};
use payments_recon::payouts::PAYOUT_LOOKBACK_DAYS;
use payments_recon::{BreakKind, Day, Finding, OurPayout, Psp, SettlementLine, match_payout};
use sqlx::Row;
use std::collections::BTreeMap;

/// Line kinds of payout statements.
pub(crate) const PAYOUT_KINDS: &str = "('payout', 'payout_return')";

/// What matching a day's payouts found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayoutMatch {
    /// Payouts listed over the lookback that agree with ours.
    pub matched: u64,
    /// Payouts we sent, still inside the window without a statement line: timing.
    pub in_window: u64,
    /// The breaks.
    pub findings: Vec<Finding>,
}

/// The payout provider (`payout.provider`) whose statements are stored under `psp`.
pub fn payout_provider_of(psp: Psp) -> &'static str {
    match psp {
        Psp::Toss => "toss_payouts",
        Psp::Stripe => "stripe_connect",
    }
}

impl Store {
    /// Matches every payout the statements list with a line dated in the
    /// [`PAYOUT_LOOKBACK_DAYS`] ending `day` (so a return reported days after its payout is
    /// judged), then finds the payouts we sent on the day the window closes that no statement
    /// lists.
    pub async fn match_payouts(&self, psp: Psp, day: Day, window_days: i64) -> Result<PayoutMatch, StoreError> {
        let mut outcome = PayoutMatch::default();
        let from = day.plus_days(-PAYOUT_LOOKBACK_DAYS);
        let mut after = String::new();
        loop {
            let rows = sqlx::query(&format!(
                "SELECT DISTINCT order_id FROM recon_line WHERE psp = $1 AND kind IN {PAYOUT_KINDS} \
                 AND duplicate_of IS NULL AND sold_date >= $2 AND sold_date <= $3 AND order_id > $4 \
                 ORDER BY order_id LIMIT $5"
            ))
            .bind(psp.as_str())
            .bind(from.to_string())
            .bind(day.to_string())
            .bind(after.as_str())
            .bind(i64::try_from(RECON_PAGE_KEYS).unwrap_or(i64::MAX))
            .fetch_all(self.pool())
            .await?;
            let keys: Vec<String> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
            let Some(last) = keys.last() else { break };
            after.clone_from(last);
            let mut lines: BTreeMap<String, Vec<SettlementLine>> = BTreeMap::new();
            let sql = format!(
                "SELECT {LINE_COLUMNS} FROM recon_line WHERE psp = $1 AND kind IN {PAYOUT_KINDS} \
                 AND duplicate_of IS NULL AND order_id IN ({}) ORDER BY line_id",
                placeholders(2, keys.len())
            );
            let mut query = sqlx::query(&sql).bind(psp.as_str());
            for key in &keys {
                query = query.bind(key.as_str());
            }
            for row in query.fetch_all(self.pool()).await? {
                let line = line_from_row(&row)?;
                lines.entry(line.order_id.clone().unwrap_or_default()).or_default().push(line);
            }
            let ours = self.our_payouts(&keys).await?;
            for key in &keys {
                let verdict = match_payout(key, lines.get(key).map_or(&[][..], Vec::as_slice), ours.get(key));
                outcome.matched += u64::from(!verdict.matched.is_empty());
                outcome.findings.extend(verdict.findings);
            }
        }
        self.unlisted_payouts(psp, day, window_days, &mut outcome).await?;
        Ok(outcome)
    }

    async fn our_payouts(&self, ids: &[String]) -> Result<BTreeMap<String, OurPayout>, StoreError> {
        let sql = format!(
            "SELECT payout_id, amount_minor, currency, status FROM payout WHERE payout_id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query(&sql);
        for id in ids {
            query = query.bind(id.as_str());
        }
        let mut found = BTreeMap::new();
        for row in query.fetch_all(self.pool()).await? {
            let payout = OurPayout {
                payout_id: row.try_get("payout_id")?,
                amount_minor: row.try_get("amount_minor")?,
                currency: row.try_get("currency")?,
                status: row.try_get("status")?,
            };
            found.insert(payout.payout_id.clone(), payout);
        }
        Ok(found)
    }

    /// Our payouts the provider gave an id to (so it made them) and no statement lists: those
    /// made on the day the window closes are breaks; younger ones are timing.
    async fn unlisted_payouts(
        &self,
        psp: Psp,
        day: Day,
        window_days: i64,
        outcome: &mut PayoutMatch,
    ) -> Result<(), StoreError> {
        let closes = day.plus_days(-window_days.max(0));
        let start = psp.day_start_ms(closes);
        let end = psp.day_start_ms(day.plus_days(1));
        let rows = sqlx::query(
            "SELECT payout_id, amount_minor, currency, status, created_at_ms FROM payout p \
             WHERE provider = $1 AND provider_payout_id IS NOT NULL AND created_at_ms >= $2 AND created_at_ms < $3 \
             AND NOT EXISTS (SELECT 1 FROM recon_line l WHERE l.psp = $4 AND l.order_id = p.payout_id \
             AND l.kind = 'payout' AND l.duplicate_of IS NULL) ORDER BY payout_id",
        )
        .bind(payout_provider_of(psp))
        .bind(start)
        .bind(end)
        .bind(psp.as_str())
        .fetch_all(self.pool())
        .await?;
        let closes_end = psp.day_start_ms(closes.plus_days(1));
        for row in rows {
            let created: i64 = row.try_get("created_at_ms")?;
            if created >= closes_end {
                outcome.in_window += 1;
                continue;
            }
            let payout_id: String = row.try_get("payout_id")?;
            let status: String = row.try_get("status")?;
            outcome.findings.push(Finding {
                kind: BreakKind::PayoutMissingAtProvider,
                subject: payout_id.clone(),
                order_id: Some(payout_id),
                transaction_ids: Vec::new(),
                amount_minor: row.try_get("amount_minor")?,
                currency: row.try_get("currency")?,
                detail: format!("we sent this payout ({status}); the provider's statement does not list it"),
            });
        }
        Ok(())
    }
}

impl Store {
    /// The provider's seller references of every seller paid through `provider`
    /// (`toss_payouts`, `stripe_connect`): the accounts whose payouts a statement lists.
    pub async fn payout_destinations(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT provider_seller_ref FROM payout_seller WHERE provider = $1 ORDER BY provider_seller_ref",
        )
        .bind(provider)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
    }
}
