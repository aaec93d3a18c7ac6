//! Booking a settled day. The PSP pays the day's captures less its refunds and fees into the
//! platform's bank account: for each currency, one ledger transaction moves the day's gross
//! out of PSP clearing, the net into the bank and the fee into PSP fees — the fee the contract
//! says to `psp_fees`, any difference to `psp_fee_adjustments` — so the clearing account of a
//! fully settled, unbroken day nets to zero.
//!
//! What is booked is what the PSP reported (first copies of its charge and refund lines); a
//! report of the day imported later books a further part covering only its new lines
//! (`settle:{psp}:{day}:{currency}:{through_line_id}`, recorded in `recon_settlement` in the
//! same transaction, so a part is booked once).

use crate::ledger::{Direction, EntryDraft, PSP_CLEARING_ACCOUNT, TransactionDraft, post_in_tx};
use crate::{Store, StoreError, now_ms};
use payments_domain::{Currency, Money};
use payments_recon::{Day, FeeContract, Psp};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// Ledger kind of a settlement transaction.
pub const SETTLEMENT_LEDGER_KIND: &str = "settlement";
/// Asset account: the platform's bank account the PSPs pay into.
pub const PLATFORM_BANK_ACCOUNT: &str = "platform_bank";
/// Expense account: PSP fees as their contracts set them.
pub const PSP_FEES_ACCOUNT: &str = "psp_fees";
/// Expense account: what PSPs charged beyond (or below) their contracts.
pub const PSP_FEE_ADJUSTMENTS_ACCOUNT: &str = "psp_fee_adjustments";

/// One booked part of a day's settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementPart {
    /// The ledger transaction.
    pub ledger_transaction_id: String,
    /// ISO code.
    pub currency: String,
    /// Lines it covers.
    pub line_count: i64,
    /// Captures less refunds, minor units.
    pub gross_minor: i64,
    /// The PSP's fees.
    pub fee_minor: i64,
    /// The fees its contract sets.
    pub contract_fee_minor: i64,
    /// Paid into the bank.
    pub net_minor: i64,
    /// Booked now (false: it was booked before).
    pub booked_now: bool,
}

impl Store {
    /// Books the settlement of `psp`'s `day`, one part per currency with lines not yet booked.
    /// Lines in a currency we do not keep books in are left out (they are currency breaks).
    pub async fn book_settlement(
        &self,
        psp: Psp,
        day: Day,
        contract: &FeeContract,
    ) -> Result<Vec<SettlementPart>, StoreError> {
        let mut parts = Vec::new();
        for currency in self.unsettled_currencies(psp, day).await? {
            let Ok(code) = Currency::parse(&currency) else { continue };
            let fixed = contract.fee_minor(0, code.code());
            let mut tx = self.begin_write().await?;
            let through: i64 = sqlx::query(
                "SELECT COALESCE(MAX(through_line_id), 0) FROM recon_settlement WHERE psp = $1 AND day = $2 AND currency = $3",
            )
            .bind(psp.as_str())
            .bind(day.to_string())
            .bind(code.code())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
            // The contract's percentage rounded half up per line, as FeeContract::fee_minor does.
            let sums = sqlx::query(
                "SELECT COUNT(*) AS lines, CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS gross, \
                 CAST(COALESCE(SUM(fee_minor), 0) AS BIGINT) AS fee, CAST(COALESCE(SUM(net_minor), 0) AS BIGINT) AS net, \
                 CAST(COALESCE(MAX(line_id), 0) AS BIGINT) AS last_line, CAST(COALESCE(SUM(CASE WHEN kind = 'charge' \
                 THEN (amount_minor * $5 * 2 + 10000) / 20000 + $6 ELSE 0 END), 0) AS BIGINT) AS contract_fee FROM recon_line WHERE psp = $1 AND sold_date = $2 AND currency = $3 \
                 AND duplicate_of IS NULL AND kind IN ('charge', 'refund') AND line_id > $4",
            )
            .bind(psp.as_str())
            .bind(day.to_string())
            .bind(code.code())
            .bind(through)
            .bind(i64::from(contract.bps))
            .bind(fixed)
            .fetch_one(&mut *tx)
            .await?;
            let lines: i64 = sums.try_get("lines")?;
            if lines == 0 {
                continue;
            }
            let part = SettlementPart {
                ledger_transaction_id: format!(
                    "settle:{psp}:{day}:{}:{}",
                    code.code(),
                    sums.try_get::<i64, _>("last_line")?
                ),
                currency: code.code().to_owned(),
                line_count: lines,
                gross_minor: sums.try_get("gross")?,
                fee_minor: sums.try_get("fee")?,
                contract_fee_minor: sums.try_get("contract_fee")?,
                net_minor: sums.try_get("net")?,
                booked_now: true,
            };
            let draft = settlement_draft(&part, code)?;
            if let Some(draft) = draft {
                post_in_tx(&mut tx, &draft).await?;
            }
            sqlx::query(
                "INSERT INTO recon_settlement (ledger_transaction_id, psp, day, currency, through_line_id, line_count, \
                 created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(part.ledger_transaction_id.as_str())
            .bind(psp.as_str())
            .bind(day.to_string())
            .bind(code.code())
            .bind(sums.try_get::<i64, _>("last_line")?)
            .bind(lines)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(%psp, %day, currency = %code, gross = part.gross_minor, net = part.net_minor, "settlement booked");
            parts.push(part);
        }
        Ok(parts)
    }

    /// The parts booked for a day.
    pub async fn settlement_parts(&self, psp: Psp, day: Day) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT ledger_transaction_id FROM recon_settlement WHERE psp = $1 AND day = $2 ORDER BY through_line_id",
        )
        .bind(psp.as_str())
        .bind(day.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
    }

    async fn unsettled_currencies(&self, psp: Psp, day: Day) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT currency FROM recon_line WHERE psp = $1 AND sold_date = $2 AND duplicate_of IS NULL \
             AND kind IN ('charge', 'refund') ORDER BY currency",
        )
        .bind(psp.as_str())
        .bind(day.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?)
    }
}

/// The part's ledger transaction: clearing −gross, bank +net, fees +contract fee, adjustments
/// +(fee − contract fee), each leg on the side its sign says; none when every leg is zero.
fn settlement_draft(part: &SettlementPart, currency: Currency) -> Result<Option<TransactionDraft>, StoreError> {
    let overflow =
        || StoreError::Precondition(format!("settlement {}: amounts out of range", part.ledger_transaction_id));
    let adjustment = part.fee_minor.checked_sub(part.contract_fee_minor).ok_or_else(overflow)?;
    let legs = [
        (PSP_CLEARING_ACCOUNT, part.gross_minor.checked_neg().ok_or_else(overflow)?),
        (PLATFORM_BANK_ACCOUNT, part.net_minor),
        (PSP_FEES_ACCOUNT, part.contract_fee_minor),
        (PSP_FEE_ADJUSTMENTS_ACCOUNT, adjustment),
    ];
    let entries: Vec<EntryDraft> = legs
        .iter()
        .filter(|(_, signed)| *signed != 0)
        .map(|(account, signed)| EntryDraft {
            account: (*account).to_owned(),
            direction: if *signed > 0 { Direction::Debit } else { Direction::Credit },
            amount: Money::from_minor(signed.unsigned_abs().try_into().unwrap_or(i64::MAX), currency),
        })
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    Ok(Some(TransactionDraft {
        id: part.ledger_transaction_id.clone(),
        kind: SETTLEMENT_LEDGER_KIND.into(),
        payment_order_id: None,
        entries,
    }))
}
