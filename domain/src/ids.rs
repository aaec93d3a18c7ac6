//! Validated identifiers. Each is checked when built from the wire and again when read back
//! from storage, so an id in memory is always well formed.

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

    #[test]
    fn deserialization_validates() {
        assert!(serde_json::from_str::<PaymentOrderId>("\"ok-1\"").is_ok());
        assert!(serde_json::from_str::<PaymentOrderId>("\"not ok\"").is_err());
    }
}
