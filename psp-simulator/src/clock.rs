//! Wall-clock helpers: Unix time, civil dates and ISO-8601 formatting.
//!
//! Stripe speaks Unix seconds and UTC dates; Toss speaks ISO-8601 with the
//! Korea offset (`+09:00`, no daylight saving) and Asia/Seoul dates. The
//! date arithmetic is the classic days-from-civil algorithm, so no time-zone
//! crate is needed for two fixed offsets.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds in a day.
pub const DAY_SECS: i64 = 86_400;
/// Offset of Korea Standard Time from UTC, in seconds (UTC+9, no DST).
pub const KST_OFFSET_SECS: i64 = 9 * 3_600;

/// Current time in Unix seconds (Stripe's `created` unit).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs())
}

/// Current time in Unix milliseconds (the admin logs' unit).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

/// A calendar date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// The date `unix_secs + offset_secs` falls on.
    pub fn from_unix(unix_secs: i64, offset_secs: i64) -> Self {
        Self::from_days((unix_secs + offset_secs).div_euclid(DAY_SECS))
    }

    /// The date `days` after 1970-01-01.
    pub fn from_days(days: i64) -> Self {
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        // Both are small and positive by construction.
        Self { year, month: u32::try_from(month).unwrap_or(1), day: u32::try_from(day).unwrap_or(1) }
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let year = self.year - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let yoe = year.rem_euclid(400);
        let month = i64::from(self.month);
        let mp = if month > 2 { month - 3 } else { month + 9 };
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// This date plus `days`.
    pub fn plus_days(self, days: i64) -> Self {
        Self::from_days(self.days() + days)
    }

    /// Unix seconds of this date's midnight at `offset_secs` from UTC.
    pub fn midnight_unix(self, offset_secs: i64) -> i64 {
        self.days() * DAY_SECS - offset_secs
    }

    /// Parses `YYYY-MM-DD`, rejecting impossible dates.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '-');
        let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
        let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(month, 2) || !digits(day, 2) {
            return None;
        }
        let date = Self { year: year.parse().ok()?, month: month.parse().ok()?, day: day.parse().ok()? };
        // Round-tripping through day numbers normalizes e.g. 02-30.
        (Self::from_days(date.days()) == date).then_some(date)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// `unix_secs` as ISO-8601 in Korea time: `2024-01-02T03:04:05+09:00`
/// (Toss's `requestedAt` / `approvedAt` format).
pub fn iso_kst(unix_secs: u64) -> String {
    let secs = i64::try_from(unix_secs).unwrap_or(i64::MAX) + KST_OFFSET_SECS;
    let date = Date::from_days(secs.div_euclid(DAY_SECS));
    let of_day = secs.rem_euclid(DAY_SECS);
    format!("{date}T{:02}:{:02}:{:02}+09:00", of_day / 3_600, of_day % 3_600 / 60, of_day % 60)
}

/// Today's date at `offset_secs` from UTC.
pub fn today(offset_secs: i64) -> Date {
    Date::from_unix(i64::try_from(unix_now()).unwrap_or(i64::MAX), offset_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known instants map to the right civil dates and back.
    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(Date::from_days(0).to_string(), "1970-01-01");
        let leap = Date::parse("2024-02-29").unwrap();
        assert_eq!(leap.plus_days(1).to_string(), "2024-03-01");
        assert_eq!(Date::from_days(leap.days()), leap);
        assert!(Date::parse("2023-02-29").is_none());
        assert!(Date::parse("2024-1-01").is_none());
        // 2024-01-01T15:00:00Z is already Jan 2nd in Seoul.
        let instant = Date::parse("2024-01-01").unwrap().midnight_unix(0) + 15 * 3_600;
        assert_eq!(Date::from_unix(instant, 0).to_string(), "2024-01-01");
        assert_eq!(Date::from_unix(instant, KST_OFFSET_SECS).to_string(), "2024-01-02");
        assert_eq!(iso_kst(u64::try_from(instant).unwrap()), "2024-01-02T00:00:00+09:00");
    }
}
