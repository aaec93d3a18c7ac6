//! Rules-based risk check. Rules come from configuration: per-order and per-checkout amount
//! limits per currency, blocklists of buyers and sellers, and review thresholds. It is a real
//! step of the saga (APPROVE / REVIEW / DECLINE) that a fraud model can later replace behind
//! the same contract.
//!
//! The limits fail closed: a currency without both an order and a checkout limit is declined,
//! never charged unchecked.

use payments_domain::{BuyerId, Currency, Money, SellerAccount};
use payments_workflows::contract::{AssessRisk, RiskDecision, RiskInput};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// Default per-order limits, in major units: high enough for any demo, low enough to catch a
/// misplaced decimal point. Every supported currency has one, each roughly USD 50,000.
pub const DEFAULT_ORDER_LIMITS: &str = "AUD:75000,BHD:19000,CAD:70000,CHF:45000,CNY:350000,EUR:50000,GBP:50000,\
HKD:400000,JPY:5000000,KRW:50000000,KWD:15000,SGD:70000,USD:50000";

/// Default per-checkout limits (the sum of a checkout's orders in one currency), in major
/// units: four times [`DEFAULT_ORDER_LIMITS`], so a checkout of a few large orders passes but
/// one that splits a large amount into many orders does not.
pub const DEFAULT_CHECKOUT_LIMITS: &str = "AUD:300000,BHD:76000,CAD:280000,CHF:180000,CNY:1400000,EUR:200000,\
GBP:200000,HKD:1600000,JPY:20000000,KRW:200000000,KWD:60000,SGD:280000,USD:200000";

/// The configuration variable of the per-order limits, named in `currency_not_configured`
/// declines so an operator knows what to set.
pub const ORDER_LIMITS_ENV: &str = "RISK_ORDER_LIMITS";
/// The configuration variable of the per-checkout limits.
pub const CHECKOUT_LIMITS_ENV: &str = "RISK_CHECKOUT_LIMITS";

/// The configured rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskRules {
    order_limit: BTreeMap<Currency, Money>,
    checkout_limit: BTreeMap<Currency, Money>,
    blocked_buyers: BTreeSet<BuyerId>,
    blocked_sellers: BTreeSet<SellerAccount>,
    review_limit: BTreeMap<Currency, Money>,
    review_buyers: BTreeSet<BuyerId>,
}

/// Rules configuration as strings (flags / environment). `Default` is all empty: no currency
/// has a limit, so every checkout is declined (`currency_not_configured`).
#[derive(Debug, Clone, Default)]
pub struct RiskConfig<'a> {
    /// Per-order decline limits, `CUR:AMOUNT,...` (major units).
    pub order_limits: &'a str,
    /// Per-checkout decline limits on the sum of a checkout's orders in each currency,
    /// `CUR:AMOUNT,...` (major units).
    pub checkout_limits: &'a str,
    /// Buyers to decline.
    pub blocked_buyers: &'a str,
    /// Sellers to decline.
    pub blocked_sellers: &'a str,
    /// Amounts above which an operator reviews the checkout, `CUR:AMOUNT,...`; each order and
    /// each currency's checkout total is compared with them.
    pub review_limits: &'a str,
    /// Buyers whose checkouts are always reviewed.
    pub review_buyers: &'a str,
}

/// A rules configuration string is malformed.
#[derive(Debug, thiserror::Error)]
#[error("risk rules: {0}")]
pub struct RiskConfigError(String);

impl RiskRules {
    /// Parses the configuration strings; a malformed entry is an error.
    pub fn parse(config: &RiskConfig<'_>) -> Result<Self, RiskConfigError> {
        Ok(RiskRules {
            order_limit: parse_limits(config.order_limits)?,
            checkout_limit: parse_limits(config.checkout_limits)?,
            blocked_buyers: parse_ids(config.blocked_buyers, BuyerId::parse)?,
            blocked_sellers: parse_ids(config.blocked_sellers, SellerAccount::parse)?,
            review_limit: parse_limits(config.review_limits)?,
            review_buyers: parse_ids(config.review_buyers, BuyerId::parse)?,
        })
    }

    /// Applies the rules; the first rule that fires decides. In order:
    ///
    /// 1. blocklists: the buyer (`buyer_blocked`), then each order's seller (`seller_blocked`);
    /// 2. limits, each order's currency first: no order or no checkout limit configured for it
    ///    (`currency_not_configured`), the order above its limit (`amount_limit`); then each
    ///    currency's checkout total above its limit, or overflowing (`checkout_amount_limit`);
    /// 3. review: the buyer (`buyer_review`), an order above its currency's review threshold
    ///    (`amount_review`), a currency's checkout total above it (`checkout_amount_review`).
    ///
    /// A currency without limits is declined rather than sent to review: fail closed. Review
    /// would put every payment in that currency on an operator's desk with no threshold to
    /// judge it by; the fix is configuration, so the decline names the variable to set.
    pub fn evaluate(&self, input: &RiskInput) -> RiskDecision {
        self.blocklists(input)
            .or_else(|| self.limits(input))
            .or_else(|| self.reviews(input))
            .unwrap_or(RiskDecision::Approve)
    }

    fn blocklists(&self, input: &RiskInput) -> Option<RiskDecision> {
        if self.blocked_buyers.contains(&input.buyer_id) {
            return Some(decline("buyer_blocked", format!("buyer {} is on the blocklist", input.buyer_id)));
        }
        input
            .orders
            .iter()
            .find(|o| self.blocked_sellers.contains(&o.seller_account))
            .map(|o| decline("seller_blocked", format!("seller {} is on the blocklist", o.seller_account)))
    }

    fn limits(&self, input: &RiskInput) -> Option<RiskDecision> {
        for order in &input.orders {
            let currency = order.amount.currency();
            let Some(limit) = self.order_limit.get(&currency) else {
                return Some(not_configured(currency, ORDER_LIMITS_ENV, "per-order"));
            };
            if !self.checkout_limit.contains_key(&currency) {
                return Some(not_configured(currency, CHECKOUT_LIMITS_ENV, "per-checkout"));
            }
            if order.amount.amount_minor() > limit.amount_minor() {
                return Some(decline(
                    "amount_limit",
                    format!("order {} of {} exceeds the limit of {}", order.payment_order_id, order.amount, limit),
                ));
            }
        }
        let totals = match totals(input) {
            Ok(totals) => totals,
            Err(currency) => {
                return Some(decline(
                    "checkout_amount_limit",
                    format!("the {currency} total of checkout {} overflows", input.checkout_id),
                ));
            }
        };
        totals.values().find_map(|total| {
            let limit = self.checkout_limit.get(&total.currency())?;
            (total.amount_minor() > limit.amount_minor()).then(|| {
                decline(
                    "checkout_amount_limit",
                    format!("checkout {} totals {}, beyond the limit of {}", input.checkout_id, total, limit),
                )
            })
        })
    }

    fn reviews(&self, input: &RiskInput) -> Option<RiskDecision> {
        if self.review_buyers.contains(&input.buyer_id) {
            return Some(review("buyer_review", format!("buyer {} is on the review list", input.buyer_id)));
        }
        for order in &input.orders {
            if let Some(limit) = self.review_limit.get(&order.amount.currency())
                && order.amount.amount_minor() > limit.amount_minor()
            {
                return Some(review(
                    "amount_review",
                    format!(
                        "order {} of {} is above the review threshold of {}",
                        order.payment_order_id, order.amount, limit
                    ),
                ));
            }
        }
        // The limits passed, so the totals were computed without overflow once already.
        let totals = totals(input).ok()?;
        totals.values().find_map(|total| {
            let limit = self.review_limit.get(&total.currency())?;
            (total.amount_minor() > limit.amount_minor()).then(|| {
                review(
                    "checkout_amount_review",
                    format!("checkout {} totals {}, above the review threshold of {}", input.checkout_id, total, limit),
                )
            })
        })
    }
}

/// The sum of a checkout's orders per currency, with checked arithmetic; `Err` names the
/// currency whose sum overflowed.
fn totals(input: &RiskInput) -> Result<BTreeMap<Currency, Money>, Currency> {
    let mut totals: BTreeMap<Currency, Money> = BTreeMap::new();
    for order in &input.orders {
        let currency = order.amount.currency();
        let total = match totals.get(&currency) {
            Some(sum) => sum.checked_add(order.amount).map_err(|_| currency)?,
            None => order.amount,
        };
        totals.insert(currency, total);
    }
    Ok(totals)
}

/// A decline for a currency missing from a limits variable.
fn not_configured(currency: Currency, env: &str, which: &str) -> RiskDecision {
    decline(
        "currency_not_configured",
        format!("{currency} has no {which} limit: payments in it are declined until {env} holds {currency}:<amount>"),
    )
}

fn review(code: &str, message: String) -> RiskDecision {
    RiskDecision::Review { code: code.to_owned(), message }
}

fn parse_limits(limits: &str) -> Result<BTreeMap<Currency, Money>, RiskConfigError> {
    let mut map = BTreeMap::new();
    for item in split_list(limits) {
        let (code, amount) =
            item.split_once(':').ok_or_else(|| RiskConfigError(format!("limit {item:?} is not CUR:AMOUNT")))?;
        let currency = Currency::parse(code).map_err(|e| RiskConfigError(e.to_string()))?;
        let limit = Money::parse(amount, currency).map_err(|e| RiskConfigError(format!("{item}: {e}")))?;
        // Two limits for one currency: which one the operator meant is a guess, so refuse.
        if map.insert(currency, limit).is_some() {
            return Err(RiskConfigError(format!("{currency} is listed twice in {limits:?}")));
        }
    }
    Ok(map)
}

fn parse_ids<T, E: std::fmt::Display>(
    list: &str,
    parse: fn(String) -> Result<T, E>,
) -> Result<BTreeSet<T>, RiskConfigError>
where
    T: Ord,
{
    split_list(list).map(|s| parse(s.to_owned()).map_err(|e| RiskConfigError(format!("{s:?}: {e}")))).collect()
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

fn decline(code: &str, message: String) -> RiskDecision {
    RiskDecision::Decline { code: code.to_owned(), message }
}

/// Risk activities; hold only the rules.
pub struct RiskActivities {
    rules: RiskRules,
}

impl RiskActivities {
    /// Activities over these rules.
    pub fn new(rules: RiskRules) -> Self {
        RiskActivities { rules }
    }
}

#[activities]
impl RiskActivities {
    /// Runs the rules over a checkout.
    #[activity(definition = AssessRisk)]
    pub async fn assess(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RiskInput,
    ) -> Result<RiskDecision, ActivityError> {
        let decision = self.rules.evaluate(&input);
        if let RiskDecision::Decline { code, message } = &decision {
            tracing::info!(checkout_id = %input.checkout_id, code, message, "risk check declined");
        }
        Ok(decision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use payments_domain::{CheckoutId, PaymentOrderId};
    use payments_workflows::contract::RiskOrder;

    /// A checkout of `(seller, amount, currency)` orders by `buyer`.
    fn checkout(buyer: &str, orders: &[(&str, &str, &str)]) -> RiskInput {
        RiskInput {
            checkout_id: CheckoutId::parse("c").unwrap(),
            buyer_id: BuyerId::parse(buyer).unwrap(),
            orders: orders
                .iter()
                .enumerate()
                .map(|(i, (seller, amount, cur))| RiskOrder {
                    payment_order_id: PaymentOrderId::parse(format!("p{i}")).unwrap(),
                    seller_account: SellerAccount::parse(*seller).unwrap(),
                    amount: Money::parse(amount, Currency::parse(cur).unwrap()).unwrap(),
                })
                .collect(),
        }
    }

    fn input(buyer: &str, seller: &str, amount: &str, cur: &str) -> RiskInput {
        checkout(buyer, &[(seller, amount, cur)])
    }

    fn code(d: RiskDecision) -> String {
        match d {
            RiskDecision::Approve => "approve".into(),
            RiskDecision::Decline { code, .. } => code,
            RiskDecision::Review { code, .. } => format!("review:{code}"),
        }
    }

    fn defaults() -> RiskRules {
        RiskRules::parse(&RiskConfig {
            order_limits: DEFAULT_ORDER_LIMITS,
            checkout_limits: DEFAULT_CHECKOUT_LIMITS,
            ..Default::default()
        })
        .unwrap()
    }

    /// Every supported currency has a default order and checkout limit, and a checkout may
    /// hold at least one order at the order limit.
    #[test]
    fn every_currency_has_default_limits() {
        let rules = defaults();
        for currency in Currency::all() {
            let order = rules.order_limit.get(&currency).unwrap_or_else(|| panic!("{currency} order limit"));
            let total = rules.checkout_limit.get(&currency).unwrap_or_else(|| panic!("{currency} checkout limit"));
            assert!(total.amount_minor() >= order.amount_minor(), "{currency}");
        }
    }

    /// The audit's case: an SGD order of 9,999,999,999,999.99 (the largest amount a request
    /// may carry) is declined, where SGD used to have no limit at all.
    #[test]
    fn a_huge_sgd_order_is_declined() {
        assert_eq!(code(defaults().evaluate(&input("b", "s", "9999999999999.99", "SGD"))), "amount_limit");
        assert_eq!(code(defaults().evaluate(&input("b", "s", "70000", "SGD"))), "approve");
    }

    /// Splitting an amount across orders does not escape the limits: 100 orders each at the
    /// order limit are declined by the checkout limit, four are not.
    #[test]
    fn many_orders_at_the_order_limit_are_declined_by_the_checkout_limit() {
        let orders = |n| vec![("s", "50000", "USD"); n];
        assert_eq!(code(defaults().evaluate(&checkout("b", &orders(4)))), "approve");
        assert_eq!(code(defaults().evaluate(&checkout("b", &orders(5)))), "checkout_amount_limit");
        assert_eq!(code(defaults().evaluate(&checkout("b", &orders(100)))), "checkout_amount_limit");
    }

    /// A currency missing from either limit is declined, naming the currency and the variable
    /// to set; empty configuration declines everything.
    #[test]
    fn a_currency_without_limits_is_declined() {
        let rules = RiskRules::parse(&RiskConfig {
            order_limits: "USD:100,EUR:100",
            checkout_limits: "USD:400",
            ..Default::default()
        })
        .unwrap();
        let message = |d| match d {
            RiskDecision::Decline { code, message } => format!("{code}: {message}"),
            other => panic!("{other:?}"),
        };
        let gbp = message(rules.evaluate(&input("b", "s", "1", "GBP")));
        assert!(gbp.starts_with("currency_not_configured: GBP") && gbp.contains(ORDER_LIMITS_ENV), "{gbp}");
        let eur = message(rules.evaluate(&input("b", "s", "1", "EUR")));
        assert!(eur.starts_with("currency_not_configured: EUR") && eur.contains(CHECKOUT_LIMITS_ENV), "{eur}");
        let mixed = checkout("b", &[("s", "1", "USD"), ("s", "1", "GBP")]);
        assert_eq!(code(rules.evaluate(&mixed)), "currency_not_configured");
        assert_eq!(code(rules.evaluate(&input("b", "s", "1", "USD"))), "approve");
        let nothing = RiskRules::parse(&RiskConfig::default()).unwrap();
        assert_eq!(code(nothing.evaluate(&input("b", "s", "1", "USD"))), "currency_not_configured");
    }

    /// Each currency's total is held against its own limit.
    #[test]
    fn totals_are_checked_per_currency() {
        let rules = RiskRules::parse(&RiskConfig {
            order_limits: "USD:100,KRW:100000",
            checkout_limits: "USD:150,KRW:150000",
            ..Default::default()
        })
        .unwrap();
        let decide = |orders: &[(&str, &str, &str)]| code(rules.evaluate(&checkout("b", orders)));
        assert_eq!(decide(&[("s", "100", "USD"), ("t", "100000", "KRW"), ("u", "50", "USD")]), "approve");
        assert_eq!(
            decide(&[("s", "100", "USD"), ("t", "100000", "KRW"), ("u", "50.01", "USD")]),
            "checkout_amount_limit"
        );
        assert_eq!(
            decide(&[("s", "100", "USD"), ("t", "100000", "KRW"), ("u", "50001", "KRW")]),
            "checkout_amount_limit"
        );
    }

    /// A total that overflows `i64` is declined, not wrapped.
    #[test]
    fn an_overflowing_total_is_declined() {
        let max = "9999999999999.99";
        let rules = RiskRules::parse(&RiskConfig {
            order_limits: &format!("USD:{max}"),
            checkout_limits: &format!("USD:{max}"),
            ..Default::default()
        })
        .unwrap();
        // 10^15 - 1 cents, 9,300 times, is beyond i64::MAX (about 9.22 * 10^18).
        let orders = vec![("s", max, "USD"); 9_300];
        match rules.evaluate(&checkout("b", &orders)) {
            RiskDecision::Decline { code, message } => {
                assert_eq!(code, "checkout_amount_limit");
                assert!(message.contains("overflows"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// Review thresholds hold a checkout when one order, or a currency's total, is above them.
    #[test]
    fn review_rules_hold_checkouts() {
        let rules = RiskRules::parse(&RiskConfig {
            order_limits: DEFAULT_ORDER_LIMITS,
            checkout_limits: DEFAULT_CHECKOUT_LIMITS,
            review_limits: "USD:50.00",
            review_buyers: "watched",
            ..Default::default()
        })
        .unwrap();
        assert_eq!(code(rules.evaluate(&input("b", "s", "50.00", "USD"))), "approve");
        assert_eq!(code(rules.evaluate(&input("b", "s", "50.01", "USD"))), "review:amount_review");
        assert_eq!(code(rules.evaluate(&input("watched", "s", "1.00", "USD"))), "review:buyer_review");
        let split = [("s", "30.00", "USD"), ("t", "20.01", "USD"), ("u", "900", "EUR")];
        assert_eq!(code(rules.evaluate(&checkout("b", &split))), "review:checkout_amount_review");
        let under = [("s", "30.00", "USD"), ("t", "20.00", "USD"), ("u", "900", "EUR")];
        assert_eq!(code(rules.evaluate(&checkout("b", &under))), "approve");
    }

    /// Blocklists, then limits, then review.
    #[test]
    fn rules_fire_in_order() {
        let rules = RiskRules::parse(&RiskConfig {
            order_limits: "USD:100.00,KRW:100000",
            checkout_limits: "USD:400.00,KRW:400000",
            blocked_buyers: "bad-buyer",
            blocked_sellers: "bad-seller",
            review_buyers: "watched",
            ..Default::default()
        })
        .unwrap();
        assert_eq!(code(rules.evaluate(&input("b", "s", "100.00", "USD"))), "approve");
        assert_eq!(code(rules.evaluate(&input("b", "s", "100.01", "USD"))), "amount_limit");
        assert_eq!(code(rules.evaluate(&input("b", "s", "100001", "KRW"))), "amount_limit");
        assert_eq!(code(rules.evaluate(&input("b", "s", "999999", "EUR"))), "currency_not_configured");
        assert_eq!(code(rules.evaluate(&input("bad-buyer", "s", "1", "USD"))), "buyer_blocked");
        assert_eq!(code(rules.evaluate(&input("b", "bad-seller", "1", "USD"))), "seller_blocked");
        assert_eq!(code(rules.evaluate(&input("bad-buyer", "s", "1", "EUR"))), "buyer_blocked");
        let over_then_blocked = [("s", "100.01", "USD"), ("bad-seller", "1", "USD")];
        assert_eq!(code(rules.evaluate(&checkout("b", &over_then_blocked))), "seller_blocked");
        assert_eq!(code(rules.evaluate(&input("watched", "s", "100.01", "USD"))), "amount_limit");
        assert_eq!(code(rules.evaluate(&input("watched", "s", "1", "USD"))), "review:buyer_review");
    }

    #[test]
    fn bad_configuration_is_an_error() {
        let with = |order_limits, checkout_limits, blocked_buyers, review_limits| {
            RiskRules::parse(&RiskConfig {
                order_limits,
                checkout_limits,
                blocked_buyers,
                review_limits,
                ..Default::default()
            })
        };
        assert!(with(DEFAULT_ORDER_LIMITS, DEFAULT_CHECKOUT_LIMITS, "", "").is_ok());
        assert!(with("USD=5", "", "", "").is_err());
        assert!(with("USD:1.001", "", "", "").is_err());
        assert!(with("", "USD=5", "", "").is_err());
        assert!(with("", "XYZ:5", "", "").is_err());
        assert!(with("", "USD:0", "", "").is_err());
        assert!(with("USD:5,EUR:5,USD:50", "", "", "").is_err());
        assert!(with("", "", "not ok", "").is_err());
        assert!(with("", "", "", "KRW:1.5").is_err());
    }
}
