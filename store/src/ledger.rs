//! The double-entry ledger. A transaction's entries are written first, then the transaction
//! row "seals" them; the database refuses a seal that does not balance per currency, any entry
//! added to a sealed transaction, and any UPDATE or DELETE.

use crate::order_fees::{PLATFORM_REVENUE_ACCOUNT, fix_order_fee};
use crate::orders::{OrderFlag, load_order, lock_order, set_flag};
use crate::records::OrderRecord;
use crate::{Store, StoreError, now_ms};
use payments_domain::{Currency, Money, PaymentOrderId, PaymentOrderStatus, SellerAccount};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};
use std::collections::BTreeMap;

/// Asset account: money the PSP has captured for us and owes us until settlement.
pub const PSP_CLEARING_ACCOUNT: &str = "psp_clearing";

/// Ledger kind of a captured order's pay-in transaction (`{payment_order_id}:ledger`).
pub(crate) const PAYIN_LEDGER_KIND: &str = "payin";

/// Liability account holding what the platform owes one seller. Its balance (credits minus
/// debits) per currency is what the seller's wallet must show.
pub fn seller_payable_account(seller: &SellerAccount) -> String {
    format!("seller_payable:{seller}")
}

/// Idempotency key (and transaction id) of the pay-in ledger transaction of an order.
pub fn order_ledger_key(order: &PaymentOrderId) -> String {
    format!("{order}:ledger")
}

/// Side of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Direction {
    /// Debit.
    Debit,
    /// Credit.
    Credit,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Debit => "DEBIT",
            Direction::Credit => "CREDIT",
        }
    }
}

/// One entry to write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryDraft {
    /// Account name.
    pub account: String,
    /// Debit or credit.
    pub direction: Direction,
    /// Positive amount.
    pub amount: Money,
}

/// A ledger transaction to write; `id` is its business idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionDraft {
    /// Idempotency key, e.g. `{payment_order_id}:ledger`.
    pub id: String,
    /// What kind of movement (`payin`, later `refund`, `payout`...).
    pub kind: String,
    /// The order it belongs to, if any.
    pub payment_order_id: Option<PaymentOrderId>,
    /// At least two entries, balancing per currency.
    pub entries: Vec<EntryDraft>,
}

/// A stored entry.
pub type LedgerEntry = EntryDraft;

/// Result of posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PostOutcome {
    /// Written now.
    Posted,
    /// The same transaction was already there (a retry); nothing written.
    AlreadyPosted,
}

impl TransactionDraft {
    /// Checks the invariants the database will also enforce, so a bad draft fails with a clear
    /// message before any write: two or more positive entries, balancing per currency.
    pub fn check_balanced(&self) -> Result<(), StoreError> {
        if self.entries.len() < 2 {
            return Err(StoreError::Precondition(format!("ledger transaction {} needs two entries", self.id)));
        }
        let mut sums: BTreeMap<Currency, i64> = BTreeMap::new();
        for e in &self.entries {
            if e.amount.amount_minor() <= 0 {
                return Err(StoreError::Precondition(format!("ledger transaction {}: non-positive entry", self.id)));
            }
            let signed = match e.direction {
                Direction::Debit => e.amount.amount_minor(),
                Direction::Credit => -e.amount.amount_minor(),
            };
            let sum = sums.entry(e.amount.currency()).or_insert(0);
            *sum = sum.checked_add(signed).ok_or_else(|| StoreError::Precondition("ledger overflow".into()))?;
        }
        if let Some((currency, sum)) = sums.iter().find(|(_, s)| **s != 0) {
            return Err(StoreError::Precondition(format!(
                "ledger transaction {} does not balance in {currency} (off by {sum})",
                self.id
            )));
        }
        Ok(())
    }
}

impl Store {
    /// Posts a balanced transaction once. Posting the same id again with the same entries is
    /// [`PostOutcome::AlreadyPosted`]; with different entries it is refused.
    pub async fn post_ledger(&self, draft: &TransactionDraft) -> Result<PostOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        let outcome = post_in_tx(&mut tx, draft).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Posts the pay-in transaction of a captured order at most once, and sets
    /// `ledger_updated`, in one transaction: debit PSP clearing with the gross, credit the
    /// seller's payable account with the net and the platform's revenue with the fee (the fee
    /// recorded on the order by its first booking; a zero leg is left out).
    pub async fn post_order_ledger(&self, id: &PaymentOrderId) -> Result<PostOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        // Serializes with a reversal of the order, which reads the booking flags under this lock.
        lock_order(&mut tx, id).await?;
        let order = load_order(&mut tx, id).await?;
        if order.status != PaymentOrderStatus::Success {
            return Err(StoreError::Precondition(format!(
                "ledger post for payment order {id} in status {}: only SUCCESS orders are posted",
                order.status
            )));
        }
        let fee = fix_order_fee(&mut tx, &order).await?;
        let draft = payin_draft(&order, fee.fee);
        let outcome = post_in_tx(&mut tx, &draft).await?;
        set_flag(&mut tx, id, OrderFlag::LedgerUpdated).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// The entries of one transaction, in insertion order.
    pub async fn ledger_entries(&self, transaction_id: &str) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let entries = load_entries(&mut tx, transaction_id).await?;
        tx.commit().await?;
        Ok(entries)
    }
}

/// The pay-in transaction of `order` with platform fee `fee`: three legs, or two when the fee
/// or the net is zero (entries are positive).
fn payin_draft(order: &OrderRecord, fee: Money) -> TransactionDraft {
    let gross = order.amount;
    let net = Money::from_minor(gross.amount_minor() - fee.amount_minor(), gross.currency());
    let mut entries =
        vec![EntryDraft { account: PSP_CLEARING_ACCOUNT.into(), direction: Direction::Debit, amount: gross }];
    if net.amount_minor() > 0 {
        entries.push(EntryDraft {
            account: seller_payable_account(&order.seller_account),
            direction: Direction::Credit,
            amount: net,
        });
    }
    if fee.amount_minor() > 0 {
        entries.push(EntryDraft {
            account: PLATFORM_REVENUE_ACCOUNT.into(),
            direction: Direction::Credit,
            amount: fee,
        });
    }
    TransactionDraft {
        id: order_ledger_key(&order.payment_order_id),
        kind: PAYIN_LEDGER_KIND.into(),
        payment_order_id: Some(order.payment_order_id.clone()),
        entries,
    }
}

pub(crate) async fn post_in_tx(
    tx: &mut Transaction<'static, Any>,
    draft: &TransactionDraft,
) -> Result<PostOutcome, StoreError> {
    draft.check_balanced()?;
    let exists = sqlx::query("SELECT id FROM ledger_transaction WHERE id = $1")
        .bind(draft.id.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    if exists {
        let stored = load_entries(tx, &draft.id).await?;
        if stored != draft.entries {
            return Err(StoreError::Precondition(format!(
                "ledger transaction {} already exists with different entries",
                draft.id
            )));
        }
        return Ok(PostOutcome::AlreadyPosted);
    }
    for e in &draft.entries {
        sqlx::query(
            "INSERT INTO ledger_entry (transaction_id, account, direction, amount_minor, currency) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(draft.id.as_str())
        .bind(e.account.as_str())
        .bind(e.direction.as_str())
        .bind(e.amount.amount_minor())
        .bind(e.amount.currency().code())
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query("INSERT INTO ledger_transaction (id, kind, payment_order_id, created_at_ms) VALUES ($1, $2, $3, $4)")
        .bind(draft.id.as_str())
        .bind(draft.kind.as_str())
        .bind(draft.payment_order_id.as_ref().map(|p| p.as_str().to_owned()))
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    Ok(PostOutcome::Posted)
}

async fn load_entries(
    tx: &mut Transaction<'static, Any>,
    transaction_id: &str,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT account, direction, amount_minor, currency FROM ledger_entry WHERE transaction_id = $1 ORDER BY id",
    )
    .bind(transaction_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            let bad = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("ledger entry of {transaction_id}: {e}"));
            let code: String = r.try_get("currency")?;
            let currency = Currency::parse(&code).map_err(|e| bad(&e))?;
            let direction = match r.try_get::<String, _>("direction")?.as_str() {
                "DEBIT" => Direction::Debit,
                "CREDIT" => Direction::Credit,
                other => return Err(bad(&other)),
            };
            Ok(EntryDraft {
                account: r.try_get("account")?,
                direction,
                amount: Money::positive_from_minor(r.try_get("amount_minor")?, currency).map_err(|e| bad(&e))?,
            })
        })
        .collect()
}
