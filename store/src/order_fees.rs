//! The platform fee of a captured order, recorded once and read back by every booking of it
//! (issue 12). The first booking of a SUCCESS order (its wallet credit or its ledger post,
//! whichever runs first, under the order's lock) records the moment of capture (the order's
//! first move to SUCCESS in its history), the fee rate in force then
//! ([`crate::Store::fee_rate_at`]) and the fee it gives; later bookings never look the rate up
//! again, so a rate changed between the two steps, or between a capture and its refund, cannot
//! make them disagree. The arithmetic and its rounding are `payments_domain::fees`.

use crate::fee_rates::rate_in_force;
use crate::records::{OrderFee, OrderRecord};
use crate::refunds::RefundId;
use crate::{StoreError, now_ms};
use payments_domain::fees::{FeeRate, fee_refund_minor};
use payments_domain::{Money, PaymentOrderStatus};
use sqlx::{Any, Row, Transaction};

/// Ledger account of the platform's fee income, one balance per currency.
pub const PLATFORM_REVENUE_ACCOUNT: &str = "platform_revenue";

/// The order's recorded fee, recording it first if no booking did yet. The caller holds the
/// order's lock and has checked that the order is SUCCESS.
pub(crate) async fn fix_order_fee(
    tx: &mut Transaction<'static, Any>,
    order: &OrderRecord,
) -> Result<OrderFee, StoreError> {
    if let Some(fee) = order.fee {
        return Ok(fee);
    }
    debug_assert_eq!(order.status, PaymentOrderStatus::Success);
    let captured_at_ms: Option<i64> = sqlx::query(
        "SELECT created_at_ms FROM payment_order_history WHERE payment_order_id = $1 AND to_status = 'SUCCESS' \
         ORDER BY id LIMIT 1",
    )
    .bind(order.payment_order_id.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .map(|r| r.try_get(0))
    .transpose()?;
    // Every SUCCESS order has its history row; the clock is only a guard against a row lost to
    // a manual repair.
    let captured_at_ms = captured_at_ms.unwrap_or_else(now_ms);
    // A step already booked without a recorded fee (by a version before fees, migration 0012)
    // booked the gross: the order's fee is zero, so the other step books the same.
    let rate = if order.wallet_updated || order.ledger_updated {
        FeeRate { bps: 0, fixed_minor: 0 }
    } else {
        rate_in_force(tx, order.amount.currency(), &order.seller_account, captured_at_ms)
            .await?
            .map_or(FeeRate { bps: 0, fixed_minor: 0 }, |r| r.rate)
    };
    let split = rate
        .split(order.amount)
        .map_err(|e| StoreError::Precondition(format!("fee of payment order {}: {e}", order.payment_order_id)))?;
    let written = sqlx::query(
        "UPDATE payment_order SET captured_at_ms = $1, fee_bps = $2, fee_fixed_minor = $3, fee_minor = $4 \
         WHERE payment_order_id = $5 AND fee_minor IS NULL",
    )
    .bind(captured_at_ms)
    .bind(i32::try_from(rate.bps).map_err(|_| StoreError::Precondition("bps out of range".into()))?)
    .bind(rate.fixed_minor)
    .bind(split.fee.amount_minor())
    .bind(order.payment_order_id.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if written != 1 {
        // Impossible under the order's lock; refused rather than booked twice.
        return Err(StoreError::Precondition(format!(
            "payment order {}: its fee was recorded concurrently",
            order.payment_order_id
        )));
    }
    Ok(OrderFee { captured_at_ms, rate, fee: split.fee })
}

/// How one refund of `refund` splits between the seller and the platform: the fee share it
/// gives back (`payments_domain::fees::fee_refund_minor`, proportional and cumulative over the
/// order's earlier SUCCEEDED refunds) and the seller's part, the rest. An order booked without
/// a recorded fee gives back no fee.
pub(crate) async fn refund_split(
    tx: &mut Transaction<'static, Any>,
    order: &OrderRecord,
    refund_id: &RefundId,
    refund: Money,
) -> Result<RefundSplit, StoreError> {
    let Some(fee) = order.fee else {
        return Ok(RefundSplit { seller_minor: refund.amount_minor(), fee_minor: 0 });
    };
    let refunded_before: i64 = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM refund \
         WHERE payment_order_id = $1 AND status = 'SUCCEEDED' AND refund_id <> $2",
    )
    .bind(order.payment_order_id.as_str())
    .bind(refund_id.as_str())
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?;
    let fee_minor =
        fee_refund_minor(order.amount.amount_minor(), fee.fee.amount_minor(), refunded_before, refund.amount_minor())
            .map_err(|e| StoreError::Precondition(format!("refund {refund_id}: {e}")))?;
    Ok(RefundSplit { seller_minor: refund.amount_minor() - fee_minor, fee_minor })
}

/// A refund's two parts, in minor units, summing to the refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RefundSplit {
    /// Taken back from the seller's payable account (and wallet).
    pub seller_minor: i64,
    /// Taken back from the platform's revenue.
    pub fee_minor: i64,
}
