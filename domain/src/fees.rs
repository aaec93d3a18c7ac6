//! Platform fees, in integer minor units only (issue 12's first brick: the arithmetic the
//! ledger will book; no I/O here).
//!
//! The written rounding decision:
//! - A fee is `percentage + fixed`: the percentage part is `gross × bps / 10 000` rounded
//!   **half to even** (banker's rounding: no systematic bias for or against the platform over
//!   many orders), then the fixed part is added, and the fee is capped at the gross (a tiny
//!   order never leaves the seller a negative net). `net = gross − fee`, so
//!   `net + fee = gross` exactly: no minor unit is created or lost.
//! - A refund gives back the fee **proportionally and cumulatively**: after refunds totalling
//!   `r` of a gross `g` with fee `f`, the fee given back so far is `round_half_even(f × r / g)`;
//!   one refund's share is the difference before and after it. Refunding everything, in any
//!   number of parts, gives back exactly `f`; each share is between 0 and the refund itself,
//!   so the seller's part of a refund is never negative and never more than its net.

use crate::money::{Money, MoneyError};
use serde::{Deserialize, Serialize};

/// Basis points in a whole (100 %).
pub const BPS_WHOLE: u32 = 10_000;

/// A fee schedule's terms for one currency (or one seller's override).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeRate {
    /// Percentage part in basis points, 0 to 10 000.
    pub bps: u32,
    /// Fixed part in the currency's minor units, 0 or more.
    pub fixed_minor: i64,
}

/// Why a fee rate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeError {
    /// `bps` above 10 000.
    #[error("fee percentage {0} bps is above 10000 (100 %)")]
    PercentageTooHigh(u32),
    /// A negative fixed part.
    #[error("fixed fee {0} is negative")]
    NegativeFixed(i64),
    /// A negative or inconsistent amount was given.
    #[error("{0}")]
    Amount(String),
}

/// A capture split into what the seller is owed and what the platform keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeSplit {
    /// What the buyer paid.
    pub gross: Money,
    /// The seller's part: `gross − fee`.
    pub net: Money,
    /// The platform's part.
    pub fee: Money,
}

/// `numerator / denominator` rounded half to even; both non-negative, denominator positive.
fn div_half_even(numerator: i128, denominator: i128) -> i128 {
    let (quotient, remainder) = (numerator / denominator, numerator % denominator);
    match (2 * remainder).cmp(&denominator) {
        std::cmp::Ordering::Less => quotient,
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal => quotient + (quotient % 2),
    }
}

impl FeeRate {
    /// A validated rate.
    pub fn new(bps: u32, fixed_minor: i64) -> Result<FeeRate, FeeError> {
        if bps > BPS_WHOLE {
            return Err(FeeError::PercentageTooHigh(bps));
        }
        if fixed_minor < 0 {
            return Err(FeeError::NegativeFixed(fixed_minor));
        }
        Ok(FeeRate { bps, fixed_minor })
    }

    /// The fee on `gross_minor` (non-negative): see the module's rounding decision.
    pub fn fee_minor(&self, gross_minor: i64) -> Result<i64, FeeError> {
        if gross_minor < 0 {
            return Err(FeeError::Amount(format!("gross {gross_minor} is negative")));
        }
        let percentage = div_half_even(i128::from(gross_minor) * i128::from(self.bps), i128::from(BPS_WHOLE));
        let fee = (percentage + i128::from(self.fixed_minor)).min(i128::from(gross_minor));
        // At most the gross, which is an i64.
        i64::try_from(fee).map_err(|_| FeeError::Amount("fee overflows".into()))
    }

    /// Splits a capture into net and fee, in its currency.
    pub fn split(&self, gross: Money) -> Result<FeeSplit, FeeError> {
        let fee_minor = self.fee_minor(gross.amount_minor())?;
        let fee = Money::from_minor(fee_minor, gross.currency());
        let net = gross.checked_sub(fee).map_err(|e: MoneyError| FeeError::Amount(e.to_string()))?;
        Ok(FeeSplit { gross, net, fee })
    }
}

/// The fee given back by one refund of `refund_minor`, after earlier refunds totalling
/// `refunded_before_minor`, of a capture of `gross_minor` whose fee was `fee_minor` (the
/// module's proportional, cumulative rule). Refused when the refunds would exceed the gross.
pub fn fee_refund_minor(
    gross_minor: i64,
    fee_minor: i64,
    refunded_before_minor: i64,
    refund_minor: i64,
) -> Result<i64, FeeError> {
    if gross_minor <= 0 || fee_minor < 0 || fee_minor > gross_minor || refunded_before_minor < 0 || refund_minor < 0 {
        return Err(FeeError::Amount(format!(
            "refund of {refund_minor} after {refunded_before_minor} of gross {gross_minor} with fee {fee_minor}"
        )));
    }
    let after = i128::from(refunded_before_minor) + i128::from(refund_minor);
    if after > i128::from(gross_minor) {
        return Err(FeeError::Amount(format!("refunds of {after} exceed the gross {gross_minor}")));
    }
    let given_back = |refunded: i128| div_half_even(i128::from(fee_minor) * refunded, i128::from(gross_minor));
    let share = given_back(after) - given_back(i128::from(refunded_before_minor));
    i64::try_from(share).map_err(|_| FeeError::Amount("fee share overflows".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;
    use proptest::prelude::*;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::parse("USD").unwrap())
    }

    /// Worked examples of the written rule, the ties included.
    #[test]
    fn examples() {
        let card = FeeRate::new(290, 30).unwrap(); // 2.9 % + 0.30
        assert_eq!(card.fee_minor(10_000).unwrap(), 320); // 290 + 30
        let split = card.split(usd(2_500)).unwrap();
        assert_eq!((split.net.amount_minor(), split.fee.amount_minor()), (2_398, 102)); // 72.5 -> 72 (even) + 30
        let five = FeeRate::new(500, 0).unwrap();
        assert_eq!(five.fee_minor(10).unwrap(), 0); // 0.5 -> 0 (even)
        assert_eq!(five.fee_minor(30).unwrap(), 2); // 1.5 -> 2 (even)
        assert_eq!(five.fee_minor(50).unwrap(), 2); // 2.5 -> 2 (even)
        assert_eq!(five.fee_minor(51).unwrap(), 3); // 2.55 -> 3
        assert_eq!(card.fee_minor(10).unwrap(), 10, "capped at the gross");
        assert_eq!(FeeRate::new(0, 0).unwrap().fee_minor(1_000).unwrap(), 0);
        assert_eq!(FeeRate::new(BPS_WHOLE, 0).unwrap().fee_minor(1_000).unwrap(), 1_000);
        assert!(FeeRate::new(BPS_WHOLE + 1, 0).is_err());
        assert!(FeeRate::new(100, -1).is_err());
        assert!(card.fee_minor(-1).is_err());
        // 10.00 captured with a 0.32 fee, refunded 2.50 then 7.50: 0.08 then 0.24 back.
        assert_eq!(fee_refund_minor(1_000, 32, 0, 250).unwrap(), 8);
        assert_eq!(fee_refund_minor(1_000, 32, 250, 750).unwrap(), 24);
        assert!(fee_refund_minor(1_000, 32, 250, 751).is_err(), "more than the gross");
    }

    proptest! {
        /// Net and fee always add up to the gross, the fee is within [0, gross], and a higher
        /// percentage never takes less.
        #[test]
        fn splits_never_lose_a_minor_unit(gross in 0i64..1_000_000_000_000_000, bps in 0u32..=BPS_WHOLE, fixed in 0i64..100_000) {
            let rate = FeeRate::new(bps, fixed).unwrap();
            let split = rate.split(usd(gross)).unwrap();
            prop_assert_eq!(split.net.amount_minor() + split.fee.amount_minor(), gross);
            prop_assert!(split.fee.amount_minor() >= 0 && split.fee.amount_minor() <= gross);
            if bps < BPS_WHOLE {
                let higher = FeeRate::new(bps + 1, fixed).unwrap().fee_minor(gross).unwrap();
                prop_assert!(higher >= split.fee.amount_minor());
            }
        }

        /// Any sequence of partial refunds up to the gross gives back the whole fee exactly,
        /// each share within [0, refund].
        #[test]
        fn refunds_give_back_the_fee_exactly(gross in 1i64..10_000_000, bps in 0u32..=BPS_WHOLE, fixed in 0i64..1_000, cuts in proptest::collection::vec(1u32..1_000, 1..8)) {
            let fee = FeeRate::new(bps, fixed).unwrap().fee_minor(gross).unwrap();
            let total: u64 = cuts.iter().map(|c| u64::from(*c)).sum();
            let mut parts: Vec<i64> = cuts.iter().map(|c| (i128::from(gross) * i128::from(*c) / i128::from(total)) as i64).collect();
            let short = gross - parts.iter().sum::<i64>();
            *parts.last_mut().unwrap() += short;
            let (mut before, mut given) = (0i64, 0i64);
            for part in parts {
                let share = fee_refund_minor(gross, fee, before, part).unwrap();
                prop_assert!(share >= 0 && share <= part, "share {} of refund {}", share, part);
                given += share;
                before += part;
            }
            prop_assert_eq!(before, gross);
            prop_assert_eq!(given, fee);
        }
    }
}
