//! Seller balances (issue 12), derived from the ledger: `total` (the seller's payable
//! account), `pending` (net of captures younger than the payout delay, after their refunds),
//! `reserved` (held: a rolling reserve's share of captures past the delay and within its window,
//! or the whole remainder while the seller's wallet is blocked), `available` (the rest, never
//! below zero) and `in_transit` (paid out, not yet settled). A negative total (a refund after a
//! payout) is carried: nothing is available until later captures cover it.

use crate::ledger::seller_payable_account;
use crate::payouts::payouts_in_transit_account;
use crate::wallet_blocks::load_block;
use crate::{Store, StoreError, now_ms};
use payments_domain::{Currency, SellerAccount};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

/// A seller's balance in one currency, minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellerBalance {
    /// The seller.
    pub seller_account: SellerAccount,
    /// The currency.
    pub currency: Currency,
    /// The seller's payable account: pending + reserved + available, or a negative carry.
    pub total_minor: i64,
    /// Captured less than the payout delay ago (net of their refunds).
    pub pending_minor: i64,
    /// Held back: a rolling reserve's share of recent captures, or everything past the delay
    /// while the seller's wallet is blocked.
    pub reserved_minor: i64,
    /// What a payout may take now.
    pub available_minor: i64,
    /// Paid out, not settled yet.
    pub in_transit_minor: i64,
}

/// What keeps a seller's captured money from a payout: the payout delay, and an optional
/// rolling reserve.
///
/// A capture is *pending* for `delay_ms` after it was captured. Once past the delay, while it
/// is younger than `reserve_window_ms`, `reserve_bps` of it (basis points of its net, less its
/// refunds) is *reserved*; after the window all of it is available. The reserved amount is
/// computed on the sum of the captures in the window and rounded **up** to the minor unit, so
/// the hold is never less than the percentage; the rounding is released with the rest when
/// the window passes. A blocked wallet reserves everything past the delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PayoutHolds {
    /// Captures younger than this are pending.
    pub delay_ms: i64,
    /// Share of a capture held back after the delay, in basis points (0: no reserve).
    pub reserve_bps: u32,
    /// Captures younger than this (and past the delay) are held at `reserve_bps`.
    pub reserve_window_ms: i64,
}

impl PayoutHolds {
    /// Only the delay; no rolling reserve.
    pub fn delay(delay_ms: i64) -> Self {
        PayoutHolds { delay_ms, reserve_bps: 0, reserve_window_ms: 0 }
    }

    /// The rolling reserve of a window's net captures: `reserve_bps` of it, rounded up; none
    /// for a net that is not positive.
    pub fn reserve_of(&self, window_net_minor: i64) -> i64 {
        if window_net_minor <= 0 || self.reserve_bps == 0 {
            return 0;
        }
        // Both factors are positive: adding the divisor less one rounds the quotient up.
        let held = (i128::from(window_net_minor) * i128::from(self.reserve_bps.min(10_000)) + 9_999) / 10_000;
        // At most the whole window: fits in an i64.
        i64::try_from(held).unwrap_or(window_net_minor)
    }
}

const SIGNED_CREDIT: &str = "CASE direction WHEN 'CREDIT' THEN amount_minor ELSE -amount_minor END";

async fn account_balance(
    tx: &mut Transaction<'static, Any>,
    account: &str,
    currency: Currency,
) -> Result<i64, StoreError> {
    Ok(sqlx::query(&format!(
        "SELECT CAST(COALESCE(SUM({SIGNED_CREDIT}), 0) AS BIGINT) FROM ledger_entry WHERE account = $1 AND currency = $2"
    ))
    .bind(account)
    .bind(currency.code())
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?)
}

/// The balance, read in the caller's transaction.
pub(crate) async fn balance_in_tx(
    tx: &mut Transaction<'static, Any>,
    seller: &SellerAccount,
    currency: Currency,
    now_ms: i64,
    holds: &PayoutHolds,
) -> Result<SellerBalance, StoreError> {
    let total_minor = account_balance(tx, &seller_payable_account(seller), currency).await?;
    let in_transit_minor = account_balance(tx, &payouts_in_transit_account(seller), currency).await?;
    // The wallet movements of orders captured within the delay, and of those past the delay but
    // within the reserve window: their net less their refunds.
    let delay_start = now_ms.saturating_sub(holds.delay_ms);
    let window_start = now_ms.saturating_sub(holds.reserve_window_ms.max(holds.delay_ms));
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN o.captured_at_ms > $3 THEN m.amount_minor ELSE 0 END), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN o.captured_at_ms <= $3 THEN m.amount_minor ELSE 0 END), 0) AS BIGINT) \
         FROM wallet_movement m JOIN payment_order o ON o.payment_order_id = m.payment_order_id \
         WHERE m.seller_account = $1 AND m.currency = $2 AND o.captured_at_ms > $4",
    )
    .bind(seller.as_str())
    .bind(currency.code())
    .bind(delay_start)
    .bind(window_start)
    .fetch_one(&mut **tx)
    .await?;
    let (recent, in_window): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    let pending_minor = recent.clamp(0, total_minor.max(0));
    let blocked = load_block(tx, seller).await?.is_some();
    let rest = (total_minor - pending_minor).max(0);
    let reserved_minor = if blocked { rest } else { holds.reserve_of(in_window).min(rest) };
    Ok(SellerBalance {
        seller_account: seller.clone(),
        currency,
        total_minor,
        pending_minor,
        reserved_minor,
        available_minor: rest - reserved_minor,
        in_transit_minor,
    })
}

impl Store {
    /// The seller's balance in `currency` now, with captures held as `holds` says
    /// counted as pending.
    pub async fn seller_balance(
        &self,
        seller: &SellerAccount,
        currency: Currency,
        holds: &PayoutHolds,
    ) -> Result<SellerBalance, StoreError> {
        let mut tx = self.pool().begin().await?;
        let balance = balance_in_tx(&mut tx, seller, currency, now_ms(), holds).await?;
        tx.commit().await?;
        Ok(balance)
    }

    /// The seller's balances in every currency they hold or have in transit.
    pub async fn seller_balances(
        &self,
        seller: &SellerAccount,
        holds: &PayoutHolds,
    ) -> Result<Vec<SellerBalance>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let rows =
            sqlx::query("SELECT DISTINCT currency FROM ledger_entry WHERE account IN ($1, $2) ORDER BY currency")
                .bind(seller_payable_account(seller))
                .bind(payouts_in_transit_account(seller))
                .fetch_all(&mut *tx)
                .await?;
        let now = now_ms();
        let mut balances = Vec::with_capacity(rows.len());
        for r in rows {
            let code: String = r.try_get(0)?;
            let currency = Currency::parse(&code).map_err(|e| StoreError::Corrupt(format!("ledger currency: {e}")))?;
            balances.push(balance_in_tx(&mut tx, seller, currency, now, holds).await?);
        }
        tx.commit().await?;
        Ok(balances)
    }
}

#[cfg(test)]
mod tests {
    use super::PayoutHolds;

    /// The hold is the percentage rounded up to the minor unit, never more than the window's
    /// net, and nothing for no reserve or a window that is not positive.
    #[test]
    fn the_reserve_rounds_up_within_the_window() {
        let holds = |bps| PayoutHolds { delay_ms: 0, reserve_bps: bps, reserve_window_ms: 1 };
        assert_eq!(holds(1000).reserve_of(5005), 501, "10 % of 50.05 is 5.005: held 5.01");
        assert_eq!(holds(1000).reserve_of(5000), 500, "exact: no rounding");
        assert_eq!(holds(1).reserve_of(1), 1, "a share of one minor unit holds that unit");
        assert_eq!(holds(10_000).reserve_of(777), 777, "all of it, never more");
        assert_eq!(holds(20_000).reserve_of(777), 777, "a share above 100 % is capped");
        assert_eq!(holds(1000).reserve_of(i64::MAX), i64::MAX / 10 + 1, "no overflow");
        assert_eq!(holds(0).reserve_of(5005), 0);
        assert_eq!(holds(1000).reserve_of(0), 0);
        assert_eq!(holds(1000).reserve_of(-400), 0, "refunds beyond the window's captures hold nothing");
        assert_eq!(PayoutHolds::delay(7).reserve_of(5005), 0);
    }
}
