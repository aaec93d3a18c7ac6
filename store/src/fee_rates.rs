//! The platform's fee rates (issue 12): per currency, with optional per-seller overrides, kept
//! as an append-only history of rates each effective from a moment on. The rate in force at a
//! capture is found from that history, so changing a rate never changes what past captures
//! were charged. The arithmetic is `payments_domain::fees`.

use crate::{Store, StoreError, now_ms};
use payments_domain::fees::FeeRate;
use payments_domain::{Currency, SellerAccount};
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

/// Longest `created_by`, in bytes.
pub const FEE_RATE_CREATED_BY_LEN_MAX: usize = 128;

/// The rate in force for `seller` in `currency` at `at_ms` (see [`Store::fee_rate_at`]), read
/// on `conn` (a pooled connection or an open transaction).
pub(crate) async fn rate_in_force(
    conn: &mut AnyConnection,
    currency: Currency,
    seller: &SellerAccount,
    at_ms: i64,
) -> Result<Option<FeeRateRecord>, StoreError> {
    for who in [seller.as_str(), ""] {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM fee_rate WHERE currency = $1 AND seller_account = $2 AND effective_from_ms <= $3 \
             ORDER BY effective_from_ms DESC LIMIT 1"
        ))
        .bind(currency.code())
        .bind(who)
        .bind(at_ms)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = row {
            return FeeRateRecord::from_row(&row).map(Some);
        }
    }
    Ok(None)
}

/// One stored rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRateRecord {
    /// Its currency.
    pub currency: Currency,
    /// The seller it overrides the default for; `None` for the currency's default.
    pub seller_account: Option<SellerAccount>,
    /// The terms.
    pub rate: FeeRate,
    /// From when it applies.
    pub effective_from_ms: i64,
    /// When it was stored.
    pub created_at_ms: i64,
    /// Who stored it (an API key id, or an operator's name).
    pub created_by: String,
}

impl FeeRateRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let currency: String = row.try_get("currency")?;
        let seller: String = row.try_get("seller_account")?;
        let bps: i32 = row.try_get("bps")?;
        let corrupt = |what: String| StoreError::Corrupt(format!("fee_rate: {what}"));
        Ok(FeeRateRecord {
            currency: Currency::parse(&currency).map_err(|e| corrupt(e.to_string()))?,
            seller_account: match seller.as_str() {
                "" => None,
                s => Some(SellerAccount::parse(s).map_err(|e| corrupt(e.to_string()))?),
            },
            rate: FeeRate::new(
                u32::try_from(bps).map_err(|_| corrupt(format!("bps {bps}")))?,
                row.try_get("fixed_minor")?,
            )
            .map_err(|e| corrupt(e.to_string()))?,
            effective_from_ms: row.try_get("effective_from_ms")?,
            created_at_ms: row.try_get("created_at_ms")?,
            created_by: row.try_get("created_by")?,
        })
    }
}

const COLUMNS: &str = "currency, seller_account, bps, fixed_minor, effective_from_ms, created_at_ms, created_by";

impl Store {
    /// Stores a rate for `currency` (and `seller`, for an override) effective from
    /// `effective_from_ms` (`None`: now), which must not be in the past: rates never change
    /// retroactively. A second rate for the same currency, seller and instant is refused.
    pub async fn set_fee_rate(
        &self,
        currency: Currency,
        seller: Option<&SellerAccount>,
        rate: FeeRate,
        effective_from_ms: Option<i64>,
        created_by: &str,
    ) -> Result<FeeRateRecord, StoreError> {
        let now = now_ms();
        let effective_from_ms = effective_from_ms.unwrap_or(now);
        if effective_from_ms < now {
            return Err(StoreError::Precondition(format!(
                "a fee rate cannot start in the past ({effective_from_ms} < now {now}): captures already made keep theirs"
            )));
        }
        if created_by.trim().is_empty() || created_by.len() > FEE_RATE_CREATED_BY_LEN_MAX {
            return Err(StoreError::Precondition(format!(
                "created_by must be 1 to {FEE_RATE_CREATED_BY_LEN_MAX} bytes"
            )));
        }
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO fee_rate (currency, seller_account, bps, fixed_minor, effective_from_ms, created_at_ms, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(currency.code())
        .bind(seller.map_or("", |s| s.as_str()))
        .bind(i32::try_from(rate.bps).map_err(|_| StoreError::Precondition("bps out of range".into()))?)
        .bind(rate.fixed_minor)
        .bind(effective_from_ms)
        .bind(now)
        .bind(created_by)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if inserted == 0 {
            return Err(StoreError::Precondition(format!(
                "a fee rate for {currency} {} from {effective_from_ms} exists already",
                seller.map_or("(default)", |s| s.as_str())
            )));
        }
        tracing::info!(%currency, seller = seller.map(|s| s.as_str()), bps = rate.bps, fixed_minor = rate.fixed_minor, effective_from_ms, created_by, "fee rate set");
        Ok(FeeRateRecord {
            currency,
            seller_account: seller.cloned(),
            rate,
            effective_from_ms,
            created_at_ms: now,
            created_by: created_by.to_owned(),
        })
    }

    /// The rate in force for `seller` in `currency` at `at_ms`: the seller's latest override
    /// effective by then, else the currency's latest default, else `None` (no fee).
    pub async fn fee_rate_at(
        &self,
        currency: Currency,
        seller: &SellerAccount,
        at_ms: i64,
    ) -> Result<Option<FeeRateRecord>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        rate_in_force(&mut conn, currency, seller, at_ms).await
    }

    /// Every stored rate, by currency, seller (defaults first) and start.
    pub async fn fee_rates(&self) -> Result<Vec<FeeRateRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM fee_rate ORDER BY currency, seller_account, effective_from_ms"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(FeeRateRecord::from_row).collect()
    }
}
