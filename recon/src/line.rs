//! One settlement line as the PSP reported it, the PSPs we read, and settlement days.

use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Most days a run may reach back or forward from a settlement day (a bound on date math).
pub const DAY_SPAN_MAX: i64 = 3_660;

/// 1970-01-01, day zero of unix time.
const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(day) => day,
    None => panic!("1970-01-01 is a date"),
};

/// A PSP whose settlement data we reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Psp {
    /// Stripe: balance transactions, days in UTC.
    Stripe,
    /// Toss Payments: the settlements API, days in Asia/Seoul.
    Toss,
}

impl Psp {
    /// `stripe` or `toss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Psp::Stripe => "stripe",
            Psp::Toss => "toss",
        }
    }

    /// Parses `stripe` or `toss`.
    pub fn parse(text: &str) -> Result<Psp, LineError> {
        match text {
            "stripe" => Ok(Psp::Stripe),
            "toss" => Ok(Psp::Toss),
            other => Err(LineError::Field { field: "psp", message: format!("{other:?} is neither stripe nor toss") }),
        }
    }

    /// Offset of the PSP's settlement day from UTC, in seconds: a Toss day is a day in Seoul
    /// (UTC+9, no daylight saving), a Stripe day a day in UTC.
    pub fn day_offset_secs(self) -> i64 {
        match self {
            Psp::Stripe => 0,
            Psp::Toss => 9 * 3_600,
        }
    }

    /// The PSP's settlement day of an instant (unix milliseconds).
    pub fn day_of_ms(self, unix_ms: i64) -> Day {
        let local_secs = unix_ms.div_euclid(1_000) + self.day_offset_secs();
        let days = local_secs.div_euclid(86_400);
        Day(EPOCH + Duration::days(days))
    }

    /// Unix milliseconds of the first instant of `day` in the PSP's zone.
    pub fn day_start_ms(self, day: Day) -> i64 {
        let days = (day.0 - EPOCH).num_days();
        (days * 86_400 - self.day_offset_secs()) * 1_000
    }
}

/// Unix milliseconds of an RFC 3339 timestamp (`2026-12-01T01:00:00Z`, the suffix Temporal
/// gives a scheduled workflow's id), if it is one.
pub fn rfc3339_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

impl fmt::Display for Psp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A settlement day, `YYYY-MM-DD` on the wire and in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Day(NaiveDate);

impl Day {
    /// Parses `YYYY-MM-DD` strictly (no time, no other separator).
    pub fn parse(text: &str) -> Result<Day, LineError> {
        let bad = || LineError::Field { field: "date", message: format!("{text:?} is not a YYYY-MM-DD date") };
        if text.len() != 10 {
            return Err(bad());
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map(Day).map_err(|_| bad())
    }

    /// The day `days` later (earlier when negative); `days` is bounded by [`DAY_SPAN_MAX`].
    pub fn plus_days(self, days: i64) -> Day {
        Day(self.0 + Duration::days(days.clamp(-DAY_SPAN_MAX, DAY_SPAN_MAX)))
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl TryFrom<String> for Day {
    type Error = LineError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Day::parse(&text)
    }
}

impl From<Day> for String {
    fn from(day: Day) -> String {
        day.to_string()
    }
}

/// What a line moved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// A capture: money in.
    Charge,
    /// A refund or (Toss) cancel: money back to the buyer; amount negative.
    Refund,
    /// A payout to a seller (a payout provider's statement): amount negative.
    Payout,
    /// A payout that came back (failed, returned by the bank, or canceled): amount positive.
    PayoutReturn,
    /// Anything else the PSP reports (a dispute, an adjustment...), by its own name. No rule
    /// explains it yet, so it is always a class-3 break.
    Other(String),
}

impl LineKind {
    /// Stored form: `charge`, `refund`, `payout`, `payout_return` or the PSP's own name.
    pub fn as_str(&self) -> &str {
        match self {
            LineKind::Charge => "charge",
            LineKind::Refund => "refund",
            LineKind::Payout => "payout",
            LineKind::PayoutReturn => "payout_return",
            LineKind::Other(name) => name,
        }
    }

    /// A settlement report's own kind name (CSV `type`, Stripe `reporting_category`): a
    /// charge, a refund, or anything else by its name. A `payout` there is the PSP paying the
    /// platform, not a seller payout: those come only from payout statements.
    pub fn from_report(text: &str) -> LineKind {
        match text {
            "charge" => LineKind::Charge,
            "refund" => LineKind::Refund,
            other => LineKind::Other(other.to_owned()),
        }
    }

    /// Reads the stored form back.
    pub fn from_stored(text: &str) -> LineKind {
        match text {
            "charge" => LineKind::Charge,
            "refund" => LineKind::Refund,
            "payout" => LineKind::Payout,
            "payout_return" => LineKind::PayoutReturn,
            other => LineKind::Other(other.to_owned()),
        }
    }
}

/// One line of a settlement report, parsed. Amounts are signed minor units as the PSP sees its
/// balance: a charge is positive, a refund negative; `net = amount − fee`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementLine {
    /// Position in its source, from 1 (the data rows of a file; items across pages of an API).
    pub line_no: u32,
    /// What it moved.
    pub kind: LineKind,
    /// The PSP's id of this movement (Stripe `txn_...`, Toss `transactionKey`); the same
    /// movement keeps it in every report, so two lines with one id are one movement twice.
    pub transaction_id: String,
    /// The payment it belongs to (Stripe `pi_...`, Toss `paymentKey`): our order's
    /// `psp_reference`.
    pub payment_reference: Option<String>,
    /// The order id the PSP was given (Stripe `metadata[payment_order_id]`, Toss `orderId`:
    /// a payment order id, or a checkout id for the hosted flow).
    pub order_id: Option<String>,
    /// A refund's own PSP id (Stripe `re_...`, Toss cancel `transactionKey`), when reported.
    pub refund_reference: Option<String>,
    /// Signed minor units.
    pub amount_minor: i64,
    /// The PSP's fee on this line, minor units (0 on refunds).
    pub fee_minor: i64,
    /// `amount − fee`, as reported.
    pub net_minor: i64,
    /// Upper-case ISO 4217 code as the PSP wrote it (not necessarily one we accept).
    pub currency: String,
    /// The settlement day the line counts for (Stripe: the UTC day it was created; Toss
    /// `soldDate`).
    pub sold_date: Day,
    /// When the PSP pays it out, if reported.
    pub paid_out_date: Option<Day>,
    /// The line exactly as received (a CSV row, or one JSON item), for the evidence.
    pub raw: String,
}

/// Why a line or a report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// A field is missing or malformed.
    #[error("{field}: {message}")]
    Field {
        /// The field's name.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A line of a report is malformed.
    #[error("line {line_no}: {source}")]
    Line {
        /// Its position.
        line_no: u32,
        /// The field error.
        #[source]
        source: Box<LineError>,
    },
    /// The report as a whole is malformed (a bad header, not JSON, too many lines).
    #[error("{0}")]
    Report(String),
}

impl LineError {
    /// The same error, located at `line_no`.
    pub fn at(self, line_no: u32) -> LineError {
        LineError::Line { line_no, source: Box::new(self) }
    }
}

/// A currency code as PSPs write it (Stripe in lower case), normalised to upper case.
pub fn currency_code(text: &str) -> Result<String, LineError> {
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err(LineError::Field { field: "currency", message: format!("{text:?} is not a three-letter code") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Toss day starts at 15:00 UTC the day before; a Stripe day at midnight UTC.
    #[test]
    fn days_follow_the_psp_zone() {
        let day = Day::parse("2026-12-01").unwrap();
        assert_eq!(Psp::Stripe.day_start_ms(day), 1_796_083_200_000);
        assert_eq!(Psp::Toss.day_start_ms(day), 1_796_083_200_000 - 9 * 3_600_000);
        for psp in [Psp::Stripe, Psp::Toss] {
            let start = psp.day_start_ms(day);
            assert_eq!(psp.day_of_ms(start), day);
            assert_eq!(psp.day_of_ms(start - 1), day.plus_days(-1));
            assert_eq!(psp.day_of_ms(start + 86_400_000 - 1), day);
        }
        assert_eq!(day.plus_days(31).to_string(), "2027-01-01");
        assert_eq!(rfc3339_ms("2026-12-01T00:00:00Z"), Some(1_796_083_200_000));
        assert_eq!(rfc3339_ms("2026-12-01"), None);
    }

    /// Only strict dates and three-letter currencies are read.
    #[test]
    fn strict_fields() {
        for bad in ["2026-1-01", "2026-12-01T00:00", "2026-13-01", "", "20261201"] {
            assert!(Day::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(currency_code("usd").unwrap(), "USD");
        assert!(currency_code("us").is_err());
        assert!(currency_code("u$d").is_err());
        assert_eq!(Psp::parse("toss").unwrap(), Psp::Toss);
        assert!(Psp::parse("Toss").is_err());
    }
}
