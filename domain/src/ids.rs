//! Validated identifiers. Each is checked when built from the wire and again when read back
//! from storage, so an id in memory is always well formed and never holds a card number.

use crate::card::contains_card_number;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest id we accept. Matches Toss Payments' `orderId` limit and fits Temporal workflow ids.
pub const ID_LEN_MAX: usize = 64;

/// An id failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty string.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`ID_LEN_MAX`].
    #[error("must be at most {ID_LEN_MAX} characters")]
    TooLong,
    /// A character outside the allowed set.
    #[error("may contain only ASCII letters, digits, '-', '_' and '.'")]
    BadCharacter,
    /// Holds a card number, e.g. `chk-4111111111111111`. Ids are stored, logged and sent to
    /// PSPs, so one holding a PAN would put card data where it must never be.
    #[error("must not contain a card number; card data must never be sent, use a PSP token")]
    CardNumber,
}

fn validate(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > ID_LEN_MAX {
        return Err(IdError::TooLong);
    }
    // A deliberately small alphabet: ids end up in URLs, workflow ids, log lines and PSP
    // requests, none of which should need escaping.
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err(IdError::BadCharacter);
    }
    if contains_card_number(s) {
        return Err(IdError::CardNumber);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an id.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate(&s)?;
                Ok(Self(s))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id_type!(
    /// One checkout (the seeds' payment event). The checkout workflow id derives from it.
    CheckoutId
);
id_type!(
    /// One payment order: one seller's share of a checkout. It is the PSP idempotency key.
    PaymentOrderId
);
id_type!(
    /// A seller's account on the marketplace; wallets are kept per seller and currency.
    SellerAccount
);
id_type!(
    /// The buyer, as the marketplace identifies them.
    BuyerId
);

impl CheckoutId {
    /// The Temporal workflow id of this checkout's saga. Deterministic, so a repeated request
    /// finds the same workflow instead of starting another.
    pub fn workflow_id(&self) -> String {
        format!("checkout-{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_ids_and_rejects_the_rest() {
        assert!(CheckoutId::parse("chk_2024-01.a").is_ok());
        assert_eq!(CheckoutId::parse(""), Err(IdError::Empty));
        assert_eq!(CheckoutId::parse("a b"), Err(IdError::BadCharacter));
        assert_eq!(CheckoutId::parse("a/b"), Err(IdError::BadCharacter));
        assert_eq!(CheckoutId::parse("é"), Err(IdError::BadCharacter));
        assert_eq!(CheckoutId::parse("x".repeat(65)), Err(IdError::TooLong));
        assert!(CheckoutId::parse("x".repeat(64)).is_ok());
    }

    /// An id holding a card number is refused when built and when read back; ids with short
    /// or non-card digit runs still pass.
    #[test]
    fn ids_holding_a_card_number_are_refused() {
        for bad in ["chk-4111111111111111", "4111-1111-1111-1111", "po.4242.4242.4242.4242", "s_5555555555554444_x"] {
            assert_eq!(CheckoutId::parse(bad), Err(IdError::CardNumber), "{bad}");
            assert_eq!(SellerAccount::parse(bad), Err(IdError::CardNumber), "{bad}");
        }
        assert!(serde_json::from_str::<PaymentOrderId>("\"po-4111111111111111\"").is_err());
        for good in [
            "chk-1001-1",
            "seller-alice",
            "po-1",
            "chk-3f2a9c1e-7b4d-4e8a-9f00-1c2d3e4f5a6b",
            "chk-0f9e8d7c6b5a49382716a5b4c3d2e1f0",
            "demo-1764501234-Ab3dE9-1",
            "order-20261130123456789",
        ] {
            assert!(CheckoutId::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn deserialization_validates() {
        assert!(serde_json::from_str::<PaymentOrderId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<PaymentOrderId>("\"not ok\"").is_err());
    }
}
