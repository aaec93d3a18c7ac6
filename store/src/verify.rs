//! Consistency checks an operator (or a test) runs at any time: every ledger transaction
//! balances per currency, the whole ledger balances per currency, every seller wallet equals
//! the projection of the seller's ledger account, and every seller's payouts not final yet sum
//! to the seller's payouts-in-transit account.

use crate::ledger::seller_payable_account;
use crate::{Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::collections::BTreeMap;

/// A transaction (or the whole ledger, `transaction_id = "*"`) whose entries do not sum to zero.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imbalance {
    /// Transaction id, or `*` for the ledger total.
    pub transaction_id: String,
    /// Currency code.
    pub currency: String,
    /// Debits minus credits, minor units.
    pub difference_minor: i64,
}

/// A wallet whose balance differs from its ledger account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletMismatch {
    /// Seller.
    pub seller_account: String,
    /// Currency code.
    pub currency: String,
    /// Wallet balance, minor units (0 when no wallet row exists).
    pub wallet_minor: i64,
    /// Ledger projection (credits minus debits), minor units.
    pub ledger_minor: i64,
}

/// A seller's payouts in transit that differ from their ledger account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutMismatch {
    /// Seller.
    pub seller_account: String,
    /// Currency code.
    pub currency: String,
    /// Sum of the seller's payouts not final yet (RESERVED to PAID), minor units.
    pub payouts_open_minor: i64,
    /// The seller's `payouts_in_transit` account (credits minus debits), minor units.
    pub ledger_minor: i64,
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Sealed transactions examined.
    pub transactions: i64,
    /// Entries examined.
    pub entries: i64,
    /// Entries whose transaction was never sealed (should be impossible: deferred FK).
    pub orphan_entries: i64,
    /// Wallet rows examined.
    pub wallets: i64,
    /// Unbalanced transactions or currency totals.
    pub imbalances: Vec<Imbalance>,
    /// Wallets that differ from the ledger.
    pub wallet_mismatches: Vec<WalletMismatch>,
    /// Payouts in transit that differ from the ledger.
    pub payout_mismatches: Vec<PayoutMismatch>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_consistent(&self) -> bool {
        self.orphan_entries == 0
            && self.imbalances.is_empty()
            && self.wallet_mismatches.is_empty()
            && self.payout_mismatches.is_empty()
    }
}

const SIGNED: &str = "CASE direction WHEN 'DEBIT' THEN amount_minor ELSE -amount_minor END";

impl Store {
    /// Runs every check in one read transaction (a consistent snapshot on PostgreSQL).
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut tx = self.pool.begin().await?;
        let count = |sql: &'static str| sqlx::query(sql);
        let transactions: i64 =
            count("SELECT COUNT(*) FROM ledger_transaction").fetch_one(&mut *tx).await?.try_get(0)?;
        let entries: i64 = count("SELECT COUNT(*) FROM ledger_entry").fetch_one(&mut *tx).await?.try_get(0)?;
        let wallets: i64 = count("SELECT COUNT(*) FROM wallet").fetch_one(&mut *tx).await?.try_get(0)?;
        let orphan_entries: i64 = count(
            "SELECT COUNT(*) FROM ledger_entry e LEFT JOIN ledger_transaction t ON t.id = e.transaction_id \
             WHERE t.id IS NULL",
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;

        let mut imbalances = Vec::new();
        let per_txn = format!(
            "SELECT transaction_id, currency, CAST(SUM({SIGNED}) AS BIGINT) AS diff FROM ledger_entry \
             GROUP BY transaction_id, currency HAVING SUM({SIGNED}) <> 0"
        );
        let totals = format!(
            "SELECT '*' AS transaction_id, currency, CAST(SUM({SIGNED}) AS BIGINT) AS diff FROM ledger_entry \
             GROUP BY currency HAVING SUM({SIGNED}) <> 0"
        );
        for sql in [per_txn, totals] {
            for r in sqlx::query(&sql).fetch_all(&mut *tx).await? {
                imbalances.push(Imbalance {
                    transaction_id: r.try_get("transaction_id")?,
                    currency: r.try_get("currency")?,
                    difference_minor: r.try_get("diff")?,
                });
            }
        }

        let mut projection: BTreeMap<(String, String), i64> = BTreeMap::new();
        for r in sqlx::query(&format!(
            "SELECT account, currency, CAST(SUM(-({SIGNED})) AS BIGINT) AS balance FROM ledger_entry \
             WHERE account LIKE 'seller_payable:%' GROUP BY account, currency"
        ))
        .fetch_all(&mut *tx)
        .await?
        {
            let account: String = r.try_get("account")?;
            projection.insert((account, r.try_get("currency")?), r.try_get("balance")?);
        }
        let mut wallet_mismatches = Vec::new();
        for r in sqlx::query("SELECT seller_account, currency, balance_minor FROM wallet").fetch_all(&mut *tx).await? {
            let seller: String = r.try_get("seller_account")?;
            let currency: String = r.try_get("currency")?;
            let wallet_minor: i64 = r.try_get("balance_minor")?;
            let key = (seller_payable_account_str(&seller), currency.clone());
            let ledger_minor = projection.remove(&key).unwrap_or(0);
            if wallet_minor != ledger_minor {
                wallet_mismatches.push(WalletMismatch { seller_account: seller, currency, wallet_minor, ledger_minor });
            }
        }
        // Ledger accounts with money but no wallet row at all.
        for ((account, currency), ledger_minor) in projection {
            if ledger_minor != 0 {
                let seller = account.trim_start_matches("seller_payable:").to_owned();
                wallet_mismatches.push(WalletMismatch {
                    seller_account: seller,
                    currency,
                    wallet_minor: 0,
                    ledger_minor,
                });
            }
        }
        let mut open: BTreeMap<(String, String), i64> = BTreeMap::new();
        for r in sqlx::query(
            "SELECT seller_account, currency, CAST(SUM(amount_minor) AS BIGINT) AS open FROM payout \
             WHERE status IN ('RESERVED', 'REQUESTED', 'IN_TRANSIT', 'PAID') GROUP BY seller_account, currency",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            open.insert((r.try_get("seller_account")?, r.try_get("currency")?), r.try_get("open")?);
        }
        for r in sqlx::query(&format!(
            "SELECT account, currency, CAST(SUM(-({SIGNED})) AS BIGINT) AS balance FROM ledger_entry \
             WHERE account LIKE 'payouts_in_transit:%' GROUP BY account, currency"
        ))
        .fetch_all(&mut *tx)
        .await?
        {
            let account: String = r.try_get("account")?;
            let seller = account.trim_start_matches("payouts_in_transit:").to_owned();
            let currency: String = r.try_get("currency")?;
            let ledger_minor: i64 = r.try_get("balance")?;
            open.entry((seller, currency)).and_modify(|o| *o -= ledger_minor).or_insert(-ledger_minor);
        }
        let mut payout_mismatches = Vec::new();
        for ((seller_account, currency), difference) in open {
            if difference != 0 {
                let ledger_minor = payout_ledger(&mut tx, &seller_account, &currency).await?;
                payout_mismatches.push(PayoutMismatch {
                    seller_account,
                    currency,
                    payouts_open_minor: ledger_minor + difference,
                    ledger_minor,
                });
            }
        }
        tx.commit().await?;
        Ok(VerifyReport {
            transactions,
            entries,
            orphan_entries,
            wallets,
            imbalances,
            wallet_mismatches,
            payout_mismatches,
        })
    }
}

async fn payout_ledger(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    seller: &str,
    currency: &str,
) -> Result<i64, StoreError> {
    Ok(sqlx::query(&format!(
        "SELECT CAST(COALESCE(SUM(-({SIGNED})), 0) AS BIGINT) FROM ledger_entry WHERE account = $1 AND currency = $2"
    ))
    .bind(format!("payouts_in_transit:{seller}"))
    .bind(currency)
    .fetch_one(&mut **tx)
    .await?
    .try_get(0)?)
}

fn seller_payable_account_str(seller: &str) -> String {
    match payments_domain::SellerAccount::parse(seller) {
        Ok(s) => seller_payable_account(&s),
        Err(_) => format!("seller_payable:{seller}"),
    }
}
