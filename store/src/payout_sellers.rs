//! Where sellers are paid (issue 12): the payout provider, the provider's seller reference and
//! a masked account number (the bank details themselves stay at the provider), the provider's
//! view of the seller, a per-currency minimum payout, and the pause a failed or returned
//! payout sets until an operator marks the bank account fixed.

use crate::{Store, StoreError, now_ms};
use payments_domain::{Currency, SellerAccount};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// Longest provider reference or masked account number stored, in bytes.
pub const PAYOUT_SELLER_FIELD_LEN_MAX: usize = 128;

/// The provider's statuses of a seller (Toss's vocabulary; Stripe Connect is mapped onto it).
pub const PROVIDER_SELLER_STATUSES: [&str; 4] = ["APPROVAL_REQUIRED", "PARTIALLY_APPROVED", "KYC_REQUIRED", "APPROVED"];

/// A seller registered for payouts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutSeller {
    /// Our seller id.
    pub seller_account: SellerAccount,
    /// `toss_payouts` or `stripe_connect`.
    pub provider: String,
    /// The provider's id of the seller (Toss seller id, Stripe `acct_...`).
    pub provider_seller_ref: String,
    /// The bank account number with all but its last four characters masked.
    pub masked_account: String,
    /// One of [`PROVIDER_SELLER_STATUSES`].
    pub provider_status: String,
    /// Set when a payout failed or came back: no payouts until an operator clears it.
    pub paused_reason: Option<String>,
    /// Minimum payout per currency, minor units.
    pub minimums: Vec<(Currency, i64)>,
}

impl PayoutSeller {
    /// Whether the provider pays this seller and no pause is set.
    pub fn is_payable(&self) -> bool {
        matches!(self.provider_status.as_str(), "PARTIALLY_APPROVED" | "APPROVED") && self.paused_reason.is_none()
    }

    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let seller: String = row.try_get("seller_account")?;
        Ok(PayoutSeller {
            seller_account: SellerAccount::parse(seller.clone())
                .map_err(|e| StoreError::Corrupt(format!("payout seller {seller}: {e}")))?,
            provider: row.try_get("provider")?,
            provider_seller_ref: row.try_get("provider_seller_ref")?,
            masked_account: row.try_get("masked_account")?,
            provider_status: row.try_get("provider_status")?,
            paused_reason: row.try_get("paused_reason")?,
            minimums: Vec::new(),
        })
    }
}

/// What registering a seller stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutSellerDraft {
    /// Our seller id.
    pub seller_account: SellerAccount,
    /// `toss_payouts` or `stripe_connect`.
    pub provider: String,
    /// The provider's id of the seller.
    pub provider_seller_ref: String,
    /// Masked account number.
    pub masked_account: String,
    /// The provider's status of the seller.
    pub provider_status: String,
}

fn check_field(name: &str, value: &str) -> Result<(), StoreError> {
    if value.trim().is_empty() || value.len() > PAYOUT_SELLER_FIELD_LEN_MAX {
        return Err(StoreError::Precondition(format!("{name} must be 1 to {PAYOUT_SELLER_FIELD_LEN_MAX} bytes")));
    }
    Ok(())
}

fn check_status(status: &str) -> Result<(), StoreError> {
    if !PROVIDER_SELLER_STATUSES.contains(&status) {
        return Err(StoreError::Precondition(format!("unknown provider seller status {status}")));
    }
    Ok(())
}

/// The seller's payout registration with its minimums, read on `conn` (a pooled connection or
/// an open transaction).
pub(crate) async fn load_payout_seller(
    conn: &mut AnyConnection,
    seller: &SellerAccount,
) -> Result<Option<PayoutSeller>, StoreError> {
    let Some(row) = sqlx::query("SELECT * FROM payout_seller WHERE seller_account = $1")
        .bind(seller.as_str())
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let mut found = PayoutSeller::from_row(&row)?;
    for r in
        sqlx::query("SELECT currency, minimum_minor FROM payout_minimum WHERE seller_account = $1 ORDER BY currency")
            .bind(seller.as_str())
            .fetch_all(&mut *conn)
            .await?
    {
        let code: String = r.try_get("currency")?;
        let currency = Currency::parse(&code).map_err(|e| StoreError::Corrupt(format!("payout minimum: {e}")))?;
        found.minimums.push((currency, r.try_get("minimum_minor")?));
    }
    Ok(Some(found))
}

impl Store {
    /// Registers (or re-registers, after the seller's details changed at the provider) where a
    /// seller is paid. A pause is kept: only [`Store::mark_bank_fixed`] clears it.
    pub async fn register_payout_seller(&self, draft: &PayoutSellerDraft) -> Result<PayoutSeller, StoreError> {
        if !matches!(draft.provider.as_str(), "toss_payouts" | "stripe_connect") {
            return Err(StoreError::Precondition(format!("unknown payout provider {}", draft.provider)));
        }
        check_field("provider_seller_ref", &draft.provider_seller_ref)?;
        check_field("masked_account", &draft.masked_account)?;
        check_status(&draft.provider_status)?;
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO payout_seller (seller_account, provider, provider_seller_ref, masked_account, provider_status, \
             created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (seller_account) DO UPDATE SET provider = excluded.provider, \
             provider_seller_ref = excluded.provider_seller_ref, masked_account = excluded.masked_account, \
             provider_status = excluded.provider_status, updated_at_ms = excluded.updated_at_ms",
        )
        .bind(draft.seller_account.as_str())
        .bind(draft.provider.as_str())
        .bind(draft.provider_seller_ref.as_str())
        .bind(draft.masked_account.as_str())
        .bind(draft.provider_status.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(seller = %draft.seller_account, provider = draft.provider, "payout seller registered");
        self.payout_seller(&draft.seller_account)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("payout seller {}", draft.seller_account)))
    }

    /// The seller's payout registration, with its minimums.
    pub async fn payout_seller(&self, seller: &SellerAccount) -> Result<Option<PayoutSeller>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        load_payout_seller(&mut conn, seller).await
    }

    /// The registered seller whose provider reference is `provider_seller_ref`.
    pub async fn payout_seller_by_ref(
        &self,
        provider: &str,
        provider_seller_ref: &str,
    ) -> Result<Option<PayoutSeller>, StoreError> {
        let row =
            sqlx::query("SELECT seller_account FROM payout_seller WHERE provider = $1 AND provider_seller_ref = $2")
                .bind(provider)
                .bind(provider_seller_ref)
                .fetch_optional(self.pool())
                .await?;
        match row {
            Some(r) => {
                let seller: String = r.try_get(0)?;
                let seller = SellerAccount::parse(seller).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                self.payout_seller(&seller).await
            }
            None => Ok(None),
        }
    }

    /// Records the provider's new status of a seller (a `seller.changed` event, a status read).
    pub async fn set_payout_seller_status(&self, seller: &SellerAccount, status: &str) -> Result<(), StoreError> {
        check_status(status)?;
        self.update_seller(seller, "provider_status = $1", Some(status)).await
    }

    /// Sets the seller's minimum payout in `currency` (0: no minimum).
    pub async fn set_payout_minimum(
        &self,
        seller: &SellerAccount,
        currency: Currency,
        minimum_minor: i64,
    ) -> Result<(), StoreError> {
        if minimum_minor < 0 {
            return Err(StoreError::Precondition("a minimum payout cannot be negative".into()));
        }
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO payout_minimum (seller_account, currency, minimum_minor) VALUES ($1, $2, $3) \
             ON CONFLICT (seller_account, currency) DO UPDATE SET minimum_minor = excluded.minimum_minor",
        )
        .bind(seller.as_str())
        .bind(currency.code())
        .bind(minimum_minor)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Pauses the seller's payouts (a payout failed or came back).
    pub async fn pause_payouts(&self, seller: &SellerAccount, reason: &str) -> Result<(), StoreError> {
        check_field("reason", reason)?;
        self.update_seller(seller, "paused_reason = $1", Some(reason)).await
    }

    /// An operator confirms the seller's bank account was fixed: payouts resume.
    pub async fn mark_bank_fixed(&self, seller: &SellerAccount) -> Result<(), StoreError> {
        self.update_seller(seller, "paused_reason = NULL", None).await
    }

    async fn update_seller(&self, seller: &SellerAccount, set: &str, value: Option<&str>) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        // `set` binds `$1` when it takes a value; the time and the seller come after it.
        let sql = match value {
            Some(_) => format!("UPDATE payout_seller SET {set}, updated_at_ms = $2 WHERE seller_account = $3"),
            None => format!("UPDATE payout_seller SET {set}, updated_at_ms = $1 WHERE seller_account = $2"),
        };
        let mut q = sqlx::query(&sql);
        if let Some(v) = value {
            q = q.bind(v);
        }
        let changed = q.bind(now_ms()).bind(seller.as_str()).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        if changed != 1 {
            return Err(StoreError::NotFound(format!("payout seller {seller}")));
        }
        Ok(())
    }
}
