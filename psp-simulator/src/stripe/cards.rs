//! Stripe's test payment-method tokens and the outcome each one produces.
//!
//! Stripe's own documented test ids (`pm_card_visa`,
//! `pm_card_threeDSecure2Required`, ...) behave as in Stripe's test mode,
//! so the same suite can run against the simulator and against Stripe.
//! Simulator-only tokens are prefixed `pm_card_sim_`: fault twins of Visa
//! (see `faults.rs`) and manual-review cards.

use serde_json::{Value, json};

use crate::faults::{TokenFault, TokenKind};

/// A test card selected by its `pm_card_...` token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestCard {
    /// `pm_card_visa`: always succeeds.
    Visa,
    /// `pm_card_mastercard`: always succeeds.
    Mastercard,
    /// `pm_card_chargeDeclined`: declined, `generic_decline`.
    ChargeDeclined,
    /// `pm_card_chargeDeclinedInsufficientFunds`: declined, `insufficient_funds`.
    InsufficientFunds,
    /// `pm_card_threeDSecure2Required`: needs a 3-D Secure challenge.
    ThreeDSecure2Required,
    /// `pm_card_sim_*` fault twins of Visa.
    Faulty(TokenFault),
    /// `pm_card_sim_review`: held in manual review (`processing`).
    Review,
    /// `pm_card_sim_review_webhook_chaos`: a review whose events arrive
    /// twice each and in reverse order.
    ReviewWebhookChaos,
}

/// What happens when a card is charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardOutcome {
    /// The charge succeeds and is captured immediately.
    Approved,
    /// The issuer declines with this `decline_code` and customer message.
    Declined { decline_code: &'static str, message: &'static str },
    /// The customer must pass a 3-D Secure challenge first.
    RequiresAction,
    /// The payment waits in manual review.
    Review { webhook_chaos: bool },
}

/// Every token with its card, for lookups and documentation.
const TOKENS: [(&str, TestCard); 11] = [
    ("pm_card_visa", TestCard::Visa),
    ("pm_card_mastercard", TestCard::Mastercard),
    ("pm_card_chargeDeclined", TestCard::ChargeDeclined),
    ("pm_card_chargeDeclinedInsufficientFunds", TestCard::InsufficientFunds),
    ("pm_card_threeDSecure2Required", TestCard::ThreeDSecure2Required),
    ("pm_card_sim_server_error_twice", TestCard::Faulty(TokenFault::ServerErrorTwice)),
    ("pm_card_sim_rate_limited", TestCard::Faulty(TokenFault::RateLimited)),
    ("pm_card_sim_slow", TestCard::Faulty(TokenFault::Slow)),
    ("pm_card_sim_lost_response", TestCard::Faulty(TokenFault::LostResponse)),
    ("pm_card_sim_review", TestCard::Review),
    ("pm_card_sim_review_webhook_chaos", TestCard::ReviewWebhookChaos),
];

impl TestCard {
    /// The card behind `token`, or `None` for an unknown token.
    pub fn from_token(token: &str) -> Option<Self> {
        TOKENS.iter().find(|(name, _)| *name == token).map(|(_, card)| *card)
    }

    /// Card brand, as in Stripe's `card.brand`.
    pub fn brand(self) -> &'static str {
        match self {
            Self::Mastercard => "mastercard",
            _ => "visa",
        }
    }

    /// Last four digits of the matching Stripe test card number.
    pub fn last4(self) -> &'static str {
        match self {
            Self::Mastercard => "4444",
            Self::ChargeDeclined => "0002",
            Self::InsufficientFunds => "9995",
            Self::ThreeDSecure2Required => "3184",
            _ => "4242",
        }
    }

    /// How faults apply when this card is charged.
    pub fn fault_kind(self) -> TokenKind {
        match self {
            Self::Visa | Self::Mastercard => TokenKind::NormalSuccess,
            Self::Faulty(fault) => TokenKind::Fault(fault),
            _ => TokenKind::Other,
        }
    }

    /// The result of charging this card (faults aside).
    pub fn outcome(self) -> CardOutcome {
        match self {
            Self::Visa | Self::Mastercard | Self::Faulty(_) => CardOutcome::Approved,
            Self::ChargeDeclined => {
                CardOutcome::Declined { decline_code: "generic_decline", message: "Your card was declined." }
            }
            Self::InsufficientFunds => CardOutcome::Declined {
                decline_code: "insufficient_funds",
                message: "Your card has insufficient funds.",
            },
            Self::ThreeDSecure2Required => CardOutcome::RequiresAction,
            Self::Review => CardOutcome::Review { webhook_chaos: false },
            Self::ReviewWebhookChaos => CardOutcome::Review { webhook_chaos: true },
        }
    }
}

/// A declined charge, with everything Stripe reports about it.
#[derive(Clone, Debug)]
pub struct Decline {
    pub decline_code: &'static str,
    pub message: &'static str,
    /// Id of the failed charge (Stripe creates one even on decline).
    pub charge: String,
    /// The token that was charged.
    pub payment_method: String,
    pub card: TestCard,
}

impl Decline {
    /// The payment method as Stripe embeds it in errors (an object, not an id).
    pub fn payment_method_object(&self) -> Value {
        json!({
            "id": self.payment_method,
            "object": "payment_method",
            "type": "card",
            "card": { "brand": self.card.brand(), "last4": self.card.last4() },
            "livemode": false,
        })
    }

    /// The intent's `last_payment_error` after this decline.
    pub fn last_payment_error(&self) -> Value {
        json!({
            "type": "card_error",
            "code": "card_declined",
            "decline_code": self.decline_code,
            "message": self.message,
            "charge": self.charge,
            "doc_url": "https://stripe.com/docs/error-codes/card-declined",
            "payment_method": self.payment_method_object(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every documented token maps to its card and unknown tokens to none.
    #[test]
    fn tokens_resolve() {
        assert_eq!(TestCard::from_token("pm_card_visa"), Some(TestCard::Visa));
        assert_eq!(TestCard::from_token("pm_card_chargeDeclinedInsufficientFunds"), Some(TestCard::InsufficientFunds));
        assert_eq!(TestCard::from_token("pm_card_VISA"), None);
        assert_eq!(TestCard::Mastercard.outcome(), CardOutcome::Approved);
        assert_eq!(
            TestCard::from_token("pm_card_sim_lost_response").map(TestCard::fault_kind),
            Some(TokenKind::Fault(TokenFault::LostResponse))
        );
        assert_eq!(
            TestCard::from_token("pm_card_threeDSecure2Required").map(TestCard::outcome),
            Some(CardOutcome::RequiresAction)
        );
    }
}
