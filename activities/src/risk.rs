//! Rules-based risk check. Rules come from configuration: a per-order amount limit per
//! currency and blocklists of buyers and sellers. It is a real step of the saga (APPROVE /
//! DECLINE) that a fraud model can later replace behind the same contract.

use payments_domain::{BuyerId, Currency, Money, SellerAccount};
use payments_workflows::contract::{AssessRisk, RiskDecision, RiskInput};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// Default per-order limits, in major units: high enough for any demo, low enough to catch a
/// misplaced decimal point.
pub const DEFAULT_ORDER_LIMITS: &str = "USD:50000,EUR:50000,GBP:50000,JPY:5000000,KRW:50000000,KWD:15000";

/// The configured rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskRules {
    order_limit: BTreeMap<Currency, Money>,
    blocked_buyers: BTreeSet<BuyerId>,
    blocked_sellers: BTreeSet<SellerAccount>,
    review_limit: BTreeMap<Currency, Money>,
    review_buyers: BTreeSet<BuyerId>,
}

/// Rules configuration as strings (flags / environment).
#[derive(Debug, Clone, Default)]
pub struct RiskConfig<'a> {
    /// Per-order decline limits, `CUR:AMOUNT,...` (major units).
    pub order_limits: &'a str,
    /// Buyers to decline.
    pub blocked_buyers: &'a str,
    /// Sellers to decline.
    pub blocked_sellers: &'a str,
    /// Per-order amounts above which an operator reviews the checkout, `CUR:AMOUNT,...`.
    pub review_limits: &'a str,
    /// Buyers whose checkouts are always reviewed.
    pub review_buyers: &'a str,
}

/// A rules configuration string is malformed.
#[derive(Debug, thiserror::Error)]
#[error("risk rules: {0}")]
pub struct RiskConfigError(String);

impl RiskRules {
    /// Parses the configuration strings.
    pub fn parse(config: &RiskConfig<'_>) -> Result<Self, RiskConfigError> {
        Ok(RiskRules {
            order_limit: parse_limits(config.order_limits)?,
            blocked_buyers: parse_ids(config.blocked_buyers, BuyerId::parse)?,
            blocked_sellers: parse_ids(config.blocked_sellers, SellerAccount::parse)?,
            review_limit: parse_limits(config.review_limits)?,
            review_buyers: parse_ids(config.review_buyers, BuyerId::parse)?,
        })
    }

    /// Applies the rules; the first rule that fires declines the checkout.
    pub fn evaluate(&self, input: &RiskInput) -> RiskDecision {
        if self.blocked_buyers.contains(&input.buyer_id) {
            return decline("buyer_blocked", format!("buyer {} is on the blocklist", input.buyer_id));
        }
        for order in &input.orders {
            if self.blocked_sellers.contains(&order.seller_account) {
                return decline("seller_blocked", format!("seller {} is on the blocklist", order.seller_account));
            }
            if let Some(limit) = self.order_limit.get(&order.amount.currency())
                && order.amount.amount_minor() > limit.amount_minor()
            {
                return decline(
                    "amount_limit",
                    format!("order {} of {} exceeds the limit of {}", order.payment_order_id, order.amount, limit),
                );
            }
        }
        if self.review_buyers.contains(&input.buyer_id) {
            return review("buyer_review", format!("buyer {} is on the review list", input.buyer_id));
        }
        for order in &input.orders {
            if let Some(limit) = self.review_limit.get(&order.amount.currency())
                && order.amount.amount_minor() > limit.amount_minor()
            {
                return review(
                    "amount_review",
                    format!(
                        "order {} of {} is above the review threshold of {}",
                        order.payment_order_id, order.amount, limit
                    ),
                );
            }
        }
        RiskDecision::Approve
    }
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
        map.insert(currency, limit);
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

    fn input(buyer: &str, seller: &str, amount: &str, cur: &str) -> RiskInput {
        let currency = Currency::parse(cur).unwrap();
        RiskInput {
            checkout_id: CheckoutId::parse("c").unwrap(),
            buyer_id: BuyerId::parse(buyer).unwrap(),
            orders: vec![RiskOrder {
                payment_order_id: PaymentOrderId::parse("p").unwrap(),
                seller_account: SellerAccount::parse(seller).unwrap(),
                amount: Money::parse(amount, currency).unwrap(),
            }],
        }
    }

    fn code(d: RiskDecision) -> String {
        match d {
            RiskDecision::Approve => "approve".into(),
            RiskDecision::Decline { code, .. } => code,
            RiskDecision::Review { code, .. } => format!("review:{code}"),
        }
    }

    #[test]
    fn review_rules_hold_checkouts() {
        let rules = RiskRules::parse(&RiskConfig {
            review_limits: "USD:50.00",
            review_buyers: "watched",
            ..Default::default()
        })
        .unwrap();
        assert_eq!(code(rules.evaluate(&input("b", "s", "50.00", "USD"))), "approve");
        assert_eq!(code(rules.evaluate(&input("b", "s", "50.01", "USD"))), "review:amount_review");
        assert_eq!(code(rules.evaluate(&input("watched", "s", "1.00", "USD"))), "review:buyer_review");
    }

    #[test]
    fn rules_fire_in_order() {
        let rules = RiskRules::parse(&RiskConfig {
            order_limits: "USD:100.00,KRW:100000",
            blocked_buyers: "bad-buyer",
            blocked_sellers: "bad-seller",
            ..Default::default()
        })
        .unwrap();
        assert_eq!(code(rules.evaluate(&input("b", "s", "100.00", "USD"))), "approve");
        assert_eq!(code(rules.evaluate(&input("b", "s", "100.01", "USD"))), "amount_limit");
        assert_eq!(code(rules.evaluate(&input("b", "s", "100001", "KRW"))), "amount_limit");
        assert_eq!(code(rules.evaluate(&input("b", "s", "999999", "EUR"))), "approve");
        assert_eq!(code(rules.evaluate(&input("bad-buyer", "s", "1", "USD"))), "buyer_blocked");
        assert_eq!(code(rules.evaluate(&input("b", "bad-seller", "1", "USD"))), "seller_blocked");
    }

    #[test]
    fn bad_configuration_is_an_error() {
        let with = |order_limits, blocked_buyers, review_limits| {
            RiskRules::parse(&RiskConfig { order_limits, blocked_buyers, review_limits, ..Default::default() })
        };
        assert!(with(DEFAULT_ORDER_LIMITS, "", "").is_ok());
        assert!(with("USD=5", "", "").is_err());
        assert!(with("USD:1.001", "", "").is_err());
        assert!(with("", "not ok", "").is_err());
        assert!(with("", "", "KRW:1.5").is_err());
    }
}
