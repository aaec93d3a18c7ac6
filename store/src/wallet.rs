//! Seller wallets: balances per seller and currency, changed only through idempotent
//! movements keyed by a business key.

use crate::order_fees::fix_order_fee;
use crate::orders::{OrderFlag, load_order, lock_order, set_flag};
use crate::wallet_blocks::load_block;
use crate::{Store, StoreError, now_ms};
use payments_domain::{Currency, Money, PaymentOrderId, PaymentOrderStatus, SellerAccount};
use serde::{Deserialize, Serialize};
use sqlx::Row;

/// A seller's balance in one currency after a movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletBalance {
    /// Seller.
    pub seller_account: SellerAccount,
    /// Balance.
    pub balance: Money,
    /// False when the movement had already been applied (a retry): nothing changed.
    pub applied_now: bool,
}

/// Idempotency key of the wallet credit for a captured order.
pub fn wallet_credit_key(order: &PaymentOrderId) -> String {
    format!("{order}:wallet")
}

impl Store {
    /// Credits the seller's wallet with a captured order's net (its amount less the platform
    /// fee recorded on the order by its first booking), at most once per order
    /// (key `{payment_order_id}:wallet`), and sets the order's `wallet_updated` flag, in one
    /// transaction. The amount comes from the stored order, not from the caller. While the
    /// seller's wallet is blocked ([`Store::block_wallet`]) a credit not applied yet is refused
    /// with [`StoreError::WalletBlocked`] and nothing is written; one applied before the block
    /// is answered as a replay.
    pub async fn credit_wallet_for_order(&self, id: &PaymentOrderId) -> Result<WalletBalance, StoreError> {
        let mut tx = self.begin_write().await?;
        // Serializes with a reversal of the order, which reads the booking flags under this lock.
        lock_order(&mut tx, id).await?;
        let order = load_order(&mut tx, id).await?;
        if order.status != PaymentOrderStatus::Success {
            return Err(StoreError::Precondition(format!(
                "wallet credit for payment order {id} in status {}: only SUCCESS orders are credited",
                order.status
            )));
        }
        if let Some(block) = load_block(&mut tx, &order.seller_account).await? {
            let applied = sqlx::query("SELECT 1 FROM wallet_movement WHERE idempotency_key = $1")
                .bind(wallet_credit_key(id))
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !applied {
                tx.rollback().await?;
                return Err(StoreError::WalletBlocked {
                    seller: block.seller_account.to_string(),
                    reason: block.reason,
                });
            }
        }
        let fee = fix_order_fee(&mut tx, &order).await?;
        let net = Money::from_minor(fee.net_minor(order.amount), order.amount.currency());
        let now = now_ms();
        // A fee of the whole amount leaves the seller nothing: no movement (amounts are never
        // zero), the flag alone records that the credit is done.
        let inserted = net.amount_minor() > 0
            && sqlx::query(
                "INSERT INTO wallet_movement (idempotency_key, payment_order_id, seller_account, currency, \
             amount_minor, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(wallet_credit_key(id))
            .bind(id.as_str())
            .bind(order.seller_account.as_str())
            .bind(net.currency().code())
            .bind(net.amount_minor())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
        if inserted {
            // The database does the addition; an overflow is an error on PostgreSQL and a
            // CHECK (typeof = integer) violation on SQLite, never a silent wrap or float.
            sqlx::query(
                "INSERT INTO wallet (seller_account, currency, balance_minor, updated_at_ms) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (seller_account, currency) DO UPDATE SET \
                 balance_minor = wallet.balance_minor + excluded.balance_minor, \
                 updated_at_ms = excluded.updated_at_ms",
            )
            .bind(order.seller_account.as_str())
            .bind(net.currency().code())
            .bind(net.amount_minor())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        set_flag(&mut tx, id, OrderFlag::WalletUpdated).await?;
        let balance: i64 = sqlx::query("SELECT balance_minor FROM wallet WHERE seller_account = $1 AND currency = $2")
            .bind(order.seller_account.as_str())
            .bind(order.amount.currency().code())
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        tx.commit().await?;
        Ok(WalletBalance {
            seller_account: order.seller_account,
            balance: Money::from_minor(balance, order.amount.currency()),
            applied_now: inserted,
        })
    }

    /// Every wallet balance of a seller, by currency code.
    pub async fn wallet_balances(&self, seller: &SellerAccount) -> Result<Vec<Money>, StoreError> {
        let rows =
            sqlx::query("SELECT currency, balance_minor FROM wallet WHERE seller_account = $1 ORDER BY currency")
                .bind(seller.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let code: String = r.try_get("currency")?;
                let currency =
                    Currency::parse(&code).map_err(|e| StoreError::Corrupt(format!("wallet {seller}: {e}")))?;
                Ok(Money::from_minor(r.try_get("balance_minor")?, currency))
            })
            .collect()
    }
}
