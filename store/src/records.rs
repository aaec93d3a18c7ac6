//! Rows as the rest of the system sees them. Every id, amount and status is validated when
//! read back, so corruption surfaces as [`StoreError::Corrupt`] instead of travelling on.

use crate::StoreError;
use payments_domain::fees::FeeRate;
use payments_domain::{
    BuyerId, CheckoutId, Currency, Money, PaymentMethod, PaymentOrderId, PaymentOrderStatus, SellerAccount,
};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::fmt;

/// A checkout (payment event) with its orders in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutRecord {
    /// Checkout id.
    pub checkout_id: CheckoutId,
    /// Buyer id.
    pub buyer_id: BuyerId,
    /// The buyer object as received.
    pub buyer_info: serde_json::Map<String, serde_json::Value>,
    /// Direct (a PSP token, sealed in the database: [`crate::Store::payment_token`]) or hosted.
    pub flow: PaymentFlow,
    /// True once every order is terminal and every successful one is in wallet and ledger.
    pub is_payment_done: bool,
    /// Orders by position.
    pub orders: Vec<OrderRecord>,
    /// Creation time.
    pub created_at_ms: i64,
    /// The Idempotency-Key of the request that created it, if it had one.
    pub client_key: Option<String>,
    /// Its workflow is known to exist (or it needs none); false: the start may have been lost.
    pub workflow_started: bool,
}

impl CheckoutRecord {
    /// Every order is final and every captured one booked in ledger and wallet: nothing is
    /// left for a workflow to do (a REVERSED order was given back and its bookings reversed).
    pub fn is_settled(&self) -> bool {
        self.orders.iter().all(OrderRecord::is_settled)
    }

    /// Every order is still NOT_STARTED: no charge was ever sent for any of them.
    pub fn is_untouched(&self) -> bool {
        self.orders.iter().all(|o| o.status == PaymentOrderStatus::NotStarted)
    }
}

/// How the buyer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentFlow {
    /// The server charges a PSP token the merchant sent.
    Direct,
    /// The buyer pays on the PSP's hosted page; the server confirms (seed 003).
    Hosted,
}

impl PaymentFlow {
    /// The flow of a request's payment method.
    pub fn of(payment: &PaymentMethod) -> PaymentFlow {
        match payment {
            PaymentMethod::Token(_) => PaymentFlow::Direct,
            PaymentMethod::Hosted => PaymentFlow::Hosted,
        }
    }

    /// The stored form (`payment_event.flow`).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentFlow::Direct => "direct",
            PaymentFlow::Hosted => "hosted",
        }
    }
}

impl fmt::Display for PaymentFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One payment order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Order id.
    pub payment_order_id: PaymentOrderId,
    /// Its checkout.
    pub checkout_id: CheckoutId,
    /// Seller.
    pub seller_account: SellerAccount,
    /// Amount charged.
    pub amount: Money,
    /// Current status.
    pub status: PaymentOrderStatus,
    /// The PSP's id for the payment, once known.
    pub psp_reference: Option<String>,
    /// Why it failed (PSP decline code or our reason), if it did.
    pub failure_code: Option<String>,
    /// Human-readable failure text.
    pub failure_message: Option<String>,
    /// The seller's wallet has been credited.
    pub wallet_updated: bool,
    /// The ledger transaction has been posted.
    pub ledger_updated: bool,
    /// Last change.
    pub updated_at_ms: i64,
    /// The capture's moment and platform fee, recorded by its first booking; `None` before.
    pub fee: Option<OrderFee>,
}

/// What a captured order's first booking recorded: when it was captured, the fee rate in force
/// then, and the fee that rate gives on the order's amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFee {
    /// When the order moved to SUCCESS.
    pub captured_at_ms: i64,
    /// The rate applied (zero when none was configured).
    pub rate: FeeRate,
    /// The platform's fee, in the order's currency.
    pub fee: Money,
}

impl OrderFee {
    /// The seller's net of the order's `gross`: what the buyer paid less the fee.
    pub fn net_minor(&self, gross: Money) -> i64 {
        gross.amount_minor() - self.fee.amount_minor()
    }
}

impl OrderRecord {
    /// Final, and booked if captured: nothing left to do.
    pub fn is_settled(&self) -> bool {
        match self.status {
            PaymentOrderStatus::Failed | PaymentOrderStatus::Reversed => true,
            PaymentOrderStatus::Success => self.wallet_updated && self.ledger_updated,
            _ => false,
        }
    }
}

/// One status transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// Previous status (`None` for the row written at creation).
    pub from_status: Option<PaymentOrderStatus>,
    /// New status.
    pub to_status: PaymentOrderStatus,
    /// Why.
    pub reason: String,
    /// When.
    pub created_at_ms: i64,
}

pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

pub(crate) const ORDER_COLUMNS: &str = "payment_order_id, checkout_id, seller_account, amount_minor, \
    currency, status, psp_reference, failure_code, failure_message, \
    CASE WHEN wallet_updated THEN 1 ELSE 0 END AS wallet_updated, \
    CASE WHEN ledger_updated THEN 1 ELSE 0 END AS ledger_updated, updated_at_ms, \
    captured_at_ms, fee_bps, fee_fixed_minor, fee_minor";

/// Flags are BOOLEAN columns, read through `CASE ... THEN 1 ELSE 0` because sqlx's `Any`
/// driver cannot decode SQLite's BOOLEAN; this reads them back.
pub(crate) fn flag(row: &AnyRow, column: &str) -> Result<bool, StoreError> {
    match row.try_get::<i64, _>(column)? {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(corrupt(column, format!("flag value {other}"))),
    }
}

impl OrderRecord {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let id: String = row.try_get("payment_order_id")?;
        let currency: String = row.try_get("currency")?;
        let currency = Currency::parse(&currency).map_err(|e| corrupt(&id, e))?;
        let amount = Money::positive_from_minor(row.try_get("amount_minor")?, currency).map_err(|e| corrupt(&id, e))?;
        let status: String = row.try_get("status")?;
        Ok(OrderRecord {
            checkout_id: CheckoutId::parse(row.try_get::<String, _>("checkout_id")?).map_err(|e| corrupt(&id, e))?,
            seller_account: SellerAccount::parse(row.try_get::<String, _>("seller_account")?)
                .map_err(|e| corrupt(&id, e))?,
            amount,
            status: PaymentOrderStatus::parse(&status).map_err(|e| corrupt(&id, e))?,
            psp_reference: row.try_get("psp_reference")?,
            failure_code: row.try_get("failure_code")?,
            failure_message: row.try_get("failure_message")?,
            wallet_updated: flag(row, "wallet_updated")?,
            ledger_updated: flag(row, "ledger_updated")?,
            updated_at_ms: row.try_get("updated_at_ms")?,
            fee: order_fee(row, amount).map_err(|e| corrupt(&id, e))?,
            payment_order_id: PaymentOrderId::parse(id.clone()).map_err(|e| corrupt(&id, e))?,
        })
    }
}

/// The recorded fee columns, all set or all NULL, within the order's amount.
fn order_fee(row: &AnyRow, amount: Money) -> Result<Option<OrderFee>, String> {
    let captured_at_ms: Option<i64> = row.try_get("captured_at_ms").map_err(|e| e.to_string())?;
    let bps: Option<i32> = row.try_get("fee_bps").map_err(|e| e.to_string())?;
    let fixed_minor: Option<i64> = row.try_get("fee_fixed_minor").map_err(|e| e.to_string())?;
    let fee_minor: Option<i64> = row.try_get("fee_minor").map_err(|e| e.to_string())?;
    match (captured_at_ms, bps, fixed_minor, fee_minor) {
        (None, None, None, None) => Ok(None),
        (Some(captured_at_ms), Some(bps), Some(fixed_minor), Some(fee_minor)) => {
            let rate = FeeRate::new(u32::try_from(bps).map_err(|_| format!("fee_bps {bps}"))?, fixed_minor)
                .map_err(|e| e.to_string())?;
            if !(0..=amount.amount_minor()).contains(&fee_minor) {
                return Err(format!("fee {fee_minor} outside 0..={}", amount.amount_minor()));
            }
            Ok(Some(OrderFee { captured_at_ms, rate, fee: Money::from_minor(fee_minor, amount.currency()) }))
        }
        _ => Err("fee columns partly set".into()),
    }
}

impl HistoryRecord {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        let from: Option<String> = row.try_get("from_status")?;
        let to: String = row.try_get("to_status")?;
        Ok(HistoryRecord {
            from_status: from.map(|s| PaymentOrderStatus::parse(&s)).transpose().map_err(|e| corrupt("history", e))?,
            to_status: PaymentOrderStatus::parse(&to).map_err(|e| corrupt("history", e))?,
            reason: row.try_get("reason")?,
            created_at_ms: row.try_get("created_at_ms")?,
        })
    }
}
