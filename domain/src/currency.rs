//! ISO 4217 currencies the platform accepts, with their minor units.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A supported ISO 4217 currency. Only currencies listed here are accepted: an amount is
/// meaningless without knowing how many minor units the currency has.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    /// Index into [`CURRENCIES`]; a plain index keeps `Currency` `Copy` and free of lifetimes.
    index: u8,
}

/// (code, minor units) per ISO 4217. Kept short on purpose: every entry is a currency we can
/// settle; adding one is a deliberate act.
const CURRENCIES: &[(&str, u32)] = &[
    ("AUD", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CNY", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("BHD", 3),
    ("SGD", 2),
    ("USD", 2),
];

/// The currency code is not a supported ISO 4217 code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported currency {0:?}: expected an ISO 4217 code such as USD or KRW")]
pub struct UnknownCurrency(pub String);

impl Currency {
    /// Looks up an upper-case ISO 4217 code. Lower case is rejected so that one currency has one
    /// spelling in storage and on the wire.
    pub fn parse(code: &str) -> Result<Self, UnknownCurrency> {
        CURRENCIES
            .iter()
            .position(|(c, _)| *c == code)
            .map(|i| Currency { index: i as u8 })
            .ok_or_else(|| UnknownCurrency(code.to_owned()))
    }

    /// Every supported currency, in a fixed order. Lets configuration that must cover each
    /// currency (the risk limits) be checked against the list instead of a copy of it.
    pub fn all() -> impl Iterator<Item = Currency> {
        (0..CURRENCIES.len()).filter_map(|i| u8::try_from(i).ok()).map(|index| Currency { index })
    }

    /// The three-letter code, upper case.
    pub fn code(&self) -> &'static str {
        CURRENCIES[usize::from(self.index)].0
    }

    /// Number of decimal places of the minor unit (KRW 0, USD 2, KWD 3).
    pub fn minor_units(&self) -> u32 {
        CURRENCIES[usize::from(self.index)].1
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl TryFrom<String> for Currency {
    type Error = UnknownCurrency;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_follow_iso_4217() {
        for (code, units) in [("KRW", 0), ("JPY", 0), ("USD", 2), ("EUR", 2), ("GBP", 2), ("KWD", 3)] {
            assert_eq!(Currency::parse(code).unwrap().minor_units(), units, "{code}");
        }
    }

    /// `all` lists each supported code once, and each parses back to itself.
    #[test]
    fn all_lists_every_currency_once() {
        let codes: Vec<&str> = Currency::all().map(|c| c.code()).collect();
        assert_eq!(codes.len(), CURRENCIES.len());
        for c in Currency::all() {
            assert_eq!(Currency::parse(c.code()), Ok(c));
        }
        assert!(codes.contains(&"SGD") && codes.contains(&"BHD"));
    }

    #[test]
    fn unknown_and_lower_case_codes_are_rejected() {
        assert!(Currency::parse("XXX").is_err());
        assert!(Currency::parse("usd").is_err());
        assert!(Currency::parse("").is_err());
    }
}
