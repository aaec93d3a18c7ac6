//! Seller balances and payouts (issue 12), on the same ledger and wallet as pay-in.
//!
//! Accounts: `seller_payable:{seller}` (what the platform owes the seller; the wallet mirrors
//! it) and `payouts_in_transit:{seller}` (paid out, not yet settled). A payout moves through
//! them in ledger transactions keyed by the payout id:
//! - `{payout_id}:reserve` (kind `payout`): seller payable -> in transit, with the wallet debit
//!   `{payout_id}:wallet`, written *before* the provider is called;
//! - `{payout_id}:settle` (kind `payout_settle`): in transit -> PSP clearing (the money left
//!   the platform's balance at the provider), once the provider's return window has passed;
//! - `{payout_id}:return` (kind `payout_return`): in transit -> seller payable, with the wallet
//!   credit `{payout_id}:return`, when the payout failed, came back or was canceled.
//!
//! What a payout may take is the seller's available balance (`balances.rs`).

use crate::balances::{PayoutHolds, balance_in_tx};
use crate::ledger::{
    Direction, EntryDraft, PSP_CLEARING_ACCOUNT, TransactionDraft, post_in_tx, seller_payable_account,
};
use crate::payout_sellers::load_payout_seller;
use crate::wallet_blocks::load_block;
use crate::{Store, StoreError, now_ms};
use payments_domain::{Currency, Money, SellerAccount};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

/// Ledger account of a seller's payouts sent and not yet settled.
pub fn payouts_in_transit_account(seller: &SellerAccount) -> String {
    format!("payouts_in_transit:{seller}")
}

/// Most candidates one [`Store::payout_candidates`] page answers.
pub const PAYOUT_CANDIDATES_PAGE_MAX: usize = 1000;

/// A payout's status (see the migration `0013_payouts.sql`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PayoutStatus {
    /// Booked to in transit; the provider not (known to be) asked yet.
    Reserved,
    /// The provider accepted it.
    Requested,
    /// On its way to the bank.
    InTransit,
    /// The provider reports it paid; a bank can still return it.
    Paid,
    /// Final: the return window passed.
    Settled,
    /// Final: failed or returned, booked back to the seller.
    Failed,
    /// Final: canceled before it was sent, booked back to the seller.
    Canceled,
}

impl PayoutStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Reserved => "RESERVED",
            PayoutStatus::Requested => "REQUESTED",
            PayoutStatus::InTransit => "IN_TRANSIT",
            PayoutStatus::Paid => "PAID",
            PayoutStatus::Settled => "SETTLED",
            PayoutStatus::Failed => "FAILED",
            PayoutStatus::Canceled => "CANCELED",
        }
    }
    /// Parses [`PayoutStatus::as_str`].
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "RESERVED" => PayoutStatus::Reserved,
            "REQUESTED" => PayoutStatus::Requested,
            "IN_TRANSIT" => PayoutStatus::InTransit,
            "PAID" => PayoutStatus::Paid,
            "SETTLED" => PayoutStatus::Settled,
            "FAILED" => PayoutStatus::Failed,
            "CANCELED" => PayoutStatus::Canceled,
            other => return Err(StoreError::Corrupt(format!("payout status {other}"))),
        })
    }
    /// Nothing can change any more.
    pub fn is_final(self) -> bool {
        matches!(self, PayoutStatus::Settled | PayoutStatus::Failed | PayoutStatus::Canceled)
    }
    /// Progress order of the non-final statuses (a late event never moves a payout back).
    fn rank(self) -> u8 {
        match self {
            PayoutStatus::Reserved => 0,
            PayoutStatus::Requested => 1,
            PayoutStatus::InTransit => 2,
            PayoutStatus::Paid => 3,
            _ => 4,
        }
    }
}

/// One payout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRecord {
    /// `payout-{seller}-{currency}-{period}`.
    pub payout_id: String,
    /// The seller.
    pub seller_account: SellerAccount,
    /// The period it pays (`2026-12`, `2026-W49`, `2026-12-01`).
    pub period: String,
    /// The amount.
    pub amount: Money,
    /// `toss_payouts` or `stripe_connect`.
    pub provider: String,
    /// The provider's seller reference it goes to.
    pub destination: String,
    /// Status.
    pub status: PayoutStatus,
    /// The provider's id, once known.
    pub provider_payout_id: Option<String>,
    /// The provider's failure code.
    pub failure_code: Option<String>,
    /// The provider's failure text.
    pub failure_message: Option<String>,
    /// Created.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
}

impl PayoutRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let id: String = row.try_get("payout_id")?;
        let bad = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("payout {id}: {e}"));
        let seller: String = row.try_get("seller_account")?;
        let code: String = row.try_get("currency")?;
        let currency = Currency::parse(&code).map_err(|e| bad(&e))?;
        Ok(PayoutRecord {
            seller_account: SellerAccount::parse(seller).map_err(|e| bad(&e))?,
            period: row.try_get("period")?,
            amount: Money::positive_from_minor(row.try_get("amount_minor")?, currency).map_err(|e| bad(&e))?,
            provider: row.try_get("provider")?,
            destination: row.try_get("destination")?,
            status: PayoutStatus::parse(&row.try_get::<String, _>("status")?)?,
            provider_payout_id: row.try_get("provider_payout_id")?,
            failure_code: row.try_get("failure_code")?,
            failure_message: row.try_get("failure_message")?,
            created_at_ms: row.try_get("created_at_ms")?,
            updated_at_ms: row.try_get("updated_at_ms")?,
            payout_id: id,
        })
    }
}

/// The id of the payout of `seller` in `currency` for `period`: also the provider's
/// idempotency key and reference.
pub fn payout_id(seller: &SellerAccount, currency: Currency, period: &str) -> String {
    format!("payout-{seller}-{currency}-{period}")
}

/// Why no payout was made for a seller, currency and period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayoutSkip {
    /// Not registered for payouts.
    NotRegistered,
    /// The provider does not pay this seller yet (its status), or payouts are paused.
    NotPayable(String),
    /// The seller's wallet is blocked.
    Blocked(String),
    /// Nothing available, or less than the seller's minimum.
    BelowMinimum {
        /// Available, minor units.
        available_minor: i64,
        /// The seller's minimum, minor units.
        minimum_minor: i64,
    },
}

/// What [`Store::reserve_payout`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReserveOutcome {
    /// The payout exists (made now or earlier: a period is paid once).
    Payout(PayoutRecord),
    /// No payout for this period.
    Skipped(PayoutSkip),
}

/// A change the provider reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutProgress {
    /// The payout.
    pub payout_id: String,
    /// New status: REQUESTED, IN_TRANSIT, PAID, FAILED or CANCELED.
    pub status: PayoutStatus,
    /// The provider's id, when known.
    pub provider_payout_id: Option<String>,
    /// The provider's failure code (FAILED).
    pub failure_code: Option<String>,
    /// The provider's failure text (FAILED).
    pub failure_message: Option<String>,
}

async fn load_payout(tx: &mut Transaction<'static, Any>, payout_id: &str) -> Result<Option<PayoutRecord>, StoreError> {
    sqlx::query("SELECT * FROM payout WHERE payout_id = $1")
        .bind(payout_id)
        .fetch_optional(&mut **tx)
        .await?
        .as_ref()
        .map(PayoutRecord::from_row)
        .transpose()
}

/// The wallet movement of a payout (`amount_minor` signed) and the balance change, in the
/// caller's transaction. A debit carries its guard in the UPDATE: it never takes a balance
/// below zero.
async fn move_wallet(
    tx: &mut Transaction<'static, Any>,
    key: &str,
    payout: &PayoutRecord,
    amount_minor: i64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO wallet_movement (idempotency_key, payment_order_id, seller_account, currency, amount_minor, \
         created_at_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key)
    // The column names an order for pay-in movements; a payout's movements name the payout.
    .bind(payout.payout_id.as_str())
    .bind(payout.seller_account.as_str())
    .bind(payout.amount.currency().code())
    .bind(amount_minor)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let sql = if amount_minor < 0 {
        "UPDATE wallet SET balance_minor = balance_minor + $1, updated_at_ms = $2 \
         WHERE seller_account = $3 AND currency = $4 AND balance_minor >= -$1"
    } else {
        "UPDATE wallet SET balance_minor = balance_minor + $1, updated_at_ms = $2 WHERE seller_account = $3 AND currency = $4"
    };
    let moved = sqlx::query(sql)
        .bind(amount_minor)
        .bind(now)
        .bind(payout.seller_account.as_str())
        .bind(payout.amount.currency().code())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if moved != 1 {
        return Err(StoreError::Precondition(format!(
            "payout {}: the wallet of {} cannot move by {amount_minor}",
            payout.payout_id, payout.seller_account
        )));
    }
    Ok(())
}

fn transfer(id: String, kind: &str, from: String, to: String, amount: Money) -> TransactionDraft {
    TransactionDraft {
        id,
        kind: kind.into(),
        payment_order_id: None,
        entries: vec![
            EntryDraft { account: from, direction: Direction::Debit, amount },
            EntryDraft { account: to, direction: Direction::Credit, amount },
        ],
    }
}

impl Store {
    /// The payout of `seller` in `currency` for `period`, made at most once: an existing one is
    /// answered as it is; otherwise, when the seller is registered, payable, not paused, not
    /// blocked and its available balance reaches its minimum (and is positive), the whole
    /// available amount is booked from the seller's payable account to payouts in transit
    /// (ledger and wallet) and the payout stored RESERVED, in one transaction, before any
    /// provider is called.
    pub async fn reserve_payout(
        &self,
        seller: &SellerAccount,
        currency: Currency,
        period: &str,
        holds: &PayoutHolds,
    ) -> Result<ReserveOutcome, StoreError> {
        if period.is_empty() || period.len() > 32 || !period.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(StoreError::Precondition(format!("payout period {period:?}: 1 to 32 of [A-Za-z0-9-]")));
        }
        let id = payout_id(seller, currency, period);
        let mut tx = self.begin_write().await?;
        // The wallet row is the seller's lock for the currency: refunds and credits take it too.
        sqlx::query("UPDATE wallet SET updated_at_ms = updated_at_ms WHERE seller_account = $1 AND currency = $2")
            .bind(seller.as_str())
            .bind(currency.code())
            .execute(&mut *tx)
            .await?;
        if let Some(existing) = load_payout(&mut tx, &id).await? {
            tx.rollback().await?;
            return Ok(ReserveOutcome::Payout(existing));
        }
        let Some(registered) = load_payout_seller(&mut tx, seller).await? else {
            return Ok(ReserveOutcome::Skipped(PayoutSkip::NotRegistered));
        };
        if !registered.is_payable() {
            let why = registered.paused_reason.unwrap_or(registered.provider_status);
            return Ok(ReserveOutcome::Skipped(PayoutSkip::NotPayable(why)));
        }
        if let Some(block) = load_block(&mut tx, seller).await? {
            return Ok(ReserveOutcome::Skipped(PayoutSkip::Blocked(block.reason)));
        }
        let balance = balance_in_tx(&mut tx, seller, currency, now_ms(), holds).await?;
        let minimum_minor = registered.minimums.iter().find(|(c, _)| *c == currency).map_or(0, |(_, m)| *m);
        if balance.available_minor <= 0 || balance.available_minor < minimum_minor {
            return Ok(ReserveOutcome::Skipped(PayoutSkip::BelowMinimum {
                available_minor: balance.available_minor,
                minimum_minor,
            }));
        }
        let now = now_ms();
        let amount = Money::positive_from_minor(balance.available_minor, currency)
            .map_err(|e| StoreError::Precondition(format!("payout {id}: {e}")))?;
        sqlx::query(
            "INSERT INTO payout (payout_id, seller_account, currency, period, amount_minor, provider, destination, \
             status, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 'RESERVED', $8, $8)",
        )
        .bind(id.as_str())
        .bind(seller.as_str())
        .bind(currency.code())
        .bind(period)
        .bind(amount.amount_minor())
        .bind(registered.provider.as_str())
        .bind(registered.provider_seller_ref.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let payout = load_payout(&mut tx, &id).await?.ok_or_else(|| StoreError::NotFound(id.clone()))?;
        let draft = transfer(
            format!("{id}:reserve"),
            "payout",
            seller_payable_account(seller),
            payouts_in_transit_account(seller),
            amount,
        );
        post_in_tx(&mut tx, &draft).await?;
        move_wallet(&mut tx, &format!("{id}:wallet"), &payout, -amount.amount_minor(), now).await?;
        tx.commit().await?;
        tracing::info!(payout_id = id, amount = amount.amount_minor(), "payout reserved");
        Ok(ReserveOutcome::Payout(payout))
    }

    /// Records what the provider reported. Progress (REQUESTED, IN_TRANSIT, PAID) only moves
    /// forward; FAILED or CANCELED of a payout not final books the amount back to the seller
    /// (`{payout_id}:return`, ledger and wallet) and, for FAILED, pauses the seller's payouts
    /// until [`Store::mark_bank_fixed`]; a report on a final payout changes nothing (a late
    /// or repeated event), except FAILED on SETTLED, refused: the return window had closed.
    pub async fn record_payout_progress(&self, progress: &PayoutProgress) -> Result<PayoutRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        lock_payout(&mut tx, &progress.payout_id).await?;
        let payout = load_payout(&mut tx, &progress.payout_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(progress.payout_id.clone()))?;
        let now = now_ms();
        match progress.status {
            PayoutStatus::Settled | PayoutStatus::Reserved => {
                return Err(StoreError::Precondition(format!(
                    "payout {}: {} is not a provider report",
                    payout.payout_id,
                    progress.status.as_str()
                )));
            }
            _ if payout.status == progress.status || payout.status.is_final() => {
                if payout.status == PayoutStatus::Settled && progress.status == PayoutStatus::Failed {
                    return Err(StoreError::Precondition(format!(
                        "payout {} failed after it settled: its return window had closed; settle it by hand",
                        payout.payout_id
                    )));
                }
                tx.rollback().await?;
                return Ok(payout);
            }
            PayoutStatus::Failed | PayoutStatus::Canceled => {
                let draft = transfer(
                    format!("{}:return", payout.payout_id),
                    "payout_return",
                    payouts_in_transit_account(&payout.seller_account),
                    seller_payable_account(&payout.seller_account),
                    payout.amount,
                );
                post_in_tx(&mut tx, &draft).await?;
                move_wallet(
                    &mut tx,
                    &format!("{}:return", payout.payout_id),
                    &payout,
                    payout.amount.amount_minor(),
                    now,
                )
                .await?;
                if progress.status == PayoutStatus::Failed {
                    let reason = format!(
                        "payout {} failed: {}",
                        payout.payout_id,
                        progress.failure_code.as_deref().unwrap_or("unknown")
                    );
                    sqlx::query(
                        "UPDATE payout_seller SET paused_reason = $1, updated_at_ms = $2 WHERE seller_account = $3",
                    )
                    .bind(reason)
                    .bind(now)
                    .bind(payout.seller_account.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            status if status.rank() < payout.status.rank() => {
                tx.rollback().await?;
                return Ok(payout);
            }
            _ => {}
        }
        sqlx::query(
            "UPDATE payout SET status = $1, provider_payout_id = COALESCE($2, provider_payout_id), \
             failure_code = COALESCE($3, failure_code), failure_message = COALESCE($4, failure_message), \
             updated_at_ms = $5 WHERE payout_id = $6",
        )
        .bind(progress.status.as_str())
        .bind(progress.provider_payout_id.as_deref())
        .bind(progress.failure_code.as_deref())
        .bind(progress.failure_message.as_deref())
        .bind(now)
        .bind(payout.payout_id.as_str())
        .execute(&mut *tx)
        .await?;
        let updated = load_payout(&mut tx, &payout.payout_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(payout.payout_id.clone()))?;
        tx.commit().await?;
        tracing::info!(payout_id = updated.payout_id, status = updated.status.as_str(), "payout progress");
        Ok(updated)
    }

    /// Settles a PAID payout whose return window passed: in transit -> PSP clearing
    /// (`{payout_id}:settle`). Settling a SETTLED payout again answers it unchanged; any other
    /// status is refused.
    pub async fn settle_payout(&self, payout_id: &str) -> Result<PayoutRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        lock_payout(&mut tx, payout_id).await?;
        let payout = load_payout(&mut tx, payout_id).await?.ok_or_else(|| StoreError::NotFound(payout_id.into()))?;
        match payout.status {
            PayoutStatus::Settled => {
                tx.rollback().await?;
                return Ok(payout);
            }
            PayoutStatus::Paid => {}
            other => {
                return Err(StoreError::Precondition(format!(
                    "payout {payout_id} is {}: only a PAID payout settles",
                    other.as_str()
                )));
            }
        }
        let draft = transfer(
            format!("{payout_id}:settle"),
            "payout_settle",
            payouts_in_transit_account(&payout.seller_account),
            PSP_CLEARING_ACCOUNT.into(),
            payout.amount,
        );
        post_in_tx(&mut tx, &draft).await?;
        sqlx::query("UPDATE payout SET status = 'SETTLED', updated_at_ms = $1 WHERE payout_id = $2")
            .bind(now_ms())
            .bind(payout_id)
            .execute(&mut *tx)
            .await?;
        let settled = load_payout(&mut tx, payout_id).await?.ok_or_else(|| StoreError::NotFound(payout_id.into()))?;
        tx.commit().await?;
        Ok(settled)
    }

    /// One payout.
    pub async fn payout(&self, payout_id: &str) -> Result<Option<PayoutRecord>, StoreError> {
        sqlx::query("SELECT * FROM payout WHERE payout_id = $1")
            .bind(payout_id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(PayoutRecord::from_row)
            .transpose()
    }

    /// Payouts, newest first, optionally of one seller, at most `limit`.
    pub async fn payouts(&self, seller: Option<&SellerAccount>, limit: i64) -> Result<Vec<PayoutRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM payout WHERE ($1 = '' OR seller_account = $1) ORDER BY created_at_ms DESC, payout_id LIMIT $2",
        )
        .bind(seller.map_or("", |s| s.as_str()))
        .bind(limit.clamp(1, 1000))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(PayoutRecord::from_row).collect()
    }

    /// A page of (seller, currency) pairs a payout cycle considers: registered sellers with a
    /// positive wallet balance, in (seller, currency) order after `after`, at most `limit`
    /// (capped at [`PAYOUT_CANDIDATES_PAGE_MAX`]); optionally one seller or one currency.
    pub async fn payout_candidates(
        &self,
        after: Option<(&SellerAccount, Currency)>,
        seller: Option<&SellerAccount>,
        currency: Option<Currency>,
        limit: usize,
    ) -> Result<Vec<(SellerAccount, Currency)>, StoreError> {
        let limit = i64::try_from(limit.clamp(1, PAYOUT_CANDIDATES_PAGE_MAX)).unwrap_or(1);
        let (after_seller, after_currency) =
            after.map_or((String::new(), String::new()), |(s, c)| (s.to_string(), c.code().to_owned()));
        let rows = sqlx::query(
            "SELECT w.seller_account, w.currency FROM wallet w JOIN payout_seller s ON s.seller_account = w.seller_account \
             WHERE w.balance_minor > 0 AND (w.seller_account > $1 OR (w.seller_account = $1 AND w.currency > $2)) \
             AND ($3 = '' OR w.seller_account = $3) AND ($4 = '' OR w.currency = $4) \
             ORDER BY w.seller_account, w.currency LIMIT $5",
        )
        .bind(after_seller)
        .bind(after_currency)
        .bind(seller.map_or(String::new(), |s| s.to_string()))
        .bind(currency.map_or(String::new(), |c| c.code().to_owned()))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let bad = |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("payout candidate: {e}"));
                let seller = SellerAccount::parse(r.try_get::<String, _>(0)?).map_err(|e| bad(&e))?;
                let currency = Currency::parse(&r.try_get::<String, _>(1)?).map_err(|e| bad(&e))?;
                Ok((seller, currency))
            })
            .collect()
    }
}

/// Takes the payout's row lock (the portable `SELECT ... FOR UPDATE`, as for orders).
async fn lock_payout(tx: &mut Transaction<'static, Any>, payout_id: &str) -> Result<(), StoreError> {
    let locked = sqlx::query("UPDATE payout SET updated_at_ms = updated_at_ms WHERE payout_id = $1")
        .bind(payout_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if locked != 1 {
        return Err(StoreError::NotFound(format!("payout {payout_id}")));
    }
    Ok(())
}
