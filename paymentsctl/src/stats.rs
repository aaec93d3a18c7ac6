//! Latency statistics: nearest-rank percentiles over measured durations. Pure functions.

use std::time::Duration;

/// The nearest-rank `p`-th percentile (0 < p <= 100) of `sorted` (ascending): the smallest
/// value such that at least `p` percent of the values are less than or equal to it, i.e. the
/// value at 1-based rank `ceil(p / 100 * n)`. `None` for an empty slice; `p` is clamped to
/// `[0, 100]` and `p = 0` gives the minimum.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 100.0) };
    // ceil(p * n / 100) computed on integers scaled by 1000 so 99.9 stays exact enough and
    // float rounding cannot push an exact rank (e.g. 90% of 10) one higher.
    let scaled = (p * 1000.0).round() as u128;
    let rank = (scaled * n as u128).div_ceil(100_000) as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// The summary printed by `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencySummary {
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

impl LatencySummary {
    /// Summarizes `latencies` (any order); `None` when there are none.
    pub fn of(latencies: &[Duration]) -> Option<LatencySummary> {
        let mut sorted = latencies.to_vec();
        sorted.sort_unstable();
        Some(LatencySummary {
            p50: percentile(&sorted, 50.0)?,
            p90: percentile(&sorted, 90.0)?,
            p99: percentile(&sorted, 99.0)?,
            max: *sorted.last()?,
        })
    }
}

/// Milliseconds with three decimals, for printing.
pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_millis).collect()
    }

    #[test]
    fn empty_has_no_percentile() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(LatencySummary::of(&[]), None);
    }

    #[test]
    fn single_value_is_every_percentile() {
        let v = ms(&[7]);
        for p in [0.0, 1.0, 50.0, 99.0, 100.0] {
            assert_eq!(percentile(&v, p), Some(Duration::from_millis(7)));
        }
    }

    #[test]
    fn nearest_rank_textbook_example() {
        // Wikipedia's nearest-rank example: 15, 20, 35, 40, 50.
        let v = ms(&[15, 20, 35, 40, 50]);
        assert_eq!(percentile(&v, 5.0), Some(Duration::from_millis(15)));
        assert_eq!(percentile(&v, 30.0), Some(Duration::from_millis(20)));
        assert_eq!(percentile(&v, 40.0), Some(Duration::from_millis(20)));
        assert_eq!(percentile(&v, 50.0), Some(Duration::from_millis(35)));
        assert_eq!(percentile(&v, 100.0), Some(Duration::from_millis(50)));
    }

    #[test]
    fn exact_ranks_are_not_rounded_up() {
        let v = ms(&(1..=10).collect::<Vec<_>>());
        assert_eq!(percentile(&v, 90.0), Some(Duration::from_millis(9)));
        assert_eq!(percentile(&v, 50.0), Some(Duration::from_millis(5)));
        assert_eq!(percentile(&v, 0.0), Some(Duration::from_millis(1)));
        let hundred = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&hundred, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&hundred, 99.9), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&hundred, 150.0), Some(Duration::from_millis(100)));
    }

    #[test]
    fn summary_sorts_its_input() {
        let v = ms(&[30, 10, 20, 40]);
        let s = LatencySummary::of(&v).unwrap();
        assert_eq!(s.p50, Duration::from_millis(20));
        assert_eq!(s.p90, Duration::from_millis(40));
        assert_eq!(s.p99, Duration::from_millis(40));
        assert_eq!(s.max, Duration::from_millis(40));
        assert!((millis(Duration::from_micros(1500)) - 1.5).abs() < 1e-9);
    }
}
