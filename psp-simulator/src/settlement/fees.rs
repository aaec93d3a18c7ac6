//! The simulator's fee schedule. Integer arithmetic on minor units only,
//! rounding half up; refunds give back none of the fee.
//!
//! * Stripe: 2.9% + 30 minor units per capture; for zero-decimal
//!   currencies (KRW, JPY, ... — where 30 minor units would be a different
//!   price altogether) 2.9% only.
//! * Toss: 3.2% per capture, VAT included; the fee splits into supply
//!   amount and VAT (10%) like any Korean price: `supply = round(fee /
//!   1.1)`, `vat = fee - supply`.

/// Stripe's percentage fee, in tenths of a percent (2.9%).
pub const STRIPE_FEE_PER_MILLE: u64 = 29;
/// Stripe's fixed fee per capture, in minor units (not for zero-decimal
/// currencies).
pub const STRIPE_FIXED_FEE_MINOR: u64 = 30;
/// Toss's percentage fee including VAT, in tenths of a percent (3.2%).
pub const TOSS_FEE_PER_MILLE: u64 = 32;
/// Stripe's zero-decimal currencies (amounts are whole units).
pub const ZERO_DECIMAL_CURRENCIES: [&str; 16] =
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"];

/// `amount * per_mille / 1000`, rounded half up.
pub fn per_mille_half_up(amount_minor: u64, per_mille: u64) -> u64 {
    (amount_minor * per_mille * 2 + 1_000) / 2_000
}

/// Stripe's fee for capturing `amount_minor` of `currency`.
pub fn stripe_fee(amount_minor: u64, currency: &str) -> u64 {
    let percentage = per_mille_half_up(amount_minor, STRIPE_FEE_PER_MILLE);
    if ZERO_DECIMAL_CURRENCIES.contains(&currency.to_ascii_lowercase().as_str()) {
        percentage
    } else {
        percentage + STRIPE_FIXED_FEE_MINOR
    }
}

/// Toss's fee for capturing `amount_won`, as `(fee, supply, vat)`.
pub fn toss_fee(amount_won: u64) -> (u64, u64, u64) {
    let fee = per_mille_half_up(amount_won, TOSS_FEE_PER_MILLE);
    let (supply, vat) = toss_fee_split(fee);
    (fee, supply, vat)
}

/// A VAT-inclusive Toss fee as `(supply, vat)`.
pub fn toss_fee_split(fee: u64) -> (u64, u64) {
    // round(fee * 10 / 11), half up.
    let supply = (fee * 20 + 11) / 22;
    (supply, fee - supply)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked examples, including exact halves rounding up.
    #[test]
    fn fee_schedule() {
        assert_eq!(stripe_fee(10_000, "usd"), 290 + 30);
        assert_eq!(stripe_fee(50, "usd"), 1 + 30); // 1.45 → 1
        assert_eq!(stripe_fee(1_000, "USD"), 29 + 30);
        assert_eq!(stripe_fee(15_000, "krw"), 435);
        assert_eq!(stripe_fee(500, "jpy"), 15); // 14.5 → 15
        assert_eq!(toss_fee(15_000), (480, 436, 44)); // 480 / 1.1 = 436.36
        assert_eq!(toss_fee(12_500), (400, 364, 36));
        assert_eq!(per_mille_half_up(5, 100), 1); // 0.5 → 1
    }
}
