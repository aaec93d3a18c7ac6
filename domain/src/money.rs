//! Money: integer minor units of one currency. Parsed from decimal strings on the wire, never
//! from floats; arithmetic is checked.

use crate::currency::{Currency, UnknownCurrency};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The largest amount, in minor units, that one payment order may carry (10^15 - 1). It keeps
/// every sum of a checkout far inside `i64` and far beyond any real card payment.
pub const AMOUNT_MINOR_MAX: i64 = 999_999_999_999_999;

/// Longest amount string accepted from the wire, before any parsing work is done.
const AMOUNT_TEXT_LEN_MAX: usize = 32;

/// An amount of money in one currency, as integer minor units (cents for USD, won for KRW).
///
/// There is deliberately no `Default`, no `From<i64>` and no float conversion: money is built
/// by [`Money::parse`] from a wire string or by [`Money::from_minor`] from a stored integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

/// Why an amount was rejected. Messages are written for API callers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The text is not a plain decimal number (signs, exponents, spaces, NaN, empty...).
    #[error("must be a plain decimal string such as \"10.50\" (no sign, exponent or spaces)")]
    Malformed,
    /// Zero or negative amount where a payment amount is required.
    #[error("must be greater than zero")]
    NotPositive,
    /// More decimal places than the currency's minor units.
    #[error("has more decimal places than {currency} allows ({minor_units})")]
    TooPrecise {
        /// The currency the amount was checked against.
        currency: Currency,
        /// Its number of minor units.
        minor_units: u32,
    },
    /// Beyond [`AMOUNT_MINOR_MAX`] minor units.
    #[error("exceeds the maximum supported amount")]
    OutOfRange,
    /// Unsupported currency.
    #[error(transparent)]
    Currency(#[from] UnknownCurrency),
    /// Two amounts of different currencies were combined.
    #[error("currency mismatch: {0} vs {1}")]
    CurrencyMismatch(Currency, Currency),
    /// Checked arithmetic overflowed.
    #[error("arithmetic overflow")]
    Overflow,
}

impl Money {
    /// Parses a payment amount from its wire form: a plain decimal string in major units whose
    /// precision fits the currency (`"10.50"` USD, `"15000"` KRW). Rejects zero and negatives.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, MoneyError> {
        if text.is_empty() || text.len() > AMOUNT_TEXT_LEN_MAX || !is_plain_decimal(text) {
            return Err(MoneyError::Malformed);
        }
        let decimal = Decimal::from_str(text).map_err(|_| MoneyError::OutOfRange)?;
        if decimal.scale() > currency.minor_units() {
            return Err(MoneyError::TooPrecise { currency, minor_units: currency.minor_units() });
        }
        // Scale up to exactly the currency's minor units; the grammar check above already
        // guarantees a non-negative value, so only range remains to be checked.
        let factor = Decimal::from(10_i64.pow(currency.minor_units() - decimal.scale()));
        let minor = decimal.mantissa().checked_mul(factor.mantissa()).ok_or(MoneyError::OutOfRange)?;
        if minor == 0 {
            return Err(MoneyError::NotPositive);
        }
        if minor > i128::from(AMOUNT_MINOR_MAX) {
            return Err(MoneyError::OutOfRange);
        }
        Ok(Money { amount_minor: minor as i64, currency })
    }

    /// Builds money from stored minor units (a balance may be zero or negative).
    pub fn from_minor(amount_minor: i64, currency: Currency) -> Self {
        Money { amount_minor, currency }
    }

    /// Builds a payment amount from stored minor units, checking it is in (0, AMOUNT_MINOR_MAX].
    pub fn positive_from_minor(amount_minor: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount_minor <= 0 {
            return Err(MoneyError::NotPositive);
        }
        if amount_minor > AMOUNT_MINOR_MAX {
            return Err(MoneyError::OutOfRange);
        }
        Ok(Money { amount_minor, currency })
    }

    /// Integer minor units.
    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Checked addition of two amounts of the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount_minor = self.amount_minor.checked_add(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money { amount_minor, currency: self.currency })
    }

    /// Checked subtraction of two amounts of the same currency.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount_minor = self.amount_minor.checked_sub(other.amount_minor).ok_or(MoneyError::Overflow)?;
        Ok(Money { amount_minor, currency: self.currency })
    }

    fn same_currency(&self, other: Money) -> Result<(), MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        Ok(())
    }

    /// The amount in major units with exactly the currency's decimals: the wire form.
    pub fn to_decimal_string(&self) -> String {
        Decimal::from_i128_with_scale(i128::from(self.amount_minor), self.currency.minor_units()).to_string()
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// `digits` or `digits.digits`, no leading zeros except a lone `0` before the point. Anything
/// else (sign, exponent, whitespace, `NaN`, `.5`, `5.`) is not an amount we accept.
fn is_plain_decimal(text: &str) -> bool {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || (int.len() > 1 && int.starts_with('0')) {
        return false;
    }
    frac.is_none_or(all_digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd() -> Currency {
        Currency::parse("USD").unwrap()
    }
    fn krw() -> Currency {
        Currency::parse("KRW").unwrap()
    }
    fn kwd() -> Currency {
        Currency::parse("KWD").unwrap()
    }

    #[test]
    fn parses_amounts_that_fit_their_currency() {
        assert_eq!(Money::parse("10.50", usd()).unwrap().amount_minor(), 1050);
        assert_eq!(Money::parse("10.5", usd()).unwrap().amount_minor(), 1050);
        assert_eq!(Money::parse("10", usd()).unwrap().amount_minor(), 1000);
        assert_eq!(Money::parse("0.01", usd()).unwrap().amount_minor(), 1);
        assert_eq!(Money::parse("15000", krw()).unwrap().amount_minor(), 15000);
        assert_eq!(Money::parse("1.234", kwd()).unwrap().amount_minor(), 1234);
    }

    #[test]
    fn rejects_the_seeds_bad_amounts() {
        assert!(matches!(Money::parse("10.005", usd()), Err(MoneyError::TooPrecise { .. })));
        assert!(matches!(Money::parse("1.5", krw()), Err(MoneyError::TooPrecise { .. })));
        assert!(matches!(Money::parse("1.0", krw()), Err(MoneyError::TooPrecise { .. })));
        assert_eq!(Money::parse("0", usd()), Err(MoneyError::NotPositive));
        assert_eq!(Money::parse("0.00", usd()), Err(MoneyError::NotPositive));
        for bad in [
            "-1", "1e3", "NaN", " 10", "10 ", "+5", "", ".5", "5.", "1,000", "0x10", "01", "١٠", "inf", "10..0",
            "1_000",
        ] {
            assert_eq!(Money::parse(bad, usd()), Err(MoneyError::Malformed), "{bad:?}");
        }
        assert_eq!(Money::parse("10000000000000", usd()), Err(MoneyError::OutOfRange));
        assert_eq!(Money::parse("99999999999999999999999999999", usd()), Err(MoneyError::OutOfRange));
        assert_eq!(Money::parse("1000000000000000", krw()), Err(MoneyError::OutOfRange));
        assert!(Money::parse("999999999999999", krw()).is_ok());
    }

    #[test]
    fn arithmetic_is_checked_and_currency_safe() {
        let a = Money::from_minor(i64::MAX, usd());
        assert_eq!(a.checked_add(Money::from_minor(1, usd())), Err(MoneyError::Overflow));
        assert!(matches!(
            Money::from_minor(1, usd()).checked_add(Money::from_minor(1, krw())),
            Err(MoneyError::CurrencyMismatch(..))
        ));
        assert_eq!(
            Money::from_minor(5, usd()).checked_sub(Money::from_minor(7, usd())).unwrap(),
            Money::from_minor(-2, usd())
        );
    }

    #[test]
    fn formats_with_the_currency_decimals() {
        assert_eq!(Money::from_minor(1050, usd()).to_decimal_string(), "10.50");
        assert_eq!(Money::from_minor(15000, krw()).to_decimal_string(), "15000");
        assert_eq!(Money::from_minor(5, kwd()).to_decimal_string(), "0.005");
    }

    proptest! {
        /// Formatting then parsing any valid amount gives the same minor units back.
        #[test]
        fn wire_round_trip(minor in 1..=AMOUNT_MINOR_MAX, idx in 0usize..3) {
            let cur = [usd(), krw(), kwd()][idx];
            let m = Money::from_minor(minor, cur);
            prop_assert_eq!(Money::parse(&m.to_decimal_string(), cur).unwrap(), m);
        }

        /// No string with characters outside digits and one point is ever accepted.
        #[test]
        fn rejects_foreign_characters(s in "[0-9]{0,4}[^0-9.][0-9]{0,4}") {
            prop_assert!(Money::parse(&s, usd()).is_err());
        }

        /// Extra decimal places beyond the currency's minor units are always rejected.
        #[test]
        fn rejects_excess_precision(int in 0u64..1_000_000, frac in "[0-9]{3,6}") {
            let text = format!("{int}.{frac}");
            prop_assert!(Money::parse(&text, usd()).is_err());
        }

        /// Parsing never panics, whatever the input.
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = Money::parse(&s, usd());
        }
    }
}
