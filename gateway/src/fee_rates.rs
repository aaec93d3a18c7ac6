//! Operators' fee rates (AdminService `SetFeeRate`, `ListFeeRates`, used by `paymentsctl
//! fees`): validation of the wire request and the wire view. Amounts travel as decimal
//! strings in the rate's currency.

use crate::error::ApiError;
use payments_domain::fees::FeeRate;
use payments_domain::{Currency, Money, SellerAccount};
use payments_proto::payments_v1 as pb;
use payments_store::{FeeRateRecord, StoreError};

/// A validated `SetFeeRate` request.
pub struct FeeRateDraft {
    /// Its currency.
    pub currency: Currency,
    /// The seller it overrides the default for.
    pub seller: Option<SellerAccount>,
    /// The terms.
    pub rate: FeeRate,
    /// From when (Unix ms); `None`: now.
    pub effective_from_ms: Option<i64>,
}

/// Validates a `SetFeeRate` request, naming the field at fault.
pub fn draft(r: pb::SetFeeRateRequest) -> Result<FeeRateDraft, ApiError> {
    let invalid = |param: &str, message: String| ApiError::invalid("parameter_invalid", param, message);
    let currency = Currency::parse(&r.currency).map_err(|e| invalid("currency", e.to_string()))?;
    let seller = match r.seller_account.as_str() {
        "" => None,
        s => Some(SellerAccount::parse(s).map_err(|e| invalid("seller_account", e.to_string()))?),
    };
    let fixed_minor = match r.fixed.as_str() {
        "" | "0" => 0,
        text => Money::parse(text, currency).map_err(|e| invalid("fixed", e.to_string()))?.amount_minor(),
    };
    let rate = FeeRate::new(r.bps, fixed_minor).map_err(|e| invalid("bps", e.to_string()))?;
    let effective_from_ms = match r.effective_from_ms {
        0 => None,
        ms if ms < 0 => return Err(invalid("effective_from_ms", "must be a Unix time in ms".into())),
        ms => Some(ms),
    };
    Ok(FeeRateDraft { currency, seller, rate, effective_from_ms })
}

/// Store refusals (a start in the past, a duplicate) as the caller's error.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Precondition(message) => ApiError::invalid("fee_rate_refused", "effective_from_ms", message),
        other => other.into(),
    }
}

/// The wire view of a stored rate.
pub fn fee_rate_pb(r: &FeeRateRecord) -> pb::FeeRate {
    pb::FeeRate {
        currency: r.currency.code().to_owned(),
        seller_account: r.seller_account.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        bps: r.rate.bps,
        fixed: Money::from_minor(r.rate.fixed_minor, r.currency).to_decimal_string(),
        effective_from_ms: r.effective_from_ms,
        created_at_ms: r.created_at_ms,
        created_by: r.created_by.clone(),
    }
}
