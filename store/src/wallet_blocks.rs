//! Wallet blocks: an operator freezes a seller (KYC, fraud). While a seller is blocked, a
//! captured payment for them does not reach their wallet: [`Store::credit_wallet_for_order`]
//! refuses with [`StoreError::WalletBlocked`] and writes nothing (the saga then reverses the
//! capture). Debits (refunds, reversals) still apply, and a credit applied before the block
//! stays applied.

use crate::{Store, StoreError, now_ms};
use payments_domain::SellerAccount;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// Longest block reason accepted, in bytes.
pub const WALLET_BLOCK_REASON_LEN_MAX: usize = 1024;

/// A blocked seller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletBlock {
    /// The seller.
    pub seller_account: SellerAccount,
    /// Why (free text from the operator).
    pub reason: String,
    /// When the block started (kept when the reason is updated).
    pub blocked_at_ms: i64,
}

impl WalletBlock {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let seller: String = row.try_get("seller_account")?;
        Ok(WalletBlock {
            seller_account: SellerAccount::parse(seller.clone())
                .map_err(|e| StoreError::Corrupt(format!("wallet block {seller}: {e}")))?,
            reason: row.try_get("reason")?,
            blocked_at_ms: row.try_get("blocked_at_ms")?,
        })
    }
}

impl Store {
    /// Blocks the seller's wallet against credits. Idempotent: blocking a blocked seller again
    /// only replaces the reason (the block keeps its start time). The reason must be 1 to
    /// [`WALLET_BLOCK_REASON_LEN_MAX`] bytes, else [`StoreError::Precondition`].
    pub async fn block_wallet(&self, seller: &SellerAccount, reason: &str) -> Result<(), StoreError> {
        if reason.trim().is_empty() || reason.len() > WALLET_BLOCK_REASON_LEN_MAX {
            return Err(StoreError::Precondition(format!(
                "wallet block reason must be 1 to {WALLET_BLOCK_REASON_LEN_MAX} bytes"
            )));
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO wallet_block (seller_account, reason, blocked_at_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (seller_account) DO UPDATE SET reason = excluded.reason",
        )
        .bind(seller.as_str())
        .bind(reason)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(%seller, reason, "wallet blocked");
        Ok(())
    }

    /// Lifts the seller's block; false when the seller was not blocked. Credits refused while
    /// blocked are not replayed here: the saga had reversed those captures.
    pub async fn unblock_wallet(&self, seller: &SellerAccount) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM wallet_block WHERE seller_account = $1")
            .bind(seller.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        if deleted == 1 {
            tracing::info!(%seller, "wallet unblocked");
        }
        Ok(deleted == 1)
    }

    /// The seller's block, if any.
    pub async fn wallet_block(&self, seller: &SellerAccount) -> Result<Option<WalletBlock>, StoreError> {
        let row =
            sqlx::query("SELECT seller_account, reason, blocked_at_ms FROM wallet_block WHERE seller_account = $1")
                .bind(seller.as_str())
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(WalletBlock::from_row).transpose()
    }
}

/// The seller's block, read in the caller's transaction.
pub(crate) async fn load_block(
    tx: &mut Transaction<'static, Any>,
    seller: &SellerAccount,
) -> Result<Option<WalletBlock>, StoreError> {
    let row = sqlx::query("SELECT seller_account, reason, blocked_at_ms FROM wallet_block WHERE seller_account = $1")
        .bind(seller.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(WalletBlock::from_row).transpose()
}
