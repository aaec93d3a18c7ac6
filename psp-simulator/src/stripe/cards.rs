//! Stripe's test payment-method tokens and the outcome each one produces.
//!
//! The tokens are Stripe's own documented test ids, so the same test suite
//! can run against the simulator and against Stripe's test mode. New
//! behaviours (3-D Secure, processing errors) are added here as new tokens.

use serde_json::{Value, json};

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
}

/// What happens when a card is charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardOutcome {
    /// The charge succeeds and is captured immediately.
    Approved,
    /// The issuer declines with this `decline_code` and customer message.
    Declined {
        decline_code: &'static str,
        message: &'static str,
    },
}

impl TestCard {
    /// The card behind `token`, or `None` for an unknown token.
    pub fn from_token(token: &str) -> Option<Self> {
        match token {
            "pm_card_visa" => Some(Self::Visa),
            "pm_card_mastercard" => Some(Self::Mastercard),
            "pm_card_chargeDeclined" => Some(Self::ChargeDeclined),
            "pm_card_chargeDeclinedInsufficientFunds" => Some(Self::InsufficientFunds),
            _ => None,
        }
    }

    /// Card brand, as in Stripe's `card.brand`.
    pub fn brand(self) -> &'static str {
        match self {
            Self::Mastercard => "mastercard",
            Self::Visa | Self::ChargeDeclined | Self::InsufficientFunds => "visa",
        }
    }

    /// Last four digits of the matching Stripe test card number.
    pub fn last4(self) -> &'static str {
        match self {
            Self::Visa => "4242",
            Self::Mastercard => "4444",
            Self::ChargeDeclined => "0002",
            Self::InsufficientFunds => "9995",
        }
    }

    /// The result of charging this card.
    pub fn outcome(self) -> CardOutcome {
        match self {
            Self::Visa | Self::Mastercard => CardOutcome::Approved,
            Self::ChargeDeclined => CardOutcome::Declined {
                decline_code: "generic_decline",
                message: "Your card was declined.",
            },
            Self::InsufficientFunds => CardOutcome::Declined {
                decline_code: "insufficient_funds",
                message: "Your card has insufficient funds.",
            },
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
        assert_eq!(
            TestCard::from_token("pm_card_chargeDeclinedInsufficientFunds"),
            Some(TestCard::InsufficientFunds)
        );
        assert_eq!(TestCard::from_token("pm_card_VISA"), None);
        assert_eq!(TestCard::Mastercard.outcome(), CardOutcome::Approved);
    }
}
